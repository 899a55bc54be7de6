package decide

import (
	"fmt"
	"strings"
	"time"

	"github.com/vmha/vmha/cluster/command"
)

// StepKind says what a step of a plan does.
type StepKind string

// The kinds of step.
const (
	// Commit proposes Command to the replicated log.
	Commit StepKind = "commit"
	// Fence starts a fence of Host (Action, "" for the host's own) for
	// recovery RecoveryID, unless one runs already.
	Fence StepKind = "fence"
	// Probe asks Host's peer API whether it is alive; the answer comes
	// back in Memory.Probes.
	Probe StepKind = "probe"
	// Nudge asks Host's agent to reconcile now.
	Nudge StepKind = "nudge"
	// Log only says something (Note).
	Log StepKind = "log"
)

// Step is one thing the runner does, in plan order. A commit that fails
// ends the plan: the later steps were decided as if it had committed.
type Step struct {
	Kind       StepKind
	Command    *command.Command
	Host       string
	Action     string
	RecoveryID string
	// Note is logged once the step ran (a failed commit logs its error).
	Note *Note
}

// Level is a note's log level.
type Level string

// Log levels.
const (
	Debug Level = "debug"
	Info  Level = "info"
	Warn  Level = "warn"
	Error Level = "error"
)

// Field is one structured log field.
type Field struct {
	Key   string
	Value any
}

// Note is a log line the runner writes for a step.
type Note struct {
	Level  Level
	Msg    string
	Fields []Field
	// Standing: it reports a condition that holds pass after pass (a
	// veto, rules that do not apply); the runner need not repeat it on
	// every pass.
	Standing bool
}

// Plan is what one pass decided.
type Plan struct {
	Steps []Step
	// WaitOver: quorum.wait_for_all ended on this pass (remember it).
	WaitOver bool
	// Waiting lists the hosts wait_for_all still waits for (the pass
	// decided nothing else).
	Waiting []string
}

func note(l Level, msg string, kv ...any) *Note {
	n := &Note{Level: l, Msg: msg}
	for i := 0; i+1 < len(kv); i += 2 {
		n.Fields = append(n.Fields, Field{Key: kv[i].(string), Value: kv[i+1]})
	}
	return n
}

// standing is a note about a condition that holds pass after pass.
func standing(l Level, msg string, kv ...any) *Note {
	n := note(l, msg, kv...)
	n.Standing = true
	return n
}

// String is the plan as the scenario files write it, one step a line.
func (p Plan) String() string {
	var b strings.Builder
	for _, s := range p.Steps {
		b.WriteString(s.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// String is one step in the scenario files' words.
func (s Step) String() string {
	switch s.Kind {
	case Commit:
		return "commit " + DescribeCommand(s.Command)
	case Fence:
		a := s.Action
		if a == "" {
			a = "default"
		}
		return fmt.Sprintf("fence %s action=%s recovery=%s", s.Host, a, s.RecoveryID)
	case Probe, Nudge:
		return string(s.Kind) + " " + s.Host
	}
	return "log " + string(s.Note.Level) + " " + s.Note.Msg
}

// DescribeCommand is a command in one line: its op and what it changes.
func DescribeCommand(c *command.Command) string {
	var b strings.Builder
	b.WriteString(string(c.Op))
	switch c.Op {
	case command.OpHostAttr:
		fmt.Fprintf(&b, " %s %s=%s", c.Attr.Host, c.Attr.Key, c.Attr.Value)
	case command.OpHostState:
		hc := c.HostState
		fmt.Fprintf(&b, " %s %s (%s)", hc.Host, hc.State, hc.Reason)
	case command.OpFenceConfirm:
		fmt.Fprintf(&b, " %s by %s (%s)", c.HostState.Host, c.Fence.Device, c.HostState.Reason)
	case command.OpPlace:
		for i, p := range c.Placements {
			if i > 0 {
				b.WriteString(";")
			}
			to := p.Host
			if to == "" {
				to = "(stopped)"
			}
			fmt.Fprintf(&b, " %s -> %s", p.VM, to)
			switch {
			case p.Cold:
				fmt.Fprintf(&b, " cold from %s", p.MigrateFrom)
			case p.MigrateFrom != "":
				fmt.Fprintf(&b, " live from %s", p.MigrateFrom)
			}
			if p.RecoveryID != "" {
				fmt.Fprintf(&b, " recovery=%s", p.RecoveryID)
			}
		}
	case command.OpHostSeen:
		fmt.Fprintf(&b, " %s", strings.Join(c.Names, ","))
	case command.OpPin:
		b.WriteString(" expired")
	case command.OpEvacuation:
		if e := c.Evacuation; e != nil {
			fmt.Fprintf(&b, " %s done=%t stuck=%d", e.Host, e.Done, len(e.Stuck))
		}
	case command.OpRebalance:
		if r := c.Rebalance; r != nil {
			var states []string
			for _, m := range r.Moves {
				states = append(states, fmt.Sprintf("%s:%s", m.VM, m.State))
			}
			fmt.Fprintf(&b, " %s done=%t [%s]", r.ID, r.Done, strings.Join(states, " "))
		}
	case command.OpFormed:
		fmt.Fprintf(&b, " %d hosts", len(c.Formed))
	}
	return b.String()
}

// builder collects a pass's steps and keeps its working state in step.
type builder struct {
	v    *View
	plan Plan
	// failed is set when the pass's own apply refused a command: the
	// pass stops planning (the next one starts from the real state).
	failed error
}

// commit adds a command, applied at once to the working state so that
// later decisions of the pass see it.
func (b *builder) commit(c *command.Command, n *Note) bool {
	if b.failed != nil {
		return false
	}
	c.At, c.Term = b.v.Now.UTC(), b.v.Term
	if err := b.v.Apply(b.v.State, c); err != nil {
		b.failed = fmt.Errorf("%s: %w", c.Op, err)
		b.plan.Steps = append(b.plan.Steps, Step{Kind: Log, Note: standing(Error, "the pass's own command was refused; nothing more this pass", "op", string(c.Op), "error", err.Error())})
		return false
	}
	b.plan.Steps = append(b.plan.Steps, Step{Kind: Commit, Command: c, Note: n})
	return true
}

func (b *builder) fence(host, rid, action string) {
	if b.failed != nil {
		return
	}
	b.plan.Steps = append(b.plan.Steps, Step{Kind: Fence, Host: host, RecoveryID: rid, Action: action})
}

func (b *builder) probe(host string) {
	b.plan.Steps = append(b.plan.Steps, Step{Kind: Probe, Host: host})
}

func (b *builder) nudge(host string) {
	if host == "" || b.failed != nil {
		return
	}
	for _, s := range b.plan.Steps {
		if s.Kind == Nudge && s.Host == host {
			return
		}
	}
	b.plan.Steps = append(b.plan.Steps, Step{Kind: Nudge, Host: host})
}

func (b *builder) log(n *Note) {
	b.plan.Steps = append(b.plan.Steps, Step{Kind: Log, Note: n})
}

func (b *builder) now() time.Time { return b.v.Now }
