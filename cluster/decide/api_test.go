package decide_test

import (
	"testing"
	"time"

	"github.com/vmha/vmha/cluster/command"
	"github.com/vmha/vmha/cluster/decide"
	"github.com/vmha/vmha/cluster/statemachine"
	"github.com/vmha/vmha/model"
)

// twoHosts is a cluster without rules: h1 and h2 alive, take live
// migrations, vm g1 running on h1.
func twoHosts(t *testing.T) *decide.View {
	t.Helper()
	st := model.NewState()
	for _, c := range []*command.Command{
		{Op: command.OpRegisterHost, Host: &model.Host{Name: "h1", MemoryMiB: 4096, LibvirtURI: "qemu+tcp://h1/system"}},
		{Op: command.OpRegisterHost, Host: &model.Host{Name: "h2", MemoryMiB: 4096, LibvirtURI: "qemu+tcp://h2/system"}},
		{Op: command.OpHostSeen, Names: []string{"h1", "h2"}},
		{Op: command.OpAddVM, VM: &model.VM{Name: "g1", MemoryMiB: 512}},
		{Op: command.OpPlace, Placements: []model.Placement{{VM: "g1", Host: "h1", Reason: "test"}}},
		{Op: command.OpObserve, Observation: &model.Observation{Host: "h1", VMs: map[string]model.VMObserve{"g1": {State: "running"}}}},
	} {
		if err := statemachine.Apply(st, c); err != nil {
			t.Fatal(err)
		}
	}
	return &decide.View{Now: time.Now(), State: st, Apply: statemachine.Apply, NewID: func(p string) string { return p + "1" },
		Members: decide.Members{"h1": {Name: "h1", Status: decide.MemberAlive}, "h2": {Name: "h2", Status: decide.MemberAlive}}}
}

// vmha migrate VM without --to: the engine picks another host, even on a
// cluster without rules, where a running VM is otherwise pinned where it
// runs (the lab found the source picked as the target).
func TestPickTargetLeavesTheSource(t *testing.T) {
	v := twoHosts(t)
	to, _, err := decide.PickTarget(v, v.State.Config.VMs["g1"], "h1")
	if err != nil || to != "h2" {
		t.Fatalf("target %q, %v; want h2", to, err)
	}
	if err := decide.CheckTarget(v, v.State.Config.VMs["g1"], "h1", "h1"); err == nil {
		t.Fatal("the source was accepted as the target")
	}
}

// A rebalance may move VMs the rules do not describe, on a cluster
// without rules too.
func TestRebalanceInputUnpins(t *testing.T) {
	v := twoHosts(t)
	in, err := decide.EngineInput(v)
	if err != nil {
		t.Fatal(err)
	}
	if !in.VMs[0].Pinned {
		t.Fatal("a running VM of a cluster without rules is not pinned for placement")
	}
	if in = decide.RebalanceInput(v, in); in.VMs[0].Pinned || !in.VMs[0].AllowMigrate {
		t.Fatalf("rebalance input: %+v", in.VMs[0])
	}
}
