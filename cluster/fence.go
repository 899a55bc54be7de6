package cluster

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/cluster/decide"
	"github.com/vmha/vmha/fencing"
	"github.com/vmha/vmha/fencing/devices"
	"github.com/vmha/vmha/model"
)

// Fence actions, as operators type them.
const (
	ActionOff    = string(fencing.ActionOff)
	ActionReboot = string(fencing.ActionReboot)
)

// claim marks a fence of host as running; false if one already runs.
func (c *Coordinator) claim(host string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mem.Fencing[host] {
		return false
	}
	c.mem.Fencing[host] = true
	return true
}

func (c *Coordinator) release(host string) {
	c.mu.Lock()
	delete(c.mem.Fencing, host)
	c.mu.Unlock()
	c.poke()
}

func (c *Coordinator) startFence(ctx context.Context, host, rid, action string) {
	if !c.claim(host) {
		return
	}
	go func() {
		defer c.release(host)
		_, _ = c.fence(ctx, host, rid, action, c.n.cfg.NodeName, false)
	}()
}

// errFenceBusy is returned to an operator whose fence request meets one
// already running for the same host.
var errFenceBusy = errors.New("a fence of this host is already running")

var errNoFenceDevice = errors.New("no fence device is configured for the host")

// topology opens host's fence topology from the replicated config. The
// caller closes the set.
func (c *Coordinator) topology(host string) (fencing.Topology, *devices.Set, error) {
	var t *model.FenceTopology
	c.n.fsm.Read(func(s *model.State) {
		if ft := s.Config.Fencing[host]; ft != nil {
			cp := *ft
			t = &cp
		}
	})
	if t == nil || len(t.Levels) == 0 {
		return fencing.Topology{}, nil, errNoFenceDevice
	}
	set, err := devices.Build(SpecOf(host, t))
	if err != nil {
		return fencing.Topology{}, nil, fmt.Errorf("fence devices of %s: %w", host, err)
	}
	return set.Topologies[host], set, nil
}

// fence runs host's fence topology (levels in order, every device of a
// level verified off; on again for a reboot), records every device step in
// the fence history and moves the host to fenced or fence-failed. Recovery
// of the host's VMs waits for the fenced state: a failed fence leaves them
// blocked, loudly, and is retried. An empty action takes the host's own.
func (c *Coordinator) fence(ctx context.Context, host, rid, action, requester string, manual bool) (model.FenceRecord, error) {
	log := c.log.With().Str("recovery_id", rid).Str("host", host).Logger()
	rec := model.FenceRecord{RecoveryID: rid, Host: host, Action: action, Requester: requester}
	fail := func(reason string) {
		c.mu.Lock()
		c.mem.FailedAt[host] = time.Now()
		c.mu.Unlock()
		log.Error().Str("reason", reason).Msg("fencing failed; recovery of the host's VMs stays blocked")
		if err := c.setHostState(host, model.HostFenceFailed, reason, rid); err != nil {
			log.Error().Err(err).Msg("record fence failure")
		}
	}
	if host == c.n.cfg.NodeName {
		// The leader is never the one that fences itself: its own loss
		// is handled by the next leader.
		return rec, fmt.Errorf("host %s is this cluster's leader and does not fence itself", host)
	}
	var off *model.FencingOff
	c.n.fsm.Read(func(s *model.State) { off = s.Config.FencingOff })
	if off != nil && !manual {
		// The operator turned fencing off and acknowledged the risk:
		// recover without powering the host off, and say so in the
		// history. (An operator's own vmha fence HOST still fences.)
		now := time.Now().UTC()
		rec.Device, rec.Action, rec.Started, rec.OK = "none", "skipped", now, true
		rec.Error = "not fenced: fencing was turned off by " + off.By
		if err := c.n.propose(&Command{Op: OpFenceRecord, Fence: &rec}); err != nil {
			log.Error().Err(err).Msg("record fence history")
		}
		log.Warn().Str("fencing_off_by", off.By).Msg("fencing is off: recovering the host's VMs WITHOUT fencing it; they may run twice")
		if err := c.n.propose(&Command{Op: OpHostState, HostState: &HostStateChange{Host: host, State: model.HostFenced,
			Reason: "NOT fenced: fencing is off (turned off by " + off.By + ")", RecoveryID: rid, Unfenced: true}}); err != nil {
			log.Error().Err(err).Msg("record host released")
		}
		return rec, nil
	}
	topo, set, err := c.topology(host)
	if err != nil {
		fail(err.Error())
		return rec, err
	}
	defer func() { _ = set.Close() }()
	log.Info().Str("action", string(topo.Action)).Int("levels", len(topo.Levels)).Bool("manual", manual).Msg("fencing")
	rep, ferr := topo.Run(ctx, fencing.RunOptions{Action: fencing.Action(action), Fence: c.n.fenceOptions(), NoDelay: manual, Executor: c.n.cfg.NodeName})
	if ctx.Err() != nil {
		// Leadership ended mid-fence; the next leader fences again.
		return rec, fmt.Errorf("fence of %s interrupted: %w", host, ctx.Err())
	}
	rec.Action = string(rep.Action)
	rec.Level, rec.Device, _ = c.recordFenceSteps(rep, rid, requester)
	rec.Started, rec.Duration, rec.OK = rep.Started.UTC(), rep.Duration, ferr == nil
	c.n.metrics.countFence(ctx, rec.Action, ferr, rep.Duration)
	if ferr != nil {
		rec.Error = ferr.Error()
		fail(ferr.Error())
		return rec, ferr
	}
	if rep.Action == fencing.ActionReboot && !rep.PoweredOn {
		log.Warn().Msg("reboot: the host is off, but powering it on again failed; it stays off")
	}
	log.Info().Dur("duration", rep.Duration).Int("fence_level", rep.Level).Dur("delay", rep.Delay).Msg("host fenced; recovering its VMs")
	if err := c.setHostState(host, model.HostFenced, fmt.Sprintf("fenced (%s) at level %d by %s", rep.Action, rep.Level, rec.Device), rid); err != nil {
		log.Error().Err(err).Msg("record host fenced")
	}
	return rec, nil
}

// recordFenceSteps commits every device step of a fence run to the fence
// history and returns the level and device that fenced the host (0 and ""
// if none did). A step that cannot be committed is logged, and err is the
// first such failure.
func (c *Coordinator) recordFenceSteps(rep fencing.Report, rid, requester string) (level int, device string, err error) {
	for _, st := range rep.Steps() {
		r := model.FenceRecord{RecoveryID: rid, Host: rep.Host, Level: st.Level, Device: st.Device, Action: st.Action,
			Requester: requester, Started: st.Started.UTC(), Duration: st.Duration, OK: st.OK, Error: st.Error}
		if perr := c.n.propose(&Command{Op: OpFenceRecord, Fence: &r}); perr != nil {
			c.log.Error().Err(perr).Str("recovery_id", rid).Str("host", rep.Host).Msg("record fence history")
			if err == nil {
				err = perr
			}
		}
		if st.Level == rep.Level && st.OK {
			level, device = st.Level, st.Device
		}
	}
	return level, device, err
}

// ManualFence is `vmha fence HOST`: the host is marked lost at once (so
// nothing new is placed on it and its VMs wait for the fence), then fenced
// with no delay; on success its VMs are recovered like those of a failed
// host. An empty action takes the host's own.
func (c *Coordinator) ManualFence(ctx context.Context, host, action, requester string) (model.FenceRecord, error) {
	if action != "" {
		if _, err := fencing.ParseAction(action); err != nil {
			return model.FenceRecord{}, &ValidationError{Field: "action", Err: err}
		}
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
	// Refused before the host is marked lost: a host nothing can fence
	// would stay lost, its VMs blocked, for a request that could not work.
	if _, set, err := c.topology(host); err != nil {
		if errors.Is(err, errNoFenceDevice) {
			return model.FenceRecord{}, &ConflictError{What: fmt.Sprintf("host %s has no fence device: give it one (vmha fence devices set %s) or, if it is down, say so (vmha fence confirm %s)", host, host, host)}
		}
		return model.FenceRecord{}, &ConflictError{What: err.Error()}
	} else if set != nil {
		_ = set.Close()
	}
	if state == model.HostAlive || state == model.HostFenced {
		rid = newRecoveryID()
		c.log.Warn().Str("recovery_id", rid).Str("host", host).Str("requested_by", requester).Str("action", action).Msg("operator fence: host marked lost")
		if err := c.n.propose(&Command{Op: OpHostState, HostState: &HostStateChange{
			Host: host, State: model.HostLost, Reason: "fence requested by " + requester, RecoveryID: rid,
			RequestedBy: requester + "+" + action, Boot: c.n.members()[host].Tags[tagBoot],
		}}); err != nil {
			return model.FenceRecord{}, err
		}
	}
	return c.fence(ctx, host, rid, action, requester, true)
}

// ConfirmFenced is `vmha fence confirm HOST`: the operator states that a
// lost host is down (power pulled, BMC dead with the rack). It is recorded
// in the fence history, and the host's VMs are recovered.
func (c *Coordinator) ConfirmFenced(host, requester string) (model.FenceRecord, error) {
	if m, ok := c.n.members()[host]; ok && m.Status == decide.MemberAlive {
		return model.FenceRecord{}, &ConflictError{What: fmt.Sprintf("host %s is alive in gossip: it is not down, so it cannot be confirmed fenced", host)}
	}
	if err := c.heartbeatVeto(host); err != nil {
		return model.FenceRecord{}, err
	}
	now := time.Now().UTC()
	rec := model.FenceRecord{Host: host, Level: 0, Device: "operator", Action: "confirm", Requester: requester, Started: now, OK: true}
	c.n.fsm.Read(func(s *model.State) {
		if hs := s.Status.Hosts[host]; hs != nil {
			rec.RecoveryID = hs.RecoveryID
		}
	})
	err := c.n.propose(&Command{Op: OpFenceConfirm, Fence: &rec, HostState: &HostStateChange{
		Host: host, Reason: "confirmed down by " + requester, RecoveryID: rec.RecoveryID,
	}})
	if err != nil {
		return rec, err
	}
	c.log.Warn().Str("recovery_id", rec.RecoveryID).Str("host", host).Str("requested_by", requester).Msg("operator confirmed the host down; recovering its VMs")
	c.poke()
	return rec, nil
}

// DoubleRunRisk says plainly what turning fencing off risks.
const DoubleRunRisk = "fencing is OFF: a lost host is not powered off before its VMs start elsewhere. " +
	"A host that only lost its network (or hangs and wakes up) keeps running its VMs while they start on another host: " +
	"each such VM then runs twice and writes to the same shared disks, which corrupts them"

// canProtect refuses a VM with disks (which live on shared storage) while a
// host has no fence device that answers: if that host failed, the VM could
// not be recovered safely, or at all. An operator who turned fencing off
// (with the acknowledgement) has accepted that risk.
func (c *Coordinator) canProtect(vm *model.VM) error {
	if len(vm.Disks) == 0 {
		return nil
	}
	var hosts []string
	off := false
	c.n.fsm.Read(func(s *model.State) {
		off = s.Config.FencingOff != nil
		hosts = model.SortedKeys(s.Config.Hosts)
		for i := 0; i < len(hosts); i++ {
			if t := s.Config.Fencing[hosts[i]]; (t != nil && len(t.Levels) > 0) || s.Config.Hosts[hosts[i]].Watchdog > 0 {
				hosts = append(hosts[:i], hosts[i+1:]...)
				i--
			}
		}
	})
	if off {
		return nil
	}
	why := ""
	if len(hosts) > 0 {
		why = "no fence device is configured for " + strings.Join(hosts, ", ")
	} else {
		var dead []string
		for h, checks := range c.Checks() {
			if !fencing.Fenceable(checks) {
				dead = append(dead, h)
			}
		}
		sort.Strings(dead)
		if len(dead) > 0 {
			why = "no fence level of " + strings.Join(dead, ", ") + " answered its last check (vmha fence devices)"
		}
	}
	if why == "" {
		return nil
	}
	return &ConflictError{What: fmt.Sprintf("vm %s has disks (%s) on shared storage, and %s: if that host failed, the VM could not be recovered without risking it running twice. "+
		"Fix the fence devices, or turn fencing off knowingly with vmha fence disable --acknowledge-double-run-risk", vm.Name, strings.Join(vm.Disks, ", "), why)}
}

// checkLoop asks every fence device of every host for its power status, at
// once and then every fencing.check_interval, while this host leads. A
// device that fails shows in vmha status before it is needed.
func (c *Coordinator) checkLoop(ctx context.Context) {
	for {
		var hosts, unseen []string
		c.n.fsm.Read(func(s *model.State) { hosts, unseen = checkedHosts(s) })
		c.mu.Lock()
		for _, h := range unseen {
			delete(c.checks, h)
		}
		c.mu.Unlock()
		for _, h := range hosts {
			if ctx.Err() != nil {
				return
			}
			for _, chk := range c.CheckDevices(ctx, h) {
				if !chk.OK {
					c.log.Warn().Str("host", h).Int("fence_level", chk.Level).Str("device", chk.Device).Str("error", chk.Error).Msg("fence device check failed")
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(c.n.cfg.Fencing.CheckInterval):
		}
	}
}

// checkedHosts splits the hosts with fence devices into those the
// periodic check runs the devices of, and those it leaves alone: a host
// never seen alive since it registered is only a peer's word, and its
// devices are not run (an operator's vmha fence test HOST still runs them).
func checkedHosts(s *model.State) (hosts, unseen []string) {
	for _, h := range model.SortedKeys(s.Config.Fencing) {
		if seenAlive(s.Status.Hosts[h]) {
			hosts = append(hosts, h)
		} else {
			unseen = append(unseen, h)
		}
	}
	return hosts, unseen
}

// CheckDevices reads the power status of every device of host's topology
// once (status only) and remembers the answers for vmha status.
func (c *Coordinator) CheckDevices(ctx context.Context, host string) []fencing.DeviceCheck {
	topo, set, err := c.topology(host)
	var checks []fencing.DeviceCheck
	if err != nil {
		checks = []fencing.DeviceCheck{{Host: host, Device: "(none)", State: fencing.PowerUnknown, Error: err.Error(), Checked: time.Now()}}
	} else {
		checks = topo.Check(ctx, c.n.cfg.Fencing.CallTimeout)
		_ = set.Close()
	}
	for _, chk := range checks {
		c.n.metrics.deviceChecks.WithLabelValues(host, result(errIf(!chk.OK))).Inc()
	}
	c.mu.Lock()
	c.checks[host] = checks
	c.mu.Unlock()
	return checks
}

func errIf(b bool) error {
	if b {
		return errors.New("failed")
	}
	return nil
}

// Checks returns a copy of the last device checks, by host.
func (c *Coordinator) Checks() map[string][]fencing.DeviceCheck {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string][]fencing.DeviceCheck, len(c.checks))
	for k, v := range c.checks {
		out[k] = append([]fencing.DeviceCheck(nil), v...)
	}
	return out
}

// checkView is one device check as the API shows it.
func checkView(d fencing.DeviceCheck) api.FenceCheck {
	return api.FenceCheck{At: d.Checked.UTC(), OK: d.OK, Power: string(d.State), Error: d.Error, Duration: d.Duration}
}

// hostCheck sums up a host's device checks: OK when one level could fence
// it today; the errors of the devices that failed.
func hostCheck(checks []fencing.DeviceCheck) *api.FenceCheck {
	if len(checks) == 0 {
		return nil
	}
	v := checkView(checks[0])
	v.OK = fencing.Fenceable(checks)
	var errs []string
	for _, c := range checks {
		if !c.OK {
			errs = append(errs, fmt.Sprintf("level %d %s: %s", c.Level, c.Device, c.Error))
		}
		if c.Checked.Before(v.At) {
			v.At = c.Checked.UTC()
		}
	}
	v.Error = strings.Join(errs, "; ")
	return &v
}

// TestDevice is `vmha fence test HOST`: a status check of every device,
// and with powerCycle a verified off then on, refused while the host has
// VMs.
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
	checks := c.CheckDevices(ctx, host)
	for _, d := range checks {
		res.Devices = append(res.Devices, api.FenceDevice{Host: host, Level: d.Level, Device: d.Device, Check: ptr(checkView(d))})
	}
	if hc := hostCheck(checks); hc != nil {
		res.Check = *hc
	}
	if !res.Check.OK || !powerCycle {
		return res, nil
	}
	// A power cycle is a reboot fence: the host is marked lost first so
	// that the coordinator does not take the gap in its gossip for a
	// failure and power it off again, and it rejoins when it is back.
	rec, err := c.ManualFence(withFenceTest(ctx), host, ActionReboot, requester)
	res.Cycled = err == nil && rec.OK
	return res, err
}

func ptr[T any](v T) *T { return &v }
