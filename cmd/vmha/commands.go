package main

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/model"
)

func newStatusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show hosts, quorum, leader and VMs",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := g.ctx()
			defer cancel()
			s, err := g.client().Status(ctx)
			if err != nil {
				return err
			}
			if g.output == "json" {
				return g.printJSON(s)
			}
			printStatus(g, s)
			return nil
		},
	}
}

func printStatus(g *globals, s *api.Status) {
	leader := s.Leader
	if leader == "" {
		leader = "none"
	}
	fmt.Fprintf(g.out, "Leader: %s (term %d)   Quorum: %s\n", leader, s.Term, s.Quorum.Explanation)
	fmt.Fprintln(g.out)
	printHosts(g, s.Hosts)
	fmt.Fprintln(g.out)
	tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VM\tHOST\tSTATE\tMEMORY\tREASON")
	for _, v := range s.VMs {
		host := v.Host
		if host == "" {
			host = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d MiB\t%s\n", v.Name, host, v.State, v.MemoryMiB, v.Reason)
	}
	tw.Flush()
	if len(s.Problems) > 0 {
		fmt.Fprintln(g.out)
		fmt.Fprintln(g.out, "Problems:")
		for _, p := range s.Problems {
			fmt.Fprintln(g.out, "  - "+p)
		}
	}
}

func printHosts(g *globals, hosts []api.Host) {
	tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tGOSSIP\tSTATE\tROLE\tMEMORY USED\tVMS\tFENCE DEVICE\tREASON")
	for _, h := range hosts {
		role := "follower"
		switch {
		case h.Leader:
			role = "leader"
		case !h.Voter:
			role = "non-voter"
		}
		dev := h.FenceDev
		if dev == "" {
			dev = "none"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d/%d MiB\t%d\t%s\t%s\n", h.Name, h.Member, h.State, role, h.UsedMiB, h.MemoryMiB, len(h.VMs), dev, h.Reason)
	}
	tw.Flush()
}

func newHostCmd(g *globals) *cobra.Command {
	host := &cobra.Command{Use: "host", Short: "Hosts of the cluster"}
	host.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List hosts with gossip state, lifecycle state and load",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := g.ctx()
			defer cancel()
			var hosts []api.Host
			if err := g.client().Do(ctx, http.MethodGet, api.PathHosts, nil, &hosts, nil); err != nil {
				return err
			}
			if g.output == "json" {
				return g.printJSON(hosts)
			}
			printHosts(g, hosts)
			return nil
		},
	})
	return host
}

func newVMCmd(g *globals) *cobra.Command {
	vm := &cobra.Command{Use: "vm", Short: "VMs the cluster keeps running"}
	var xmlPath, prefer string
	add := &cobra.Command{
		Use:   "add NAME --xml PATH [--prefer HOST]",
		Short: "Put a VM under vmha's management",
		Long: `Put a VM under vmha's management. The domain XML is read here, checked, and
stored in the replicated state, so that any host can start the VM. Its <name>
must be NAME. The VM starts on --prefer when that host is up and has room,
else on the host with the most free memory; if it already runs on a host, it
stays there.`,
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if xmlPath == "" {
				return usageError{fmt.Errorf("--xml is required")}
			}
			data, err := os.ReadFile(xmlPath)
			if err != nil {
				return fmt.Errorf("read domain XML: %w", err)
			}
			info, err := model.ParseDomainXML(data)
			if err != nil {
				return fmt.Errorf("%s: %w", xmlPath, err)
			}
			if info.Name != args[0] {
				return fmt.Errorf("%s: domain <name> is %q, but the VM is called %q", xmlPath, info.Name, args[0])
			}
			ctx, cancel := g.ctx()
			defer cancel()
			var v api.VM
			req := api.AddVM{Name: args[0], XML: string(data), XMLPath: xmlPath, Prefer: prefer}
			if err := g.client().Do(ctx, http.MethodPost, api.PathVMs, req, &v, nil); err != nil {
				return err
			}
			if g.output == "json" {
				return g.printJSON(v)
			}
			fmt.Fprintf(g.out, "vm %s added (%d MiB, %d vCPU)\n", v.Name, v.MemoryMiB, v.VCPUs)
			return nil
		},
	}
	add.Flags().StringVar(&xmlPath, "xml", "", "libvirt domain XML file")
	add.Flags().StringVar(&prefer, "prefer", "", "host the VM should run on when it is up")
	remove := &cobra.Command{
		Use:   "remove NAME",
		Short: "Stop managing a VM (its host stops and undefines it)",
		Args:  exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := g.ctx()
			defer cancel()
			if err := g.client().Do(ctx, http.MethodDelete, api.PathVMs+"/"+url.PathEscape(args[0]), nil, nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(g.out, "vm %s removed\n", args[0])
			return nil
		},
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List VMs with their host and state",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := g.ctx()
			defer cancel()
			s, err := g.client().Status(ctx)
			if err != nil {
				return err
			}
			if g.output == "json" {
				return g.printJSON(s.VMs)
			}
			tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "VM\tHOST\tSTATE\tPREFER\tMEMORY\tVCPUS")
			for _, v := range s.VMs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d MiB\t%d\n", v.Name, dash(v.Host), v.State, dash(v.Prefer), v.MemoryMiB, v.VCPUs)
			}
			return tw.Flush()
		},
	}
	vm.AddCommand(add, remove, list)
	return vm
}

func newFenceCmd(g *globals) *cobra.Command {
	fence := &cobra.Command{Use: "fence", Short: "Fencing of lost hosts"}
	fence.AddCommand(&cobra.Command{
		Use:   "history",
		Short: "List fence attempts, oldest first",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := g.ctx()
			defer cancel()
			var h []model.FenceRecord
			if err := g.client().Do(ctx, http.MethodGet, api.PathFenceHistory, nil, &h, nil); err != nil {
				return err
			}
			if g.output == "json" {
				return g.printJSON(h)
			}
			tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "WHEN\tHOST\tDEVICE\tACTION\tBY\tRESULT\tDURATION\tRECOVERY")
			for _, r := range h {
				res := "ok"
				if !r.OK {
					res = "FAILED: " + r.Error
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Started.Local().Format(time.DateTime), r.Host, r.Device, r.Action, r.Requester, strings.ReplaceAll(res, "\t", " "), r.Duration.Round(time.Millisecond), r.RecoveryID)
			}
			return tw.Flush()
		},
	})
	return fence
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
