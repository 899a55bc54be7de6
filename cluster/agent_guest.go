package cluster

import (
	"context"
	"time"

	"github.com/vmha/vmha/cluster/decide"
	"github.com/vmha/vmha/cluster/reconcile"
	"github.com/vmha/vmha/clusterspec"
	"github.com/vmha/vmha/hypervisor"
	"github.com/vmha/vmha/model"
)

// guestHealth is what this agent saw of one monitored guest (guest-monitor
// crash or heartbeat, docs/guest-health.md): its failures here, for the
// restart window, and its heartbeats.
type guestHealth struct {
	faults []time.Time
	why    string
	// open: the last failure is not over (the domain has not run again
	// since), so seeing it again is not a new one.
	open bool
	// failed: the domain must be destroyed before it starts again.
	failed bool
	// gaveUp is the reason the guest is not restarted any more ("": it is).
	gaveUp string
	// counted: the leader's fail count holds the last failure. Once it
	// does, a fail count gone (vmha vm cleanup) is a fresh budget.
	counted bool
	// destroyedAt is when the agent last destroyed the failed domain to
	// restart it: a hypervisor event from before then is of that failure,
	// read late (the agent reads events between passes, and a crash with
	// <on_crash>destroy</on_crash> sends two), not a new one.
	destroyedAt time.Time
	// Heartbeats: the last answered ping, the last ping, and when the
	// domain was first seen running (the grace for a booting guest).
	lastOK, lastPing, runningSince time.Time
	// pinging: a ping is under way (they run beside the passes).
	pinging bool
}

// guestFault notes a failure of vm's guest (a.mu held): a new one unless
// the last is still open.
func (a *Agent) guestFault(vm, why string, at time.Time, failed bool) {
	if a.guests == nil {
		a.guests = map[string]*guestHealth{}
	}
	g := a.guests[vm]
	if g == nil {
		g = &guestHealth{}
		a.guests[vm] = g
	}
	g.failed = g.failed || failed
	if g.open {
		return
	}
	g.open, g.why, g.counted = true, why, false
	g.faults = append(g.faults, at)
	if len(g.faults) > 64 {
		g.faults = g.faults[len(g.faults)-64:]
	}
	a.log.Warn().Str("vm", vm).Str("fault", why).Int("faults", len(g.faults)).Msg("guest failed")
}

// guestEvent takes the hypervisor's word for a crash or a watchdog.
func (a *Agent) guestEvent(ev hypervisor.Event) {
	if ev.Detail != "crashed" && ev.Detail != "watchdog" {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if g := a.guests[ev.Domain]; g != nil && !ev.Time.After(g.destroyedAt) {
		return // the failure already handled
	}
	why := ev.Detail
	if why == "crashed" {
		why = "guest crashed"
	} else {
		why = "watchdog fired"
	}
	a.guestFault(ev.Domain, why, ev.Time.UTC(), !ev.State.Active())
}

// guestInput fills in.Guests: it looks at the domains placed here whose
// guest is monitored (crashed state, missed heartbeats) and hands the
// failures to the pure pass.
func (a *Agent) guestInput(ctx context.Context, st *model.State, doms map[string]hypervisor.Domain, in *reconcile.Input) {
	rules := a.n.compiledRules(st.Config.Rules)
	now := in.Now
	pinger, _ := a.n.hv.(hypervisor.GuestPinger)
	type ping struct {
		vm      string
		timeout time.Duration
	}
	var pings []ping
	a.mu.Lock()
	in.Guests = map[string]reconcile.Guest{}
	for name, d := range in.Desired {
		if d.Host != in.Host || d.MigrateFrom != "" || d.Hold {
			delete(a.guests, name)
			continue
		}
		pol := decide.GuestPolicyOf(rules, name)
		if pol.Monitor == clusterspec.GuestMonitorOff {
			delete(a.guests, name)
			continue
		}
		dom, defined := doms[name]
		g := a.guests[name]
		if g != nil && len(g.faults) > 0 {
			guestCleanup(g, st.Status.Failures[name][in.Host])
		}
		switch {
		case defined && dom.Crashed:
			a.guestFault(name, "guest crashed", now.UTC(), true)
		case defined && dom.State.Active():
			if a.guestRunning(name, pol, now, pinger != nil) {
				pings = append(pings, ping{name, pol.HeartbeatTimeout})
			}
		default:
			if g != nil {
				g.runningSince = time.Time{}
			}
		}
		if g = a.guests[name]; g != nil && len(g.faults) > 0 {
			in.Guests[name] = reconcile.Guest{Policy: pol, Faults: append([]time.Time(nil), g.faults...), Failed: g.failed, Why: g.why}
		}
	}
	for name := range a.guests {
		if _, ok := in.Desired[name]; !ok {
			delete(a.guests, name)
		}
	}
	a.mu.Unlock()
	// Pings run beside the pass, one at a time per guest: a silent guest
	// agent makes libvirt wait (about 5 s for its guest-sync, whatever the
	// timeout), which must not hold up this pass's starts and stops of
	// other VMs. Their answers count at the next pass.
	for _, p := range pings {
		go a.guestPing(context.WithoutCancel(ctx), pinger, p.vm, min(p.timeout/4, 5*time.Second))
	}
}

// guestPing pings vm's guest agent and notes the answer (the ping was
// marked under way by guestRunning).
func (a *Agent) guestPing(ctx context.Context, pinger hypervisor.GuestPinger, vm string, timeout time.Duration) {
	err := pinger.GuestPing(ctx, vm, timeout)
	a.mu.Lock()
	if g := a.guests[vm]; g != nil {
		g.pinging = false
		g.lastPing = time.Now()
		if err == nil {
			g.lastOK = g.lastPing
		}
	}
	a.mu.Unlock()
	if err != nil {
		a.log.Debug().Err(err).Str("vm", vm).Msg("guest heartbeat missed")
	}
}

// guestRunning notes that vm's domain runs (a.mu held): a failure it
// was in is over, and in heartbeat mode a guest that stayed silent too long
// is hung. It returns true when the guest is due a ping.
func (a *Agent) guestRunning(name string, pol clusterspec.GuestPolicy, now time.Time, canPing bool) bool {
	g := a.guests[name]
	if g != nil && g.open && !g.failed {
		g.open = false // a watchdog reset: running again
	}
	if g != nil && g.open && g.failed && !g.runningSince.IsZero() {
		g.open, g.failed = false, false // restarted
	}
	if g == nil {
		g = &guestHealth{}
		if a.guests == nil {
			a.guests = map[string]*guestHealth{}
		}
		a.guests[name] = g
	}
	if g.runningSince.IsZero() {
		g.runningSince = now
	}
	if pol.Monitor != clusterspec.GuestMonitorHeartbeat || !canPing || g.open {
		return false
	}
	// Until its first answer since it started, a guest is booting: it
	// gets guest-heartbeat-startup; after that, guest-heartbeat-timeout
	// from its last answer.
	since, limit := g.runningSince, max(pol.HeartbeatStartup, pol.HeartbeatTimeout)
	if g.lastOK.After(since) {
		since, limit = g.lastOK, pol.HeartbeatTimeout
	}
	if now.Sub(since) > limit {
		a.guestFault(name, "no heartbeat for "+limit.String(), now.UTC(), true)
		return false
	}
	if g.pinging || now.Sub(g.lastPing) < min(pol.HeartbeatTimeout/4, 10*time.Second) {
		return false
	}
	g.pinging = true
	return true
}

// guestCleanup gives g a fresh budget when the leader counted its last
// failure (f, the fail count on this host, holds it) and the count was then
// cleared (vmha vm cleanup): its failures here are forgotten and no longer
// reported, so they are not counted again.
func guestCleanup(g *guestHealth, f *model.Failure) {
	switch {
	case f != nil && !f.Last.Before(g.faults[len(g.faults)-1]):
		g.counted = true
	case f == nil && g.counted:
		g.faults, g.gaveUp, g.counted = nil, "", false
	}
}

// guestDestroyed notes that vm's failed guest was destroyed for its
// restart (a.mu held; destroyed false: the destroy failed). The domain no
// longer needs destroying, so the next pass starts it like any stopped VM
// and does not restart it again once it runs: the failure stays open until
// it is seen running, so the stale state is not counted as a new failure.
func (a *Agent) guestDestroyed(vm string, destroyed bool) {
	g := a.guests[vm]
	if g == nil {
		return
	}
	g.gaveUp, g.lastOK, g.runningSince = "", time.Time{}, time.Time{}
	if destroyed {
		g.failed, g.destroyedAt = false, time.Now()
	}
}

// guestActions carries out the pass's guest-health decisions: a failed
// guest to restart is destroyed first (it starts with the other starts); a
// guest over its restart limit that still runs (a watchdog reset it) is
// stopped, and each is reported.
func (a *Agent) guestActions(ctx context.Context, plan reconcile.Plan) {
	for _, r := range plan.Restarts {
		a.log.Warn().Str("vm", r.VM).Str("reason", r.Reason).Msg("restarting failed guest")
		err := a.n.hv.Stop(ctx, r.VM, 0)
		if err != nil {
			a.log.Error().Err(err).Str("vm", r.VM).Msg("destroy failed guest")
		}
		a.mu.Lock()
		a.guestDestroyed(r.VM, err == nil)
		a.mu.Unlock()
	}
	for _, r := range plan.GaveUp {
		a.mu.Lock()
		g := a.guests[r.VM]
		first := g != nil && g.gaveUp == ""
		if g != nil {
			g.gaveUp = r.Reason
		}
		a.mu.Unlock()
		if first {
			a.log.Error().Str("vm", r.VM).Str("reason", r.Reason).Msg("guest not restarted")
		}
		if r.Active {
			if err := a.n.hv.Stop(ctx, r.VM, 0); err != nil {
				a.log.Error().Err(err).Str("vm", r.VM).Msg("stop guest over its restart limit")
			}
		}
	}
}

// guestReport adds the guest failures to the report (a.mu held): each is
// a failure of the VM on this host (FailedAt, counted once by the leader,
// so migration-threshold applies), and a guest given up on says why.
func (a *Agent) guestReport(vms map[string]model.VMObserve) {
	for name, g := range a.guests {
		o, ok := vms[name]
		if !ok || len(g.faults) == 0 {
			continue
		}
		if last := g.faults[len(g.faults)-1]; last.After(o.FailedAt) {
			o.FailedAt = last
			if o.Error == "" {
				o.Error = g.why
			}
		}
		if g.gaveUp != "" {
			o.Error = g.gaveUp
		}
		vms[name] = o
	}
}
