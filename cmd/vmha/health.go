package main

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/spf13/cobra"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/cluster/decide"
)

// newHostHealthCmd is vmha host health: the node-health hold
// (docs/health.md).
func newHostHealthCmd(g *globals) *cobra.Command {
	h := &cobra.Command{Use: "health", Short: "Host health (#health-* attributes) and the hold that keeps VMs away after it"}
	var force bool
	clearCmd := &cobra.Command{
		Use:   "clear HOST",
		Short: "Clear the health hold of a host that is green again: VMs may come back",
		Long: `clear deletes the health-hold attribute the leader set when the host's health
(#health-* attributes: its BMC's sensors) sent its VMs away under the cluster's
node-health-strategy. It is refused while the host's health is still yellow or
red (the leader would hold it again at once); --force clears it anyway.`,
		Args: exactArgs(1, "HOST"),
		RunE: func(cmd *cobra.Command, args []string) error { return clearHealthHold(g, args[0], force) },
	}
	clearCmd.Flags().BoolVar(&force, "force", false, "clear even while the host's health is yellow or red")
	h.AddCommand(clearCmd)
	return h
}

// clearHealthHold deletes name's health-hold attribute once its health is
// green (or force).
func clearHealthHold(g *globals, name string, force bool) error {
	ctx, cancel := g.ctx()
	defer cancel()
	st, err := g.client().Status(ctx)
	if err != nil {
		return err
	}
	var host *api.Host
	for i := range st.Hosts {
		if st.Hosts[i].Name == name {
			host = &st.Hosts[i]
		}
	}
	if host == nil {
		return usageError{fmt.Errorf("no host %s in the cluster", name)}
	}
	hold := host.Attributes[decide.HealthHoldAttr]
	if hold == "" {
		fmt.Fprintf(g.out, "%s has no health hold\n", name)
		return nil
	}
	if worst, which := decide.LiveHealth(host.Attributes); (worst == "red" || worst == "yellow") && !force {
		msg := fmt.Sprintf("%s's health is still %s (%v)", name, worst, which)
		if r := host.Attributes[decide.HealthReasonsAttr]; r != "" {
			msg += ": " + r
		}
		return fmt.Errorf("%s; not cleared (--force clears it anyway)", msg)
	}
	req := api.HostAttr{Key: decide.HealthHoldAttr}
	if err := g.client().Do(ctx, http.MethodPost, api.PathHostAction+"/"+url.PathEscape(name)+"/attr", req, nil, nil); err != nil {
		return err
	}
	fmt.Fprintf(g.out, "%s: health hold (%s) cleared: VMs may come back as the rules want\n", name, hold)
	return nil
}
