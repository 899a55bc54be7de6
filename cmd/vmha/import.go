package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/vmha/vmha/clusterspec"
	"github.com/vmha/vmha/internal/pacemaker"
)

func newImportCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "import",
		Short: "Translate another cluster manager's configuration into cluster.yaml",
	}
	var statusOut, corosync string
	pm := &cobra.Command{
		Use:   "pacemaker CIB.xml",
		Short: "Translate a Pacemaker CIB into cluster.yaml (on stdout)",
		Long: `import pacemaker reads a CIB (cibadmin --query > cib.xml) and writes the
equivalent cluster.yaml on stdout: nodes with utilization and attributes,
every primitive as a VM, locations and rules, colocations, rsc_defaults and
the cluster options. What it cannot translate (groups, clones, bundles, order
constraints, tickets, resource sets) is listed as warnings on stderr, and so
is every unsafe setting it meets (stonith-enabled=false, no-quorum-policy=
ignore; with --corosync, quorum settings that cannot hold, like expected_votes
2 without two_node), with what vmha does instead.
--status-out also writes where resources run and their fail counts as a
status.yaml for vmha plan --status.`,
		Args: exactArgs(1, "the CIB file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			in, warn, err := pacemaker.ReadCIB(data, time.Now())
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			for _, w := range warn {
				fmt.Fprintln(cmd.ErrOrStderr(), "vmha: warning: "+args[0]+": "+w)
			}
			unsafe, err := pacemaker.UnsafeSettings(data)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			for _, w := range unsafe {
				fmt.Fprintln(cmd.ErrOrStderr(), "vmha: warning: "+args[0]+": unsafe: "+w)
			}
			if corosync != "" {
				cd, err := os.ReadFile(corosync)
				if err != nil {
					return err
				}
				q, err := pacemaker.ParseCorosync(cd)
				if err != nil {
					return fmt.Errorf("%s: %w", corosync, err)
				}
				for _, w := range q.Unsafe() {
					fmt.Fprintln(cmd.ErrOrStderr(), "vmha: warning: "+corosync+": unsafe: "+w)
				}
			}
			spec, st := clusterspec.FromInput(&in)
			y, err := clusterspec.Marshal(spec)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.out, "# Translated from the Pacemaker CIB %s by vmha import pacemaker.\n", args[0])
			if _, err := g.out.Write(y); err != nil {
				return err
			}
			if statusOut != "" {
				sy, err := clusterspec.Marshal(st)
				if err != nil {
					return err
				}
				if err := os.WriteFile(statusOut, sy, 0o644); err != nil {
					return err
				}
			}
			return nil
		},
	}
	pm.Flags().StringVar(&statusOut, "status-out", "", "also write the CIB's status (where resources run, fail counts) as status.yaml to this file")
	pm.Flags().StringVar(&corosync, "corosync", "", "also read this corosync.conf and warn about quorum settings that cannot hold")
	cmd.AddCommand(pm)
	return cmd
}
