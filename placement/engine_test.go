package placement

import (
	"fmt"
	"strings"
	"testing"
	"time"

)

func host(name string, mem, cpu int64) HostInfo {
	return HostInfo{Name: name, Capacity: map[string]int64{"memory": mem, "cpu": cpu}}
}

func vm(name, cur string, mem, cpu int64) VMInfo {
	return VMInfo{Name: name, Current: cur, Utilization: map[string]int64{"memory": mem, "cpu": cpu}}
}

func sp(s Score) *Score { return &s }

func solve(t *testing.T, in Input) *Result {
	t.Helper()
	r, err := Solve(in, Options{Scores: true, Explain: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestPacemakerDocumentedCase(t *testing.T) {
	// Pacemaker Explained, "Utilization and Placement Strategy": greedy
	// balanced allocation leaves the large VM stopped; vmha's rescue
	// search runs all three.
	in := Input{
		Hosts:  []HostInfo{host("node1", 2048, 2), host("node2", 4096, 4)},
		VMs:    []VMInfo{vm("rsc-small", "", 1024, 1), vm("rsc-medium", "", 2048, 2), vm("rsc-large", "", 3072, 3)},
		Policy: Policy{Strategy: StrategyBalanced},
	}
	r, err := Solve(in, Options{NoSearch: true})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"rsc-small": "node2", "rsc-medium": "node2", "rsc-large": ""}
	if d := diffMaps(want, r.Placement); d != "" {
		t.Errorf("greedy (Pacemaker) placement :\n%s", d)
	}
	r = solve(t, in)
	want = map[string]string{"rsc-small": "node2", "rsc-medium": "node1", "rsc-large": "node2"}
	if d := diffMaps(want, r.Placement); d != "" {
		t.Errorf("with rescue :\n%s", d)
	}
	if !strings.Contains(r.Explanations["rsc-large"].Reason, "rescue") {
		t.Errorf("rsc-large reason %q does not mention the rescue", r.Explanations["rsc-large"].Reason)
	}
}

func TestSmoke(t *testing.T) {
	in := Input{
		Hosts: []HostInfo{host("h1", 4096, 4), host("h2", 4096, 4)},
		VMs:   []VMInfo{vm("a", "h1", 1024, 1)},
		Now:   time.Unix(0, 0),
	}
	r := solve(t, in)
	fmt.Printf("%+v\n", r)
}
