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
	type pending struct {
		v        int
		kind     ActionKind
		from, to int
	}
	var stops, rest []pending
	for v, vm := range e.vms {
		if e.fixed[v] {
			continue
		}
		cur, to := e.running[v], e.assigned[v]
		switch {
		case cur >= 0 && to == cur:
		case cur >= 0 && to < 0:
			stops = append(stops, pending{v, ActStop, cur, -1})
		case cur >= 0:
			kind := ActMove
			if vm.AllowMigrate && e.hosts[cur].Condition == Usable && e.hosts[to].Condition == Usable {
				kind = ActMigrate
			}
			rest = append(rest, pending{v, kind, cur, to})
		case to >= 0 && e.onFenced[v]:
			rest = append(rest, pending{v, ActRecover, -1, to})
		case to >= 0:
			rest = append(rest, pending{v, ActStart, -1, to})
		}
	}
	// Migrations and moves first, so capacity they free serves the starts.
	rank := map[ActionKind]int{ActMigrate: 0, ActMove: 1, ActRecover: 2, ActStart: 3}
	sort.SliceStable(rest, func(i, j int) bool { return rank[rest[i].kind] < rank[rest[j].kind] })

	var out []Action
	mk := func(p pending, step int) Action {
		a := Action{VM: e.vms[p.v].Name, Action: p.kind, Step: step}
		if p.from >= 0 {
			a.From = e.hosts[p.from].Name
		}
		if p.to >= 0 {
			a.To = e.hosts[p.to].Name
		}
		return a
	}
	// Simulated usage: what runs now.
	used := make([]int64, e.nh*e.nk)
	for v, r := range e.running {
		if r >= 0 {
			for _, u := range e.util[v] {
				used[r*e.nk+u.k] += u.v
			}
		}
	}
	leave := func(v, h int) {
		for _, u := range e.util[v] {
			used[h*e.nk+u.k] -= u.v
		}
	}
	arrive := func(v, h int) {
		for _, u := range e.util[v] {
			used[h*e.nk+u.k] += u.v
		}
	}
	room := func(v, h int) bool {
		if !e.useCap {
			return true
		}
		for _, u := range e.util[v] {
			if used[h*e.nk+u.k]+u.v > e.full[h*e.nk+u.k] {
				return false
			}
		}
		return true
	}
	step := 1
	if len(stops) > 0 {
		for _, p := range stops {
			out = append(out, mk(p, step))
			leave(p.v, p.from)
		}
		step++
	}
	limit := e.in.Policy.MigrationLimit
	for len(rest) > 0 {
		migs := map[int]int{}
		var next []pending
		var freed []pending
		progress := false
		for _, p := range rest {
			if p.kind == ActMigrate && limit > 0 && (migs[p.from] >= limit || migs[p.to] >= limit) {
				next = append(next, p)
				continue
			}
			if !room(p.v, p.to) {
				next = append(next, p)
				continue
			}
			arrive(p.v, p.to)
			if p.from >= 0 {
				freed = append(freed, p)
			}
			if p.kind == ActMigrate {
				migs[p.from]++
				migs[p.to]++
			}
			out = append(out, mk(p, step))
			progress = true
		}
		for _, p := range freed {
			leave(p.v, p.from)
		}
		if !progress {
			// No room anywhere for what is left: stop one VM that moves
			// now and start it in a later step.
			i := 0
			for j, p := range next {
				if p.from >= 0 {
					i = j
					break
				}
			}
			p := next[i]
			if p.from < 0 {
				// Only starts are left and none fits: cannot happen for a
				// placement the engine made; start them anyway rather than
				// loop forever.
				for _, q := range next {
					out = append(out, mk(q, step))
				}
				break
			}
			out = append(out, mk(pending{p.v, ActStop, p.from, -1}, step))
			leave(p.v, p.from)
			next[i] = pending{p.v, ActStart, -1, p.to}
		}
		rest = next
		step++
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Step != out[j].Step {
			return out[i].Step < out[j].Step
		}
		return out[i].VM < out[j].VM
	})
	return out
}
