package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
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
)

// FencerFactory turns a replicated fence device into something that can
// power a host off. vmhad wires fencing/ipmi into it.
type FencerFactory func(dev *model.FenceDevice) (fencing.Device, error)

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
	leaderAt time.Time
	wake     chan struct{}
	// recovered remembers which recovered placements (vm/generation) were
	// already counted in the recovery metric.
	recovered map[string]bool
	// checks holds the last status check of each host's fence device.
	// It is the leader's own knowledge, not replicated: a new leader
	// checks every device again at once.
	checks map[string]api.FenceCheck
}

func newCoordinator(n *Node) *Coordinator {
	return &Coordinator{
		n: n, log: n.log.With().Str("component", "coordinator").Logger(),
		fencing: map[string]bool{}, failedAt: map[string]time.Time{}, wake: make(chan struct{}, 1),
		checks: map[string]api.FenceCheck{}, recovered: map[string]bool{},
	}
}

func (c *Coordinator) poke() {
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
			c.checks = map[string]api.FenceCheck{}
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
	for _, name := range model.SortedKeys(st.Config.Hosts) {
		c.hostStep(ctx, st, name, members)
	}
	// Re-read: host states may just have changed.
	c.place(c.n.fsm.Copy(), c.n.members())
}

// addVoters makes every alive host that gossips a raft address a voter.
func (c *Coordinator) addVoters() {
	f := c.n.raft.GetConfiguration()
	if f.Error() != nil {
		return
	}
	have := map[raft.ServerID]bool{}
	for _, s := range f.Configuration().Servers {
		have[s.ID] = true
	}
	for _, m := range c.n.serf.Members() {
		if m.Status != serf.StatusAlive || m.Tags[tagRaft] == "" || have[raft.ServerID(m.Name)] {
			continue
		}
		if err := c.n.raft.AddVoter(raft.ServerID(m.Name), raft.ServerAddress(m.Tags[tagRaft]), 0, applyTimeout).Error(); err != nil {
			c.log.Warn().Err(err).Str("host", m.Name).Msg("add raft voter")
			continue
		}
		c.log.Info().Str("host", m.Name).Msg("added raft voter")
	}
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

	switch state {
	case model.HostAlive:
		if !failed && !unseenTooLong {
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
		if busy {
			return
		}
		if state == model.HostFenceFailed && time.Since(lastFail) < c.n.cfg.Fencing.RetryInterval {
			return
		}
		c.startFence(ctx, name, hs.RecoveryID, fenceActionOf(hs))
	case model.HostFenced:
		if alive && (hs.LostBoot == "" || m.Tags[tagBoot] != hs.LostBoot) {
			c.log.Info().Str("host", name).Msg("fenced host rejoined; it can take VMs again")
			_ = c.setHostState(name, model.HostAlive, "rejoined after fencing", "")
		}
	}
}

func (c *Coordinator) setHostState(host string, s model.HostState, reason, rid string) error {
	return c.n.propose(&Command{Op: OpHostState, HostState: &HostStateChange{Host: host, State: s, Reason: reason, RecoveryID: rid}})
}

// Fence actions.
const (
	ActionOff    = "off"
	ActionReboot = "reboot"
)

// fenceActionOf is the action a retried fence uses: an operator's reboot
// request stays a reboot; everything else powers off.
func fenceActionOf(hs *model.HostStatus) string {
	if strings.HasSuffix(hs.FenceRequestedBy, "+"+ActionReboot) {
		return ActionReboot
	}
	return ActionOff
}

// claim marks a fence of host as running; false if one already runs.
func (c *Coordinator) claim(host string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fencing[host] {
		return false
	}
	c.fencing[host] = true
	return true
}

func (c *Coordinator) release(host string) {
	c.mu.Lock()
	delete(c.fencing, host)
	c.mu.Unlock()
	c.poke()
}

func (c *Coordinator) startFence(ctx context.Context, host, rid, action string) {
	if !c.claim(host) {
		return
	}
	go func() {
		defer c.release(host)
		_, _ = c.fence(ctx, host, rid, action, c.n.cfg.NodeName)
	}()
}

// errFenceBusy is returned to an operator whose fence request meets one
// already running for the same host.
var errFenceBusy = errors.New("a fence of this host is already running")

// device builds the fence device of host from the replicated config.
func (c *Coordinator) device(host string) (fencing.Device, error) {
	var dev *model.FenceDevice
	c.n.fsm.Read(func(s *model.State) {
		if d := s.Config.FenceDevices[host]; d != nil {
			cp := *d
			dev = &cp
		}
	})
	if dev == nil {
		return nil, errNoFenceDevice
	}
	d, err := c.n.fencer(dev)
	if err != nil {
		return nil, fmt.Errorf("fence device: %w", err)
	}
	return d, nil
}

var errNoFenceDevice = errors.New("no fence device is configured for the host")

// fence powers the host off through its device (and on again for a
// reboot), records the outcome in the fence history and moves the host to
// fenced or fence-failed. Recovery of the host's VMs waits for the fenced
// state: a failed fence leaves them blocked, loudly, and is retried.
func (c *Coordinator) fence(ctx context.Context, host, rid, action, requester string) (model.FenceRecord, error) {
	log := c.log.With().Str("recovery_id", rid).Str("host", host).Str("action", action).Logger()
	rec := model.FenceRecord{RecoveryID: rid, Host: host, Level: 1, Action: action, Requester: requester}
	fail := func(reason string) {
		c.mu.Lock()
		c.failedAt[host] = time.Now()
		c.mu.Unlock()
		log.Error().Str("reason", reason).Msg("fencing failed; recovery of the host's VMs stays blocked")
		if err := c.setHostState(host, model.HostFenceFailed, reason, rid); err != nil {
			log.Error().Err(err).Msg("record fence failure")
		}
	}
	if host == c.n.cfg.NodeName {
		// The leader is never the one that fences itself: its own loss
		// is handled by the next leader.
		err := fmt.Errorf("host %s is this cluster's leader and does not fence itself", host)
		return rec, err
	}
	d, err := c.device(host)
	if err != nil {
		fail(err.Error())
		return rec, err
	}
	rec.Device = d.Name()
	log.Info().Str("device", d.Name()).Msg("fencing: power off")
	started := time.Now()
	res, ferr := fencing.Fence(ctx, d, c.n.fenceOptions())
	if ferr == nil && action == ActionReboot {
		cctx, cancel := context.WithTimeout(ctx, c.n.cfg.Fencing.CallTimeout)
		if err := d.PowerOn(cctx); err != nil {
			// The host is off, which is what safety needs; say that it
			// did not come back.
			log.Warn().Err(err).Msg("reboot: power on after the verified off failed; the host stays off")
		}
		cancel()
	}
	if ctx.Err() != nil {
		// Leadership ended mid-fence; the next leader fences again.
		return rec, fmt.Errorf("fence of %s interrupted: %w", host, ctx.Err())
	}
	rec.Started, rec.Duration, rec.OK = started.UTC(), time.Since(started), ferr == nil
	c.n.metrics.fences.WithLabelValues(action, result(ferr)).Inc()
	c.n.metrics.fenceSeconds.WithLabelValues(result(ferr)).Observe(rec.Duration.Seconds())
	if ferr != nil {
		rec.Error = ferr.Error()
	}
	if err := c.n.propose(&Command{Op: OpFenceRecord, Fence: &rec}); err != nil {
		log.Error().Err(err).Msg("record fence history")
	}
	if ferr != nil {
		fail(ferr.Error())
		return rec, ferr
	}
	log.Info().Dur("duration", rec.Duration).Bool("already_off", res.AlreadyOff).Msg("host fenced; recovering its VMs")
	if err := c.setHostState(host, model.HostFenced, "powered off by "+d.Name(), rid); err != nil {
		log.Error().Err(err).Msg("record host fenced")
	}
	return rec, nil
}

// ManualFence is `vmha fence HOST`: the host is marked lost at once (so
// nothing new is placed on it and its VMs wait for the fence), then fenced;
// on success its VMs are recovered like those of a failed host.
func (c *Coordinator) ManualFence(ctx context.Context, host, action, requester string) (model.FenceRecord, error) {
	if action != ActionOff && action != ActionReboot {
		return model.FenceRecord{}, &ValidationError{Field: "action", Err: fmt.Errorf("%q: want off or reboot", action)}
	}
	if host == c.n.cfg.NodeName {
		return model.FenceRecord{}, &ConflictError{What: fmt.Sprintf("host %s is the leader, and a host never fences itself: move the leadership first (stop vmhad on %s cleanly) or fence it from its BMC", host, host)}
	}
	if !c.claim(host) {
		return model.FenceRecord{}, &ConflictError{What: errFenceBusy.Error()}
	}
	defer c.release(host)
	var state model.HostState
	var rid string
	known := false
	c.n.fsm.Read(func(s *model.State) {
		if _, ok := s.Config.Hosts[host]; ok {
			known = true
			state = model.HostAlive
			if hs := s.Status.Hosts[host]; hs != nil {
				state, rid = hs.State, hs.RecoveryID
			}
		}
	})
	if !known {
		return model.FenceRecord{}, &NotFoundError{Kind: "host", Name: host}
	}
	if state == model.HostAlive || state == model.HostFenced {
		rid = newRecoveryID()
		reason := "fence requested by " + requester
		c.log.Warn().Str("recovery_id", rid).Str("host", host).Str("requested_by", requester).Str("action", action).Msg("operator fence: host marked lost")
		if err := c.n.propose(&Command{Op: OpHostState, HostState: &HostStateChange{
			Host: host, State: model.HostLost, Reason: reason, RecoveryID: rid, RequestedBy: requester + "+" + action,
			Boot: c.n.members()[host].Tags[tagBoot],
		}}); err != nil {
			return model.FenceRecord{}, err
		}
	}
	return c.fence(ctx, host, rid, action, requester)
}

// ConfirmFenced is `vmha fence confirm HOST`: the operator states that a
// lost host is down (power pulled, BMC dead with the rack). It is recorded
// in the fence history, and the host's VMs are recovered.
func (c *Coordinator) ConfirmFenced(host, requester string) (model.FenceRecord, error) {
	if m, ok := c.n.members()[host]; ok && m.Status == serf.StatusAlive {
		return model.FenceRecord{}, &ConflictError{What: fmt.Sprintf("host %s is alive in gossip: it is not down, so it cannot be confirmed fenced", host)}
	}
	now := time.Now().UTC()
	rec := model.FenceRecord{Host: host, Level: 0, Device: "operator", Action: "confirm", Requester: requester, Started: now, OK: true}
	var rid string
	c.n.fsm.Read(func(s *model.State) {
		if hs := s.Status.Hosts[host]; hs != nil {
			rid = hs.RecoveryID
		}
	})
	rec.RecoveryID = rid
	err := c.n.propose(&Command{Op: OpFenceConfirm, Fence: &rec, HostState: &HostStateChange{
		Host: host, Reason: "confirmed down by " + requester, RecoveryID: rid,
	}})
	if err != nil {
		return rec, err
	}
	c.log.Warn().Str("recovery_id", rid).Str("host", host).Str("requested_by", requester).Msg("operator confirmed the host down; recovering its VMs")
	c.poke()
	return rec, nil
}

// checkLoop asks every host's fence device for its power status, at once
// and then every fencing.check_interval, while this host leads. A device
// that fails shows in vmha status before it is needed in an incident.
func (c *Coordinator) checkLoop(ctx context.Context) {
	for {
		var hosts []string
		c.n.fsm.Read(func(s *model.State) { hosts = model.SortedKeys(s.Config.FenceDevices) })
		for _, h := range hosts {
			if ctx.Err() != nil {
				return
			}
			chk, _ := c.CheckDevice(ctx, h)
			if !chk.OK {
				c.log.Warn().Str("host", h).Str("error", chk.Error).Msg("fence device check failed")
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(c.n.cfg.Fencing.CheckInterval):
		}
	}
}

// CheckDevice reads the power status of host's fence device once and
// remembers the answer for vmha status.
func (c *Coordinator) CheckDevice(ctx context.Context, host string) (api.FenceCheck, string) {
	chk := api.FenceCheck{At: time.Now().UTC(), Power: string(fencing.PowerUnknown)}
	name := ""
	d, err := c.device(host)
	if err == nil {
		name = d.Name()
		cctx, cancel := context.WithTimeout(ctx, c.n.cfg.Fencing.CallTimeout)
		var ps fencing.PowerState
		ps, err = d.Status(cctx)
		cancel()
		if err == nil {
			chk.Power = string(ps)
		}
	}
	chk.Duration = time.Since(chk.At)
	chk.OK = err == nil
	c.n.metrics.deviceChecks.WithLabelValues(host, result(err)).Inc()
	if err != nil {
		chk.Error = err.Error()
	}
	c.mu.Lock()
	c.checks[host] = chk
	c.mu.Unlock()
	return chk, name
}

// Checks returns a copy of the last device checks.
func (c *Coordinator) Checks() map[string]api.FenceCheck {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]api.FenceCheck, len(c.checks))
	for k, v := range c.checks {
		out[k] = v
	}
	return out
}

// TestDevice is `vmha fence test HOST`: a status check, and with
// powerCycle a verified off then on, refused while the host has VMs.
func (c *Coordinator) TestDevice(ctx context.Context, host string, powerCycle bool, requester string) (api.FenceTestResult, error) {
	res := api.FenceTestResult{Host: host}
	var placed []string
	known := false
	c.n.fsm.Read(func(s *model.State) {
		_, known = s.Config.Hosts[host]
		for _, vm := range model.SortedKeys(s.Status.Placements) {
			if s.Status.Placements[vm].Host == host {
				placed = append(placed, vm)
			}
		}
	})
	if !known {
		return res, &NotFoundError{Kind: "host", Name: host}
	}
	if powerCycle {
		if host == c.n.cfg.NodeName {
			return res, &ConflictError{What: fmt.Sprintf("host %s is the leader, and a host never power-cycles itself", host)}
		}
		if len(placed) > 0 {
			return res, &ConflictError{What: fmt.Sprintf("host %s has VMs placed on it (%s): a power cycle would kill them; move them first", host, strings.Join(placed, ", "))}
		}
	}
	res.Check, res.Device = c.CheckDevice(ctx, host)
	if !res.Check.OK || !powerCycle {
		return res, nil
	}
	// A power cycle is a reboot fence: the host is marked lost first so
	// that the coordinator does not take the gap in its gossip for a
	// failure and power it off again, and it rejoins when it is back.
	rec, err := c.ManualFence(ctx, host, ActionReboot, requester)
	res.Cycled = err == nil && rec.OK
	return res, err
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
	snap := Snapshot(st, members)
	var ps []model.Placement
	t0 := time.Now()
	plan := placement.Plan(snap)
	c.n.metrics.placeSeconds.Observe(time.Since(t0).Seconds())
	for _, d := range plan {
		if !d.Changed {
			continue
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
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if err := api.NewTCPClient(addr, 2*time.Second).Do(ctx, "POST", api.PathNudge, api.Nudge{Term: term}, nil, nil); err != nil {
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

func newRecoveryID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "rcv-" + hex.EncodeToString(b[:])
}
