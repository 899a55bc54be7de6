// Package twonode decides quorum.two_node, Pacemaker's two_node: 1 with
// fencing as the tie-breaker. In a two-host cluster without a witness, the
// loss of either host leaves the other with 1 of 2 raft votes, so no leader
// and nobody to fence or recover. With two_node, the survivor fences the
// other host itself, and only once that fence is confirmed (every device of
// a level verified the power off) does it make itself the only raft voter
// and lead, so that the ordinary coordinator records the fence and
// recovers the VMs.
//
// Never twice rests on the fence: a host takes over only after it saw the
// other powered off. In a split both hosts try; the fence delay of the
// target (fence.delay is waited before fencing the host that configures
// it) makes one of them fire first, and the other is powered off during
// its wait, so it never confirms anything and never acts alone. Equal
// delays at worst power off both: nothing runs twice.
//
// Everything here is pure: the runner (cluster/twonode.go) gathers the
// input, calls Decide and carries out the one action.
package twonode

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/vmha/vmha/cluster/decide"
	"github.com/vmha/vmha/model"
)

// Action is what the runner does next.
type Action string

// Actions, in the order a takeover goes through them.
const (
	// Idle: nothing to do (the reason says why).
	Idle Action = "idle"
	// Probe: ask the peer's API whether it answers (a second opinion
	// before fencing, as the coordinator takes one).
	Probe Action = "probe"
	// Fence: run the peer's fence topology from the replicated state,
	// with its delay.
	Fence Action = "fence"
	// TakeOver: the fence was confirmed; recover raft with this host as
	// the only voter (raft.RecoverCluster) so that it leads.
	TakeOver Action = "take-over"
	// Record: this host leads the new configuration; record the fence
	// and the peer fenced in the log, so the coordinator recovers its VMs.
	Record Action = "record"
	// Done: the takeover is recorded; forget it.
	Done Action = "done"
	// Forget: a leader was elected with the other host since its fence
	// was confirmed (it is back): the takeover is called off.
	Forget Action = "forget"
)

// Confirmed is a fence of the peer this host ran and saw confirmed: the
// only thing that lets it take over.
type Confirmed struct {
	Peer string
	// Boot is the peer's gossip boot id when it was fenced: it counts as
	// back only with another one.
	Boot string
	At   time.Time
	// Recorded is set once the fence and the peer fenced are in the log.
	Recorded bool
}

// Input is one look at the world from the host that runs the decision.
type Input struct {
	Now  time.Time
	Self string
	// State is this host's copy of the replicated state (not current
	// while it has no leader, but the hosts, their fence topologies and
	// fencing off/on only change through a leader). Decide only reads
	// it and keeps nothing of it.
	State   *model.State
	Members decide.Members
	// Voters are the raft configuration's voters as this host sees them.
	Voters []string
	// Leader is the raft leader this host knows ("" none); SelfLeader is
	// set when it is this host.
	Leader     string
	SelfLeader bool
	// LeaderlessSince is when this host last saw a leader (or started).
	LeaderlessSince time.Time
	// Probe is the last answer of the peer's API, if any.
	Probe *decide.ProbeAnswer
	// Fencing is set while a fence of the peer runs; FailedAt is when the
	// last one failed.
	Fencing  bool
	FailedAt time.Time
	// Confirmed is set once this host's fence of the peer was confirmed,
	// until the takeover is recorded.
	Confirmed *Confirmed
	Settings  Settings
}

// Settings are the timers of the decision.
type Settings struct {
	// Leaderless is how long this host must be without a raft leader
	// before it fences (a little more than an election).
	Leaderless time.Duration
	// FenceRetry is the pause after a failed fence.
	FenceRetry time.Duration
}

// Verdict is the decision: one action, on the peer, with the reason.
type Verdict struct {
	Action Action
	Peer   string
	Reason string
	// Problems say why the mode is inactive (the cluster does not meet its
	// conditions); nil while it is armed.
	Problems []string
}

// Decide is the two_node decision for one pass of the runner.
func Decide(in Input) Verdict {
	if c := in.Confirmed; c != nil {
		// The peer is powered off, confirmed by this host: what is left
		// is to lead and to record it.
		v := Verdict{Peer: c.Peer}
		switch {
		case c.Recorded:
			v.Action, v.Reason = Done, c.Peer+" is recorded fenced: the coordinator recovers its VMs"
		case !in.SelfLeader && in.Leader != "", in.SelfLeader && contains(in.Voters, c.Peer):
			// A leader of the two voters was elected since the fence
			// was confirmed (the fence ran without a leader, and this
			// host alone cannot be elected by both): the other host is
			// back and may run VMs again. Never take over, nor record
			// it fenced, beside it.
			v.Action, v.Reason = Forget, "a raft leader ("+in.Leader+") was elected with "+c.Peer+" since its fence: it is back; the takeover is called off"
		case !in.SelfLeader && contains(in.Voters, c.Peer):
			v.Action, v.Reason = TakeOver, "fence of "+c.Peer+" confirmed: becoming the only raft voter"
		case !in.SelfLeader:
			v.Action, v.Reason = Idle, "only raft voter now: waiting to be elected"
		default:
			v.Action, v.Reason = Record, "leading alone: recording the fence of "+c.Peer
		}
		return v
	}
	peer, problems := Check(in.State, in.Self)
	v := Verdict{Peer: peer, Problems: problems}
	if len(problems) > 0 {
		v.Action, v.Reason = Idle, "two_node inactive: "+strings.Join(problems, "; ")
		return v
	}
	if in.SelfLeader || in.Leader != "" {
		v.Action, v.Reason = Idle, "a raft leader exists: the coordinator decides"
		return v
	}
	if len(in.Voters) != 2 || !contains(in.Voters, in.Self) || !contains(in.Voters, peer) {
		v.Action, v.Reason = Idle, fmt.Sprintf("raft voters are %s, not this host and %s", listOrNone(in.Voters), peer)
		return v
	}
	if cm := in.State.Config.Maintenance; cm != nil {
		v.Action, v.Reason = Idle, "the cluster is in maintenance (by "+cm.By+"): nothing is fenced"
		return v
	}
	if hm := in.State.Status.Maintenance[peer]; hm != nil {
		v.Action, v.Reason = Idle, peer+" is in maintenance (vmha host maintenance): its vmhad may be down on purpose; not fenced"
		return v
	}
	m, seen := in.Members[peer]
	switch {
	case !seen:
		v.Action, v.Reason = Idle, peer+" not seen in gossip since this host started: waiting for it (a host never fences a peer it has not seen, as wait_for_all)"
		return v
	case m.Status != decide.MemberFailed:
		v.Action, v.Reason = Idle, fmt.Sprintf("%s is %s in gossip, not failed", peer, m.Status)
		return v
	}
	if in.Now.Sub(in.LeaderlessSince) < in.Settings.Leaderless {
		v.Action, v.Reason = Idle, "no raft leader for less than "+in.Settings.Leaderless.String()
		return v
	}
	if in.Fencing {
		v.Action, v.Reason = Idle, "fencing "+peer
		return v
	}
	if !in.FailedAt.IsZero() && in.Now.Sub(in.FailedAt) < in.Settings.FenceRetry {
		v.Action, v.Reason = Idle, "the last fence of "+peer+" failed: retrying after fencing.retry_interval"
		return v
	}
	p := in.Probe
	if p == nil || in.Now.Sub(p.At) >= decide.ProbeFresh || p.At.Before(in.LeaderlessSince) {
		v.Action, v.Reason = Probe, "gossip declared "+peer+" failed: asking its API"
		return v
	}
	if p.OK {
		v.Action, v.Reason = Idle, peer+" answers its API: not lost"
		return v
	}
	v.Action, v.Reason = Fence, "gossip declared "+peer+" failed, its API does not answer and there is no raft leader: fencing it (after its fence delay) to keep the quorum"
	return v
}

// Check is whether the cluster meets two_node's conditions, seen from
// self: exactly two hosts, both hypervisor hosts (no witness), each with
// its fence topology registered, and fencing on. It returns the other host
// (when there is exactly one) and what is missing, in words an operator
// acts on.
func Check(st *model.State, self string) (peer string, problems []string) {
	var hosts, witnesses []string
	for _, name := range model.SortedKeys(st.Config.Hosts) {
		if st.Config.Hosts[name].Witness {
			witnesses = append(witnesses, name)
			continue
		}
		hosts = append(hosts, name)
	}
	if len(witnesses) > 0 {
		problems = append(problems, fmt.Sprintf("the cluster has a witness (%s): two_node is for two hosts without one; turn one of them off", strings.Join(witnesses, ", ")))
	}
	switch {
	case len(hosts) == 2 && (hosts[0] == self || hosts[1] == self):
		peer = hosts[0]
		if peer == self {
			peer = hosts[1]
		}
	case len(hosts) < 2:
		problems = append(problems, fmt.Sprintf("%d host(s) registered (%s), two_node needs exactly two", len(hosts), listOrNone(hosts)))
	case len(hosts) > 2:
		problems = append(problems, fmt.Sprintf("%d hosts registered (%s), two_node needs exactly two: with three or more the majority decides", len(hosts), strings.Join(hosts, ", ")))
	default:
		problems = append(problems, fmt.Sprintf("this host %s is not one of the registered hosts %s", self, strings.Join(hosts, ", ")))
	}
	if off := st.Config.FencingOff; off != nil {
		problems = append(problems, "fencing is turned off (by "+off.By+"): two_node needs fencing as its tie-breaker; vmha fence enable")
	}
	for _, h := range hosts {
		if t := st.Config.Fencing[h]; t == nil || len(t.Levels) == 0 {
			problems = append(problems, "no fence topology registered for "+h+" (bmc or fence.devices in its vmhad.yaml, accepted with vmha fence devices accept if pending)")
		}
	}
	return peer, problems
}

// Race says which host survives a split in which each fences the other: the
// one fenced later, i.e. the one whose own fence delay is larger (fence.delay
// is waited before fencing the host that sets it). A random delay on either
// side makes the outcome random; equal static delays and no random one
// may power off both. winner is "" unless it is certain.
func Race(st *model.State, a, b string) (winner, explain string) {
	da, ra := delays(st, a)
	db, rb := delays(st, b)
	switch {
	case ra > 0 || rb > 0:
		return "", fmt.Sprintf("random fence delays (%s %v+rand(%v), %s %v+rand(%v)): a split's winner is random", a, da, ra, b, db, rb)
	case da == db:
		return "", fmt.Sprintf("%s and %s have the same fence delay (%v): in a split they may power each other off at once; give the host that should survive fence.delay: 5s", a, b, da)
	case da > db:
		return a, fmt.Sprintf("%s wins a split: fencing it waits fence.delay %v, fencing %s %v", a, da, b, db)
	default:
		return b, fmt.Sprintf("%s wins a split: fencing it waits fence.delay %v, fencing %s %v", b, db, a, da)
	}
}

func delays(st *model.State, h string) (static, random time.Duration) {
	if t := st.Config.Fencing[h]; t != nil {
		return t.Delay, t.RandomDelay
	}
	return 0, 0
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	c := append([]string(nil), s...)
	sort.Strings(c)
	return strings.Join(c, ", ")
}
