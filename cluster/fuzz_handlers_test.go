package cluster

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/rs/zerolog"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/config"
	"github.com/vmha/vmha/hypervisor"
	"github.com/vmha/vmha/model"
)

// fuzzRoutes are the API's routes that take input (a body or a path
// value), with the method; {x} is replaced by the fuzzed path value.
var fuzzRoutes = []struct{ method, path string }{
	{"POST", api.PathHostAction + "/{x}/evacuate"},
	{"POST", api.PathHostAction + "/{x}/online"},
	{"POST", api.PathHostAction + "/{x}/attr"},
	{"POST", api.PathHostAction + "/{x}/maintenance"},
	{"POST", api.PathHostAction + "/{x}/expect"},
	{"DELETE", api.PathHostAction + "/{x}"},
	{"POST", api.PathRules},
	{"GET", api.PathExplain + "/{x}"},
	{"POST", api.PathRebalance},
	{"POST", api.PathRebalance + "/cancel"},
	{"POST", api.PathPins + "/clear"},
	{"POST", api.PathFencePolicy},
	{"POST", api.PathFence + "/{x}"},
	{"POST", api.PathFence + "/{x}/confirm"},
	{"POST", api.PathFence + "/{x}/test"},
	{"POST", api.PathVMs},
	{"DELETE", api.PathVMs + "/{x}"},
	{"POST", api.PathVMs + "/{x}/migrate"},
	{"GET", api.PathVMs + "/{x}"},
	{"POST", api.PathVMs + "/{x}" + api.PathVMUpdateSuffix},
	{"GET", api.PathVMs + "/{x}" + api.PathVMDomainSuffix},
	{"GET", api.PathHostAction + "/{x}/domains/{x}" + api.PathDomainXMLSuffix},
	{"GET", api.PathLocalDomains + "/{x}" + api.PathDomainXMLSuffix},
	{"POST", api.PathLocalDomains + "/{x}" + api.PathDomainReleaseSuffix},
	{"POST", api.PathMigrationResult},
	{"POST", api.PathRegister},
	{"POST", api.PathObserve},
	{"GET", api.PathHostAction + "/{x}/migrations"},
	{"POST", api.PathNudge},
	{"POST", api.PathPeerLVM},
	{"GET", api.PathStatus},
	{"POST", api.PathFence + "/{x}/devices"},
	{"POST", api.PathFence + "/{x}/devices/accept"},
	{"POST", api.PathVMs + "/{x}/state"},
	{"POST", api.PathVMs + "/{x}/cleanup"},
	{"POST", api.PathVMs + "/{x}/relocate"},
	{"POST", api.PathClusterMaintenance},
	{"GET", api.PathEvents + "?since={x}"},
	{"GET", api.PathFailures + "?vm={x}"},
	{"GET", api.PathDoctor + "?local={x}"},
	{"GET", api.PathLocalDoctor + "?{x}"},
	{"POST", api.PathAlertTest},
	{"POST", api.PathTokens},
	{"DELETE", api.PathTokens + "/{x}"},
	{"GET", api.PathWhatIf + "?fail={x}"},
	{"GET", api.PathWhatIf + "?standby={x}&fail=h2"},
	{"GET", api.PathRecoveries + "?limit={x}"},
	{"GET", api.PathMigrations + "?{x}"},
}

var (
	fuzzOnce sync.Once
	fuzzNode *Node
	fuzzSrv  http.Handler
)

// fuzzCluster is one real node: raft in memory (a single voter, so it
// leads), the libvirt test driver, hosts without fence devices (a fuzzed
// fence fails at once instead of waiting on a BMC), the coordinator not
// running. Every handler runs for real behind authenticate, as the peer
// port serves it.
func fuzzCluster(t testing.TB) (*Node, http.Handler) {
	fuzzOnce.Do(func() {
		cfg := &config.Daemon{NodeName: "h1", Admission: "open"}
		cfg.Fencing.Timeout, cfg.Fencing.CallTimeout = time.Second, 100*time.Millisecond
		cfg.Agent.StopTimeout = time.Second
		cfg.Migration.MaxPerTarget, cfg.Migration.MaxCluster = 2, 4
		n := newMemNode(t, cfg)
		fuzzNode, fuzzSrv = n, n.authenticate(false, n.Handler(false))
	})
	return fuzzNode, fuzzSrv
}

// newMemNode is a real node without a network: raft in memory (a single
// voter, so it leads), the libvirt test driver, hosts h1 and h2 without
// fence devices and vm1 on h1; the coordinator and agent made, not running.
func newMemNode(t testing.TB, cfg *config.Daemon) *Node {
	t.Helper()
	hv, err := hypervisor.OpenLibvirt("test:///default", zerolog.Nop())
	if err != nil {
		t.Fatalf("test driver: %v", err)
	}
	n := &Node{cfg: cfg, log: zerolog.Nop(), fsm: NewFSM(), hv: hv, tags: map[string]string{tagBoot: "b"}, peers: newPeerClients(nil), peerRate: newRateLimiter(peerWriteRate, peerWriteBurst)}
	n.metrics = newMetrics(n)
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeName)
	rc.LogOutput = nil
	rc.LogLevel = "ERROR"
	rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout = 50*time.Millisecond, 50*time.Millisecond, 50*time.Millisecond
	store := raft.NewInmemStore()
	_, trans := raft.NewInmemTransport(raft.ServerAddress(cfg.NodeName))
	r, err := raft.NewRaft(rc, n.fsm, store, store, raft.NewInmemSnapshotStore(), trans)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{ID: rc.LocalID, Address: trans.LocalAddr()}}}).Error(); err != nil {
		t.Fatal(err)
	}
	n.raft = newRaftRef(r)
	n.coord = newCoordinator(n)
	n.agent = newAgent(n)
	for deadline := time.Now().Add(5 * time.Second); !n.IsLeader(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the in-memory raft did not lead")
		}
	}
	for _, c := range []*Command{
		{Op: OpRegisterHost, Host: &model.Host{Name: "h1", APIAddr: "127.0.0.1:1", MemoryMiB: 8192, CPUs: 8}},
		{Op: OpRegisterHost, Host: &model.Host{Name: "h2", APIAddr: "127.0.0.1:2", MemoryMiB: 8192, CPUs: 8}},
		{Op: OpAddVM, VM: &model.VM{Name: "vm1", XML: xmlFor("vm1"), MemoryMiB: 512}},
		{Op: OpPlace, Placements: []model.Placement{{VM: "vm1", Host: "h1"}}},
	} {
		if err := n.propose(c); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// FuzzHandlers sends any body, path value and principal headers to every
// route that takes input. Whatever comes in, a handler never panics, never
// answers 500, and an answer of 4xx changed nothing in the state: bad input
// is refused with a clear error before anything is proposed.
func FuzzHandlers(f *testing.F) {
	// r is a route's index in fuzzRoutes, by method and path: a seed
	// names the route its body was written for (indices written by hand
	// drifted when routes were added in the middle of the list).
	r := func(method, path string) uint8 {
		for i, rt := range fuzzRoutes {
			if rt.method == method && rt.path == path {
				return uint8(i)
			}
		}
		f.Fatalf("seed for %s %s: no such route in fuzzRoutes", method, path)
		return 0
	}
	seeds := []struct {
		route      uint8
		value      string
		body       []byte
		forwarded  string
		principal  string
		principalR string
	}{
		{r("POST", api.PathHostAction+"/{x}/evacuate"), "h2", []byte(`{"parallel":1}`), "", "", ""},
		{r("POST", api.PathHostAction+"/{x}/attr"), "h1", []byte(`{"key":"zone","value":"a"}`), "", "", ""},
		{r("POST", api.PathHostAction+"/{x}/attr"), "h1", []byte(`{"key":"#uname","value":"x"}`), "", "", ""},
		{r("POST", api.PathHostAction+"/{x}/maintenance"), "h2", []byte(`{"on":true,"reason":"r","requested_by":"x"}`), "h2", "alice", "operator"},
		{r("POST", api.PathRules), "", []byte(`{"yaml":"hosts: [{name: h9}]\nvms: []\n"}`), "", "", ""},
		{r("POST", api.PathRules), "", []byte(`{"yaml":"policy: {placement-strategy: nope}"}`), "", "", ""},
		{r("POST", api.PathFencePolicy), "", []byte(`{"enabled":false}`), "", "", ""},
		{r("POST", api.PathFence+"/{x}"), "h1", []byte(`{"action":"explode"}`), "", "", ""},
		{r("POST", api.PathVMs), "", []byte(`{"name":"vm2","xml":"<domain><name>vm2</name><memory>1</memory><memory>9999999</memory></domain>"}`), "", "", ""},
		{r("POST", api.PathVMs), "", []byte(`{"name":"../x","xml":"<domain/>"}`), "", "", ""},
		{r("POST", api.PathVMs+"/{x}/migrate"), "vm1", []byte(`{"to":"h1"}`), "", "", ""},
		{r("POST", api.PathMigrationResult), "", []byte(`{"vm":"vm1","migration_id":"m","outcome":"migrated","running_on":"h9"}`), "", "", ""},
		{r("POST", api.PathRegister), "", []byte(`{"host":{"name":"h3","api_addr":"x"},"fencing":{"devices":[{"name":"d","type":"agent","params":{"agent":"fence_virsh","ssh_path":"/bin/sh"}}],"levels":[["d"]]}}`), "h3", "", ""},
		{r("POST", api.PathObserve), "", []byte(`{"host":"h1","vms":{"vm1":{"state":"crashed"}}}`), "h2", "", ""},
		{r("POST", api.PathNudge), "", []byte(`{"term":18446744073709551615}`), "", "", ""},
		{r("POST", api.PathPeerLVM), "", []byte(`{"name":"sh","args":["-c","reboot"]}`), "", "", ""},
		{r("POST", api.PathHostAction+"/{x}/expect"), "h%00", []byte(`{`), "", "", ""},
		{r("POST", api.PathFence+"/{x}/devices"), "h2", []byte(`{"fencing":{"devices":[{"name":"d@h2","type":"libvirt","params":{"uri":"qemu+ext:///system?command=/bin/sh"}}],"levels":[["d@h2"]]},"requested_by":"x"}`), "", "", ""},
		{r("POST", api.PathFence+"/{x}/devices/accept"), "h2", []byte(`{"requested_by":"x"}`), "", "", ""},
		{r("POST", api.PathFence+"/{x}"), "h2", []byte(`{}`), "", "", ""},
		{r("POST", api.PathVMs+"/{x}/state"), "vm1", []byte(`{"state":"ignored","if":"-"}`), "", "", ""},
		{r("POST", api.PathVMs+"/{x}/cleanup"), "vm1", []byte(`{"host":"h9"}`), "", "", ""},
		{r("POST", api.PathVMs+"/{x}/relocate"), "vm1", []byte(`{"to":"h2"}`), "", "", ""},
		{r("POST", api.PathClusterMaintenance), "", []byte(`{"on":true}`), "", "", ""},
		{r("GET", api.PathEvents+"?since={x}"), "90m", nil, "", "", ""},
		{r("GET", api.PathFailures+"?vm={x}"), "vm1", nil, "", "", ""},
		{r("GET", api.PathDoctor+"?local={x}"), "1", nil, "", "alice", "operator"},
		{r("GET", api.PathLocalDoctor+"?{x}"), "x", nil, "h2", "", ""},
		{r("POST", api.PathAlertTest), "", []byte(`{"name":"nope","requested_by":"x"}`), "", "", ""},
		{r("POST", api.PathTokens), "", []byte(`{"owner":"alice","role":"operator","ttl_ns":3600000000000,"comment":"c"}`), "", "", ""},
		{r("POST", api.PathTokens), "", []byte(`{"owner":"alice\u0000","role":"readonly","ttl_ns":-1}`), "h2", "bob", "readonly"},
		{r("DELETE", api.PathTokens+"/{x}"), "000000000000", nil, "", "", ""},
		{r("DELETE", api.PathTokens+"/{x}"), "../x", []byte(`{"requested_by":"x"}`), "", "", ""},
		{r("GET", api.PathWhatIf+"?fail={x}"), "h1,h9", nil, "", "", ""},
		{r("GET", api.PathWhatIf+"?standby={x}&fail=h2"), "h1", nil, "", "", ""},
		{r("GET", api.PathRecoveries+"?limit={x}"), "7", nil, "", "", ""},
		{r("GET", api.PathMigrations+"?{x}"), "local=1", nil, "", "", ""},
		{r("POST", api.PathVMs+"/{x}/migrate"), "vm1", []byte(`{"to":"h2","dry_run":true}`), "", "", ""},
		{r("POST", api.PathVMs+"/{x}/relocate"), "vm1", []byte(`{"to":"h2","dry_run":true}`), "", "", ""},
	}
	for _, s := range seeds {
		f.Add(s.route, s.value, s.body, s.forwarded, s.principal, s.principalR)
	}
	f.Fuzz(func(t *testing.T, route uint8, value string, body []byte, forwarded, principal, principalRole string) {
		n, srv := fuzzCluster(t)
		rt := fuzzRoutes[int(route)%len(fuzzRoutes)]
		path := strings.ReplaceAll(rt.path, "{x}", url.PathEscape(value))
		r := httptest.NewRequest(rt.method, path, bytes.NewReader(body))
		for k, v := range map[string]string{api.HeaderForwarded: forwarded, headerPrincipal: principal, headerPrincipalRole: principalRole} {
			if v != "" && !strings.ContainsAny(v, "\r\n\x00") {
				r.Header.Set(k, v)
			}
		}
		before, _ := json.Marshal(n.fsm.Copy().Config)
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		if w.Code >= 500 && w.Code != http.StatusServiceUnavailable && w.Code != http.StatusBadGateway {
			t.Fatalf("%s %s %q: %d %s", rt.method, path, body, w.Code, w.Body.String())
		}
		if w.Code >= 400 && w.Code < 500 {
			after, _ := json.Marshal(n.fsm.Copy().Config)
			if !bytes.Equal(before, after) {
				t.Fatalf("%s %s %q answered %d but changed the configuration:\n%s\n%s", rt.method, path, body, w.Code, before, after)
			}
			var e api.Error
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == "" {
				t.Fatalf("%s %s: a %d without an error message: %q", rt.method, path, w.Code, w.Body.String())
			}
		}
	})
}
