package rebalance

import (
	"math"
	"slices"
	"sort"
)

// class is a set of movable VMs that the climb evaluates as one: the VMs of
// one host with the same needs and neither host-dependent scores nor
// anti-colocations (adjacent in byHost, in tie order), or one VM with
// constraints of its own. Only vms[next], the first that has not moved, is
// evaluated: the others would gain exactly as much and lose the tie.
type class struct {
	a    int // the host the VMs run on
	vms  []int
	next int
	f    int // the VMs' needs of the balanced keys, as an index in bounds.fl
}

// classes groups the movable VMs; of gives each VM's class.
func (p *planner) classes() (cs []class, of []int32) {
	m := p.m
	of = make([]int32, len(p.in.VMs))
	util := func(v int) []int64 { return m.util[v*m.nk : (v+1)*m.nk] }
	for _, a := range p.open {
		vs := p.byHost[a]
		for i := 0; i < len(vs); {
			j := i + 1
			for j < len(vs) && slices.Equal(util(vs[i]), util(vs[j])) {
				j++
			}
			for _, v := range vs[i:j] {
				of[v] = int32(len(cs))
			}
			cs = append(cs, class{a: a, vms: vs[i:j]})
			i = j
		}
	}
	for _, v := range p.special {
		of[v] = int32(len(cs))
		cs = append(cs, class{a: m.cur[v], vms: []int{v}})
	}
	return cs, of
}

// climb is hbal's greedy hill climbing: at each step it applies the
// allowed (VM, target) move that lowers the score most, until no move
// gains enough or the move budget is spent. Targets must have room at that
// point of the sequence, so the sequence itself never overfills a host.
//
// It picks the very move that evaluating every (VM class, target) pair
// would (climbRef in the tests, the planner before issue 17), but
// evaluates few pairs: each step bounds, for every class, the gain of its
// moves to any target (bounds.upper, O(keys) per class); the 16 classes of
// highest bound are tried first, then the others. A class is scanned
// (every target evaluated) only if its bound, then a closer bound over the
// targets that may be best for its VMs' needs (bounds.reaches), reach
// both the threshold and the best gain found so far: a class below it
// cannot hold the best move, nor one that ties with it, so the order of
// the scans does not change the result.
//
// Every candidate's gain changes after every move, because the score's
// sums over all hosts do (so keeping candidates from one step to the next
// would not give the same plan); their bounds are cheap to recompute.
func (p *planner) climb(st *stats, opt Options) []planned {
	m := p.m
	threshold := max(opt.MinGain, gainFloor)
	cs, of := p.classes()
	bd := newBounds(p, st)
	bd.needs(cs)
	ub := make([]float64, len(cs))
	firstBuf := make([]int, 0, 16)
	var seq []planned
	for opt.MaxMoves == 0 || len(seq) < opt.MaxMoves {
		bd.update()
		// The classes of highest bounds (upper) first: their scan finds a
		// gain close to the best, which rules out most other classes at
		// once. first holds them, highest last.
		first := firstBuf[:0]
		for i := range cs {
			c := &cs[i]
			ub[i] = math.Inf(-1)
			if c.next == len(c.vms) {
				continue
			}
			ub[i] = bd.upper(c.vms[c.next], c.a, c.f)
			if ub[i] < threshold || (len(first) == cap(first) && ub[i] <= ub[first[0]]) {
				continue
			}
			if len(first) == cap(first) {
				copy(first, first[1:])
				first = first[:len(first)-1]
			}
			j := sort.Search(len(first), func(j int) bool { return ub[first[j]] >= ub[i] })
			first = append(first, 0)
			copy(first[j+1:], first[j:])
			first[j] = i
		}
		var c best
		try := func(i int) {
			if ub[i] < threshold || (c.ok && ub[i] < c.gain) {
				return
			}
			v := cs[i].vms[cs[i].next]
			cut := threshold
			if c.ok {
				cut = max(cut, c.gain)
			}
			if !bd.reaches(v, cs[i].a, cs[i].f, cut) {
				return
			}
			p.scan(st, v, cs[i].a, threshold, &c)
		}
		for j := len(first) - 1; j >= 0; j-- {
			try(first[j])
			ub[first[j]] = math.Inf(-1) // done
		}
		for i := range cs {
			try(i)
		}
		if !c.ok {
			break
		}
		m.place(c.v, c.to)
		st.moved(c.from, c.to)
		p.moved[c.v] = true
		seq = append(seq, c.planned)
		cl := &cs[of[c.v]]
		for cl.next < len(cl.vms) && p.moved[cl.vms[cl.next]] {
			cl.next++
		}
	}
	return seq
}

// bounds gives upper bounds of the gains of moves (see upper).
type bounds struct {
	st *stats
	m  *model
	// Per balanced key, the counted hosts (all of them open) in groups of
	// equal or close capacity: a group's line is (alpha, beta) below, with
	// alpha the least of its hosts' (static) and beta the least of its
	// hosts' (updated at each step).
	groups      [][][]int
	alpha, beta [][]float64
	// Per balanced key, updated at each step: the variance of the shifted
	// ratios, the largest |ratio - shift|, and (static) the largest
	// 1 / capacity.
	v, xmax, maxInv []float64
	// Per host × balanced key: α and β of the host (see upper); β is
	// updated at each step.
	ha, hb []float64
	// fl holds, per distinct needs of the balanced keys (ids gives their
	// index), what the bounds of VMs with those needs share in a step.
	ids  map[[maxKeys]int64]int
	fl   []needs
	step int
	// fronts holds, for the step, the targets that may be best for VMs of
	// given needs (see front), by the VMs' usage of the balanced keys.
	open  []int
	pts   []float64 // scratch for front
	sky   []float64
	order []int
}

// maxGroups caps the capacity groups per key, so that a bound costs
// O(keys × maxGroups) however varied the hosts are.
const maxGroups = 16

// boundSlack widens the bounds to cover the rounding errors of both the
// bound and the gain it bounds: each computes a variance from terms no
// larger than a few (xmax + d)² (d: the VM's largest ratio on any host),
// with a relative error of a few ulps (2.2e-16) per operation. The slack
// exceeds their sum many times over; it only costs an extra scan when a
// class comes within it of the best gain.
const boundSlack = 1e-12

func newBounds(p *planner, st *stats) *bounds {
	m, nm := p.m, st.nm
	bd := &bounds{
		st: st, m: m,
		groups: make([][][]int, nm), alpha: make([][]float64, nm), beta: make([][]float64, nm),
		v: make([]float64, nm), xmax: make([]float64, nm), maxInv: make([]float64, nm),
		ha: make([]float64, len(m.hosts)*nm), hb: make([]float64, len(m.hosts)*nm),
		ids: map[[maxKeys]int64]int{}, open: p.open,
	}
	for k := 0; k < nm; k++ {
		var hs []int
		for _, h := range p.open {
			if i := h*nm + k; st.count[i] {
				hs = append(hs, h)
				bd.maxInv[k] = max(bd.maxInv[k], st.inv[i])
			}
		}
		inv := func(h int) float64 { return st.inv[h*nm+k] }
		sort.SliceStable(hs, func(i, j int) bool { return inv(hs[i]) < inv(hs[j]) })
		distinct := 0
		for i, h := range hs {
			if i == 0 || inv(h) != inv(hs[i-1]) {
				distinct++
			}
		}
		for i := 0; i < len(hs); {
			j := i + 1
			if distinct <= maxGroups {
				for j < len(hs) && inv(hs[j]) == inv(hs[i]) {
					j++
				}
			} else {
				j = max(j, (len(bd.groups[k])+1)*len(hs)/maxGroups)
			}
			n := st.n[k]
			for _, h := range hs[i:j] {
				bd.ha[h*nm+k] = inv(h) * inv(h) * (1/n - 1/(n*n))
			}
			// The least 1/capacity of the group is its first.
			bd.alpha[k] = append(bd.alpha[k], inv(hs[i])*inv(hs[i])*(1/n-1/(n*n)))
			bd.groups[k] = append(bd.groups[k], hs[i:j])
			i = j
		}
		bd.beta[k] = make([]float64, len(bd.groups[k]))
	}
	return bd
}

// update recomputes what the bounds need from the current statistics:
// O(hosts × keys).
func (bd *bounds) update() {
	st := bd.st
	for k := 0; k < st.nm; k++ {
		n := st.n[k]
		if n == 0 {
			continue
		}
		mean := st.s[k] / n
		bd.v[k] = st.q[k]/n - mean*mean
		sn := st.s[k] / (n * n)
		var xm float64
		for g, hs := range bd.groups[k] {
			b := math.Inf(1)
			for _, h := range hs {
				i := h*st.nm + k
				x := st.x[i]
				xm = max(xm, math.Abs(x))
				bd.hb[i] = 2 * st.inv[i] * (x/n - sn)
				b = min(b, bd.hb[i])
			}
			bd.beta[k][g] = b
		}
		bd.xmax[k] = xm
	}
	bd.step++
}

// needs is what the bounds of VMs with the same needs of the balanced
// keys share in a step: the least B per key (upper) and the front
// (reaches), each valid in the step it was computed.
type needs struct {
	minB      [maxKeys]float64
	minStep   int
	front     front
	frontStep int
}

// needs sets each class's index in bd.fl.
func (bd *bounds) needs(cs []class) {
	m := bd.m
	for i := range cs {
		v := cs[i].vms[0]
		var key [maxKeys]int64
		copy(key[:], m.util[v*m.nk:v*m.nk+bd.st.nm])
		f, ok := bd.ids[key]
		if !ok {
			f = len(bd.fl)
			bd.ids[key] = f
			bd.fl = append(bd.fl, needs{minStep: -1, frontStep: -1})
		}
		cs[i].f = f
	}
}

// upper is at least the gain (as stats.gain computes it, rounding
// included) of moving VM v from host a to any other host, allowed and
// with room or not; -Inf when no host has capacity for a balanced key v
// uses.
//
// Per key, with d = u/capacity the change of a host's ratio, x the
// shifted ratios and s, q their sums over n hosts, a move from a to b
// changes the variance by
//
//	Δ = A(a) + B(b) + 2·da·db/n²,
//	A(a) = (da² - 2·xa·da)/n + (2·s·da - da²)/n²,
//	B(b) = (db² + 2·xb·db)/n - (2·s·db + db²)/n² = u·(α_b·u + β_b),
//	α_b = (1/n - 1/n²)/cap_b²,  β_b = 2·(xb/n - s/n²)/cap_b.
//
// The last term of Δ is not negative, and B(b) is at least the least
// u·(α·u + β) over the groups' lines, so the key's part of the gain,
// σ - sqrt(V + Δ), is at most σ - sqrt(V + A(a) + min B), which upper
// sums over the keys.
func (bd *bounds) upper(v, a, f int) float64 {
	st, m := bd.st, bd.m
	u := m.util[v*m.nk : v*m.nk+st.nm]
	fl := &bd.fl[f]
	if fl.minStep != bd.step {
		fl.minStep = bd.step
		for k, uk := range u {
			uf := float64(uk)
			fl.minB[k] = math.Inf(1)
			for g, al := range bd.alpha[k] {
				fl.minB[k] = min(fl.minB[k], uf*(al*uf+bd.beta[k][g]))
			}
		}
	}
	var t float64
	for k, uk := range u {
		if uk == 0 {
			continue
		}
		if len(bd.groups[k]) == 0 {
			// No host has capacity for the key.
			return math.Inf(-1)
		}
		n, s, uf := st.n[k], st.s[k], float64(uk)
		var da, xa float64
		if i := a*st.nm + k; st.count[i] {
			da, xa = uf*st.inv[i], st.x[i]
		}
		w := bd.v[k] + (da*da-2*xa*da)/n + (2*s*da-da*da)/(n*n)
		minB := fl.minB[k]
		e := bd.xmax[k] + uf*bd.maxInv[k]
		t += st.sd[k] - math.Sqrt(max(0, w+minB-boundSlack*e*e)) + 1e-14*(st.sd[k]+e)
	}
	return t
}

// reaches reports whether a bound like upper, usually much closer to the
// best gain, reaches cut: instead of the least B of each key, maybe of
// different hosts, it takes the B vectors of the hosts on the front (see
// front), first the least of each run of frontChunk of them, then, where
// that reaches cut, the run's own. O(keys × front) at most.
func (bd *bounds) reaches(v, a, fi int, cut float64) bool {
	st, m := bd.st, bd.m
	u := m.util[v*m.nk : v*m.nk+st.nm]
	var w, sd [maxKeys]float64
	for k, uk := range u {
		if uk == 0 {
			continue
		}
		n, s, uf := st.n[k], st.s[k], float64(uk)
		var da, xa float64
		if i := a*st.nm + k; st.count[i] {
			da, xa = uf*st.inv[i], st.x[i]
		}
		x := bd.xmax[k] + uf*bd.maxInv[k]
		w[k] = bd.v[k] + (da*da-2*xa*da)/n + (2*s*da-da*da)/(n*n) - boundSlack*x*x
		sd[k] = st.sd[k] + 1e-14*(st.sd[k]+x)
	}
	g := func(q []float64) (t float64) {
		for k, uk := range u {
			if uk != 0 {
				t += sd[k] - math.Sqrt(max(0, w[k]+q[k]))
			}
		}
		return t
	}
	f := bd.front(u, fi)
	nm := st.nm
	for c := 0; c < len(f.mins); c += nm {
		if g(f.mins[c:c+nm]) < cut {
			continue
		}
		lo := c * frontChunk
		for i := lo; i < min(lo+frontChunk*nm, len(f.pts)); i += nm {
			if g(f.pts[i:i+nm]) >= cut {
				return true
			}
		}
	}
	return false
}

// frontChunk is the length of the runs of a front that reaches checks
// at once.
const frontChunk = 4

// front is the B vectors of the hosts on the front, in order of their
// first key, and the least of each run of frontChunk of them.
type front struct {
	pts, mins []float64
}

// front returns, for VMs using u of the balanced keys, the B vectors
// (see upper; keys the VMs do not use count 0) of the hosts with
// capacity for every key they use, keeping only those that no other
// vector is at most on every key: the score's change decreases with
// each B, so the best move to any of these hosts goes to one of those.
// Flat, keys per vector; computed once per step and needs.
func (bd *bounds) front(u []int64, f int) *front {
	fr := &bd.fl[f].front
	if bd.fl[f].frontStep == bd.step {
		return fr
	}
	bd.fl[f].frontStep = bd.step
	st := bd.st
	nm := st.nm
	pts := bd.pts[:0]
	best, bestSum := -1, math.Inf(1)
	for _, h := range bd.open {
		ok := true
		for k, uk := range u {
			if uk != 0 && !st.count[h*nm+k] {
				ok = false
			}
		}
		if !ok {
			continue
		}
		var sum float64
		for k, uk := range u {
			var b float64
			if uk != 0 {
				uf := float64(uk)
				b = uf * (bd.ha[h*nm+k]*uf + bd.hb[h*nm+k])
			}
			pts = append(pts, b)
			sum += b
		}
		if sum < bestSum {
			best, bestSum = len(pts)-nm, sum
		}
	}
	bd.pts = pts
	bd.sky = skyline(bd.sky[:0], pts, nm, best)
	bd.order = fr.fill(bd.order[:0], bd.sky, nm)
	return fr
}

// skyline appends to f (empty) the vectors of pts (flat, nm keys each) that no other
// is at most on every key. The one at first (the least by sum, so on the
// front) goes first and leaves out most others at once.
func skyline(f, pts []float64, nm, first int) []float64 {
	atMost := func(f []float64, j []float64) bool {
		for k := 0; k < nm; k++ {
			if f[k] > j[k] {
				return false
			}
		}
		return true
	}
	if first >= 0 {
		f = append(f, pts[first:first+nm]...)
	}
	for i := 0; i < len(pts); i += nm {
		q := pts[i : i+nm]
		dominated := false
		for j := 0; j < len(f) && !dominated; j += nm {
			dominated = atMost(f[j:j+nm], q)
		}
		if dominated {
			continue
		}
		// Drop the kept vectors q is at most on, then keep q.
		w := 0
		for j := 0; j < len(f); j += nm {
			if !atMost(q, f[j:j+nm]) {
				w += copy(f[w:], f[j:j+nm])
			}
		}
		f = append(f[:w], q...)
	}
	return f
}

// fill sets fr to the vectors of f ordered by their first key, and the
// least of each run of frontChunk; order is scratch, returned for reuse.
func (fr *front) fill(order []int, f []float64, nm int) []int {
	for i := 0; i < len(f); i += nm {
		order = append(order, i)
	}
	sort.Slice(order, func(x, y int) bool { return f[order[x]] < f[order[y]] })
	fr.pts, fr.mins = fr.pts[:0], fr.mins[:0]
	for _, i := range order {
		fr.pts = append(fr.pts, f[i:i+nm]...)
	}
	for c := 0; c < len(fr.pts); c += frontChunk * nm {
		lo := len(fr.mins)
		fr.mins = append(fr.mins, fr.pts[c:c+nm]...)
		for i := c + nm; i < min(c+frontChunk*nm, len(fr.pts)); i += nm {
			for k := 0; k < nm; k++ {
				fr.mins[lo+k] = min(fr.mins[lo+k], fr.pts[i+k])
			}
		}
	}
	return order
}
