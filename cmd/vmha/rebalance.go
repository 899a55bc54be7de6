package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/model"
)

func newRebalanceCmd(g *globals) *cobra.Command {
	var req api.RebalanceRequest
	var noWait bool
	cmd := &cobra.Command{
		Use:   "rebalance [--dry-run] [--max-moves N] [--min-gain G] [--parallel N]",
		Short: "Even out memory and vCPU use across the hosts with live migrations",
		Long: `vmha rebalance plans live migrations that lower the cluster score (Ganeti's:
the spread, as standard deviation, of the hosts' memory and vCPU usage ratios;
0 is perfectly even) and runs them, --parallel at a time, within the
migration caps (migration.max_per_target, migration.max_cluster). Each move
must lower the score by at least --min-gain; at most --max-moves are planned.
It never moves a VM against its rules: not onto a host it scores lower than
its own, not a pinned VM, not a VM with INFINITY stickiness or in a mandatory
colocation, not a VM that is not running, not onto a host that takes no live
migration. docs/rebalance.md has the metric and the planner.

--dry-run prints the plan and changes nothing. While it runs, vmha shows each
move (JSON lines with -o json); Ctrl-C cancels (moves under way finish, the
rest are skipped). A move whose live migration failed without its source
being able to say where the VM runs ends as a restart (the VM stopped on its
host, then started on the target); vmha counts those apart from the moves
that went live ("3 moved live, 1 restarted"). vmha rebalance history lists the
runs, also the nightly ones of rebalance.window.`,
		Args: exactArgs(0, "no argument"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case req.MaxMoves < 0:
				return usageError{fmt.Errorf("--max-moves %d: want 0 (no cap) or more", req.MaxMoves)}
			case req.MinGain < 0:
				return usageError{fmt.Errorf("--min-gain %v: want 0 or more", req.MinGain)}
			case req.Parallel < 1:
				return usageError{fmt.Errorf("--parallel %d: want 1 or more", req.Parallel)}
			}
			req.RequestedBy = whoAmI()
			ctx, cancel := context.WithTimeout(context.Background(), max(g.timeout, time.Minute))
			defer cancel()
			var rb model.Rebalance
			if err := g.client().Do(ctx, http.MethodPost, api.PathRebalance, req, &rb, nil); err != nil {
				return err
			}
			if g.output == "json" && (req.DryRun || noWait || rb.Done) {
				return g.printJSON(rb)
			}
			if g.output != "json" {
				printRebalancePlan(g, &rb, req.DryRun)
			}
			if req.DryRun || noWait || rb.Done {
				return nil
			}
			if g.output == "json" {
				if err := g.printJSONLine(map[string]any{"event": "plan", "rebalance_id": rb.ID, "rebalance": rb}); err != nil {
					return err
				}
			}
			return followRebalance(g, rb.ID, len(rb.Moves))
		},
	}
	cmd.Flags().BoolVar(&req.DryRun, "dry-run", false, "print the plan, change nothing")
	cmd.Flags().IntVar(&req.MaxMoves, "max-moves", 10, "plan at most this many moves (0: no cap)")
	cmd.Flags().Float64Var(&req.MinGain, "min-gain", 0.01, "least drop of the cluster score a move must bring")
	cmd.Flags().IntVar(&req.Parallel, "parallel", 2, "moves at once")
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "start the run and return")
	cmd.AddCommand(newRebalanceHistoryCmd(g), newRebalanceCancelCmd(g))
	return cmd
}

func newRebalanceHistoryCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "history",
		Short: "List the rebalancing runs (manual and nightly), newest last",
		Args:  exactArgs(0, "no argument"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return read(g, api.PathRebalance, func(rs []model.Rebalance) error {
				if len(rs) == 0 {
					fmt.Fprintln(g.out, "no rebalancing runs")
					return nil
				}
				tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tSTARTED\tBY\tMOVES\tLIVE\tRESTARTED\tFAILED\tSCORE BEFORE\tAFTER\tSTATE")
				for _, r := range rs {
					printRebalanceRun(tw, r)
				}
				return tw.Flush()
			})
		},
	}
}

// printRebalanceRun is one line of vmha rebalance history.
func printRebalanceRun(w io.Writer, r model.Rebalance) {
	live, restarted := moveCounts(r.Moves)
	failed := 0
	for _, m := range r.Moves {
		if m.State == model.MoveFailed {
			failed++
		}
	}
	state := "running"
	if r.Done {
		state = "ended"
	}
	if r.Note != "" {
		state += " (" + r.Note + ")"
	}
	after := "-"
	if r.Done {
		after = fmt.Sprintf("%.4f", r.After)
	}
	fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%.4f\t%s\t%s\n", r.ID, r.At.Local().Format(time.DateTime), r.By, len(r.Moves), live, restarted, failed, r.Before, after, state)
}

// moveCounts counts the done moves by outcome: live, and restarted (a move
// done before outcomes were recorded counts as live, as it was reported).
func moveCounts(ms []model.RebalanceMove) (live, restarted int) {
	for _, m := range ms {
		switch {
		case m.State != model.MoveDone:
		case m.Outcome == model.MoveRestart:
			restarted++
		default:
			live++
		}
	}
	return live, restarted
}

func newRebalanceCancelCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "cancel",
		Short: "End the rebalance under way: moves under way finish, the rest are skipped",
		Args:  exactArgs(0, "no argument"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := g.ctx()
			defer cancel()
			var rb model.Rebalance
			if err := g.client().Do(ctx, http.MethodPost, api.PathRebalance+"/cancel", map[string]string{"requested_by": whoAmI()}, &rb, nil); err != nil {
				return err
			}
			fmt.Fprintf(g.out, "rebalance %s cancelled: moves under way finish, the rest are skipped\n", rb.ID)
			return nil
		},
	}
}

func printRebalancePlan(g *globals, rb *model.Rebalance, dry bool) {
	verb := "rebalancing"
	if dry {
		verb = "plan (dry run, nothing moves)"
	}
	fmt.Fprintf(g.out, "%s: %d move(s), cluster score %.4f → %.4f (lower is more even)\n", verb, len(rb.Moves), rb.Before, rb.Planned)
	if rb.Note != "" {
		fmt.Fprintln(g.out, rb.Note)
	}
	for _, m := range rb.Moves {
		fmt.Fprintf(g.out, "  step %d  %s  %s → %s  gain %.4f\n", m.Step, m.VM, m.From, m.To, m.Gain)
	}
}

// followRebalance shows each move until the run ended: exit 0 when every
// move arrived, 1 when some failed or were skipped, or on Ctrl-C (which
// cancels the rest).
func followRebalance(g *globals, id string, total int) error {
	sig, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	f := &rebalanceFollower{g: g, id: id, total: total, last: map[string]string{}, line: newLiveLine(g.out), start: time.Now()}
	for {
		ctx, cancel := context.WithTimeout(context.Background(), g.timeout)
		var rs []model.Rebalance
		err := g.client().Do(ctx, http.MethodGet, api.PathRebalance, nil, &rs, nil)
		cancel()
		if err == nil {
			if done, err := f.show(rs); done || err != nil {
				return f.end(nil, err)
			}
		}
		select {
		case <-sig.Done():
			ctx, cancel := g.ctx()
			defer cancel()
			_ = g.client().Do(ctx, http.MethodPost, api.PathRebalance+"/cancel", map[string]string{"requested_by": whoAmI()}, nil, nil)
			return f.end(nil, fmt.Errorf("cancelled: rebalance %s ends; moves under way finish, the rest are skipped", id))
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// rebalanceFollower prints what changed in a rebalancing run from one
// reading of the history to the next.
type rebalanceFollower struct {
	g     *globals
	id    string
	total int
	last  map[string]string // VM → the state of its move as last printed
	line  *liveLine
	start time.Time
	// ended is set once the end line is out (-o json).
	ended bool
}

// end prints, with -o json, the stream's last line once: the run as it
// ended (rb, nil when unknown), the counts and the exit status (err set:
// 1); it returns err.
func (f *rebalanceFollower) end(rb *model.Rebalance, err error) error {
	if f.g.output != "json" || f.ended {
		return err
	}
	f.ended = true
	e := map[string]any{"event": "end", "rebalance_id": f.id, "moves": f.total, "exit": 0, "elapsed_s": time.Since(f.start).Seconds()}
	if rb != nil {
		live, restarted := moveCounts(rb.Moves)
		bad := 0
		for _, m := range rb.Moves {
			if m.State == model.MoveFailed || m.State == model.MoveSkipped {
				bad++
			}
		}
		e["rebalance"], e["moved"], e["moved_live"], e["restarted"], e["not_done"] = rb, len(rb.Moves)-bad, live, restarted, bad
	}
	if err != nil {
		e["exit"], e["error"] = 1, err.Error()
	}
	if perr := f.g.printJSONLine(e); perr != nil && err == nil {
		return perr
	}
	return err
}

// show prints the changes of the run in history rs and says whether the
// run ended; err tells that it ended with moves that did not happen, or
// that it is gone.
func (f *rebalanceFollower) show(rs []model.Rebalance) (done bool, err error) {
	g, id, total := f.g, f.id, f.total
	var rb *model.Rebalance
	for i := range rs {
		if rs[i].ID == id {
			rb = &rs[i]
		}
	}
	if rb == nil {
		return false, fmt.Errorf("rebalance %s is no longer in the history", id)
	}
	ended, bad := f.showMoves(rb)
	if g.output != "json" {
		f.line.show(fmt.Sprintf("rebalance %s %s %d/%d moves ended, %.0f s", id, bar(100*float64(ended)/float64(max(total, 1)), 24), ended, total, time.Since(f.start).Seconds()))
	}
	if !rb.Done {
		return false, nil
	}
	if g.output != "json" {
		live, restarted := moveCounts(rb.Moves)
		f.line.done(fmt.Sprintf("rebalance %s ended in %.1f s: %d/%d moves done (%d moved live, %d restarted), cluster score %.4f → %.4f", id, time.Since(f.start).Seconds(), total-bad, total, live, restarted, rb.Before, rb.After))
	}
	if bad > 0 {
		err = fmt.Errorf("rebalance %s: %d of %d moves did not happen (see vmha rebalance history -o json)", id, bad, total)
	}
	return true, f.end(rb, err)
}

// showMoves prints each move whose state changed; it counts the moves that
// ended, and those that failed or were skipped.
func (f *rebalanceFollower) showMoves(rb *model.Rebalance) (ended, bad int) {
	g := f.g
	for _, m := range rb.Moves {
		if m.Terminal() {
			ended++
		}
		if m.State == model.MoveFailed || m.State == model.MoveSkipped {
			bad++
		}
		state := m.State
		if m.State == model.MoveDone && m.Outcome == model.MoveRestart {
			state = "done, restarted (not live)"
		}
		if f.last[m.VM] == state {
			continue
		}
		f.last[m.VM] = state
		if g.output == "json" {
			_ = g.printJSONLine(map[string]any{"event": "move", "rebalance": f.id, "rebalance_id": f.id, "move": m, "elapsed_s": time.Since(f.start).Seconds()})
			continue
		}
		text := fmt.Sprintf("%s %s → %s: %s", m.VM, m.From, m.To, state)
		if m.Reason != "" && m.State != model.MoveMoving {
			text += " (" + m.Reason + ")"
		}
		f.line.done(text)
	}
	return ended, bad
}
