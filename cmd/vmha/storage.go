package main

import (
	"fmt"
	"net/http"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/vmha/vmha/api"
)

func newStorageCmd(g *globals) *cobra.Command {
	st := &cobra.Command{Use: "storage", Short: "Shared storage (cluster file systems, shared volume groups)"}
	st.AddCommand(&cobra.Command{
		Use:   "check",
		Short: "Check this host's cluster file systems: ready (mounted, lock manager, I/O) and formatted right for the cluster",
		Long: `vmha storage check asks the local vmhad to check each configured cluster file
system on this host: mounted at its mount point with the right type, its lock
manager running, a write-then-read probe answering; and its on-disk format:
GFS2 journals and OCFS2 slots at least the number of hosts, the lock table
(CLUSTER:FS) and the OCFS2 cluster stack and name. Exit 1 if anything is wrong.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := g.ctx()
			defer cancel()
			var c api.StorageCheck
			if err := g.client().Do(ctx, http.MethodGet, api.PathLocalStorage, nil, &c, nil); err != nil {
				return err
			}
			if g.output == "json" {
				if err := g.printJSON(c); err != nil {
					return err
				}
			} else {
				tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
				fmt.Fprintf(g.out, "%s (a cluster of %d hosts)\n", c.Host, c.Hosts)
				fmt.Fprintln(tw, "FILE SYSTEM\tREADY\tFORMAT\tWHY")
				for _, f := range c.FileSystems {
					format := "ok"
					if !f.FormatOK {
						format = "WRONG"
					}
					why := append(append([]string{}, f.Reasons...), f.FormatError)
					fmt.Fprintf(tw, "%s\t%v\t%s\t%s\n", f.Name, f.Ready, format, strings.Trim(strings.Join(why, "; "), "; "))
				}
				_ = tw.Flush()
			}
			// The exit code is the verdict, in both output formats.
			var bad []string
			for _, f := range c.FileSystems {
				if !f.Ready || !f.FormatOK {
					bad = append(bad, f.Name)
				}
			}
			if len(bad) > 0 {
				return fmt.Errorf("storage not ready or wrongly formatted on %s: %s", c.Host, strings.Join(bad, ", "))
			}
			return nil
		},
	})
	return st
}
