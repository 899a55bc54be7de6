package decide

import (
	"time"

	"github.com/vmha/vmha/model"
)

// Until is when the decisions of a pass on v and mem may change with
// nothing but the clock: the earliest moment after v.Now at which one of
// the time-bound conditions a pass reads flips (zero: none is pending).
// Until then, a pass on the same state, gossip, heartbeats and memory
// decides the same, so a runner whose last pass decided nothing may skip
// the passes in between (issue 17: the leader's idle pass at 1,000 hosts
// and 50,000 VMs cost a quarter of a second, four times a second).
//
// It collects every clock comparison of the package, from the state
// rather than from each decision: a condition that does not apply now
// only adds an earlier wake-up, which costs one pass. TestUntilHolds
// checks it against Pass on random fault schedules.
func Until(v *View, mem *Memory) time.Time {
	u := untilAfter{now: v.Now}
	st := v.State
	s := v.Settings
	for name, h := range st.Config.Hosts {
		if _, seen := v.Members[name]; !seen {
			u.add(mem.LeaderSince.Add(s.UnseenGrace).Add(time.Nanosecond)) // hosts.go: unseenTooLong
		}
		hs := st.Status.Hosts[name]
		if hs != nil && hs.State == model.HostFenceFailed {
			u.add(mem.FailedAt[name].Add(s.FenceRetry)) // hosts.go: the retry of a failed fence
		}
		u.add(WatchdogDue(h, hs, s.AgentInterval)) // hosts.go: selfFenced
	}
	for _, p := range mem.Probes {
		u.add(p.At.Add(ProbeFresh)) // hosts.go: a probe's answer expires
	}
	for _, pin := range st.Status.Pins {
		u.add(pin.Expires) // expirePins, place: Pin.Active
	}
	if len(st.Status.Failures) > 0 {
		rules := v.Rules
		if rules == nil {
			rules, _ = CompileRules(st.Config.Rules)
		}
		for vm, byHost := range st.Status.Failures {
			if _, timeout := FailurePolicyOf(rules, vm); timeout > 0 {
				for _, f := range byHost {
					if f != nil {
						u.add(f.Last.Add(timeout)) // bannedOn, the engine's expired failures
					}
				}
			}
		}
	}
	for _, e := range st.Status.Evacuations {
		if e != nil {
			u.add(e.Deadline.Add(time.Nanosecond)) // evacuationMoves: forced after the deadline
		}
	}
	if s.Window != nil {
		// WindowOpened reads the minute of the day only.
		u.add(v.Now.Truncate(time.Minute).Add(time.Minute))
	}
	return u.at
}

// untilAfter keeps the earliest time after now.
type untilAfter struct {
	now, at time.Time
}

func (u *untilAfter) add(t time.Time) {
	if t.IsZero() || !t.After(u.now) {
		return // none, or already reached: the pass read it as it is
	}
	if u.at.IsZero() || t.Before(u.at) {
		u.at = t
	}
}

// Idle reports whether a plan decided nothing: no commit, fence, probe or
// nudge, and no note but standing ones (a condition that holds pass after
// pass, logged now and then).
func (p Plan) Idle() bool {
	for _, s := range p.Steps {
		if s.Kind != Log || s.Note == nil || !s.Note.Standing {
			return false
		}
	}
	return !p.WaitOver
}
