package cluster

import (
	"encoding/json"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/config"
	"github.com/vmha/vmha/model"
)

// A report that says what the committed one says is acknowledged (the
// agent takes the answer as proof of a quorum) but not committed; its time
// is remembered and shown; any change to a VM is committed.
func TestUnchangedReportsAreNotCommitted(t *testing.T) {
	n := newMemNode(t, &config.Daemon{NodeName: "h1", Admission: "open"})
	defer func() { _ = n.raft.Shutdown().Error() }()
	t0 := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	report := func(at time.Time, vms map[string]model.VMObserve) int {
		t.Helper()
		body, _ := json.Marshal(model.Observation{Host: "h2", At: at, Boot: "b2", VMs: vms})
		r := httptest.NewRequest("POST", api.PathObserve, nil)
		r = r.WithContext(contextWithPrincipal(r, Principal{Name: "h2", Role: RoleHost, How: "certificate"}))
		w := httptest.NewRecorder()
		n.handleObserve(w, r, body)
		if w.Code != 204 {
			t.Fatalf("report at %s: %d %s", at, w.Code, w.Body)
		}
		return int(n.fsm.AppliedIndex())
	}
	running := map[string]model.VMObserve{"vm1": {State: "running", Since: t0}}
	first := report(t0, running)
	if got := report(t0.Add(15*time.Second), map[string]model.VMObserve{"vm1": {State: "running", Since: t0}}); got != first {
		t.Fatalf("an unchanged report was committed (applied %d → %d)", first, got)
	}
	var at time.Time
	n.fsm.Read(func(s *model.State) { at = s.Status.Observed["h2"].At })
	if !at.Equal(t0) {
		t.Fatalf("committed report at %s, want the first one's %s", at, t0)
	}
	if h := n.heard.snapshot()["h2"]; !h.Equal(t0.Add(15 * time.Second)) {
		t.Fatalf("heard h2 at %s, want the unchanged report's time", h)
	}
	// Status takes the later time.
	c := statusClock{now: t0.Add(20 * time.Second), stale: 45 * time.Second, heard: n.heard.snapshot()}
	var o *model.Observation
	n.fsm.Read(func(s *model.State) { o = s.Status.Observed["h2"] })
	if got := c.reportAt("h2", o); !got.Equal(t0.Add(15 * time.Second)) {
		t.Fatalf("status report time %s", got)
	}
	for name, vms := range map[string]map[string]model.VMObserve{
		"state":  {"vm1": {State: "shutoff", Since: t0}},
		"since":  {"vm1": {State: "running", Since: t0.Add(time.Second)}},
		"error":  {"vm1": {State: "running", Since: t0, Error: "x"}},
		"failed": {"vm1": {State: "running", Since: t0, FailedAt: t0}},
		"added":  {"vm1": {State: "running", Since: t0}, "vm2": {State: "running", Since: t0}},
		"gone":   {},
	} {
		before := int(n.fsm.AppliedIndex())
		if got := report(t0.Add(time.Minute), vms); got == before {
			t.Errorf("%s: a changed report was not committed", name)
		}
		report(t0, running) // back to the first, committed as a change
	}
}

// sameReport compares every field of a VM's report: a field added to
// VMObserve must be added there too, or a change in it would never be
// committed.
func TestSameReportKnowsEveryField(t *testing.T) {
	if n := reflect.TypeFor[model.VMObserve]().NumField(); n != 4 {
		t.Fatalf("model.VMObserve has %d fields; sameReport compares 4: compare the new one", n)
	}
	a := &model.Observation{Host: "h", Boot: "b", VMs: map[string]model.VMObserve{"v": {State: "running"}}}
	for name, b := range map[string]*model.Observation{
		"host": {Host: "g", Boot: "b", VMs: a.VMs},
		"boot": {Host: "h", Boot: "c", VMs: a.VMs},
		"nil":  nil,
	} {
		if sameReport(b, a) {
			t.Errorf("%s: taken for the same report", name)
		}
	}
	if !sameReport(a, &model.Observation{Host: "h", Boot: "b", At: time.Now(), VMs: map[string]model.VMObserve{"v": {State: "running"}}}) {
		t.Error("a report that differs only in its time is not the same")
	}
}

// A new leader counts a report's age from when it became leader: the
// committed report may be as old as the host's last change.
func TestReportAgeForANewLeader(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	o := &model.Observation{Host: "h2", At: t0.Add(-time.Hour)}
	for _, c := range []struct {
		name      string
		heard     time.Time
		listening time.Time
		old       bool
	}{
		{"an hour-old report, nothing heard, not the leader", time.Time{}, time.Time{}, true},
		{"leader for 10 s", time.Time{}, t0.Add(-10 * time.Second), false},
		{"leader for a minute and nothing heard", time.Time{}, t0.Add(-time.Minute), true},
		{"heard 5 s ago", t0.Add(-5 * time.Second), t0.Add(-time.Hour), false},
		{"heard a minute ago", t0.Add(-time.Minute), t0.Add(-time.Hour), true},
	} {
		clock := statusClock{now: t0, stale: 45 * time.Second, heard: map[string]time.Time{"h2": c.heard}, listening: c.listening}
		if got := clock.reportOld("h2", o); got != c.old {
			t.Errorf("%s: old %v, want %v", c.name, got, c.old)
		}
	}
}
