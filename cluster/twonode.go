package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/rs/zerolog"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/cluster/decide"
	"github.com/vmha/vmha/cluster/twonode"
	"github.com/vmha/vmha/fencing"
	"github.com/vmha/vmha/model"
)

// raftRef holds the node's raft. Every caller goes through it, so that a
// two_node takeover can replace a raft that was shut down (raft.RecoverCluster
// works on a stopped raft) with the recovered one while the loops and the
// API keep reading it. In between, calls reach the stopped raft and get
// raft.ErrRaftShutdown, as during a daemon stop.
type raftRef struct{ p atomic.Pointer[raft.Raft] }

func newRaftRef(r *raft.Raft) *raftRef {
	ref := &raftRef{}
	ref.p.Store(r)
	return ref
}

func (r *raftRef) get() *raft.Raft       { return r.p.Load() }
func (r *raftRef) set(x *raft.Raft)      { r.p.Store(x) }
func (r *raftRef) State() raft.RaftState { return r.get().State() }
func (r *raftRef) CurrentTerm() uint64   { return r.get().CurrentTerm() }
func (r *raftRef) AppliedIndex() uint64  { return r.get().AppliedIndex() }
func (r *raftRef) LastIndex() uint64     { return r.get().LastIndex() }
func (r *raftRef) LeaderWithID() (raft.ServerAddress, raft.ServerID) {
	return r.get().LeaderWithID()
}
func (r *raftRef) GetConfiguration() raft.ConfigurationFuture { return r.get().GetConfiguration() }
func (r *raftRef) Barrier(timeout time.Duration) raft.Future  { return r.get().Barrier(timeout) }
func (r *raftRef) VerifyLeader() raft.Future                  { return r.get().VerifyLeader() }
func (r *raftRef) Apply(cmd []byte, timeout time.Duration) raft.ApplyFuture {
	return r.get().Apply(cmd, timeout)
}
func (r *raftRef) AddVoter(id raft.ServerID, addr raft.ServerAddress, prev uint64, timeout time.Duration) raft.IndexFuture {
	return r.get().AddVoter(id, addr, prev, timeout)
}
func (r *raftRef) AddNonvoter(id raft.ServerID, addr raft.ServerAddress, prev uint64, timeout time.Duration) raft.IndexFuture {
	return r.get().AddNonvoter(id, addr, prev, timeout)
}
func (r *raftRef) RemoveServer(id raft.ServerID, prev uint64, timeout time.Duration) raft.IndexFuture {
	return r.get().RemoveServer(id, prev, timeout)
}
func (r *raftRef) BootstrapCluster(c raft.Configuration) raft.Future {
	return r.get().BootstrapCluster(c)
}
func (r *raftRef) Shutdown() raft.Future { return r.get().Shutdown() }

// twoNode runs quorum.two_node on this host (see package twonode): it
// gathers the input, asks twonode.Decide and carries out the one action.
// It acts only while this host has no raft leader, or to finish a takeover
// it started; with a leader, the coordinator decides as always.
type twoNode struct {
	n   *Node
	log zerolog.Logger

	mu sync.Mutex
	// verdict is the last decision (vmha status shows it).
	verdict twonode.Verdict
	// leaderlessSince is when this host last knew a raft leader.
	leaderlessSince time.Time
	probe           *decide.ProbeAnswer
	fencing         bool
	failedAt        time.Time
	// fenceCancel stops a fence under way when a leader shows up again.
	fenceCancel context.CancelFunc
	// confirmed is this host's confirmed fence of the peer, with its
	// report and recovery id, until the takeover is recorded.
	confirmed *twonode.Confirmed
	report    fencing.Report
	rid       string
	// lostDone and stepsDone say which records of the takeover are in the
	// log already (a failed proposal is retried from there).
	lostDone, stepsDone bool
	// claimed is the peer whose fence this runner claimed from the
	// coordinator, so that a new leader's pass does not fence it in
	// parallel; released once the takeover is recorded or the fence failed.
	claimed string
}

// twoNodeInterval is how often the runner looks.
const twoNodeInterval = 250 * time.Millisecond

func newTwoNode(n *Node) *twoNode {
	t := &twoNode{n: n, log: n.log.With().Str("component", "two_node").Logger(), leaderlessSince: time.Now()}
	t.load()
	return t
}

// takeoverName is the file in the data directory that holds a confirmed
// fence until its takeover is recorded (or called off), so that a vmhad
// restart in between goes on with it instead of waiting, without quorum,
// for a host it powered off.
const takeoverName = "two_node-takeover.json"

// savedTakeover is the takeover file's content.
type savedTakeover struct {
	Confirmed  twonode.Confirmed `json:"confirmed"`
	Report     fencing.Report    `json:"report"`
	RecoveryID string            `json:"recovery_id"`
	// RaftIndex is this host's last raft index when the fence was
	// confirmed. Any leader elected with this host since appended to its
	// log (a leader's first entry, every barrier of a read index), so a
	// file whose index is not the log's own is stale.
	RaftIndex uint64 `json:"raft_index"`
}

func (t *twoNode) takeoverPath() string { return filepath.Join(t.n.cfg.DataDir, takeoverName) }

// save writes the confirmed fence to disk (synced) before the takeover.
// Going on after a restart is safe while this host's raft log is where it
// was at the confirmation: since the power off, the other host could only
// have had a leader together with this host, and that leader would have
// appended to this host's log; so it started nothing. A leader elected
// with it after the restart calls the takeover off (twonode.Forget).
func (t *twoNode) save(c twonode.Confirmed, rep fencing.Report, rid string, index uint64) error {
	b, err := json.Marshal(savedTakeover{Confirmed: c, Report: rep, RecoveryID: rid, RaftIndex: index})
	if err != nil {
		return err
	}
	tmp := t.takeoverPath() + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, t.takeoverPath())
}

// load takes up a confirmed fence saved before a restart.
func (t *twoNode) load() {
	b, err := os.ReadFile(t.takeoverPath())
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			t.log.Error().Err(err).Str("file", t.takeoverPath()).Msg("two_node: cannot read a saved takeover; not taking over on its word")
		}
		return
	}
	var s savedTakeover
	if err := json.Unmarshal(b, &s); err != nil || s.Confirmed.Peer == "" || s.Confirmed.Peer == t.n.cfg.NodeName {
		t.log.Error().Err(err).Str("file", t.takeoverPath()).Msg("two_node: the saved takeover is corrupt; ignoring it (nothing is taken over on its word)")
		return
	}
	if last := t.n.raft.LastIndex(); last != s.RaftIndex {
		t.log.Warn().Str("host", s.Confirmed.Peer).Uint64("saved_index", s.RaftIndex).Uint64("raft_index", last).
			Msg("two_node: a saved takeover is older than this host's raft log (a leader was elected since): dropping it")
		t.forgetSaved()
		return
	}
	s.Confirmed.Recorded = false
	t.confirmed, t.report, t.rid = &s.Confirmed, s.Report, s.RecoveryID
	t.log.Warn().Str("host", s.Confirmed.Peer).Time("fenced_at", s.Confirmed.At).Str("recovery_id", s.RecoveryID).
		Msg("two_node: this host confirmed the fence of the other host before it restarted; going on with the takeover unless a leader is elected with it")
}

// forgetSaved drops the saved takeover, if any.
func (t *twoNode) forgetSaved() {
	if err := os.Remove(t.takeoverPath()); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.log.Error().Err(err).Str("file", t.takeoverPath()).Msg("two_node: remove the saved takeover")
	}
}

func (t *twoNode) run(ctx context.Context) {
	t.log.Warn().Msg("quorum.two_node is on: if gossip declares the other host failed while there is no raft leader, this host fences it and, once the fence is confirmed, takes over as the only raft voter")
	tick := time.NewTicker(twoNodeInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			t.mu.Lock()
			if t.fenceCancel != nil {
				t.fenceCancel()
			}
			t.mu.Unlock()
			return
		case <-tick.C:
		}
		t.pass(ctx)
	}
}

// settings are the decision's timers: fence only after more than two
// elections without a leader (and at least a second), retry a failed
// fence after fencing.retry_interval.
func (t *twoNode) settings() twonode.Settings {
	return twonode.Settings{
		Leaderless: max(2*t.n.cfg.Raft.ElectionTimeout, time.Second),
		FenceRetry: t.n.cfg.Fencing.RetryInterval,
	}
}

// input is the decision's view of this host now, but for the state, which
// pass lends it under the state machine's read lock (no copy four times a
// second).
func (t *twoNode) input() twonode.Input {
	n := t.n
	in := twonode.Input{Now: time.Now(), Self: n.cfg.NodeName, Members: n.members(), Settings: t.settings()}
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			if s.Suffrage == raft.Voter {
				in.Voters = append(in.Voters, string(s.ID))
			}
		}
	}
	sort.Strings(in.Voters)
	in.SelfLeader = n.IsLeader()
	_, id := n.raft.LeaderWithID()
	in.Leader = string(id)
	t.mu.Lock()
	defer t.mu.Unlock()
	if in.SelfLeader || in.Leader != "" {
		t.leaderlessSince = in.Now
		if t.fenceCancel != nil && t.confirmed == nil {
			// The quorum is back before the fence fired: the peer is
			// reachable through a leader; leave it to the coordinator.
			t.log.Info().Str("leader", in.Leader).Msg("a raft leader is back: the two_node fence is called off")
			t.fenceCancel()
			t.fenceCancel = nil
		}
	}
	in.LeaderlessSince = t.leaderlessSince
	if t.probe != nil {
		p := *t.probe
		in.Probe = &p
	}
	in.Fencing, in.FailedAt = t.fencing, t.failedAt
	if t.confirmed != nil {
		c := *t.confirmed
		in.Confirmed = &c
	}
	return in
}

// pass is one decision and its action.
func (t *twoNode) pass(ctx context.Context) {
	in := t.input()
	var v twonode.Verdict
	var peerAPI string
	t.n.fsm.Read(func(s *model.State) {
		in.State = s
		v = twonode.Decide(in)
		if h := s.Config.Hosts[v.Peer]; h != nil {
			peerAPI = h.APIAddr
		}
	})
	in.State = nil
	t.setVerdict(v)
	if v.Action == twonode.TakeOver || v.Action == twonode.Record {
		// A takeover taken up after a restart: keep the coordinator off
		// the peer's fence until it is recorded.
		t.mu.Lock()
		if t.claimed == "" && t.n.coord.claim(v.Peer) {
			t.claimed = v.Peer
		}
		t.mu.Unlock()
	}
	switch v.Action {
	case twonode.Probe:
		t.probePeer(ctx, peerAPI, v.Peer)
	case twonode.Fence:
		t.startFence(ctx, v.Peer, in.Members[v.Peer].Tags[tagBoot])
	case twonode.TakeOver:
		if err := t.n.recoverAlone(); err != nil {
			t.log.Error().Err(err).Str("peer", v.Peer).Msg("two_node takeover failed; retrying")
		}
	case twonode.Record:
		t.record(v.Peer)
	case twonode.Done, twonode.Forget:
		t.done()
	}
}

// setVerdict keeps the verdict for status and logs it when it changes.
func (t *twoNode) setVerdict(v twonode.Verdict) {
	t.mu.Lock()
	prev := t.verdict
	t.verdict = v
	t.mu.Unlock()
	if prev.Action == v.Action && prev.Reason == v.Reason {
		return
	}
	ev := t.log.Info()
	switch {
	case len(v.Problems) > 0:
		// vmha status shows it as a critical problem; while the cluster
		// forms (fewer than two hosts registered) it is expected.
		ev = t.log.Warn()
	case v.Action == twonode.Fence || v.Action == twonode.TakeOver || v.Action == twonode.Record:
		ev = t.log.Warn()
	}
	ev.Str("action", string(v.Action)).Str("peer", v.Peer).Strs("problems", v.Problems).Msg(v.Reason)
}

// probePeer asks the peer's API whether it answers under its own name.
func (t *twoNode) probePeer(ctx context.Context, addr, peer string) {
	ok := false
	if addr != "" {
		var a api.Alive
		err := t.n.peers.do(ctx, addr, aliveProbeTimeout, "GET", api.PathAlive, nil, &a, nil)
		ok = err == nil && a.Node == peer
	}
	t.mu.Lock()
	t.probe = &decide.ProbeAnswer{At: time.Now(), OK: ok}
	t.mu.Unlock()
}

// startFence runs the peer's fence topology from this host's replicated
// state (its levels and its delay), in the background. A confirmed fence
// is the only way to a takeover.
func (t *twoNode) startFence(ctx context.Context, peer, boot string) {
	c := t.n.coord
	if !c.claim(peer) {
		return // a fence of the peer already runs (a leader's, or ours)
	}
	fctx, cancel := context.WithCancel(ctx)
	rid := newRecoveryID()
	t.mu.Lock()
	t.fencing, t.fenceCancel, t.claimed = true, cancel, peer
	t.mu.Unlock()
	log := t.log.With().Str("recovery_id", rid).Str("host", peer).Logger()
	go func() {
		defer cancel()
		rep, err := t.fence(fctx, peer)
		if err != nil {
			t.mu.Lock()
			t.fencing, t.fenceCancel = false, nil
			t.failedAt, t.claimed = time.Now(), ""
			t.mu.Unlock()
			c.release(peer)
			log.Error().Err(err).Msg("two_node: fencing the other host failed; this host does not take over and stays without quorum (running VMs are kept, nothing starts); retrying")
			return
		}
		conf := twonode.Confirmed{Peer: peer, Boot: boot, At: time.Now()}
		if err := t.save(conf, rep, rid, t.n.raft.LastIndex()); err != nil {
			// The takeover goes on in memory; only a restart before it
			// is recorded would then wait for the peer.
			log.Error().Err(err).Msg("two_node: cannot save the confirmed fence in the data directory")
		}
		t.mu.Lock()
		t.fencing, t.fenceCancel = false, nil
		t.confirmed = &conf
		t.report, t.rid, t.lostDone, t.stepsDone = rep, rid, false, false
		t.mu.Unlock()
		log.Warn().Dur("duration", rep.Duration).Dur("delay", rep.Delay).Int("fence_level", rep.Level).
			Msg("two_node: the other host is fenced (power off confirmed); taking over as the only raft voter")
	}()
}

// fence runs the peer's topology once. Only a report whose levels
// confirmed the power off returns a nil error.
func (t *twoNode) fence(ctx context.Context, peer string) (fencing.Report, error) {
	topo, set, err := t.n.coord.topology(peer)
	if err != nil {
		return fencing.Report{}, err
	}
	defer func() { _ = set.Close() }()
	t.log.Warn().Str("host", peer).Dur("delay", topo.Delay).Dur("random_delay", topo.RandomDelay).Int("levels", len(topo.Levels)).
		Msg("two_node: no quorum and the other host failed: fencing it (after its fence delay)")
	rep, err := topo.Run(ctx, fencing.RunOptions{Fence: t.n.fenceOptions(), Executor: t.n.cfg.NodeName})
	t.n.metrics.fences.WithLabelValues(string(rep.Action), result(err)).Inc()
	t.n.metrics.fenceSeconds.WithLabelValues(result(err)).Observe(rep.Duration.Seconds())
	if err == nil && !rep.Fenced {
		err = errors.New("the fence run ended without a level that confirmed the power off")
	}
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	return rep, err
}

// record writes the takeover into the log once this host leads alone: the
// peer lost (with the boot id it had, so only a restarted peer counts as
// back), every device step of the fence, and the peer fenced. From there
// the coordinator recovers the peer's VMs as after any fence.
func (t *twoNode) record(peer string) {
	t.mu.Lock()
	c, rep, rid := *t.confirmed, t.report, t.rid
	lostDone, stepsDone := t.lostDone, t.stepsDone
	t.mu.Unlock()
	n := t.n
	var state model.HostState
	n.fsm.Read(func(s *model.State) {
		state = model.HostAlive
		if hs := s.Status.Hosts[peer]; hs != nil {
			state = hs.State
			if hs.State != model.HostAlive && hs.RecoveryID != "" {
				rid = hs.RecoveryID
			}
		}
	})
	requester := "two_node: " + n.cfg.NodeName
	if !lostDone && state == model.HostAlive {
		if err := n.propose(&Command{Op: OpHostState, HostState: &HostStateChange{Host: peer, State: model.HostLost,
			Reason: "two_node: gossip declared the host failed and the other host had no quorum", RecoveryID: rid, Boot: c.Boot}}); err != nil {
			t.log.Error().Err(err).Msg("two_node: record the other host lost")
			return
		}
		state = model.HostLost
	}
	t.mu.Lock()
	t.lostDone, t.rid = true, rid
	t.mu.Unlock()
	level, device := rep.Level, ""
	if !stepsDone {
		// The history is written as the coordinator writes it: a step
		// that cannot be committed is logged, not retried.
		level, device, _ = n.coord.recordFenceSteps(rep, rid, requester)
		t.mu.Lock()
		t.stepsDone = true
		t.mu.Unlock()
	}
	if state == model.HostLost || state == model.HostFenceFailed {
		reason := fmt.Sprintf("fenced (%s) at level %d %s by the two_node survivor %s", rep.Action, level, device, n.cfg.NodeName)
		if err := n.coord.setHostState(peer, model.HostFenced, reason, rid); err != nil {
			t.log.Error().Err(err).Msg("two_node: record the other host fenced")
			return
		}
	}
	t.mu.Lock()
	if t.confirmed != nil {
		t.confirmed.Recorded = true
	}
	t.mu.Unlock()
	t.log.Warn().Str("recovery_id", rid).Str("host", peer).Msg("two_node takeover recorded: this host leads alone, the other host is fenced and its VMs are recovered; it is added back as a voter when it rejoins")
}

// done forgets a takeover, recorded or called off, and hands the peer
// back to the coordinator.
func (t *twoNode) done() {
	t.forgetSaved()
	t.mu.Lock()
	claimed := t.claimed
	t.confirmed, t.claimed, t.probe, t.failedAt = nil, "", nil, time.Time{}
	t.lostDone, t.stepsDone = false, false
	t.mu.Unlock()
	if claimed != "" {
		t.n.coord.release(claimed)
	}
}

// state is what vmha status shows of the mode on this host.
func (t *twoNode) state() *twoNodeState {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return &twoNodeState{self: t.n.cfg.NodeName, action: t.verdict.Action, reason: t.verdict.Reason}
}

// twoNodeState is the answering host's quorum.two_node, for status.
type twoNodeState struct {
	self   string
	action twonode.Action
	reason string
}

// recoverAlone makes this host the only raft voter after its fence of the
// other host was confirmed: raft is shut down, raft.RecoverCluster rewrites
// its configuration to this host alone (from a scratch state machine: the
// live one is restored from the snapshot it writes), and raft starts again,
// electing this host. Never called without a confirmed fence (twonode.Decide).
func (n *Node) recoverAlone() error {
	old := n.raft.get()
	if old.State() == raft.Leader {
		return nil
	}
	if addr, id := old.LeaderWithID(); addr != "" {
		return fmt.Errorf("raft leader %s appeared: not taking over", id)
	}
	n.log.Warn().Msg("two_node: shutting raft down to recover it with this host as the only voter")
	if err := old.Shutdown().Error(); err != nil {
		n.log.Warn().Err(err).Msg("two_node: raft shutdown")
	}
	rc := n.raftConfig()
	var trans raftTransport
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		// The old transport's listener was just closed.
		if trans, err = n.newTransport(); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("raft transport after shutdown: %w; this host has no raft until vmhad restarts", err)
	}
	n.stores = append(n.stores, trans)
	conf := raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: raft.ServerID(n.cfg.NodeName), Address: raft.ServerAddress(n.raftAddr())}}}
	rerr := raft.RecoverCluster(rc, NewFSM(), n.logStore, n.logStore, n.snaps, trans, conf)
	if rerr != nil {
		n.log.Error().Err(rerr).Msg("two_node: raft.RecoverCluster failed; starting raft with the configuration unchanged")
	}
	r, err := raft.NewRaft(rc, n.fsm, n.logStore, n.logStore, n.snaps, trans)
	if err != nil {
		return fmt.Errorf("restart raft: %w; this host has no raft until vmhad restarts", err)
	}
	n.raft.set(r)
	if rerr != nil {
		return fmt.Errorf("recover raft as the only voter: %w", rerr)
	}
	// The cluster had formed (the other host was seen and is fenced):
	// a cold-start wait for it must not hold the survivor back.
	n.wfaDone.Store(true)
	n.log.Warn().Str("voter", n.cfg.NodeName).Msg("two_node: raft recovered with this host as the only voter")
	return nil
}
