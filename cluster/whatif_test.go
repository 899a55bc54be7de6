package cluster

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/config"
	"github.com/vmha/vmha/model"
)

// The planning questions answer bad input with a 400 that names it, and
// well-formed questions with their documents.
func TestWhatIfAPI(t *testing.T) {
	n := newMemNode(t, &config.Daemon{NodeName: "h1", Admission: "open"})
	defer func() { _ = n.raft.Shutdown().Error() }()
	srv := n.authenticate(false, n.Handler(false))
	for _, bad := range []struct{ path, want string }{
		{api.PathWhatIf + "?fail=h9", `unknown host \"h9\"`},
		{api.PathWhatIf + "?standby=h1,h7", `unknown host \"h7\"`},
		{api.PathWhatIf + "?fail=", "empty host name"},
		{api.PathWhatIf + "?fail=h1,,h2", "empty host name"},
		{api.PathWhatIf + "?fail=..%2Fx", "host"},
		{api.PathWhatIf, "what if what?"},
		{api.PathWhatIf + "?fial=h1", `unknown parameter \"fial\"`},
		{api.PathWhatIf + "?fail=h1&standby=h1", "one or the other"},
		{api.PathRecoveries + "?limit=0", "not a positive number"},
		{api.PathRecoveries + "?limit=x", "not a positive number"},
		{api.PathRecoveries + "?host=h1", `unknown parameter \"host\"`},
	} {
		w := call(t, srv, "GET", bad.path, nil)
		if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), bad.want) {
			t.Errorf("GET %s: %d %s, want 400 with %q", bad.path, w.Code, w.Body, bad.want)
		}
	}
	w := call(t, srv, "GET", api.PathWhatIf+"?fail=h2&standby=h1", nil)
	var wi api.WhatIf
	if err := json.Unmarshal(w.Body.Bytes(), &wi); err != nil || w.Code != http.StatusOK || len(wi.Hosts) != 2 || wi.Actions == nil || wi.Stranded == nil {
		t.Fatalf("whatif: %d %s", w.Code, w.Body)
	}
	for _, path := range []string{api.PathRecoveries, api.PathMigrations} {
		if w := call(t, srv, "GET", path, nil); w.Code != http.StatusOK || strings.TrimSpace(w.Body.String()) != "[]" {
			t.Errorf("GET %s: %d %s, want []", path, w.Code, w.Body)
		}
	}
	// Moves under way: one from this host (no job yet), one from a host
	// that does not answer: each listed, with a note, no error.
	for _, c := range []*Command{
		{Op: OpAddVM, VM: &model.VM{Name: "vm2", XML: xmlFor("vm2"), MemoryMiB: 512}},
		{Op: OpPlace, Placements: []model.Placement{{VM: "vm2", Host: "h1", MigrateFrom: "h2", MigrationID: "mig-2"}}},
		{Op: OpPlace, Placements: []model.Placement{{VM: "vm1", Host: "h2", MigrateFrom: "h1", MigrationID: "mig-1"}}},
	} {
		if err := n.propose(c); err != nil {
			t.Fatal(err)
		}
	}
	w = call(t, srv, "GET", api.PathMigrations, nil)
	var ms []api.Migration
	if err := json.Unmarshal(w.Body.Bytes(), &ms); err != nil || w.Code != http.StatusOK || len(ms) != 2 {
		t.Fatalf("migrations: %d %s", w.Code, w.Body)
	}
	if ms[0].VM != "vm1" || ms[0].How != "live" || !strings.Contains(ms[0].Note, "no job") ||
		ms[1].VM != "vm2" || !strings.Contains(ms[1].Note, "h2 did not answer") || ms[1].Progress != nil {
		t.Fatalf("migrations %+v", ms)
	}
}

// A dry run goes through the checks of the real call: on every refused
// case both answer the same status and the same error, and neither
// changes anything.
func TestDryRunAgreesWithTheRealCall(t *testing.T) {
	n := newMemNode(t, &config.Daemon{NodeName: "h1", Admission: "open"})
	defer func() { _ = n.raft.Shutdown().Error() }()
	srv := n.authenticate(false, n.Handler(false))
	before, _ := json.Marshal(n.fsm.Copy())
	for _, c := range []struct {
		vm, call string
		req      api.MigrateRequest
	}{
		{"nope", "migrate", api.MigrateRequest{}},
		{"vm1", "migrate", api.MigrateRequest{}},            // h1 is not alive in gossip here
		{"vm1", "migrate", api.MigrateRequest{To: "h9"}},    //
		{"vm1", "migrate", api.MigrateRequest{PinTTL: -1}},  //
		{"vm1", "migrate", api.MigrateRequest{PinTTL: 100}}, // a lifetime without a pin
		{"vm1", "relocate", api.MigrateRequest{}},
		{"vm1", "relocate", api.MigrateRequest{To: "h9"}},
		{"vm1", "relocate", api.MigrateRequest{To: "h1"}},
		{"vm1", "relocate", api.MigrateRequest{To: "h2"}},
		{"nope", "relocate", api.MigrateRequest{To: "h2"}},
	} {
		path := api.PathVMs + "/" + c.vm + "/" + c.call
		done := call(t, srv, "POST", path, c.req)
		c.req.DryRun = true
		dry := call(t, srv, "POST", path, c.req)
		if done.Code < 400 || dry.Code != done.Code || dry.Body.String() != done.Body.String() {
			t.Errorf("%s %+v: real call %d %s; dry run %d %s", path, c.req, done.Code, done.Body, dry.Code, dry.Body)
		}
	}
	if after, _ := json.Marshal(n.fsm.Copy()); !bytes.Equal(before, after) {
		t.Fatal("a refused call or a dry run changed the state")
	}
}
