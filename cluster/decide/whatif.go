package decide

import (
	"fmt"
	"slices"

	"github.com/vmha/vmha/cluster/command"
	"github.com/vmha/vmha/model"
	"github.com/vmha/vmha/placement"
)

// The planning questions a console asks before anything is done (GET
// /v1/whatif, the dry runs of vmha migrate and relocate): the engine's
// answer on the live cluster's input, with nothing committed.

// What-if actions: the engine's actions in the cluster's words. A VM of a
// failed host is restarted elsewhere (a cold start after its host is
// fenced), never migrated.
const (
	WhatIfStart   = "start"
	WhatIfStop    = "stop"
	WhatIfMigrate = "migrate" // a live migration
	WhatIfMove    = "move"    // shut down where it runs, started on the target
	WhatIfRestart = "restart" // its host failed: started on the target once the host is fenced
)

// How a move goes.
const (
	HowLive    = "live"
	HowRestart = "restart"
)

// WhatIfAction is one thing the cluster would do.
type WhatIfAction struct {
	VM     string
	Action string
	From   string
	To     string
	// How is live or restart for the actions that change a VM's host.
	How string
	Why string
	// Step orders the actions (the engine's: the same step may run in
	// parallel).
	Step int
}

// WhatIfStranded is a VM that would be left with nowhere to run, and the
// engine's reason.
type WhatIfStranded struct {
	VM   string
	From string
	Why  string
}

// WhatIfHost is one host's memory before and after the plan.
type WhatIfHost struct {
	Host string
	// Condition is the host as the what-if sees it: usable, offline,
	// lost, failed or standby.
	Condition   string
	MemoryMiB   uint64
	BeforeMiB   uint64
	AfterMiB    uint64
	VMsBefore   int
	VMsAfter    int
	Overcommits bool
}

// WhatIfPlan is the answer of WhatIf.
type WhatIfPlan struct {
	Fail, Standby []string
	Actions       []WhatIfAction
	Stranded      []WhatIfStranded
	Hosts         []WhatIfHost
}

// WhatIf is what the cluster would do if the hosts fail failed (and were
// fenced: their VMs are restarted elsewhere) and the hosts standby went to
// standby (their VMs leave, live where they can), now: the engine's plan
// on the live cluster's input with those hosts changed (as vmha plan's
// --fail-host and --standby change a file's). A name that is no host, or a
// witness, is a ValidationError naming it.
func WhatIf(v *View, fail, standby []string) (*WhatIfPlan, error) {
	if err := checkWhatIfHosts(v.State, fail, standby); err != nil {
		return nil, err
	}
	in, err := EngineInput(v)
	if err != nil {
		return nil, &command.ConflictError{What: "the placement rules do not apply to the cluster: " + err.Error()}
	}
	cond := map[string]string{}
	for i := range in.Hosts {
		h := &in.Hosts[i]
		switch {
		case slices.Contains(fail, h.Name):
			h.Condition = placement.Released
			cond[h.Name] = "failed"
		case slices.Contains(standby, h.Name):
			h.Standby = true
			cond[h.Name] = "standby"
		default:
			cond[h.Name] = conditionName(h.Condition, h.Standby)
		}
	}
	for i := range in.VMs {
		if slices.Contains(standby, in.VMs[i].Current) {
			// Asked to leave: not held where it runs.
			in.VMs[i].Pinned = false
		}
	}
	r, err := placement.Solve(in, placement.Options{})
	if err != nil {
		return nil, &command.ConflictError{What: "placement refused the cluster's state: " + err.Error()}
	}
	stranded, stays := strandedOf(in, r, fail, standby)
	explain := append([]string(nil), stranded...)
	for _, a := range r.Actions {
		explain = append(explain, a.VM)
	}
	why := map[string]string{}
	if len(explain) > 0 {
		if rx, err := placement.Solve(in, placement.Options{Explain: explain}); err == nil {
			for _, n := range explain {
				if ex := rx.Explanations[n]; ex != nil {
					why[n] = ex.Reason
				}
			}
		}
	}
	out := &WhatIfPlan{Fail: fail, Standby: standby, Actions: []WhatIfAction{}, Stranded: []WhatIfStranded{}}
	left := map[string]bool{}
	for _, n := range stranded {
		left[n] = true
		reason := cmpOr(r.Blocked[n], why[n], "no host can take it")
		out.Stranded = append(out.Stranded, WhatIfStranded{VM: n, From: currentHost(v.State, n), Why: stays[n] + reason})
	}
	for _, a := range r.Actions {
		if a.Action == placement.ActStop && left[a.VM] {
			continue // said once, as stranded
		}
		out.Actions = append(out.Actions, whatIfAction(v, a, fail, standby, why[a.VM]))
	}
	out.Hosts = whatIfHosts(v.State, in, r, cond)
	return out, nil
}

// checkWhatIfHosts refuses names that are no host (or a witness), and a
// host both failing and in standby.
func checkWhatIfHosts(st *model.State, fail, standby []string) error {
	check := func(field string, names []string) error {
		for _, h := range names {
			mh := st.Config.Hosts[h]
			switch {
			case h == "":
				return &command.ValidationError{Field: field, Err: fmt.Errorf("an empty host name")}
			case mh == nil:
				return &command.ValidationError{Field: field, Err: fmt.Errorf("unknown host %q (known: %v)", h, model.SortedKeys(st.Config.Hosts))}
			case mh.Witness:
				return &command.ValidationError{Field: field, Err: fmt.Errorf("%s is a witness: it runs no VM", h)}
			}
		}
		return nil
	}
	if err := check("fail", fail); err != nil {
		return err
	}
	if err := check("standby", standby); err != nil {
		return err
	}
	for _, h := range standby {
		if slices.Contains(fail, h) {
			return &command.ValidationError{Field: "standby", Err: fmt.Errorf("%s is asked to fail and to go to standby: one or the other", h)}
		}
	}
	return nil
}

// strandedOf are the VMs that run (or are placed) now and that the plan r
// leaves nowhere, on a failed host, or on a standby host (stays says
// so, by VM).
func strandedOf(in placement.Input, r *placement.Result, fail, standby []string) ([]string, map[string]string) {
	var out []string
	stays := map[string]string{}
	for _, vi := range in.VMs {
		to := r.Placement[vi.Name]
		if vi.Current == "" || vi.Unmanaged || vi.Target == placement.Stopped {
			continue
		}
		if to != "" && to == vi.Current && slices.Contains(standby, to) {
			stays[vi.Name] = "it would stay on " + to + ", in standby: "
		}
		if to == "" || slices.Contains(fail, to) || stays[vi.Name] != "" {
			out = append(out, vi.Name)
		}
	}
	return out, stays
}

// cmpOr is the first of ss that is not empty.
func cmpOr(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// whatIfAction is the engine's action a in the cluster's words: how the
// cluster carries it out (placeByRules, evacuations).
func whatIfAction(v *View, a placement.Action, fail, standby []string, why string) WhatIfAction {
	st := v.State
	wa := WhatIfAction{VM: a.VM, From: a.From, To: a.To, Step: a.Step, Action: string(a.Action), Why: why}
	from := a.From
	if from == "" {
		from = currentHost(st, a.VM)
	}
	switch {
	case a.Action == placement.ActStop:
		wa.Action, wa.Why = WhatIfStop, "stopped: "+why
	case a.Action == placement.ActRecover || (from != "" && slices.Contains(fail, from)):
		wa.Action, wa.How, wa.From = WhatIfRestart, HowRestart, from
		wa.Why = fmt.Sprintf("restarted on %s once %s is fenced (a failed host's VMs start again elsewhere; they do not move live): %s", a.To, from, why)
	case a.Action == placement.ActStart:
		wa.Action, wa.Why = WhatIfStart, "started: "+why
	default: // migrate or move between hosts that run
		live := a.Action == placement.ActMigrate || slices.Contains(standby, a.From)
		if h := st.Config.Hosts[a.To]; h == nil || h.LibvirtURI == "" || !ObservedRunning(st, a.From, a.VM) {
			live = false
		}
		if live {
			wa.Action, wa.How = WhatIfMigrate, HowLive
			wa.Why = fmt.Sprintf("moved live from %s to %s: %s", a.From, a.To, why)
		} else {
			wa.Action, wa.How = WhatIfMove, HowRestart
			wa.Why = fmt.Sprintf("shut down on %s and started on %s (%s): %s", a.From, a.To, notLiveWhy(st, a), why)
		}
	}
	return wa
}

// notLiveWhy says why a move from a.From to a.To is not live.
func notLiveWhy(st *model.State, a placement.Action) string {
	switch h := st.Config.Hosts[a.To]; {
	case h == nil || h.LibvirtURI == "":
		return a.To + " takes no live migration"
	case !ObservedRunning(st, a.From, a.VM):
		return "not running, so it cannot move live"
	}
	return "it may not move live (the rules' allow-migrate)"
}

// whatIfHosts counts each host's memory where the VMs are and where the
// engine puts them.
func whatIfHosts(st *model.State, in placement.Input, r *placement.Result, cond map[string]string) []WhatIfHost {
	idx := map[string]int{}
	out := make([]WhatIfHost, 0, len(in.Hosts))
	for _, h := range in.Hosts {
		idx[h.Name] = len(out)
		out = append(out, WhatIfHost{Host: h.Name, Condition: cond[h.Name], MemoryMiB: st.Config.Hosts[h.Name].MemoryMiB})
	}
	for _, vi := range in.VMs {
		mib := st.Config.VMs[vi.Name].MemoryMiB
		if i, ok := idx[vi.Current]; ok {
			out[i].BeforeMiB += mib
			out[i].VMsBefore++
		}
		if i, ok := idx[r.Placement[vi.Name]]; ok {
			out[i].AfterMiB += mib
			out[i].VMsAfter++
		}
	}
	for i := range out {
		out[i].Overcommits = out[i].AfterMiB > out[i].MemoryMiB
	}
	return out
}

func conditionName(c placement.HostCondition, standby bool) string {
	switch {
	case c == placement.Lost:
		return "lost"
	case c == placement.Released:
		return "fenced"
	case c == placement.Offline:
		return "offline"
	case standby:
		return "standby"
	}
	return "usable"
}

// MovePlan is what a vmha migrate or relocate would do.
type MovePlan struct {
	// Placement is the placement the move commits.
	Placement model.Placement
	// How is live or restart.
	How string
	// Picked is the engine's reason when it chose the target ("" when
	// the operator named it).
	Picked string
}

// PlanMigration is vmha migrate VM [--to HOST]: every check the move
// passes before it is committed (the VM runs on an alive host and is not
// moving, the target takes it live now, the migration limits leave room),
// the target picked by the engine when to is "", and the placement to
// commit. The real call and its dry run both go through it.
func PlanMigration(v *View, vm, to, requester, id string) (MovePlan, error) {
	st := v.State
	mv := st.Config.VMs[vm]
	if mv == nil {
		return MovePlan{}, &command.NotFoundError{Kind: "vm", Name: vm}
	}
	p := st.Status.Placements[vm]
	if p == nil || p.Host == "" {
		return MovePlan{}, &command.ConflictError{What: fmt.Sprintf("vm %s is not placed on any host", vm)}
	}
	if p.MigrateFrom != "" {
		return MovePlan{}, &command.ConflictError{What: fmt.Sprintf("vm %s is already moving from %s to %s (%s)", vm, p.MigrateFrom, p.Host, p.MigrationID)}
	}
	src := p.Host
	if !Usable(st, v.Members, src) {
		return MovePlan{}, &command.ConflictError{What: fmt.Sprintf("vm %s is on %s, which is not an alive host: it cannot be moved live", vm, src)}
	}
	if !ObservedRunning(st, src, vm) {
		return MovePlan{}, &command.ConflictError{What: fmt.Sprintf("vm %s is not reported running on %s: only a running VM moves live", vm, src)}
	}
	picked := ""
	if to == "" {
		var err error
		if to, picked, err = PickTarget(v, mv, src); err != nil {
			return MovePlan{}, err
		}
	}
	if err := CheckTarget(v, mv, src, to); err != nil {
		return MovePlan{}, err
	}
	if why := CountFlights(st, v.Settings, v.MigrationLimit()).Full(src, to); why != "" {
		return MovePlan{}, &command.ConflictError{What: fmt.Sprintf("vm %s cannot move to %s now: %s; try again when one ended", vm, to, why)}
	}
	reason := fmt.Sprintf("live migration from %s requested by %s", src, requester)
	if picked != "" {
		reason += "; target chosen by placement: " + picked
	}
	return MovePlan{Placement: model.Placement{VM: vm, Host: to, MigrateFrom: src, MigrationID: id, Reason: reason}, How: HowLive, Picked: picked}, nil
}
