package cluster

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/rs/zerolog"

	"github.com/vmha/vmha/cluster/decide"
	"github.com/vmha/vmha/model"
)

// The state machine's applied index moves with the commands it applied,
// rejected ones included, and only then: raft's own index runs ahead while
// a log replays (issue 19).
func TestFSMAppliedIndex(t *testing.T) {
	f := baseFSM(t) // indexes 1..3
	if got := f.AppliedIndex(); got != 3 {
		t.Fatalf("applied index %d after 3 commands, want 3", got)
	}
	bad, _ := json.Marshal(&Command{Op: OpRemoveVM, Name: "nope"})
	if r := f.Apply(&raft.Log{Index: 7, Data: bad}); r == nil {
		t.Fatal("removing an unknown VM was accepted")
	}
	if got := f.AppliedIndex(); got != 7 {
		t.Fatalf("a rejected command at index 7 left the applied index at %d", got)
	}
	if r := f.Apply(&raft.Log{Index: 8, Data: []byte("{not json")}); r == nil {
		t.Fatal("garbage was accepted")
	}
	st, at := f.CopyAt()
	if at != 8 || st.Config.VMs["vm1"] == nil {
		t.Fatalf("CopyAt: index %d, vms %v", at, model.SortedKeys(st.Config.VMs))
	}
}

// A snapshot carries its applied index; one in the old format (the bare
// state) restores with index 0, so an agent waits for the next command
// rather than trust it.
func TestSnapshotCarriesAppliedIndex(t *testing.T) {
	f := baseFSM(t)
	applyAll(t, f, &Command{Op: OpPlace, Placements: []model.Placement{{VM: "vm1", Host: "h1"}}})
	g := restored(t, f)
	if g.AppliedIndex() != f.AppliedIndex() || !reflect.DeepEqual(f.Copy(), g.Copy()) {
		t.Fatalf("restored index %d (want %d) or state differs", g.AppliedIndex(), f.AppliedIndex())
	}
	old, _ := json.Marshal(f.Copy())
	h := NewFSM()
	applyAll(t, h, &Command{Op: OpRegisterHost, Host: &model.Host{Name: "x", APIAddr: "127.0.0.1:9"}})
	if err := h.Restore(io.NopCloser(bytes.NewReader(old))); err != nil {
		t.Fatal(err)
	}
	if h.AppliedIndex() != 0 || !reflect.DeepEqual(f.Copy(), h.Copy()) {
		t.Fatalf("old-format snapshot: index %d (want 0) or state differs", h.AppliedIndex())
	}
	if err := h.Restore(io.NopCloser(strings.NewReader(`{"format":"vmha-state/2","applied_index":4,"state":"x"}`))); err == nil {
		t.Fatal("a snapshot whose state is not a state was accepted")
	}
}

// A fenced host's last report is forgotten: it is powered off, and status
// must not show its VMs running when it comes back.
func TestFenceForgetsReports(t *testing.T) {
	for _, confirm := range []bool{false, true} {
		f := baseFSM(t)
		applyAll(t, f,
			&Command{Op: OpPlace, Placements: []model.Placement{{VM: "vm1", Host: "h2"}}},
			&Command{Op: OpObserve, Observation: &model.Observation{Host: "h2", Boot: "b1", VMs: map[string]model.VMObserve{"vm1": {State: "running"}}}},
			&Command{Op: OpHostState, HostState: &HostStateChange{Host: "h2", State: model.HostLost}},
		)
		if f.Copy().Status.Observed["h2"] == nil {
			t.Fatal("a lost host's report was dropped before the fence (it may still run its VMs)")
		}
		var r []any
		if confirm {
			r = applyAll(t, f, &Command{Op: OpFenceConfirm, HostState: &HostStateChange{Host: "h2"}, Fence: &model.FenceRecord{Host: "h2"}})
		} else {
			r = applyAll(t, f, &Command{Op: OpHostState, HostState: &HostStateChange{Host: "h2", State: model.HostFenced}})
		}
		if r[0] != nil {
			t.Fatal(r[0])
		}
		if o := f.Copy().Status.Observed["h2"]; o != nil {
			t.Fatalf("confirm=%v: the fenced host's report survived: %+v", confirm, o)
		}
	}
}

// Status takes a VM's state only from its host's current life.
func TestStatusIgnoresReportsFromAnEarlierLife(t *testing.T) {
	f := baseFSM(t)
	applyAll(t, f,
		&Command{Op: OpPlace, Placements: []model.Placement{{VM: "vm1", Host: "h1"}}},
		&Command{Op: OpObserve, Observation: &model.Observation{Host: "h1", Boot: "boot-1", VMs: map[string]model.VMObserve{"vm1": {State: "running"}}}},
	)
	st := f.Copy()
	for _, tc := range []struct {
		name   string
		member decide.Member
		want   string
	}{
		{"same boot", decide.Member{Name: "h1", Status: decide.MemberAlive, Tags: map[string]string{tagBoot: "boot-1"}}, "running"},
		{"restarted", decide.Member{Name: "h1", Status: decide.MemberAlive, Tags: map[string]string{tagBoot: "boot-2"}}, "unknown"},
		{"unreachable", decide.Member{Name: "h1", Status: decide.MemberFailed, Tags: map[string]string{tagBoot: "boot-1"}}, "unknown"},
	} {
		v := vmView(st, "vm1", decide.Members{"h1": tc.member})
		if v.State != tc.want {
			t.Errorf("%s: state %q (%s), want %q", tc.name, v.State, v.Reason, tc.want)
		}
	}
}

// The generation floor refuses superseded placements, learns when a VM
// leaves the host, survives a restart, and forgets removed VMs only from a
// current state.
func TestGenerationFloor(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent-generations.json")
	g := loadGenerations(path, zerolog.Nop())
	st := model.NewState()
	st.Config.VMs["db"] = &model.VM{Name: "db"}
	st.Config.VMs["other"] = &model.VM{Name: "other"}
	st.Status.Placements["db"] = &model.Placement{VM: "db", Host: "me", Generation: 33}
	st.Status.Placements["other"] = &model.Placement{VM: "other", Host: "elsewhere", Generation: 40}
	g.note(st, "me", false)
	if _, ok := g.seen["other"]; ok {
		t.Fatal("a VM never placed here entered the floor")
	}
	// db recovered elsewhere: the floor follows it.
	st.Status.Placements["db"] = &model.Placement{VM: "db", Host: "elsewhere", Generation: 38}
	g.note(st, "me", false)
	// After a restart, a replay shows the old placement on this host.
	g = loadGenerations(path, zerolog.Nop())
	if err := g.check("db", 33); err == nil || !strings.Contains(err.Error(), "older than generation 38") {
		t.Fatalf("superseded generation 33 accepted after 38 was seen: %v", err)
	}
	if err := g.check("db", 38); err != nil {
		t.Fatal(err)
	}
	if err := g.check("db", 41); err != nil {
		t.Fatal(err)
	}
	// An older state without db keeps the floor; a current one drops it.
	delete(st.Config.VMs, "db")
	delete(st.Status.Placements, "db")
	g.note(st, "me", false)
	if g.seen["db"] != 38 {
		t.Fatal("a state that may be the past dropped the floor")
	}
	g.note(st, "me", true)
	if _, ok := g.seen["db"]; ok {
		t.Fatal("a removed VM stayed in the floor")
	}
	// A corrupt file is no reason not to start.
	if err := os.WriteFile(path, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if g := loadGenerations(path, zerolog.Nop()); len(g.seen) != 0 {
		t.Fatal("corrupt file read")
	}
}
