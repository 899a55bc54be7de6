package placement

import "sort"

// rescueBudget bounds the rescue search (host evaluations), so a cluster
// that is short of capacity costs at most a small multiple of an ample one.
const rescueBudget = 4_000_000

// rescue looks for VMs that the greedy allocation left stopped although
// they could run if some VMs placed in this same plan went elsewhere.
// Pacemaker documents the case: hosts of 2 and 4 CPUs, VMs of 1, 2 and 3
// CPUs under balanced, and the 3-CPU VM stays stopped. The search evicts
// only VMs that are not running on the host yet (so nothing that runs
// moves because of it) and that take part in no colocation (their
// scores do not depend on others), and moves them to another host that
// takes them with the normal rules. It never stops a VM the greedy placed.
func (e *engine) rescue() {
	budget := rescueBudget
	for _, v := range e.order {
		if e.assigned[v] >= 0 || e.vms[v].Target == Stopped || len(e.asDep[v]) > 0 || len(e.asPrim[v]) > 0 || budget <= 0 {
			continue
		}
		// Candidate hosts: eligible but for capacity, best score first.
		e.acc.reset()
		e.own(v, &e.acc)
		type cand struct {
			h int
			s Score
		}
		var cands []cand
		for h := 0; h < e.nh; h++ {
			s := e.ownScore(&e.acc, h)
			if s >= 0 && e.avail[h] {
				cands = append(cands, cand{h, s})
			}
		}
		budget -= e.nh
		sort.SliceStable(cands, func(i, j int) bool { return cands[i].s > cands[j].s })
		if len(cands) > 16 {
			cands = cands[:16]
		}
		for _, c := range cands {
			if budget <= 0 {
				break
			}
			if e.tryEvict(v, c.h, &budget) {
				e.notes[v] = append(e.notes[v], "placed by the rescue search: VMs placed earlier in this plan moved to make room")
				break
			}
		}
	}
}

// tryEvict frees room for v on host h by moving movable VMs assigned to h
// to other hosts; it undoes everything if v still does not fit.
func (e *engine) tryEvict(v, h int, budget *int) bool {
	var movable []int
	for m := range e.vms {
		if e.assigned[m] == h && !e.fixed[m] && e.running[m] != h && len(e.asDep[m]) == 0 && len(e.asPrim[m]) == 0 {
			movable = append(movable, m)
		}
	}
	*budget -= len(e.vms) / 8
	// Largest first, relative to what v lacks: fewer moves.
	size := func(m int) int64 {
		var s int64
		for _, u := range e.util[m] {
			if f := e.free[h*e.nk+u.k]; f < e.needOf(v, u.k) {
				s += u.v
			}
		}
		return s
	}
	sort.SliceStable(movable, func(i, j int) bool { return size(movable[i]) > size(movable[j]) })
	type undo struct{ m, from int }
	var done []undo
	for _, m := range movable {
		if e.fits(v, h) {
			break
		}
		if size(m) == 0 {
			continue
		}
		*budget -= e.nh
		e.release(m)
		to := e.choose(m, h, true)
		if to < 0 {
			e.take(m, h)
			continue
		}
		e.take(m, to)
		done = append(done, undo{m, h})
	}
	if e.fits(v, h) {
		e.take(v, h)
		for _, d := range done {
			e.notes[d.m] = append(e.notes[d.m], "moved by the rescue search to make room for "+e.vms[v].Name)
			e.rerecord(d.m)
		}
		e.rerecord(v)
		return true
	}
	for i := len(done) - 1; i >= 0; i-- {
		e.release(done[i].m)
		e.take(done[i].m, done[i].from)
	}
	return false
}

func (e *engine) needOf(v, k int) int64 {
	for _, u := range e.util[v] {
		if u.k == k {
			return u.v
		}
	}
	return 0
}

// rerecord refreshes the scores and explanation of a VM the rescue moved:
// those recorded by the greedy pass describe a host it no longer uses.
func (e *engine) rerecord(v int) {
	if e.scores == nil && e.explain[v] == nil {
		return
	}
	h := e.assigned[v]
	e.release(v)
	e.choose(v, -1, false)
	e.take(v, h)
}
