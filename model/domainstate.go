package model

// DomainState is a domain's run state as vmha cares about it, as agents
// report it (Observation) and the hypervisor package maps it from libvirt.
type DomainState string

// Domain states, mapped from libvirt's virDomainState.
const (
	DomainRunning  DomainState = "running"
	DomainPaused   DomainState = "paused"
	DomainShutdown DomainState = "shutting-down"
	DomainShutoff  DomainState = "shutoff"
	DomainCrashed  DomainState = "crashed"
	DomainUnknown  DomainState = "unknown"
)

// Active reports whether a domain in this state holds its disks and must be
// counted as running for the never-twice invariant: a paused domain is active.
func (s DomainState) Active() bool {
	return s == DomainRunning || s == DomainPaused || s == DomainShutdown
}
