package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/clusterspec"
	"github.com/vmha/vmha/placement"
)

func newRulesCmd(g *globals) *cobra.Command {
	rules := &cobra.Command{
		Use:   "rules",
		Short: "The placement rules the cluster follows (a cluster.yaml), their history and changes",
		Long: `vmha rules reads and changes the placement rules of the running cluster: a
cluster.yaml, the same file vmha plan reads offline (policy, host capacities,
attributes, standby and maintenance, VM utilization, priorities, stickiness,
allow-migrate, and location and colocation constraints). The file describes only
what placement needs to know: its constraints may name any host and VM of the
cluster, listed in the file or not.

Every change (apply, rollback, clear, and the per-item location and colocation
edits) is checked against the live cluster, previewed with the cluster's own
placement engine (which VMs would stop, start or move, live or by a restart,
and why), and asks to confirm when it stops or moves a VM (--yes without a
terminal). It applies only if the rules are still the version the preview was
computed against; each applied text becomes a new version (vmha rules history),
which vmha rules rollback can bring back.`,
	}
	var opts rulesOpts
	apply := &cobra.Command{
		Use:   "apply FILE [--dry-run] [--yes] [--note TEXT]",
		Short: "Replace the cluster's placement rules with FILE, after a preview (bad rules change nothing)",
		Long: `vmha rules apply replaces the placement rules of the running cluster with
FILE. The leader checks it against the live cluster (names of hosts and VMs
included) and computes what it would do: VMs that would stop (a VM the rules
cannot place, e.g. a colocation loop or -INFINITY on every host, is named with
the engine's reason), start, or move (live, or shut down and started elsewhere
when the VM does not allow live migration). --dry-run prints that and stops.
Without it, a change that stops or moves a VM asks to confirm on a terminal and
needs --yes otherwise (exit code 2 without it). The change applies only if
nobody changed the rules since the preview; it becomes a new version (vmha
rules history).`,
		Args: exactArgs(1, "FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := os.ReadFile(args[0])
			if err != nil {
				return usageError{fmt.Errorf("read rules: %w", err)}
			}
			if _, err := clusterspec.Parse(b); err != nil {
				return usageError{fmt.Errorf("%s: %w", args[0], err)}
			}
			return changeRules(g, cmd, rulesChange{text: string(b), note: opts.note, what: "placement rules from " + args[0]}, opts)
		},
	}
	opts.flags(apply, true)
	show := &cobra.Command{
		Use:   "show",
		Short: "Print the cluster's placement rules (-o json: with their version)",
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
	var clearOpts rulesOpts
	clearCmd := &cobra.Command{
		Use:   "clear [--dry-run] [--yes]",
		Short: "Drop the placement rules (back to the built-in defaults), after a preview",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return changeRules(g, cmd, rulesChange{note: "rules cleared", what: "placement rules cleared"}, clearOpts)
		},
	}
	clearOpts.flags(clearCmd, false)
	diff := &cobra.Command{
		Use:   "diff FILE",
		Short: "Show how FILE differs from the cluster's placement rules, line by line",
		Long: `vmha rules diff prints a unified diff from the rules in force (with their
version) to FILE, and nothing when they are the same. It changes nothing; vmha
rules apply FILE --dry-run shows what the change would do to the VMs.`,
		Args: exactArgs(1, "FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := os.ReadFile(args[0])
			if err != nil {
				return usageError{fmt.Errorf("read rules: %w", err)}
			}
			live, err := getRules(g)
			if err != nil {
				return err
			}
			name := "cluster (no rules)"
			if live.Version > 0 {
				name = fmt.Sprintf("cluster (version %d by %s)", live.Version, live.By)
			} else if live.YAML != "" {
				name = "cluster"
			}
			if !writeUnified(g.out, name, args[0], live.YAML, string(b), 3) {
				fmt.Fprintf(g.out, "%s is the same as the cluster's rules\n", args[0])
			}
			return nil
		},
	}
	history := &cobra.Command{
		Use:   "history",
		Short: "List the versions of the placement rules: who applied each, when, and what changed",
		Long: `vmha rules history lists the versions of the placement rules the cluster keeps
(the last 50), oldest first: the version number, when and by whom it was
applied (the authenticated principal), its size, and a one-line summary of what
changed from the version before it. The one in force is marked with *.
vmha rules rollback N applies version N again.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return read(g, api.PathRulesHistory, func(vs []api.RulesVersion) error {
				if len(vs) == 0 {
					fmt.Fprintln(g.out, "no versions recorded yet (the cluster records every rules change from now on)")
					return nil
				}
				tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "VERSION\tAT\tBY\tSIZE\tCHANGE")
				for _, v := range vs {
					mark := " "
					if v.Current {
						mark = "*"
					}
					change := v.Summary
					if v.Note != "" {
						change += " (" + v.Note + ")"
					}
					fmt.Fprintf(tw, "%s%d\t%s\t%s\t%d\t%s\n", mark, v.Version, v.At.Local().Format(time.DateTime), v.By, v.Size, change)
				}
				return tw.Flush()
			})
		},
	}
	var rbOpts rulesOpts
	rollback := &cobra.Command{
		Use:   "rollback N [--dry-run] [--yes]",
		Short: "Apply version N of the placement rules again (as a new version), after a preview",
		Long: `vmha rules rollback N applies the text of version N (vmha rules history) again,
as a new version: the same checks, preview and confirmation as vmha rules apply.`,
		Args: exactArgs(1, "N"),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := strconv.Atoi(args[0])
			if err != nil || n < 1 {
				return usageError{fmt.Errorf("%q is not a version number (vmha rules history lists them)", args[0])}
			}
			ctx, cancel := g.ctx()
			defer cancel()
			var v api.RulesVersion
			if err := g.client().Do(ctx, http.MethodGet, api.PathRulesHistory+"/"+strconv.Itoa(n), nil, &v, nil); err != nil {
				return err
			}
			note := fmt.Sprintf("rollback to version %d", n)
			if rbOpts.note != "" {
				note += ": " + rbOpts.note
			}
			return changeRules(g, cmd, rulesChange{text: v.YAML, note: note, what: fmt.Sprintf("placement rules of version %d", n)}, rbOpts)
		},
	}
	rbOpts.flags(rollback, true)
	rules.AddCommand(apply, show, clearCmd, diff, history, rollback, newRulesItemCmd(g, "location"), newRulesItemCmd(g, "colocation"))
	return rules
}

// newRulesItemCmd is vmha rules location|colocation add|remove: one
// constraint changed in the rules in force, the rest of the text kept as
// it is (comments too).
func newRulesItemCmd(g *globals, kind string) *cobra.Command {
	other, otherName := "HOST", "host"
	if kind == "colocation" {
		other, otherName = "WITH", "vm to go with"
	}
	group := &cobra.Command{Use: kind, Short: "Add or remove one " + kind + " constraint"}
	var addOpts, rmOpts rulesOpts
	var score string
	add := &cobra.Command{
		Use:   "add VM " + other + " --score S [--dry-run] [--yes]",
		Short: "Set the " + kind + " of VM and " + other + " to score S (an integer, INFINITY or -INFINITY)",
		Long: fmt.Sprintf(`vmha rules %s add VM %s --score S sets the %s of VM and %s (the %s) to
S in the rules in force: an existing one gets the new score, otherwise one is
added. The rest of the rules stays as it was written. The change goes through
the same checks, preview and confirmation as vmha rules apply, and applies only
if the rules did not change since they were read.`, kind, other, kind, other, otherName),
		Args: exactArgs(2, "VM and "+other),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("score") {
				return usageError{fmt.Errorf("--score is required (an integer, INFINITY or -INFINITY)")}
			}
			sc, err := placement.ParseScore(score)
			if err != nil {
				return usageError{fmt.Errorf("--score: %w", err)}
			}
			return editRules(g, cmd, addOpts, fmt.Sprintf("%s add %s %s %s", kind, args[0], args[1], sc), func(text string) (string, error) {
				var out string
				var err error
				if kind == "location" {
					out, _, err = clusterspec.AddLocation(text, args[0], args[1], sc)
				} else {
					out, _, err = clusterspec.AddColocation(text, args[0], args[1], sc)
				}
				return out, err
			})
		},
	}
	add.Flags().StringVar(&score, "score", "", "the score: an integer, INFINITY or -INFINITY")
	addOpts.flags(add, false)
	remove := &cobra.Command{
		Use:   "remove VM " + other + " [--dry-run] [--yes]",
		Short: "Remove the " + kind + " of VM and " + other + " from the rules",
		Args:  exactArgs(2, "VM and "+other),
		RunE: func(cmd *cobra.Command, args []string) error {
			return editRules(g, cmd, rmOpts, fmt.Sprintf("%s remove %s %s", kind, args[0], args[1]), func(text string) (string, error) {
				if kind == "location" {
					return clusterspec.RemoveLocation(text, args[0], args[1])
				}
				return clusterspec.RemoveColocation(text, args[0], args[1])
			})
		},
	}
	rmOpts.flags(remove, false)
	group.AddCommand(add, remove)
	return group
}

// rulesOpts are the flags of every rules change.
type rulesOpts struct {
	dryRun, yes bool
	note        string
}

func (o *rulesOpts) flags(c *cobra.Command, note bool) {
	c.Flags().BoolVar(&o.dryRun, "dry-run", false, "show what the change would do, and change nothing")
	c.Flags().BoolVar(&o.yes, "yes", false, "do not ask for confirmation when the change stops or moves VMs")
	if note {
		c.Flags().StringVar(&o.note, "note", "", "a note kept with the new version (vmha rules history)")
	}
}

// rulesChange is one change of the rules: the new text, the version it is
// based on (nil: the one the preview was computed against), and what to
// call it in the output.
type rulesChange struct {
	text      string
	ifVersion *int
	note      string
	what      string
}

func getRules(g *globals) (api.Rules, error) {
	ctx, cancel := g.ctx()
	defer cancel()
	var r api.Rules
	err := g.client().Do(ctx, http.MethodGet, api.PathRules, nil, &r, nil)
	return r, err
}

// editRules reads the rules in force, edits them with edit, and applies
// the result as a compare-and-set on the version read.
func editRules(g *globals, cmd *cobra.Command, o rulesOpts, what string, edit func(string) (string, error)) error {
	live, err := getRules(g)
	if err != nil {
		return err
	}
	text, err := edit(live.YAML)
	if err != nil {
		return usageError{fmt.Errorf("rules %s: %w", what, err)}
	}
	v := live.Version
	return changeRules(g, cmd, rulesChange{text: text, ifVersion: &v, note: what, what: "rules " + what}, o)
}

// changeRules is every rules change: the leader's preview (a dry run),
// printed; a confirmation when the change stops or moves VMs; then the
// change itself, only if the rules are still the version previewed.
func changeRules(g *globals, cmd *cobra.Command, ch rulesChange, o rulesOpts) error {
	ctx, cancel := g.ctx()
	defer cancel()
	req := api.Rules{YAML: ch.text, IfVersion: ch.ifVersion, DryRun: true, Note: ch.note}
	var plan api.RulesPlan
	if err := g.client().Do(ctx, http.MethodPost, api.PathRules, req, &plan, nil); err != nil {
		return err
	}
	asJSON := g.output == "json"
	if o.dryRun {
		if asJSON {
			return g.printJSON(plan)
		}
		printRulesPlan(g.out, &plan, true)
		return nil
	}
	if !plan.Changed {
		if asJSON {
			return g.printJSON(plan)
		}
		fmt.Fprintf(g.out, "the cluster's rules are already these (version %d): nothing to apply\n", plan.Version)
		return nil
	}
	if !asJSON {
		printRulesPlan(g.out, &plan, false)
	}
	if plan.Disruptive {
		if err := confirmRules(cmd, o.yes, &plan); err != nil {
			return err
		}
	}
	v := plan.Version
	req.IfVersion, req.DryRun = &v, false
	var done api.RulesPlan
	if err := g.client().Do(ctx, http.MethodPost, api.PathRules, req, &done, nil); err != nil {
		return err
	}
	done.Actions, done.Notes, done.Disruptive = plan.Actions, plan.Notes, plan.Disruptive
	if asJSON {
		return g.printJSON(done)
	}
	fmt.Fprintf(g.out, "%s applied as version %d\n", ch.what, done.Applied)
	return nil
}

// disruptive are the actions of plan that the change causes and that stop
// or move a running VM.
func disruptive(plan *api.RulesPlan) []api.RulesAction {
	var out []api.RulesAction
	for _, a := range plan.Actions {
		if !a.Pending && a.From != "" && (a.Action == string(placement.ActStop) || a.Action == string(placement.ActMigrate) || a.Action == string(placement.ActMove)) {
			out = append(out, a)
		}
	}
	return out
}

// confirmRules asks the operator to type yes, or accepts --yes. Without a
// terminal, --yes is required: a script must say what it means.
func confirmRules(cmd *cobra.Command, yes bool, plan *api.RulesPlan) error {
	if yes {
		return nil
	}
	var names []string
	for _, a := range disruptive(plan) {
		names = append(names, a.VM)
	}
	what := fmt.Sprintf("This change stops or moves %d VM(s): %s.", len(names), strings.Join(names, ", "))
	in, ok := cmd.InOrStdin().(*os.File)
	if !ok || !term.IsTerminal(int(in.Fd())) {
		return usageError{fmt.Errorf("%s Add --yes to go ahead (no terminal to ask on); --dry-run shows the plan", what)}
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "%s\nType yes to apply the rules: ", what)
	line, _ := bufio.NewReader(in).ReadString('\n')
	if strings.TrimSpace(line) != "yes" {
		return fmt.Errorf("not confirmed: nothing changed")
	}
	return nil
}

// printRulesPlan prints what a rules change does to the VMs.
func printRulesPlan(w io.Writer, p *api.RulesPlan, dry bool) {
	verb := "would"
	if !dry {
		verb = "will"
	}
	fmt.Fprintf(w, "change against version %d: %s\n", p.Version, p.Summary)
	var caused, pending []api.RulesAction
	for _, a := range p.Actions {
		if a.Pending {
			pending = append(pending, a)
		} else {
			caused = append(caused, a)
		}
	}
	if len(caused) == 0 {
		fmt.Fprintf(w, "no VM %s stop, start or move because of it\n", verb)
	} else {
		fmt.Fprintf(w, "the cluster %s:\n", verb)
		for _, a := range caused {
			fmt.Fprintln(w, "  "+describeRulesAction(a))
		}
	}
	if len(pending) > 0 {
		fmt.Fprintln(w, "already wanted by the rules in force (not caused by this change):")
		for _, a := range pending {
			fmt.Fprintln(w, "  "+describeRulesAction(a))
		}
	}
	for _, n := range p.Notes {
		fmt.Fprintln(w, "note: "+n)
	}
}

func describeRulesAction(a api.RulesAction) string {
	var s string
	switch placement.ActionKind(a.Action) {
	case placement.ActStop:
		s = fmt.Sprintf("stop %s on %s", a.VM, a.From)
		if a.From == "" {
			s = "keep " + a.VM + " stopped"
		}
	case placement.ActMigrate:
		s = fmt.Sprintf("move %s from %s to %s, live", a.VM, a.From, a.To)
	case placement.ActMove:
		s = fmt.Sprintf("move %s from %s to %s by a restart (shut down, then started there)", a.VM, a.From, a.To)
		if a.From == "" {
			s = fmt.Sprintf("start %s on %s", a.VM, a.To)
		}
	case placement.ActRecover:
		s = fmt.Sprintf("recover %s on %s", a.VM, a.To)
	default:
		s = fmt.Sprintf("%s %s on %s", a.Action, a.VM, a.To)
	}
	if a.Reason != "" {
		s += ": " + a.Reason
	}
	return s
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
