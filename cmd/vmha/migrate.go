package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/spf13/cobra"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/model"
)

func newMigrateCmd(g *globals) *cobra.Command {
	var req api.MigrateRequest
	var wait, allowRestart bool
	var waitFor time.Duration
	cmd := &cobra.Command{
		Use:   "migrate VM [--to HOST] [--pin [--ttl D]] [--wait]",
		Short: "Move a running VM live to another host",
		Long: `vmha migrate moves a running VM live (libvirt peer-to-peer migration) to HOST,
or, without --to, to the host the placement engine picks (the same rules,
colocations, capacity and tie-breaks as any other decision, with the VM's
current host and every host that cannot take it live now excluded). The move
is committed to the cluster's log and run by the VM's current host.

Nothing is left behind: without --pin the VM stays on the new host only as
long as the cluster's rules and stickiness allow. --pin adds an explicit pin
(an INFINITY preference for the target) that vmha pins lists; --ttl makes it
expire (default: until vmha pins clear).

With --wait, vmha shows the job's progress (data sent, rate, dirty rate,
expected downtime; JSON lines with -o json) until the move ended, and exits 0
only if the VM moved live to the target. A move that failed leaves the VM
running on its source: vmha says why and exits 1. A live migration that failed
without its source being able to say where the VM runs ends as a restart: the
source shuts the VM down and confirms it stopped, then the target starts it;
vmha says "restarted on HOST (live migration refused: why)" and exits 1 too,
unless --allow-restart accepts a restart as a move (exit 0). The outcome
(live or restart) is the VM's last_move in vmha status -o json.`,
		Args: exactArgs(1, "VM"),
		RunE: func(cmd *cobra.Command, args []string) error {
			vm := args[0]
			if cmd.Flags().Changed("ttl") && !req.Pin {
				return usageError{fmt.Errorf("--ttl needs --pin")}
			}
			if req.PinTTL < 0 {
				return usageError{fmt.Errorf("--ttl %s: want a positive duration", req.PinTTL)}
			}
			ctx, cancel := g.ctx()
			defer cancel()
			req.RequestedBy = whoAmI()
			if req.DryRun {
				if wait {
					return usageError{fmt.Errorf("--dry-run moves nothing: --wait has nothing to wait for")}
				}
				var d api.MoveDryRun
				if err := g.client().Do(ctx, http.MethodPost, api.PathVMs+"/"+url.PathEscape(vm)+"/migrate", req, &d, nil); err != nil {
					return err
				}
				return printDryRun(g, d)
			}
			var v api.VM
			if err := g.client().Do(ctx, http.MethodPost, api.PathVMs+"/"+url.PathEscape(vm)+"/migrate", req, &v, nil); err != nil {
				return err
			}
			if !wait {
				if g.output == "json" {
					return g.printJSON(v)
				}
				fmt.Fprintf(g.out, "%s: moving live from %s to %s (%s)\n", vm, v.MigratingFrom, v.Host, v.MigrationID)
				if req.Pin {
					fmt.Fprintf(g.out, "%s: pinned to %s%s (vmha pins clear %s removes it)\n", vm, v.Host, ttlText(req.PinTTL), vm)
				}
				return nil
			}
			return waitMigration(g, vm, v, waitFor, allowRestart)
		},
	}
	cmd.Flags().StringVar(&req.To, "to", "", "target host (default: the placement engine's choice)")
	cmd.Flags().BoolVar(&req.Pin, "pin", false, "keep the VM on the target (an explicit pin that vmha pins lists)")
	cmd.Flags().DurationVar(&req.PinTTL, "ttl", 0, "with --pin: the pin expires after this long (default: never)")
	cmd.Flags().BoolVar(&req.DryRun, "dry-run", false, "check everything and say where it would go, move nothing")
	cmd.Flags().BoolVar(&wait, "wait", false, "show progress until the move ended; exit 1 unless the VM moved live")
	cmd.Flags().BoolVar(&allowRestart, "allow-restart", false, "with --wait: a VM restarted on the target (its live migration failed) counts as moved (exit 0)")
	cmd.Flags().DurationVar(&waitFor, "wait-timeout", 15*time.Minute, "give up waiting after this long (the move goes on)")
	return cmd
}

func ttlText(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return " for " + d.String()
}

// waitMigration follows the move started as v: the job statistics from
// its source host, and the status for its end.
func waitMigration(g *globals, vm string, v api.VM, waitFor time.Duration, allowRestart bool) error {
	w := &migrationWaiter{g: g, vm: vm, v: v, line: newLiveLine(g.out), start: time.Now(), allowRestart: allowRestart}
	deadline := w.start.Add(waitFor)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), g.timeout)
		var jobs []api.MigrationJob
		if err := g.client().Do(ctx, http.MethodGet, api.PathHostAction+"/"+url.PathEscape(v.MigratingFrom)+"/migrations", nil, &jobs, nil); err == nil {
			w.showJobs(jobs)
		}
		s, err := g.client().Status(ctx)
		cancel()
		if err == nil {
			if ended, err := w.ended(s); ended {
				return err
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: still moving from %s to %s after %s (the move goes on; see vmha status)", vm, v.MigratingFrom, v.Host, waitFor)
		}
		if g.output != "json" && w.lastJob.MigrationID == "" {
			w.line.show(fmt.Sprintf("%s → %s: waiting for %s to start the job… %.0f s", vm, v.Host, v.MigratingFrom, time.Since(w.start).Seconds()))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// migrationWaiter is what waitMigration shows of one move.
type migrationWaiter struct {
	g       *globals
	vm      string
	v       api.VM // the VM as the move started
	line    *liveLine
	start   time.Time
	lastJob api.MigrationJob
	// allowRestart: a restart on the target counts as arrived.
	allowRestart bool
	// fallback is set once the live move failed and the VM is being
	// stopped on its source to be started on the target.
	fallback bool
}

// showJobs shows the move's job among jobs when it has news.
func (w *migrationWaiter) showJobs(jobs []api.MigrationJob) {
	for _, j := range jobs {
		if j.MigrationID != w.v.MigrationID || !j.Updated.After(w.lastJob.Updated) {
			continue
		}
		w.lastJob = j
		if w.g.output == "json" {
			_ = w.g.printJSONLine(map[string]any{"event": "progress", "job": j})
		} else {
			w.line.show(fmt.Sprintf("%s → %s %s %s", w.vm, w.v.Host, bar(j.Percent, 24), j.Text))
		}
	}
}

// ended reports whether status s shows the move ended, and then err says
// whether the VM did not arrive live (or, with allowRestart, at all).
func (w *migrationWaiter) ended(s *api.Status) (bool, error) {
	g, vm, v := w.g, w.vm, w.v
	for _, cur := range s.VMs {
		if cur.Name != vm {
			continue
		}
		if cur.MigratingFrom != "" && sameMove(cur.MigrationID, v.MigrationID) {
			if cur.MigrationID != v.MigrationID && !w.fallback {
				// The live move failed without a known end: the source
				// stops the VM, then the target starts it.
				w.fallback = true
				if g.output == "json" {
					_ = g.printJSONLine(map[string]any{"event": "restarting", "vm": cur})
				} else {
					w.line.done(fmt.Sprintf("%s: %s", vm, cur.Reason))
				}
			}
			return false, nil
		}
		// The move ended: where does the VM run, and how did it get there?
		text, err := moveOutcome(vm, v, cur, w.allowRestart, time.Since(w.start))
		if g.output == "json" {
			e := map[string]any{"event": "end", "vm": cur, "migration_id": v.MigrationID, "outcome": endOutcome(v, cur), "exit": 0, "elapsed_s": time.Since(w.start).Seconds()}
			if err != nil {
				e["exit"], e["error"] = 1, err.Error()
			}
			if perr := g.printJSONLine(e); perr != nil && err == nil {
				return true, perr
			}
			return true, err
		}
		w.line.done(text)
		return true, err
	}
	return false, nil
}

// endOutcome is how the move started as v ended, now that the VM is cur:
// the recorded outcome (live, restart, aborted, refused, failed), else live
// when the VM is on the target, "unknown" when it is not and no record
// says why.
func endOutcome(v, cur api.VM) string {
	if m := cur.LastMove; m != nil && sameMove(m.ID, v.MigrationID) {
		return m.Outcome
	}
	if cur.Host == v.Host {
		return model.MoveLive
	}
	return "unknown"
}

// sameMove reports whether the move id is orig or the cold fallback that
// took it over (orig + "/restart").
func sameMove(id, orig string) bool {
	return id == orig || id == orig+"/restart"
}

// moveOutcome says how the move started as v ended, now that the VM is
// cur: the line to show, and an error (exit 1) unless it moved live (or
// was restarted on the target and allowRestart accepts that).
func moveOutcome(vm string, v, cur api.VM, allowRestart bool, took time.Duration) (string, error) {
	m := cur.LastMove
	if m != nil && !sameMove(m.ID, v.MigrationID) {
		m = nil // the VM was placed anew since: its end is not on record
	}
	switch {
	case cur.Host == v.Host && (m == nil || m.Outcome == model.MoveLive):
		return fmt.Sprintf("%s: moved live from %s to %s in %.1f s (%s)", vm, v.MigratingFrom, v.Host, took.Seconds(), cur.Reason), nil
	case cur.Host == v.Host && m.Outcome == model.MoveRestart:
		text := fmt.Sprintf("%s: restarted on %s (%s), not moved live", vm, v.Host, m.Why)
		if allowRestart {
			return text, nil
		}
		return "", fmt.Errorf("%s restarted on %s (%s): it was shut down on %s and started again, not moved live (--allow-restart accepts that)", vm, v.Host, m.Why, v.MigratingFrom)
	}
	why := cur.Reason
	if m != nil && m.Why != "" {
		why = m.Outcome + ": " + m.Why
	}
	return "", fmt.Errorf("%s did not move to %s: %s", vm, v.Host, why)
}
