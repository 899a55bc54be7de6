// Package reconcile is the host agent's decision, as a pure function: from
// the committed placements that concern a host, the domains its hypervisor
// runs and the domains the agent defined, what to stop, undefine and start.
// The agent in cluster/ and the simulated hosts of internal/testlab/sim run the same
// function; the I/O (the hypervisor, the read index before a start, storage
// activation) stays in their runners.
//
// Two rules of never-twice live here:
//   - A state not known to be current decides nothing. A host that restarts
//     replays its log, and on the way its VMs are placed where they were
//     minutes ago (issue 19: a rejoining host started VMs that ran
//     elsewhere); an agent that has not caught up with a leader's read index
//     since it started neither stops nor starts.
//   - A start is a candidate, not an order: the runner confirms each against
//     a state at least as new as the leader's, just before it (Confirm).
package reconcile

import (
	"fmt"
	"sort"
	"time"

	"github.com/vmha/vmha/clusterspec"
)

// Desired is where the committed state wants a VM.
type Desired struct {
	// Host is where its placement puts it ("" nowhere).
	Host string
	// MigrateFrom is the source of a live move under way ("" none).
	MigrateFrom string
	// Hold: the cluster does not touch this VM (unmanaged, or the whole
	// cluster in maintenance): it is neither started, stopped nor
	// undefined here, whatever its placement says.
	Hold bool
}

// Input is one host's view for one pass.
type Input struct {
	Host string
	// Synced is set when the state the Desired map came from is known to
	// be as new as a leader's (a read index) since the agent started.
	Synced bool
	// Desired holds the cluster's VMs that concern this host: placed on
	// it, moving from it, and any found on its hypervisor. A domain absent
	// from it is not the cluster's.
	Desired map[string]Desired
	// Domains is what the hypervisor runs: name → active.
	Domains map[string]bool
	// Managed are the domains this agent defined (it may undefine them,
	// also after the cluster forgot the VM).
	Managed map[string]bool
	// NotBefore holds back the start of a VM that failed to start here
	// until then (the agent's backoff); Now is the pass's time.
	NotBefore map[string]time.Time
	Now       time.Time
	// Guests are the monitored guests (guest-monitor crash or heartbeat)
	// that failed on this host: GuestRestart decides whether each starts
	// again here (guest.go).
	Guests map[string]Guest
}

// Stop is a domain that must not stay on this host.
type Stop struct {
	VM string
	// Active: stop it first.
	Active bool
	// Release: the VM is the cluster's and this agent defined it here:
	// release its storage (logical volumes) for where it is placed.
	Release bool
	// Undefine: this agent defined it; undefine and forget it.
	Undefine bool
	Reason   string
}

// Plan is what one pass does.
type Plan struct {
	// Adopt are domains placed here: the agent manages them (also when
	// they arrived by a live migration).
	Adopt []string
	Stops []Stop
	// Starts are VMs placed here, not moving in live, whose domain is not
	// active: each to be confirmed (Confirm) on a current state just
	// before it starts.
	Starts []string
	// Deferred are starts held back by a failure's backoff (NotBefore).
	Deferred []string
	// Restarts are failed guests (crashed, hung) to destroy before they
	// start again: each is also in Starts.
	Restarts []Restart
	// GaveUp are failed guests not started again here: they failed more
	// than their guest-max-restarts in the window. An active one (a
	// watchdog reset it) is stopped.
	GaveUp []Restart
	// Waiting says why the pass decided nothing ("" when it did).
	Waiting string
}

// Restart is a guest-health decision on one VM, with its reason.
type Restart struct {
	VM     string
	Active bool
	Reason string
}

// Decide is the pass. It is deterministic: lists are sorted.
func Decide(in Input) Plan {
	if !in.Synced {
		return Plan{Waiting: "the state is not known to be current since the agent started (a log may be replaying): no stop, no start"}
	}
	var p Plan
	for _, name := range sortedKeys(in.Domains) {
		active := in.Domains[name]
		d, ours := in.Desired[name]
		managed := in.Managed[name]
		switch {
		case !ours && !managed:
			continue // not the cluster's: an operator's own domain
		case ours && d.Hold:
			continue // unmanaged or in maintenance: left as it is
		case ours && d.Host == in.Host:
			p.Adopt = append(p.Adopt, name)
			continue
		case ours && d.MigrateFrom == in.Host:
			continue // moving live from here: the migration runs it
		}
		if !active && !managed {
			continue
		}
		reason := "not the cluster's any more"
		switch {
		case ours && d.Host == "":
			reason = "placed nowhere"
		case ours:
			reason = "placed on " + d.Host
		}
		p.Stops = append(p.Stops, Stop{VM: name, Active: active, Release: ours && managed, Undefine: managed, Reason: reason})
	}
	for _, name := range sortedKeys(in.Desired) {
		d := in.Desired[name]
		// A VM moving here live arrives through the migration; starting
		// it too would run it twice.
		if d.Host != in.Host || d.MigrateFrom != "" || d.Hold {
			continue
		}
		if g, ok := in.Guests[name]; ok && len(g.Faults) > 0 {
			restart, why := GuestRestart(g, in.Now)
			switch {
			case restart && g.Failed:
				p.Restarts = append(p.Restarts, Restart{VM: name, Active: in.Domains[name], Reason: why})
				p.Starts = append(p.Starts, name)
				continue
			case !restart && g.Policy.Monitor != "" && g.Policy.Monitor != clusterspec.GuestMonitorOff:
				p.GaveUp = append(p.GaveUp, Restart{VM: name, Active: in.Domains[name], Reason: why})
				continue
			}
		}
		if in.Domains[name] {
			continue
		}
		if nb, ok := in.NotBefore[name]; ok && in.Now.Before(nb) {
			p.Deferred = append(p.Deferred, name)
			continue
		}
		p.Starts = append(p.Starts, name)
	}
	return p
}

// Confirm checks a start candidate against a state at least as new as the
// leader's, taken just before the start: the VM must still be the cluster's
// and placed on host, not moving in live.
func Confirm(host, vm string, d Desired, ours bool) error {
	switch {
	case !ours:
		return fmt.Errorf("vm %s is not the cluster's any more", vm)
	case d.Hold:
		return fmt.Errorf("vm %s is unmanaged or the cluster is in maintenance now: left as it is", vm)
	case d.Host != host:
		return fmt.Errorf("vm %s is placed on %q now, not on %s", vm, d.Host, host)
	case d.MigrateFrom != "":
		return fmt.Errorf("vm %s is moving here live from %s: the migration brings it", vm, d.MigrateFrom)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Backoff is how long a VM that failed to define or start n times in a row
// on a host waits before the next try there: 1 s, doubling, at most 5
// minutes. The leader moves it elsewhere once its fail count reaches the
// migration threshold; until then the host keeps trying, but not in a hot
// loop (issue 14: a broken domain was retried every 100–200 ms).
func Backoff(n int) time.Duration {
	const first, most = time.Second, 5 * time.Minute
	if n <= 0 {
		return 0
	}
	d := first
	for i := 1; i < n && d < most; i++ {
		d *= 2
	}
	return min(d, most)
}
