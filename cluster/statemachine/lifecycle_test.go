package statemachine

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vmha/vmha/cluster/command"
	"github.com/vmha/vmha/model"
)

var at = time.Date(2026, 12, 5, 3, 12, 0, 0, time.UTC)

func lifecycleState(t *testing.T) *model.State {
	t.Helper()
	s := model.NewState()
	for _, h := range []string{"h1", "h2"} {
		must(t, s, &command.Command{Op: command.OpRegisterHost, At: at, Host: &model.Host{Name: h, APIAddr: h + ":7001", MemoryMiB: 4096, CPUs: 4}})
	}
	must(t, s, &command.Command{Op: command.OpAddVM, At: at, By: "alice on h1", VM: &model.VM{Name: "web1", MemoryMiB: 512, VCPUs: 1, XML: "<domain type='kvm'><name>web1</name></domain>"}})
	return s
}

func must(t *testing.T, s *model.State, c *command.Command) {
	t.Helper()
	if err := Apply(s, c); err != nil {
		t.Fatalf("%s: %v", c.Op, err)
	}
}

func snapshot(s *model.State) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// A VM's target is a compare-and-set: a client that read a stale target
// is refused, and a refused command changes nothing, not even the event
// log.
func TestVMStateCompareAndSet(t *testing.T) {
	s := lifecycleState(t)
	must(t, s, &command.Command{Op: command.OpVMState, At: at, By: "alice on h1", Name: "web1", IfTarget: "-",
		VMState: &model.VMState{Target: model.TargetStopped, By: "alice on h1", At: at}})
	before := snapshot(s)
	err := Apply(s, &command.Command{Op: command.OpVMState, At: at, By: "bob on h2", Name: "web1", IfTarget: "-",
		VMState: &model.VMState{Target: model.TargetIgnored, By: "bob on h2", At: at}})
	if err == nil || !strings.Contains(err.Error(), "changed meanwhile (now stopped, expected -)") {
		t.Fatalf("stale compare-and-set: %v", err)
	}
	if snapshot(s) != before {
		t.Fatal("a refused vm_state changed the state")
	}
	for _, bad := range []*command.Command{
		{Op: command.OpVMState, Name: "nope", VMState: &model.VMState{Target: model.TargetStopped}},
		{Op: command.OpVMState, Name: "web1", VMState: &model.VMState{Target: "paused"}},
	} {
		if err := Apply(s, bad); err == nil {
			t.Errorf("%+v was applied", bad.VMState)
		}
	}
	if snapshot(s) != before {
		t.Fatal("bad input changed the state")
	}
	must(t, s, &command.Command{Op: command.OpVMState, At: at, By: "bob on h2", Name: "web1", IfTarget: model.TargetStopped})
	if s.Config.VMStates["web1"] != nil {
		t.Fatal("clearing the target left it")
	}
}

// Each failure is counted once (a report repeated with the same time is
// the same failure); disabled and cleanup clear the counts; removing a
// host or a VM forgets its counts.
func TestFailureCounts(t *testing.T) {
	s := lifecycleState(t)
	fail := func(host string, when time.Time) {
		must(t, s, &command.Command{Op: command.OpFailures, At: at, Failures: []command.FailureCount{{VM: "web1", Host: host, At: when, Error: "bogus"}}})
	}
	fail("h1", at)
	fail("h1", at) // the same report again
	fail("h1", at.Add(time.Second))
	fail("h2", at)
	if n := s.Status.Failures["web1"]["h1"].Count; n != 2 {
		t.Fatalf("web1 on h1 counted %d, want 2", n)
	}
	for _, h := range []string{"h1", "h2"} {
		must(t, s, &command.Command{Op: command.OpObserve, At: at, Observation: &model.Observation{Host: h, At: at,
			VMs: map[string]model.VMObserve{"web1": {State: "shutoff", Since: at, FailedAt: at.Add(time.Second), Error: "guest crashed"}}}})
	}
	must(t, s, &command.Command{Op: command.OpFailures, At: at, By: "alice on h1", Names: []string{"web1"}, Name: "h1"})
	if s.Status.Failures["web1"]["h1"] != nil || s.Status.Failures["web1"]["h2"] == nil {
		t.Fatalf("cleanup of h1 only: %+v", s.Status.Failures["web1"])
	}
	// The cleared failure is forgotten in h1's stored report too (else the
	// leader would count it again at once); h2's stays.
	if !s.Status.Observed["h1"].VMs["web1"].FailedAt.IsZero() || s.Status.Observed["h2"].VMs["web1"].FailedAt.IsZero() {
		t.Fatalf("after the cleanup of h1 the reports say failed at h1 %v, h2 %v",
			s.Status.Observed["h1"].VMs["web1"].FailedAt, s.Status.Observed["h2"].VMs["web1"].FailedAt)
	}
	must(t, s, &command.Command{Op: command.OpVMState, At: at, Name: "web1", VMState: &model.VMState{Target: model.TargetDisabled, By: "alice", At: at}})
	if len(s.Status.Failures) != 0 {
		t.Fatal("disabled kept the fail counts")
	}
	if err := Apply(s, &command.Command{Op: command.OpFailures, Failures: []command.FailureCount{{VM: "web1", Host: "h9", At: at}}}); err == nil {
		t.Fatal("a failure on an unknown host was counted")
	}
	fail("h2", at.Add(time.Minute))
	must(t, s, &command.Command{Op: command.OpRemoveVM, At: at, Name: "web1"})
	if len(s.Status.Failures) != 0 || len(s.Config.VMStates) != 0 {
		t.Fatal("a removed VM left its fail counts or target")
	}
}

// The event log: every applied command that changes something an operator
// cares about is recorded once, with the authenticated principal (or the
// cluster for the leader's own decisions); refused commands record nothing;
// the log is bounded and numbered without gaps.
func TestEventLog(t *testing.T) {
	s := lifecycleState(t)
	must(t, s, &command.Command{Op: command.OpPlace, At: at, Placements: []model.Placement{{VM: "web1", Host: "h1", Reason: "best score"}}})
	must(t, s, &command.Command{Op: command.OpPlace, At: at, Placements: []model.Placement{{VM: "web1", Host: "h2", MigrateFrom: "h1", MigrationID: "mig-1", Reason: "operator"}}})
	must(t, s, &command.Command{Op: command.OpPlace, At: at, Placements: []model.Placement{{VM: "web1", Host: "h2", Reason: "moved live"}}})
	must(t, s, &command.Command{Op: command.OpObserve, At: at, Observation: &model.Observation{Host: "h1", At: at, VMs: map[string]model.VMObserve{"web1": {State: "failed", Error: "bogus", Since: at}}}})
	must(t, s, &command.Command{Op: command.OpObserve, At: at, Observation: &model.Observation{Host: "h1", At: at, VMs: map[string]model.VMObserve{"web1": {State: "failed", Error: "bogus", Since: at}}}})
	must(t, s, &command.Command{Op: command.OpClusterMaintenance, At: at, By: "alice on h1", ClusterMaintenance: &model.ClusterMaintenance{By: "alice on h1", At: at}})
	if err := Apply(s, &command.Command{Op: command.OpPlace, At: at, Placements: []model.Placement{{VM: "nope", Host: "h1"}}}); err == nil {
		t.Fatal("placing an unknown VM was applied")
	}
	var got []string
	for _, e := range s.Status.Events {
		got = append(got, fmt.Sprintf("%d %s %s %s %s", e.Seq, e.Object, e.Action, e.Principal, e.Host))
	}
	want := []string{
		"1 h1 register host h1 ", "2 h2 register host h2 ", "3 web1 add alice on h1 ",
		"4 web1 start cluster h1", "5 web1 migrate cluster h2", "6 web1 moved cluster h2",
		"7 web1 failed host h1 h1", "8 cluster maintenance-on alice on h1 ",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for i := 0; i < model.MaxEvents+10; i++ {
		must(t, s, &command.Command{Op: command.OpFailures, At: at, By: "alice", Names: []string{"web1"}})
	}
	if n := len(s.Status.Events); n != model.MaxEvents {
		t.Fatalf("%d events kept, want %d", n, model.MaxEvents)
	}
	for i := 1; i < len(s.Status.Events); i++ {
		if s.Status.Events[i].Seq != s.Status.Events[i-1].Seq+1 {
			t.Fatalf("event %d has seq %d after %d", i, s.Status.Events[i].Seq, s.Status.Events[i-1].Seq)
		}
	}
	if last := s.Status.Events[len(s.Status.Events)-1].Seq; last != s.Status.EventSeq || last != uint64(8+model.MaxEvents+10) {
		t.Fatalf("last seq %d, EventSeq %d", last, s.Status.EventSeq)
	}
}

// A command without its payload is refused or harmless, never a panic:
// the event log reads each command before it applies.
func TestEmptyCommandsDoNotPanic(t *testing.T) {
	for op := range appliers {
		s := lifecycleState(t)
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("op %s without a payload panicked: %v", op, r)
				}
			}()
			_ = Apply(s, &command.Command{Op: op})
		}()
	}
}
