package main

import (
	"fmt"
	"net/http"
	"net/url"
	"os"

	"github.com/spf13/cobra"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/clusterspec"
	"github.com/vmha/vmha/placement"
)

func newRulesCmd(g *globals) *cobra.Command {
	rules := &cobra.Command{Use: "rules", Short: "The placement rules the cluster follows (a cluster.yaml)"}
	apply := &cobra.Command{
		Use:   "apply FILE",
		Short: "Replace the cluster's placement rules with FILE (checked first; bad rules change nothing)",
		Long: `vmha rules apply replaces the placement rules of the running cluster with a
cluster.yaml, the same file vmha plan reads offline: policy, host capacities,
attributes, standby and maintenance, VM utilization, priorities, stickiness,
allow-migrate, and location and colocation constraints. The file may name only
hosts and VMs the cluster has. Running VMs the rules want elsewhere move live
when they allow it; one that cannot move live stays where it runs.`,
		Args: exactArgs(1, "FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := os.ReadFile(args[0])
			if err != nil {
				return fmt.Errorf("read rules: %w", err)
			}
			spec, err := clusterspec.Parse(b)
			if err == nil {
				_, err = spec.Input(nil)
			}
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			ctx, cancel := g.ctx()
			defer cancel()
			if err := g.client().Do(ctx, http.MethodPost, api.PathRules, api.Rules{YAML: string(b)}, nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(g.out, "placement rules from %s applied (%d hosts, %d VMs, %d locations, %d colocations)\n",
				args[0], len(spec.Hosts), len(spec.VMs), len(spec.Constraints.Locations), len(spec.Constraints.Colocations))
			return nil
		},
	}
	show := &cobra.Command{
		Use:   "show",
		Short: "Print the cluster's placement rules",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return read(g, api.PathRules, func(r api.Rules) error {
				if r.YAML == "" {
					fmt.Fprintln(g.out, "# no placement rules: preferred host, then the most free memory")
					return nil
				}
				fmt.Fprint(g.out, r.YAML)
				return nil
			})
		},
	}
	clearCmd := &cobra.Command{
		Use:   "clear",
		Short: "Drop the placement rules (back to the built-in defaults)",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := g.ctx()
			defer cancel()
			if err := g.client().Do(ctx, http.MethodPost, api.PathRules, api.Rules{}, nil, nil); err != nil {
				return err
			}
			fmt.Fprintln(g.out, "placement rules cleared")
			return nil
		},
	}
	rules.AddCommand(apply, show, clearCmd)
	return rules
}

func newExplainCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "explain VM",
		Short: "Explain where the placement engine puts VM now, host by host",
		Args:  exactArgs(1, "VM"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return read(g, api.PathExplain+"/"+url.PathEscape(args[0]), func(ex placement.Explanation) error {
				printExplanation(g, &ex) // the same view as vmha plan --explain
				return nil
			})
		},
	}
}
