package clusterspec

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vmha/vmha/placement"
)

const base = `
policy: {default-stickiness: 100, placement-strategy: utilization, symmetric-cluster: false, migration-limit: 1}
hosts:
  - {name: h1, capacity: {memory: 4096, cpu: 4}, attributes: {zone: a}}
  - {name: h2, capacity: {memory: 4096, cpu: 4}, standby: true}
vms:
  - name: a
    utilization: {memory: 1024, cpu: 1}
    priority: 3
    target-state: started
    allow-migrate: true
    stickiness: INFINITY
    migration-threshold: 2
    failure-timeout: 90
    managed: false
  - {name: b, failure-timeout: 10m, migration-threshold: INFINITY}
constraints:
  locations:
    - {vm: a, host: h1, score: -INFINITY}
    - vm: b
      rule:
        score-attribute: weight
        boolean-op: or
        expressions:
          - {attribute: zone, operation: eq, value: a}
        rules:
          - expressions: [{attribute: "#uname", operation: ne, value: h2}]
  colocations:
    - {vm: b, with: a, score: -200}
`

func TestParse(t *testing.T) {
	s, err := Parse([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	in, err := s.Input(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !in.Policy.OptIn || in.Policy.Strategy != placement.StrategyUtilization || in.Policy.DefaultStickiness != 100 || in.Policy.MigrationLimit != 1 {
		t.Errorf("policy %+v", in.Policy)
	}
	a := in.VMs[0]
	if *a.Stickiness != placement.Infinity || a.MigrationThreshold != 2 || a.FailureTimeout != 90*time.Second || !a.Unmanaged || !a.AllowMigrate || a.Priority != 3 {
		t.Errorf("vm a %+v", a)
	}
	if b := in.VMs[1]; b.MigrationThreshold != 0 || b.FailureTimeout != 10*time.Minute || b.Unmanaged {
		t.Errorf("vm b %+v", b)
	}
	if len(in.Locations) != 1 || in.Locations[0].Score != -placement.Infinity {
		t.Errorf("locations %+v", in.Locations)
	}
	if len(in.LocationRules) != 1 || in.LocationRules[0].Rule.ScoreAttribute != "weight" || len(in.LocationRules[0].Rule.Rules) != 1 {
		t.Errorf("rules %+v", in.LocationRules)
	}
	if len(in.Colocations) != 1 || in.Colocations[0].Score != -200 {
		t.Errorf("colocations %+v", in.Colocations)
	}
	if !in.Hosts[1].Standby || in.Hosts[0].Capacity["memory"] != 4096 {
		t.Errorf("hosts %+v", in.Hosts)
	}
}

func TestStatus(t *testing.T) {
	s, err := Parse([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	st, err := ParseStatus([]byte(`
now: 2026-01-01T00:00:00Z
hosts:
  h1: {state: fenced, attributes: {pingd: "0"}}
  h2: {state: lost, standby: false}
vms:
  b: {host: h2, failures: [{host: h1, count: 2, last: 2025-12-31T23:59:00Z}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	in, err := s.Input(st)
	if err != nil {
		t.Fatal(err)
	}
	if in.Hosts[0].Condition != placement.Released || in.Hosts[0].Attributes["pingd"] != "0" || in.Hosts[0].Attributes["zone"] != "a" {
		t.Errorf("h1 %+v", in.Hosts[0])
	}
	if in.Hosts[1].Condition != placement.Lost || in.Hosts[1].Standby {
		t.Errorf("h2 %+v", in.Hosts[1])
	}
	if in.VMs[1].Current != "h2" || len(in.VMs[1].Failures) != 1 || in.VMs[1].Failures[0].Count != 2 {
		t.Errorf("b %+v", in.VMs[1])
	}
	if !in.Now.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("now %v", in.Now)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"unknown key", "hosts: [{name: h1, capacty: {memory: 1}}]\nvms: []", `unknown key "capacty"`},
		{"unknown top key", "hosts: []\nvms: []\npolicies: {}", `unknown key "policies"`},
		{"unknown host in location", "hosts: [{name: h1}]\nvms: [{name: a}]\nconstraints: {locations: [{vm: a, host: h9, score: 1}]}", `unknown host "h9"`},
		{"unknown vm in location", "hosts: [{name: h1}]\nvms: [{name: a}]\nconstraints: {locations: [{vm: z, host: h1, score: 1}]}", `unknown vm "z"`},
		{"unknown vm in colocation", "hosts: [{name: h1}]\nvms: [{name: a}]\nconstraints: {colocations: [{vm: a, with: q, score: 1}]}", `unknown vm "q"`},
		{"unknown operator", "hosts: [{name: h1}]\nvms: [{name: a}]\nconstraints: {locations: [{vm: a, rule: {score: 1, expressions: [{attribute: x, operation: like, value: y}]}}]}", `unknown operation "like"`},
		{"unknown type", "hosts: [{name: h1}]\nvms: [{name: a}]\nconstraints: {locations: [{vm: a, rule: {score: 1, expressions: [{attribute: x, operation: eq, value: y, type: date}]}}]}", `unknown type "date"`},
		{"negative capacity", "hosts: [{name: h1, capacity: {memory: -1}}]\nvms: []", `host "h1": capacity memory is negative`},
		{"negative utilization", "hosts: [{name: h1}]\nvms: [{name: a, utilization: {cpu: -2}}]", `vm "a": utilization cpu is negative`},
		{"unsatisfiable colocation", "hosts: [{name: h1}]\nvms: [{name: a}, {name: b}, {name: c}]\nconstraints: {colocations: [{vm: a, with: b, score: INFINITY}, {vm: b, with: c, score: INFINITY}, {vm: c, with: a, score: -INFINITY}]}", "unsatisfiable"},
		{"duplicate host", "hosts: [{name: h1}, {name: h1}]\nvms: []", `host "h1": defined twice`},
		{"bad score", "hosts: [{name: h1}]\nvms: [{name: a, stickiness: lots}]", `score "lots"`},
		{"bad strategy", "policy: {placement-strategy: greedy}\nhosts: []\nvms: []", `strategy "greedy"`},
		{"bad hypervisor", "hosts: []\nvms: [{name: a, hypervisor: vmware}]", `hypervisor "vmware"`},
		{"bad target", "hosts: []\nvms: [{name: a, target-state: paused}]", `target state "paused"`},
		{"bad duration", "hosts: []\nvms: [{name: a, failure-timeout: soon}]", `duration "soon"`},
		{"location without score", "hosts: [{name: h1}]\nvms: [{name: a}]\nconstraints: {locations: [{vm: a, host: h1}]}", "needs host and score"},
		{"rule and host", "hosts: [{name: h1}]\nvms: [{name: a}]\nconstraints: {locations: [{vm: a, host: h1, score: 1, rule: {score: 1, expressions: [{attribute: x, operation: defined}]}}]}", "either host and score, or rule"},
		{"nested rule wording", "hosts: [{name: h1}]\nvms: [{name: a}]\nconstraints: {locations: [{vm: a, host: h1, score: 1}, {vm: a, rule: {score: 1, rules: [{expressions: [{attribute: x, operation: defined}]}, {expressions: [{attribute: x, operation: like, value: y}]}]}}]}", `location 2 (vm "a") rule, rule 2, expression 1: unknown operation "like"`},
		{"nested rule with both scores", "hosts: [{name: h1}]\nvms: [{name: a}]\nconstraints: {locations: [{vm: a, rule: {score: 1, rules: [{score: 2, score-attribute: x, expressions: [{attribute: x, operation: defined}]}]}}]}", `location 1 (vm "a") rule, rule 1: give score or score-attribute, not both`},
		{"rule without score", "hosts: [{name: h1}]\nvms: [{name: a}]\nconstraints: {locations: [{vm: a, rule: {expressions: [{attribute: x, operation: defined}]}}]}", `location 1 (vm "a") rule: needs score or score-attribute`},
		{"empty", "", "empty document"},
		{"two documents", "hosts: []\nvms: []\n---\nhosts: []\n", "more than one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The file as a whole world (vmha plan): names count only
			// if the file describes them.
			s, err := Parse([]byte(tt.yaml))
			if err == nil {
				_, err = s.Input(&Status{})
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want containing %q", err, tt.want)
			}
		})
	}
}

func TestStatusErrors(t *testing.T) {
	s, err := Parse([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ yaml, want string }{
		{"hosts: {h9: {state: up}}", `unknown host "h9"`},
		{"hosts: {h1: {state: dead}}", `state "dead"`},
		{"vms: {z: {host: h1}}", `unknown vm "z"`},
		{"vms: {a: {host: h7}}", `unknown host "h7"`},
		{"vms: {a: {hots: h1}}", `unknown key "hots"`},
	} {
		st, err := ParseStatus([]byte(tt.yaml))
		if err == nil {
			_, err = s.Input(st)
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want containing %q", tt.yaml, err, tt.want)
		}
	}
}

func TestSampleConfig(t *testing.T) {
	for _, f := range []string{"../configs/cluster.yaml"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		s, err := Parse(b)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		sb, err := os.ReadFile("../configs/status.yaml")
		if err != nil {
			t.Fatal(err)
		}
		st, err := ParseStatus(sb)
		if err != nil {
			t.Fatal(err)
		}
		in, err := s.Input(st)
		if err != nil {
			t.Fatal(err)
		}
		r, err := placement.Solve(in, placement.Options{})
		if err != nil {
			t.Fatal(err)
		}
		// xen3 was fenced: db recovers; xen2 lost its network: web leaves.
		if r.Placement["db"] == "xen3" || r.Placement["db"] == "" || r.Placement["web"] == "xen2" || r.Placement["mail"] != "xen1" {
			t.Errorf("sample plan %v", r.Placement)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(base))
	if b, err := os.ReadFile("../configs/cluster.yaml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("hosts: [{name: h1}]\nvms: [{name: a}]\nconstraints: {colocations: [{vm: a, with: a, score: 1}]}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		// Whatever parses must plan without error or panic.
		in, err := s.Input(nil)
		if err != nil {
			t.Fatalf("parsed but Input fails: %v", err)
		}
		if len(in.Hosts) > 50 || len(in.VMs) > 200 {
			return
		}
		if _, err := placement.Solve(in, placement.Options{Scores: true, Explain: []string{"*"}}); err != nil {
			t.Fatalf("validated input refused by Solve: %v", err)
		}
	})
}

func TestExportRoundTrip(t *testing.T) {
	s, err := Parse([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	st, err := ParseStatus([]byte("now: 2026-01-01T00:00:00Z\nhosts: {h1: {state: fenced}}\nvms: {b: {host: h1, failures: [{host: h1, count: 1, last: 2025-12-31T00:00:00Z}]}}"))
	if err != nil {
		t.Fatal(err)
	}
	in, err := s.Input(st)
	if err != nil {
		t.Fatal(err)
	}
	spec2, st2 := FromInput(&in)
	y1, err := Marshal(spec2)
	if err != nil {
		t.Fatal(err)
	}
	y2, err := Marshal(st2)
	if err != nil {
		t.Fatal(err)
	}
	s3, err := Parse(y1)
	if err != nil {
		t.Fatalf("exported cluster.yaml does not parse: %v\n%s", err, y1)
	}
	st3, err := ParseStatus(y2)
	if err != nil {
		t.Fatalf("exported status.yaml does not parse: %v\n%s", err, y2)
	}
	in3, err := s3.Input(st3)
	if err != nil {
		t.Fatal(err)
	}
	y3, _ := Marshal(in3)
	y0, _ := Marshal(in)
	if string(y0) != string(y3) {
		t.Errorf("round trip changed the model:\n%s\n---\n%s", y0, y3)
	}
}

// TestStatusProblemsInNameOrder: applyStatus walks the status's maps in
// any order but reports its problems by name, hosts first, every run.
func TestStatusProblemsInNameOrder(t *testing.T) {
	s, err := Parse([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	st, err := ParseStatus([]byte(`
hosts: {zz: {}, h1: {state: odd}, aa: {}, h2: {state: gone}}
vms: {z: {}, a: {host: h9}, m: {}, b: {host: h1}, c: {}}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := `status: unknown host "aa"
status: host "h1": state "odd": want up, lost, fenced or offline
status: host "h2": state "gone": want up, lost, fenced or offline
status: unknown host "zz"
status: vm "a" runs on unknown host "h9"
status: unknown vm "c"
status: unknown vm "m"
status: unknown vm "z"`
	for i := 0; i < 20; i++ {
		_, err := s.Input(st)
		if err == nil || err.Error() != want {
			t.Fatalf("got\n%v\nwant\n%s", err, want)
		}
	}
}
