package cluster

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/cluster/command"
	"github.com/vmha/vmha/cluster/reconcile"
	"github.com/vmha/vmha/hypervisor"
	"github.com/vmha/vmha/model"
)

var alice = Principal{Name: "alice (uid 1000)", Role: RoleOperator, How: "socket", On: "h1"}

const aliceOnSocket = "alice (uid 1000) on h1"

// vmCall calls handler h as alice would through h1's socket.
func vmCall(t *testing.T, h handlerFunc, method, path string, vals map[string]string, body any) *httptest.ResponseRecorder {
	t.Helper()
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	if path == "" {
		path = api.PathVMs + "/x"
	}
	req := httptest.NewRequest(method, path, nil)
	for k, v := range vals {
		req.SetPathValue(k, v)
	}
	req = req.WithContext(contextWithPrincipal(req, alice))
	rec := httptest.NewRecorder()
	h(rec, req, b)
	return rec
}

func decodeAs[T any](t *testing.T, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("answer %d %q: %v", rec.Code, rec.Body.String(), err)
	}
	return v
}

func lastEvent(n *Node) model.Event {
	var e model.Event
	n.fsm.Read(func(s *model.State) {
		if k := len(s.Status.Events); k > 0 {
			e = s.Status.Events[k-1]
		}
	})
	return e
}

func stateJSON(t *testing.T, n *Node) string {
	t.Helper()
	b, err := json.Marshal(n.fsm.Copy())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// placeOn places vm on host and has host report it running since since.
func placeOn(t *testing.T, n *Node, vm, host string, since time.Time) {
	t.Helper()
	for _, c := range []*Command{
		{Op: OpPlace, Placements: []model.Placement{{VM: vm, Host: host, Reason: "test"}}},
		{Op: OpObserve, Observation: &model.Observation{Host: host, At: since, VMs: map[string]model.VMObserve{vm: {State: "running", Since: since}}}},
	} {
		if err := n.propose(c); err != nil {
			t.Fatal(err)
		}
	}
}

const vm1Bigger = `<domain type='test'><name>vm1</name><memory unit='MiB'>1024</memory><vcpu>2</vcpu></domain>`

// TestUpdateVMRefusesBadInput: bad XML and a name that is not the VM's are
// refused with the field named, and nothing changes; so does a dry run.
func TestUpdateVMRefusesBadInput(t *testing.T) {
	n := handlerNode(t)
	path := api.PathVMs + "/vm1" + api.PathVMUpdateSuffix
	for _, tc := range []struct {
		name, vm, xml string
		code          int
		field, want   string
	}{
		{"broken XML", "vm1", "<domain type='test'><name>vm1</name>", 400, "xml", "xml:"},
		{"no memory", "vm1", "<domain type='test'><name>vm1</name></domain>", 400, "xml", "memory"},
		{"name mismatch", "vm1", strings.Replace(vm1Bigger, "<name>vm1<", "<name>web9<", 1), 400, "xml", `domain <name> is "web9", but the VM is called "vm1"`},
		{"too big for any host", "vm1", strings.Replace(vm1Bigger, ">1024<", ">65536<", 1), 400, "xml", ""},
		{"unknown vm", "nosuch", vm1Bigger, 404, "", `unknown vm "nosuch"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := stateJSON(t, n)
			rec := vmCall(t, n.handleUpdateVM, "POST", path, map[string]string{"name": tc.vm}, api.UpdateVM{XML: tc.xml})
			e := decodeAs[api.Error](t, rec)
			if rec.Code != tc.code || e.Field != tc.field || !strings.Contains(e.Error, tc.want) {
				t.Errorf("answer %d %+v, want %d naming field %q and saying %q", rec.Code, e, tc.code, tc.field, tc.want)
			}
			if after := stateJSON(t, n); after != before {
				t.Error("a refused update changed the state")
			}
		})
	}
	t.Run("dry run", func(t *testing.T) {
		before := stateJSON(t, n)
		rec := vmCall(t, n.handleUpdateVM, "POST", path, map[string]string{"name": "vm1"}, api.UpdateVM{XML: vm1Bigger, DryRun: true})
		res := decodeAs[api.VMUpdateResult](t, rec)
		if rec.Code != 200 || !res.Changed || !res.DryRun || !strings.Contains(res.Diff, "+<domain type='test'><name>vm1</name><memory unit='MiB'>1024</memory>") {
			t.Errorf("dry run answer %d %+v", rec.Code, res)
		}
		if after := stateJSON(t, n); after != before {
			t.Error("a dry run changed the state")
		}
	})
	t.Run("same XML", func(t *testing.T) {
		before := stateJSON(t, n)
		rec := vmCall(t, n.handleUpdateVM, "POST", path, map[string]string{"name": "vm1"}, api.UpdateVM{XML: xmlFor("vm1")})
		if res := decodeAs[api.VMUpdateResult](t, rec); rec.Code != 200 || res.Changed || res.Diff != "" {
			t.Errorf("same XML: %d %+v", rec.Code, res)
		}
		if after := stateJSON(t, n); after != before {
			t.Error("an update to the same XML changed the state")
		}
	})
}

// TestUpdateVMRunning: the definition of a running VM is replaced and
// recorded with the principal; vm show says it runs with the previous one
// until it starts again, and stops saying so once its host reports it
// started after the update.
func TestUpdateVMRunning(t *testing.T) {
	n := handlerNode(t)
	placeOn(t, n, "vm1", "h1", time.Now().Add(-time.Hour))
	rec := vmCall(t, n.handleUpdateVM, "POST", "", map[string]string{"name": "vm1"}, api.UpdateVM{XML: vm1Bigger, XMLPath: "/etc/vmha/vm1.xml"})
	res := decodeAs[api.VMUpdateResult](t, rec)
	if rec.Code != 200 || !res.Changed || !res.PendingRestart || res.Host != "h1" || !strings.Contains(res.Message, "previous definition until its next start") {
		t.Fatalf("update answer %d %+v", rec.Code, res)
	}
	e := lastEvent(n)
	if e.Kind != model.EventVM || e.Object != "vm1" || e.Action != "update" || e.Principal != aliceOnSocket {
		t.Errorf("event %+v, want vm1 update by %s", e, aliceOnSocket)
	}
	var vm model.VM
	n.fsm.Read(func(s *model.State) { vm = *s.Config.VMs["vm1"] })
	if vm.XML != vm1Bigger || vm.MemoryMiB != 1024 || vm.VCPUs != 2 || vm.PreviousXML != xmlFor("vm1") || !vm.PendingRestart || vm.UpdatedBy != aliceOnSocket || vm.RestartRequested {
		t.Errorf("vm after update: %+v", vm)
	}
	show := decodeAs[api.VMDefinition](t, vmCall(t, n.handleShowVM, "GET", "", map[string]string{"name": "vm1"}, nil))
	if !show.PendingRestart || show.PlacedOn != "h1" || show.XML != vm1Bigger || show.UpdatedAt == nil ||
		!strings.Contains(show.Notice, "by "+aliceOnSocket+"; running with the previous definition until restarted") {
		t.Errorf("vm show: %+v", show)
	}
	// A second update keeps the definition it still runs with.
	third := strings.Replace(vm1Bigger, ">1024<", ">2048<", 1)
	if rec := vmCall(t, n.handleUpdateVM, "POST", "", map[string]string{"name": "vm1"}, api.UpdateVM{XML: third, Restart: true}); rec.Code != 200 {
		t.Fatalf("second update: %d %s", rec.Code, rec.Body)
	}
	n.fsm.Read(func(s *model.State) { vm = *s.Config.VMs["vm1"] })
	if vm.PreviousXML != xmlFor("vm1") || !vm.RestartRequested {
		t.Errorf("after a second update: previous %q, restart %v", vm.PreviousXML, vm.RestartRequested)
	}
	// Started again after the update: running with the new definition.
	if err := n.propose(&Command{Op: OpObserve, Observation: &model.Observation{Host: "h1", At: time.Now(), VMs: map[string]model.VMObserve{"vm1": {State: "running", Since: time.Now().Add(time.Second)}}}}); err != nil {
		t.Fatal(err)
	}
	show = decodeAs[api.VMDefinition](t, vmCall(t, n.handleShowVM, "GET", "", map[string]string{"name": "vm1"}, nil))
	if show.PendingRestart || strings.Contains(show.Notice, "previous definition") || !strings.Contains(show.Notice, "definition changed at") {
		t.Errorf("vm show after the restart: %+v", show)
	}
	// The next update replaces the definition it runs with now.
	if rec := vmCall(t, n.handleUpdateVM, "POST", "", map[string]string{"name": "vm1"}, api.UpdateVM{XML: vm1Bigger}); rec.Code != 200 {
		t.Fatalf("third update: %d %s", rec.Code, rec.Body)
	}
	n.fsm.Read(func(s *model.State) { vm = *s.Config.VMs["vm1"] })
	if vm.PreviousXML != third || !vm.PendingRestart || vm.RestartRequested {
		t.Errorf("after an update of a restarted VM: previous %q, pending %v, restart %v", vm.PreviousXML, vm.PendingRestart, vm.RestartRequested)
	}
}

// TestAddRemoveRecordPrincipal: add and remove are recorded with the
// authenticated principal.
func TestAddRemoveRecordPrincipal(t *testing.T) {
	n := handlerNode(t)
	rec := vmCall(t, n.handleAddVM, "POST", api.PathVMs, nil, api.AddVM{Name: "vm2", XML: xmlFor("vm2")})
	if rec.Code != http.StatusCreated {
		t.Fatalf("add: %d %s", rec.Code, rec.Body)
	}
	if e := lastEvent(n); e.Action != "add" || e.Object != "vm2" || e.Principal != aliceOnSocket {
		t.Errorf("add event %+v", e)
	}
	rec = vmCall(t, n.handleRemoveVM, "DELETE", "", map[string]string{"name": "vm2"}, nil)
	if rec.Code != http.StatusNoContent {
		t.Fatalf("remove: %d %s", rec.Code, rec.Body)
	}
	if e := lastEvent(n); e.Action != "remove" || e.Object != "vm2" || e.Principal != aliceOnSocket {
		t.Errorf("remove event %+v", e)
	}
}

// fakePeer is host h3's API: its domains' XML and the release call.
type fakePeer struct {
	mu       sync.Mutex
	released []string
	by       []string
	fail     bool
}

func (f *fakePeer) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+api.PathLocalDomains+"/{domain}"+api.PathDomainXMLSuffix, func(w http.ResponseWriter, r *http.Request) {
		d := r.PathValue("domain")
		if d != "vm3" {
			writeErr(w, http.StatusNotFound, "", &NotFoundError{Kind: "domain", Name: d + " on h3"})
			return
		}
		// libvirt's own rendering: a uuid, an id, a default device.
		writeJSON(w, http.StatusOK, api.DomainXML{Host: "h3", Domain: d, State: "running", XML: `<domain type='test' id='4'>
  <name>vm3</name>
  <uuid>6f2a0b8e-4c1d-4f0a-9a51-2d7c3e1b9f00</uuid>
  <memory unit='KiB'>786432</memory>
  <vcpu placement='static'>1</vcpu>
  <os><type arch='x86_64'>hvm</type></os>
  <devices><memballoon model='none'/></devices>
</domain>`})
	})
	mux.HandleFunc("POST "+api.PathLocalDomains+"/{domain}"+api.PathDomainReleaseSuffix, func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.fail {
			writeErr(w, http.StatusServiceUnavailable, "", errNoLeader)
			return
		}
		f.released = append(f.released, r.PathValue("domain"))
		f.by = append(f.by, r.Header.Get(headerPrincipal)+" via "+r.Header.Get(api.HeaderForwarded))
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

// withPeer adds host h3, served by a fake peer.
func withPeer(t *testing.T, n *Node) *fakePeer {
	t.Helper()
	f := &fakePeer{}
	srv := httptest.NewServer(f.handler())
	t.Cleanup(srv.Close)
	if err := n.propose(&Command{Op: OpRegisterHost, Host: &model.Host{Name: "h3", APIAddr: strings.TrimPrefix(srv.URL, "http://"), MemoryMiB: 4096}}); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestAdoptFromLibvirt: vm add --from-libvirt places the VM where its
// domain runs in the entry that adds it (its agent adopts it there); a
// domain the host does not have is refused and changes nothing. vm diff
// then finds nothing but libvirt's own additions.
func TestAdoptFromLibvirt(t *testing.T) {
	n := handlerNode(t)
	withPeer(t, n)
	x := `<domain type='test'><name>vm3</name><memory unit='MiB'>768</memory><vcpu>1</vcpu><os><type>hvm</type></os></domain>`
	before := stateJSON(t, n)
	rec := vmCall(t, n.handleAddVM, "POST", api.PathVMs, nil, api.AddVM{Name: "vm4", XML: strings.ReplaceAll(x, "vm3", "vm4"), AdoptFrom: "h3"})
	if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "vm4 on h3") {
		t.Errorf("adopting a domain h3 lacks: %d %s", rec.Code, rec.Body)
	}
	rec = vmCall(t, n.handleAddVM, "POST", api.PathVMs, nil, api.AddVM{Name: "vm3", XML: x, AdoptFrom: "h9"})
	if e := decodeAs[api.Error](t, rec); rec.Code != 400 || e.Field != "adopt_from" {
		t.Errorf("adopting from an unknown host: %d %+v", rec.Code, e)
	}
	if after := stateJSON(t, n); after != before {
		t.Fatal("a refused adoption changed the state")
	}
	rec = vmCall(t, n.handleAddVM, "POST", api.PathVMs, nil, api.AddVM{Name: "vm3", XML: x, AdoptFrom: "h3"})
	if rec.Code != http.StatusCreated {
		t.Fatalf("adopt: %d %s", rec.Code, rec.Body)
	}
	var p *model.Placement
	n.fsm.Read(func(s *model.State) { p = s.Status.Placements["vm3"] })
	if p == nil || p.Host != "h3" || p.Generation == 0 {
		t.Fatalf("placement after adoption: %+v, want h3", p)
	}
	if e := lastEvent(n); e.Action != "adopt" || e.Host != "h3" || e.Principal != aliceOnSocket {
		t.Errorf("adopt event %+v", e)
	}
	rec = vmCall(t, n.handleVMDomainDiff, "GET", "", map[string]string{"name": "vm3"}, nil)
	d := decodeAs[api.DomainDiff](t, rec)
	if rec.Code != 200 || !d.Same || d.Host != "h3" || d.State != "running" {
		t.Errorf("vm diff after adoption: %d %+v", rec.Code, d)
	}
	// The replicated definition changes: vm diff shows it.
	if rec := vmCall(t, n.handleUpdateVM, "POST", "", map[string]string{"name": "vm3"}, api.UpdateVM{XML: strings.Replace(x, ">768<", ">1024<", 1)}); rec.Code != 200 {
		t.Fatalf("update: %d %s", rec.Code, rec.Body)
	}
	d = decodeAs[api.DomainDiff](t, vmCall(t, n.handleVMDomainDiff, "GET", "", map[string]string{"name": "vm3"}, nil))
	if d.Same || !strings.Contains(d.Diff, `-  <memory unit="KiB">1048576</memory>`) || !strings.Contains(d.Diff, `+  <memory unit="KiB">786432</memory>`) {
		t.Errorf("vm diff after update: %+v", d)
	}
}

// TestRemoveKeepRunning: the leader has the VM's host release the domain,
// in the operator's name, before it removes the VM; a host that cannot be
// asked leaves the VM in the cluster.
func TestRemoveKeepRunning(t *testing.T) {
	n := handlerNode(t)
	f := withPeer(t, n)
	placeOn(t, n, "vm1", "h3", time.Now())
	f.fail = true
	rec := vmCall(t, n.handleRemoveVM, "DELETE", "", map[string]string{"name": "vm1"}, api.RemoveVM{KeepRunning: true})
	if rec.Code != http.StatusBadGateway || !strings.Contains(rec.Body.String(), "vm vm1 not removed") {
		t.Errorf("remove with an unreachable host: %d %s", rec.Code, rec.Body)
	}
	n.fsm.Read(func(s *model.State) {
		if s.Config.VMs["vm1"] == nil {
			t.Error("vm1 removed although its host did not release it")
		}
	})
	f.fail = false
	rec = vmCall(t, n.handleRemoveVM, "DELETE", "", map[string]string{"name": "vm1"}, api.RemoveVM{KeepRunning: true})
	if rec.Code != http.StatusNoContent {
		t.Fatalf("remove --keep-running: %d %s", rec.Code, rec.Body)
	}
	if len(f.released) != 1 || f.released[0] != "vm1" || f.by[0] != alice.Name+" via h1" {
		t.Errorf("release calls %v by %v", f.released, f.by)
	}
	n.fsm.Read(func(s *model.State) {
		if s.Config.VMs["vm1"] != nil {
			t.Error("vm1 still in the cluster")
		}
	})
}

// TestAgentDefinitions: the pass's plan leaves released domains alone, and
// restarts are due once per update, only where the VM runs.
func TestAgentDefinitions(t *testing.T) {
	plan := reconcile.Plan{Adopt: []string{"a", "b"}, Starts: []string{"b", "c"}, Stops: []reconcile.Stop{{VM: "b", Undefine: true}, {VM: "d"}}}
	got := withoutReleased(plan, map[string]bool{"b": true})
	if len(got.Adopt) != 1 || len(got.Starts) != 1 || len(got.Stops) != 1 || got.Stops[0].VM != "d" {
		t.Errorf("withoutReleased: %+v", got)
	}
	at := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	st := model.NewState()
	for _, name := range []string{"run", "off", "starting", "norestart", "elsewhere", "done"} {
		st.Config.VMs[name] = &model.VM{Name: name, PendingRestart: true, RestartRequested: name != "norestart", UpdatedAt: at}
		host := "h1"
		if name == "elsewhere" {
			host = "h2"
		}
		st.Status.Placements[name] = &model.Placement{VM: name, Host: host}
	}
	running := hypervisor.Domain{State: hypervisor.StateRunning}
	doms := map[string]hypervisor.Domain{"run": running, "starting": {State: hypervisor.StateShutoff}, "norestart": running, "elsewhere": running, "done": running}
	todo, record := restartsDue(st, "h1", doms, []string{"starting"}, nil, map[string]time.Time{"done": at})
	if len(todo) != 1 || todo[0] != "run" {
		t.Errorf("restarts due: %v, want [run]", todo)
	}
	if len(record) != 2 || !record["off"].Equal(at) || !record["starting"].Equal(at) {
		t.Errorf("recorded without a restart: %v, want off and starting", record)
	}
	if todo, _ := restartsDue(st, "h1", doms, nil, map[string]bool{"run": true}, map[string]time.Time{"done": at}); len(todo) != 0 {
		t.Errorf("a released domain is due a restart: %v", todo)
	}
	_ = command.OpUpdateVM
}
