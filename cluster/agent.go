package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/cluster/decide"
	"github.com/vmha/vmha/cluster/reconcile"
	"github.com/vmha/vmha/config"
	"github.com/vmha/vmha/hypervisor"
	"github.com/vmha/vmha/model"
)

// reportEvery re-sends an unchanged observation so the leader's view stays
// fresh after a leader change.
const reportEvery = 15 * time.Second

// Agent reconciles this host's hypervisor to the committed state: it starts
// what is placed here, stops what is placed elsewhere, and reports what it
// sees. It acts only on committed state and, before it starts anything,
// makes sure its copy is as new as the leader's (a read index), so a host
// cut off from the majority or lagging behind never starts a VM that was
// moved away.
type Agent struct {
	n   *Node
	log zerolog.Logger

	terms termGuard
	nudge chan struct{}

	mu      sync.Mutex
	managed map[string]bool // domains this agent defined
	since   map[string]model.VMObserve
	sent    string
	sentAt  time.Time
	errs    map[string]string
	// quorateAt is the last time this host reached a leader that could
	// commit (a read index or an accepted report): the clock of the
	// no-quorum policy.
	quorateAt time.Time
	// startedGen is the placement generation under which this agent last
	// started each VM (no-quorum-policy ignore restarts only those).
	startedGen map[string]uint64
	// stoppedForQuorum is set once policy stop has stopped the VMs.
	stoppedForQuorum bool
	// migrating holds the migrations this agent started (by id).
	migrating map[string]bool
	// jobs are the live migrations this host is the source of, with their
	// latest statistics, kept a while after they end (by migration id).
	jobs map[string]*api.MigrationJob
	// synced is set once the local state machine has caught up with a
	// leader's read index since vmhad started. Before that, the state may
	// be the past: a restarted host replays its log, and on the way its
	// VMs are placed where they were minutes ago. Until then the agent
	// stops and starts nothing.
	synced bool
	// gens is this host's floor of placement generations (see generations).
	gens *generations
	// fails are the VMs whose define or start failed here, for the
	// backoff and the report (see startFailure).
	fails map[string]*startFailure
	// wakeAt is when the next deferred start's backoff ends (zero: none).
	wakeAt time.Time
	// guests are the monitored guests' failures here (agent_guest.go).
	guests map[string]*guestHealth
}

func newAgent(n *Node) *Agent {
	a := &Agent{
		n: n, log: n.log.With().Str("component", "agent").Logger(),
		nudge: make(chan struct{}, 1), managed: map[string]bool{},
		since: map[string]model.VMObserve{}, errs: map[string]string{},
		quorateAt: time.Now(), startedGen: map[string]uint64{}, migrating: map[string]bool{},
		jobs: map[string]*api.MigrationJob{}, fails: map[string]*startFailure{},
	}
	a.loadManaged()
	a.gens = loadGenerations(filepath.Join(n.cfg.DataDir, "agent-generations.json"), a.log)
	return a
}

// termGuard remembers the highest leader term seen and refuses commands
// from lower terms: they come from a deposed leader.
type termGuard struct {
	mu  sync.Mutex
	max uint64
}

// accept records term t, or refuses it if a higher term was seen.
func (g *termGuard) accept(t uint64) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if t < g.max {
		return fmt.Errorf("refusing a command from leader term %d: term %d was already seen", t, g.max)
	}
	g.max = t
	return nil
}

// Nudge is the leader asking for a reconcile now.
func (a *Agent) Nudge(term uint64) error {
	if err := a.terms.accept(term); err != nil {
		return err
	}
	select {
	case a.nudge <- struct{}{}:
	default:
	}
	return nil
}

func (a *Agent) run(ctx context.Context) {
	t := time.NewTicker(a.n.cfg.Agent.Interval)
	defer t.Stop()
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()
	events := a.n.hv.Events()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-a.n.fsm.Changed():
		case <-a.nudge:
		case <-retry.C:
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			a.log.Debug().Str("vm", ev.Domain).Str("state", string(ev.State)).Str("detail", ev.Detail).Msg("hypervisor event")
			a.guestEvent(ev)
		}
		a.n.agentBeat.Store(time.Now().UnixNano())
		if again := a.reconcile(ctx); again {
			retry.Reset(200 * time.Millisecond)
		} else if w := a.wake(); !w.IsZero() {
			retry.Reset(max(time.Until(w), 10*time.Millisecond))
		}
	}
}

// reconcile does one level-triggered pass. It returns true when work is
// pending that should be retried soon (e.g. waiting to catch up).
func (a *Agent) reconcile(ctx context.Context) (again bool) {
	if err := a.terms.accept(a.n.raft.CurrentTerm()); err != nil {
		// Our own raft never goes back in term; keep going.
		a.log.Debug().Err(err).Msg("term")
	}
	me := a.n.cfg.NodeName
	doms, err := a.listDomains(ctx)
	if err != nil {
		a.log.Error().Err(err).Msg("list domains")
		return true
	}
	// Only this host's slice of the state: the VMs placed on it or
	// moving from it, and those its hypervisor or its memory name.
	st := a.n.fsm.HostSlice(me, a.known(doms))
	// Once synced, the local state never goes back before the read index
	// it caught up with: it is current enough to drop removed VMs from the
	// floor. Before, it may be a replay of the past.
	a.gens.note(st, me, a.isSynced())
	if !a.isSynced() {
		cur, err := a.catchUp(ctx)
		if err != nil {
			a.log.Debug().Err(err).Msg("state not caught up with a leader since vmhad started: no stop and no start yet")
			a.applyNoQuorumPolicy(ctx, st, doms)
			_ = a.report(ctx, st)
			return true
		}
		a.mu.Lock()
		a.synced = true
		a.mu.Unlock()
		a.setQuorate()
		a.log.Info().Uint64("applied_index", a.n.fsm.AppliedIndex()).Msg("state caught up with the leader: reconciling")
		st = cur
		a.gens.note(st, me, true)
	}
	in := a.input(st, doms, a.isSynced())
	a.guestInput(ctx, st, doms, &in)
	plan := reconcile.Decide(in)
	a.deferred(plan.Deferred)
	if in.Synced {
		a.forgetFailures(func(vm string) bool { d, ok := in.Desired[vm]; return ok && d.Host == me })
	}
	plan = a.definitions(ctx, st, doms, plan) // VM definitions (agent_define.go): released domains, restarts after vm update --restart
	for _, name := range plan.Adopt {
		a.setManaged(name, true) // also when it arrived by a live migration
	}
	// Stops first: a VM placed elsewhere must not stay active here.
	for _, s := range plan.Stops {
		if s.Active {
			a.log.Info().Str("vm", s.VM).Str("recovery_id", recoveryOf(st, s.VM)).Str("reason", s.Reason).Msg("stopping VM that is not placed here")
			err := a.n.hv.Stop(ctx, s.VM, a.n.cfg.Agent.StopTimeout)
			a.n.metrics.agentStops.WithLabelValues(result(err)).Inc()
			if err != nil {
				a.setErr(s.VM, err)
				a.log.Error().Err(err).Str("vm", s.VM).Msg("stop")
				again = true
				continue
			}
		}
		if vm := st.Config.VMs[s.VM]; s.Release && vm != nil {
			// Inactive here now (stopped above, or crashed earlier):
			// release its logical volumes for the host it is placed on.
			a.deactivateLVs(ctx, vm)
		}
		if s.Undefine {
			if err := a.n.hv.Undefine(ctx, s.VM); err != nil {
				a.log.Warn().Err(err).Str("vm", s.VM).Msg("undefine")
			}
			a.setManaged(s.VM, false)
		}
	}
	if a.applyNoQuorumPolicy(ctx, st, doms) {
		// Policy stop ran: nothing starts until the quorum is back.
		_ = a.report(ctx, st)
		return true
	}
	a.guestActions(ctx, plan)
	// Each start is confirmed against a fresh read index just before it:
	// the placement must still be this host's in a state at least as new
	// as the leader's, and no older than a generation this host has seen.
	for i, name := range plan.Starts {
		p, vm, hold, err := a.currentPlacement(ctx, name)
		if err != nil {
			a.log.Info().Err(err).Strs("vms", plan.Starts[i:]).Msg("not starting yet")
			again = true
			if a.n.cfg.Quorum.NoQuorumPolicy == config.PolicyIgnore {
				a.restartOwn(ctx, st, plan.Starts[i:])
			}
			break
		}
		a.setQuorate()
		if err := reconcile.Confirm(me, name, desiredOf(p, hold), vm != nil); err != nil {
			a.log.Info().Err(err).Msg("not starting: moved on since the pass began")
			continue
		}
		if err := a.gens.check(name, p.Generation); err != nil {
			a.setErr(name, err)
			a.log.Error().Err(err).Str("vm", name).Str("recovery_id", p.RecoveryID).Uint64("generation", p.Generation).Msg("refusing to start")
			continue
		}
		err = a.start(ctx, vm, p)
		a.n.metrics.agentStarts.WithLabelValues(result(err)).Inc()
		a.startResult(name, p.Generation, err)
	}
	if a.startMigrations(ctx, st) {
		again = true
	}
	if err := a.report(ctx, st); err != nil {
		a.log.Debug().Err(err).Msg("report")
		again = true
	}
	return again
}

// known are the VMs this agent's hypervisor and memory name (the state
// slice it reads holds them besides those placed here): every VM whose
// definition or placement the pass may look up.
func (a *Agent) known(doms map[string]hypervisor.Domain) []string {
	out := slices.Collect(maps.Keys(doms))
	a.mu.Lock()
	out = slices.AppendSeq(out, maps.Keys(a.managed))
	for _, j := range a.jobs {
		out = append(out, j.VM)
	}
	out = slices.AppendSeq(out, maps.Keys(a.since))
	out = slices.AppendSeq(out, maps.Keys(a.errs))
	out = slices.AppendSeq(out, maps.Keys(a.startedGen))
	out = slices.AppendSeq(out, maps.Keys(a.fails))
	out = slices.AppendSeq(out, maps.Keys(a.guests))
	a.mu.Unlock()
	return append(out, a.gens.names()...)
}

// input is the pure pass's view of this host (reconcile.Input): the
// cluster's VMs placed on it, moving from it or found on its hypervisor.
func (a *Agent) input(st *model.State, doms map[string]hypervisor.Domain, synced bool) reconcile.Input {
	me := a.n.cfg.NodeName
	in := reconcile.Input{Host: me, Synced: synced, Desired: map[string]reconcile.Desired{}, Domains: map[string]bool{}, Managed: map[string]bool{},
		NotBefore: map[string]time.Time{}, Now: time.Now()}
	held := heldVMs(st, a.n.compiledRules(st.Config.Rules))
	for name, p := range st.Status.Placements {
		if st.Config.VMs[name] != nil && (p.Host == me || p.MigrateFrom == me) {
			in.Desired[name] = desiredOf(p, held(name))
		}
	}
	for name, d := range doms {
		in.Domains[name] = d.State.Active()
		if st.Config.VMs[name] != nil {
			in.Desired[name] = desiredOf(st.Status.Placements[name], held(name))
		}
	}
	a.mu.Lock()
	for name := range a.managed {
		in.Managed[name] = true
	}
	for name, f := range a.fails {
		in.NotBefore[name] = f.notBefore()
	}
	a.mu.Unlock()
	return in
}

// heldVMs says which VMs the agent leaves as they are: all of them while
// the cluster is in maintenance, else the ignored (unmanaged) ones.
func heldVMs(st *model.State, rules *decide.Rules) func(string) bool {
	if st.Config.Maintenance != nil {
		return func(string) bool { return true }
	}
	return func(vm string) bool {
		return decide.TargetOf(st, rules, vm).Target == model.TargetIgnored
	}
}

// desiredOf is a placement as the pure pass reads it (nil: placed nowhere).
func desiredOf(p *model.Placement, hold bool) reconcile.Desired {
	if p == nil {
		return reconcile.Desired{Hold: hold}
	}
	return reconcile.Desired{Host: p.Host, MigrateFrom: p.MigrateFrom, Hold: hold}
}

func (a *Agent) start(ctx context.Context, vm *model.VM, p *model.Placement) error {
	log := a.log.With().Str("vm", vm.Name).Str("recovery_id", p.RecoveryID).Uint64("generation", p.Generation).Logger()
	a.setManaged(vm.Name, true)
	if _, err := a.n.hv.Define(ctx, vm.XML); err != nil {
		a.setErr(vm.Name, err)
		log.Error().Err(err).Msg("define")
		return err
	}
	if err := a.activateLVs(ctx, vm); err != nil {
		a.setErr(vm.Name, err)
		log.Error().Err(err).Msg("storage refuses the start")
		return err
	}
	if err := a.n.hv.Start(ctx, vm.Name); err != nil {
		a.setErr(vm.Name, err)
		log.Error().Err(err).Msg("start")
		return err
	}
	a.setErr(vm.Name, nil)
	a.mu.Lock()
	a.startedGen[vm.Name] = p.Generation
	a.mu.Unlock()
	log.Info().Str("reason", p.Reason).Msg("VM started")
	return nil
}

// startMigrations starts, once each, the live migrations the committed
// state asks this host to run as the source, after making sure the local
// state is as new as the leader's (a stale copy must not move a VM whose
// move was already ended). It returns true when it should be tried again.
func (a *Agent) startMigrations(ctx context.Context, st *model.State) bool {
	me := a.n.cfg.NodeName
	var todo []model.Placement
	a.mu.Lock()
	for _, name := range model.SortedKeys(st.Status.Placements) {
		p := st.Status.Placements[name]
		if p.MigrateFrom == me && p.Host != me && !a.migrating[p.MigrationID] {
			todo = append(todo, *p)
		}
	}
	a.mu.Unlock()
	if len(todo) == 0 {
		return false
	}
	st, err := a.catchUp(ctx)
	if err != nil {
		a.log.Info().Err(err).Msg("not starting migrations yet")
		return true
	}
	for _, old := range todo {
		p := st.Status.Placements[old.VM]
		if p == nil || p.MigrationID != old.MigrationID || p.MigrateFrom != me {
			continue
		}
		target := st.Config.Hosts[p.Host]
		if target == nil {
			continue
		}
		a.mu.Lock()
		a.migrating[p.MigrationID] = true
		a.mu.Unlock()
		t := *target
		if p.Cold {
			go a.coldMove(ctx, *p)
		} else {
			go a.migrate(ctx, *p, &t)
		}
	}
	return false
}

func (a *Agent) setQuorate() {
	a.mu.Lock()
	a.quorateAt = time.Now()
	if a.stoppedForQuorum {
		a.log.Info().Msg("quorum is back: VMs placed here start again")
	}
	a.stoppedForQuorum = false
	a.mu.Unlock()
}

// applyNoQuorumPolicy enforces no-quorum-policy stop: once this host has
// been without a quorum for quorum.stop_after, it stops every VM placed on
// it, so that the majority finds them stopped when it recovers them (the
// majority still fences this host first: a stop is not a fence). It returns
// true while the policy holds the host stopped.
func (a *Agent) applyNoQuorumPolicy(ctx context.Context, st *model.State, doms map[string]hypervisor.Domain) bool {
	q := a.n.cfg.Quorum
	if q.NoQuorumPolicy != config.PolicyStop {
		return false
	}
	a.mu.Lock()
	without := time.Since(a.quorateAt)
	a.mu.Unlock()
	if without > a.n.cfg.Agent.Interval {
		// No recent contact: ask a leader that proves its quorum.
		if _, err := a.readIndex(ctx); err == nil {
			a.setQuorate()
			return false
		}
	}
	if without < q.StopAfter {
		return false
	}
	me := a.n.cfg.NodeName
	for _, name := range model.SortedKeys(doms) {
		p := st.Status.Placements[name]
		if st.Config.VMs[name] == nil || p == nil || p.Host != me || !doms[name].State.Active() {
			continue
		}
		a.log.Warn().Str("vm", name).Dur("without_quorum", without).Msg("no quorum: stopping VM (no-quorum-policy stop)")
		err := a.n.hv.Stop(ctx, name, a.n.cfg.Agent.StopTimeout)
		a.n.metrics.agentStops.WithLabelValues(result(err)).Inc()
		if err != nil {
			a.setErr(name, err)
		}
	}
	a.mu.Lock()
	a.stoppedForQuorum = true
	a.mu.Unlock()
	return true
}

// restartOwn is no-quorum-policy ignore: without a quorum, a VM placed here
// that this agent itself started under the same placement generation (so
// the placement did not change since) is started again after a crash.
func (a *Agent) restartOwn(ctx context.Context, st *model.State, names []string) {
	for _, name := range names {
		p, vm := st.Status.Placements[name], st.Config.VMs[name]
		a.mu.Lock()
		own := p != nil && a.startedGen[name] == p.Generation
		a.mu.Unlock()
		if !own || vm == nil {
			continue
		}
		a.log.Warn().Str("vm", name).Uint64("generation", p.Generation).Msg("no quorum: restarting own VM (no-quorum-policy ignore)")
		_ = a.start(ctx, vm, p)
	}
}

// catchUp asks the leader for its read index, waits (briefly) until the
// local state machine has applied at least that far, and returns a copy of
// the state from then: at least as new as the leader's when it answered.
// It compares the state machine's own index, never raft's AppliedIndex,
// which runs ahead of the state while a log replays.
func (a *Agent) catchUp(ctx context.Context) (*model.State, error) {
	index, err := a.waitCurrent(ctx)
	if err != nil {
		return nil, err
	}
	st, at := a.n.fsm.CopyAt()
	if at < index {
		return nil, wentBack(at, index)
	}
	return st, nil
}

// waitCurrent asks the leader for its read index and waits (briefly) until
// the local state machine has applied that far; it returns the index.
func (a *Agent) waitCurrent(ctx context.Context) (uint64, error) {
	ri, err := a.readIndex(ctx)
	if err != nil {
		return 0, err
	}
	deadline := time.Now().Add(5 * time.Second)
	for a.n.fsm.AppliedIndex() < ri.Index {
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("local state at index %d, leader at %d", a.n.fsm.AppliedIndex(), ri.Index)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return ri.Index, nil
}

// wentBack is a state found older than the index it had reached: only a
// snapshot restore goes back; the next pass tries again.
func wentBack(at, index uint64) error {
	return fmt.Errorf("local state went back to index %d, leader at %d", at, index)
}

// currentPlacement is vm's placement and definition in a state at least as
// new as the leader's (a read index), copied out without copying the whole
// state: the check made just before each start.
func (a *Agent) currentPlacement(ctx context.Context, vm string) (*model.Placement, *model.VM, bool, error) {
	index, err := a.waitCurrent(ctx)
	if err != nil {
		return nil, nil, false, err
	}
	var p *model.Placement
	var v *model.VM
	var hold bool
	a.n.fsm.ReadAt(func(s *model.State, at uint64) {
		if at < index {
			err = wentBack(at, index)
			return
		}
		hold = heldVMs(s, a.n.compiledRules(s.Config.Rules))(vm)
		if cur := s.Status.Placements[vm]; cur != nil {
			cp := *cur
			p = &cp
		}
		if cur := s.Config.VMs[vm]; cur != nil {
			cp := *cur
			v = &cp
		}
	})
	return p, v, hold, err
}

// readIndex asks the leader for its read index: an answer proves that a
// leader of a quorum exists, in a term no older than any seen here.
func (a *Agent) readIndex(ctx context.Context) (api.ReadIndex, error) {
	var ri api.ReadIndex
	if err := a.n.forwardRead(ctx, api.PathReadIndex, &ri); err != nil {
		return ri, fmt.Errorf("no read index from a leader: %w", err)
	}
	return ri, a.terms.accept(ri.Term)
}

func (a *Agent) isSynced() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.synced
}

// report sends what this host runs to the leader when it changed, and
// every reportEvery anyway.
func (a *Agent) report(ctx context.Context, st *model.State) error {
	doms, err := a.listDomains(ctx)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	a.n.tagsMu.Lock()
	boot := a.n.tags[tagBoot]
	a.n.tagsMu.Unlock()
	obs := model.Observation{Host: a.n.cfg.NodeName, At: now, Boot: boot, VMs: map[string]model.VMObserve{}}
	a.mu.Lock()
	for name, d := range doms {
		if st.Config.VMs[name] == nil {
			continue
		}
		prev, ok := a.since[name]
		o := model.VMObserve{State: string(d.State), Since: now, Error: a.errs[name]}
		if ok && prev.State == o.State {
			o.Since = prev.Since
		}
		a.since[name] = o
		obs.VMs[name] = o
	}
	for name := range a.since {
		if _, ok := obs.VMs[name]; !ok {
			delete(a.since, name)
		}
	}
	for name, e := range a.errs {
		if _, ok := obs.VMs[name]; !ok && st.Config.VMs[name] != nil {
			obs.VMs[name] = model.VMObserve{State: "failed", Since: now, Error: e}
		}
	}
	// A failed start is reported with its time, once per failure: the
	// leader counts each new one (the fail count), and a VM that keeps
	// failing is not reported anew on every pass.
	for name, f := range a.fails {
		o, ok := obs.VMs[name]
		if !ok || model.DomainState(o.State).Active() {
			continue
		}
		if o.State == "failed" {
			o.Since = f.first
		}
		o.FailedAt = f.last
		obs.VMs[name] = o
	}
	a.guestReport(obs.VMs)
	key, _ := json.Marshal(obs.VMs)
	fresh := string(key) == a.sent && time.Since(a.sentAt) < reportEvery
	a.mu.Unlock()
	if fresh {
		return nil
	}
	if err := a.n.forwardWrite(ctx, "POST", api.PathObserve, obs, nil); err != nil {
		return err
	}
	// The leader committed the report: it has a quorum, and so do we.
	a.setQuorate()
	a.mu.Lock()
	a.sent, a.sentAt = string(key), time.Now()
	a.mu.Unlock()
	return nil
}

func (a *Agent) listDomains(ctx context.Context) (map[string]hypervisor.Domain, error) {
	ds, err := a.n.hv.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]hypervisor.Domain, len(ds))
	for _, d := range ds {
		out[d.Name] = d
	}
	return out, nil
}

func (a *Agent) setErr(vm string, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err == nil {
		delete(a.errs, vm)
	} else {
		a.errs[vm] = err.Error()
	}
}

// managedPath keeps the set of domains this agent defined, so that after a
// restart it still cleans up VMs that were removed from the cluster.
func (a *Agent) managedPath() string { return filepath.Join(a.n.cfg.DataDir, "agent-managed.json") }

func (a *Agent) loadManaged() {
	b, err := os.ReadFile(a.managedPath())
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			a.log.Warn().Err(err).Msg("read managed domains")
		}
		return
	}
	var names []string
	if err := json.Unmarshal(b, &names); err != nil {
		a.log.Warn().Err(err).Str("file", a.managedPath()).Msg("managed domains file is corrupt; ignoring it")
		return
	}
	for _, n := range names {
		a.managed[n] = true
	}
}

func (a *Agent) setManaged(name string, on bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.managed[name] == on {
		return
	}
	if on {
		a.managed[name] = true
	} else {
		delete(a.managed, name)
	}
	names := model.SortedKeys(a.managed)
	sort.Strings(names)
	b, _ := json.Marshal(names)
	tmp := a.managedPath() + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err == nil {
		err = os.Rename(tmp, a.managedPath())
		if err != nil {
			a.log.Warn().Err(err).Msg("save managed domains")
		}
	}
}

func recoveryOf(st *model.State, vm string) string {
	if p := st.Status.Placements[vm]; p != nil {
		return p.RecoveryID
	}
	return ""
}

// lastQuorate is the last time this host reached a leader that could
// commit.
func (a *Agent) lastQuorate() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.quorateAt
}
