package cluster

import (
	"fmt"
	"time"

	"github.com/vmha/vmha/model"
)

// watchdogMargin is what the majority adds to a lost host's watchdog bound
// (model.WatchdogWait): the host's petting period, gossip's detection
// skew, and scheduling on a busy host.
func (c *Coordinator) watchdogMargin(h *model.Host) time.Duration {
	return h.Watchdog/4 + 2*c.n.cfg.Agent.Interval + time.Second
}

// watchdogDue reports when a lost host with a watchdog counts as reset by
// it, or zero when it has none.
func (c *Coordinator) watchdogDue(h *model.Host, hs *model.HostStatus) time.Time {
	if h == nil || h.Watchdog <= 0 || hs == nil || hs.LostAt.IsZero() {
		return time.Time{}
	}
	return hs.LostAt.Add(model.WatchdogWait(h.Watchdog, c.watchdogMargin(h)))
}

// selfFenced records a lost host as fenced by its own watchdog once the
// bound has passed, with the same record an operator's confirmation makes
// (level 0, device "watchdog"). Fence devices keep priority: this runs only
// while no device has succeeded, and never for a host that still gossips
// or still writes its storage heartbeat.
func (c *Coordinator) selfFenced(st *model.State, name string) bool {
	h, hs := st.Config.Hosts[name], st.Status.Hosts[name]
	due := c.watchdogDue(h, hs)
	if due.IsZero() || time.Now().Before(due) {
		return false
	}
	if err := c.heartbeatVeto(name); err != nil {
		c.log.Error().Err(err).Str("host", name).Msg("watchdog bound passed but the host still writes its storage heartbeat; not counting it as reset")
		return false
	}
	now := time.Now().UTC()
	rec := model.FenceRecord{Host: name, Level: 0, Device: "watchdog", Action: "self-reset", RecoveryID: hs.RecoveryID,
		Requester: fmt.Sprintf("watchdog bound: lost at %s + %s", hs.LostAt.Format(time.TimeOnly), due.Sub(hs.LostAt).Round(time.Second)), Started: now, OK: true}
	err := c.n.propose(&Command{Op: OpFenceConfirm, Fence: &rec, HostState: &HostStateChange{
		Host: name, Reason: fmt.Sprintf("reset by its own watchdog (timeout %s): cut off from the quorum since at least %s", h.Watchdog, hs.LostAt.Format(time.TimeOnly)), RecoveryID: hs.RecoveryID,
	}})
	if err != nil {
		c.log.Error().Err(err).Str("host", name).Msg("record the watchdog reset")
		return false
	}
	c.log.Warn().Str("recovery_id", hs.RecoveryID).Str("host", name).Dur("watchdog", h.Watchdog).Msg("host counted as reset by its watchdog; recovering its VMs")
	c.poke()
	return true
}
