package main

import (
	"bufio"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/internal/xmldiff"
	"github.com/vmha/vmha/model"
)

// newVMCmd is vmha vm: the parent of every VM command. Subcommands are
// added by functions that take the parent (addVMDefinitionCmds here);
// another file adds its own with one more call below.
func newVMCmd(g *globals) *cobra.Command {
	vm := &cobra.Command{
		Use:   "vm",
		Short: "VMs the cluster keeps running",
		Long: `VMs the cluster keeps running: their definitions (add, show, update, diff,
remove), where they run (list), their target state (set, start, stop,
unmanage, manage) and their fail counts (failcount, cleanup).

A VM's definition is its libvirt domain XML, kept in the replicated state so
that any host can start it. The host's agent defines that XML before every
start of the VM, so a definition changed with vmha vm update reaches the
running VM at its next start, or at once with --restart (a cold restart on
the same host).`,
	}
	addVMDefinitionCmds(vm, g)
	addVMLifecycle(g, vm)
	return vm
}

// addVMDefinitionCmds adds the definition commands to vm.
func addVMDefinitionCmds(vm *cobra.Command, g *globals) {
	vm.AddCommand(newVMAddCmd(g), newVMRemoveCmd(g), newVMListCmd(g), newVMShowCmd(g), newVMUpdateCmd(g), newVMDiffCmd(g))
}

func vmPath(name string) string { return api.PathVMs + "/" + url.PathEscape(name) }

// readDomainXML reads a domain XML file and checks it as vmha reads it:
// its <name> must be name.
func readDomainXML(path, name string) ([]byte, model.DomainInfo, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, model.DomainInfo{}, fmt.Errorf("read domain XML: %w", err)
	}
	info, err := model.ParseDomainXML(data)
	if err != nil {
		return nil, info, fmt.Errorf("%s: %w", path, err)
	}
	if info.Name != name {
		return nil, info, fmt.Errorf("%s: domain <name> is %q, but the VM is called %q", path, info.Name, name)
	}
	return data, info, nil
}

func newVMAddCmd(g *globals) *cobra.Command {
	var xmlPath, prefer, from string
	add := &cobra.Command{
		Use:   "add NAME --xml PATH [--prefer HOST] | add --from-libvirt HOST:DOMAIN",
		Short: "Put a VM under vmha's management, or adopt a domain libvirt runs",
		Long: `Put a VM under vmha's management. The domain XML is read here, checked, and
stored in the replicated state, so that any host can start the VM. Its <name>
must be NAME. The VM starts on --prefer when that host is up and has room,
else on the host with the most free memory.

--from-libvirt HOST:DOMAIN adopts a domain HOST's libvirt already has: its
definition is read from HOST (libvirt's persistent definition of it), checked
as an added VM's is, and the VM is placed on HOST in the same step, so HOST's
agent adopts the running domain instead of restarting it (a domain that is not
running is started there). NAME, if given, must be DOMAIN.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageError{fmt.Errorf("want NAME, got %d arguments", len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if from != "" && xmlPath != "" {
				return usageError{errors.New("--xml and --from-libvirt exclude each other")}
			}
			if from != "" {
				return adoptVM(g, from, args, prefer)
			}
			if len(args) != 1 {
				return usageError{fmt.Errorf("want NAME, got %d argument(s)", len(args))}
			}
			if xmlPath == "" {
				return usageError{fmt.Errorf("--xml is required (or --from-libvirt HOST:DOMAIN)")}
			}
			data, _, err := readDomainXML(xmlPath, args[0])
			if err != nil {
				return err
			}
			return postAddVM(g, api.AddVM{Name: args[0], XML: string(data), XMLPath: xmlPath, Prefer: prefer})
		},
	}
	add.Flags().StringVar(&xmlPath, "xml", "", "libvirt domain XML file")
	add.Flags().StringVar(&prefer, "prefer", "", "host the VM should run on when it is up")
	add.Flags().StringVar(&from, "from-libvirt", "", "adopt the domain DOMAIN that HOST's libvirt has, where it runs (HOST:DOMAIN)")
	return add
}

// adoptVM is vmha vm add --from-libvirt HOST:DOMAIN.
func adoptVM(g *globals, from string, args []string, prefer string) error {
	host, domain, ok := strings.Cut(from, ":")
	if !ok || host == "" || domain == "" {
		return usageError{fmt.Errorf("--from-libvirt %q: want HOST:DOMAIN", from)}
	}
	if len(args) == 1 && args[0] != domain {
		return usageError{fmt.Errorf("the VM is called after its domain: NAME %q is not %q", args[0], domain)}
	}
	ctx, cancel := g.ctx()
	defer cancel()
	var d api.DomainXML
	path := api.PathHostAction + "/" + url.PathEscape(host) + "/domains/" + url.PathEscape(domain) + api.PathDomainXMLSuffix + "?inactive=1"
	if err := g.client().Do(ctx, http.MethodGet, path, nil, &d, nil); err != nil {
		return fmt.Errorf("read domain %s from %s: %w", domain, host, err)
	}
	return postAddVM(g, api.AddVM{Name: domain, XML: d.XML, XMLPath: "libvirt:" + host + ":" + domain, Prefer: prefer, AdoptFrom: host})
}

func postAddVM(g *globals, req api.AddVM) error {
	ctx, cancel := g.ctx()
	defer cancel()
	var v api.VM
	if err := g.client().Do(ctx, http.MethodPost, api.PathVMs, req, &v, nil); err != nil {
		return err
	}
	if g.output == "json" {
		return g.printJSON(v)
	}
	if req.AdoptFrom != "" {
		fmt.Fprintf(g.out, "vm %s adopted on %s, where its domain runs (%d MiB, %d vCPU)\n", v.Name, req.AdoptFrom, v.MemoryMiB, v.VCPUs)
		return nil
	}
	fmt.Fprintf(g.out, "vm %s added (%d MiB, %d vCPU)\n", v.Name, v.MemoryMiB, v.VCPUs)
	return nil
}

func getVM(g *globals, name string) (api.VMDefinition, error) {
	ctx, cancel := g.ctx()
	defer cancel()
	var v api.VMDefinition
	err := g.client().Do(ctx, http.MethodGet, vmPath(name), nil, &v, nil)
	return v, err
}

// running is the host a VM runs on as far as the cluster knows ("" none).
func running(v api.VMDefinition) string {
	for _, o := range v.Observed {
		if model.DomainState(o.State).Active() {
			return o.Host
		}
	}
	return ""
}

func newVMRemoveCmd(g *globals) *cobra.Command {
	var yes, keep bool
	remove := &cobra.Command{
		Use:   "remove NAME [--keep-running] [--yes]",
		Short: "Stop managing a VM (its host stops and undefines it, or with --keep-running leaves it running)",
		Long: `vmha vm remove NAME takes NAME out of the cluster. Its host's agent then stops
the domain and undefines it. A running VM is removed only after you confirm
(type its name), or with --yes; without a terminal, --yes is required.

--keep-running leaves the domain running and defined on its host: the leader
first asks that host's agent to release the domain (it is no longer one the
agent manages), then removes the VM. From then on vmha neither stops, starts
nor recovers it; vmha vm add --from-libvirt HOST:NAME adopts it again.`,
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			v, err := getVM(g, name)
			if err != nil {
				return err
			}
			if host := running(v); host != "" {
				what := fmt.Sprintf("vm %s runs on %s: removing it stops it there and undefines it.", name, host)
				if keep {
					what = fmt.Sprintf("vm %s runs on %s: it keeps running there, but vmha no longer restarts, moves or recovers it.", name, host)
				}
				if err := confirmName(cmd, yes, "VM", name, what); err != nil {
					return err
				}
			}
			ctx, cancel := g.ctx()
			defer cancel()
			var body any
			if keep {
				body = api.RemoveVM{KeepRunning: true, RequestedBy: whoAmI()}
			}
			if err := g.client().Do(ctx, http.MethodDelete, vmPath(name), body, nil, nil); err != nil {
				return err
			}
			if keep {
				fmt.Fprintf(g.out, "vm %s removed; its domain keeps running where it ran, outside vmha\n", name)
				return nil
			}
			fmt.Fprintf(g.out, "vm %s removed\n", name)
			return nil
		},
	}
	remove.Flags().BoolVar(&yes, "yes", false, "do not ask for confirmation (needed without a terminal when the VM runs)")
	remove.Flags().BoolVar(&keep, "keep-running", false, "leave the domain running and defined on its host, unmanaged")
	return remove
}

func newVMListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
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
			fmt.Fprintln(tw, "VM\tHOST\tTARGET\tSTATE\tPREFER\tPINNED\tMEMORY\tVCPUS")
			for _, v := range s.VMs {
				target := string(v.Target)
				if v.Target == model.TargetIgnored {
					target = "unmanaged"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d MiB\t%d\n", v.Name, dash(v.Host), dash(target), v.State, dash(v.Prefer), dash(v.PinnedTo), v.MemoryMiB, v.VCPUs)
			}
			return tw.Flush()
		},
	}
}

func newVMShowCmd(g *globals) *cobra.Command {
	var xml bool
	show := &cobra.Command{
		Use:   "show NAME [--xml] [-o json]",
		Short: "Show a VM's replicated definition, where it is placed and what its hosts report",
		Long: `vmha vm show NAME prints NAME's definition as the cluster replicates it: memory,
vCPUs, disks, preferred host, the file it came from, where it is placed and
what each host last reported. After vmha vm update it says when and by whom
the definition changed, and whether the VM still runs with the previous one.

--xml prints the domain XML exactly as replicated; -o json the whole record
(docs/vms.md).`,
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := getVM(g, args[0])
			if err != nil {
				return err
			}
			switch {
			case xml:
				_, err := fmt.Fprint(g.out, v.XML)
				return err
			case g.output == "json":
				return g.printJSON(v)
			}
			printVMDefinition(g, v)
			return nil
		},
	}
	show.Flags().BoolVar(&xml, "xml", false, "print the domain XML exactly as replicated")
	return show
}

func printVMDefinition(g *globals, v api.VMDefinition) {
	tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
	disks := strings.Join(v.Disks, ", ")
	placed := dash(v.PlacedOn)
	if v.MigratingFrom != "" {
		placed += " (moving from " + v.MigratingFrom + ")"
	}
	for _, row := range [][2]string{
		{"vm", v.Name}, {"memory", fmt.Sprintf("%d MiB", v.MemoryMiB)}, {"vcpus", fmt.Sprint(v.VCPUs)},
		{"disks", dash(disks)}, {"prefer", dash(v.Prefer)}, {"xml path", dash(v.XMLPath)},
		{"placed on", placed}, {"state", v.State},
	} {
		fmt.Fprintf(tw, "%s:\t%s\n", row[0], row[1])
	}
	for _, o := range v.Observed {
		line := fmt.Sprintf("%s %s since %s", o.Host, o.State, o.Since.Format(time.RFC3339))
		if o.Error != "" {
			line += " (error: " + o.Error + ")"
		}
		fmt.Fprintf(tw, "observed:\t%s\n", line)
	}
	_ = tw.Flush()
	if v.Notice != "" {
		fmt.Fprintf(g.out, "\n%s\n", v.Notice)
	}
}

func newVMUpdateCmd(g *globals) *cobra.Command {
	var xmlPath string
	var restart, atNext, yes, dry bool
	update := &cobra.Command{
		Use:   "update NAME --xml PATH [--restart | --at-next-start] [--yes] [--dry-run]",
		Short: "Replace a VM's definition (memory, vCPUs, disks, ...)",
		Long: `vmha vm update NAME --xml PATH replaces NAME's domain XML in the replicated
state. It first prints a unified diff from the replicated XML to PATH, checks
PATH as vmha vm add does (its <name> must stay NAME; it must fit a host), and
asks you to confirm by typing the VM's name; without a terminal, --yes is
required. --dry-run stops after the diff and the check: nothing changes.

--at-next-start (the default): the running domain keeps its old definition
until the VM next starts (after a crash, a stop and start, a failover or a
cold move); the agent defines the new XML before that start. vmha vm show says
"running with the previous definition until restarted" meanwhile, and vmha vm
diff shows the difference.

--restart: the agent of the VM's host restarts it cold, once, with the new
definition: the guest is asked to shut down (destroyed after the agent's stop
timeout), then started again on the same host. The VM is down for its
shutdown and boot. A VM placed on no host just starts with the new definition.

The change is recorded in vmha's event log with your name.`,
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if xmlPath == "" {
				return usageError{errors.New("--xml is required")}
			}
			if restart && atNext {
				return usageError{errors.New("--restart and --at-next-start exclude each other")}
			}
			data, _, err := readDomainXML(xmlPath, name)
			if err != nil {
				return err
			}
			cur, err := getVM(g, name)
			if err != nil {
				return err
			}
			diff := xmldiff.Unified(name+" (replicated)", xmlPath, cur.XML, string(data))
			if diff == "" {
				msg := fmt.Sprintf("%s is the replicated definition of %s: nothing to change", xmlPath, name)
				if g.output == "json" {
					return g.printJSON(api.VMUpdateResult{VM: name, Host: cur.PlacedOn, PendingRestart: cur.PendingRestart, Message: msg})
				}
				fmt.Fprintln(g.out, msg)
				return nil
			}
			if g.output != "json" {
				fmt.Fprint(g.out, diff)
			}
			req := api.UpdateVM{XML: string(data), XMLPath: xmlPath, Restart: restart, DryRun: true, RequestedBy: whoAmI()}
			ctx, cancel := g.ctx()
			defer cancel()
			var res api.VMUpdateResult
			if err := g.client().Do(ctx, http.MethodPost, vmPath(name)+api.PathVMUpdateSuffix, req, &res, nil); err != nil {
				return err
			}
			if !dry {
				what := fmt.Sprintf("This replaces the definition of vm %s.", name)
				switch host := cur.PlacedOn; {
				case host != "" && restart:
					what += fmt.Sprintf(" It is shut down on %s and started again there with the new definition.", host)
				case host != "":
					what += fmt.Sprintf(" It keeps running on %s with the previous definition until its next start.", host)
				}
				if err := confirmName(cmd, yes, "VM", name, what); err != nil {
					return err
				}
				req.DryRun = false
				ctx, cancel := g.ctx()
				defer cancel()
				if err := g.client().Do(ctx, http.MethodPost, vmPath(name)+api.PathVMUpdateSuffix, req, &res, nil); err != nil {
					return err
				}
			}
			if g.output == "json" {
				return g.printJSON(res)
			}
			fmt.Fprintln(g.out, res.Message)
			return nil
		},
	}
	update.Flags().StringVar(&xmlPath, "xml", "", "the new libvirt domain XML file")
	update.Flags().BoolVar(&restart, "restart", false, "restart the VM cold on its host with the new definition now")
	update.Flags().BoolVar(&atNext, "at-next-start", false, "the running VM takes the new definition at its next start (the default)")
	update.Flags().BoolVar(&yes, "yes", false, "do not ask for confirmation (needed without a terminal)")
	update.Flags().BoolVar(&dry, "dry-run", false, "show the diff and check the new definition; change nothing")
	return update
}

func newVMDiffCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "diff NAME",
		Short: "Compare a VM's replicated XML with its domain as libvirt runs it on its host",
		Long: `vmha vm diff NAME asks the host NAME runs on for libvirt's XML of the running
domain and prints a unified diff from the replicated XML to it. Both are
normalised first: libvirt adds a uuid, the domain id, default devices, PCI
addresses, aliases and machine types, and writes memory in KiB, so the host's
XML keeps only the elements and attributes the replicated XML sets, memory is
compared in KiB and attributes are sorted. What remains is what vmha owns:
a line that differs is a field the running domain does not have as replicated
(after vmha vm update, until the VM restarts; or a change made with virsh).
It exits 0 whether or not they differ; -o json has "same".`,
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return read(g, vmPath(args[0])+api.PathVMDomainSuffix, func(d api.DomainDiff) error {
				if d.Same {
					fmt.Fprintf(g.out, "vm %s on %s (%s): the domain matches the replicated definition\n", d.VM, d.Host, d.State)
					return nil
				}
				_, err := fmt.Fprint(g.out, d.Diff)
				return err
			})
		},
	}
}

// confirmName asks the operator to type the name of what is acted on, or
// accepts --yes. Without a terminal, --yes is required (a usage error,
// exit 2): a script must say what it means.
func confirmName(cmd *cobra.Command, yes bool, kind, name, what string) error {
	if yes {
		return nil
	}
	in, ok := cmd.InOrStdin().(*os.File)
	if !ok || !term.IsTerminal(int(in.Fd())) {
		return usageError{fmt.Errorf("%s Add --yes to go ahead (no terminal to ask on)", what)}
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "%s\nType the %s's name (%s) to go ahead: ", what, kind, name)
	line, _ := bufio.NewReader(in).ReadString('\n')
	if strings.TrimSpace(line) != name {
		return errors.New("not confirmed: nothing done")
	}
	return nil
}
