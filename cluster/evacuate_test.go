package cluster

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/config"
	"github.com/vmha/vmha/model"
)

// The host admin handlers refuse with the right code and a message that
// says why, and change nothing when they refuse: vmha host online ends
// only the evacuation it names (409 for another or none, 400 for a body
// that is not JSON), an evacuation start is checked (400 bad input, 409
// a host that cannot be evacuated now), and a second maintenance of a host
// does not silently replace the first (409).
func TestHostAdminRefusals(t *testing.T) {
	n := newMemNode(t, &config.Daemon{NodeName: "h1", Admission: "open"})
	srv := n.authenticate(false, n.Handler(false))
	at := time.Now().UTC()
	if err := n.propose(&Command{Op: OpEvacuation, Evacuation: &model.Evacuation{ID: "ev-1", Host: "h2", Parallel: 1, OnStuck: OnStuckFail, By: "alice", At: at}}); err != nil {
		t.Fatal(err)
	}
	do := func(path, body string) *httptest.ResponseRecorder {
		t.Helper()
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, httptest.NewRequest(http.MethodPost, path, strings.NewReader(body)))
		return w
	}
	for _, tc := range []struct {
		name, path, body string
		code             int
		want             string // in the error message
	}{
		{"online names another evacuation", "/h2/online", `{"evacuation_id":"ev-0"}`, http.StatusConflict, "host h2's evacuation ev-0 has ended; ev-1 (by alice) is under way now"},
		{"online with a bad body", "/h2/online", `{"evacuation":`, http.StatusBadRequest, "not valid JSON"},
		{"online with an unknown field", "/h2/online", `{"id":"ev-1"}`, http.StatusBadRequest, "unknown field"},
		{"online of a host not evacuated", "/h1/online", ``, http.StatusConflict, "host h1 is not being evacuated"},
		{"online of an unknown host", "/h9/online", ``, http.StatusNotFound, "h9"},
		{"evacuation under way", "/h2/evacuate", `{"parallel":1}`, http.StatusConflict, "host h2 is already being evacuated (ev-1, by alice)"},
		{"evacuation with parallel 0", "/h1/evacuate", `{"parallel":0}`, http.StatusBadRequest, "parallel"},
		{"evacuation with a bad policy", "/h1/evacuate", `{"parallel":1,"on_stuck":"pray"}`, http.StatusBadRequest, "on_stuck"},
		{"evacuation of a host gossip does not see", "/h1/evacuate", `{"parallel":1,"force":true}`, http.StatusConflict, "host h1 is not alive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := json.Marshal(n.fsm.Copy())
			w := do(api.PathHostAction+tc.path, tc.body)
			var e api.Error
			_ = json.Unmarshal(w.Body.Bytes(), &e)
			if w.Code != tc.code || !strings.Contains(e.Error, tc.want) {
				t.Fatalf("%d %q, want %d and %q", w.Code, w.Body.String(), tc.code, tc.want)
			}
			if after, _ := json.Marshal(n.fsm.Copy()); !bytes.Equal(before, after) {
				t.Fatal("a refused request changed the state")
			}
		})
	}
	// The evacuation named ends; then it cannot be ended again.
	if w := do(api.PathHostAction+"/h2/online", `{"evacuation_id":"ev-1"}`); w.Code != http.StatusNoContent {
		t.Fatalf("online: %d %s", w.Code, w.Body.String())
	}
	if w := do(api.PathHostAction+"/h2/online", `{"evacuation_id":"ev-1"}`); w.Code != http.StatusConflict || !strings.Contains(w.Body.String(), "evacuation ev-1 has ended") {
		t.Fatalf("online again: %d %s", w.Code, w.Body.String())
	}
	// Maintenance: the first one holds; a second is refused, naming it.
	if err := n.coord.SetMaintenance("h2", true, "firmware", "alice"); err != nil {
		t.Fatal(err)
	}
	err := n.coord.SetMaintenance("h2", true, "kernel", "bob")
	var ce *ConflictError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "host h2 is already in maintenance (by alice") {
		t.Fatalf("second maintenance: %v", err)
	}
	if m := n.fsm.Copy().Status.Maintenance["h2"]; m == nil || m.By != "alice" {
		t.Fatalf("maintenance now %+v, want alice's", m)
	}
}
