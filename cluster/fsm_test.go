package cluster

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/vmha/vmha/cluster/decide"
	"github.com/vmha/vmha/model"
	"github.com/vmha/vmha/placement"
	"github.com/vmha/vmha/storage"
)

const vmXML = `<domain type='test'><name>%s</name><memory unit='MiB'>512</memory><vcpu>1</vcpu></domain>`

func xmlFor(name string) string { return strings.Replace(vmXML, "%s", name, 1) }

// applyAll runs commands through the real FSM.Apply path (JSON included).
func applyAll(t *testing.T, f *FSM, cmds ...*Command) []any {
	t.Helper()
	var out []any
	for i, c := range cmds {
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, f.Apply(&raft.Log{Index: uint64(i + 1), Data: b}))
	}
	return out
}

func baseFSM(t *testing.T) *FSM {
	f := NewFSM()
	res := applyAll(t, f,
		&Command{Op: OpRegisterHost, Host: &model.Host{Name: "h1", APIAddr: "127.0.0.1:1", MemoryMiB: 4096}},
		&Command{Op: OpRegisterHost, Host: &model.Host{Name: "h2", APIAddr: "127.0.0.1:2", MemoryMiB: 4096}, Fencing: &model.FenceTopology{
			Devices: []model.FenceDevice{{Name: "bmc@h2", Type: "ipmi", Params: map[string]string{"address": "127.0.0.1", "user": "u"}, Password: "pw"}},
			Levels:  [][]string{{"bmc@h2"}},
		}},
		&Command{Op: OpAddVM, VM: &model.VM{Name: "vm1", XML: xmlFor("vm1"), Prefer: "h1", MemoryMiB: 512}},
	)
	for i, r := range res {
		if r != nil {
			t.Fatalf("setup command %d: %v", i, r)
		}
	}
	return f
}

func TestApplyRejectsBadInputAndChangesNothing(t *testing.T) {
	tests := []struct {
		name    string
		cmd     *Command
		want    string
		errType any
	}{
		{"duplicate vm", &Command{Op: OpAddVM, VM: &model.VM{Name: "vm1", XML: xmlFor("vm1")}}, "already exists", &ConflictError{}},
		{"unknown preferred host", &Command{Op: OpAddVM, VM: &model.VM{Name: "vm2", XML: xmlFor("vm2"), Prefer: "h9"}}, `prefer: unknown host "h9"`, &ValidationError{}},
		{"bad vm name", &Command{Op: OpAddVM, VM: &model.VM{Name: "a b", XML: xmlFor("a b")}}, "name:", &ValidationError{}},
		{"remove unknown vm", &Command{Op: OpRemoveVM, Name: "nope"}, `unknown vm "nope"`, &NotFoundError{}},
		{"place on unknown host", &Command{Op: OpPlace, Placements: []model.Placement{{VM: "vm1", Host: "h9"}}}, `unknown host "h9"`, &NotFoundError{}},
		{"place unknown vm", &Command{Op: OpPlace, Placements: []model.Placement{{VM: "vm1", Host: "h1"}, {VM: "zz", Host: "h1"}}}, `unknown vm "zz"`, &NotFoundError{}},
		{"state of unknown host", &Command{Op: OpHostState, HostState: &HostStateChange{Host: "h9", State: model.HostLost}}, `unknown host "h9"`, &NotFoundError{}},
		{"observe unknown host", &Command{Op: OpObserve, Observation: &model.Observation{Host: "h9"}}, `unknown host "h9"`, &NotFoundError{}},
		{"pin unknown vm", &Command{Op: OpPin, Pin: &model.Pin{VM: "zz", Host: "h1"}}, `unknown vm "zz"`, &NotFoundError{}},
		{"pin to unknown host", &Command{Op: OpPin, Pin: &model.Pin{VM: "vm1", Host: "h9"}}, `pin.host: "h9" is not a host`, &ValidationError{}},
		{"pin already expired", &Command{Op: OpPin, At: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), Pin: &model.Pin{VM: "vm1", Host: "h1", Expires: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}}, "pin.expires", &ValidationError{}},
		{"clear a pin that is not there", &Command{Op: OpPin, Names: []string{"vm1"}}, "vm vm1 has no pin", &ConflictError{}},
		{"unknown op", &Command{Op: "explode"}, `unknown command "explode"`, nil},
		{"empty payload", &Command{Op: OpAddVM}, "no vm", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := baseFSM(t)
			before := f.Copy()
			res := applyAll(t, f, tt.cmd)[0]
			err, _ := res.(error)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want error containing %q", res, tt.want)
			}
			if tt.errType != nil {
				target := reflect.New(reflect.TypeOf(tt.errType)).Interface()
				if !errors.As(err, target) {
					t.Fatalf("error %T is not %T", err, tt.errType)
				}
			}
			if after := f.Copy(); !reflect.DeepEqual(before, after) {
				t.Fatalf("a rejected command changed the state")
			}
		})
	}
}

func TestApplyLifecycle(t *testing.T) {
	f := baseFSM(t)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	res := applyAll(t, f,
		&Command{Op: OpPlace, Term: 3, At: at, Placements: []model.Placement{{VM: "vm1", Host: "h1", Reason: "preferred"}}},
		&Command{Op: OpHostState, At: at.Add(time.Second), HostState: &HostStateChange{Host: "h1", State: model.HostLost, RecoveryID: "r1"}},
		&Command{Op: OpHostState, At: at.Add(2 * time.Second), HostState: &HostStateChange{Host: "h1", State: model.HostFenced}},
		&Command{Op: OpPlace, Term: 4, At: at.Add(3 * time.Second), Placements: []model.Placement{{VM: "vm1", Host: "h2", RecoveryID: "r1"}}},
		&Command{Op: OpFenceRecord, Fence: &model.FenceRecord{Host: "h1", OK: true, RecoveryID: "r1"}},
	)
	for i, r := range res {
		if r != nil {
			t.Fatalf("command %d: %v", i, r)
		}
	}
	s := f.Copy()
	p := s.Status.Placements["vm1"]
	if p.Host != "h2" || p.Generation != 2 || p.Term != 4 || p.RecoveryID != "r1" {
		t.Fatalf("placement %+v", p)
	}
	hs := s.Status.Hosts["h1"]
	if hs.State != model.HostFenced || hs.RecoveryID != "r1" || !hs.LostAt.Equal(at.Add(time.Second)) || !hs.FencedAt.Equal(at.Add(2*time.Second)) {
		t.Fatalf("host status %+v", hs)
	}
	if len(s.Status.FenceHistory) != 1 {
		t.Fatalf("history %+v", s.Status.FenceHistory)
	}
	// Removing the VM drops its placement too.
	if r := applyAll(t, f, &Command{Op: OpRemoveVM, Name: "vm1"})[0]; r != nil {
		t.Fatal(r)
	}
	if s := f.Copy(); len(s.Config.VMs) != 0 || len(s.Status.Placements) != 0 {
		t.Fatalf("remove left %+v %+v", s.Config.VMs, s.Status.Placements)
	}
}

func TestSnapshotRestoreRoundTrip(t *testing.T) {
	f := baseFSM(t)
	applyAll(t, f, &Command{Op: OpPlace, Placements: []model.Placement{{VM: "vm1", Host: "h1"}}})
	g := restored(t, f)
	if !reflect.DeepEqual(f.Copy(), g.Copy()) {
		t.Fatal("restored state differs")
	}
	// The password survives the snapshot (fencing needs it after a restart).
	if g.Copy().Config.Fencing["h2"].Devices[0].Password != "pw" {
		t.Fatal("fence password lost in snapshot")
	}
	if err := g.Restore(io.NopCloser(strings.NewReader("{broken"))); err == nil {
		t.Fatal("corrupt snapshot accepted")
	}
}

// restored is a new FSM restored from f's snapshot, through Persist.
func restored(t *testing.T, f *FSM) *FSM {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	g := NewFSM()
	if err := g.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	return g
}

type memSink struct{ bytes.Buffer }

func (m *memSink) ID() string    { return "mem" }
func (m *memSink) Cancel() error { return nil }
func (m *memSink) Close() error  { return nil }

func TestFenceHistoryIsBounded(t *testing.T) {
	f := baseFSM(t)
	var cmds []*Command
	for i := 0; i < maxFenceHistory+10; i++ {
		cmds = append(cmds, &Command{Op: OpFenceRecord, Fence: &model.FenceRecord{Host: "h1", RecoveryID: string(rune('a' + i%26))}})
	}
	applyAll(t, f, cmds...)
	if n := len(f.Copy().Status.FenceHistory); n != maxFenceHistory {
		t.Fatalf("history has %d records", n)
	}
}

func TestTermGuard(t *testing.T) {
	var g termGuard
	for _, step := range []struct {
		term uint64
		ok   bool
	}{{1, true}, {3, true}, {3, true}, {2, false}, {4, true}, {1, false}} {
		err := g.accept(step.term)
		if (err == nil) != step.ok {
			t.Fatalf("term %d: err %v, want ok=%v", step.term, err, step.ok)
		}
	}
}

func FuzzApply(f *testing.F) {
	f.Add([]byte(`{"op":"add_vm","vm":{"name":"x","xml":"<domain type='test'><name>x</name><memory>1024</memory></domain>"}}`))
	f.Add([]byte(`{"op":"place","placements":[{"vm":"vm1","host":"h2"}]}`))
	f.Add([]byte(`{"op":"observe","observation":{"host":"h1","vms":{"vm1":{"state":"running"}}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fsm := baseFSM(t)
		before := fsm.Copy()
		res := fsm.Apply(&raft.Log{Index: 99, Data: data})
		if err, ok := res.(error); ok && err != nil {
			if !reflect.DeepEqual(before, fsm.Copy()) {
				t.Fatalf("rejected command %q changed the state", data)
			}
		}
	})
}

// TestHostLifecycleTransitions: a host is fenced only after it was lost,
// and a late fence failure cannot take a fenced host back to fence-failed
// (which would block nothing, but would hide the successful fence).
func TestHostLifecycleTransitions(t *testing.T) {
	all := []model.HostState{model.HostAlive, model.HostLost, model.HostFenceFailed, model.HostFenced}
	allowed := map[[2]model.HostState]bool{
		{model.HostAlive, model.HostLost}: true, {model.HostLost, model.HostLost}: true,
		{model.HostLost, model.HostFenceFailed}: true, {model.HostFenceFailed, model.HostFenceFailed}: true,
		{model.HostLost, model.HostFenced}: true, {model.HostFenceFailed, model.HostFenced}: true,
	}
	for _, from := range all {
		allowed[[2]model.HostState{from, model.HostAlive}] = true
		for _, to := range all {
			err := checkTransition("h", from, to)
			if want := allowed[[2]model.HostState{from, to}]; (err == nil) != want {
				t.Errorf("%s -> %s: err %v, want allowed=%v", from, to, err, want)
			}
		}
	}
}

func TestFenceConfirm(t *testing.T) {
	f := baseFSM(t)
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rec := &model.FenceRecord{Host: "h2", Device: "operator", Action: "confirm", Requester: "alice@h1", OK: true}
	confirm := &Command{Op: OpFenceConfirm, At: at, Fence: rec, HostState: &HostStateChange{Host: "h2", Reason: "confirmed down by alice@h1"}}
	// An alive host cannot be confirmed down.
	res := applyAll(t, f, confirm)
	var ce *ConflictError
	if err, _ := res[0].(error); !errors.As(err, &ce) || !strings.Contains(err.Error(), "not lost") {
		t.Fatalf("confirm of an alive host: %v", res[0])
	}
	if len(f.Copy().Status.FenceHistory) != 0 {
		t.Fatal("a refused confirm was recorded")
	}
	res = applyAll(t, f,
		&Command{Op: OpHostState, At: at, HostState: &HostStateChange{Host: "h2", State: model.HostLost, RecoveryID: "r9"}},
		&Command{Op: OpHostState, At: at, HostState: &HostStateChange{Host: "h2", State: model.HostFenceFailed, Reason: "bmc silent"}},
		confirm,
		// A fence retry that fails afterwards must not undo the confirm.
		&Command{Op: OpHostState, At: at, HostState: &HostStateChange{Host: "h2", State: model.HostFenceFailed, Reason: "late"}},
	)
	for i, r := range res[:3] {
		if r != nil {
			t.Fatalf("command %d: %v", i, r)
		}
	}
	if res[3] == nil {
		t.Fatal("fenced -> fence-failed was accepted")
	}
	st := f.Copy()
	hs := st.Status.Hosts["h2"]
	if hs.State != model.HostFenced || hs.RecoveryID != "r9" || !hs.FencedAt.Equal(at) || hs.Reason != "confirmed down by alice@h1" {
		t.Fatalf("host status after confirm: %+v", hs)
	}
	if h := st.Status.FenceHistory; len(h) != 1 || h[0].Requester != "alice@h1" || h[0].Action != "confirm" {
		t.Fatalf("history %+v", h)
	}
}

func TestRulesAreCheckedAgainstTheCluster(t *testing.T) {
	f := baseFSM(t)
	set := func(y string) any { return applyAll(t, f, &Command{Op: OpSetRules, Rules: &y})[0] }
	for _, tt := range []struct{ yaml, want string }{
		{"hosts: [{name: h9}]\nvms: []\n", `host "h9" is not a host of this cluster`},
		{"hosts: [{name: h1}]\nvms: [{name: vm7}]\n", `vm "vm7" is not managed by this cluster`},
		{"hosts: [{name: h1}]\nvms: [{name: vm1}]\nbogus: 1\n", "bogus"},
		{"hosts: [{name: h1}]\nvms: [{name: vm1}]\nconstraints: {locations: [{vm: vm1, host: h9, score: 10}]}\n", `host "h9" is not a host of this cluster`},
	} {
		err, _ := set(tt.yaml).(error)
		var ve *ValidationError
		if !errors.As(err, &ve) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("rules %q: %v, want a validation error naming %q", tt.yaml, err, tt.want)
		}
		if f.Copy().Config.Rules != "" {
			t.Fatal("bad rules were stored")
		}
	}
	good := "hosts: [{name: h1, attributes: {zone: a}}, {name: h2}]\nvms: [{name: vm1, priority: 5}]\n" +
		"constraints: {locations: [{vm: vm1, rule: {score: -INFINITY, expressions: [{attribute: zone, operation: eq, value: a}]}}]}\n"
	if r := set(good); r != nil {
		t.Fatalf("good rules refused: %v", r)
	}
	st := f.Copy()
	if st.Config.Rules != good {
		t.Fatal("rules not stored")
	}
	// The engine input carries the rules; a VM that cannot move live and
	// runs on a usable host is held where it is.
	applyAll(t, f, &Command{Op: OpPlace, Placements: []model.Placement{{VM: "vm1", Host: "h2"}}})
	in, err := engineInput(f.Copy(), members(map[string]decide.MemberStatus{"h1": decide.MemberAlive, "h2": decide.MemberAlive}), time.Now(), storage.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if len(in.LocationRules) != 1 || in.Hosts[0].Attributes["zone"] != "a" || in.VMs[0].Priority != 5 {
		t.Fatalf("input %+v", in)
	}
	if s := in.VMs[0].Stickiness; s == nil || *s != placement.Infinity || in.VMs[0].Current != "h2" {
		t.Fatalf("a running VM that cannot move live is not held: %+v", in.VMs[0])
	}
	if r := set(""); r != nil || f.Copy().Config.Rules != "" {
		t.Fatalf("clearing the rules: %v", r)
	}
}

// TestPins: a pin is set, listed in the state, survives until it expires
// (by the command's time, so every host agrees), is cleared by name, and
// goes with its VM.
func TestPins(t *testing.T) {
	f := baseFSM(t)
	t0 := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	res := applyAll(t, f,
		&Command{Op: OpAddVM, VM: &model.VM{Name: "vm2", XML: xmlFor("vm2"), MemoryMiB: 512}},
		&Command{Op: OpPin, At: t0, Pin: &model.Pin{VM: "vm1", Host: "h2", By: "op", At: t0, Expires: t0.Add(time.Hour)}},
		&Command{Op: OpPin, At: t0, Pin: &model.Pin{VM: "vm2", Host: "h1", By: "op", At: t0}},
	)
	for i, r := range res {
		if r != nil {
			t.Fatalf("command %d: %v", i, r)
		}
	}
	pins := func() []string {
		var out []string
		f.Read(func(s *model.State) {
			for _, vm := range model.SortedKeys(s.Status.Pins) {
				out = append(out, vm+"@"+s.Status.Pins[vm].Host)
			}
		})
		return out
	}
	if got := pins(); !reflect.DeepEqual(got, []string{"vm1@h2", "vm2@h1"}) {
		t.Fatalf("pins: %v", got)
	}
	// Expiring at a time before vm1's end keeps both; after it, only vm2's
	// (which never expires) stays.
	applyAll(t, f, &Command{Op: OpPin, At: t0.Add(59 * time.Minute)})
	if got := pins(); len(got) != 2 {
		t.Fatalf("pins after an early expiry pass: %v", got)
	}
	applyAll(t, f, &Command{Op: OpPin, At: t0.Add(61 * time.Minute)})
	if got := pins(); !reflect.DeepEqual(got, []string{"vm2@h1"}) {
		t.Fatalf("pins after vm1's expiry: %v", got)
	}
	if r := applyAll(t, f, &Command{Op: OpPin, Names: []string{"vm2"}})[0]; r != nil {
		t.Fatal(r)
	}
	if got := pins(); len(got) != 0 {
		t.Fatalf("pins after clearing vm2: %v", got)
	}
	applyAll(t, f, &Command{Op: OpPin, At: t0, Pin: &model.Pin{VM: "vm2", Host: "h1", At: t0}},
		&Command{Op: OpRemoveVM, Name: "vm2"})
	if got := pins(); len(got) != 0 {
		t.Fatalf("a removed VM kept its pin: %v", got)
	}
}

// TestPinsSteerPlacement: an active pin is an INFINITY location in the
// engine's input; an expired one is not there.
func TestPinsSteerPlacement(t *testing.T) {
	f := baseFSM(t)
	now := time.Now()
	applyAll(t, f, &Command{Op: OpPin, At: now, Pin: &model.Pin{VM: "vm1", Host: "h2", At: now, Expires: now.Add(time.Hour)}})
	st := f.Copy()
	members := decide.Members{"h1": {Name: "h1", Status: decide.MemberAlive}, "h2": {Name: "h2", Status: decide.MemberAlive}}
	for _, tc := range []struct {
		at   time.Time
		want bool
	}{{now, true}, {now.Add(2 * time.Hour), false}} {
		in, err := engineInput(st, members, tc.at, storage.Config{})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, l := range in.Locations {
			if l.VM == "vm1" && l.Host == "h2" && l.Score == placement.Infinity {
				found = true
			}
		}
		if found != tc.want {
			t.Fatalf("at %s: pin location present %v, want %v (%+v)", tc.at, found, tc.want, in.Locations)
		}
		r, err := placement.Solve(in, placement.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]string{true: "h2", false: "h1"}[tc.want]; r.Placement["vm1"] != want {
			t.Fatalf("at %s: vm1 placed on %q, want %q", tc.at, r.Placement["vm1"], want)
		}
	}
}

// TestFencedVoter: only a fenced host that is a raft voter and gone from
// gossip gives its vote away; one missing from the raft configuration
// holds none (raft.Voter is the zero suffrage).
func TestFencedVoter(t *testing.T) {
	s := model.NewState()
	for _, h := range []string{"a", "b", "c", "d"} {
		s.Status.Hosts[h] = &model.HostStatus{State: model.HostFenced}
	}
	s.Status.Hosts["a"].State = model.HostAlive
	have := map[raft.ServerID]raft.ServerSuffrage{"a": raft.Voter, "b": raft.Nonvoter, "d": raft.Voter}
	alive := decide.Members{"a": {Name: "a"}, "d": {Name: "d"}}
	if got := fencedVoter(s, have, alive); got != "" {
		t.Fatalf("got %q: b is no voter, c is no member, d is alive", got)
	}
	delete(alive, "d")
	if got := fencedVoter(s, have, alive); got != "d" {
		t.Fatalf("got %q, want d", got)
	}
}

// TestValidateVMBeforeProposing: the domain XML is checked before a VM is
// proposed (apply checks only what no version changes, so that a replayed
// log means the same everywhere).
func TestValidateVMBeforeProposing(t *testing.T) {
	st := baseFSM(t).Copy() // hosts of 4096 MiB
	for _, tc := range []struct {
		name string
		vm   *model.VM
		want string
	}{
		{"xml does not parse", &model.VM{Name: "vm2", XML: "<domain"}, "xml: domain XML"},
		{"xml name differs", &model.VM{Name: "vm2", XML: xmlFor("other")}, `domain <name> is "other"`},
		{"duplicate memory", &model.VM{Name: "vm2", XML: `<domain type='test'><name>vm2</name><memory unit='MiB'>64</memory><memory unit='GiB'>7</memory><vcpu>1</vcpu></domain>`}, "<memory> appears 2 times"},
		{"fits no host", &model.VM{Name: "vm2", XML: `<domain type='test'><name>vm2</name><memory unit='GiB'>64</memory><vcpu>1</vcpu></domain>`}, "more than the largest host"},
		{"exists", &model.VM{Name: "vm1", XML: xmlFor("vm1")}, "already exists"},
	} {
		err := ValidateVM(st, tc.vm)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
	if err := ValidateVM(st, &model.VM{Name: "vm2", XML: xmlFor("vm2")}); err != nil {
		t.Fatalf("a good VM: %v", err)
	}
}

// engineInput is decide.EngineInput on st as this package's tests build it.
func engineInput(st *model.State, m decide.Members, at time.Time, sc storage.Config) (placement.Input, error) {
	v := &decide.View{Now: at, State: st, Members: m}
	if len(sc.Filesystems) > 0 {
		v.Settings.Disks = storageDisks{sc}
	}
	return decide.EngineInput(v)
}
