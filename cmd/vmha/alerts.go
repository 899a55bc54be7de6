package main

import (
	"fmt"
	"net/http"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/vmha/vmha/api"
)

func newAlertCmd(g *globals) *cobra.Command {
	alert := &cobra.Command{Use: "alert", Short: "Alerts: the leader's calls of alert agents and webhooks for every event (docs/alerts.md)"}
	test := &cobra.Command{
		Use:   "test [NAME]",
		Short: "Send a test event to every alert target (or NAME) now, from the leader, and show each result",
		Long: `Send a test event (kind cluster, action test) to the leader's alert targets
now: each agent is run with Pacemaker's CRM_alert_* environment and each
webhook is posted to, with their timeouts and retries. Exits 1 when a target
failed.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := api.AlertTest{RequestedBy: whoAmI()}
			if len(args) == 1 {
				req.Name = args[0]
			}
			ctx, cancel := g.ctx()
			defer cancel()
			var res []api.AlertResult
			if err := g.client().Do(ctx, http.MethodPost, api.PathAlertTest, req, &res, nil); err != nil {
				return err
			}
			failed := 0
			for _, r := range res {
				if !r.OK {
					failed++
				}
			}
			if g.output == "json" {
				if err := g.printJSON(res); err != nil {
					return err
				}
			} else {
				tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ALERT\tRESULT\tTOOK\tERROR")
				for _, r := range res {
					ok := "ok"
					if !r.OK {
						ok = "FAILED"
					}
					fmt.Fprintf(tw, "%s\t%s\t%.2fs\t%s\n", r.Name, ok, r.Seconds, dash(r.Error))
				}
				if err := tw.Flush(); err != nil {
					return err
				}
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d alert targets failed", failed, len(res))
			}
			return nil
		},
	}
	alert.AddCommand(test)
	return alert
}
