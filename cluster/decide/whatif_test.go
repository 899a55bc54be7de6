package decide_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vmha/vmha/cluster/command"
	"github.com/vmha/vmha/cluster/decide"
	"github.com/vmha/vmha/cluster/statemachine"
	"github.com/vmha/vmha/model"
)

// whatIfView is hosts (name → MiB; live migration unless noLive names
// it), all alive, with VMs (name → host, 1 GiB each) reported running.
func whatIfView(t *testing.T, hosts map[string]uint64, vms map[string]string, noLive ...string) *decide.View {
	t.Helper()
	st := model.NewState()
	members := decide.Members{}
	var cmds []*command.Command
	for _, h := range model.SortedKeys(hosts) {
		uri := "qemu+tcp://" + h + "/system"
		for _, n := range noLive {
			if n == h {
				uri = ""
			}
		}
		cmds = append(cmds, &command.Command{Op: command.OpRegisterHost, Host: &model.Host{Name: h, MemoryMiB: hosts[h], LibvirtURI: uri}})
		members[h] = decide.Member{Name: h, Status: decide.MemberAlive}
	}
	cmds = append(cmds, &command.Command{Op: command.OpHostSeen, Names: model.SortedKeys(hosts)})
	running := map[string]map[string]model.VMObserve{}
	for _, vm := range model.SortedKeys(vms) {
		cmds = append(cmds, &command.Command{Op: command.OpAddVM, VM: &model.VM{Name: vm, MemoryMiB: 1024}},
			&command.Command{Op: command.OpPlace, Placements: []model.Placement{{VM: vm, Host: vms[vm], Reason: "test"}}})
		if running[vms[vm]] == nil {
			running[vms[vm]] = map[string]model.VMObserve{}
		}
		running[vms[vm]][vm] = model.VMObserve{State: "running"}
	}
	for _, h := range model.SortedKeys(running) {
		cmds = append(cmds, &command.Command{Op: command.OpObserve, Observation: &model.Observation{Host: h, VMs: running[h]}})
	}
	for _, c := range cmds {
		if err := statemachine.Apply(st, c); err != nil {
			t.Fatal(err)
		}
	}
	return &decide.View{Now: time.Now(), State: st, Apply: statemachine.Apply, NewID: func(p string) string { return p + "1" }, Members: members}
}

func TestWhatIf(t *testing.T) {
	gib := uint64(1024)
	three := map[string]uint64{"h1": 4 * gib, "h2": 4 * gib, "h3": 4 * gib}
	for _, tc := range []struct {
		name           string
		hosts          map[string]uint64
		vms            map[string]string
		noLive         []string
		fail, standby  []string
		want           []string // "vm action from->to how", in order
		stranded       []string // "vm: part of the reason"
		wantErr, field string
		after          map[string]uint64 // host → MiB after
	}{
		{name: "a failed host's VMs are restarted, not migrated", hosts: three, vms: map[string]string{"a": "h1", "b": "h1", "c": "h2"},
			fail: []string{"h1"}, want: []string{"a restart h1->h3 restart", "b restart h1->h2 restart"},
			after: map[string]uint64{"h1": 0, "h2": 2 * gib, "h3": gib}},
		{name: "standby moves live", hosts: three, vms: map[string]string{"a": "h1", "c": "h2"},
			standby: []string{"h1"}, want: []string{"a migrate h1->h3 live"}},
		{name: "standby to a host without live migration restarts", hosts: map[string]uint64{"h1": 4 * gib, "h2": 4 * gib}, vms: map[string]string{"a": "h1"},
			noLive: []string{"h2"}, standby: []string{"h1"}, want: []string{"a move h1->h2 restart"}},
		{name: "not enough room: stranded with the engine's reason", hosts: map[string]uint64{"h1": 2 * gib, "h2": gib}, vms: map[string]string{"a": "h1", "b": "h1", "c": "h2"},
			fail: []string{"h1"}, stranded: []string{"a: ", "b: "}},
		{name: "standby with no room elsewhere", hosts: map[string]uint64{"h1": 4 * gib, "h2": gib}, vms: map[string]string{"a": "h1", "c": "h2"},
			standby: []string{"h1"}, stranded: []string{"a: "}},
		{name: "every host fails", hosts: three, vms: map[string]string{"a": "h1"}, fail: []string{"h1", "h2", "h3"}, stranded: []string{"a: "}},
		{name: "unknown host", hosts: three, fail: []string{"h9"}, wantErr: `unknown host "h9"`, field: "fail"},
		{name: "unknown standby host", hosts: three, standby: []string{"nope"}, wantErr: `unknown host "nope"`, field: "standby"},
		{name: "fail and standby", hosts: three, fail: []string{"h1"}, standby: []string{"h1"}, wantErr: "one or the other", field: "standby"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := whatIfView(t, tc.hosts, tc.vms, tc.noLive...)
			before := statemachineCopy(t, v)
			p, err := decide.WhatIf(v, tc.fail, tc.standby)
			if tc.wantErr != "" {
				var ve *command.ValidationError
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.As(err, &ve) || ve.Field != tc.field {
					t.Fatalf("error %v, want a ValidationError on %s with %q", err, tc.field, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkWhatIf(t, p, tc.want, tc.stranded, tc.after)
			if after := statemachineCopy(t, v); after != before {
				t.Error("WhatIf changed the view's state")
			}
		})
	}
}

// checkWhatIf compares p's actions ("vm action from->to how"), its
// stranded VMs (each "vm: " and a reason) and the memory after (host →
// MiB) with what a case wants.
func checkWhatIf(t *testing.T, p *decide.WhatIfPlan, want, stranded []string, after map[string]uint64) {
	t.Helper()
	var got []string
	for _, a := range p.Actions {
		got = append(got, a.VM+" "+a.Action+" "+a.From+"->"+a.To+" "+a.How)
		if a.Why == "" {
			t.Errorf("%s: no reason", a.VM)
		}
	}
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Errorf("actions %q, want %q", got, want)
	}
	var st []string
	for _, s := range p.Stranded {
		st = append(st, s.VM+": "+s.Why)
	}
	if len(st) != len(stranded) {
		t.Fatalf("stranded %q, want %q", st, stranded)
	}
	for i := range st {
		if !strings.HasPrefix(st[i], stranded[i]) || len(st[i]) <= len(stranded[i]) {
			t.Errorf("stranded %q, want %q and a reason", st[i], stranded[i])
		}
	}
	for _, h := range p.Hosts {
		if want, ok := after[h.Host]; ok && h.AfterMiB != want {
			t.Errorf("%s after: %d MiB, want %d", h.Host, h.AfterMiB, want)
		}
	}
}

// statemachineCopy is the view's state as a string, to see it unchanged.
func statemachineCopy(t *testing.T, v *decide.View) string {
	t.Helper()
	b, err := json.Marshal(v.State)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// PlanMigration is the one place vmha migrate's checks are: its refusals.
func TestDryRunPlanMigration(t *testing.T) {
	gib := uint64(1024)
	v := whatIfView(t, map[string]uint64{"h1": 4 * gib, "h2": 4 * gib, "h3": gib / 2}, map[string]string{"a": "h1", "b": "h2"}, "h2")
	for _, tc := range []struct {
		vm, to, want string
	}{
		{"a", "", "h3"}, // h2 takes no live migration, h3 is too small: the engine finds none
		{"a", "h2", "takes no live migration"},
		{"a", "h3", "MiB free"},
		{"a", "h1", "already runs on h1"},
		{"a", "h9", `unknown host "h9"`},
		{"zz", "", "zz"},
	} {
		_, err := decide.PlanMigration(v, tc.vm, tc.to, "op", "mig-1")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("migrate %s to %q: %v, want %q", tc.vm, tc.to, err, tc.want)
		}
	}
	v = whatIfView(t, map[string]uint64{"h1": 4 * gib, "h2": 4 * gib}, map[string]string{"a": "h1"})
	p, err := decide.PlanMigration(v, "a", "", "op", "mig-1")
	if err != nil || p.Placement.Host != "h2" || p.Placement.MigrateFrom != "h1" || p.How != decide.HowLive || p.Picked == "" {
		t.Fatalf("plan %+v, %v", p, err)
	}
}

func TestRecoveries(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 3, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	v := whatIfView(t, map[string]uint64{"h1": 4096, "h2": 4096}, map[string]string{"a": "h1", "b": "h1", "c": "h2"})
	st := v.State
	for _, c := range []*command.Command{
		{At: at(0), Op: command.OpHostState, HostState: &command.HostStateChange{Host: "h1", State: model.HostLost, Reason: "gossip: failed", RecoveryID: "rcv-1"}},
		{At: at(1500), Op: command.OpFenceRecord, Fence: &model.FenceRecord{RecoveryID: "rcv-1", Host: "h1", Device: "ipmi", Action: "off", OK: true}},
		{At: at(1500), Op: command.OpHostState, HostState: &command.HostStateChange{Host: "h1", State: model.HostFenced, Reason: "fenced by ipmi", RecoveryID: "rcv-1"}},
		{At: at(1600), Op: command.OpPlace, Placements: []model.Placement{
			{VM: "a", Host: "h2", RecoveryID: "rcv-1", Reason: "recovered"},
			{VM: "b", Host: "", RecoveryID: "rcv-1", Reason: "no host has room"}}},
		{At: at(2600), Op: command.OpObserve, Observation: &model.Observation{Host: "h2", VMs: map[string]model.VMObserve{
			"a": {State: "running", Since: at(2500)}, "c": {State: "running"}}}},
	} {
		if err := statemachine.Apply(st, c); err != nil {
			t.Fatal(err)
		}
	}
	rs := decide.Recoveries(st.Status.Events, st, 50)
	if len(rs) != 1 {
		t.Fatalf("%d recoveries: %+v", len(rs), rs)
	}
	r := rs[0]
	if r.ID != "rcv-1" || r.Host != "h1" || !r.LostAt.Equal(at(0)) || !r.FencedAt.Equal(at(1500)) || len(r.VMs) != 2 {
		t.Fatalf("recovery %+v", r)
	}
	if a := r.VMs[0]; a.VM != "a" || a.Host != "h2" || !a.PlacedAt.Equal(at(1600)) || !a.RunningAt.Equal(at(2500)) {
		t.Errorf("vm a: %+v", a)
	}
	if b := r.VMs[1]; b.VM != "b" || b.Host != "" || b.Stranded != "no host has room" {
		t.Errorf("vm b: %+v", b)
	}
	if want := "recovered 1/2 VMs from h1 in 2.5 s (fence 1.5 s, restart 1.0 s)"; r.Summary != want {
		t.Errorf("summary %q, want %q", r.Summary, want)
	}
	lost := 0
	for i, e := range st.Status.Events {
		if e.Action == "lost" {
			lost = i
		}
	}
	if got := decide.Recoveries(st.Status.Events[lost+1:], st, 50); len(got) != 0 {
		t.Errorf("a recovery whose loss left the log: %+v", got)
	}
}

// The demo's line comes from the same computation.
func TestRecoverySummaryAsTheDemo(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 3, 0, 0, 0, time.UTC)
	p := decide.Phases(decide.RecoveryTimes{Failed: t0, Lost: t0.Add(800 * time.Millisecond), Fenced: t0.Add(900 * time.Millisecond), Restarted: t0.Add(time.Second)})
	want := "recovered 2/2 VMs from host1 in 1.0 s (detect 0.8 s, fence 0.1 s, restart 0.1 s)"
	if got := decide.RecoverySummary(2, 2, "host1", p); got != want {
		t.Fatalf("%q, want %q", got, want)
	}
	if got := decide.RecoverySummary(0, 2, "host1", decide.Phases(decide.RecoveryTimes{Lost: t0})); got != "recovered 0/2 VMs from host1" {
		t.Fatalf("%q", got)
	}
}
