package decide

import (
	"fmt"
	"sort"
	"time"

	"github.com/vmha/vmha/model"
)

// A host loss leaves a trail in the event log, every entry with the
// recovery's id: the host lost (statemachine's describeHostState), its
// fence (a fence event, ok or failed; or an operator's confirm), the host
// fenced or fence-failed, then each of its VMs placed on another host
// (recover; moved or restarted for a move the fence ended) or left
// nowhere (stop). Recoveries reads that trail back as timelines.

// RecoveryTimes are the instants of one recovery that its phases are
// measured between. Failed (the host's actual failure) is known only to
// whoever caused it (the demo's kill -9); the cluster's own record starts
// at Lost.
type RecoveryTimes struct {
	Failed, Lost, Fenced, Restarted time.Time
}

// RecoveryPhases are a recovery's durations: detect (failed → lost),
// fence (lost → fenced), restart (fenced → the last VM running) and the
// total (from the first known instant to the last VM running). A phase
// whose ends are not both known is zero and Known says so.
type RecoveryPhases struct {
	Detect, Fence, Restart, Total time.Duration
	// HasDetect, HasFence, HasRestart: the phase's ends are known.
	HasDetect, HasFence, HasRestart bool
}

// Phases measures t's phases: the one computation the demo's last line and
// GET /v1/recoveries share.
func Phases(t RecoveryTimes) RecoveryPhases {
	var p RecoveryPhases
	if !t.Failed.IsZero() && !t.Lost.IsZero() {
		p.Detect, p.HasDetect = t.Lost.Sub(t.Failed), true
	}
	if !t.Lost.IsZero() && !t.Fenced.IsZero() {
		p.Fence, p.HasFence = t.Fenced.Sub(t.Lost), true
	}
	if !t.Fenced.IsZero() && !t.Restarted.IsZero() {
		p.Restart, p.HasRestart = t.Restarted.Sub(t.Fenced), true
	}
	start := t.Failed
	if start.IsZero() {
		start = t.Lost
	}
	if !start.IsZero() && !t.Restarted.IsZero() {
		p.Total = t.Restarted.Sub(start)
	}
	return p
}

// RecoverySummary is the demo's line: "recovered 2/2 VMs from host1 in 1.0
// s (detect 0.8 s, fence 0.1 s, restart 0.0 s)"; phases not known are left
// out.
func RecoverySummary(running, lost int, host string, p RecoveryPhases) string {
	s := fmt.Sprintf("recovered %d/%d VMs from %s", running, lost, host)
	if p.HasRestart {
		s += fmt.Sprintf(" in %.1f s", p.Total.Seconds())
	}
	var parts []string
	if p.HasDetect {
		parts = append(parts, fmt.Sprintf("detect %.1f s", p.Detect.Seconds()))
	}
	if p.HasFence {
		parts = append(parts, fmt.Sprintf("fence %.1f s", p.Fence.Seconds()))
	}
	if p.HasRestart {
		parts = append(parts, fmt.Sprintf("restart %.1f s", p.Restart.Seconds()))
	}
	if len(parts) > 0 {
		s += " ("
		for i, x := range parts {
			if i > 0 {
				s += ", "
			}
			s += x
		}
		s += ")"
	}
	return s
}

// Recovery is one host loss as the event log tells it.
type Recovery struct {
	ID     string
	Host   string
	Reason string
	LostAt time.Time
	// FencedAt is when the fence was confirmed (by a device or an
	// operator); FenceFailedAt and FenceError the last failure before it.
	FencedAt      time.Time
	FencedBy      string
	FenceFailedAt time.Time
	FenceError    string
	VMs           []RecoveredVM
	Phases        RecoveryPhases
	// Running counts the VMs reported running where they were placed.
	Running int
	Summary string
}

// RecoveredVM is one VM of a lost host.
type RecoveredVM struct {
	VM string
	// Host is where it was placed ("" nowhere: Stranded says why).
	Host     string
	PlacedAt time.Time
	// RunningAt is when its new host reported it running (zero: not
	// reported, or it has moved on since).
	RunningAt time.Time
	Stranded  string
	Action    string
}

// Recoveries are the host losses whose "lost" event is still in events
// (the state's event log, oldest first), newest first, at most limit (0:
// all), each with its timeline. st gives when each VM was reported
// running on the host it was recovered to.
func Recoveries(events []model.Event, st *model.State, limit int) []Recovery {
	byID := map[string]*Recovery{}
	var order []string
	for i := range events {
		e := &events[i]
		if e.RecoveryID == "" {
			continue
		}
		r := byID[e.RecoveryID]
		if e.Kind == model.EventHost && e.Action == string(model.HostLost) {
			if r == nil {
				r = &Recovery{ID: e.RecoveryID, Host: e.Object, Reason: e.Reason, LostAt: e.At}
				byID[e.RecoveryID] = r
				order = append(order, e.RecoveryID)
			}
			continue
		}
		if r == nil {
			continue // its start has left the log
		}
		switch {
		case e.Kind == model.EventHost && e.Action == string(model.HostFenced) && e.Object == r.Host:
			if r.FencedAt.IsZero() {
				r.FencedAt = e.At
			}
		case e.Kind == model.EventHost && e.Action == string(model.HostFenceFailed) && e.Object == r.Host:
			r.FenceFailedAt = e.At
			if r.FenceError == "" {
				r.FenceError = e.Reason
			}
		case e.Kind == model.EventFence && e.Object == r.Host:
			switch {
			case e.Result == "ok" && r.FencedAt.IsZero():
				r.FencedAt, r.FencedBy = e.At, e.Reason
				if e.Action == "confirm" {
					r.FencedBy = "confirmed by " + e.Principal
				}
			case e.Result == "failed":
				r.FenceFailedAt, r.FenceError = e.At, e.Reason
			}
		case e.Kind == model.EventVM:
			recoveredVM(r, e)
		}
	}
	out := make([]Recovery, 0, len(order))
	for i := len(order) - 1; i >= 0; i-- {
		if limit > 0 && len(out) == limit {
			break
		}
		r := byID[order[i]]
		finish(r, st)
		out = append(out, *r)
	}
	return out
}

// recoveredVM records a VM event of recovery r: the last word on each VM
// wins (a VM left nowhere, then placed when a host came back).
func recoveredVM(r *Recovery, e *model.Event) {
	var vm *RecoveredVM
	for i := range r.VMs {
		if r.VMs[i].VM == e.Object {
			vm = &r.VMs[i]
		}
	}
	if vm == nil {
		r.VMs = append(r.VMs, RecoveredVM{VM: e.Object})
		vm = &r.VMs[len(r.VMs)-1]
	}
	switch e.Action {
	case "stop":
		*vm = RecoveredVM{VM: e.Object, Action: e.Action, Stranded: e.Reason}
		if vm.Stranded == "" {
			vm.Stranded = "no host can take it"
		}
	default: // recover, start, moved, restarted, move
		*vm = RecoveredVM{VM: e.Object, Action: e.Action, Host: e.Host, PlacedAt: e.At}
	}
}

// finish adds when each VM was reported running, and the phases.
func finish(r *Recovery, st *model.State) {
	sort.Slice(r.VMs, func(i, k int) bool { return r.VMs[i].VM < r.VMs[k].VM })
	var last time.Time
	all := true
	r.Running = 0
	for i := range r.VMs {
		vm := &r.VMs[i]
		if vm.Host != "" && st != nil {
			p := st.Status.Placements[vm.VM]
			if o := st.Status.Observed[vm.Host]; p != nil && p.Host == vm.Host && p.MigrateFrom == "" && o != nil {
				if ob := o.VMs[vm.VM]; ob.State == string(model.DomainRunning) && !ob.Since.IsZero() {
					vm.RunningAt = ob.Since
				}
			}
		}
		if vm.RunningAt.IsZero() {
			// A VM left nowhere was not restarted: the phase ends with
			// the last of those that were placed.
			all = all && vm.Host == ""
			continue
		}
		r.Running++
		if vm.RunningAt.After(last) {
			last = vm.RunningAt
		}
	}
	if !all {
		last = time.Time{} // the restart phase ends with the last VM running
	}
	r.Phases = Phases(RecoveryTimes{Lost: r.LostAt, Fenced: r.FencedAt, Restarted: last})
	r.Summary = RecoverySummary(r.Running, len(r.VMs), r.Host, r.Phases)
}
