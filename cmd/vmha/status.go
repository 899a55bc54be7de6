package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/model"
)

// Exit codes of vmha status --check, as monitoring plugins (Nagios,
// Icinga, Zabbix's external checks) read them. Plain vmha status exits
// checkCritical when the cluster has no quorum.
const (
	checkOK       = 0
	checkWarning  = 1
	checkCritical = 2
	checkUnknown  = 3
)

// exitStatus ends vmha with code; msg, when set, is printed as vmha's
// error line.
type exitStatus struct {
	code int
	msg  string
}

func (e exitStatus) Error() string { return e.msg }

func newStatusCmd(g *globals) *cobra.Command {
	var watch, check bool
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "status [--watch [--interval D]] [--check]",
		Short: "Show quorum, hosts, VMs (target and actual state), problems and notices",
		Long: `vmha status shows who decides (leader, quorum in plain words), every host with
its lifecycle state (alive, lost, fenced, fence-failed) and what operators put it
in (drained, maintenance, standby, storage maintenance), every VM with its target
(started, stopped, disabled, or unmanaged) and what its host last reported, and
then the problems that need an operator, most severe first, apart from the
notices: states someone chose (a host in maintenance, a VM stopped on purpose).

--watch redraws it every --interval on a terminal, and prints a new block each
time it changes otherwise; Ctrl-C ends it (exit 0).

--check prints one line for a monitoring system and exits 0 (OK), 1 (WARNING:
problems that will bite at the next failure, such as a host without a fence
device or two hosts without a witness), 2 (CRITICAL: no quorum, a lost host, a
failed fence, a VM that should run and does not) or 3 (UNKNOWN: the cluster
cannot be reached). docs/status.md lists which problem is which.

Plain vmha status exits 2 when the cluster has no quorum (after printing it).`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case watch && check:
				return usageError{fmt.Errorf("--watch and --check do not go together")}
			case cmd.Flags().Changed("interval") && !watch:
				return usageError{fmt.Errorf("--interval needs --watch")}
			case interval <= 0:
				return usageError{fmt.Errorf("--interval %s: want a positive duration", interval)}
			case check && g.output == "json":
				return usageError{fmt.Errorf("--check prints one line for a monitoring system; -o json does not apply")}
			}
			if check {
				return checkStatus(g)
			}
			if watch {
				ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
				defer stop()
				return watchStatus(ctx, g, interval, isTerminal(g.out))
			}
			ctx, cancel := g.ctx()
			defer cancel()
			s, err := g.client().Status(ctx)
			if err != nil {
				return err
			}
			if g.output == "json" {
				if err := g.printJSON(s); err != nil {
					return err
				}
			} else {
				printStatus(g, s)
			}
			if !s.Quorum.Quorate {
				return exitStatus{code: checkCritical, msg: s.Quorum.Explanation}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "redraw the status every --interval until Ctrl-C")
	cmd.Flags().DurationVar(&interval, "interval", 2*time.Second, "how often --watch reads the status")
	cmd.Flags().BoolVar(&check, "check", false, "print one line and exit 0 ok, 1 warning, 2 critical, 3 unknown (a monitoring plugin)")
	return cmd
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// checkStatus is vmha status --check.
func checkStatus(g *globals) error {
	ctx, cancel := g.ctx()
	defer cancel()
	s, err := g.client().Status(ctx)
	if err != nil {
		fmt.Fprintln(g.out, "VMHA UNKNOWN - cannot reach the cluster: "+oneLine(err.Error()))
		return exitStatus{code: checkUnknown}
	}
	code, line := checkSummary(s)
	fmt.Fprintln(g.out, line)
	if code == checkOK {
		return nil
	}
	return exitStatus{code: code}
}

// checkSummary is the verdict of --check and its one line, with
// performance data after the "|".
func checkSummary(s *api.Status) (int, string) {
	problems := slices.Clone(s.ProblemDetails)
	if len(problems) == 0 {
		// A vmhad from before problem_details: its problems, as warnings.
		for _, p := range s.Problems {
			problems = append(problems, api.Issue{Severity: api.SeverityWarning, Message: p})
		}
	}
	if !s.Quorum.Quorate && !slices.ContainsFunc(problems, func(i api.Issue) bool { return i.Code == "no_quorum" }) {
		problems = append([]api.Issue{{Code: "no_quorum", Severity: api.SeverityCritical, Message: s.Quorum.Explanation}}, problems...)
	}
	crit := 0
	for _, p := range problems {
		if p.Severity == api.SeverityCritical {
			crit++
		}
	}
	// The most severe first, as the daemon sorts them.
	slices.SortStableFunc(problems, func(a, b api.Issue) int {
		return boolRank(b.Severity == api.SeverityCritical) - boolRank(a.Severity == api.SeverityCritical)
	})
	running := 0
	for _, v := range s.VMs {
		if v.Actual == string(model.DomainRunning) || (v.Actual == "" && v.State == string(model.DomainRunning)) {
			running++
		}
	}
	perf := fmt.Sprintf("hosts=%d vms=%d running=%d critical=%d warning=%d notices=%d",
		len(s.Hosts), len(s.VMs), running, crit, len(problems)-crit, len(s.Notices))
	code, word := checkOK, "OK"
	switch {
	case crit > 0:
		code, word = checkCritical, "CRITICAL"
	case len(problems) > 0:
		code, word = checkWarning, "WARNING"
	}
	var text string
	if len(problems) == 0 {
		text = fmt.Sprintf("%d of %d voters alive, leader %s; %d hosts, %d VMs, %d running", len(s.Quorum.AliveVoters), len(s.Quorum.Voters), dash(s.Leader), len(s.Hosts), len(s.VMs), running)
		if n := len(s.Notices); n > 0 {
			text += fmt.Sprintf("; %d %s", n, plural(n, "notice"))
		}
	} else {
		text = fmt.Sprintf("%d %s: ", len(problems), plural(len(problems), "problem"))
		if len(problems) == 1 {
			text += problems[0].Message
		} else {
			var parts []string
			for i, p := range problems {
				parts = append(parts, fmt.Sprintf("(%d) %s", i+1, p.Message))
			}
			text += strings.Join(parts, " ")
		}
	}
	// "|" starts the performance data: none may appear before it.
	return code, fmt.Sprintf("VMHA %s - %s | %s", word, strings.ReplaceAll(oneLine(text), "|", "/"), perf)
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// watchStatus is vmha status --watch: on a terminal it redraws the status
// in place every interval; otherwise it prints a new block each time the
// status changes (ages and report times aside). It ends, with no error,
// when ctx does (Ctrl-C).
func watchStatus(ctx context.Context, g *globals, interval time.Duration, tty bool) error {
	last := ""
	for {
		var buf bytes.Buffer
		gb := *g
		gb.out = &buf
		rctx, cancel := context.WithTimeout(ctx, g.timeout)
		s, err := g.client().Status(rctx)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		var key string
		if err != nil {
			fmt.Fprintln(&buf, "vmha: "+err.Error())
			key = "error: " + err.Error()
		} else {
			if g.output == "json" {
				if err := gb.printJSON(s); err != nil {
					return err
				}
			} else {
				printStatus(&gb, s)
			}
			key = watchKey(s)
		}
		now := time.Now()
		switch {
		case tty:
			fmt.Fprintf(g.out, "\033[H\033[2J")
			if g.output != "json" {
				fmt.Fprintf(g.out, "Every %s: vmha status (Ctrl-C ends)   %s\n\n", interval, now.Format(time.DateTime))
			}
			if _, err := g.out.Write(buf.Bytes()); err != nil {
				return err
			}
		case key != last:
			if g.output != "json" {
				fmt.Fprintf(g.out, "--- %s ---\n", now.Format(time.DateTime))
			}
			if _, err := g.out.Write(buf.Bytes()); err != nil {
				return err
			}
		}
		last = key
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval):
		}
	}
}

// watchKey is what must change for --watch to print a new block off a
// terminal: the status without its clock (ages, report and check times).
func watchKey(s *api.Status) string {
	c := *s
	c.At = time.Time{}
	c.Hosts = slices.Clone(s.Hosts)
	for i := range c.Hosts {
		h := &c.Hosts[i]
		h.ReportAt, h.ReportAgeSeconds = time.Time{}, nil
		if h.FenceCheck != nil {
			fc := *h.FenceCheck
			fc.At, fc.Duration = time.Time{}, 0
			h.FenceCheck = &fc
		}
	}
	c.VMs = slices.Clone(s.VMs)
	for i := range c.VMs {
		v := &c.VMs[i]
		v.ReportAt, v.ReportAgeSeconds, v.ActualAgeSeconds = time.Time{}, nil, nil
		v.Failures = slices.Clone(v.Failures)
		for j := range v.Failures {
			v.Failures[j].LastAgeSeconds = 0
		}
	}
	b, _ := json.Marshal(c)
	return string(b)
}

func printStatus(g *globals, s *api.Status) {
	leader := s.Leader
	if leader == "" {
		leader = "none"
	}
	if s.Security.Insecure {
		fmt.Fprintf(g.out, "WARNING: %s\n", s.Security.Explanation)
	}
	if cm := s.ClusterMaintenance; cm != nil {
		fmt.Fprintf(g.out, "CLUSTER IN MAINTENANCE since %s by %s%s: nothing is started, stopped, moved or fenced\n", when(cm.At), cm.By, paren(cm.Reason))
	}
	fmt.Fprintf(g.out, "Leader: %s (term %d)   Quorum: %s\n", leader, s.Term, s.Quorum.Explanation)
	fmt.Fprintln(g.out)
	printHosts(g, s.Hosts)
	fmt.Fprintln(g.out)
	tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VM\tHOST\tTARGET\tACTUAL\tMEMORY\tREASON\tFAILURES")
	for _, v := range s.VMs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d MiB\t%s\t%s\n", v.Name, dash(v.Host), targetText(v), actualText(v), v.MemoryMiB, tabless(v.Reason), failuresText(v.Failures))
	}
	tw.Flush()
	problems := s.ProblemDetails
	if len(problems) == 0 {
		for _, p := range s.Problems {
			problems = append(problems, api.Issue{Severity: api.SeverityWarning, Message: p})
		}
	}
	if len(problems) > 0 {
		fmt.Fprintln(g.out)
		fmt.Fprintln(g.out, "Problems:")
		for _, p := range problems {
			fmt.Fprintf(g.out, "  %-8s  %s\n", strings.ToUpper(p.Severity), p.Message)
		}
	}
	if len(s.Notices) > 0 {
		fmt.Fprintln(g.out)
		fmt.Fprintln(g.out, "Notices:")
		for _, n := range s.Notices {
			fmt.Fprintln(g.out, "  - "+n.Message)
		}
	}
}

func printHosts(g *globals, hosts []api.Host) {
	tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tGOSSIP\tSTATE\tADMIN\tROLE\tMEMORY USED\tVMS\tFENCE DEVICE\tREASON")
	for _, h := range hosts {
		role := "follower"
		switch {
		case h.Leader:
			role = "leader"
		case h.Witness:
			role = "witness"
		case !h.Voter:
			role = "non-voter"
		}
		dev := h.FenceDev
		if dev == "" {
			dev = "none"
		}
		state := string(h.State)
		if h.ReportStale && h.ReportAgeSeconds != nil {
			state += ", last report " + age(*h.ReportAgeSeconds) + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d/%d MiB\t%d\t%s\t%s\n", h.Name, h.Member, state, adminText(h.Admin), role, h.UsedMiB, h.MemoryMiB, len(h.VMs), dev, tabless(h.Reason))
	}
	tw.Flush()
}

// adminText is a host's admin states in a few words each: "drained since
// 14:02 by alice@kvm1", "maintenance since ... by ... (reason)".
func adminText(as []api.AdminState) string {
	var parts []string
	for _, a := range as {
		var p string
		switch a.State {
		case api.AdminStandby:
			p = "standby (cluster.yaml)"
		case api.AdminRulesMaintenance:
			p = "maintenance (cluster.yaml)"
		case api.AdminClusterMaintenance:
			p = "cluster maintenance"
		case api.AdminStorageMaintenance:
			p = fmt.Sprintf("storage maintenance of %s since %s by %s", a.Storage, when(a.Since), a.By)
			if a.Done {
				p += " (done)"
			}
		default:
			p = fmt.Sprintf("%s since %s by %s%s", a.State, when(a.Since), a.By, paren(a.Reason))
		}
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		return "-"
	}
	return tabless(strings.Join(parts, ", "))
}

// targetText is a VM's target as the TARGET column shows it.
func targetText(v api.VM) string {
	var t string
	switch v.Target {
	case "":
		t = "-" // a vmhad from before targets
	case model.TargetIgnored:
		t = "unmanaged"
	default:
		t = string(v.Target)
	}
	switch v.TargetSource {
	case "operator":
		t += " (by " + v.TargetBy + ")"
	case "rules":
		t += " (cluster.yaml)"
	}
	for _, a := range v.Admin {
		if a.State == api.AdminClusterMaintenance {
			t += " [cluster maintenance]"
		}
	}
	return tabless(t)
}

// actualText is what the VM's host last reported, with its age: "running
// 3h12m", "shut off 20s", or "running? last report 45s ago" when the
// report is stale.
func actualText(v api.VM) string {
	if v.Actual == "" {
		if v.Target == "" {
			return v.State // a vmhad from before actual states
		}
		t := "not reported"
		if v.MigratingFrom != "" {
			t = "moving from " + v.MigratingFrom
		}
		if v.ReportStale && v.ReportAgeSeconds != nil {
			t += "? last report " + age(*v.ReportAgeSeconds) + " ago"
		}
		return t
	}
	t := strings.ReplaceAll(v.Actual, "shutoff", "shut off")
	t = strings.ReplaceAll(t, "-", " ")
	if v.ReportStale {
		t += "?"
		if v.ReportAgeSeconds != nil {
			t += " last report " + age(*v.ReportAgeSeconds) + " ago"
		}
	} else if v.ActualAgeSeconds != nil {
		t += " " + age(*v.ActualAgeSeconds)
	}
	if v.ActualHost != "" && v.ActualHost != v.Host {
		t += " on " + v.ActualHost
	}
	if v.MigratingFrom != "" {
		t += ", moving to " + v.Host
	}
	return tabless(t)
}

// failuresText is a VM's fail counts: "failed 3× on host2, last 2m ago:
// error".
func failuresText(fs []api.VMFailure) string {
	var parts []string
	for _, f := range fs {
		p := fmt.Sprintf("failed %d× on %s", f.Count, f.Host)
		if !f.Last.IsZero() {
			p += ", last " + age(f.LastAgeSeconds) + " ago"
		}
		if f.Error != "" {
			p += ": " + oneLine(f.Error)
		}
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		return "-"
	}
	return tabless(strings.Join(parts, "; "))
}

// age is a number of seconds in a few characters: 20s, 2m, 3h12m, 4d3h.
func age(secs int64) string {
	d := max(secs, 0)
	switch {
	case d < 60:
		return fmt.Sprintf("%ds", d)
	case d < 3600:
		return fmt.Sprintf("%dm", d/60)
	case d < 86400:
		if m := d % 3600 / 60; m > 0 {
			return fmt.Sprintf("%dh%dm", d/3600, m)
		}
		return fmt.Sprintf("%dh", d/3600)
	}
	if h := d % 86400 / 3600; h > 0 {
		return fmt.Sprintf("%dd%dh", d/86400, h)
	}
	return fmt.Sprintf("%dd", d/86400)
}

// when is a time as the status shows it, in local time: the clock time
// today, the date and time otherwise.
func when(t time.Time) string {
	if t.IsZero() {
		return "?"
	}
	t = t.Local()
	if y, m, d := t.Date(); y == time.Now().Year() && m == time.Now().Month() && d == time.Now().Day() {
		return t.Format("15:04")
	}
	return t.Format("2006-01-02 15:04")
}

func paren(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}

// tabless keeps a cell from breaking the table's columns.
func tabless(s string) string { return strings.ReplaceAll(s, "\t", " ") }
