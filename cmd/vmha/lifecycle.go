package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/model"
)

// addVMLifecycle adds the VM lifecycle verbs to vmha vm: set, start, stop,
// unmanage, manage, failcount, cleanup.
func addVMLifecycle(g *globals, vm *cobra.Command) {
	var state, reason, ifState string
	set := &cobra.Command{
		Use:   "set VM --state started|stopped|disabled|ignored [--reason TEXT] [--if STATE]",
		Short: "Set a VM's target state, kept in the replicated state (as ha-manager set --state)",
		Long: `Set what the cluster keeps a VM at. The target lives in the replicated state,
apart from the rules (vmha rules apply never drops it), survives failover and
leader changes, and wins over cluster.yaml's target-state and managed:

  started   run it, move it, recover it (the default)
  stopped   stop it and keep it stopped: a notice in vmha status, not a problem
  disabled  as stopped, and its fail counts are cleared (the way out of a VM
            that failed everywhere)
  ignored   unmanaged: never started, stopped or moved by vmha, whatever it
            observes; recorded where it runs

--state "" (or vmha vm set VM --clear) hands the VM back to the rules.
--if STATE makes the change a compare-and-set: it is refused (exit 1) when
another operator changed the VM's target since ("-" for "none set").`,
		Args: exactArgs(1, "VM"),
		RunE: func(cmd *cobra.Command, args []string) error {
			clearIt, _ := cmd.Flags().GetBool("clear")
			if clearIt == cmd.Flags().Changed("state") {
				return usageError{fmt.Errorf("give --state STATE or --clear")}
			}
			if !clearIt {
				if _, err := model.ParseTarget(state); err != nil {
					return usageError{fmt.Errorf("--state: %w", err)}
				}
			}
			return setVMState(g, args[0], api.VMStateRequest{State: state, Reason: reason, If: ifState})
		},
	}
	set.Flags().StringVar(&state, "state", "", "started, stopped, disabled or ignored")
	set.Flags().Bool("clear", false, "clear the operator's target: the rules decide again")
	set.Flags().StringVar(&reason, "reason", "", "why, for the event log")
	set.Flags().StringVar(&ifState, "if", "", "only if the VM's target is still this (compare-and-set; - for none)")
	vm.AddCommand(set)
	for _, v := range []struct{ use, target, short string }{
		{"start", "started", "Start a VM and keep it running (target started)"},
		{"stop", "stopped", "Stop a VM and keep it stopped, also across failovers (target stopped)"},
		{"unmanage", "ignored", "Take a VM out of vmha's hands and leave it as it is (target ignored)"},
		{"manage", "started", "Hand a VM back to vmha: it is kept running where it runs (target started)"},
	} {
		var why string
		c := &cobra.Command{
			Use:   v.use + " VM [--reason TEXT]",
			Short: v.short,
			Args:  exactArgs(1, "VM"),
			RunE: func(cmd *cobra.Command, args []string) error {
				return setVMState(g, args[0], api.VMStateRequest{State: v.target, Reason: why})
			},
		}
		c.Flags().StringVar(&why, "reason", "", "why, for the event log")
		vm.AddCommand(c)
	}
	vm.AddCommand(newFailcountCmd(g), newCleanupCmd(g))
}

func setVMState(g *globals, vm string, req api.VMStateRequest) error {
	req.RequestedBy = whoAmI()
	ctx, cancel := g.ctx()
	defer cancel()
	var t api.VMTarget
	if err := g.client().Do(ctx, http.MethodPost, api.PathVMs+"/"+url.PathEscape(vm)+"/state", req, &t, nil); err != nil {
		return err
	}
	if g.output == "json" {
		return g.printJSON(t)
	}
	switch t.Source {
	case "operator":
		fmt.Fprintf(g.out, "vm %s: target %s (set by %s)\n", t.VM, t.Target, t.By)
	default:
		fmt.Fprintf(g.out, "vm %s: target %s (from the %s)\n", t.VM, t.Target, t.Source)
	}
	return nil
}

func newFailcountCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "failcount [VM]",
		Short: "Show fail counts: failed defines and starts per VM and host, and whether they keep the VM off a host",
		Long: `Show the fail counts the cluster keeps (Pacemaker's fail-count): each failed
define or start of a VM on a host counts once. At the VM's migration-threshold
(cluster.yaml; 3 by default) the VM is kept off that host until its
failure-timeout (10 minutes by default) has passed since the last failure, or
until vmha vm cleanup.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := api.PathFailures
			if len(args) == 1 {
				path += "?vm=" + url.QueryEscape(args[0])
			}
			return read(g, path, func(fs []api.Failure) error {
				if len(fs) == 0 {
					fmt.Fprintln(g.out, "no failures")
					return nil
				}
				tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "VM\tHOST\tCOUNT\tTHRESHOLD\tLAST\tKEPT OFF\tERROR")
				for _, f := range fs {
					th := "never"
					if f.Threshold > 0 {
						th = fmt.Sprint(f.Threshold)
					}
					off := "no"
					if f.Banned {
						off = "until " + f.Expires.Local().Format(time.DateTime)
					}
					fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s ago\t%s\t%s\n", f.VM, f.Host, f.Count, th, time.Since(f.Last).Round(time.Second), off, dash(f.Error))
				}
				return tw.Flush()
			})
		},
	}
}

func newCleanupCmd(g *globals) *cobra.Command {
	var host string
	c := &cobra.Command{
		Use:   "cleanup VM [--host H]",
		Short: "Clear a VM's fail counts (on one host with --host): it may run there again",
		Args:  exactArgs(1, "VM"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := g.ctx()
			defer cancel()
			req := api.Cleanup{Host: host, RequestedBy: whoAmI()}
			if err := g.client().Do(ctx, http.MethodPost, api.PathVMs+"/"+url.PathEscape(args[0])+"/cleanup", req, nil, nil); err != nil {
				return err
			}
			where := "every host"
			if host != "" {
				where = host
			}
			fmt.Fprintf(g.out, "vm %s: fail counts on %s cleared\n", args[0], where)
			return nil
		},
	}
	c.Flags().StringVar(&host, "host", "", "clear only this host's fail count")
	return c
}

func newRelocateCmd(g *globals) *cobra.Command {
	var to string
	var wait, dryRun bool
	var timeout time.Duration
	c := &cobra.Command{
		Use:   "relocate VM --to HOST [--wait [--timeout D]] [--dry-run]",
		Short: "Move a VM cold: shut it down where it runs, then start it on HOST",
		Long: `Move a VM cold (Proxmox's relocate): it is shut down on its host, which
confirms it inactive, and only then started on HOST. Use it for a VM that
cannot move live; vmha migrate moves a VM live. Nothing is pinned: the rules
may move it again (vmha migrate --pin keeps a VM on a host).`,
		Args: exactArgs(1, "VM"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if to == "" {
				return usageError{fmt.Errorf("--to HOST is required")}
			}
			ctx, cancel := g.ctx()
			defer cancel()
			var p model.Placement
			req := api.MigrateRequest{To: to, RequestedBy: whoAmI(), DryRun: dryRun}
			if dryRun {
				var d api.MoveDryRun
				if err := g.client().Do(ctx, http.MethodPost, api.PathVMs+"/"+url.PathEscape(args[0])+"/relocate", req, &d, nil); err != nil {
					return err
				}
				return printDryRun(g, d)
			}
			if err := g.client().Do(ctx, http.MethodPost, api.PathVMs+"/"+url.PathEscape(args[0])+"/relocate", req, &p, nil); err != nil {
				return err
			}
			if !wait {
				if g.output == "json" {
					return g.printJSON(p)
				}
				fmt.Fprintf(g.out, "vm %s: relocating from %s to %s (%s)\n", p.VM, p.MigrateFrom, p.Host, p.MigrationID)
				return nil
			}
			wctx, wcancel := context.WithTimeout(context.Background(), timeout)
			defer wcancel()
			v, err := waitRunning(wctx, g, p.VM, p.Host)
			if g.output == "json" && v != nil {
				_ = g.printJSON(v)
			}
			if err != nil {
				return err
			}
			if g.output != "json" {
				fmt.Fprintf(g.out, "vm %s: relocated from %s, running on %s\n", p.VM, p.MigrateFrom, v.Host)
			}
			return nil
		},
	}
	c.Flags().StringVar(&to, "to", "", "the host to start it on")
	c.Flags().BoolVar(&wait, "wait", false, "wait until it runs on HOST")
	c.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "how long --wait waits")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "check everything and say what would happen, move nothing")
	return c
}

// waitRunning polls the status until vm runs on host.
func waitRunning(ctx context.Context, g *globals, vm, host string) (*api.VM, error) {
	for {
		s, err := g.client().Status(ctx)
		if err == nil {
			for i := range s.VMs {
				v := &s.VMs[i]
				if v.Name != vm {
					continue
				}
				if v.Host != host && v.MigratingFrom == "" {
					return v, fmt.Errorf("vm %s is placed on %s now, not %s: %s", vm, dash(v.Host), host, v.Reason)
				}
				if v.Host == host && v.MigratingFrom == "" && v.State == string(model.DomainRunning) {
					return v, nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("vm %s is not running on %s yet: %w", vm, host, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func newEventsCmd(g *globals) *cobra.Command {
	var since, vm, host, recovery, kind string
	var follow bool
	var limit int
	c := &cobra.Command{
		Use:   "events [--since D] [--vm X] [--host H] [--recovery ID] [--kind K] [-f] [-o json]",
		Short: "The cluster's memory: every operator command, fence, recovery, move, rule and state change, with who and why",
		Long: `Show the replicated event log (the last 10,000 events), oldest first: the
time, the kind (vm, host, cluster, rules, fence, rebalance), the object, the
action, its result, the authenticated principal ("cluster" for the leader's
own decisions) and the reason (for a placement, the engine's explanation).

-f follows the log as it grows (Ctrl-C ends it). With -o json the events are
printed as one JSON array, or with -f as JSON lines (one event per line).`,
		Args: exactArgs(0, "no argument"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			for k, v := range map[string]string{"since": since, "vm": vm, "host": host, "recovery": recovery, "kind": kind} {
				if v != "" {
					q.Set(k, v)
				}
			}
			if limit > 0 {
				q.Set("limit", fmt.Sprint(limit))
			}
			return showEvents(g, q, follow)
		},
	}
	c.Flags().StringVar(&since, "since", "", "only events newer than this (a duration such as 2h, or a time 2026-12-05T03:00:00Z)")
	c.Flags().StringVar(&vm, "vm", "", "only this VM's events")
	c.Flags().StringVar(&host, "host", "", "only events of or involving this host")
	c.Flags().StringVar(&recovery, "recovery", "", "only this recovery's events (a recovery id, rcv-...)")
	c.Flags().StringVar(&kind, "kind", "", "only events of this kind: vm, host, cluster, rules, fence or rebalance")
	c.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new events")
	c.Flags().IntVar(&limit, "limit", 0, "at most this many (the newest)")
	return c
}

func showEvents(g *globals, q url.Values, follow bool) error {
	ctx := context.Background()
	if !follow {
		var cancel context.CancelFunc
		ctx, cancel = g.ctx()
		defer cancel()
	}
	var tw *tabwriter.Writer
	header := true
	for {
		var evs api.Events
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := g.client().Do(rctx, http.MethodGet, api.PathEvents+"?"+q.Encode(), nil, &evs, nil)
		cancel()
		if err != nil {
			if !follow {
				return err
			}
			fmt.Fprintf(os.Stderr, "vmha: events: %v; retrying\n", err)
		} else {
			if err := printEvents(g, evs.Events, follow, &tw, &header); err != nil {
				return err
			}
			if !follow {
				return nil
			}
			q.Set("after", fmt.Sprint(evs.Last))
			q.Del("since")
			q.Del("limit")
		}
		time.Sleep(time.Second)
	}
}

func printEvents(g *globals, evs []model.Event, follow bool, tw **tabwriter.Writer, header *bool) error {
	if g.output == "json" {
		if !follow {
			return g.printJSON(evs)
		}
		for _, e := range evs {
			if err := g.printJSONLine(e); err != nil {
				return err
			}
		}
		return nil
	}
	if len(evs) == 0 && !follow {
		fmt.Fprintln(g.out, "no events")
		return nil
	}
	if *tw == nil {
		*tw = tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
	}
	if *header && len(evs) > 0 {
		fmt.Fprintln(*tw, "TIME\tKIND\tOBJECT\tACTION\tRESULT\tBY\tDETAIL")
		*header = false
	}
	for _, e := range evs {
		var detail []string
		if e.Host != "" && e.Host != e.Object {
			detail = append(detail, "host "+e.Host)
		}
		if e.Reason != "" {
			detail = append(detail, e.Reason)
		}
		if e.RecoveryID != "" {
			detail = append(detail, e.RecoveryID)
		}
		if e.MigrationID != "" {
			detail = append(detail, e.MigrationID)
		}
		fmt.Fprintf(*tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.At.Local().Format("2006-01-02 15:04:05"), e.Kind, e.Object, e.Action,
			dash(e.Result), e.Principal, strings.Join(detail, "; "))
	}
	return (*tw).Flush()
}

func newClusterMaintenanceCmd(g *globals) *cobra.Command {
	var off bool
	var reason string
	c := &cobra.Command{
		Use:   "maintenance [--off] [--reason TEXT]",
		Short: "Put the whole cluster in maintenance: nothing is started, stopped, moved or fenced (Pacemaker's maintenance-mode)",
		Long: `Put the whole cluster in maintenance (Pacemaker's maintenance-mode=true): the
leader decides nothing (no start, stop, move, recovery or fence) and every
agent leaves its VMs as they are; monitoring and reports go on, and vmha
status says so on every line. --off ends it; the cluster then acts on what it
finds (a host that died meanwhile is fenced and its VMs recovered).`,
		Args: exactArgs(0, "no argument"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := g.ctx()
			defer cancel()
			req := api.HostOp{On: !off, Reason: reason, RequestedBy: whoAmI()}
			if err := g.client().Do(ctx, http.MethodPost, api.PathClusterMaintenance, req, nil, nil); err != nil {
				return err
			}
			if off {
				fmt.Fprintln(g.out, "cluster maintenance ended: the cluster acts again")
			} else {
				fmt.Fprintln(g.out, "cluster in maintenance: nothing is started, stopped, moved or fenced until vmha cluster maintenance --off")
			}
			return nil
		},
	}
	c.Flags().BoolVar(&off, "off", false, "end the maintenance")
	c.Flags().StringVar(&reason, "reason", "", "why, for status and the event log")
	return c
}
