package placement

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Options select the optional, costlier parts of a Result.
type Options struct {
	// Scores fills Result.Scores for every VM and host.
	Scores bool
	// Explain lists the VMs to explain; "*" explains all of them.
	Explain []string
	// NoSearch turns off the bounded search that rescues VMs Pacemaker's
	// greedy allocation would leave stopped (for comparisons with Pacemaker).
	NoSearch bool
	// Validated tells Solve that the caller has run Validate on this
	// input and has changed nothing Validate checks since, so Solve need
	// not run it again (at 50,000 VMs it costs as much as the solve
	// itself). A caller that is not sure leaves it false: the engine
	// assumes a valid input, and an invalid one would give a wrong plan
	// instead of an error.
	Validated bool
	// reference turns the shortcuts off (the memo of location rules, the
	// scan of the touched hosts only): tests compare the two.
	reference bool
}

type kv struct {
	k int
	v int64
}

type hostScore struct {
	h int
	s Score
}

// scratch accumulates sparse per-host scores for one VM; only the hosts
// touched are reset, so a VM with few constraints costs little even on a
// large cluster.
type scratch struct {
	val     []Score
	has     []bool
	allowed []bool
	touched []int
	terms   map[int][]Term // only when explaining
}

func newScratch(n int) scratch {
	return scratch{val: make([]Score, n), has: make([]bool, n), allowed: make([]bool, n)}
}

func (s *scratch) reset() {
	for _, h := range s.touched {
		s.val[h], s.has[h], s.allowed[h] = 0, false, false
	}
	s.touched = s.touched[:0]
	s.terms = nil
}

func (s *scratch) add(h int, v Score, allow bool, src string) {
	if !s.has[h] {
		s.has[h] = true
		s.touched = append(s.touched, h)
	}
	s.val[h] = Add(s.val[h], v)
	if allow {
		s.allowed[h] = true
	}
	if s.terms != nil {
		s.terms[h] = append(s.terms[h], Term{Source: src, Score: v})
	}
}

const unassigned = -1

type engine struct {
	in     *Input
	hosts  []*HostInfo // sorted by name, so host index order is name order
	hostIx map[string]int
	vms    []*VMInfo // input order, which breaks the last ties as Pacemaker's CIB order does
	vmIx   map[string]int
	nh, nk int
	keys   []string
	free   []int64 // nh*nk remaining capacity
	full   []int64
	util   [][]kv
	useCap bool
	strat  Strategy
	avail  []bool
	why    []string // why a host cannot take new VMs
	count  []int    // VMs assigned per host so far

	locs     [][]hostScore
	ruleHits [][]hostScore // per location rule: the hosts it matches (shared by equal rules)
	ruleSrc  []string      // per location rule: its explanation term, made when first needed
	vmRules  [][]int
	asDep    [][]int // colocations where the VM is the dependent
	asPrim   [][]int // colocations where the VM is the primary
	running  []int   // host the VM runs on now, or -1
	onFenced []bool
	fixed    []bool
	blocked  map[string]string
	assigned []int
	state    []uint8 // 0 pending, 1 allocating, 2 done
	rank     []int
	order    []int
	acc, tmp scratch
	// live holds, for each VM in a colocation, its score per host as
	// Pacemaker's allowed_nodes table evolves (see coloc.go); nil for the
	// others. merging marks the VMs on the current merge path; bufs are
	// the merge's scratch tables, one per depth.
	live     [][]Score
	merging  []bool
	bufs     [][]Score
	colTerms map[int]map[int][]Term // explanation terms of colocation steps
	mergeOps int                    // what is left of mergeBudget
	explain  map[int]*Explanation
	allExpl  bool
	scores   map[string]map[string]Score
	notes    map[int][]string
	// need is what the VM being placed must find room for: its own
	// utilization, or that of its whole mandatory colocation group.
	need []kv
	// groupShort is set when no host has room for the whole mandatory
	// colocation group: the VM then prefers the host with the most free
	// capacity, as Pacemaker does, so the group has the best chance.
	groupShort bool
	hashOrder  []int // hosts in Pacemaker's node-table order (glibOrder)
	reference  bool  // see Options
	topBuf     []int // topTouched's result
}

// Solve computes a plan for in. It is pure: the same input always gives
// the same result. It returns an error only when the input does not
// validate (unless opt.Validated says the caller validated it).
func Solve(in Input, opt Options) (*Result, error) {
	if !opt.Validated {
		if err := Validate(&in); err != nil {
			return nil, err
		}
	}
	e := newEngine(&in, opt)
	e.allocateAll()
	if !opt.NoSearch && e.useCap {
		e.rescue()
	}
	return e.result(), nil
}

func newEngine(in *Input, opt Options) *engine {
	e := &engine{in: in, hostIx: make(map[string]int, len(in.Hosts)), vmIx: make(map[string]int, len(in.VMs)),
		blocked: map[string]string{}, reference: opt.reference}
	e.strat = in.Policy.Strategy
	if e.strat == "" {
		e.strat = StrategyDefault
	}
	e.useCap = e.strat != StrategyDefault
	e.hosts = make([]*HostInfo, len(in.Hosts))
	for i := range in.Hosts {
		e.hosts[i] = &in.Hosts[i]
	}
	sort.SliceStable(e.hosts, func(i, j int) bool { return e.hosts[i].Name < e.hosts[j].Name })
	e.nh = len(e.hosts)
	for i, h := range e.hosts {
		e.hostIx[h.Name] = i
	}
	e.vms = make([]*VMInfo, len(in.VMs))
	for i := range in.VMs {
		e.vms[i] = &in.VMs[i]
		e.vmIx[in.VMs[i].Name] = i
	}
	e.indexUtilization()
	e.indexAvailability()
	e.count = make([]int, e.nh)
	e.indexConstraints()
	e.indexCurrent()
	e.acc, e.tmp = newScratch(e.nh), newScratch(e.nh)
	e.colTerms = map[int]map[int][]Term{}
	e.setupExplain(opt)
	if opt.Scores {
		e.scores = make(map[string]map[string]Score, len(e.vms))
	}
	e.notes = map[int][]string{}
	e.initLive()
	return e
}

// indexUtilization numbers the utilization keys (every key a host or VM
// names) and lays out capacities, free room and the VMs' utilization.
func (e *engine) indexUtilization() {
	keyIx := map[string]int{}
	addKey := func(k string) {
		if _, ok := keyIx[k]; !ok {
			keyIx[k] = len(e.keys)
			e.keys = append(e.keys, k)
		}
	}
	for _, h := range e.hosts {
		for _, k := range sortedKeys(h.Capacity) {
			addKey(k)
		}
	}
	for _, v := range e.vms {
		for _, k := range sortedKeys(v.Utilization) {
			addKey(k)
		}
	}
	e.nk = len(e.keys)
	e.full = make([]int64, e.nh*e.nk)
	for i, h := range e.hosts {
		for k, c := range h.Capacity {
			e.full[i*e.nk+keyIx[k]] = c
		}
	}
	e.free = append([]int64(nil), e.full...)
	e.util = make([][]kv, len(e.vms))
	for i, v := range e.vms {
		for _, k := range sortedKeys(v.Utilization) {
			if u := v.Utilization[k]; u > 0 {
				e.util[i] = append(e.util[i], kv{keyIx[k], u})
			}
		}
	}
}

// indexAvailability says which hosts may take VMs, and why not the others.
func (e *engine) indexAvailability() {
	e.avail = make([]bool, e.nh)
	e.why = make([]string, e.nh)
	for i, h := range e.hosts {
		switch {
		case h.Condition == Released:
			e.why[i] = "host was fenced"
		case h.Condition == Lost:
			e.why[i] = "host is lost (not fenced yet)"
		case h.Condition != Usable:
			e.why[i] = "host is " + h.Condition.String()
		case h.Maintenance:
			e.why[i] = "host is in maintenance"
		case h.Standby:
			e.why[i] = "host is in standby"
		default:
			e.avail[i] = true
		}
	}
}

// indexConstraints indexes locations, location rules (matched against
// every host once) and colocations by VM.
func (e *engine) indexConstraints() {
	in, nv := e.in, len(e.vms)
	e.locs = make([][]hostScore, nv)
	for _, l := range in.Locations {
		v := e.vmIx[l.VM]
		e.locs[v] = append(e.locs[v], hostScore{e.hostIx[l.Host], l.Score})
	}
	e.vmRules = make([][]int, nv)
	e.ruleHits = make([][]hostScore, len(in.LocationRules))
	e.ruleSrc = make([]string, len(in.LocationRules))
	// A rule depends only on the hosts (their names and attributes), which
	// are fixed for the whole solve, so equal rules match the same hosts
	// with the same values: each distinct rule is evaluated once, and its
	// hits are shared (read-only) by every VM that carries it.
	var memo map[string][]hostScore
	if !e.reference {
		memo = map[string][]hostScore{}
	}
	var key []byte
	for i := range in.LocationRules {
		r := &in.LocationRules[i]
		if memo == nil {
			e.ruleHits[i] = e.matchRule(&r.Rule)
		} else {
			key = appendRuleKey(key[:0], &r.Rule)
			hits, ok := memo[string(key)]
			if !ok {
				hits = e.matchRule(&r.Rule)
				memo[string(key)] = hits
			}
			e.ruleHits[i] = hits
		}
		v := e.vmIx[r.VM]
		e.vmRules[v] = append(e.vmRules[v], i)
	}
	e.asDep = make([][]int, nv)
	e.asPrim = make([][]int, nv)
	for i, c := range in.Colocations {
		d, p := e.vmIx[c.VM], e.vmIx[c.With]
		e.asDep[d] = append(e.asDep[d], i)
		e.asPrim[p] = append(e.asPrim[p], i)
	}
	// A VM's primaries are placed, and the VMs colocated with it merged,
	// by priority, then name, whatever the configuration order (as
	// crm_simulate does).
	for _, cs := range e.asDep {
		e.colocOrder(cs, func(c Colocation) string { return c.With })
	}
	for _, cs := range e.asPrim {
		e.colocOrder(cs, func(c Colocation) string { return c.VM })
	}
}

// matchRule lists the hosts rule r matches, with what it gives each.
func (e *engine) matchRule(r *Rule) []hostScore {
	var hits []hostScore
	for hi, h := range e.hosts {
		if r.Matches(h) {
			hits = append(hits, hostScore{hi, r.value(h)})
		}
	}
	return hits
}

// ruleSource is the explanation term's source of location rule i.
func (e *engine) ruleSource(i int) string {
	if e.ruleSrc[i] == "" {
		e.ruleSrc[i] = fmt.Sprintf("location rule %d (%s)", i+1, e.in.LocationRules[i].Rule.Describe())
	}
	return e.ruleSrc[i]
}

// indexCurrent reads where each VM runs now, and which VMs stay where they
// are (fixed) because their host cannot be acted on or they are not
// managed.
func (e *engine) indexCurrent() {
	nv := len(e.vms)
	e.running = make([]int, nv)
	e.onFenced = make([]bool, nv)
	e.fixed = make([]bool, nv)
	e.assigned = make([]int, nv)
	e.state = make([]uint8, nv)
	e.rank = make([]int, nv)
	for i, v := range e.vms {
		e.running[i], e.assigned[i] = -1, unassigned
		h, ok := e.hostIx[v.Current]
		if v.Current == "" || !ok {
			continue
		}
		host := e.hosts[h]
		switch {
		case host.Condition == Released:
			// Fenced: the VM is known to be off and needs recovery.
			e.onFenced[i] = true
		case host.Condition == Lost:
			// Not fenced yet: the VM may still run there, so it stays
			// assigned and blocked; starting it elsewhere could run it twice.
			e.fixed[i] = true
			e.running[i] = h
			e.blocked[v.Name] = "waiting for " + host.Name + " to be fenced before recovery"
		case host.Condition == Offline, host.Maintenance, v.Unmanaged, v.Pinned:
			e.fixed[i] = true
			e.running[i] = h
		default:
			e.running[i] = h
		}
	}
	for i, v := range e.vms {
		if v.Unmanaged && e.running[i] < 0 {
			e.fixed[i] = true
		}
	}
}

// setupExplain prepares an explanation for each VM opt.Explain names ("*"
// for all).
func (e *engine) setupExplain(opt Options) {
	if len(opt.Explain) == 0 {
		return
	}
	e.explain = map[int]*Explanation{}
	for _, n := range opt.Explain {
		if n == "*" {
			e.allExpl = true
			continue
		}
		if i, ok := e.vmIx[n]; ok {
			e.explain[i] = &Explanation{VM: n}
		}
	}
	if e.allExpl {
		for i, v := range e.vms {
			e.explain[i] = &Explanation{VM: v.Name}
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func (e *engine) stickiness(v int) Score {
	if s := e.vms[v].Stickiness; s != nil {
		return *s
	}
	return e.in.Policy.DefaultStickiness
}

// own adds v's own score terms (locations, rules, stickiness, fail-count
// bans) to s. They do not depend on other VMs' placement.
func (e *engine) own(v int, s *scratch) {
	// The terms' sources are text for explanations: made only for them.
	explaining := s.terms != nil
	for _, l := range e.locs[v] {
		src := ""
		if explaining {
			src = "location " + l.s.String()
		}
		s.add(l.h, l.s, true, src)
	}
	for _, r := range e.vmRules[v] {
		src := ""
		if explaining {
			src = e.ruleSource(r)
		}
		for _, hit := range e.ruleHits[r] {
			s.add(hit.h, hit.s, true, src)
		}
	}
	vm := e.vms[v]
	if r := e.running[v]; r >= 0 && !vm.Unmanaged {
		// In an opt-in cluster stickiness applies only where the VM is
		// allowed, as in Pacemaker.
		if st := e.stickiness(v); st != 0 && (!e.in.Policy.OptIn || s.allowed[r]) {
			s.add(r, st, false, "stickiness")
		}
	}
	if vm.MigrationThreshold > 0 && len(vm.Failures) > 0 {
		counts := map[int]int{}
		for _, f := range vm.Failures {
			if vm.FailureTimeout > 0 && !f.Last.IsZero() && !e.in.Now.Before(f.Last.Add(vm.FailureTimeout)) {
				continue // expired
			}
			if h, ok := e.hostIx[f.Host]; ok {
				counts[h] += f.Count
			}
		}
		for h, n := range counts {
			if n >= vm.MigrationThreshold {
				s.add(h, -Infinity, false, fmt.Sprintf("failed %d times (migration-threshold %d)", n, vm.MigrationThreshold))
			}
		}
	}
}

// base is the score of a host no term touched.
func (e *engine) ownScore(s *scratch, h int) Score {
	if e.in.Policy.OptIn && !s.allowed[h] {
		return -Infinity
	}
	return s.val[h]
}

// --- allocation order ---------------------------------------------------

type sortKey struct {
	prio, cur int64
	vec       []hostScore // h is the node's position in nodeOrder
}

// nodePositions orders hosts as Pacemaker's pcmk__sort_nodes does before
// sorting resources: hosts that can run VMs first, then more capacity
// under balanced, then name (no VM is assigned yet, so Pacemaker's count
// of assigned VMs ties everywhere).
func (e *engine) nodePositions() []int {
	idx := make([]int, e.nh)
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool {
		x, y := idx[a], idx[b]
		// A host that cannot run anything weighs -INFINITY: it comes last.
		if e.avail[x] != e.avail[y] {
			return e.avail[x]
		}
		if e.strat == StrategyMinimal {
			return x < y
		}
		if e.strat == StrategyBalanced {
			if c := e.compareCap(e.full, x, y); c != 0 {
				return c < 0
			}
		}
		// Pacemaker compares the VMs assigned so far next, and before the
		// allocation that is none anywhere: name decides.
		return x < y
	})
	pos := make([]int, e.nh)
	for p, h := range idx {
		pos[h] = p
	}
	return pos
}

// allocationOrder follows Pacemaker 2.1.5. Under the default strategy it
// sorts by priority only, keeping the configuration order among equals
// (crm_simulate does not run cmp_resources then: checked in
// internal/pacemaker). Under the utilization strategies it is
// cmp_resources: higher priority first; then the higher score on the
// current host (-INFINITY for a VM that does not run); then the higher
// score on the first host, in node order, where the two differ; then the
// configuration order.
func (e *engine) allocationOrder(cands []int) {
	if !e.useCap {
		sort.SliceStable(cands, func(i, j int) bool { return e.vms[cands[i]].Priority > e.vms[cands[j]].Priority })
		return
	}
	pos := e.nodePositions()
	keys := make([]sortKey, len(e.vms))
	base := Score(0)
	if e.in.Policy.OptIn {
		base = -Infinity
	}
	var merged []Score
	for _, v := range cands {
		k := sortKey{prio: int64(e.vms[v].Priority), cur: int64(-Infinity)}
		if e.live[v] != nil {
			// Pacemaker sorts on the scores merged with those of the VMs
			// this one is colocated with (add_colocated_node_scores).
			if merged == nil {
				merged = make([]Score, e.nh)
			}
			e.sortScores(v, merged)
			if r := e.running[v]; r >= 0 {
				k.cur = int64(merged[r])
			}
			for h, s := range merged {
				if s != base {
					k.vec = append(k.vec, hostScore{h: pos[h], s: s})
				}
			}
		} else {
			e.acc.reset()
			e.own(v, &e.acc)
			// A VM with target state stopped sorts on its own scores like the
			// others: Pacemaker bans it from every host only at its turn.
			if r := e.running[v]; r >= 0 && (!e.in.Policy.OptIn || e.acc.allowed[r]) {
				k.cur = int64(e.ownScore(&e.acc, r))
			}
			for _, h := range e.acc.touched {
				if s := e.ownScore(&e.acc, h); s != base {
					k.vec = append(k.vec, hostScore{h: pos[h], s: s})
				}
			}
		}
		// Positions are distinct: any sort gives the same order.
		slices.SortFunc(k.vec, func(a, b hostScore) int { return cmp.Compare(a.h, b.h) })
		keys[v] = k
	}
	e.acc.reset()
	// A stable sort's result depends only on the order it sorts by, not on
	// the algorithm.
	slices.SortStableFunc(cands, func(x, y int) int {
		a, b := &keys[x], &keys[y]
		if c := cmp.Compare(b.prio, a.prio); c != 0 {
			return c
		}
		if c := cmp.Compare(b.cur, a.cur); c != 0 {
			return c
		}
		return compareVec(a.vec, b.vec, base)
	})
}

// compareVec compares two sparse score vectors (sorted by position); a
// negative result means a has the higher score on the first differing host.
func compareVec(a, b []hostScore, base Score) int {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		var pa, pb = math.MaxInt, math.MaxInt
		if i < len(a) {
			pa = a[i].h
		}
		if j < len(b) {
			pb = b[j].h
		}
		x, y := base, base
		p := min(pa, pb)
		if pa == p {
			x = a[i].s
			i++
		}
		if pb == p {
			y = b[j].s
			j++
		}
		if x != y {
			if x > y {
				return -1
			}
			return 1
		}
	}
	return 0
}

// compareCap is pcmk__compare_node_capacities: it counts the keys on
// which x has more room than y, minus those where y has more; a negative
// result means x comes first.
func (e *engine) compareCap(c []int64, x, y int) int {
	r := 0
	for k := 0; k < e.nk; k++ {
		a, b := c[x*e.nk+k], c[y*e.nk+k]
		if a > b {
			r--
		} else if a < b {
			r++
		}
	}
	return r
}

// --- allocation -------------------------------------------------------

func (e *engine) take(v, h int) {
	e.assigned[v] = h
	if h < 0 {
		return
	}
	e.count[h]++
	for _, u := range e.util[v] {
		e.free[h*e.nk+u.k] -= u.v
	}
}

func (e *engine) release(v int) {
	h := e.assigned[v]
	e.assigned[v] = unassigned
	if h < 0 {
		return
	}
	e.count[h]--
	for _, u := range e.util[v] {
		e.free[h*e.nk+u.k] += u.v
	}
}

// fitsNeed reports whether host h has room for e.need.
func (e *engine) fitsNeed(h int) bool {
	for _, u := range e.need {
		if e.free[h*e.nk+u.k] < u.v {
			return false
		}
	}
	return true
}

// groupNeed sets e.need for v. As Pacemaker's
// pcmk__ban_insufficient_capacity does, a VM must find room for itself and
// every VM tied to it by +INFINITY colocations (in either direction, through
// VMs placed already too) that is not placed yet, when some host it may use
// can take them all; otherwise for itself alone.
func (e *engine) groupNeed(v int) {
	e.need = append(e.need[:0], e.util[v]...)
	e.groupShort = false
	if !e.useCap || e.live[v] == nil {
		return
	}
	seen := map[int]bool{v: true}
	stack := []int{v}
	sum := make([]int64, e.nk)
	for _, u := range e.util[v] {
		sum[u.k] += u.v
	}
	grown := false
	for len(stack) > 0 {
		x := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		visit := func(ci int, other string) {
			c := e.in.Colocations[ci]
			o := e.vmIx[other]
			if c.Score < Infinity || seen[o] {
				return
			}
			seen[o] = true
			// Pacemaker collects the chain first and then sums the VMs not
			// placed yet: a placed VM still links the others.
			stack = append(stack, o)
			if e.state[o] == 2 || e.fixed[o] {
				return
			}
			for _, u := range e.util[o] {
				sum[u.k] += u.v
			}
			grown = true
		}
		for _, ci := range e.asDep[x] {
			visit(ci, e.in.Colocations[ci].With)
		}
		for _, ci := range e.asPrim[x] {
			visit(ci, e.in.Colocations[ci].VM)
		}
	}
	if !grown {
		return
	}
	group := make([]kv, 0, e.nk)
	for k, n := range sum {
		if n > 0 {
			group = append(group, kv{k, n})
		}
	}
	own := e.need
	e.need = group
	// Only hosts the VM may run on count (in an opt-in cluster, those a
	// location allows).
	for h := 0; h < e.nh; h++ {
		if e.avail[h] && e.score(h) >= 0 && e.fitsNeed(h) {
			return
		}
	}
	e.need = own
	e.groupShort = true
}

func (e *engine) fits(v, h int) bool {
	for _, u := range e.util[v] {
		if e.free[h*e.nk+u.k] < u.v {
			return false
		}
	}
	return true
}

func (e *engine) allocateAll() {
	var cands []int
	for v := range e.vms {
		switch {
		case e.fixed[v]:
			e.take(v, e.running[v])
			e.state[v] = 2
		case e.vms[v].Target == Stopped:
			// Still in the allocation order: Pacemaker places the VMs it
			// is colocated with at its turn, which matters for them.
			if ex := e.explain[v]; ex != nil {
				ex.Reason = "target state is stopped"
			}
			cands = append(cands, v)
		default:
			cands = append(cands, v)
		}
	}
	e.allocationOrder(cands)
	for _, v := range cands {
		e.allocate(v)
	}
	for _, v := range cands {
		if e.assigned[v] < 0 && e.running[v] >= 0 {
			e.blockDependents(v)
		}
	}
	for i, v := range e.order {
		e.rank[v] = i
	}
}

// blockDependents stops the VMs placed with a +INFINITY colocation with
// v, which ran before and now runs nowhere, and so on down the chain. Only
// a colocation loop places such a VM (Pacemaker places the VM first and
// applies nothing for the other, which waits for it); Pacemaker then
// blocks their start because v's start cannot run, even for a VM that
// stays where it is (seen with crm_simulate; a v that did not run has no
// start to block them).
func (e *engine) blockDependents(v int) {
	for _, ci := range e.asPrim[v] {
		c := e.in.Colocations[ci]
		x := e.vmIx[c.VM]
		if c.Score < Infinity || e.assigned[x] < 0 || e.fixed[x] {
			continue
		}
		e.release(x)
		e.take(x, -1)
		if ex := e.explain[x]; ex != nil {
			ex.Reason = "must run with " + c.With + ", which cannot run (a colocation loop placed it first)"
		}
		e.blockDependents(x)
	}
}

// allocate places v, placing first the VMs it is colocated with, as
// Pacemaker does.
func (e *engine) allocate(v int) {
	if e.state[v] != 0 {
		return
	}
	e.state[v] = 1
	if e.live[v] != nil {
		e.applyColocations(v)
	}
	h := -1
	if e.vms[v].Target != Stopped {
		h = e.choose(v, -1, false)
	}
	if t := e.live[v]; t != nil {
		// What Pacemaker leaves in the VM's table, which VMs placed later
		// may merge: -INFINITY everywhere when it is to stay stopped, and
		// the capacity bans of its placement.
		for x := range t {
			switch {
			case e.vms[v].Target == Stopped:
				t[x] = -Infinity
			case e.useCap && e.avail[x] && t[x] >= 0 && !e.fitsNeed(x):
				t[x] = -Infinity
			}
		}
	}
	e.take(v, h)
	e.state[v] = 2
	e.order = append(e.order, v)
}

// hostEval is one host's score and eligibility for the VM being placed.
type hostEval struct {
	score    Score
	eligible bool
}

// choose computes v's scores on every host and returns the best eligible
// host, or -1. exclude names a host to skip (for the rescue search);
// quiet skips explanations and scores.
func (e *engine) choose(v, exclude int, quiet bool) int {
	ex := e.explain[v]
	if quiet {
		ex = nil
	}
	e.acc.reset()
	if ex != nil {
		e.acc.terms = map[int][]Term{}
	}
	if e.live[v] != nil {
		// Its colocations are in its table already (applyColocations).
		e.loadLive(v, ex != nil)
	} else {
		e.own(v, &e.acc)
	}
	var evals []hostEval
	if ex != nil || e.scores != nil {
		evals = make([]hostEval, e.nh)
	}
	e.groupNeed(v)
	best := e.scan(v, exclude, evals)
	if ex != nil || e.scores != nil {
		e.record(v, best, evals)
	}
	return best
}

func hostName(e *engine, h int) string {
	if h < 0 {
		return "nowhere"
	}
	return e.hosts[h].Name
}

// score is the score of host h for the VM whose terms are in e.acc.
func (e *engine) score(h int) Score {
	return e.ownScore(&e.acc, h)
}

// scan finds the best eligible host. Host order is name order, so the
// first of equals is the one with the smallest name.
func (e *engine) scan(v, exclude int, evals []hostEval) int {
	var hs []int
	if len(evals) == 0 && !e.reference {
		hs = e.topTouched(exclude)
	}
	var best int
	var bestScore Score
	if hs != nil {
		// Only the touched hosts can win (see topTouched): walk them in
		// host order, as scanAll would.
		best, bestScore = e.walk(v, hs)
	} else {
		best, bestScore = e.scanAll(v, exclude, evals)
	}
	if e.groupShort && best >= 0 {
		// The most capable host wins if it scores as well as the best.
		// Pacemaker keeps the first of equals in the order it walks its
		// node table (a hash table), so that order decides ties.
		if e.hashOrder == nil {
			// vmha has no node ids: they are taken as 1, 2, ... in the
			// order the hosts are listed, as corosync numbers the nodes of
			// its nodelist by default and as internal/pacemaker writes them.
			ids := make([]string, e.nh)
			for i := range ids {
				ids[i] = strconv.Itoa(i + 1)
			}
			for _, i := range glibOrder(ids) {
				e.hashOrder = append(e.hashOrder, e.hostIx[e.in.Hosts[i].Name])
			}
		}
		most := -1
		for _, h := range e.hashOrder {
			if e.avail[h] && e.score(h) >= 0 && (most < 0 || e.compareCap(e.free, h, most) < 0) {
				most = h
			}
		}
		if most >= 0 && most != exclude && e.fitsNeed(most) && e.score(most) >= bestScore {
			return most
		}
	}
	// Pacemaker keeps a VM on its current host when that host ties with
	// the best on a positive score, whatever the other tie-breaks say.
	if r := e.running[v]; best >= 0 && r >= 0 && r != best && bestScore > 0 && r != exclude {
		if s := e.score(r); s == bestScore && e.avail[r] && (!e.useCap || e.fitsNeed(r)) {
			best = r
		}
	}
	return best
}

// scanAll walks every host in order, keeping the first eligible one and
// replacing it by each later one that is better; it fills evals if given.
func (e *engine) scanAll(v, exclude int, evals []hostEval) (int, Score) {
	best := -1
	var bestScore Score
	for h := 0; h < e.nh; h++ {
		s := e.score(h)
		ok := s >= 0 && e.avail[h] && h != exclude && (!e.useCap || e.fitsNeed(h))
		if len(evals) > 0 {
			evals[h] = hostEval{s, ok}
		}
		if !ok {
			continue
		}
		if best < 0 || e.better(v, h, s, best, bestScore) {
			best, bestScore = h, s
		}
	}
	return best, bestScore
}

// walk is scanAll over the eligible hosts hs (in host order) alone.
func (e *engine) walk(v int, hs []int) (int, Score) {
	best := -1
	var bestScore Score
	for _, h := range hs {
		if s := e.score(h); best < 0 || e.better(v, h, s, best, bestScore) {
			best, bestScore = h, s
		}
	}
	return best, bestScore
}

// topTouched returns, in host order, the eligible hosts with the highest
// score among those the VM's terms touched (e.acc.touched), when that score
// is above the score every untouched host has (0, or -INFINITY in an
// opt-in cluster); otherwise nil.
//
// The scan keeps the first eligible host and replaces it by each later one
// that is better, and a higher score is always better. Once it reaches the
// first host with the highest score M, only hosts scoring M can replace it,
// so the result is that of the same walk over the hosts scoring M alone.
// When M is above the untouched hosts' score, those are all touched ones.
func (e *engine) topTouched(exclude int) []int {
	base := Score(0)
	if e.in.Policy.OptIn {
		base = -Infinity
	}
	top := e.topBuf[:0]
	m := base
	for _, h := range e.acc.touched {
		s := e.score(h)
		if s < 0 || s < m || !e.avail[h] || h == exclude || (e.useCap && !e.fitsNeed(h)) {
			continue
		}
		if s > m {
			m, top = s, top[:0]
		}
		if s == m && m > base {
			top = append(top, h)
		}
	}
	e.topBuf = top
	if len(top) == 0 {
		return nil
	}
	if len(top) > 1 {
		sort.Ints(top)
	}
	return top
}

// better reports whether host a (score sa) beats host b (score sb) for v.
func (e *engine) better(v, a int, sa Score, b int, sb Score) bool {
	c, _ := e.compareHosts(v, a, sa, b, sb)
	return c < 0
}

// compareHosts orders two eligible hosts with Pacemaker's tie-breaks and
// names the deciding one.
func (e *engine) compareHosts(v, a int, sa Score, b int, sb Score) (int, string) {
	if sa != sb {
		if sa > sb {
			return -1, "higher score"
		}
		return 1, "higher score"
	}
	if e.strat != StrategyMinimal {
		if e.strat == StrategyBalanced {
			if c := e.compareCap(e.free, a, b); c != 0 {
				return c, "more free capacity (balanced)"
			}
		}
		if e.count[a] != e.count[b] {
			if e.count[a] < e.count[b] {
				return -1, "fewer VMs assigned"
			}
			return 1, "fewer VMs assigned"
		}
		if r := e.running[v]; r == a || r == b {
			if r == a {
				return -1, "current host"
			}
			return 1, "current host"
		}
	}
	if a < b {
		return -1, "name"
	}
	if a > b {
		return 1, "name"
	}
	return 0, ""
}

// record keeps the scores and the explanation of v's placement.
func (e *engine) record(v, best int, evals []hostEval) {
	if e.scores != nil {
		m := make(map[string]Score, e.nh)
		for h := range e.hosts {
			// The score before availability and capacity, as crm_simulate
			// -s prints it; the explanation says which filters apply.
			m[e.hosts[h].Name] = evals[h].score
		}
		e.scores[e.vms[v].Name] = m
	}
	ex := e.explain[v]
	if ex == nil {
		return
	}
	ex.Hosts = ex.Hosts[:0]
	for h, host := range e.hosts {
		he := HostExplanation{Host: host.Name, Score: evals[h].score, Eligible: evals[h].eligible}
		if e.acc.terms != nil {
			he.Terms = append(he.Terms, e.acc.terms[h]...)
		}
		if e.in.Policy.OptIn && !e.acc.allowed[h] {
			he.Filters = append(he.Filters, "opt-in cluster: no location constraint allows this host")
		}
		if !e.avail[h] {
			he.Filters = append(he.Filters, e.why[h])
		}
		if e.useCap && !e.fitsNeed(h) {
			if e.fits(v, h) {
				he.Filters = append(he.Filters, "insufficient capacity for the VMs that must run with it")
			} else {
				he.Filters = append(he.Filters, "insufficient capacity: "+e.shortfall(v, h))
			}
		}
		if evals[h].score < 0 && !evals[h].eligible {
			he.Filters = append(he.Filters, "score "+evals[h].score.String()+" is negative")
		}
		ex.Hosts = append(ex.Hosts, he)
	}
	ex.Reason = e.reason(v, best, evals)
}

func (e *engine) shortfall(v, h int) string {
	var parts []string
	for _, u := range e.util[v] {
		if f := e.free[h*e.nk+u.k]; f < u.v {
			parts = append(parts, fmt.Sprintf("%s %d free, %d needed", e.keys[u.k], max(f, 0), u.v))
		}
	}
	return strings.Join(parts, ", ")
}

func (e *engine) reason(v, best int, evals []hostEval) string {
	if best < 0 {
		return "no host can run it: " + e.noHostWhy(evals)
	}
	second := -1
	for h := range e.hosts {
		if h == best || !evals[h].eligible {
			continue
		}
		if second < 0 || e.better(v, h, evals[h].score, second, evals[second].score) {
			second = h
		}
	}
	name := e.hosts[best].Name
	if second < 0 {
		return fmt.Sprintf("%s is the only eligible host (score %s)", name, evals[best].score)
	}
	_, why := e.compareHosts(v, best, evals[best].score, second, evals[second].score)
	if r := e.running[v]; r == best && evals[best].score > 0 && evals[second].score == evals[best].score {
		why = "current host (equal positive score)"
	}
	return fmt.Sprintf("%s wins over %s on %s (score %s vs %s)", name, e.hosts[second].Name, why, evals[best].score, evals[second].score)
}

// noHostWhy says per host why none can run the VM: its filter, or the
// -INFINITY terms of its score (a fail count, a rule, a colocation), so
// that a stopped VM's reason tells the operator what to fix.
func (e *engine) noHostWhy(evals []hostEval) string {
	const most = 6
	var parts []string
	for h := range e.hosts {
		if len(parts) == most {
			parts = append(parts, fmt.Sprintf("and %d more", len(e.hosts)-most))
			break
		}
		var why []string
		switch {
		case !e.avail[h]:
			why = append(why, e.why[h])
		case e.useCap && !e.fitsNeed(h):
			why = append(why, "insufficient capacity")
		default:
			if e.acc.terms != nil {
				for _, t := range e.acc.terms[h] {
					if t.Score <= -Infinity {
						why = append(why, t.Source)
					}
				}
			}
			if len(why) == 0 {
				why = append(why, "score "+evals[h].score.String())
			}
		}
		parts = append(parts, e.hosts[h].Name+": "+strings.Join(why, ", "))
	}
	return strings.Join(parts, "; ")
}
