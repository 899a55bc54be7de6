package reconcile

import (
	"fmt"
	"time"

	"github.com/vmha/vmha/clusterspec"
)

// Guest is what the agent knows of one guest's health on this host.
type Guest struct {
	Policy clusterspec.GuestPolicy
	// Faults are the times this guest crashed (or was found hung) on this
	// host, oldest first, including the one being handled.
	Faults []time.Time
	// Failed: the domain is in a failed state that must be destroyed before
	// it starts again (libvirt's crashed state, with on_crash preserve; or a
	// running guest whose heartbeats stopped, in heartbeat mode).
	Failed bool
	// Why names the last fault ("panicked", "watchdog", "heartbeat"...).
	Why string
}

// GuestRestart decides whether a guest that failed on this host may be
// restarted here: yes while it failed at most max-restarts times within the
// restart window before now; no after that (a guest that crashes in a
// loop is left stopped and reported) and no with monitoring off. The reason
// says which.
func GuestRestart(g Guest, now time.Time) (bool, string) {
	p := g.Policy
	if p.Monitor == "" || p.Monitor == clusterspec.GuestMonitorOff {
		return false, "guest-monitor off: a failed guest is left as it is"
	}
	n := 0
	for _, t := range g.Faults {
		if p.Window <= 0 || now.Sub(t) < p.Window {
			n++
		}
	}
	if n > p.MaxRestarts {
		return false, fmt.Sprintf("guest failed %d times in %s (%s), more than guest-max-restarts %d: left stopped", n, p.Window, g.Why, p.MaxRestarts)
	}
	return true, fmt.Sprintf("guest failed (%s): restart %d of %d in %s", g.Why, n, p.MaxRestarts, p.Window)
}
