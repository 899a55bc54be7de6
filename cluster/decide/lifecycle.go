package decide

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vmha/vmha/cluster/command"
	"github.com/vmha/vmha/model"
	"github.com/vmha/vmha/placement"
)

// The running cluster's failure policy when cluster.yaml sets none for a
// VM: three failures on a host keep the VM off that host (Pacemaker's
// migration-threshold) for ten minutes (failure-timeout). Pacemaker's own
// defaults (INFINITY, never expire) leave a VM that cannot start retried
// on the same host for ever, which is what an operator reported.
const (
	DefaultMigrationThreshold = 3
	DefaultFailureTimeout     = 10 * time.Minute
)

// clusterMaintenance ends the pass while the whole cluster is in
// maintenance: nothing is started, stopped, moved or fenced.
func (b *builder) clusterMaintenance() bool {
	m := b.v.State.Config.Maintenance
	if m == nil {
		return false
	}
	b.log(standing(Warn, "the cluster is in maintenance: nothing is started, stopped, moved or fenced", "by", m.By, "since", m.At.UTC().Format(time.RFC3339), "reason", m.Reason))
	return true
}

// countFailures commits each failure the agents report that is not counted
// yet: a failed define or start, by the time the agent gives it.
func (b *builder) countFailures() {
	st := b.v.State
	var out []command.FailureCount
	// Map order, then sorted: an idle pass over 50,000 reports sorts
	// nothing.
	for host, o := range st.Status.Observed {
		if _, ok := st.Config.Hosts[host]; !ok {
			continue
		}
		for vm, obs := range o.VMs {
			if obs.FailedAt.IsZero() || st.Config.VMs[vm] == nil {
				continue
			}
			if f := st.Status.Failures[vm][host]; f != nil && !obs.FailedAt.After(f.Last) {
				continue
			}
			out = append(out, command.FailureCount{VM: vm, Host: host, At: obs.FailedAt, Error: obs.Error})
		}
	}
	slices.SortFunc(out, func(a, b command.FailureCount) int {
		return cmp.Or(strings.Compare(a.VM, b.VM), strings.Compare(a.Host, b.Host))
	})
	if len(out) == 0 {
		return
	}
	if !b.commit(&command.Command{Op: command.OpFailures, Failures: out}, nil) {
		return
	}
	for _, f := range out {
		n := st.Status.Failures[f.VM][f.Host]
		b.log(note(Warn, "VM failed on host", "vm", f.VM, "host", f.Host, "count", n.Count, "error", f.Error))
	}
}

// followUnmanaged keeps an ignored (unmanaged) VM's placement where it is
// seen running, so that managing it again does not stop it there to start
// it where it was placed before an operator moved it by hand.
func (b *builder) followUnmanaged() {
	st := b.v.State
	if len(st.Config.VMStates) == 0 && b.v.rulesOrNil() == nil {
		return
	}
	rules := b.v.rulesOrNil()
	var commits []model.Placement
	for _, vm := range model.SortedKeys(st.Config.VMs) {
		if TargetOf(st, rules, vm).Target != model.TargetIgnored {
			continue
		}
		on := activeOn(st, vm)
		p := st.Status.Placements[vm]
		if on == "" || (p != nil && (p.Host == on || p.MigrateFrom != "")) {
			continue
		}
		commits = append(commits, model.Placement{VM: vm, Host: on, Reason: "unmanaged: recorded where it runs (" + on + ")"})
	}
	b.commitPlacements(commits, "unmanaged VM recorded where it runs")
}

// rulesOrNil are the compiled rules, nil when there are none or they do
// not compile.
func (v *View) rulesOrNil() *Rules {
	r, err := v.rules()
	if err != nil || r == nil || r.Spec == nil {
		return nil
	}
	return r
}

// applyLifecycle sets what the operator's target and the fail counts mean
// for the engine: a stopped or disabled VM is to be stopped, an ignored
// one is left as it is, and failures ban hosts per the failure policy.
func applyLifecycle(v *View, rules *Rules, vi *placement.VMInfo) {
	st := v.State
	switch TargetOf(st, rules, vi.Name).Target {
	case model.TargetStopped, model.TargetDisabled:
		vi.Target = placement.Stopped
	case model.TargetIgnored:
		vi.Unmanaged = true
	default:
		vi.Target = placement.Started
	}
	fs := st.Status.Failures[vi.Name]
	if len(fs) == 0 {
		return
	}
	vi.MigrationThreshold, vi.FailureTimeout = FailurePolicyOf(rules, vi.Name)
	// A fresh slice: vi may share its backing arrays with the compiled
	// rules, which later passes reuse.
	vi.Failures = make([]placement.Failure, 0, len(fs))
	for _, h := range model.SortedKeys(fs) {
		vi.Failures = append(vi.Failures, placement.Failure{Host: h, Count: fs[h].Count, Last: fs[h].Last})
	}
}

// FailurePolicyOf is a VM's migration threshold (0: never ban) and
// failure timeout (0: never expire): cluster.yaml's for the VM, else the
// running cluster's defaults. rules may be nil.
func FailurePolicyOf(rules *Rules, vm string) (int, time.Duration) {
	threshold, timeout := DefaultMigrationThreshold, DefaultFailureTimeout
	if rules == nil || rules.Spec == nil {
		return threshold, timeout
	}
	for _, sv := range rules.Spec.VMs {
		if sv.Name != vm {
			continue
		}
		if sv.MigrationThreshold != nil {
			threshold = rules.vms[vm].MigrationThreshold // 0: INFINITY, never ban
		}
		if sv.FailureTimeout > 0 {
			timeout = time.Duration(sv.FailureTimeout)
		}
	}
	return threshold, timeout
}

// bannedOn reports whether vm's failures on host reached its threshold
// (and have not expired).
func bannedOn(vi placement.VMInfo, host string, now time.Time) bool {
	if vi.MigrationThreshold <= 0 {
		return false
	}
	for _, f := range vi.Failures {
		if f.Host != host {
			continue
		}
		if vi.FailureTimeout > 0 && !now.Before(f.Last.Add(vi.FailureTimeout)) {
			return false
		}
		return f.Count >= vi.MigrationThreshold
	}
	return false
}

// leaveForbidden turns the live migrations that cannot happen (the target
// takes none) of running VMs whose host now forbids them (-INFINITY: ping
// lost, a ban, a rule) into cold moves: stopped there, started on the
// target, as Pacemaker does. With on-forbidden stay the VM stays, and the
// pass says so loudly every time.
func (b *builder) leaveForbidden(in placement.Input, r *placement.Result) {
	st := b.v.State
	var cands []string
	idx := map[string]int{}
	for i, a := range r.Actions {
		if a.Action != placement.ActMigrate || !ObservedRunning(st, a.From, a.VM) {
			continue
		}
		if h := st.Config.Hosts[a.To]; h != nil && h.LibvirtURI != "" {
			continue
		}
		cands = append(cands, a.VM)
		idx[a.VM] = i
	}
	if len(cands) == 0 {
		return
	}
	rx, err := placement.Solve(in, placement.Options{Explain: cands})
	if err != nil {
		return
	}
	rules := b.v.rulesOrNil()
	for _, vm := range cands {
		a := &r.Actions[idx[vm]]
		why, forbidden := forbiddenOn(rx.Explanations[vm], a.From)
		if !forbidden {
			continue
		}
		if rules != nil && rules.Spec.OnForbiddenOf(vm) == "stay" {
			b.log(standing(Error, "VM must leave its host but cannot move live; on-forbidden stay keeps it there", "vm", vm, "host", a.From, "target", a.To, "reason", why))
			continue
		}
		a.Action = placement.ActMove
	}
}

// forbiddenOn reports whether the explanation rules host out (and why).
func forbiddenOn(ex *placement.Explanation, host string) (string, bool) {
	if ex == nil {
		return "", false
	}
	for _, h := range ex.Hosts {
		if h.Host != host {
			continue
		}
		if !h.Eligible || h.Score <= -placement.Infinity {
			why := strings.Join(h.Filters, "; ")
			for _, t := range h.Terms {
				if t.Score <= -placement.Infinity {
					why = strings.TrimPrefix(why+"; "+t.Source, "; ")
				}
			}
			return why, true
		}
	}
	return "", false
}

// failedOn reports whether vm has failures counted on host.
func failedOn(st *model.State, vm, host string) bool {
	return st.Status.Failures[vm][host] != nil
}

// restartIfFailed makes a move of a VM that is not running anywhere and
// failed on its host a cold move: there is nothing to migrate live, and
// the engine moves it because its fail count keeps it off that host.
func restartIfFailed(st *model.State, a placement.Action, conds map[string]placement.HostCondition) placement.Action {
	if a.Action != placement.ActMigrate && a.Action != placement.ActMove {
		return a
	}
	if conds[a.From] != placement.Usable || activeOn(st, a.VM) != "" || !failedOn(st, a.VM, a.From) {
		return a
	}
	a.Action = placement.ActMove
	return a
}

// PlanRelocate is the cold move of vmha relocate: vm shut down where it
// runs (its host confirms it inactive), then started on to. id names the
// move.
func PlanRelocate(v *View, vm, to, by, id string) (model.Placement, error) {
	st := v.State
	mv := st.Config.VMs[vm]
	p := st.Status.Placements[vm]
	if mv == nil {
		return model.Placement{}, &command.NotFoundError{Kind: "vm", Name: vm}
	}
	t := TargetOf(st, v.rulesOrNil(), vm).Target
	switch {
	case st.Config.Maintenance != nil:
		return model.Placement{}, &command.ConflictError{What: "the cluster is in maintenance: nothing moves (vmha cluster maintenance --off ends it)"}
	case t != model.TargetStarted:
		return model.Placement{}, &command.ConflictError{What: fmt.Sprintf("vm %s is %s: only a started VM is relocated (vmha vm start %s first)", vm, t, vm)}
	case p == nil || p.Host == "":
		return model.Placement{}, &command.ConflictError{What: fmt.Sprintf("vm %s is placed nowhere: vmha vm start %s places it", vm, vm)}
	case p.MigrateFrom != "":
		return model.Placement{}, &command.ConflictError{What: fmt.Sprintf("vm %s is moving from %s to %s (%s): wait for that move to end", vm, p.MigrateFrom, p.Host, p.MigrationID)}
	}
	if err := CheckColdTarget(v, mv, p.Host, to); err != nil {
		return model.Placement{}, err
	}
	move := model.Placement{VM: vm, Host: to, MigrateFrom: p.Host, Cold: true, MigrationID: id,
		Reason: fmt.Sprintf("relocated by %s: shut down on %s, started on %s", by, p.Host, to)}
	if !ObservedRunning(st, p.Host, vm) {
		// Nothing to shut down, but the cold move still has its host
		// confirm it inactive before the target starts it.
		move.Reason = fmt.Sprintf("relocated by %s from %s (not running there) to %s", by, p.Host, to)
	}
	return move, nil
}
