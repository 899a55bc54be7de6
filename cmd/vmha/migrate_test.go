package main

import (
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
