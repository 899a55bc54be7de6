package main

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vmha/vmha/api"
)

func newWhatIfCmd(g *globals) *cobra.Command {
	var fail, standby []string
	c := &cobra.Command{
		Use:   "whatif [--fail HOST]... [--standby HOST]... [-o json]",
		Short: "Show what the cluster would do if hosts failed or went to standby now",
		Long: `whatif asks the leader's placement engine, on the live cluster, what it
would do if the --fail hosts failed (and were fenced: their VMs are restarted
on other hosts, never moved live) and the --standby hosts went to standby
(their VMs leave, live where the target takes live migrations and the VM
runs). Nothing changes: it prints the actions, the VMs that would have
nowhere to run and why, and each host's memory before and after.
The same engine decides for real (docs/whatif.md).`,
		Args: exactArgs(0, "no argument"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(fail) == 0 && len(standby) == 0 {
				return usageError{fmt.Errorf("give --fail HOST and/or --standby HOST")}
			}
			q := url.Values{}
			if len(fail) > 0 {
				q.Set("fail", strings.Join(fail, ","))
			}
			if len(standby) > 0 {
				q.Set("standby", strings.Join(standby, ","))
			}
			ctx, cancel := g.ctx()
			defer cancel()
			var wi api.WhatIf
			if err := g.client().Do(ctx, http.MethodGet, api.PathWhatIf+"?"+q.Encode(), nil, &wi, nil); err != nil {
				return err
			}
			if g.output == "json" {
				return g.printJSON(wi)
			}
			printWhatIf(g, wi)
			return nil
		},
	}
	c.Flags().StringSliceVar(&fail, "fail", nil, "a host that fails (repeatable, or comma-separated)")
	c.Flags().StringSliceVar(&standby, "standby", nil, "a host that goes to standby (repeatable, or comma-separated)")
	return c
}

func printWhatIf(g *globals, wi api.WhatIf) {
	var what []string
	if len(wi.Fail) > 0 {
		what = append(what, strings.Join(wi.Fail, ", ")+" failed")
	}
	if len(wi.Standby) > 0 {
		what = append(what, strings.Join(wi.Standby, ", ")+" went to standby")
	}
	fmt.Fprintf(g.out, "If %s now:\n", strings.Join(what, " and "))
	if len(wi.Actions) == 0 {
		fmt.Fprintln(g.out, "  nothing would move")
	}
	for _, a := range wi.Actions {
		var line string
		switch a.Action {
		case "restart":
			line = fmt.Sprintf("%s: restarted on %s (from %s, once it is fenced)", a.VM, a.To, a.From)
		case "migrate":
			line = fmt.Sprintf("%s: moved live %s → %s", a.VM, a.From, a.To)
		case "move":
			line = fmt.Sprintf("%s: shut down on %s, started on %s", a.VM, a.From, a.To)
		case "start":
			line = fmt.Sprintf("%s: started on %s", a.VM, a.To)
		case "stop":
			line = fmt.Sprintf("%s: stopped on %s", a.VM, a.From)
		default:
			line = fmt.Sprintf("%s: %s %s → %s", a.VM, a.Action, a.From, a.To)
		}
		fmt.Fprintf(g.out, "  step %d  %s\n", a.Step, line)
	}
	if len(wi.Stranded) > 0 {
		fmt.Fprintf(g.out, "Nowhere to run (%d):\n", len(wi.Stranded))
		for _, s := range wi.Stranded {
			fmt.Fprintf(g.out, "  %s (on %s): %s\n", s.VM, s.From, s.Why)
		}
	}
	fmt.Fprintln(g.out)
	tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tCONDITION\tMEMORY\tBEFORE\tAFTER\tVMS")
	for _, h := range wi.Hosts {
		over := ""
		if h.Overcommits {
			over = " (over)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d MiB\t%d MiB\t%d MiB%s\t%d → %d\n", h.Host, h.Condition, h.MemoryMiB, h.BeforeMiB, h.AfterMiB, over, h.VMsBefore, h.VMsAfter)
	}
	_ = tw.Flush()
}

func newRecoveriesCmd(g *globals) *cobra.Command {
	var limit int
	c := &cobra.Command{
		Use:   "recoveries [--limit N] [-o json]",
		Short: "Host losses and how their VMs were recovered: lost, fenced, restarted where and when",
		Long: `recoveries reads the event log back as one timeline per host loss, newest
first: when the host was lost, when its fence was confirmed (or failed), and
for each of its VMs where it was restarted, when it was placed and when its
new host reported it running. The phases (fence: lost → fenced; restart:
fenced → the last VM running) are measured as the demo measures them.`,
		Args: exactArgs(0, "no argument"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := api.PathRecoveries
			if limit > 0 {
				path += fmt.Sprintf("?limit=%d", limit)
			}
			ctx, cancel := g.ctx()
			defer cancel()
			var rs []api.Recovery
			if err := g.client().Do(ctx, http.MethodGet, path, nil, &rs, nil); err != nil {
				return err
			}
			if g.output == "json" {
				return g.printJSON(rs)
			}
			if len(rs) == 0 {
				fmt.Fprintln(g.out, "no host loss in the event log")
			}
			for i, r := range rs {
				if i > 0 {
					fmt.Fprintln(g.out)
				}
				fmt.Fprintf(g.out, "%s %s: %s\n", r.ID, r.Host, r.Summary)
				fmt.Fprintf(g.out, "  lost    %s  %s\n", stamp(r.LostAt), r.Reason)
				switch {
				case !r.FencedAt.IsZero():
					fmt.Fprintf(g.out, "  fenced  %s  %s\n", stamp(r.FencedAt), r.FencedBy)
				case !r.FenceFailedAt.IsZero():
					fmt.Fprintf(g.out, "  fence FAILED %s  %s\n", stamp(r.FenceFailedAt), r.FenceError)
				}
				for _, v := range r.VMs {
					switch {
					case v.Host == "":
						fmt.Fprintf(g.out, "  %s: nowhere to run: %s\n", v.VM, v.Stranded)
					case v.RunningAt.IsZero():
						fmt.Fprintf(g.out, "  %s: placed on %s at %s, not reported running there\n", v.VM, v.Host, stamp(v.PlacedAt))
					default:
						fmt.Fprintf(g.out, "  %s: placed on %s at %s, running at %s\n", v.VM, v.Host, stamp(v.PlacedAt), stamp(v.RunningAt))
					}
				}
			}
			return nil
		},
	}
	c.Flags().IntVar(&limit, "limit", 0, fmt.Sprintf("at most this many, the newest (default and most: %d)", api.MaxRecoveries))
	return c
}

// stamp is a time as the timelines print it, to the millisecond.
func stamp(t time.Time) string {
	return t.UTC().Format("2006-01-02 15:04:05.000Z")
}

// printDryRun prints what a migrate or relocate would do.
func printDryRun(g *globals, d api.MoveDryRun) error {
	if g.output == "json" {
		return g.printJSON(d)
	}
	how := "moved live"
	if d.How == "restart" {
		how = "shut down there and started on the target"
	}
	fmt.Fprintf(g.out, "dry run: %s would move from %s to %s (%s), nothing done\n  %s\n", d.VM, d.From, d.To, how, d.Reason)
	return nil
}
