package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

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
	st.AddCommand(newStorageInitCmd(g))
	return st
}

func newStorageInitCmd(g *globals) *cobra.Command {
	var req api.StorageInit
	cmd := &cobra.Command{
		Use:   "init FILESYSTEM --yes [--force] [--journals N]",
		Short: "Format a configured cluster file system for this cluster (destroys what the device holds)",
		Long: `vmha storage init formats FILESYSTEM, one of this host's storage.filesystems,
with the parameters the cluster needs: GFS2 with the lock table CLUSTER:FS and
one journal per host; OCFS2 with the cluster stack and name and one slot per
host (--journals N for room to grow; never fewer than the hosts). It then
reads the result back with tunegfs2 / tunefs.ocfs2 and checks it.

It refuses, and changes nothing: without --yes; when the device is mounted on
this host, or published ready (mounted) by any other host; when the device
holds a file system, an LVM PV or a partition table, unless --force. It only
runs through this host's own socket, never from another host.`,
		Args: exactArgs(1, "FILESYSTEM"),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.FileSystem = args[0]
			if req.Journals < 0 {
				return usageError{fmt.Errorf("--journals %d: want 1 or more", req.Journals)}
			}
			// mkfs of a large device takes a while.
			ctx, cancel := context.WithTimeout(context.Background(), max(g.timeout, 30*time.Minute))
			defer cancel()
			var res api.StorageInitResult
			if err := g.client().Do(ctx, http.MethodPost, api.PathLocalStorageInit, req, &res, nil); err != nil {
				return err
			}
			if g.output == "json" {
				return g.printJSON(res)
			}
			fmt.Fprintf(g.out, "%s: %s formatted as %s with %d journals/slots and checked (%s)\n", res.FileSystem, res.Device, res.Type, res.Journals, res.Command)
			return nil
		},
	}
	cmd.Flags().BoolVar(&req.Yes, "yes", false, "confirm: formatting destroys everything on the device")
	cmd.Flags().BoolVar(&req.Force, "force", false, "format over an existing signature (never over a mounted device)")
	cmd.Flags().IntVar(&req.Journals, "journals", 0, "journals (GFS2) or slots (OCFS2) (default: the cluster's host count)")
	return cmd
}
