// Package decide holds the leader's decisions as a pure function: Pass
// takes one view of the cluster (the replicated state, gossip's membership
// as plain data, the leader's own memory of fences, probes and heartbeats,
// and the time) and returns a Plan: the commands to commit, the fences to
// start, the probes to send and the agents to nudge, in order. It does no
// I/O and reads no clock; a thin runner in package cluster executes the
// plan and feeds what it learns (fence outcomes, probe answers) back as the
// next pass's memory, as etcd's RawNode Ready/Advance loop does.
//
// The same view answers the API's questions (vmha explain, the target of a
// migration, an evacuation's plan, a rebalance's plan), so that what an
// operator is shown and what the leader does come from one place.
package decide

import (
	"time"

	"github.com/vmha/vmha/cluster/command"
	"github.com/vmha/vmha/model"
)

// Gossip tags, as vmhad publishes them: the wire contract the decisions
// read (boot id, live host attributes).
const (
	TagBoot = "boot"
	TagAttr = "attr."
)

// StorageAttrPrefix starts the host attributes that publish storage
// readiness (storage.AttrPrefix; a test keeps them equal).
const StorageAttrPrefix = "storage."

// MemberStatus is gossip's verdict on a host.
type MemberStatus uint8

// Gossip verdicts (serf's member states).
const (
	MemberNone MemberStatus = iota
	MemberAlive
	MemberLeaving
	MemberLeft
	MemberFailed
)

func (s MemberStatus) String() string {
	switch s {
	case MemberAlive:
		return "alive"
	case MemberLeaving:
		return "leaving"
	case MemberLeft:
		return "left"
	case MemberFailed:
		return "failed"
	}
	return "none"
}

// Member is one host as gossip reports it.
type Member struct {
	Name   string
	Status MemberStatus
	Tags   map[string]string
}

// Members is gossip's view, by host name.
type Members map[string]Member

// Alive reports whether gossip reports host alive.
func (m Members) Alive(host string) bool {
	mm, ok := m[host]
	return ok && mm.Status == MemberAlive
}

// Beat is the storage heartbeat's verdict on a host: Writing when it still
// writes its heartbeat on a cluster file system (FS names which).
type Beat struct {
	Writing bool
	FS      string
}

// Disks maps a VM's disks to the cluster file systems that hold them (the
// storage config's job; nil without shared storage).
type Disks interface {
	Filesystems(vm *model.VM) []string
}

// Settings are the parts of this host's configuration the decisions use.
type Settings struct {
	// FenceRetry is how long a failed fence waits before it is retried
	// (fencing.retry_interval).
	FenceRetry time.Duration
	// AgentInterval is the agents' reconcile period; it widens the bound
	// a watchdog host is given to reset itself.
	AgentInterval time.Duration
	// UnseenGrace is how long a new leader waits for a registered host to
	// show up in gossip before it counts the host lost.
	UnseenGrace time.Duration
	// MaxPerTarget and MaxCluster cap live migrations under way
	// (migration.max_per_target, migration.max_cluster; 0: no cap).
	MaxPerTarget, MaxCluster int
	// Storage: the cluster has shared storage configured (readiness
	// rules apply); Disks maps VMs to file systems.
	Storage bool
	Disks   Disks
	// WaitForAll is quorum.wait_for_all.
	WaitForAll bool
	// Window is the nightly rebalance window (rebalance.window), parsed;
	// nil when there is none.
	Window *Window
}

// Window is a daily rebalance window and the run it starts.
type Window struct {
	// Start and End are minutes after local midnight; End < Start
	// crosses midnight.
	Start, End int
	MaxMoves   int
	MinGain    float64
	Parallel   int
}

// Memory is what the leader remembers between passes and does not
// replicate: a new leader starts with an empty one (and checks, probes and
// fences afresh).
type Memory struct {
	// LeaderSince is when this host became leader.
	LeaderSince time.Time
	// Fencing lists the hosts a fence runs for now.
	Fencing map[string]bool
	// FailedAt is when each host's last fence failed.
	FailedAt map[string]time.Time
	// Probes are the last answers of hosts gossip declared failed to
	// GET /v1/peer/alive (a second opinion before fencing).
	Probes map[string]ProbeAnswer
	// WaitOver: quorum.wait_for_all ended for good on this host.
	WaitOver bool
}

// ProbeAnswer is one answer of a host's peer API.
type ProbeAnswer struct {
	At time.Time
	OK bool
}

// ProbeFresh is how long a probe's answer counts.
const ProbeFresh = time.Second

// View is one snapshot of what the leader knows.
type View struct {
	// Now is the time of the pass (the runner's clock; the scenario
	// harness's virtual one).
	Now time.Time
	// Self is this host (the leader); Term its raft term.
	Self string
	Term uint64
	// State is the replicated state. The pass changes it as its own
	// commands would (Apply), so that later decisions of the same pass
	// see the earlier ones: give it a copy.
	State *model.State
	// Apply is the state machine's pure apply (statemachine.Apply).
	Apply func(*model.State, *command.Command) error
	// Members is gossip's view.
	Members Members
	// Beats are the storage heartbeat verdicts by host (empty without
	// cluster file systems).
	Beats map[string]Beat
	// Settings are this host's configuration.
	Settings Settings
	// Rules are the compiled placement rules (State.Config.Rules); nil
	// compiles them on demand.
	Rules *Rules
	// NewID makes a unique id with a prefix (rcv-, mig-, mv-, rb-).
	NewID func(prefix string) string
}

// hostState is host's lifecycle state (alive when it has no status yet).
func hostState(st *model.State, host string) model.HostState {
	if hs := st.Status.Hosts[host]; hs != nil {
		return hs.State
	}
	return model.HostAlive
}

// seenAlive reports whether gossip ever reported the host alive since it
// registered.
func seenAlive(hs *model.HostStatus) bool { return hs != nil && hs.SeenAlive }
