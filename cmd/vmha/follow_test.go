package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/model"
)

// The tests of followEvacuation, followRebalance and waitMigration pin
// their whole output (text and JSON) and exit error against a fake daemon
// whose answers change from one poll to the next; the expected outputs were
// recorded from the code before it was split into helpers.

// sequence answers GET path with answers in turn, the last one for good.
type sequence struct {
	mu      sync.Mutex
	answers map[string][]any
}

func (s *sequence) handle(mux *http.ServeMux, path string, answers ...any) {
	s.mu.Lock()
	s.answers[path] = answers
	s.mu.Unlock()
	mux.HandleFunc("GET "+path, func(w http.ResponseWriter, _ *http.Request) {
		s.mu.Lock()
		as := s.answers[path]
		a := as[0]
		if len(as) > 1 {
			s.answers[path] = as[1:]
		}
		s.mu.Unlock()
		_ = json.NewEncoder(w).Encode(a)
	})
}

// followGlobals is a text or JSON CLI talking to a fake daemon serving
// the sequences.
func followGlobals(t *testing.T, output string, seqs map[string][]any) (*globals, *bytes.Buffer) {
	mux := http.NewServeMux()
	s := &sequence{answers: map[string][]any{}}
	for path, as := range seqs {
		s.handle(mux, path, as...)
	}
	mux.HandleFunc("POST /", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("{}")) })
	var out bytes.Buffer
	return &globals{socket: fakeDaemon(t, mux), output: output, timeout: 5 * time.Second, out: &out}, &out
}

// timings are the parts of the output that depend on the clock.
var timings = regexp.MustCompile(`[0-9]+\.[0-9]+ s|[0-9]+ s\b|"elapsed_s": ?[0-9.e-]+|"updated":"[^"]*"`)

func normalize(s string) string { return timings.ReplaceAllString(s, "T") }

func errText(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

func TestFollowEvacuation(t *testing.T) {
	plan := api.EvacuationPlan{Moves: []api.EvacuationMove{{VM: "vm1"}, {VM: "vm2"}}}
	first := api.Status{
		VMs:         []api.VM{{Name: "vm1", Host: "h1", State: "running"}, {Name: "vm2", Host: "h3", MigratingFrom: "h1", State: "running"}, {Name: "other", Host: "h1"}},
		Evacuations: []api.Evacuation{{Host: "h1", Stuck: []string{"vm3: no room"}}},
	}
	second := api.Status{
		VMs:         []api.VM{{Name: "vm1", Host: "h2", State: "running"}, {Name: "vm2", Host: "h3", State: "running"}},
		Evacuations: []api.Evacuation{{Host: "h1", Done: true, MovedLive: 1, Restarted: 1}},
	}
	gone := api.Status{VMs: second.VMs}
	for _, tc := range []struct {
		output   string
		statuses []any
		want     string
		err      string
	}{
		{"text", []any{first, second}, "[0/2] vm1: running on h1\n[0/2] vm2: moving to h3\nstuck: vm3: no room\n[1/2] vm1: running on h2\n[2/2] vm2: running on h3\nh1 evacuated: 2 VM(s), 1 moved live, 1 restarted in T; vmha host online h1 brings it back\n", "<nil>"},
		{"json", []any{first, second}, "{\"json_version\":1,T,\"event\":\"move\",\"host\":\"h1\",\"migrating_from\":\"\",\"moved\":0,\"state\":\"running\",\"vm\":\"vm1\",\"vms\":2}\n{\"json_version\":1,T,\"event\":\"move\",\"host\":\"h3\",\"migrating_from\":\"h1\",\"moved\":0,\"state\":\"running\",\"vm\":\"vm2\",\"vms\":2}\n{\"json_version\":1,\"event\":\"stuck\",\"host\":\"h1\",\"stuck\":[\"vm3: no room\"]}\n{\"json_version\":1,T,\"event\":\"move\",\"host\":\"h2\",\"migrating_from\":\"\",\"moved\":1,\"state\":\"running\",\"vm\":\"vm1\",\"vms\":2}\n{\"json_version\":1,T,\"event\":\"move\",\"host\":\"h3\",\"migrating_from\":\"\",\"moved\":2,\"state\":\"running\",\"vm\":\"vm2\",\"vms\":2}\n{\"json_version\":1,T,\"evacuation_id\":\"\",\"event\":\"end\",\"exit\":0,\"host\":\"h1\",\"moved\":2,\"moved_live\":1,\"restarted\":1,\"stuck\":[],\"vms\":2}\n", "<nil>"},
		{"text", []any{first, gone}, "[0/2] vm1: running on h1\n[0/2] vm2: moving to h3\nstuck: vm3: no room\n[1/2] vm1: running on h2\n[2/2] vm2: running on h3\n", "the evacuation of h1 was ended (vmha host online) before it finished"},
	} {
		g, out := followGlobals(t, tc.output, map[string][]any{api.PathStatus: tc.statuses})
		err := followEvacuation(g, "h1", plan)
		if got := normalize(out.String()); got != tc.want {
			t.Errorf("%s output:\n%q\nwant:\n%q", tc.output, got, tc.want)
		}
		if errText(err) != tc.err {
			t.Errorf("%s: err %v, want %s", tc.output, err, tc.err)
		}
	}
}

func TestFollowRebalance(t *testing.T) {
	running := model.Rebalance{ID: "r1", Before: 0.5, Moves: []model.RebalanceMove{
		{VM: "a", From: "h1", To: "h2", State: model.MoveMoving, Reason: "under way"},
		{VM: "b", From: "h1", To: "h3", State: model.MovePlanned}}}
	ended := model.Rebalance{ID: "r1", Before: 0.5, After: 0.25, Done: true, Moves: []model.RebalanceMove{
		{VM: "a", From: "h1", To: "h2", State: model.MoveDone},
		{VM: "b", From: "h1", To: "h3", State: model.MoveFailed, Reason: "no room"}}}
	good := ended
	good.Moves = []model.RebalanceMove{ended.Moves[0]}
	for _, tc := range []struct {
		output string
		runs   []any
		total  int
		want   string
		err    string
	}{
		{"text", []any{[]model.Rebalance{running}, []model.Rebalance{{ID: "r0"}, ended}}, 2, "a h1 → h2: moving\nb h1 → h3: planned\nrebalance r1 [........................]   0% 0/2 moves ended, T\na h1 → h2: done\nb h1 → h3: failed (no room)\nrebalance r1 ended in T: 1/2 moves done (1 moved live, 0 restarted), cluster score 0.5000 → 0.2500\n", "rebalance r1: 1 of 2 moves did not happen (see vmha rebalance history -o json)"},
		{"json", []any{[]model.Rebalance{running}, []model.Rebalance{ended}}, 2, "{\"json_version\":1,T,\"event\":\"move\",\"move\":{\"vm\":\"a\",\"from\":\"h1\",\"to\":\"h2\",\"gain\":0,\"step\":0,\"state\":\"moving\",\"reason\":\"under way\"},\"rebalance\":\"r1\",\"rebalance_id\":\"r1\"}\n{\"json_version\":1,T,\"event\":\"move\",\"move\":{\"vm\":\"b\",\"from\":\"h1\",\"to\":\"h3\",\"gain\":0,\"step\":0,\"state\":\"planned\"},\"rebalance\":\"r1\",\"rebalance_id\":\"r1\"}\n{\"json_version\":1,T,\"event\":\"move\",\"move\":{\"vm\":\"a\",\"from\":\"h1\",\"to\":\"h2\",\"gain\":0,\"step\":0,\"state\":\"done\"},\"rebalance\":\"r1\",\"rebalance_id\":\"r1\"}\n{\"json_version\":1,T,\"event\":\"move\",\"move\":{\"vm\":\"b\",\"from\":\"h1\",\"to\":\"h3\",\"gain\":0,\"step\":0,\"state\":\"failed\",\"reason\":\"no room\"},\"rebalance\":\"r1\",\"rebalance_id\":\"r1\"}\n{\"json_version\":1,T,\"error\":\"rebalance r1: 1 of 2 moves did not happen (see vmha rebalance history -o json)\",\"event\":\"end\",\"exit\":1,\"moved\":1,\"moved_live\":1,\"moves\":2,\"not_done\":1,\"rebalance\":{\"id\":\"r1\",\"by\":\"\",\"before\":0.5,\"planned\":0,\"after\":0.25,\"max_moves\":0,\"min_gain\":0,\"parallel\":0,\"moves\":[{\"vm\":\"a\",\"from\":\"h1\",\"to\":\"h2\",\"gain\":0,\"step\":0,\"state\":\"done\"},{\"vm\":\"b\",\"from\":\"h1\",\"to\":\"h3\",\"gain\":0,\"step\":0,\"state\":\"failed\",\"reason\":\"no room\"}],\"done\":true},\"rebalance_id\":\"r1\",\"restarted\":0}\n", "rebalance r1: 1 of 2 moves did not happen (see vmha rebalance history -o json)"},
		{"text", []any{[]model.Rebalance{good}}, 1, "a h1 → h2: done\nrebalance r1 [########################] 100% 1/1 moves ended, T\nrebalance r1 ended in T: 1/1 moves done (1 moved live, 0 restarted), cluster score 0.5000 → 0.2500\n", "<nil>"},
		{"text", []any{[]model.Rebalance{running}, []model.Rebalance{}}, 2, "a h1 → h2: moving\nb h1 → h3: planned\nrebalance r1 [........................]   0% 0/2 moves ended, T\n", "rebalance r1 is no longer in the history"},
	} {
		g, out := followGlobals(t, tc.output, map[string][]any{api.PathRebalance: tc.runs})
		err := followRebalance(g, "r1", tc.total)
		if got := normalize(out.String()); got != tc.want {
			t.Errorf("%s output:\n%q\nwant:\n%q", tc.output, got, tc.want)
		}
		if errText(err) != tc.err {
			t.Errorf("%s: err %q, want %q", tc.output, errText(err), tc.err)
		}
	}
}

func TestWaitMigration(t *testing.T) {
	v := api.VM{Name: "vm1", Host: "h2", MigratingFrom: "h1", MigrationID: "m1"}
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	jobs := []any{
		[]api.MigrationJob{},
		[]api.MigrationJob{{MigrationID: "m1", Percent: 40, Text: "40%", Updated: at}, {MigrationID: "m0", Percent: 90, Updated: at.Add(time.Hour)}},
		[]api.MigrationJob{{MigrationID: "m1", Percent: 40, Text: "40%", Updated: at}},
	}
	moving := api.Status{VMs: []api.VM{v}}
	arrived := api.Status{VMs: []api.VM{{Name: "vm1", Host: "h2", Reason: "moved"}}}
	back := api.Status{VMs: []api.VM{{Name: "vm1", Host: "h1", Reason: "aborted"}}}
	for _, tc := range []struct {
		output   string
		statuses []any
		want     string
		err      string
	}{
		{"text", []any{moving, moving, moving, arrived}, "vm1 → h2: waiting for h1 to start the job… T\nvm1: moved live from h1 to h2 in T (moved)\n", "<nil>"},
		{"json", []any{moving, moving, back}, "{\"json_version\":1,\"event\":\"progress\",\"job\":{\"vm\":\"\",\"migration_id\":\"m1\",\"from\":\"\",\"to\":\"\",\"phase\":\"\",\"percent\":40,\"data_total\":0,\"data_remaining\":0,\"throughput\":0,\"dirty_rate\":0,\"expected_downtime\":0,\"iteration\":0,\"elapsed\":0,\"text\":\"40%\",T}}\n{\"json_version\":1,T,\"error\":\"vm1 did not move to h2: aborted\",\"event\":\"end\",\"exit\":1,\"migration_id\":\"m1\",\"outcome\":\"unknown\",\"vm\":{\"name\":\"vm1\",\"host\":\"h1\",\"state\":\"\",\"memory_mib\":0,\"vcpus\":0,\"reason\":\"aborted\",\"generation\":0}}\n", "vm1 did not move to h2: aborted"},
		{"text", []any{moving, back}, "vm1 → h2: waiting for h1 to start the job… T\n\n", "vm1 did not move to h2: aborted"},
	} {
		g, out := followGlobals(t, tc.output, map[string][]any{api.PathStatus: tc.statuses, api.PathHostAction + "/h1/migrations": jobs})
		err := waitMigration(g, "vm1", v, time.Minute, false)
		if got := normalize(out.String()); got != tc.want {
			t.Errorf("%s output:\n%q\nwant:\n%q", tc.output, got, tc.want)
		}
		if errText(err) != tc.err {
			t.Errorf("%s: err %q, want %q", tc.output, errText(err), tc.err)
		}
	}
}
