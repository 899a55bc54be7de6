package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/rs/zerolog"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/cluster/decide"
	"github.com/vmha/vmha/fencing"
	"github.com/vmha/vmha/hypervisor"
	"github.com/vmha/vmha/model"
	"github.com/vmha/vmha/sharedfs"
)

// unseenGrace is how long a new leader waits for a configured host to show
// up in gossip before it treats the host as lost (after a full cluster
// restart a host that never returns must still be fenced, as Pacemaker's
// startup-fencing does).
const unseenGrace = 15 * time.Second

// Coordinator runs on the raft leader. Its decisions are decide.Pass, a
// pure function of one view of the cluster; the coordinator is the runner
// around it: it takes the view (one copy of the state, gossip, its
// memory), runs the pass, and carries out the plan (commits, fences,
// probes, nudges), feeding what it learns back as the next pass's memory.
// Only the leader of a quorate partition can commit, so only it acts.
type Coordinator struct {
	n   *Node
	log zerolog.Logger

	mu sync.Mutex
	// mem is the leader's memory between passes (fences running, failed
	// fences, probe answers): not replicated; a new leader starts afresh.
	mem decide.Memory
	// probing lists the hosts a probe is under way to.
	probing map[string]bool
	wake    chan struct{}
	// beats track the storage heartbeats per file system.
	beats map[string]*sharedfs.Tracker
	// liveness is the last storage-heartbeat verdict per host.
	liveness map[string]hostBeat
	// recovered remembers which recovered placements (vm/generation) were
	// already counted in the recovery metric.
	recovered map[string]bool
	// logged is when each standing note was last logged (repeated).
	logged map[string]time.Time
	// last is the last pass, for skipping the next when nothing changed
	// (passkey.go). Only the coordinator's loop uses it.
	last passSkip
	// checks holds the last status check of each host's fence device.
	// It is the leader's own knowledge, not replicated: a new leader
	// checks every device again at once.
	checks map[string][]fencing.DeviceCheck
}

func newCoordinator(n *Node) *Coordinator {
	return &Coordinator{
		n: n, log: n.log.With().Str("component", "coordinator").Logger(),
		mem:  decide.Memory{Fencing: map[string]bool{}, FailedAt: map[string]time.Time{}, Probes: map[string]decide.ProbeAnswer{}},
		wake: make(chan struct{}, 1), probing: map[string]bool{},
		checks: map[string][]fencing.DeviceCheck{}, recovered: map[string]bool{},
	}
}

func (c *Coordinator) poke() {
	if c == nil {
		return // not started (unit tests of the handlers)
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *Coordinator) run(ctx context.Context) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	var leaderCtx context.Context
	var leaderCancel context.CancelFunc = func() {}
	defer func() { leaderCancel() }()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.wake:
		case <-c.n.memberChanged:
		}
		c.n.coordBeat.Store(time.Now().UnixNano())
		if c.n.raft.State() != raft.Leader {
			if leaderCtx != nil {
				c.log.Info().Msg("lost leadership; coordinator stands down")
				leaderCancel()
				leaderCtx = nil
			}
			continue
		}
		if leaderCtx == nil {
			// A new leader first makes sure it has applied everything
			// its predecessors committed, then acts.
			if err := c.n.raft.Barrier(applyTimeout).Error(); err != nil {
				c.log.Warn().Err(err).Msg("barrier after election")
				continue
			}
			leaderCtx, leaderCancel = leaderContext(ctx)
			c.mu.Lock()
			c.mem.LeaderSince = time.Now()
			c.mem.FailedAt = map[string]time.Time{}
			c.mem.Probes = map[string]decide.ProbeAnswer{}
			c.checks = map[string][]fencing.DeviceCheck{}
			c.mu.Unlock()
			go c.checkLoop(leaderCtx)
			c.n.metrics.leaderChanges.Inc()
			c.log.Info().Uint64("term", c.n.raft.CurrentTerm()).Msg("became leader; coordinator active")
		}
		c.step(leaderCtx)
	}
}

// leaderContext scopes the work of one leadership term: run cancels it when
// leadership ends, so fences and proposals of a deposed leader stop.
func leaderContext(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithCancel(parent)
}

// step is one pass: the raft voters, then the decisions (decide.Pass) on
// one copy of the state, then the plan carried out.
func (c *Coordinator) step(ctx context.Context) {
	c.addVoters()
	if c.n.cfg.Quorum.WaitForAll && !c.n.wfaDone.Load() {
		// Right after a cold start the state may not have replayed
		// the log yet: an empty host list would end the wait at once.
		if err := c.n.raft.Barrier(2 * time.Second).Error(); err != nil {
			c.log.Warn().Err(err).Msg("wait_for_all: the state is not current yet")
			return
		}
	}
	members, beats, mem := c.n.members(), c.storageBeats(), c.memory()
	now := time.Now()
	key := passKey{rev: c.n.fsm.Revision(), term: c.n.raft.CurrentTerm(), members: hashMembers(members), beats: hashBeats(beats), mem: hashMemory(mem)}
	if c.last.skip(key, now) {
		// Nothing the last pass read changed and no clock condition came
		// due: it would decide nothing again (issue 17: a full pass
		// copies the state, 0.2 s at 50,000 VMs).
		c.n.metrics.passesSkipped.Inc()
		return
	}
	v := c.n.view(c.n.fsm.Copy(), members)
	v.Now, v.Beats = now, beats
	t0 := time.Now()
	// Until reads the view before Pass applies its own commands to it;
	// it matters only when the plan is idle, that is without commands.
	until := decide.Until(v, &mem)
	plan := decide.Pass(v, &mem)
	c.n.metrics.passSeconds.Observe(time.Since(t0).Seconds())
	c.last.remember(key, plan.Idle(), now, until)
	if plan.WaitOver {
		c.n.wfaDone.Store(true)
	}
	// The pass's own commands change placements and host states, never
	// the hosts' addresses: its copy still has them.
	c.execute(ctx, plan, v.State.Config.Hosts)
}

// storageBeats are the storage heartbeats' verdicts on every host but the
// witnesses (none without cluster file systems).
func (c *Coordinator) storageBeats() map[string]decide.Beat {
	out := map[string]decide.Beat{}
	if !c.n.storageOn() {
		return out
	}
	var hosts []string
	c.n.fsm.Read(func(s *model.State) {
		for _, name := range model.SortedKeys(s.Config.Hosts) {
			if !s.Config.Hosts[name].Witness {
				hosts = append(hosts, name)
			}
		}
	})
	for h, b := range c.observeHeartbeats(hosts) {
		out[h] = decide.Beat{Writing: b.Liveness == sharedfs.Writing, FS: b.FS}
	}
	return out
}

// leaderSince is when this host's coordinator last became leader.
func (c *Coordinator) leaderSince() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mem.LeaderSince
}

// memory is a copy of the leader's memory for one pass.
func (c *Coordinator) memory() decide.Memory {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.mem
	m.Fencing = maps.Clone(c.mem.Fencing)
	m.FailedAt = maps.Clone(c.mem.FailedAt)
	m.Probes = maps.Clone(c.mem.Probes)
	m.WaitOver = c.n.wfaDone.Load()
	return m
}

// execute carries out a plan in order. A commit that fails ends it: the
// later steps were decided as if it had committed, and the next pass
// decides again from the state as it is.
func (c *Coordinator) execute(ctx context.Context, plan decide.Plan, hosts map[string]*model.Host) {
	addr := func(h string) string {
		if hh := hosts[h]; hh != nil {
			return hh.APIAddr
		}
		return ""
	}
	for _, s := range plan.Steps {
		switch s.Kind {
		case decide.Commit:
			starts := c.n.moveStarts(s.Command)
			if err := c.n.propose(s.Command); err != nil {
				ev := c.log.Error().Err(err).Str("op", string(s.Command.Op))
				if s.Note != nil {
					ev = ev.Str("decision", s.Note.Msg)
				}
				ev.Msg("commit failed; the rest of this pass's plan is dropped")
				return
			}
			c.n.metrics.countMoveEnds(s.Command, starts, time.Now())
			c.note(s.Note)
		case decide.Fence:
			c.startFence(ctx, s.Host, s.RecoveryID, s.Action)
		case decide.Probe:
			c.startProbe(s.Host, addr(s.Host))
		case decide.Nudge:
			c.nudgeAddr(s.Host, addr(s.Host))
		case decide.Log:
			if s.Note.Standing && c.repeated(s.Note, time.Now()) {
				continue
			}
			c.note(s.Note)
		}
	}
}

// noteQuiet is how long the same standing condition (a veto, rules that do
// not apply) is not logged again: a pass runs four times a second.
const noteQuiet = 30 * time.Second

// repeated reports whether the same note was logged less than noteQuiet
// ago, and remembers it otherwise. Only the runner's own lines repeat so;
// commits are logged once each.
func (c *Coordinator) repeated(n *decide.Note, now time.Time) bool {
	key := n.Msg + fmt.Sprint(n.Fields)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.logged == nil || len(c.logged) > 1000 {
		c.logged = map[string]time.Time{}
	}
	if at, ok := c.logged[key]; ok && now.Sub(at) < noteQuiet {
		return true
	}
	c.logged[key] = now
	return false
}

// note writes a decision's log line.
func (c *Coordinator) note(n *decide.Note) {
	if n == nil {
		return
	}
	lvl, err := zerolog.ParseLevel(string(n.Level))
	if err != nil {
		lvl = zerolog.InfoLevel
	}
	ev := c.log.WithLevel(lvl)
	for _, f := range n.Fields {
		switch v := f.Value.(type) {
		case string:
			if v != "" {
				ev = ev.Str(f.Key, v)
			}
		case []string:
			ev = ev.Strs(f.Key, v)
		case time.Duration:
			ev = ev.Dur(f.Key, v)
		case int:
			ev = ev.Int(f.Key, v)
		case float64:
			ev = ev.Float64(f.Key, v)
		default:
			ev = ev.Interface(f.Key, v)
		}
	}
	ev.Msg(n.Msg)
}

// addVoters makes every alive, registered host that gossips a raft address
// a voter.
//
// At most raft.max_voters hosts vote; the others follow the log as
// non-voters, so that quorum stays cheap at any size. A voter whose host
// was fenced and is gone gives its vote to an alive non-voter (the fenced
// host is powered off, so removing its vote cannot split the cluster).
func (c *Coordinator) addVoters() {
	f := c.n.raft.GetConfiguration()
	if f.Error() != nil {
		return
	}
	have := map[raft.ServerID]raft.ServerSuffrage{}
	voters := 0
	for _, s := range f.Configuration().Servers {
		have[s.ID] = s.Suffrage
		if s.Suffrage == raft.Voter {
			voters++
		}
	}
	members := c.n.members()
	registered := map[string]bool{}
	c.n.fsm.Read(func(s *model.State) {
		for name := range s.Config.Hosts {
			registered[name] = true
		}
	})
	for _, name := range model.SortedKeys(members) {
		m := members[name]
		if _, ok := have[raft.ServerID(m.Name)]; ok || m.Status != decide.MemberAlive || m.Tags[tagRaft] == "" {
			continue
		}
		// Only a registered host gets a vote: registering needs a host
		// certificate under mutual TLS, gossip only the key, and a voter
		// raft cannot reach still counts against the quorum.
		if !registered[m.Name] {
			continue
		}
		id, addr := raft.ServerID(m.Name), raft.ServerAddress(m.Tags[tagRaft])
		if voters < c.n.cfg.Raft.MaxVoters {
			if err := c.n.raft.AddVoter(id, addr, 0, applyTimeout).Error(); err != nil {
				c.log.Warn().Err(err).Str("host", m.Name).Msg("add raft voter")
				continue
			}
			voters++
			c.log.Info().Str("host", m.Name).Msg("added raft voter")
		} else {
			if err := c.n.raft.AddNonvoter(id, addr, 0, applyTimeout).Error(); err != nil {
				c.log.Warn().Err(err).Str("host", m.Name).Msg("add raft non-voter")
				continue
			}
			c.log.Info().Str("host", m.Name).Int("max_voters", c.n.cfg.Raft.MaxVoters).Msg("added raft non-voter")
		}
	}
	c.handOverVotes(have, members)
}

// handOverVotes moves the vote of a fenced, absent voter to an alive
// non-voter, one per pass.
func (c *Coordinator) handOverVotes(have map[raft.ServerID]raft.ServerSuffrage, members decide.Members) {
	alive := decide.Members{}
	for _, m := range members {
		if m.Status == decide.MemberAlive {
			alive[m.Name] = m
		}
	}
	var gone string
	c.n.fsm.Read(func(s *model.State) { gone = fencedVoter(s, have, alive) })
	if gone == "" {
		return
	}
	var heir string
	for _, name := range model.SortedKeys(alive) {
		if s, ok := have[raft.ServerID(name)]; ok && s == raft.Nonvoter && alive[name].Tags[tagRaft] != "" {
			heir = name
			break
		}
	}
	if heir == "" {
		return
	}
	if err := c.n.raft.RemoveServer(raft.ServerID(gone), 0, applyTimeout).Error(); err != nil {
		c.log.Warn().Err(err).Str("host", gone).Msg("remove the vote of a fenced host")
		return
	}
	if err := c.n.raft.AddVoter(raft.ServerID(heir), raft.ServerAddress(alive[heir].Tags[tagRaft]), 0, applyTimeout).Error(); err != nil {
		c.log.Warn().Err(err).Str("host", heir).Msg("promote a non-voter")
		return
	}
	c.log.Info().Str("from", gone).Str("to", heir).Msg("vote handed over from a fenced host to a non-voter")
}

func (c *Coordinator) setHostState(host string, s model.HostState, reason, rid string) error {
	return c.n.propose(&Command{Op: OpHostState, HostState: &HostStateChange{Host: host, State: s, Reason: reason, RecoveryID: rid}})
}

// noteRecoveries counts, once each, the VMs of a recovery that an agent
// reports running on their new host, and how long after their host was
// lost they came back.
func (c *Coordinator) noteRecoveries(obs *model.Observation) {
	now := time.Now()
	c.n.fsm.Read(func(s *model.State) {
		for vm, o := range obs.VMs {
			p := s.Status.Placements[vm]
			if p == nil || p.RecoveryID == "" || p.Host != obs.Host || o.State != string(hypervisor.StateRunning) {
				continue
			}
			key := fmt.Sprintf("%s/%d", vm, p.Generation)
			c.mu.Lock()
			if len(c.recovered) > 100000 {
				c.recovered = map[string]bool{} // a bound; at worst a VM is counted twice
			}
			seen := c.recovered[key]
			c.recovered[key] = true
			c.mu.Unlock()
			if seen {
				continue
			}
			for _, hs := range s.Status.Hosts {
				if hs.RecoveryID == p.RecoveryID && !hs.LostAt.IsZero() {
					c.n.metrics.recoveries.Inc()
					c.n.metrics.recoverySecs.Observe(now.Sub(hs.LostAt).Seconds())
					c.log.Info().Str("recovery_id", p.RecoveryID).Str("vm", vm).Str("host", obs.Host).
						Dur("since_lost", now.Sub(hs.LostAt)).Msg("recovered VM running")
					break
				}
			}
		}
	})
}

func newBootID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func newRecoveryID() string { return newID("rcv-") }

func newID(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// aliveProbeTimeout bounds the leader's second opinion on a host gossip
// declared failed: a dead vmhad refuses the connection at once, a host
// that is powered off or cut off lets it time out.
const aliveProbeTimeout = 500 * time.Millisecond

// startProbe asks host's peer API, in the background, whether it answers
// GET /v1/peer/alive under its own name; the answer goes into the memory
// and wakes the next pass.
func (c *Coordinator) startProbe(host, addr string) {
	c.mu.Lock()
	if c.probing[host] {
		c.mu.Unlock()
		return
	}
	c.probing[host] = true
	c.mu.Unlock()
	go func() {
		ok, boot := false, ""
		if addr != "" {
			var a api.Alive
			err := c.n.peers.do(context.Background(), addr, aliveProbeTimeout, "GET", api.PathAlive, nil, &a, nil)
			ok, boot = err == nil && a.Node == host, a.Boot
		}
		c.mu.Lock()
		c.mem.Probes[host] = decide.ProbeAnswer{At: time.Now(), OK: ok}
		delete(c.probing, host)
		c.mu.Unlock()
		if ok {
			c.log.Info().Str("host", host).Str("boot", boot).Msg("gossip declared the host failed, but it answers its API: not lost")
		}
		c.poke()
	}()
}

// fencedVoter is a fenced host, gone from gossip, that still holds a raft
// vote ("" if none). A host missing from the raft configuration holds no
// vote: raft.Voter is the zero value of a suffrage, so the lookup must say
// it found the host (without that, every fenced non-member handed a vote
// over and the voters grew past raft.max_voters).
func fencedVoter(s *model.State, have map[raft.ServerID]raft.ServerSuffrage, alive decide.Members) string {
	for _, h := range model.SortedKeys(s.Status.Hosts) {
		suffrage, member := have[raft.ServerID(h)]
		if hs := s.Status.Hosts[h]; hs.State == model.HostFenced && member && suffrage == raft.Voter {
			if _, up := alive[h]; !up {
				return h
			}
		}
	}
	return ""
}
