// Package placement decides where VMs run. It is pure: it takes an input
// and returns a placement, the actions that reach it and the reasons for
// them, and never touches the world. Solve is the Pacemaker-compatible
// engine (see docs/placement.md); the leader (cluster/decide) and vmha plan
// both use it.
package placement

import (
	"fmt"
)

// HostCondition is what the leader knows about a host.
type HostCondition int

// Host conditions.
const (
	// Usable hosts are alive members in good standing: VMs may start there.
	Usable HostCondition = iota
	// Lost hosts failed but are not fenced yet: their VMs stay assigned to
	// them, because starting them elsewhere could run them twice.
	Lost
	// Released hosts were fenced (or removed): their VMs need a new host.
	Released
	// Offline hosts left the cluster cleanly; their VMs are kept where they
	// are, and nothing new starts there.
	Offline
)

func (c HostCondition) String() string {
	switch c {
	case Usable:
		return "usable"
	case Lost:
		return "lost"
	case Released:
		return "released"
	case Offline:
		return "offline"
	}
	return fmt.Sprintf("condition(%d)", int(c))
}

// PreferScore is the location score a VM's preferred host gets.
const PreferScore Score = 100
