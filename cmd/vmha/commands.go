package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/model"
)

func newHostCmd(g *globals) *cobra.Command {
	host := &cobra.Command{Use: "host", Short: "Hosts of the cluster"}
	host.AddCommand(newHostOnlineCmd(g), newHostAttrCmd(g), newHostAddCmd(g), newHostRemoveCmd(g), newHostMaintenanceCmd(g), newHostHealthCmd(g))
	host.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List hosts with gossip state, lifecycle state and load",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return read(g, api.PathHosts, func(hosts []api.Host) error {
				printHosts(g, hosts)
				return nil
			})
		},
	})
	return host
}

// newVMCmd (vmha vm and its subcommands) is in vm.go.

func newFenceCmd(g *globals) *cobra.Command {
	var action string
	var yes bool
	fence := &cobra.Command{
		Use:   "fence HOST [--action off|reboot] [--yes]",
		Short: "Fence a host now, or test, confirm and list fencing",
		Long: `vmha fence HOST powers HOST off through its fence device (or reboots it with
--action reboot), as the cluster does when it loses a host. HOST is marked lost
at once; its VMs stay assigned to it until the device confirms the power is off,
then they are recovered on the other hosts. The leader never fences itself.

Without a terminal to confirm on, --yes is required.

A host whose name is also a word of vmha fence (history, test, confirm,
devices, disable, enable, host) is fenced with vmha fence host HOST, the form
scripts should use.`,
		Args: exactArgs(1, "HOST"),
		RunE: func(cmd *cobra.Command, args []string) error {
			host := args[0]
			if action != "off" && action != "reboot" {
				return usageError{fmt.Errorf("--action %q: want off or reboot", action)}
			}
			if err := confirm(cmd, yes, host, fmt.Sprintf("This powers %s %s through its fence device; its VMs restart elsewhere.", host, map[string]string{"off": "off", "reboot": "off and on"}[action])); err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), g.timeout+90*time.Second)
			defer cancel()
			var rec model.FenceRecord
			req := api.FenceRequest{Action: action, RequestedBy: whoAmI()}
			if err := g.client().Do(ctx, http.MethodPost, api.PathFence+"/"+url.PathEscape(host), req, &rec, nil); err != nil {
				return err
			}
			if g.output == "json" {
				return g.printJSON(rec)
			}
			fmt.Fprintf(g.out, "%s fenced (%s) through %s in %s; recovery %s\n", host, rec.Action, rec.Device, rec.Duration.Round(time.Millisecond), rec.RecoveryID)
			return nil
		},
	}
	fence.Flags().StringVar(&action, "action", "off", "off or reboot")
	fence.Flags().BoolVar(&yes, "yes", false, "do not ask for confirmation")
	// vmha fence host HOST: the same, for any host name (vmha fence test
	// is the device test, whatever hosts are called).
	hostCmd := &cobra.Command{
		Use:   "host HOST [--action off|reboot] [--yes]",
		Short: "Fence HOST now (as vmha fence HOST, for any host name, also one called test or history)",
		Args:  exactArgs(1, "HOST"),
		RunE:  fence.RunE,
	}
	hostCmd.Flags().StringVar(&action, "action", "off", "off or reboot")
	hostCmd.Flags().BoolVar(&yes, "yes", false, "do not ask for confirmation")
	fence.AddCommand(hostCmd)

	var powerCycle, testYes bool
	test := &cobra.Command{
		Use:   "test HOST [--power-cycle --yes]",
		Short: "Check HOST's fence device (power status); a real power cycle only with --power-cycle --yes",
		Args:  exactArgs(1, "HOST"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if powerCycle && !testYes {
				return usageError{fmt.Errorf("--power-cycle switches %s off and on again: add --yes to do it", args[0])}
			}
			ctx, cancel := context.WithTimeout(context.Background(), g.timeout+90*time.Second)
			defer cancel()
			var res api.FenceTestResult
			req := api.FenceTest{PowerCycle: powerCycle, RequestedBy: whoAmI()}
			if err := g.client().Do(ctx, http.MethodPost, api.PathFence+"/"+url.PathEscape(args[0])+"/test", req, &res, nil); err != nil {
				return err
			}
			if g.output == "json" {
				return g.printJSON(res)
			}
			for _, d := range res.Devices {
				if c := d.Check; c != nil {
					fmt.Fprintf(g.out, "%s: level %d %s answered in %s: power %s\n", res.Host, d.Level, d.Device, c.Duration.Round(time.Millisecond), c.Power)
				}
			}
			if res.Cycled {
				fmt.Fprintf(g.out, "%s: power cycle done and verified\n", res.Host)
			}
			return nil
		},
	}
	test.Flags().BoolVar(&powerCycle, "power-cycle", false, "switch the host off (verified) and on again; refused while VMs are placed on it")
	test.Flags().BoolVar(&testYes, "yes", false, "confirm --power-cycle")

	confirmCmd := &cobra.Command{
		Use:   "confirm HOST",
		Short: "State that a lost host is down, so that its VMs are recovered without a device fence",
		Long: `vmha fence confirm HOST tells the cluster that HOST is really down (powered off,
unplugged, its rack dark) when its fence device cannot say so itself. The
statement is kept in the fence history with your name, and HOST's VMs are
started elsewhere. Confirming a host that is in fact running risks running its
VMs twice: check first. Only a lost host that gossip does not see can be
confirmed.`,
		Args: exactArgs(1, "HOST"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := confirm(cmd, yes, args[0], fmt.Sprintf("You state that %s is powered off; its VMs will start elsewhere.", args[0])); err != nil {
				return err
			}
			ctx, cancel := g.ctx()
			defer cancel()
			var rec model.FenceRecord
			if err := g.client().Do(ctx, http.MethodPost, api.PathFence+"/"+url.PathEscape(args[0])+"/confirm", api.FenceConfirm{RequestedBy: whoAmI()}, &rec, nil); err != nil {
				return err
			}
			if g.output == "json" {
				return g.printJSON(rec)
			}
			fmt.Fprintf(g.out, "%s confirmed down by %s; its VMs are being recovered (recovery %s)\n", rec.Host, rec.Requester, rec.RecoveryID)
			return nil
		},
	}
	confirmCmd.Flags().BoolVar(&yes, "yes", false, "do not ask for confirmation")

	devices := &cobra.Command{
		Use:   "devices",
		Short: "List each host's fence devices with the leader's last status check, and the devices hosts offer",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return read(g, api.PathFenceDevices, func(devs []api.FenceDevice) error {
				return printDevices(g, devs)
			})
		},
	}
	fenceDevicesSubcommands(g, devices)

	history := &cobra.Command{
		Use:   "history",
		Short: "List fence attempts, oldest first",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return read(g, api.PathFenceHistory, func(h []model.FenceRecord) error { return printHistory(g, h) })
		},
	}
	fenceRest(g, fence, history, devices, test, confirmCmd)
	return fence
}

func printDevices(g *globals, devs []api.FenceDevice) error {
	tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tLEVEL\tDEVICE\tCHECKED\tPOWER\tRESULT")
	for _, d := range devs {
		if d.Device == "" {
			fmt.Fprintf(tw, "%s\t-\tnone\t-\t-\tno fence device: this host cannot be recovered from\n", d.Host)
			continue
		}
		if d.Offered {
			note := ""
			if d.Note != "" {
				note = "; " + d.Note
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t-\t-\tOFFERED at %s, not used%s: vmha fence devices accept %s uses it\n",
				d.Host, d.Level, d.Device, d.OfferedAt.Local().Format(time.DateTime), note, d.Host)
			continue
		}
		when, power, res := "not yet", "-", "-"
		if c := d.Check; c != nil {
			when, power, res = c.At.Local().Format(time.TimeOnly), c.Power, "ok ("+c.Duration.Round(time.Millisecond).String()+")"
			if !c.OK {
				res = "FAILED: " + strings.ReplaceAll(c.Error, "\t", " ")
			}
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", d.Host, d.Level, d.Device, when, power, res)
	}
	return tw.Flush()
}

func printHistory(g *globals, h []model.FenceRecord) error {
	tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WHEN\tHOST\tLEVEL\tDEVICE\tACTION\tBY\tRESULT\tDURATION\tRECOVERY")
	for _, r := range h {
		res := "ok"
		if !r.OK {
			res = "FAILED: " + r.Error
		}
		if r.Action == model.FenceDevicesSet || r.Action == model.FenceDevicesAccept {
			res = "ok: " + r.Before + " -> " + r.After
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Started.Local().Format(time.DateTime), r.Host, r.Level, r.Device, r.Action, r.Requester, strings.ReplaceAll(res, "\t", " "), r.Duration.Round(time.Millisecond), r.RecoveryID)
	}
	return tw.Flush()
}

// fenceRest adds the policy commands and registers every fence command.
func fenceRest(g *globals, fence, history, devices, test, confirmCmd *cobra.Command) {
	var ack bool
	disable := &cobra.Command{
		Use:   "disable --acknowledge-double-run-risk",
		Short: "Turn fencing off: lost hosts' VMs restart elsewhere WITHOUT the host being powered off",
		Long: `vmha fence disable turns fencing off for the whole cluster, as Pacemaker's
stonith-enabled=false does. A lost host is then not powered off before its VMs
start on other hosts. If that host is not really down (it lost its network, or
it hung and wakes up), it keeps running its VMs while they also run elsewhere:
each such VM then runs twice and writes to the same shared disks, which
corrupts them. vmha status shows this risk for as long as fencing is off.

Only with --acknowledge-double-run-risk. vmha fence enable turns it on again.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !ack {
				return usageError{fmt.Errorf("turning fencing off lets a VM run twice and corrupt its disks: add --acknowledge-double-run-risk to do it anyway")}
			}
			return setFencing(g, false, true)
		},
	}
	disable.Flags().BoolVar(&ack, "acknowledge-double-run-risk", false, "state that you accept VMs running twice when a lost host is not really down")
	enable := &cobra.Command{
		Use:   "enable",
		Short: "Turn fencing on again (the default)",
		Args:  exactArgs(0, "no arguments"),
		RunE:  func(cmd *cobra.Command, _ []string) error { return setFencing(g, true, false) },
	}
	fence.AddCommand(history, devices, test, confirmCmd, disable, enable)
}

func setFencing(g *globals, enabled, ack bool) error {
	ctx, cancel := g.ctx()
	defer cancel()
	req := api.FencePolicy{Enabled: enabled, AcknowledgeDoubleRunRisk: ack, RequestedBy: whoAmI()}
	if err := g.client().Do(ctx, http.MethodPost, api.PathFencePolicy, req, nil, nil); err != nil {
		return err
	}
	if enabled {
		fmt.Fprintln(g.out, "fencing is on: lost hosts are powered off before their VMs restart elsewhere")
	} else {
		fmt.Fprintln(g.out, "fencing is OFF: lost hosts' VMs restart elsewhere without the host being powered off; vmha status shows the risk")
	}
	return nil
}

// confirm asks the operator to type the host's name, or accepts --yes.
// Without a terminal, --yes is required: a script must say what it means.
func confirm(cmd *cobra.Command, yes bool, host, what string) error {
	if yes {
		return nil
	}
	in, ok := cmd.InOrStdin().(*os.File)
	if !ok || !term.IsTerminal(int(in.Fd())) {
		return usageError{fmt.Errorf("%s Add --yes to go ahead (no terminal to ask on)", what)}
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "%s\nType the host name (%s) to go ahead: ", what, host)
	line, _ := bufio.NewReader(in).ReadString('\n')
	if strings.TrimSpace(line) != host {
		return fmt.Errorf("not confirmed: nothing done")
	}
	return nil
}

// whoAmI names the operator for the fence history: the user who ran
// vmha (through sudo, the user behind it) and this host.
func whoAmI() string {
	u := os.Getenv("SUDO_USER")
	if u == "" {
		if cu, err := user.Current(); err == nil {
			u = cu.Username
		}
	}
	h, _ := os.Hostname()
	return u + "@" + h
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
