package cluster

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/config"
	"github.com/vmha/vmha/model"
)

// TestHostRecordsOps: maintenance, announcements and removal change the
// state as they say, and refuse what they must with nothing changed.
func TestHostRecordsOps(t *testing.T) {
	f := baseFSM(t)
	at := time.Date(2026, 11, 24, 1, 0, 0, 0, time.UTC)
	mustErr := func(c *Command, want string) {
		t.Helper()
		before := f.Copy()
		err, _ := applyAll(t, f, c)[0].(error)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: %v, want %q", c.Op, err, want)
		}
		if after := f.Copy(); !equalJSON(before, after) {
			t.Fatalf("%s: a refused command changed the state", c.Op)
		}
	}
	mustErr(&Command{Op: OpMaintenance, Name: "h9", Maintenance: &model.Maintenance{By: "op", At: at}}, `unknown host "h9"`)
	mustErr(&Command{Op: OpMaintenance, Name: "h1"}, "not in maintenance")
	if r := applyAll(t, f, &Command{Op: OpMaintenance, Name: "h1", Maintenance: &model.Maintenance{By: "op", At: at}})[0]; r != nil {
		t.Fatal(r)
	}
	if st := f.Copy(); st.Status.Maintenance["h1"] == nil {
		t.Fatal("maintenance not recorded")
	}
	mustErr(&Command{Op: OpExpectHost, Name: "h1", Expected: &model.Expected{By: "op", At: at}}, "already a member")
	mustErr(&Command{Op: OpExpectHost, Name: "bad name", Expected: &model.Expected{By: "op", At: at}}, "name")
	mustErr(&Command{Op: OpExpectHost, Name: "h3"}, "not expected")
	applyAll(t, f, &Command{Op: OpExpectHost, Name: "h3", Expected: &model.Expected{By: "op", At: at}})
	if st := f.Copy(); st.Config.Expected["h3"] == nil {
		t.Fatal("announcement not recorded")
	}
	// Registering the announced host ends the announcement.
	applyAll(t, f, &Command{Op: OpRegisterHost, Host: &model.Host{Name: "h3", APIAddr: "127.0.0.1:3", MemoryMiB: 1024}})
	if st := f.Copy(); st.Config.Expected["h3"] != nil || st.Config.Hosts["h3"] == nil {
		t.Fatal("registration did not replace the announcement")
	}
	// A host with a VM placed on it cannot go; without, it goes with
	// every record that names it.
	applyAll(t, f, &Command{Op: OpPlace, Placements: []model.Placement{{VM: "vm1", Host: "h1"}}})
	mustErr(&Command{Op: OpRemoveHost, Name: "h1"}, "still has VMs placed on it (vm1)")
	mustErr(&Command{Op: OpRemoveHost, Name: "h9"}, `unknown host "h9"`)
	applyAll(t, f, &Command{Op: OpPlace, Placements: []model.Placement{{VM: "vm1", Host: "h2"}}})
	if r := applyAll(t, f, &Command{Op: OpRemoveHost, Name: "h1"})[0]; r != nil {
		t.Fatal(r)
	}
	st := f.Copy()
	if st.Config.Hosts["h1"] != nil || st.Status.Hosts["h1"] != nil || st.Status.Maintenance["h1"] != nil || st.Config.VMs["vm1"].Prefer != "" {
		t.Fatalf("h1 left records behind: %+v %+v", st.Config.Hosts["h1"], st.Config.VMs["vm1"])
	}
}

func equalJSON(a, b *model.State) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// TestClosedAdmission: with admission closed, an unknown host's
// registration is refused before it reaches the log.
func TestClosedAdmission(t *testing.T) {
	n := &Node{cfg: &config.Daemon{NodeName: "h1", Admission: "closed"}, fsm: baseFSM(t), log: zerolog.Nop()}
	body, _ := json.Marshal(api.Register{Host: model.Host{Name: "stranger", APIAddr: "127.0.0.1:9"}})
	rec := httptest.NewRecorder()
	// The stranger's own certificate: it speaks for itself, and still is
	// not admitted.
	req := httptest.NewRequest("POST", api.PathRegister, nil)
	req = req.WithContext(context.WithValue(req.Context(), principalKey{}, Principal{Name: "stranger", Role: RoleHost, How: "certificate"}))
	n.handleRegister(rec, req, body)
	if rec.Code != 403 || !strings.Contains(rec.Body.String(), "vmha host add stranger") {
		t.Fatalf("a stranger's registration: %d %s", rec.Code, rec.Body.String())
	}
	if st := n.fsm.Copy(); st.Config.Hosts["stranger"] != nil {
		t.Fatal("the stranger was registered")
	}
}

// TestAdmissionAuto: open while the cluster forms, closed once
// bootstrap_expect hosts registered.
func TestAdmissionAuto(t *testing.T) {
	st := baseFSM(t).Copy() // two hosts
	for _, tc := range []struct {
		mode   string
		expect int
		closed bool
	}{
		{"auto", 3, false}, {"auto", 2, true}, {"open", 2, false}, {"closed", 3, true},
	} {
		why := admissionClosed(tc.mode, tc.expect, st)
		if (why != "") != tc.closed {
			t.Errorf("%s with bootstrap_expect %d and 2 hosts: %q, want closed=%v", tc.mode, tc.expect, why, tc.closed)
		}
	}
}
