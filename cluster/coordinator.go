package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/hashicorp/serf/serf"
	"github.com/rs/zerolog"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/fencing"
	"github.com/vmha/vmha/hypervisor"
	"github.com/vmha/vmha/model"
	"github.com/vmha/vmha/placement"
	"github.com/vmha/vmha/sharedfs"
)

// unseenGrace is how long a new leader waits for a configured host to show
// up in gossip before it treats the host as lost (after a full cluster
// restart a host that never returns must still be fenced, as Pacemaker's
// startup-fencing does).
const unseenGrace = 15 * time.Second

// Coordinator runs on the raft leader: it turns membership into host
// states, fences lost hosts, and commits placements. Only the leader of a
// quorate partition can commit, so only it acts.
type Coordinator struct {
	n   *Node
	log zerolog.Logger

	mu       sync.Mutex
	fencing  map[string]bool      // host → fence in progress
	failedAt map[string]time.Time // host → last failed fence
	probes   map[string]probe     // host → last second opinion (answers)
	leaderAt time.Time
	wake     chan struct{}
	// beats track the storage heartbeats per file system.
	beats map[string]*sharedfs.Tracker
	// liveness is the last storage-heartbeat verdict per host.
	liveness map[string]hostBeat
	// recovered remembers which recovered placements (vm/generation) were
	// already counted in the recovery metric.
	recovered map[string]bool
	// checks holds the last status check of each host's fence device.
	// It is the leader's own knowledge, not replicated: a new leader
	// checks every device again at once.
	checks map[string][]fencing.DeviceCheck
}

func newCoordinator(n *Node) *Coordinator {
	return &Coordinator{
		n: n, log: n.log.With().Str("component", "coordinator").Logger(),
		fencing: map[string]bool{}, failedAt: map[string]time.Time{}, wake: make(chan struct{}, 1),
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
			c.leaderAt = time.Now()
			c.failedAt = map[string]time.Time{}
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

// step is one pass: membership → host states → fencing → placement.
func (c *Coordinator) step(ctx context.Context) {
	c.addVoters()
	st := c.n.fsm.Copy()
	members := c.n.members()
	if missing := c.n.waitForAll(members); len(missing) > 0 {
		// Cold start under wait_for_all: no fence, no placement until
		// every host was seen at once (vmha status says who is missing).
		return
	}
	if c.n.storageOn() {
		var hosts []string
		for _, name := range model.SortedKeys(st.Config.Hosts) {
			if !st.Config.Hosts[name].Witness {
				hosts = append(hosts, name)
			}
		}
		c.observeHeartbeats(hosts)
	}
	c.markSeen(st, members)
	for _, name := range model.SortedKeys(st.Config.Hosts) {
		c.hostStep(ctx, st, name, members)
	}
	c.expirePins(st)
	c.migrationStep(c.n.fsm.Copy())
	c.evacuationStep(c.n.fsm.Copy(), c.n.members())
	c.rebalanceStep(c.n.fsm.Copy(), c.n.members())
	// Re-read: host states may just have changed.
	c.place(c.n.fsm.Copy(), c.n.members())
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
	members := c.n.serf.Members()
	registered := map[string]bool{}
	c.n.fsm.Read(func(s *model.State) {
		for name := range s.Config.Hosts {
			registered[name] = true
		}
	})
	for _, m := range members {
		if _, ok := have[raft.ServerID(m.Name)]; ok || m.Status != serf.StatusAlive || m.Tags[tagRaft] == "" {
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
func (c *Coordinator) handOverVotes(have map[raft.ServerID]raft.ServerSuffrage, members []serf.Member) {
	alive := map[string]serf.Member{}
	for _, m := range members {
		if m.Status == serf.StatusAlive {
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

func (c *Coordinator) hostStep(ctx context.Context, st *model.State, name string, members map[string]serf.Member) {
	hs := st.Status.Hosts[name]
	state := model.HostAlive
	if hs != nil {
		state = hs.State
	}
	m, seen := members[name]
	alive := seen && m.Status == serf.StatusAlive
	failed := seen && m.Status == serf.StatusFailed
	c.mu.Lock()
	unseenTooLong := !seen && time.Since(c.leaderAt) > unseenGrace
	busy := c.fencing[name]
	lastFail := c.failedAt[name]
	c.mu.Unlock()

	if h := st.Config.Hosts[name]; h != nil && h.Witness {
		// A witness holds no VMs: losing it costs a vote, not a fence.
		switch {
		case state == model.HostAlive && (failed || unseenTooLong):
			_ = c.setHostState(name, model.HostLost, "witness unreachable: one vote fewer; nothing to fence or recover", "")
		case state != model.HostAlive && alive:
			_ = c.setHostState(name, model.HostAlive, "witness back", "")
		}
		return
	}
	if st.Status.Maintenance[name] != nil && state == model.HostAlive {
		// Its vmhad is being worked on: gone from gossip is expected, and
		// neither a fence nor a recovery may follow.
		return
	}
	switch state {
	case model.HostAlive:
		if !failed && !unseenTooLong {
			return
		}
		if !seenAlive(hs) {
			// Only a registration, a peer's word, says this host exists:
			// gossip never reported it alive, so placement never chose it,
			// and fencing it would run devices no living host vouched for.
			// vmha status says so; an operator's vmha fence HOST still
			// fences it.
			return
		}
		if c.answers(st, name) {
			// Gossip says failed, but the host answers its peer API:
			// gossip lags (right after a partition heals it takes
			// seconds to merge again, and a new leader would otherwise
			// fence healthy hosts it can reach). Not lost; look again
			// on the next pass.
			return
		}
		reason := "gossip declared the host failed"
		if !seen {
			reason = fmt.Sprintf("not seen in gossip %v after this leader took over", unseenGrace)
		}
		rid := newRecoveryID()
		c.log.Warn().Str("recovery_id", rid).Str("host", name).Str("reason", reason).Msg("host lost; fencing before recovery")
		if err := c.n.propose(&Command{Op: OpHostState, HostState: &HostStateChange{
			Host: name, State: model.HostLost, Reason: reason, RecoveryID: rid, Boot: m.Tags[tagBoot],
		}}); err != nil {
			c.log.Error().Err(err).Str("host", name).Msg("record host lost")
			return
		}
		c.startFence(ctx, name, rid, ActionOff)
	case model.HostLost, model.HostFenceFailed:
		if alive && hs.FenceRequestedBy == "" {
			// It came back before any fence succeeded: its VMs never
			// left it, so nothing can run twice. (An operator's fence
			// request goes on: the operator wants the host off.)
			c.log.Info().Str("recovery_id", hs.RecoveryID).Str("host", name).Msg("host rejoined before it was fenced; recovery cancelled")
			_ = c.setHostState(name, model.HostAlive, "rejoined before fencing", "")
			return
		}
		if c.selfFenced(st, name) {
			return
		}
		if busy {
			return
		}
		if !seenAlive(hs) && hs.FenceRequestedBy == "" {
			return // never seen alive, and no operator asked (see above)
		}
		if state == model.HostFenceFailed && time.Since(lastFail) < c.n.cfg.Fencing.RetryInterval {
			return
		}
		c.startFence(ctx, name, hs.RecoveryID, fenceActionOf(hs))
	case model.HostFenced:
		if alive && (hs.Unfenced || hs.LostBoot == "" || m.Tags[tagBoot] != hs.LostBoot) {
			c.log.Info().Str("host", name).Msg("fenced host rejoined; it can take VMs again")
			_ = c.setHostState(name, model.HostAlive, "rejoined after fencing", "")
		}
	}
}

// newlySeen lists the registered hosts gossip reports alive that were
// never seen alive before, sorted.
func newlySeen(st *model.State, members map[string]serf.Member) []string {
	var out []string
	for _, name := range model.SortedKeys(st.Config.Hosts) {
		if m, ok := members[name]; ok && m.Status == serf.StatusAlive && !seenAlive(st.Status.Hosts[name]) {
			out = append(out, name)
		}
	}
	return out
}

// markSeen records, in one command, the hosts gossip reports alive for the
// first time since they registered, and marks them so in st.
func (c *Coordinator) markSeen(st *model.State, members map[string]serf.Member) {
	names := newlySeen(st, members)
	if len(names) == 0 {
		return
	}
	if err := c.n.propose(&Command{Op: OpHostSeen, Names: names}); err != nil {
		c.log.Error().Err(err).Strs("hosts", names).Msg("record hosts seen alive")
		return
	}
	for _, name := range names {
		if hs := st.Status.Hosts[name]; hs != nil {
			hs.SeenAlive = true
		}
	}
	c.log.Info().Strs("hosts", names).Msg("registered hosts seen alive in gossip: their fence devices are checked from now on")
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

// place commits a host for every VM that needs one.
func (c *Coordinator) place(st *model.State, members map[string]serf.Member) {
	if st.Config.Rules != "" || c.n.storageOn() || len(st.Status.Pins) > 0 {
		// Rules, pins or storage readiness to honour: the full engine.
		c.placeByRules(st, members)
		return
	}
	snap := Snapshot(st, members)
	var ps []model.Placement
	t0 := time.Now()
	plan := placement.Plan(snap)
	c.n.metrics.placeSeconds.Observe(time.Since(t0).Seconds())
	for _, d := range plan {
		if !d.Changed {
			continue
		}
		if p := st.Status.Placements[d.VM]; p != nil && p.MigrateFrom != "" {
			continue // moving live: its end is decided by the move
		}
		cur := ""
		if p := st.Status.Placements[d.VM]; p != nil {
			cur = p.Host
		}
		rid := ""
		if hs := st.Status.Hosts[cur]; hs != nil && hs.State == model.HostFenced {
			rid = hs.RecoveryID
		}
		ps = append(ps, model.Placement{VM: d.VM, Host: d.Host, Reason: d.Reason, RecoveryID: rid})
	}
	if len(ps) == 0 {
		return
	}
	if err := c.n.propose(&Command{Op: OpPlace, Placements: ps}); err != nil {
		c.log.Error().Err(err).Msg("commit placements")
		return
	}
	targets := map[string]bool{}
	for _, p := range ps {
		ev := c.log.Info()
		if p.Host == "" {
			ev = c.log.Warn()
		}
		ev.Str("recovery_id", p.RecoveryID).Str("vm", p.VM).Str("host", p.Host).Str("reason", p.Reason).Msg("placement committed")
		if p.Host != "" {
			targets[p.Host] = true
		}
	}
	term := c.n.raft.CurrentTerm()
	for h := range targets {
		addr := ""
		if hh := st.Config.Hosts[h]; hh != nil {
			addr = hh.APIAddr
		}
		if addr == "" {
			continue
		}
		// A nudge only shortens the wait: the agent's timer reconciles
		// anyway, so an error is not worth more than a debug line.
		go func() {
			if err := c.n.peers.do(context.Background(), addr, 2*time.Second, "POST", api.PathNudge, api.Nudge{Term: term}, nil, nil); err != nil {
				c.log.Debug().Err(err).Str("host", h).Msg("nudge agent")
			}
		}()
	}
}

// Snapshot builds the placement input from the replicated state and
// gossip's view. Exported for `vmha explain` and tests.
func Snapshot(st *model.State, members map[string]serf.Member) placement.Snapshot {
	var snap placement.Snapshot
	for _, name := range model.SortedKeys(st.Config.Hosts) {
		h := st.Config.Hosts[name]
		if h.Witness {
			continue // votes only; never runs a VM
		}
		snap.Hosts = append(snap.Hosts, placement.Host{Name: name, Condition: hostCondition(st, name, members), MemoryMiB: h.MemoryMiB})
	}
	for _, name := range model.SortedKeys(st.Config.VMs) {
		vm := st.Config.VMs[name]
		cur := ""
		if p := st.Status.Placements[name]; p != nil {
			cur = p.Host
		} else {
			cur = adoptHost(st, name)
		}
		snap.VMs = append(snap.VMs, placement.VM{Name: name, MemoryMiB: vm.MemoryMiB, Prefer: vm.Prefer, Current: cur})
	}
	return snap
}

// adoptHost finds a host whose agent reports the (not yet placed) VM as
// active, so that adding a VM that already runs somewhere keeps it there.
func adoptHost(st *model.State, vm string) string {
	for _, h := range model.SortedKeys(st.Status.Observed) {
		if o := st.Status.Observed[h].VMs[vm]; activeState(o.State) {
			return h
		}
	}
	return ""
}

func hostCondition(st *model.State, name string, members map[string]serf.Member) placement.HostCondition {
	state := model.HostAlive
	if hs := st.Status.Hosts[name]; hs != nil {
		state = hs.State
	}
	switch state {
	case model.HostLost, model.HostFenceFailed:
		return placement.Lost
	case model.HostFenced:
		return placement.Released
	}
	if st.Status.Maintenance[name] != nil {
		// Daemon maintenance: its VMs stay, nothing new goes there.
		return placement.Offline
	}
	if e := st.Status.Evacuations[name]; e != nil && e.Storage == "" {
		// Draining: its VMs are moved by the evacuation, and nothing
		// new goes there (vmha host online ends it).
		return placement.Offline
	}
	if m, ok := members[name]; ok && m.Status == serf.StatusAlive {
		return placement.Usable
	}
	return placement.Offline
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

// expirePins drops the pins whose time has passed, so that vmha pins and
// the state show only the ones that still count (placement already
// ignores an expired pin).
func (c *Coordinator) expirePins(st *model.State) {
	now := time.Now()
	var gone []string
	for _, vm := range model.SortedKeys(st.Status.Pins) {
		if !st.Status.Pins[vm].Active(now) {
			gone = append(gone, vm)
		}
	}
	if len(gone) == 0 {
		return
	}
	if err := c.n.propose(&Command{Op: OpPin}); err != nil {
		c.log.Error().Err(err).Msg("drop expired pins")
		return
	}
	c.log.Info().Strs("vms", gone).Msg("pins expired")
}

// aliveProbeTimeout bounds the leader's second opinion on a host gossip
// declared failed: a dead vmhad refuses the connection at once, a host
// that is powered off or cut off lets it time out.
const aliveProbeTimeout = 500 * time.Millisecond

// answers reports whether host answers GET /v1/peer/alive under its own
// name. The answer is cached for a second so that a pass over many failed
// hosts does not wait for each again.
func (c *Coordinator) answers(st *model.State, host string) bool {
	h := st.Config.Hosts[host]
	if h == nil || h.APIAddr == "" {
		return false
	}
	c.mu.Lock()
	if p, ok := c.probes[host]; ok && time.Since(p.at) < time.Second {
		c.mu.Unlock()
		return p.ok
	}
	c.mu.Unlock()
	var a api.Alive
	err := c.n.peers.do(context.Background(), h.APIAddr, aliveProbeTimeout, "GET", api.PathAlive, nil, &a, nil)
	ok := err == nil && a.Node == host
	c.mu.Lock()
	if c.probes == nil {
		c.probes = map[string]probe{}
	}
	c.probes[host] = probe{at: time.Now(), ok: ok}
	c.mu.Unlock()
	if ok {
		c.log.Info().Str("host", host).Str("boot", a.Boot).Msg("gossip declared the host failed, but it answers its API: not lost")
	}
	return ok
}

type probe struct {
	at time.Time
	ok bool
}

// fencedVoter is a fenced host, gone from gossip, that still holds a raft
// vote ("" if none). A host missing from the raft configuration holds no
// vote: raft.Voter is the zero value of a suffrage, so the lookup must say
// it found the host (without that, every fenced non-member handed a vote
// over and the voters grew past raft.max_voters).
func fencedVoter(s *model.State, have map[raft.ServerID]raft.ServerSuffrage, alive map[string]serf.Member) string {
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
