package main

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/spf13/cobra"

	"github.com/vmha/vmha/api"
)

// hostOp posts a host operation and prints done on success.
func hostOp(g *globals, method, host, action string, req api.HostOp, done string) error {
	req.RequestedBy = whoAmI()
	ctx, cancel := g.ctx()
	defer cancel()
	path := api.PathHostAction + "/" + url.PathEscape(host)
	if action != "" {
		path += "/" + action
	}
	if err := g.client().Do(ctx, method, path, req, nil, nil); err != nil {
		return err
	}
	fmt.Fprintln(g.out, done)
	return nil
}

func newHostAddCmd(g *globals) *cobra.Command {
	var undo bool
	cmd := &cobra.Command{
		Use:   "add HOST [--undo]",
		Short: "Announce a host that will join (then start its vmhad with join: set)",
		Long: `vmha host add announces HOST before its vmhad joins: vmha status lists it until
it has registered, quorum.wait_for_all waits for it, and with admission: closed
(vmhad.yaml) a host may register only once it was announced. The host itself
joins by starting vmhad with join: pointing at any member; --undo withdraws an
announcement.`,
		Args: exactArgs(1, "HOST"),
		RunE: func(cmd *cobra.Command, args []string) error {
			done := args[0] + " announced: start its vmhad with join: set to any member"
			if undo {
				done = args[0] + ": announcement withdrawn"
			}
			return hostOp(g, http.MethodPost, args[0], "expect", api.HostOp{On: !undo}, done)
		},
	}
	cmd.Flags().BoolVar(&undo, "undo", false, "withdraw the announcement")
	return cmd
}

func newHostRemoveCmd(g *globals) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "remove HOST --yes",
		Short: "Take a host out of the cluster for good (its vmhad stopped, no VM placed on it)",
		Long: `vmha host remove takes HOST out of the cluster: its vote, its gossip entry, its
fence devices, attributes and history entries in the state. It is refused while
HOST's vmhad is alive (evacuate it, then systemctl stop vmhad on it) or while a
VM is placed on it. Running vmhad again on it with join: set makes it a new
member.`,
		Args: exactArgs(1, "HOST"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := confirm(cmd, yes, args[0], "Remove host "+args[0]+" from the cluster?"); err != nil {
				return err
			}
			return hostOp(g, http.MethodDelete, args[0], "", api.HostOp{}, args[0]+" removed from the cluster")
		},
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "do not ask")
	return cmd
}

func newHostMaintenanceCmd(g *globals) *cobra.Command {
	var off bool
	var reason string
	cmd := &cobra.Command{
		Use:   "maintenance HOST [--off] [--reason TEXT]",
		Short: "Work on a host's vmhad (restart, upgrade) with no fence and no VM moved",
		Long: `vmha host maintenance HOST covers work on the host's vmhad itself (an upgrade,
a restart, even a crash meanwhile): while it lasts, HOST is not fenced when it
drops out of gossip, its VMs keep running under libvirtd and are neither moved
nor recovered, and nothing new starts there. vmha status says so. --off ends it
once the daemon is back. For work on the hypervisor itself, use vmha evacuate.`,
		Args: exactArgs(1, "HOST"),
		RunE: func(cmd *cobra.Command, args []string) error {
			done := args[0] + " is in maintenance: it will not be fenced, its VMs stay; vmha host maintenance " + args[0] + " --off ends it"
			if off {
				done = args[0] + ": maintenance ended"
			}
			return hostOp(g, http.MethodPost, args[0], "maintenance", api.HostOp{On: !off, Reason: reason}, done)
		},
	}
	cmd.Flags().BoolVar(&off, "off", false, "end the maintenance")
	cmd.Flags().StringVar(&reason, "reason", "", "why (shown in vmha status)")
	return cmd
}
