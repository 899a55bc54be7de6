package decide

import (
	"fmt"
	"strings"
	"time"

	"github.com/vmha/vmha/cluster/command"
	"github.com/vmha/vmha/model"
)

// ActionReboot is the fence action an operator's reboot request keeps on
// retries.
const ActionReboot = "reboot"

// fenceActionOf is the action a retried fence uses: an operator's reboot
// request stays a reboot; everything else uses the host's own action.
func fenceActionOf(hs *model.HostStatus) string {
	if strings.HasSuffix(hs.FenceRequestedBy, "+"+ActionReboot) {
		return ActionReboot
	}
	return ""
}

// markSeen records, in one command, the hosts gossip reports alive for the
// first time since they registered.
func (b *builder) markSeen() {
	st := b.v.State
	var names []string
	for _, name := range model.SortedKeys(st.Config.Hosts) {
		if b.v.Members.Alive(name) && !seenAlive(st.Status.Hosts[name]) {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return
	}
	b.commit(&command.Command{Op: command.OpHostSeen, Names: names},
		note(Info, "registered hosts seen alive in gossip: their fence devices are checked from now on", "hosts", names))
}

// host decides one host's lifecycle: lost when gossip says failed (and its
// API does not answer), fenced (by a device, or by its own watchdog once
// the bound passed), alive again when it returns.
func (b *builder) host(mem *Memory, name string) {
	st := b.v.State
	hs := st.Status.Hosts[name]
	state := hostState(st, name)
	m, seen := b.v.Members[name]
	alive := seen && m.Status == MemberAlive
	failed := seen && m.Status == MemberFailed
	unseenTooLong := !seen && b.now().Sub(mem.LeaderSince) > b.v.Settings.UnseenGrace

	if h := st.Config.Hosts[name]; h != nil && h.Witness {
		// A witness holds no VMs: losing it costs a vote, not a fence.
		switch {
		case state == model.HostAlive && (failed || unseenTooLong):
			b.setHostState(name, model.HostLost, "witness unreachable: one vote fewer; nothing to fence or recover")
		case state != model.HostAlive && alive:
			b.setHostState(name, model.HostAlive, "witness back")
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
		b.aliveHost(mem, name, hs, failed, unseenTooLong, seen, m)
	case model.HostLost, model.HostFenceFailed:
		if alive && hs.FenceRequestedBy == "" {
			// It came back before any fence succeeded: its VMs never
			// left it, so nothing can run twice. (An operator's fence
			// request goes on: the operator wants the host off.)
			b.log(note(Info, "host rejoined before it was fenced; recovery cancelled", "recovery_id", hs.RecoveryID, "host", name))
			b.setHostState(name, model.HostAlive, "rejoined before fencing")
			return
		}
		if b.selfFenced(name) || mem.Fencing[name] {
			return
		}
		if !seenAlive(hs) && hs.FenceRequestedBy == "" {
			return // never seen alive, and no operator asked (see aliveHost)
		}
		if state == model.HostFenceFailed && b.now().Sub(mem.FailedAt[name]) < b.v.Settings.FenceRetry {
			return
		}
		b.fence(name, hs.RecoveryID, fenceActionOf(hs))
	case model.HostFenced:
		if alive && (hs.Unfenced || hs.LostBoot == "" || m.Tags[TagBoot] != hs.LostBoot) {
			b.setHostState(name, model.HostAlive, "rejoined after fencing")
			b.log(note(Info, "fenced host rejoined; it can take VMs again", "host", name))
		}
	}
}

// aliveHost marks an alive host lost and fences it when gossip declared it
// failed (or it never showed up under this leader) and its API does not
// answer either.
func (b *builder) aliveHost(mem *Memory, name string, hs *model.HostStatus, failed, unseenTooLong, seen bool, m Member) {
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
	// A second opinion before fencing: gossip lags (right after a
	// partition heals it takes seconds to merge again, and a new leader
	// would otherwise fence healthy hosts it can reach). A dead vmhad
	// refuses at once, a host cut off or powered off times out.
	p, asked := mem.Probes[name]
	if !asked || b.now().Sub(p.At) >= ProbeFresh || p.At.Before(mem.LeaderSince) {
		b.probe(name)
		return
	}
	if p.OK {
		return // answers its API: not lost; look again on the next pass
	}
	reason := "gossip declared the host failed"
	if !seen {
		reason = fmt.Sprintf("not seen in gossip %v after this leader took over", b.v.Settings.UnseenGrace)
	}
	rid := b.v.NewID("rcv-")
	if b.commit(&command.Command{Op: command.OpHostState, HostState: &command.HostStateChange{
		Host: name, State: model.HostLost, Reason: reason, RecoveryID: rid, Boot: m.Tags[TagBoot],
	}}, note(Warn, "host lost; fencing before recovery", "recovery_id", rid, "host", name, "reason", reason)) {
		b.fence(name, rid, "")
	}
}

func (b *builder) setHostState(host string, s model.HostState, reason string) {
	b.commit(&command.Command{Op: command.OpHostState, HostState: &command.HostStateChange{Host: host, State: s, Reason: reason}},
		note(Info, "host state", "host", host, "state", string(s), "reason", reason))
}

// WatchdogMargin is what the majority adds to a lost host's watchdog bound
// (model.WatchdogWait): the host's petting period, gossip's detection
// skew, and scheduling on a busy host.
func WatchdogMargin(h *model.Host, agentInterval time.Duration) time.Duration {
	return h.Watchdog/4 + 2*agentInterval + time.Second
}

// WatchdogDue reports when a lost host with a watchdog counts as reset by
// it, or zero when it has none.
func WatchdogDue(h *model.Host, hs *model.HostStatus, agentInterval time.Duration) time.Time {
	if h == nil || h.Watchdog <= 0 || hs == nil || hs.LostAt.IsZero() {
		return time.Time{}
	}
	return hs.LostAt.Add(model.WatchdogWait(h.Watchdog, WatchdogMargin(h, agentInterval)))
}

// selfFenced records a lost host as fenced by its own watchdog once the
// bound has passed, with the same record an operator's confirmation makes
// (level 0, device "watchdog"). Fence devices keep priority: this runs only
// while no device has succeeded, and never for a host that still gossips
// or still writes its storage heartbeat.
func (b *builder) selfFenced(name string) bool {
	st := b.v.State
	h, hs := st.Config.Hosts[name], st.Status.Hosts[name]
	due := WatchdogDue(h, hs, b.v.Settings.AgentInterval)
	if due.IsZero() || b.now().Before(due) {
		return false
	}
	if bt := b.v.Beats[name]; bt.Writing {
		b.log(standing(Error, "watchdog bound passed but the host still writes its storage heartbeat; not counting it as reset", "host", name, "fs", bt.FS))
		return false
	}
	now := b.now().UTC()
	rec := model.FenceRecord{Host: name, Level: 0, Device: "watchdog", Action: "self-reset", RecoveryID: hs.RecoveryID,
		Requester: fmt.Sprintf("watchdog bound: lost at %s + %s", hs.LostAt.Format(time.TimeOnly), due.Sub(hs.LostAt).Round(time.Second)), Started: now, OK: true}
	return b.commit(&command.Command{Op: command.OpFenceConfirm, Fence: &rec, HostState: &command.HostStateChange{
		Host: name, Reason: fmt.Sprintf("reset by its own watchdog (timeout %s): cut off from the quorum since at least %s", h.Watchdog, hs.LostAt.Format(time.TimeOnly)), RecoveryID: hs.RecoveryID,
	}}, note(Warn, "host counted as reset by its watchdog; recovering its VMs", "recovery_id", hs.RecoveryID, "host", name, "watchdog", h.Watchdog))
}

// WaitVerdict is the wait_for_all decision on one state: the hosts not
// alive in gossip, the boot ids of those that are, and why the wait is
// over: "all" (every host of the cluster alive at once), the name of
// another host still running the boot recorded when the cluster was last
// whole (it formed and was not cold started since), or "" (still waiting).
func WaitVerdict(st *model.State, members Members, self string) (missing []string, boots map[string]string, over string) {
	boots = map[string]string{}
	for _, h := range append(model.SortedKeys(st.Config.Hosts), model.SortedKeys(st.Config.Expected)...) {
		if !members.Alive(h) {
			missing = append(missing, h)
			continue
		}
		boots[h] = members[h].Tags[TagBoot]
	}
	if len(missing) == 0 {
		return nil, boots, "all"
	}
	for _, h := range model.SortedKeys(st.Status.Formed) {
		boot := st.Status.Formed[h]
		if h != self && members.Alive(h) && boot != "" && members[h].Tags[TagBoot] == boot {
			return missing, boots, h
		}
	}
	return missing, boots, ""
}

// waitForAll decides quorum.wait_for_all: true while the pass must decide
// nothing else (every host not yet seen at once).
func (b *builder) waitForAll(mem *Memory) bool {
	if !b.v.Settings.WaitForAll || mem.WaitOver {
		return false
	}
	missing, boots, over := WaitVerdict(b.v.State, b.v.Members, b.v.Self)
	switch {
	case over == "all":
		if len(boots) > 0 && !b.commit(&command.Command{Op: command.OpFormed, Formed: boots},
			note(Info, "wait_for_all over: every host seen at once")) {
			return true
		}
		b.plan.WaitOver = true
		return false
	case over != "":
		b.plan.WaitOver = true
		b.log(note(Info, "wait_for_all over: the cluster formed and has not been cold started since", "still_up_since_formed", over))
		return false
	}
	b.plan.Waiting = missing
	return true
}

// expirePins drops the pins whose time has passed, so that vmha pins and
// the state show only the ones that still count (placement already
// ignores an expired pin).
func (b *builder) expirePins() {
	st := b.v.State
	var gone []string
	for _, vm := range model.SortedKeys(st.Status.Pins) {
		if !st.Status.Pins[vm].Active(b.now()) {
			gone = append(gone, vm)
		}
	}
	if len(gone) > 0 {
		b.commit(&command.Command{Op: command.OpPin}, note(Info, "pins expired", "vms", gone))
	}
}
