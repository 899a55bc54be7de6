package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/model"
)

// vmha migrate --wait tells a live move from a restart: a live migration
// that failed without a known end is finished by a stop on the source and
// a start on the target; that is exit 1 ("restarted on h2 (...)") unless
// --allow-restart, and a live move stays exit 0.
func TestWaitMigrationRestart(t *testing.T) {
	v := api.VM{Name: "vm1", Host: "h2", MigratingFrom: "h1", MigrationID: "m1"}
	moving := api.Status{VMs: []api.VM{v}}
	fallback := api.Status{VMs: []api.VM{{Name: "vm1", Host: "h2", MigratingFrom: "h1", MigrationID: "m1/restart",
		Reason: "live migration refused: connect to target h2: connection refused, and h1 cannot say the VM is stopped: h1 stops it (confirmed inactive) before h2 starts it"}}}
	why := "live migration refused: connect to target h2: connection refused"
	restarted := api.Status{VMs: []api.VM{{Name: "vm1", Host: "h2", Reason: "shut down on h1 and started on h2 (m1/restart)",
		LastMove: &model.MoveRecord{ID: "m1/restart", From: "h1", To: "h2", Outcome: model.MoveRestart, Why: why}}}}
	live := api.Status{VMs: []api.VM{{Name: "vm1", Host: "h2", Reason: "moved live from h1 (m1, downtime 20ms)",
		LastMove: &model.MoveRecord{ID: "m1", From: "h1", To: "h2", Outcome: model.MoveLive}}}}
	stayed := api.Status{VMs: []api.VM{{Name: "vm1", Host: "h1", Reason: "live migration to h2 aborted: timeout; the VM stays on h1",
		LastMove: &model.MoveRecord{ID: "m1", From: "h1", To: "h2", Outcome: "aborted", Why: "timeout"}}}}
	waiting := "vm1 → h2: waiting for h1 to start the job… T\n"
	fallbackLine := waiting + "vm1: " + fallback.VMs[0].Reason + "\n"
	for _, tc := range []struct {
		name         string
		statuses     []any
		allowRestart bool
		want, err    string
		code         int
	}{
		{"restart refused", []any{moving, fallback, fallback, restarted}, false, fallbackLine + "\n",
			"vm1 restarted on h2 (" + why + "): it was shut down on h1 and started again, not moved live (--allow-restart accepts that)", exitFailed},
		{"restart allowed", []any{moving, fallback, restarted}, true, fallbackLine + "vm1: restarted on h2 (" + why + "), not moved live\n", "<nil>", exitOK},
		{"live", []any{moving, live}, false, waiting + "vm1: moved live from h1 to h2 in T (moved live from h1 (m1, downtime 20ms))\n", "<nil>", exitOK},
		{"aborted", []any{moving, stayed}, true, waiting + "\n", "vm1 did not move to h2: aborted: timeout", exitFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, out := followGlobals(t, "text", map[string][]any{api.PathStatus: tc.statuses, api.PathHostAction + "/h1/migrations": {[]api.MigrationJob{}}})
			err := waitMigration(g, "vm1", v, time.Minute, tc.allowRestart)
			if got := normalize(out.String()); got != tc.want {
				t.Errorf("output:\n%q\nwant:\n%q", got, tc.want)
			}
			if errText(err) != tc.err {
				t.Errorf("err %q, want %q", errText(err), tc.err)
			}
			code := exitOK
			if err != nil {
				code = exitCode(err)
			}
			if code != tc.code {
				t.Errorf("exit %d, want %d", code, tc.code)
			}
		})
	}
}

// vmha rebalance history and the follower count restarts apart from live
// moves.
func TestRebalanceCountsRestarts(t *testing.T) {
	at := time.Date(2026, 12, 5, 3, 0, 0, 0, time.UTC)
	r := model.Rebalance{ID: "rb-1", By: "alice", At: at, Done: true, Before: 0.5, After: 0.1, Note: "1 moved live, 1 restarted", Moves: []model.RebalanceMove{
		{VM: "a", From: "h1", To: "h2", State: model.MoveDone, Outcome: model.MoveLive},
		{VM: "b", From: "h1", To: "h3", State: model.MoveDone, Outcome: model.MoveRestart, Reason: "shut down on h1 and started on h3"},
		{VM: "c", From: "h1", To: "h3", State: model.MoveFailed},
		{VM: "d", From: "h1", To: "h2", State: model.MoveDone}, // before outcomes were recorded
	}}
	if live, restarted := moveCounts(r.Moves); live != 2 || restarted != 1 {
		t.Fatalf("counts %d live, %d restarted; want 2 and 1", live, restarted)
	}
	var b bytes.Buffer
	printRebalanceRun(&b, r)
	if got, want := b.String(), "rb-1\t"+at.Local().Format(time.DateTime)+"\talice\t4\t2\t1\t1\t0.5000\t0.1000\tended (1 moved live, 1 restarted)\n"; got != want {
		t.Fatalf("history line:\n%q\nwant:\n%q", got, want)
	}
	g, out := followGlobals(t, "text", map[string][]any{api.PathRebalance: {[]model.Rebalance{r}}})
	err := followRebalance(g, "rb-1", 4)
	if got := normalize(out.String()); !strings.Contains(got, "b h1 → h3: done, restarted (not live) (shut down on h1 and started on h3)\n") ||
		!strings.Contains(got, "3/4 moves done (2 moved live, 1 restarted)") {
		t.Fatalf("follower output:\n%s", got)
	}
	if err == nil {
		t.Fatal("a run with a failed move ended without an error")
	}
}
