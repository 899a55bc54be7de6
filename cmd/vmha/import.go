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
	var statusOut string
	pm := &cobra.Command{
		Use:   "pacemaker CIB.xml",
		Short: "Translate a Pacemaker CIB into cluster.yaml (on stdout)",
		Long: `import pacemaker reads a CIB (cibadmin --query > cib.xml) and writes the
equivalent cluster.yaml on stdout: nodes with utilization and attributes,
every primitive as a VM, locations and rules, colocations, rsc_defaults and
the cluster options. What it cannot translate (groups, clones, bundles, order
constraints, tickets, resource sets) is listed as warnings on stderr.
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
	cmd.AddCommand(pm)
	return cmd
}
