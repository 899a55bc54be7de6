package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/spf13/cobra"

	"github.com/vmha/vmha/api"
)

func newMigrateCmd(g *globals) *cobra.Command {
	var to string
	var wait bool
	var waitFor time.Duration
	cmd := &cobra.Command{
		Use:   "migrate VM [--to HOST] [--wait]",
		Short: "Move a running VM live to another host",
		Long: `vmha migrate moves a running VM live (libvirt peer-to-peer migration) to HOST,
or, without --to, to the alive host with the most free memory. The move is
committed to the cluster's log and run by the VM's current host; nothing is
pinned: the VM stays on the new host only as long as the cluster's rules allow.

With --wait, vmha waits until the move ended and exits 0 only if the VM runs on
the target; a move that failed leaves the VM running on its source, and vmha
says why and exits 1.`,
		Args: exactArgs(1, "VM"),
		RunE: func(cmd *cobra.Command, args []string) error {
			vm := args[0]
			ctx, cancel := g.ctx()
			defer cancel()
			var v api.VM
			req := api.MigrateRequest{To: to, RequestedBy: whoAmI()}
			if err := g.client().Do(ctx, http.MethodPost, api.PathVMs+"/"+url.PathEscape(vm)+"/migrate", req, &v, nil); err != nil {
				return err
			}
			if !wait {
				if g.output == "json" {
					return g.printJSON(v)
				}
				fmt.Fprintf(g.out, "%s: moving live from %s to %s (%s)\n", vm, v.MigratingFrom, v.Host, v.MigrationID)
				return nil
			}
			return waitMigration(g, vm, v, waitFor)
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "target host (default: the alive host with the most free memory)")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the move ended; exit 1 if the VM did not arrive")
	cmd.Flags().DurationVar(&waitFor, "wait-timeout", 15*time.Minute, "give up waiting after this long (the move goes on)")
	return cmd
}

// waitMigration polls the status until the move started as v ended.
func waitMigration(g *globals, vm string, v api.VM, waitFor time.Duration) error {
	start := time.Now()
	deadline := start.Add(waitFor)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), g.timeout)
		s, err := g.client().Status(ctx)
		cancel()
		if err == nil {
			for _, cur := range s.VMs {
				if cur.Name != vm || cur.MigrationID == v.MigrationID {
					continue
				}
				// The move ended: where does the VM run?
				if g.output == "json" {
					if err := g.printJSON(cur); err != nil {
						return err
					}
				}
				if cur.Host == v.Host {
					if g.output != "json" {
						fmt.Fprintf(g.out, "%s: moved live from %s to %s in %.1f s (%s)\n", vm, v.MigratingFrom, v.Host, time.Since(start).Seconds(), cur.Reason)
					}
					return nil
				}
				return fmt.Errorf("%s did not move to %s: %s", vm, v.Host, cur.Reason)
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: still moving from %s to %s after %s (the move goes on; see vmha status)", vm, v.MigratingFrom, v.Host, waitFor)
		}
		if g.output != "json" && int(time.Since(start).Seconds())%5 == 0 {
			fmt.Fprintf(g.out, "%s: moving to %s… %.0f s\n", vm, v.Host, time.Since(start).Seconds())
		}
		time.Sleep(time.Second)
	}
}
