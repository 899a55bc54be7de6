package pacemaker

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/vmha/vmha/clusterspec"
	"github.com/vmha/vmha/internal/testlab/testenv"
	"github.com/vmha/vmha/placement"
)

var scores = []placement.Score{-placement.Infinity, -100, 0, 10, 100, 500, placement.Infinity}

// colocScores weighs the mandatory colocations more: they chain VMs
// together; the finite ones scale the merged preferences.
var colocScores = []placement.Score{placement.Infinity, placement.Infinity, -placement.Infinity, -placement.Infinity, -500, -100, 1, 50, 200}

// genInput draws a cluster within the subset both schedulers share: hosts
// up (some in standby), VMs with utilization, priorities, stickiness and
// current hosts, locations, a ping rule, colocations.
func genInput(t *rapid.T) placement.Input {
	var in placement.Input
	nh := rapid.IntRange(2, 5).Draw(t, "hosts")
	var hosts []string
	for i := 0; i < nh; i++ {
		h := placement.HostInfo{
			Name:       fmt.Sprintf("node%d", i+1),
			Capacity:   map[string]int64{"memory": int64(rapid.IntRange(1, 8).Draw(t, "mem")) * 1024, "cpu": int64(rapid.IntRange(1, 8).Draw(t, "cpu"))},
			Attributes: map[string]string{},
			Standby:    rapid.IntRange(0, 6).Draw(t, "standby") == 0,
		}
		if p := rapid.IntRange(0, 2).Draw(t, "pingd"); p > 0 {
			h.Attributes["pingd"] = fmt.Sprint((p - 1) * 100)
		}
		hosts = append(hosts, h.Name)
		in.Hosts = append(in.Hosts, h)
	}
	nv := rapid.IntRange(1, 8).Draw(t, "vms")
	var vms []string
	for i := 0; i < nv; i++ {
		v := placement.VMInfo{
			Name:         fmt.Sprintf("vm%d", i+1),
			Utilization:  map[string]int64{"memory": int64(rapid.IntRange(0, 4).Draw(t, "vmem")) * 512, "cpu": int64(rapid.IntRange(0, 3).Draw(t, "vcpu"))},
			Priority:     rapid.IntRange(0, 2).Draw(t, "prio"),
			AllowMigrate: rapid.Bool().Draw(t, "migrate"),
		}
		if rapid.Bool().Draw(t, "running") {
			v.Current = rapid.SampledFrom(hosts).Draw(t, "current")
		}
		if rapid.IntRange(0, 3).Draw(t, "hasstick") == 0 {
			s := rapid.SampledFrom([]placement.Score{0, 50, 200, placement.Infinity}).Draw(t, "stick")
			v.Stickiness = &s
		}
		if rapid.IntRange(0, 9).Draw(t, "stopped") == 0 {
			v.Target = placement.Stopped
		}
		vms = append(vms, v.Name)
		in.VMs = append(in.VMs, v)
	}
	in.Policy = placement.Policy{
		DefaultStickiness: rapid.SampledFrom([]placement.Score{0, 1, 100}).Draw(t, "defstick"),
		Strategy:          rapid.SampledFrom([]placement.Strategy{placement.StrategyDefault, placement.StrategyUtilization, placement.StrategyMinimal, placement.StrategyBalanced}).Draw(t, "strategy"),
		OptIn:             rapid.IntRange(0, 4).Draw(t, "optin") == 0,
	}
	if in.Policy.Strategy == placement.StrategyBalanced {
		// Balanced compares hosts by counting the keys on which one has
		// more room, which is not transitive with two independent keys
		// (A beats B, B beats C, C beats A); Pacemaker then picks by the
		// order of its hash tables, which vmha does not reproduce (see
		// docs/placement.md). Memory proportional to CPU keeps the
		// comparison transitive at every step.
		for i := range in.Hosts {
			in.Hosts[i].Capacity["memory"] = in.Hosts[i].Capacity["cpu"] * 512
		}
		for i := range in.VMs {
			in.VMs[i].Utilization["memory"] = in.VMs[i].Utilization["cpu"] * 512
		}
	}
	for i, n := 0, rapid.IntRange(0, nv+2).Draw(t, "locations"); i < n; i++ {
		in.Locations = append(in.Locations, placement.Location{VM: rapid.SampledFrom(vms).Draw(t, "lvm"),
			Host: rapid.SampledFrom(hosts).Draw(t, "lhost"), Score: rapid.SampledFrom(scores).Draw(t, "lscore")})
	}
	if rapid.Bool().Draw(t, "pingrule") {
		in.LocationRules = append(in.LocationRules, placement.LocationRule{VM: rapid.SampledFrom(vms).Draw(t, "rvm"),
			Rule: placement.Rule{Score: -placement.Infinity, Expressions: []placement.Expression{{Attribute: "pingd", Operation: "lte", Value: "0", Type: "number"}}}})
	}
	// Colocations: mandatory and finite, chains, loops and diamonds come
	// from random pairs. VMHA_DIFF_COLOCATIONS=0 leaves them out (to tell
	// a colocation disagreement from another one).
	if nv >= 2 && os.Getenv("VMHA_DIFF_COLOCATIONS") != "0" {
		for i, n := 0, rapid.IntRange(0, nv/2).Draw(t, "colocations"); i < n; i++ {
			a, b := rapid.SampledFrom(vms).Draw(t, "cvm"), rapid.SampledFrom(vms).Draw(t, "cwith")
			if a != b {
				in.Colocations = append(in.Colocations, placement.Colocation{VM: a, With: b,
					Score: rapid.SampledFrom(colocScores).Draw(t, "cscore")})
			}
		}
		if placement.Validate(&in) != nil {
			in.Colocations = nil
		}
	}
	return in
}

// TestDifferentialCrmSimulate runs random clusters through Pacemaker's
// scheduler and through vmha's greedy pass (no rescue search) and
// requires the same placement.
func TestDifferentialCrmSimulate(t *testing.T) {
	path := testenv.NeedCommand(t, "crm_simulate")
	rapid.Check(t, func(t *rapid.T) {
		in := genInput(t)
		in.Now = time.Now()
		r, err := placement.Solve(in, placement.Options{NoSearch: true, Explain: []string{"*"}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cib := WriteCIB(&in)
		sim, err := Simulate(ctx, path, cib)
		if err != nil {
			t.Fatal(err)
		}
		var diffs []string
		for _, v := range in.VMs {
			if got, want := r.Placement[v.Name], sim.Placement[v.Name]; got != want {
				diffs = append(diffs, fmt.Sprintf("%s: vmha %q, pacemaker %q (%s)", v.Name, got, want, r.Explanations[v.Name].Reason))
			}
		}
		if len(diffs) > 0 {
			sort.Strings(diffs)
			t.Logf("CIB:\n%s", cib)
			t.Logf("crm_simulate:\n%s", sim.Output)
			for _, v := range r.Order {
				t.Logf("vmha: %s -> %q: %s", v, r.Placement[v], r.Explanations[v].Reason)
			}
			t.Fatalf("placements differ:\n%s", strings.Join(diffs, "\n"))
		}
	})
}

func TestWriteCIBRuns(t *testing.T) {
	path := testenv.NeedCommand(t, "crm_simulate")
	// Pacemaker Explained's utilization example: the greedy balanced
	// allocation leaves the large resource stopped.
	in := placement.Input{
		Hosts: []placement.HostInfo{{Name: "node1", Capacity: map[string]int64{"cpu": 2, "memory": 2048}}, {Name: "node2", Capacity: map[string]int64{"cpu": 4, "memory": 4096}}},
		VMs: []placement.VMInfo{{Name: "rsc-small", Utilization: map[string]int64{"cpu": 1, "memory": 1024}},
			{Name: "rsc-medium", Utilization: map[string]int64{"cpu": 2, "memory": 2048}},
			{Name: "rsc-large", Utilization: map[string]int64{"cpu": 3, "memory": 3072}}},
		Policy: placement.Policy{Strategy: placement.StrategyBalanced},
	}
	sim, err := Simulate(context.Background(), path, WriteCIB(&in))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"rsc-small": "node2", "rsc-medium": "node2", "rsc-large": ""}
	for k, v := range want {
		if got, ok := sim.Placement[k]; !ok || got != v {
			t.Errorf("%s: pacemaker %q, want %q\n%s", k, got, v, sim.Output)
		}
	}
	if sim.Scores["rsc-large"]["node1"] != 0 {
		t.Errorf("scores %v", sim.Scores)
	}
}

// TestRuleOperatorsAgree checks every rule operation, on a host with the
// attribute (below, equal to and above the value, and not a number) and
// on one without it, against Pacemaker.
func TestRuleOperatorsAgree(t *testing.T) {
	path := testenv.NeedCommand(t, "crm_simulate")
	in := placement.Input{Hosts: []placement.HostInfo{
		{Name: "low", Attributes: map[string]string{"x": "5"}},
		{Name: "same", Attributes: map[string]string{"x": "10"}},
		{Name: "high", Attributes: map[string]string{"x": "20"}},
		{Name: "text", Attributes: map[string]string{"x": "abc"}},
		{Name: "none"},
	}}
	ops := []string{"lt", "lte", "gt", "gte", "eq", "ne", "defined", "not_defined"}
	types := []string{"", "number", "string", "version"}
	for _, op := range ops {
		for _, typ := range types {
			name := fmt.Sprintf("vm-%s-%s", op, typ)
			if typ == "" {
				name = "vm-" + op
			}
			in.VMs = append(in.VMs, placement.VMInfo{Name: name, Target: placement.Stopped})
			in.LocationRules = append(in.LocationRules, placement.LocationRule{VM: name, Rule: placement.Rule{Score: 7,
				Expressions: []placement.Expression{{Attribute: "x", Operation: op, Value: "10", Type: typ}}}})
		}
	}
	// Stopped VMs get -INFINITY everywhere in Pacemaker's scores; run them.
	for i := range in.VMs {
		in.VMs[i].Target = ""
	}
	sim, err := Simulate(context.Background(), path, WriteCIB(&in))
	if err != nil {
		t.Fatal(err)
	}
	for _, lr := range in.LocationRules {
		for i := range in.Hosts {
			h := &in.Hosts[i]
			want := sim.Scores[lr.VM][h.Name] == 7
			if got := lr.Rule.Matches(h); got != want {
				t.Errorf("%s on %s (x=%q): vmha matches=%v, pacemaker %v", lr.VM, h.Name, h.Attributes["x"], got, want)
			}
		}
	}
}

// TestSeedBookScenario plays the seed book's four-host Xen cluster
// (configs/cluster.yaml: preferred hosts at 100, -INFINITY where pingd
// lte 0 or is missing, stickiness INFINITY) through a ping loss, a host
// loss and the host's return, and requires vmha and Pacemaker to agree at
// every step.
func TestSeedBookScenario(t *testing.T) {
	path := testenv.NeedCommand(t, "crm_simulate")
	data, err := os.ReadFile("../../configs/cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	spec, err := clusterspec.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	in, err := spec.Input(nil)
	if err != nil {
		t.Fatal(err)
	}
	host := func(name string) *placement.HostInfo {
		for i := range in.Hosts {
			if in.Hosts[i].Name == name {
				return &in.Hosts[i]
			}
		}
		t.Fatalf("no host %s", name)
		return nil
	}
	steps := []struct {
		name   string
		change func()
	}{
		{"cold start", func() {}},
		{"xen1 loses its ping", func() { host("xen1").Attributes["pingd"] = "0" }},
		{"xen1 pings again (stickiness keeps VMs where they are)", func() { host("xen1").Attributes["pingd"] = "100" }},
		{"xen3 is lost and fenced", func() { host("xen3").Condition = placement.Released }},
		{"xen3 returns", func() { host("xen3").Condition = placement.Usable }},
		{"xen2 in standby", func() { host("xen2").Standby = true }},
	}
	for _, st := range steps {
		st.change()
		r, err := placement.Solve(in, placement.Options{NoSearch: true, Explain: []string{"*"}})
		if err != nil {
			t.Fatal(err)
		}
		// Pacemaker sees a fenced host as down, and its VMs as stopped.
		pin := in
		pin.VMs = append([]placement.VMInfo(nil), in.VMs...)
		for i := range pin.VMs {
			if c := pin.VMs[i].Current; c != "" && host(c).Condition == placement.Released {
				pin.VMs[i].Current = ""
			}
		}
		sim, err := Simulate(context.Background(), path, WriteCIB(&pin))
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range in.VMs {
			if got, want := r.Placement[v.Name], sim.Placement[v.Name]; got != want {
				t.Errorf("%s: %s: vmha %q, pacemaker %q (%s)\npacemaker's scores %v\n%s", st.name, v.Name, got, want, r.Explanations[v.Name].Reason, sim.Scores[v.Name], sim.Output)
			}
		}
		t.Logf("%s: %v", st.name, r.Placement)
		// The next step starts from this one's placement.
		for i := range in.VMs {
			in.VMs[i].Current = r.Placement[in.VMs[i].Name]
		}
	}
}
