package reconcile

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// step is one pass of a scenario: the agent's input and the plan it must
// give.
type step struct {
	what string
	in   Input
	want Plan
}

// Scenarios: each is a host's passes in order, with the decision each must
// give. The first is issue 19's sequence as the agent saw it.
var scenarios = []struct {
	name  string
	steps []step
}{
	{"issue 19: a fenced host comes back and replays superseded placements", []step{
		{"the replay is at step 1 of the log: db and web on kvm2, nothing runs (it was powered off)",
			Input{Host: "kvm2", Synced: false,
				Desired: map[string]Desired{"db": {Host: "kvm2"}, "web": {Host: "kvm2"}}, Domains: map[string]bool{}},
			Plan{Waiting: "the state is not known to be current since the agent started (a log may be replaying): no stop, no start"}},
		{"caught up: db on kvm1 (generation 38), web on kvm3; their old definitions are here, inactive",
			Input{Host: "kvm2", Synced: true,
				Desired: map[string]Desired{"db": {Host: "kvm1"}, "web": {Host: "kvm3"}},
				Domains: map[string]bool{"db": false, "web": false}, Managed: map[string]bool{"db": true, "web": true}},
			Plan{Stops: []Stop{
				{VM: "db", Release: true, Undefine: true, Reason: "placed on kvm1"},
				{VM: "web", Release: true, Undefine: true, Reason: "placed on kvm3"}}}},
	}},
	{"a maintenance restart: VMs keep running while the log replays", []step{
		{"the replay has db elsewhere (minutes ago); it runs here now",
			Input{Host: "kvm2", Synced: false, Desired: map[string]Desired{"db": {Host: "kvm1"}}, Domains: map[string]bool{"db": true}, Managed: map[string]bool{"db": true}},
			Plan{Waiting: "the state is not known to be current since the agent started (a log may be replaying): no stop, no start"}},
		{"caught up: db is placed here; adopted, not stopped, not started again",
			Input{Host: "kvm2", Synced: true, Desired: map[string]Desired{"db": {Host: "kvm2"}}, Domains: map[string]bool{"db": true}, Managed: map[string]bool{"db": true}},
			Plan{Adopt: []string{"db"}}},
	}},
	{"recovery: a VM placed here after its host was fenced", []step{
		{"placed here, not running: a start candidate",
			Input{Host: "kvm1", Synced: true, Desired: map[string]Desired{"db": {Host: "kvm1"}}, Domains: map[string]bool{}},
			Plan{Starts: []string{"db"}}},
	}},
	{"live migration", []step{
		{"the source keeps the VM running while it moves",
			Input{Host: "kvm1", Synced: true, Desired: map[string]Desired{"db": {Host: "kvm2", MigrateFrom: "kvm1"}}, Domains: map[string]bool{"db": true}, Managed: map[string]bool{"db": true}},
			Plan{}},
		{"the target does not start it: the migration brings it",
			Input{Host: "kvm2", Synced: true, Desired: map[string]Desired{"db": {Host: "kvm2", MigrateFrom: "kvm1"}}, Domains: map[string]bool{}},
			Plan{}},
		{"arrived: the target adopts it",
			Input{Host: "kvm2", Synced: true, Desired: map[string]Desired{"db": {Host: "kvm2"}}, Domains: map[string]bool{"db": true}},
			Plan{Adopt: []string{"db"}}},
	}},
	{"domains that are not the cluster's", []step{
		{"an operator's own domain is left alone; a removed VM this agent defined is stopped and undefined",
			Input{Host: "kvm1", Synced: true, Desired: map[string]Desired{},
				Domains: map[string]bool{"mine": true, "gone": true}, Managed: map[string]bool{"gone": true}},
			Plan{Stops: []Stop{{VM: "gone", Active: true, Undefine: true, Reason: "not the cluster's any more"}}}},
		{"a cluster VM placed nowhere that runs here is stopped, and not undefined (not defined by this agent)",
			Input{Host: "kvm1", Synced: true, Desired: map[string]Desired{"db": {}}, Domains: map[string]bool{"db": true}},
			Plan{Stops: []Stop{{VM: "db", Active: true, Reason: "placed nowhere"}}}},
	}},
	{"issue 14: an unmanaged VM stopped by hand is not started again", []step{
		{"placed here, held (ignored), stopped by an operator: nothing",
			Input{Host: "kvm1", Synced: true, Desired: map[string]Desired{"db": {Host: "kvm1", Hold: true}}, Domains: map[string]bool{"db": false}, Managed: map[string]bool{"db": true}},
			Plan{}},
		{"held, placed elsewhere but running here (moved by hand): not stopped, not undefined",
			Input{Host: "kvm1", Synced: true, Desired: map[string]Desired{"db": {Host: "kvm2", Hold: true}}, Domains: map[string]bool{"db": true}, Managed: map[string]bool{"db": true}},
			Plan{}},
	}},
	{"issue 14: a failed start waits for its backoff", []step{
		{"failed a second ago, retry not before 2 s: deferred",
			Input{Host: "kvm1", Synced: true, Desired: map[string]Desired{"db": {Host: "kvm1"}}, Domains: map[string]bool{},
				NotBefore: map[string]time.Time{"db": t0.Add(2 * time.Second)}, Now: t0.Add(time.Second)},
			Plan{Deferred: []string{"db"}}},
		{"the backoff is over: a start candidate again",
			Input{Host: "kvm1", Synced: true, Desired: map[string]Desired{"db": {Host: "kvm1"}}, Domains: map[string]bool{},
				NotBefore: map[string]time.Time{"db": t0.Add(2 * time.Second)}, Now: t0.Add(2 * time.Second)},
			Plan{Starts: []string{"db"}}},
	}},
}

var t0 = time.Date(2026, 12, 5, 3, 12, 0, 0, time.UTC)

func TestScenarios(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			for i, s := range sc.steps {
				if got := Decide(s.in); !reflect.DeepEqual(got, s.want) {
					t.Errorf("step %d (%s):\n got  %+v\n want %+v", i+1, s.what, got, s.want)
				}
			}
		})
	}
}

func TestConfirm(t *testing.T) {
	for _, tc := range []struct {
		d    Desired
		ours bool
		ok   bool
	}{
		{Desired{Host: "kvm2"}, true, true},
		{Desired{Host: "kvm1"}, true, false},                      // moved on since the pass began
		{Desired{Host: "kvm2", MigrateFrom: "kvm1"}, true, false}, // moving in live
		{Desired{Host: "kvm2"}, false, false},                     // removed
		{Desired{}, true, false},                                  // placed nowhere
		{Desired{Host: "kvm2", Hold: true}, true, false},          // unmanaged meanwhile
	} {
		if err := Confirm("kvm2", "db", tc.d, tc.ours); (err == nil) != tc.ok {
			t.Errorf("%+v ours=%v: %v, want ok=%v", tc.d, tc.ours, err, tc.ok)
		}
	}
}

// TestNeverTwiceProperties: whatever the input, a pass never starts a VM
// placed elsewhere or moving in live, never stops a domain placed here,
// never touches a domain that is neither the cluster's nor the agent's, and
// decides nothing before it is synced.
func TestNeverTwiceProperties(t *testing.T) {
	hosts := []string{"", "h1", "h2"}
	names := []string{"a", "b", "c", "d"}
	rapid.Check(t, func(t *rapid.T) {
		in := Input{Host: "h1", Synced: rapid.Bool().Draw(t, "synced"), Desired: map[string]Desired{}, Domains: map[string]bool{}, Managed: map[string]bool{}}
		for _, n := range names {
			if rapid.Bool().Draw(t, "ours "+n) {
				in.Desired[n] = Desired{Host: rapid.SampledFrom(hosts).Draw(t, "host "+n), MigrateFrom: rapid.SampledFrom(hosts).Draw(t, "from "+n),
					Hold: rapid.Bool().Draw(t, "hold "+n)}
			}
			if rapid.Bool().Draw(t, "defined "+n) {
				in.Domains[n] = rapid.Bool().Draw(t, "active "+n)
			}
			in.Managed[n] = rapid.Bool().Draw(t, "managed "+n)
		}
		p := Decide(in)
		if !in.Synced && (len(p.Starts)+len(p.Stops)+len(p.Adopt) > 0 || p.Waiting == "") {
			t.Fatalf("unsynced pass decided %+v", p)
		}
		for _, vm := range p.Starts {
			d := in.Desired[vm]
			if d.Host != "h1" || d.MigrateFrom != "" || in.Domains[vm] || d.Hold {
				t.Fatalf("start of %s with %+v, active %v", vm, d, in.Domains[vm])
			}
			if Confirm("h1", vm, d, true) != nil {
				t.Fatalf("a start candidate %s fails Confirm on the same state", vm)
			}
		}
		for _, s := range p.Stops {
			d, ours := in.Desired[s.VM]
			if ours && (d.Host == "h1" || d.MigrateFrom == "h1") {
				t.Fatalf("stop of %s placed %+v", s.VM, d)
			}
			if ours && d.Hold {
				t.Fatalf("stop of %s, which is held (unmanaged or in maintenance)", s.VM)
			}
			if !ours && !in.Managed[s.VM] {
				t.Fatalf("stop of %s, neither the cluster's nor the agent's", s.VM)
			}
			if slices.Contains(p.Starts, s.VM) {
				t.Fatalf("%s both stopped and started", s.VM)
			}
		}
	})
}
