package cluster

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/vmha/vmha/alerts"
	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/config"
	"github.com/vmha/vmha/model"
)

// The leader hands each event to each alert target once, in order: an
// agent script with Pacemaker's environment and a webhook; the history
// before alerts were set up is not sent; the mark it records lets the next
// round (or a new leader) go on without repeating.
func TestAlertsOncePerEvent(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "alert.sh")
	out := filepath.Join(dir, "alerts.log")
	_ = os.WriteFile(script, []byte("#!/bin/sh\necho \"$CRM_alert_node_sequence $CRM_alert_kind $CRM_alert_rsc$CRM_alert_node $CRM_alert_task\" >> \"$CRM_alert_recipient\"\n"), 0o755)
	var mu sync.Mutex
	var hooked []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p alerts.Payload
		_ = json.NewDecoder(r.Body).Decode(&p)
		mu.Lock()
		hooked = append(hooked, p.Event.Object+" "+p.Event.Action)
		mu.Unlock()
	}))
	defer hook.Close()
	cfg := &config.Daemon{NodeName: "h1", Admission: "open", ClusterName: "prod", Alerts: []config.Alert{
		{Name: "file", Path: script, Recipient: out, Kinds: []string{"resource", "cluster"}},
		{Name: "hook", Webhook: hook.URL, Kinds: []string{"cluster"}},
	}}
	n := newMemNode(t, cfg)
	defer func() { _ = n.raft.Shutdown().Error() }()
	targets := n.alertTargets()
	ctx := context.Background()
	if err := n.alertRound(ctx, targets); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("the history before alerts was sent")
	}
	if n.fsm.Copy().Status.AlertedSeq == 0 {
		t.Fatal("no mark recorded")
	}
	srv := n.authenticate(false, n.Handler(false))
	for _, c := range []struct {
		path string
		body any
	}{
		{api.PathVMs + "/vm1/state", api.VMStateRequest{State: "stopped"}},
		{api.PathClusterMaintenance, api.HostOp{On: true}},
	} {
		if w := call(t, srv, "POST", c.path, c.body); w.Code/100 != 2 {
			t.Fatalf("%s: %d %s", c.path, w.Code, w.Body)
		}
	}
	for range 2 { // the second round has nothing new
		if err := n.alertRound(ctx, targets); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := os.ReadFile(out)
	lines := strings.Split(strings.TrimSpace(string(got)), "\n")
	if len(lines) != 2 || !strings.HasSuffix(lines[0], "resource vm1 set-stopped") || !strings.HasSuffix(lines[1], "cluster  maintenance-on") {
		t.Fatalf("the agent got:\n%s", got)
	}
	mu.Lock()
	gotHook := strings.Join(hooked, ",")
	mu.Unlock()
	if gotHook != "cluster maintenance-on" {
		t.Fatalf("the webhook got %v", gotHook)
	}
	st := n.fsm.Copy().Status
	if st.AlertedSeq != st.EventSeq {
		t.Fatalf("mark %d, last event %d", st.AlertedSeq, st.EventSeq)
	}

	// vmha alert test: each target answers; an unknown one is a 404.
	w := call(t, srv, "POST", api.PathAlertTest, api.AlertTest{})
	var res []api.AlertResult
	if err := json.Unmarshal(w.Body.Bytes(), &res); err != nil || len(res) != 2 || !res[0].OK || !res[1].OK {
		t.Fatalf("alert test: %d %s", w.Code, w.Body)
	}
	if w := call(t, srv, "POST", api.PathAlertTest, api.AlertTest{Name: "nope"}); w.Code != http.StatusNotFound {
		t.Fatalf("unknown alert: %d", w.Code)
	}
	if e := (model.Event{Kind: model.EventCluster}); alerts.KindOf(&e) != "cluster" {
		t.Fatal("kind")
	}
}
