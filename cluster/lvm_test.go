package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/clvm"
	"github.com/vmha/vmha/config"
	"github.com/vmha/vmha/migration"
	"github.com/vmha/vmha/model"
	"github.com/vmha/vmha/storage"
)

// lvmRecorder stands in for the LVM tools, which cannot run here (no
// device-mapper, lvmlockd or DLM in this machine's kernel): it records
// every command and answers lvs with the activation it was given.
type lvmRecorder struct {
	mu     sync.Mutex
	ran    []string
	active string // lvs answer for every LV: "", "local" or "exclusive"
}

func (r *lvmRecorder) Run(_ context.Context, name string, args ...string) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if name == "lvs" {
		var rows []string
		for _, ref := range args[5:] {
			vg, lv, _ := strings.Cut(ref, "/")
			loc, ex := "0", "0"
			switch r.active {
			case "local":
				loc = "1"
			case "exclusive":
				loc, ex = "1", "1"
			}
			rows = append(rows, fmt.Sprintf(`{"lv_name":%q,"vg_name":%q,"lv_attr":"-wi-a-----","lv_active_locally":%q,"lv_active_remotely":"0","lv_active_exclusively":%q}`, lv, vg, loc, ex))
		}
		return []byte(`{"report":[{"lv":[` + strings.Join(rows, ",") + `]}]}`), nil
	}
	r.ran = append(r.ran, name+" "+strings.Join(args, " "))
	return nil, nil
}

func (r *lvmRecorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.ran
	r.ran = nil
	return out
}

// lvmPair is two hosts' nodes (state, config, API; no raft or serf) that
// share one replicated state, with h2's peer API served over HTTP.
func lvmPair(t *testing.T) (a1 *Agent, rec1, rec2 *lvmRecorder, peerURL string) {
	t.Helper()
	cfgFor := func(name string) *config.Daemon {
		c := &config.Daemon{NodeName: name}
		c.Storage.VolumeGroups = []storage.VolumeGroup{{Name: "vg0", LockType: "dlm"}}
		return c
	}
	rec1, rec2 = &lvmRecorder{}, &lvmRecorder{}
	n2 := &Node{cfg: cfgFor("h2"), fsm: NewFSM(), log: zerolog.Nop(), lvmExec: rec2, peerRate: newRateLimiter(peerWriteRate, peerWriteBurst)}
	srv := httptest.NewServer(n2.authenticate(false, n2.Handler(false)))
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "http://")
	n1 := &Node{cfg: cfgFor("h1"), fsm: NewFSM(), log: zerolog.Nop(), lvmExec: rec1, peers: newPeerClients(nil)}
	for _, f := range []*FSM{n1.fsm, n2.fsm} {
		res := applyAll(t, f,
			&Command{Op: OpRegisterHost, Host: &model.Host{Name: "h1", APIAddr: "127.0.0.1:1", MemoryMiB: 4096}},
			&Command{Op: OpRegisterHost, Host: &model.Host{Name: "h2", APIAddr: addr, MemoryMiB: 4096}},
			&Command{Op: OpAddVM, VM: &model.VM{Name: "vm1", XML: xmlFor("vm1"), MemoryMiB: 512, Disks: []string{"/dev/vg0/vm1-disk", "/dev/mapper/vg0-vm1--swap"}}},
		)
		for i, r := range res {
			if r != nil {
				t.Fatalf("setup %d: %v", i, r)
			}
		}
	}
	return &Agent{n: n1, log: zerolog.Nop()}, rec1, rec2, srv.URL
}

// TestLVActivationFollowsTheVM: exclusive activation on start after asking
// the other host; refused while the other host has the LV active; shared
// on both ends during a live migration, exclusive on the target after it;
// deactivated on stop. The other host is asked through its peer API.
func TestLVActivationFollowsTheVM(t *testing.T) {
	a1, rec1, rec2, _ := lvmPair(t)
	ctx := context.Background()
	st := a1.n.fsm.Copy()
	vm := st.Config.VMs["vm1"]
	lvs := []string{"vg0/vm1-disk", "vg0/vm1-swap"}
	if got, err := a1.n.vmLVs(vm); err != nil || !reflect.DeepEqual(got, lvs) {
		t.Fatalf("vmLVs: %v %v, want %v", got, err, lvs)
	}
	mgr := a1.n.lvmManager(st)

	// h2 holds the LV exclusively: the start is refused, nothing runs.
	rec2.active = "exclusive"
	err := mgr.Start(ctx, "vm1", "h1", lvs, clvm.StartOptions{})
	var ae *clvm.ActiveElsewhereError
	if !errors.As(err, &ae) || ae.Host != "h2" || ae.VM != "vm1" {
		t.Fatalf("start while active on h2: %v", err)
	}
	if got := rec1.take(); len(got) != 0 {
		t.Fatalf("a refused start ran %v", got)
	}
	// Inactive there: exclusive here.
	rec2.active = ""
	if err := mgr.Start(ctx, "vm1", "h1", lvs, clvm.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, want := rec1.take(), []string{"lvchange -aey vg0/vm1-disk", "lvchange -aey vg0/vm1-swap"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("start ran %v, want %v", got, want)
	}
	// The agent's own start path: h2 is down (no gossip here), so only
	// the local activation runs.
	if err := a1.activateLVs(ctx, vm); err != nil {
		t.Fatal(err)
	}
	if got := rec1.take(); len(got) != 2 || rec2.take() != nil {
		t.Fatalf("activateLVs ran %v", got)
	}

	// Live migration h1 → h2: shared on both, then exclusive on h2.
	h := a1.migrationHooks(st)
	src, dst := migration.Endpoint{Host: "h1"}, migration.Endpoint{Host: "h2"}
	if err := h.Before(ctx, "vm1", src, dst); err != nil {
		t.Fatal(err)
	}
	if got, want := append(rec1.take(), rec2.take()...), []string{"lvchange -asy vg0/vm1-disk", "lvchange -asy vg0/vm1-swap", "lvchange -asy vg0/vm1-disk", "lvchange -asy vg0/vm1-swap"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("before the migration: %v, want %v", got, want)
	}
	if err := h.After(ctx, "vm1", src, dst); err != nil {
		t.Fatal(err)
	}
	if got1, got2 := rec1.take(), rec2.take(); !reflect.DeepEqual(got1, []string{"lvchange -an vg0/vm1-disk", "lvchange -an vg0/vm1-swap"}) ||
		!reflect.DeepEqual(got2, []string{"lvchange -aey vg0/vm1-disk", "lvchange -aey vg0/vm1-swap"}) {
		t.Fatalf("after the migration: h1 %v, h2 %v", got1, got2)
	}
	// Stop: released here.
	a1.deactivateLVs(ctx, vm)
	if got := rec1.take(); !reflect.DeepEqual(got, []string{"lvchange -an vg0/vm1-disk", "lvchange -an vg0/vm1-swap"}) {
		t.Fatalf("stop ran %v", got)
	}
}

// TestPeerLVMRefusesOtherCommands: the peer endpoint is not a remote
// shell; a refused command runs nothing.
func TestPeerLVMRefusesOtherCommands(t *testing.T) {
	_, _, rec2, url := lvmPair(t)
	c := api.NewTCPClient(strings.TrimPrefix(url, "http://"), 0, nil)
	for _, req := range []api.PeerLVM{
		{Name: "sh", Args: []string{"-c", "reboot"}},
		{Name: "lvremove", Args: []string{"-f", "vg0/vm1-disk"}},
		{Name: "lvchange", Args: []string{"-aey", "vg0/vm1-disk", "--config", "x"}},
	} {
		err := c.Do(context.Background(), "POST", api.PathPeerLVM, req, nil, nil)
		var se *api.StatusError
		if !errors.As(err, &se) || se.Code != 400 {
			t.Fatalf("%v: %v, want HTTP 400", req, err)
		}
	}
	if got := rec2.take(); len(got) != 0 {
		t.Fatalf("refused commands ran: %v", got)
	}
}
