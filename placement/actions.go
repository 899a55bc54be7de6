package placement

import "sort"

func (e *engine) result() *Result {
	r := &Result{
		Placement: make(map[string]string, len(e.vms)),
		Blocked:   e.blocked,
		Scores:    e.scores,
	}
	for v, vm := range e.vms {
		r.Placement[vm.Name] = hostName(e, e.assigned[v])
		if e.assigned[v] < 0 {
			r.Placement[vm.Name] = ""
		}
	}
	for _, v := range e.order {
		r.Order = append(r.Order, e.vms[v].Name)
	}
	if e.explain != nil {
		r.Explanations = map[string]*Explanation{}
		for v, ex := range e.explain {
			ex.Host = r.Placement[ex.VM]
			ex.Rank = -1
			if e.state[v] == 2 && !e.fixed[v] && e.vms[v].Target != Stopped {
				ex.Rank = e.rank[v]
			}
			switch {
			case e.blocked[ex.VM] != "":
				ex.Reason = e.blocked[ex.VM]
			case e.fixed[v] && e.vms[v].Unmanaged:
				ex.Reason = "unmanaged: left as it is"
			case e.fixed[v]:
				ex.Reason = "stays on " + ex.Host + ": the host is " + hostState(e.hosts[e.running[v]])
			}
			ex.Notes = append(ex.Notes, e.notes[v]...)
			if len(e.notes[v]) > 0 && ex.Host != "" {
				ex.Reason = "on " + ex.Host + ": " + e.notes[v][len(e.notes[v])-1]
			}
			r.Explanations[ex.VM] = ex
		}
	}
	r.Actions = e.actions()
	return r
}

func hostState(h *HostInfo) string {
	if h.Maintenance && h.Condition == Usable {
		return "in maintenance"
	}
	return h.Condition.String()
}

// actions turns the placement into ordered steps. Step 1 stops what must
// stop. Then, step by step, migrations, moves, starts and recoveries run
// as soon as their target has room for them (counting what leaves the
// host in earlier steps, not what leaves in the same step), with at most
// Policy.MigrationLimit migrations per host and step. When a cycle of
// moves leaves no room anywhere, one migration is split into a stop and a
// later start, which breaks the cycle.
func (e *engine) actions() []Action {
	stops, rest := e.pendingActions()
	ap := newActionPlanner(e)
	step := 1
	if len(stops) > 0 {
		for _, p := range stops {
			ap.emit(p, step)
			ap.leave(p.v, p.from)
		}
		step++
	}
	for len(rest) > 0 {
		next, progress := ap.runStep(rest, step)
		if !progress {
			var ok bool
			if next, ok = ap.breakCycle(next, step); !ok {
				break
			}
		}
		rest = next
		step++
	}
	out := ap.out
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Step != out[j].Step {
			return out[i].Step < out[j].Step
		}
		return out[i].VM < out[j].VM
	})
	return out
}

// pendingAction is an action not yet given a step; from and to are host
// indexes, -1 for none.
type pendingAction struct {
	v        int
	kind     ActionKind
	from, to int
}

// pendingActions compares where each managed VM runs with where it is
// assigned: the stops, and the rest (migrations and moves first, so that
// the capacity they free serves the starts).
func (e *engine) pendingActions() (stops, rest []pendingAction) {
	for v, vm := range e.vms {
		if e.fixed[v] {
			continue
		}
		cur, to := e.running[v], e.assigned[v]
		switch {
		case cur >= 0 && to == cur:
		case cur >= 0 && to < 0:
			stops = append(stops, pendingAction{v, ActStop, cur, -1})
		case cur >= 0:
			kind := ActMove
			if vm.AllowMigrate && e.hosts[cur].Condition == Usable && e.hosts[to].Condition == Usable {
				kind = ActMigrate
			}
			rest = append(rest, pendingAction{v, kind, cur, to})
		case to >= 0 && e.onFenced[v]:
			rest = append(rest, pendingAction{v, ActRecover, -1, to})
		case to >= 0:
			rest = append(rest, pendingAction{v, ActStart, -1, to})
		}
	}
	rank := map[ActionKind]int{ActMigrate: 0, ActMove: 1, ActRecover: 2, ActStart: 3}
	sort.SliceStable(rest, func(i, j int) bool { return rank[rest[i].kind] < rank[rest[j].kind] })
	return stops, rest
}

// actionPlanner gives pending actions their steps against a simulated
// usage of every host, and collects the actions in out.
type actionPlanner struct {
	e    *engine
	used []int64 // by host*nk+k, starting from what runs now
	out  []Action
}

func newActionPlanner(e *engine) *actionPlanner {
	ap := &actionPlanner{e: e, used: make([]int64, e.nh*e.nk)}
	for v, r := range e.running {
		if r >= 0 {
			ap.arrive(v, r)
		}
	}
	return ap
}

func (ap *actionPlanner) emit(p pendingAction, step int) {
	e := ap.e
	a := Action{VM: e.vms[p.v].Name, Action: p.kind, Step: step}
	if p.from >= 0 {
		a.From = e.hosts[p.from].Name
	}
	if p.to >= 0 {
		a.To = e.hosts[p.to].Name
	}
	ap.out = append(ap.out, a)
}

func (ap *actionPlanner) leave(v, h int) {
	e := ap.e
	for _, u := range e.util[v] {
		ap.used[h*e.nk+u.k] -= u.v
	}
}

func (ap *actionPlanner) arrive(v, h int) {
	e := ap.e
	for _, u := range e.util[v] {
		ap.used[h*e.nk+u.k] += u.v
	}
}

func (ap *actionPlanner) room(v, h int) bool {
	e := ap.e
	if !e.useCap {
		return true
	}
	for _, u := range e.util[v] {
		if ap.used[h*e.nk+u.k]+u.v > e.full[h*e.nk+u.k] {
			return false
		}
	}
	return true
}

// runStep gives step to every action of rest whose target has room and
// whose hosts are under the migration limit; it returns the others, and
// whether any action was taken. What leaves a host in this step frees its
// room only for the next step.
func (ap *actionPlanner) runStep(rest []pendingAction, step int) (next []pendingAction, progress bool) {
	limit := ap.e.in.Policy.MigrationLimit
	migs := map[int]int{}
	var freed []pendingAction
	for _, p := range rest {
		if p.kind == ActMigrate && limit > 0 && (migs[p.from] >= limit || migs[p.to] >= limit) {
			next = append(next, p)
			continue
		}
		if !ap.room(p.v, p.to) {
			next = append(next, p)
			continue
		}
		ap.arrive(p.v, p.to)
		if p.from >= 0 {
			freed = append(freed, p)
		}
		if p.kind == ActMigrate {
			migs[p.from]++
			migs[p.to]++
		}
		ap.emit(p, step)
		progress = true
	}
	for _, p := range freed {
		ap.leave(p.v, p.from)
	}
	return next, progress
}

// breakCycle is for a step where nothing fit: no room anywhere for what is
// left. It stops, in this step, one VM that moves and starts it in a later
// step. With only starts left (which cannot happen for a placement the
// engine made) it starts them all in this step rather than loop forever,
// and says so with ok false.
func (ap *actionPlanner) breakCycle(next []pendingAction, step int) (_ []pendingAction, ok bool) {
	i := 0
	for j, p := range next {
		if p.from >= 0 {
			i = j
			break
		}
	}
	p := next[i]
	if p.from < 0 {
		for _, q := range next {
			ap.emit(q, step)
		}
		return nil, false
	}
	ap.emit(pendingAction{p.v, ActStop, p.from, -1}, step)
	ap.leave(p.v, p.from)
	next[i] = pendingAction{p.v, ActStart, -1, p.to}
	return next, true
}
