package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vmha/vmha/api"
)

func newEvacuateCmd(g *globals) *cobra.Command {
	var req api.EvacuateRequest
	var noWait bool
	cmd := &cobra.Command{
		Use:   "evacuate HOST [--parallel N] [--dry-run] [--deadline D] [--on-stuck fail|stop-restart] [--storage FS] [--force]",
		Short: "Drain a host: move its VMs away (live where possible), N at a time",
		Long: `vmha evacuate marks HOST ineligible (nothing new is placed on it) and moves its
VMs to the other hosts, at most --parallel at once, each to the alive host with
the most free memory, live when both hosts take live migrations.

A VM that cannot move live (a host without migration.libvirt_uri, a VM that is
not running) is handled by --on-stuck: fail (the default) refuses the whole
evacuation up front and moves nothing; stop-restart shuts such VMs down and
starts them on their new host. --deadline switches the remaining moves to
stop-restart once it has passed. --dry-run prints the plan and changes
nothing. While it waits, vmha shows each VM's move (with -o json: JSON lines,
one object per line: "plan", then "move" and "stuck" events, and last an
"end" with the counts and "exit", the exit status);
Ctrl-C ends the evacuation (moves under way finish; the host is online again).
vmha host online HOST brings the host back; nothing moves back by itself.

Before it starts, vmha checks that the VMs have somewhere to go: an evacuation
of the last usable host (alive, out of maintenance, not evacuated), or one whose
VMs need more memory than the other usable hosts have free, or with a VM no
other host can take, is refused with the numbers ("host3's 12 VM(s) need
48 GiB; the other usable hosts (h1, h2) have 20 GiB free"). The VMs still on
hosts whose evacuation is under way count too: evacuating a second host is
checked against what is left after both. --force evacuates anyway: the VMs
that do not fit stay on the host, listed as stuck. --dry-run shows the
shortfall without refusing.

A move whose live migration fails without its source being able to say where
the VM runs ends as a restart (stopped on HOST, confirmed, then started on the
target); the end counts them apart ("3 moved live, 1 restarted").

--storage FS is storage maintenance: only the VMs whose disks are on the
cluster file system FS leave the host, no VM that uses FS is placed there, and
the host keeps running its other VMs. When vmha says the host is done, FS may
be unmounted there (and its lock manager stopped); vmha host online HOST ends
the maintenance once it is mounted again.`,
		Args: exactArgs(1, "HOST"),
		RunE: func(cmd *cobra.Command, args []string) error {
			host := args[0]
			if req.OnStuck != "fail" && req.OnStuck != "stop-restart" {
				return usageError{fmt.Errorf("--on-stuck %q: want fail or stop-restart", req.OnStuck)}
			}
			if req.Parallel < 1 {
				return usageError{fmt.Errorf("--parallel %d: want 1 or more", req.Parallel)}
			}
			req.RequestedBy = whoAmI()
			ctx, cancel := g.ctx()
			defer cancel()
			var plan api.EvacuationPlan
			if err := g.client().Do(ctx, http.MethodPost, api.PathHostAction+"/"+url.PathEscape(host)+"/evacuate", req, &plan, nil); err != nil {
				return err
			}
			if g.output == "json" && (req.DryRun || noWait) {
				return g.printJSON(plan)
			}
			if g.output != "json" {
				printEvacuationPlan(g, host, req, plan)
			}
			if req.DryRun || noWait {
				return nil
			}
			if g.output == "json" {
				if err := g.printJSONLine(map[string]any{"event": "plan", "host": host, "plan": plan}); err != nil {
					return err
				}
			}
			return followEvacuation(g, host, plan)
		},
	}
	cmd.Flags().IntVar(&req.Parallel, "parallel", 2, "moves at once")
	cmd.Flags().BoolVar(&req.DryRun, "dry-run", false, "print the plan, change nothing")
	cmd.Flags().DurationVar(&req.Deadline, "deadline", 0, "after this long, move the rest by stop-restart")
	cmd.Flags().StringVar(&req.OnStuck, "on-stuck", "fail", "VMs that cannot move live: fail or stop-restart")
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "start the evacuation and return")
	cmd.Flags().StringVar(&req.Storage, "storage", "", "storage maintenance: move only the VMs on this cluster file system")
	cmd.Flags().BoolVar(&req.Force, "force", false, "evacuate even when the other hosts cannot take every VM (those stay, listed as stuck)")
	return cmd
}

// printEvacuationPlan shows the plan vmha evacuate got: each VM's target
// and how it moves, and the shortfall when the other hosts cannot take
// every VM.
func printEvacuationPlan(g *globals, host string, req api.EvacuateRequest, plan api.EvacuationPlan) {
	verb := "evacuating"
	if req.DryRun {
		verb = "plan (dry run, nothing moves)"
	}
	what := ""
	if req.Storage != "" {
		what = " using " + req.Storage
	}
	id := ""
	if plan.ID != "" {
		id = " (" + plan.ID + ")"
	}
	fmt.Fprintf(g.out, "%s %s%s: %d VM(s)%s, %d at a time\n", verb, host, id, len(plan.Moves), what, req.Parallel)
	if plan.Shortfall != "" {
		fmt.Fprintf(g.out, "warning: %s\n", plan.Shortfall)
	}
	for _, m := range plan.Moves {
		how := "live"
		if !m.Live {
			how = "stuck: " + m.Stuck
			if m.To != "" && req.OnStuck == "stop-restart" {
				how = "stop and start (" + m.Stuck + ")"
			}
		}
		fmt.Fprintf(g.out, "  %s → %s  %s\n", m.VM, dash(m.To), how)
	}
}

// followEvacuation shows the moves until the host is empty (exit 0), or
// Ctrl-C ends the evacuation (exit 1).
func followEvacuation(g *globals, host string, plan api.EvacuationPlan) error {
	sig, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	f := &evacuationFollower{g: g, host: host, plan: plan, last: map[string]string{}, start: time.Now()}
	for {
		ctx, cancel := context.WithTimeout(context.Background(), g.timeout)
		s, err := g.client().Status(ctx)
		cancel()
		if err == nil {
			if done, err := f.show(s); done || err != nil {
				return f.end(err)
			}
		}
		select {
		case <-sig.Done():
			ctx, cancel := g.ctx()
			defer cancel()
			// Ends this evacuation only, not one started since.
			_ = g.client().Do(ctx, http.MethodPost, api.PathHostAction+"/"+url.PathEscape(host)+"/online", api.HostOnline{EvacuationID: plan.ID}, nil, nil)
			return f.end(fmt.Errorf("cancelled: the evacuation of %s is ended; moves under way finish, the rest stay", host))
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// end prints, with -o json, the last line of the stream: the counts and
// the exit status (err set: 1) and returns err.
func (f *evacuationFollower) end(err error) error {
	if f.g.output != "json" {
		return err
	}
	e := map[string]any{"event": "end", "host": f.host, "evacuation_id": f.plan.ID, "vms": len(f.plan.Moves),
		"moved": f.moved, "moved_live": 0, "restarted": 0, "stuck": []string{}, "exit": 0, "elapsed_s": time.Since(f.start).Seconds()}
	if ev := f.done; ev != nil {
		e["moved_live"], e["restarted"], e["stuck"] = ev.MovedLive, ev.Restarted, ev.Stuck
		if ev.Storage != "" {
			e["storage"] = ev.Storage
		}
	}
	if err != nil {
		e["exit"], e["error"] = 1, err.Error()
	}
	if perr := f.g.printJSONLine(e); perr != nil && err == nil {
		return perr
	}
	return err
}

// evacuationFollower prints what changed in an evacuation from one status
// to the next.
type evacuationFollower struct {
	g     *globals
	host  string
	plan  api.EvacuationPlan
	last  map[string]string // VM → its state as last printed; "_stuck" → the stuck VMs
	start time.Time
	// moved counts the planned VMs off the host at the last status; done
	// is the evacuation once it finished.
	moved int
	done  *api.Evacuation
}

// show prints the changes that status s holds, and says whether the
// evacuation is done; it ended unfinished when err is set.
func (f *evacuationFollower) show(s *api.Status) (done bool, err error) {
	g, host, total := f.g, f.host, len(f.plan.Moves)
	var ev *api.Evacuation
	for i := range s.Evacuations {
		if s.Evacuations[i].Host == host {
			ev = &s.Evacuations[i]
		}
	}
	f.showMoves(s)
	if ev != nil && f.plan.ID != "" && ev.ID != "" && ev.ID != f.plan.ID {
		return false, fmt.Errorf("the evacuation of %s (%s) was ended before it finished; %s (by %s) is under way now", host, f.plan.ID, ev.ID, ev.By)
	}
	if ev != nil && ev.Done {
		f.done = ev
		counts := fmt.Sprintf("%d moved", total)
		if ev.MovedLive+ev.Restarted > 0 {
			counts = fmt.Sprintf("%d moved live, %d restarted", ev.MovedLive, ev.Restarted)
		}
		if g.output != "json" && ev.Storage != "" {
			fmt.Fprintf(g.out, "%s: no VM uses %s any more (%s in %.1f s): it may be taken down there now; vmha host online %s ends the maintenance\n", host, ev.Storage, counts, time.Since(f.start).Seconds(), host)
		} else if g.output != "json" {
			fmt.Fprintf(g.out, "%s evacuated: %d VM(s), %s in %.1f s; vmha host online %s brings it back\n", host, total, counts, time.Since(f.start).Seconds(), host)
		}
		return true, nil
	}
	if ev == nil {
		return false, fmt.Errorf("the evacuation of %s was ended (vmha host online) before it finished", host)
	}
	if len(ev.Stuck) > 0 && f.last["_stuck"] != strings.Join(ev.Stuck, ";") {
		f.last["_stuck"] = strings.Join(ev.Stuck, ";")
		if g.output == "json" {
			_ = g.printJSONLine(map[string]any{"event": "stuck", "host": f.host, "stuck": ev.Stuck})
		} else {
			fmt.Fprintf(g.out, "stuck: %s\n", strings.Join(ev.Stuck, "; "))
		}
	}
	return false, nil
}

// showMoves prints each planned VM whose state changed, with the count of
// VMs moved so far.
func (f *evacuationFollower) showMoves(s *api.Status) {
	g, total := f.g, len(f.plan.Moves)
	moved := 0
	for _, m := range f.plan.Moves {
		for _, v := range s.VMs {
			if v.Name != m.VM {
				continue
			}
			state := v.State + " on " + dash(v.Host)
			if v.MigratingFrom != "" {
				state = "moving to " + v.Host
			}
			if v.Host != f.host && v.MigratingFrom == "" {
				moved++
			}
			if f.last[v.Name] == state {
				continue
			}
			f.last[v.Name] = state
			if g.output == "json" {
				_ = g.printJSONLine(map[string]any{"event": "move", "vm": v.Name, "state": v.State, "host": v.Host, "migrating_from": v.MigratingFrom, "moved": moved, "vms": total, "elapsed_s": time.Since(f.start).Seconds()})
			} else {
				fmt.Fprintf(g.out, "[%d/%d] %s: %s\n", moved, total, v.Name, state)
			}
		}
	}
	f.moved = moved
}

func newHostOnlineCmd(g *globals) *cobra.Command {
	var req api.HostOnline
	cmd := &cobra.Command{
		Use:   "online HOST [--evacuation ID]",
		Short: "End a host's evacuation: it may take VMs again (none moves back by itself)",
		Long: `vmha host online ends the evacuation of HOST: nothing new is kept off it any
more; no VM moves back by itself (only what the rules and stickiness allow).
Moves under way finish. The end names the evacuation it ends (the one under
way when the leader takes the request, or --evacuation ID, as vmha status -o
json shows it), so that the leader's evacuation work already in flight cannot
bring it back, and a script cannot end an evacuation started after it looked
(409).`,
		Args: exactArgs(1, "HOST"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := g.ctx()
			defer cancel()
			if err := g.client().Do(ctx, http.MethodPost, api.PathHostAction+"/"+url.PathEscape(args[0])+"/online", req, nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(g.out, "%s is online: it may take VMs again\n", args[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&req.EvacuationID, "evacuation", "", "end only this evacuation (its ID); refused if another one is under way")
	return cmd
}

func newHostAttrCmd(g *globals) *cobra.Command {
	attr := &cobra.Command{Use: "attr", Short: "Host attributes that placement rules read (zone, rack, anything)"}
	var transient bool
	set := func(use, short string, del bool) *cobra.Command {
		c := &cobra.Command{
			Use:   use,
			Short: short,
			Args: func(_ *cobra.Command, args []string) error {
				if want := map[bool]int{false: 3, true: 2}[del]; len(args) != want {
					return usageError{fmt.Errorf("want %s, got %d argument(s)", strings.TrimPrefix(use, strings.Fields(use)[0]+" "), len(args))}
				}
				return nil
			},
			RunE: func(cmd *cobra.Command, args []string) error {
				req := api.HostAttr{Key: args[1], Transient: transient}
				if !del {
					req.Value = args[2]
					if req.Value == "" {
						return usageError{fmt.Errorf("an empty value: use vmha host attr delete %s %s", args[0], args[1])}
					}
				}
				ctx, cancel := g.ctx()
				defer cancel()
				if err := g.client().Do(ctx, http.MethodPost, api.PathHostAction+"/"+url.PathEscape(args[0])+"/attr", req, nil, nil); err != nil {
					return err
				}
				kind := "permanent"
				if transient {
					kind = "transient (until its vmhad restarts)"
				}
				if del {
					fmt.Fprintf(g.out, "%s: %s deleted (%s)\n", args[0], args[1], kind)
				} else {
					fmt.Fprintf(g.out, "%s: %s=%s (%s)\n", args[0], args[1], req.Value, kind)
				}
				return nil
			},
		}
		c.Flags().BoolVar(&transient, "transient", false, "the attribute lasts until the host's vmhad restarts")
		return c
	}
	attr.AddCommand(
		set("set HOST KEY VALUE", "Set a host attribute (permanent, or --transient)", false),
		set("delete HOST KEY", "Delete a host attribute", true),
	)
	return attr
}
