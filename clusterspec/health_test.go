package clusterspec

import (
	"strings"
	"testing"

	"github.com/vmha/vmha/placement"
)

func sc(v placement.Score) *Score { s := Score(v); return &s }

// TestHealthStrategies: the node-health-strategy scores, as Pacemaker's
// scheduler derives them (pe__unpack_node_health_scores and
// pcmk__apply_node_health): the sum of every #health* attribute's score.
func TestHealthStrategies(t *testing.T) {
	inf := placement.Infinity
	prog := Policy{NodeHealthStrategy: HealthProgressive, NodeHealthRed: sc(-100), NodeHealthYellow: sc(-10), NodeHealthGreen: sc(5), NodeHealthBase: sc(20)}
	custom := prog
	custom.NodeHealthStrategy = HealthCustom
	cases := []struct {
		name  string
		p     Policy
		attrs map[string]string
		want  placement.Score
	}{
		{"none ignores red", Policy{}, map[string]string{"#health-ipmi": "red"}, 0},
		{"explicit none", Policy{NodeHealthStrategy: HealthNone}, map[string]string{"#health-ipmi": "red"}, 0},
		{"migrate-on-red: red", Policy{NodeHealthStrategy: HealthMigrateOnRed}, map[string]string{"#health-ipmi": "red"}, -inf},
		{"migrate-on-red: yellow", Policy{NodeHealthStrategy: HealthMigrateOnRed}, map[string]string{"#health-ipmi": "yellow"}, 0},
		{"migrate-on-red ignores configured scores", Policy{NodeHealthStrategy: HealthMigrateOnRed, NodeHealthYellow: sc(-50)}, map[string]string{"#health-ipmi": "yellow"}, 0},
		{"only-green: yellow", Policy{NodeHealthStrategy: HealthOnlyGreen}, map[string]string{"#health-ipmi": "yellow"}, -inf},
		{"only-green: green", Policy{NodeHealthStrategy: HealthOnlyGreen}, map[string]string{"#health-ipmi": "green"}, 0},
		{"progressive: sum plus base", prog, map[string]string{"#health-ipmi": "yellow", "#health-disk": "yellow", "#health-net": "green"}, 20 - 10 - 10 + 5},
		{"progressive: red", prog, map[string]string{"#health-ipmi": "red"}, 20 - 100},
		{"progressive: default red is -INFINITY", Policy{NodeHealthStrategy: HealthProgressive}, map[string]string{"#health-ipmi": "red"}, -inf},
		{"progressive: integers count as scores", prog, map[string]string{"#health-cpu": "-30", "#health-x": "INFINITY"}, inf},
		{"custom: no base", custom, map[string]string{"#health-ipmi": "yellow"}, -10},
		{"non-health attributes do not count", Policy{NodeHealthStrategy: HealthOnlyGreen}, map[string]string{"health-ipmi-reasons": "red: x", "pingd": "red"}, 0},
		{"the hold counts", Policy{NodeHealthStrategy: HealthMigrateOnRed}, map[string]string{"#health-ipmi": "green", HealthHoldAttr: "red"}, -inf},
		{"INFINITY arithmetic: -INF wins", Policy{NodeHealthStrategy: HealthProgressive, NodeHealthGreen: sc(inf)}, map[string]string{"#health-a": "green", "#health-b": "red"}, -inf},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.p.Health().Score(c.attrs); got != c.want {
				t.Fatalf("score %s, want %s", got, c.want)
			}
		})
	}
}

// TestHealthInPlan: a status file's #health-ipmi=red under migrate-on-red
// sends the VMs away from that host, and is refused when misspelled.
func TestHealthInPlan(t *testing.T) {
	spec, err := Decode([]byte(`policy:
  node-health-strategy: migrate-on-red
hosts: [{name: h1}, {name: h2}]
vms: [{name: a, allow-migrate: true}]
constraints:
  locations: [{vm: a, host: h1, score: 100}]
`))
	if err != nil {
		t.Fatal(err)
	}
	st, err := ParseStatus([]byte("hosts:\n  h1: {state: up, attributes: {\"#health-ipmi\": red}}\n  h2: {state: up}\nvms:\n  a: {host: h1}\n"))
	if err != nil {
		t.Fatal(err)
	}
	in, err := spec.Input(st)
	if err != nil {
		t.Fatal(err)
	}
	spec.Policy.Health().Apply(&in)
	r, err := placement.Solve(in, placement.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Placement["a"] != "h2" {
		t.Fatalf("a on %q, want h2 (h1 is red)", r.Placement["a"])
	}
	for _, bad := range []string{"policy:\n  node-health-strategy: red-only\n", "policy:\n  node-health-recovery: sometimes\n"} {
		s, err := Decode([]byte(bad + "hosts: [{name: h1}]\n"))
		if err == nil {
			_, err = s.Input(&Status{})
		}
		if err == nil || !strings.Contains(err.Error(), "node-health") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
