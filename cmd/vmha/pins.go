package main

import (
	"fmt"
	"net/http"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vmha/vmha/api"
)

func newPinsCmd(g *globals) *cobra.Command {
	pins := &cobra.Command{
		Use:   "pins",
		Short: "List the pins (vmha migrate --pin): VMs kept on a host until the pin expires or is cleared",
		Args:  exactArgs(0, "no argument"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return read(g, api.PathPins, func(ps []api.Pin) error {
				if len(ps) == 0 {
					fmt.Fprintln(g.out, "no pins")
					return nil
				}
				tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "VM\tPINNED TO\tRUNS ON\tEXPIRES\tBY")
				for _, p := range ps {
					exp := "never"
					if !p.Expires.IsZero() {
						exp = fmt.Sprintf("%s (in %s)", p.Expires.Local().Format(time.DateTime), time.Until(p.Expires).Round(time.Second))
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.VM, p.Host, dash(p.RunningOn), exp, p.By)
				}
				return tw.Flush()
			})
		},
	}
	var all bool
	clearCmd := &cobra.Command{
		Use:   "clear [VM...] [--all]",
		Short: "Remove pins: the VMs' placement follows the rules and stickiness again (nothing moves back by itself unless they say so)",
		RunE: func(cmd *cobra.Command, args []string) error {
			if all == (len(args) > 0) {
				return usageError{fmt.Errorf("name the VMs whose pins go, or --all")}
			}
			ctx, cancel := g.ctx()
			defer cancel()
			var gone []string
			if err := g.client().Do(ctx, http.MethodPost, api.PathPins+"/clear", api.ClearPins{VMs: args, All: all, RequestedBy: whoAmI()}, &gone, nil); err != nil {
				return err
			}
			if g.output == "json" {
				return g.printJSON(gone)
			}
			if len(gone) == 0 {
				fmt.Fprintln(g.out, "no pins to clear")
			}
			for _, vm := range gone {
				fmt.Fprintf(g.out, "%s: pin cleared\n", vm)
			}
			return nil
		},
	}
	clearCmd.Flags().BoolVar(&all, "all", false, "clear every pin")
	pins.AddCommand(clearCmd)
	return pins
}
