package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vmha/vmha/clusterspec"
	"github.com/vmha/vmha/internal/pacemaker"
	"github.com/vmha/vmha/placement"
)

type planOpts struct {
	config, status string
	cib            string
	failHosts      []string
	lostHosts      []string
	standby        []string
	attrs          []string
	explain        []string
	now            string
	noRescue       bool
	// health is cluster.yaml's node-health policy, applied to the
	// attributes once the what-if flags changed them.
	health clusterspec.HealthPolicy
}

func newPlanCmd(g *globals) *cobra.Command {
	var o planOpts
	cmd := &cobra.Command{
		Use:   "plan (--config cluster.yaml [--status status.yaml] | --pacemaker-cib cib.xml) [flags]",
		Short: "Compute a placement offline from files, like crm_simulate",
		Long: `plan runs the placement engine on a cluster.yaml (and optionally a
status.yaml with where VMs run, host states, live attributes and fail counts)
without a daemon, and prints where every VM would run, the ordered actions
that get there, and the scores. What-if flags change the input first:
--fail-host H (H failed and was fenced: its VMs are recovered), --lost-host H
(H failed and is not fenced yet: its VMs wait), --standby H, --attr H:KEY=VALUE.
The JSON output is documented in docs/placement.md.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error { return runPlan(g, &o, cmd.ErrOrStderr()) },
	}
	f := cmd.Flags()
	f.StringVar(&o.config, "config", "", "cluster.yaml to plan for (required)")
	f.StringVar(&o.status, "status", "", "status.yaml: where VMs run, host states, attributes, fail counts")
	f.StringVar(&o.cib, "pacemaker-cib", "", "plan from a Pacemaker CIB (configuration and status) instead of --config")
	f.StringArrayVar(&o.failHosts, "fail-host", nil, "treat host as failed and fenced (repeatable)")
	f.StringArrayVar(&o.lostHosts, "lost-host", nil, "treat host as failed but not fenced yet (repeatable)")
	f.StringArrayVar(&o.standby, "standby", nil, "put host in standby (repeatable)")
	f.StringArrayVar(&o.attrs, "attr", nil, "set a host attribute, HOST:KEY=VALUE (repeatable)")
	f.StringArrayVar(&o.explain, "explain", nil, "explain the placement of this VM, host by host (repeatable)")
	f.StringVar(&o.now, "now", "", "clock for failure timeouts, RFC 3339 (default: status.yaml's now, else the current time)")
	f.BoolVar(&o.noRescue, "no-rescue", false, "Pacemaker's greedy allocation only: skip the search that rescues VMs it would leave stopped")
	return cmd
}

func runPlan(g *globals, o *planOpts, errw io.Writer) error {
	in, validated, err := loadInput(o, errw)
	if err != nil {
		return err
	}
	if err := applyWhatIf(&in, o); err != nil {
		return err
	}
	o.health.Apply(&in)
	// Only the JSON output shows the scores: a table of every VM on every
	// host (50 million entries at 1,000 hosts and 50,000 VMs), so the
	// engine fills it only then. Explanations are made only for the VMs
	// --explain names. An input from cluster.yaml was validated by
	// Input, and neither the what-if flags nor the health scores change
	// what Validate checks (they set host states, attributes and the
	// clock, and add locations of known VMs on known hosts): the engine
	// need not validate it again.
	wantJSON := g.output == "json"
	r, err := placement.Solve(in, placement.Options{Scores: wantJSON, Explain: o.explain, NoSearch: o.noRescue, Validated: validated})
	if err != nil {
		return err
	}
	for _, v := range o.explain {
		if r.Explanations[v] == nil {
			return usageError{fmt.Errorf("--explain %s: no such VM", v)}
		}
	}
	// One buffered writer for the whole output: 50,000 VMs are 50,000
	// lines, and g.out is unbuffered (os.Stdout).
	bw := bufio.NewWriterSize(g.out, 64<<10)
	bg := *g
	bg.out = bw
	if wantJSON {
		err = bg.printJSON(planJSON(&in, r, o.explain))
	} else {
		printPlan(&bg, &in, r, o.explain)
	}
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	return err
}

// loadInput reads the model from cluster.yaml (and status.yaml) or from a
// Pacemaker CIB, whose untranslated parts are listed on stderr. validated
// says the input passed placement.Validate (cluster.yaml's does, in
// Spec.Input; a CIB's is left to the engine).
func loadInput(o *planOpts, errw io.Writer) (in placement.Input, validated bool, err error) {
	switch {
	case o.cib != "" && (o.config != "" || o.status != ""):
		return placement.Input{}, false, usageError{fmt.Errorf("--pacemaker-cib replaces --config and --status: give one or the other")}
	case o.cib != "":
		data, err := os.ReadFile(o.cib)
		if err != nil {
			return placement.Input{}, false, err
		}
		in, warn, err := pacemaker.ReadCIB(data, time.Now())
		if err != nil {
			return in, false, fmt.Errorf("%s: %w", o.cib, err)
		}
		for _, w := range warn {
			fmt.Fprintln(errw, "vmha: warning: "+o.cib+": "+w)
		}
		return in, false, nil
	case o.config == "":
		return placement.Input{}, false, usageError{fmt.Errorf("--config (or --pacemaker-cib) is required")}
	}
	data, err := os.ReadFile(o.config)
	if err != nil {
		return placement.Input{}, false, err
	}
	spec, err := clusterspec.DecodeOwned(data) // data is used for nothing else
	if err != nil {
		return placement.Input{}, false, fmt.Errorf("%s: %w", o.config, err)
	}
	var st *clusterspec.Status
	if o.status != "" {
		sd, err := os.ReadFile(o.status)
		if err != nil {
			return placement.Input{}, false, err
		}
		if st, err = clusterspec.ParseStatus(sd); err != nil {
			return placement.Input{}, false, fmt.Errorf("%s: %w", o.status, err)
		}
	}
	if st == nil {
		// The file is the whole world: its constraints name only what
		// it describes (Input without a status reads a running
		// cluster's rules).
		st = &clusterspec.Status{}
	}
	in, err = spec.Input(st)
	if err != nil {
		return in, false, fmt.Errorf("%s: %w", o.config, err)
	}
	o.health = spec.Policy.Health()
	return in, true, nil
}

// applyWhatIf changes the input as the what-if flags say.
func applyWhatIf(in *placement.Input, o *planOpts) error {
	idx := map[string]int{}
	for i, h := range in.Hosts {
		idx[h.Name] = i
	}
	host := func(flag, name string) (*placement.HostInfo, error) {
		i, ok := idx[name]
		if !ok {
			return nil, usageError{fmt.Errorf("--%s %s: no such host in the config", flag, name)}
		}
		return &in.Hosts[i], nil
	}
	for _, n := range o.failHosts {
		h, err := host("fail-host", n)
		if err != nil {
			return err
		}
		h.Condition = placement.Released
	}
	for _, n := range o.lostHosts {
		h, err := host("lost-host", n)
		if err != nil {
			return err
		}
		h.Condition = placement.Lost
	}
	for _, n := range o.standby {
		h, err := host("standby", n)
		if err != nil {
			return err
		}
		h.Standby = true
	}
	for _, a := range o.attrs {
		name, kv, ok := strings.Cut(a, ":")
		k, v, ok2 := strings.Cut(kv, "=")
		if !ok || !ok2 || k == "" {
			return usageError{fmt.Errorf("--attr %q: want HOST:KEY=VALUE", a)}
		}
		h, err := host("attr", name)
		if err != nil {
			return err
		}
		if h.Attributes == nil {
			h.Attributes = map[string]string{}
		}
		h.Attributes[k] = v
	}
	switch {
	case o.now != "":
		t, err := time.Parse(time.RFC3339, o.now)
		if err != nil {
			return usageError{fmt.Errorf("--now %q: want RFC 3339, like 2026-01-02T15:04:05Z", o.now)}
		}
		in.Now = t
	case in.Now.IsZero():
		in.Now = time.Now()
	}
	return nil
}

// planAction is an action as the JSON output shows it: from and to are
// null when they do not apply.
type planAction struct {
	VM     string  `json:"vm"`
	Action string  `json:"action"`
	From   *string `json:"from"`
	To     *string `json:"to"`
	Step   int     `json:"step"`
}

type planOutput struct {
	Placement    map[string]*string                    `json:"placement"`
	Actions      []planAction                          `json:"actions"`
	Scores       map[string]map[string]placement.Score `json:"scores"`
	Blocked      map[string]string                     `json:"blocked,omitempty"`
	Explanations map[string]*placement.Explanation     `json:"explanations,omitempty"`
}

func strOrNil(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func planJSON(in *placement.Input, r *placement.Result, explain []string) planOutput {
	out := planOutput{Placement: map[string]*string{}, Actions: []planAction{}, Scores: r.Scores, Blocked: r.Blocked}
	for _, v := range in.VMs {
		out.Placement[v.Name] = strOrNil(r.Placement[v.Name])
	}
	for _, a := range r.Actions {
		out.Actions = append(out.Actions, planAction{VM: a.VM, Action: string(a.Action), From: strOrNil(a.From), To: strOrNil(a.To), Step: a.Step})
	}
	if len(explain) > 0 {
		out.Explanations = map[string]*placement.Explanation{}
		for _, v := range explain {
			out.Explanations[v] = r.Explanations[v]
		}
	}
	return out
}

func printPlan(g *globals, in *placement.Input, r *placement.Result, explain []string) {
	tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VM\tNOW\tPLANNED\tNOTE")
	names := make([]string, 0, len(in.VMs))
	cur := map[string]string{}
	for _, v := range in.VMs {
		names = append(names, v.Name)
		cur[v.Name] = v.Current
	}
	sort.Strings(names)
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	for _, n := range names {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", n, dash(cur[n]), dash(r.Placement[n]), r.Blocked[n])
	}
	tw.Flush()
	fmt.Fprintln(g.out)
	if len(r.Actions) == 0 {
		fmt.Fprintln(g.out, "No actions.")
	} else {
		fmt.Fprintln(g.out, "Actions (a step starts when the previous one is done):")
		tw = tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
		for _, a := range r.Actions {
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%s -> %s\n", a.Step, a.Action, a.VM, dash(a.From), dash(a.To))
		}
		tw.Flush()
	}
	for _, v := range explain {
		printExplanation(g, r.Explanations[v])
	}
}

func printExplanation(g *globals, ex *placement.Explanation) {
	fmt.Fprintln(g.out)
	host := ex.Host
	if host == "" {
		host = "stopped"
	}
	fmt.Fprintf(g.out, "%s -> %s: %s\n", ex.VM, host, ex.Reason)
	for _, n := range ex.Notes {
		fmt.Fprintln(g.out, "  note: "+n)
	}
	if len(ex.Hosts) == 0 {
		return
	}
	tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  HOST\tSCORE\tELIGIBLE\tTERMS\tFILTERS")
	for _, h := range ex.Hosts {
		var terms []string
		for _, t := range h.Terms {
			terms = append(terms, fmt.Sprintf("%s %s", t.Score, t.Source))
		}
		el := "no"
		if h.Eligible {
			el = "yes"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", h.Host, h.Score, el, dash0(strings.Join(terms, "; ")), dash0(strings.Join(h.Filters, "; ")))
	}
	tw.Flush()
}

func dash0(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
