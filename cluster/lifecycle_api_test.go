package cluster

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/config"
	"github.com/vmha/vmha/model"
)

func call(t *testing.T, srv http.Handler, method, path string, body any) *httptest.ResponseRecorder {
	t.Helper()
	var b []byte
	if body != nil {
		b, _ = json.Marshal(body)
	}
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, httptest.NewRequest(method, path, bytes.NewReader(b)))
	return w
}

// The lifecycle API end to end on a real (in-memory) node: the target is
// kept, a stale compare-and-set and bad input are refused and change
// nothing, cleanup and cluster maintenance are recorded, and the event log
// names the authenticated principal, not the one the client claims.
func TestLifecycleAPI(t *testing.T) {
	n := newMemNode(t, &config.Daemon{NodeName: "h1", Admission: "open"})
	defer func() { _ = n.raft.Shutdown().Error() }()
	srv := n.authenticate(false, n.Handler(false))

	w := call(t, srv, "POST", api.PathVMs+"/vm1/state", api.VMStateRequest{State: "stopped", Reason: "patching", RequestedBy: "mallory"})
	if w.Code != http.StatusOK {
		t.Fatalf("stop: %d %s", w.Code, w.Body)
	}
	var tg api.VMTarget
	_ = json.Unmarshal(w.Body.Bytes(), &tg)
	if tg.Target != model.TargetStopped || tg.Source != "operator" {
		t.Fatalf("answer %+v", tg)
	}
	before, _ := json.Marshal(n.fsm.Copy().Config)
	for _, bad := range []struct {
		path string
		body any
		code int
	}{
		{api.PathVMs + "/vm1/state", api.VMStateRequest{State: "started", If: "-"}, http.StatusConflict},
		{api.PathVMs + "/vm1/state", api.VMStateRequest{State: "paused"}, http.StatusBadRequest},
		{api.PathVMs + "/vm1/state", api.VMStateRequest{State: "started", If: "bogus"}, http.StatusBadRequest},
		{api.PathVMs + "/nope/state", api.VMStateRequest{State: "started"}, http.StatusNotFound},
		{api.PathVMs + "/vm1/cleanup", api.Cleanup{Host: "../x"}, http.StatusBadRequest},
		{api.PathVMs + "/vm1/relocate", api.MigrateRequest{}, http.StatusBadRequest},
		{api.PathVMs + "/vm1/relocate", api.MigrateRequest{To: "h2"}, http.StatusConflict}, // stopped: only a started VM moves
	} {
		if w := call(t, srv, "POST", bad.path, bad.body); w.Code != bad.code || !strings.Contains(w.Body.String(), "error") {
			t.Errorf("%s %+v: %d %s, want %d", bad.path, bad.body, w.Code, w.Body, bad.code)
		}
	}
	if after, _ := json.Marshal(n.fsm.Copy().Config); !bytes.Equal(before, after) {
		t.Fatal("a refused request changed the configuration")
	}
	for _, ok := range []struct {
		path string
		body any
	}{
		{api.PathVMs + "/vm1/state", api.VMStateRequest{State: "started", If: "stopped"}},
		{api.PathVMs + "/vm1/cleanup", api.Cleanup{}},
		{api.PathClusterMaintenance, api.HostOp{On: true, Reason: "network work"}},
	} {
		if w := call(t, srv, "POST", ok.path, ok.body); w.Code/100 != 2 {
			t.Fatalf("%s: %d %s", ok.path, w.Code, w.Body)
		}
	}
	if m := n.fsm.Copy().Config.Maintenance; m == nil || m.Reason != "network work" {
		t.Fatalf("cluster maintenance %+v", m)
	}
	w = call(t, srv, "GET", api.PathEvents+"?vm=vm1", nil)
	var evs api.Events
	if err := json.Unmarshal(w.Body.Bytes(), &evs); err != nil || w.Code != http.StatusOK {
		t.Fatalf("events: %d %s", w.Code, w.Body)
	}
	var got []string
	for _, e := range evs.Events {
		got = append(got, e.Action)
		if e.Action == "set-stopped" && (e.Reason != "patching" || !strings.HasPrefix(e.Principal, "unauthenticated") || !strings.Contains(e.Principal, `[says "mallory"]`)) {
			t.Errorf("set-stopped recorded as %+v: the principal must be the authenticated one, the claim kept apart", e)
		}
	}
	if strings.Join(got, ",") != "add,start,set-stopped,set-started,cleanup" {
		t.Fatalf("vm1's events: %v", got)
	}
	w = call(t, srv, "GET", api.PathEvents+"?kind=cluster&after=1", nil)
	_ = json.Unmarshal(w.Body.Bytes(), &evs)
	if len(evs.Events) != 1 || evs.Events[0].Action != "maintenance-on" || evs.Last < evs.Events[0].Seq {
		t.Fatalf("cluster events: %+v", evs)
	}
	for _, q := range []string{"?since=yesterday", "?after=-1", "?limit=0", "?kind=nope"} {
		if w := call(t, srv, "GET", api.PathEvents+q, nil); w.Code != http.StatusBadRequest {
			t.Errorf("events%s: %d, want 400", q, w.Code)
		}
	}
}

func TestEventQuery(t *testing.T) {
	now := time.Date(2026, 12, 5, 3, 12, 0, 0, time.UTC)
	log := []model.Event{
		{Seq: 1, At: now.Add(-3 * time.Hour), Kind: model.EventHost, Object: "h2", Action: "lost", RecoveryID: "rcv-1"},
		{Seq: 2, At: now.Add(-3 * time.Hour), Kind: model.EventVM, Object: "web1", Action: "recover", Host: "h1", RecoveryID: "rcv-1"},
		{Seq: 3, At: now.Add(-time.Hour), Kind: model.EventVM, Object: "db1", Action: "migrate", Host: "h2"},
		{Seq: 4, At: now, Kind: model.EventRules, Object: "rules", Action: "apply"},
	}
	for q, want := range map[string]string{
		"":                           "1,2,3,4",
		"since=2h":                   "3,4",
		"since=2026-12-05T02:00:00Z": "3,4",
		"host=h2":                    "1,3",
		"vm=web1":                    "2",
		"recovery=rcv-1":             "1,2",
		"after=2":                    "3,4",
		"limit=1":                    "4",
		"kind=vm&host=h1":            "2",
		"vm=h2":                      "",
	} {
		vals, _ := parseQuery(q)
		eq, err := ParseEventQuery(vals, now)
		if err != nil {
			t.Fatalf("%q: %v", q, err)
		}
		var got []string
		for _, e := range eq.Select(log, 4).Events {
			got = append(got, string(rune('0'+e.Seq)))
		}
		if strings.Join(got, ",") != want {
			t.Errorf("%q: %v, want %s", q, got, want)
		}
	}
}

func parseQuery(q string) (map[string][]string, error) {
	r := httptest.NewRequest("GET", "/?"+q, nil)
	return r.URL.Query(), nil
}

// vmha fence HOST on a host without a fence device is refused before the
// host is marked lost (it used to be marked lost, then answer 500).
func TestFenceWithoutDeviceChangesNothing(t *testing.T) {
	n := newMemNode(t, &config.Daemon{NodeName: "h1", Admission: "open"})
	defer func() { _ = n.raft.Shutdown().Error() }()
	srv := n.authenticate(false, n.Handler(false))
	w := call(t, srv, "POST", api.PathFence+"/h2", api.FenceRequest{})
	if w.Code != http.StatusConflict || !strings.Contains(w.Body.String(), "has no fence device") {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if hs := n.fsm.Copy().Status.Hosts["h2"]; hs != nil && hs.State != model.HostAlive {
		t.Fatalf("h2 is %s after a refused fence", hs.State)
	}
}
