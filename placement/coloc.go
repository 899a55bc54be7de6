package placement

import (
	"fmt"
	"sort"
)

// Colocations follow Pacemaker 2.1.5's scheduler step by step, because
// its answer depends on the order in which it changes each resource's
// allowed-node scores (checked against crm_simulate in internal/pacemaker):
//
//   - Every VM in a colocation keeps a live score table (Pacemaker's
//     allowed_nodes): its own scores at first, changed in place while it is
//     placed. Another VM that merges this VM's preferences reads the table as
//     it is at that moment: with the colocations this VM has applied so far
//     when its own placement is under way (it placed the other VM first),
//     its final scores when it is placed already.
//   - Placing a VM: for each VM it is colocated with (by priority, then
//     name), place that VM first and apply the colocation at once: +INFINITY
//     leaves only that VM's host, -INFINITY bans it, a finite score adds to
//     it; a finite score that leaves no host is undone. Then the VMs
//     colocated with it (by priority, then name) merge their tables, each
//     with its followers, recursively (pcmk__add_colocated_node_scores).
//   - A merge adds the other VM's score times its colocation's score /
//     INFINITY, with the sign flipped when the chain above it is negative
//     (only the sign passes down, not the product); float32, rounded, never
//     rounded to 0. A negative factor never meets a negative score (no sign
//     flip); a host that cannot run VMs counts as -INFINITY. Each merged VM
//     is undone with everything merged under it if it leaves no host with a
//     score >= 0 (the rollback), and a VM is not merged again below itself
//     (the merging flag is set on the path only, so a VM reached by two
//     paths counts twice).
//   - In a colocation loop, a VM placed from within the placement of a VM
//     colocated with it applies nothing for its own colocation with that VM
//     (not placed yet); see blockDependents for what follows.

// colocOrder sorts a VM's colocations as Pacemaker's lists are: by the
// other VM's priority (higher first), then its name; among colocations with
// the same VM the one configured last comes first (g_list_insert_sorted
// puts a new element before its equals).
func (e *engine) colocOrder(cs []int, other func(Colocation) string) {
	sort.SliceStable(cs, func(i, j int) bool {
		a, b := e.vms[e.vmIx[other(e.in.Colocations[cs[i]])]], e.vms[e.vmIx[other(e.in.Colocations[cs[j]])]]
		if a.Priority != b.Priority {
			return a.Priority > b.Priority
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return cs[i] > cs[j]
	})
}

// initLive gives every VM in a colocation its live score table, from its
// own scores (-INFINITY where an opt-in cluster does not allow it).
func (e *engine) initLive() {
	e.mergeOps = mergeBudget
	e.live = make([][]Score, len(e.vms))
	e.merging = make([]bool, len(e.vms))
	for v := range e.vms {
		if len(e.asDep[v]) == 0 && len(e.asPrim[v]) == 0 {
			continue
		}
		e.tmp.reset()
		e.own(v, &e.tmp)
		t := make([]Score, e.nh)
		for h := range t {
			t[h] = e.ownScore(&e.tmp, h)
		}
		e.live[v] = t
	}
	e.tmp.reset()
}

// mergeBudget bounds the host scores that colocation merges below the
// first level may add up in one plan (see merge).
const mergeBudget = 5_000_000

// buf returns the scratch table for merge depth d.
func (e *engine) buf(d int) []Score {
	for len(e.bufs) <= d {
		e.bufs = append(e.bufs, make([]Score, e.nh))
	}
	return e.bufs[d]
}

// anyAvail is pcmk__any_node_available: a host that can run VMs scores >= 0.
func (e *engine) anyAvail(t []Score) bool {
	for h, s := range t {
		if s >= 0 && e.avail[h] {
			return true
		}
	}
	return false
}

// colocFactor is factor * score / INFINITY in float32, as Pacemaker
// computes it (explicit conversions keep Go from fusing the operations).
func colocFactor(factor float32, s Score) float32 {
	return float32(float32(factor*float32(s)) / float32(Infinity))
}

// addScaled is add_node_scores_matching_attr: x's live score on each host,
// times f, added to t.
func (e *engine) addScaled(t []Score, x int, f float32) {
	lx := e.live[x]
	for h := range t {
		// best_node_score_matching_attr: only a host that can run VMs
		// lends its score.
		score := -Infinity
		if e.avail[h] {
			score = lx[h]
		}
		if f < 0 && score < 0 {
			continue // a host the other VM avoids is no reason to prefer it
		}
		wf := float32(f * float32(score))
		var w int64
		if wf < 0 {
			w = int64(float64(wf) - 0.5)
		} else {
			w = int64(float64(wf) + 0.5)
		}
		// A small factor must not erase a nonzero preference.
		if w == 0 && score != 0 {
			if f > 0 {
				w = 1
			} else if f < 0 {
				w = -1
			}
		}
		t[h] = Add(clamp(Score(w)), t[h])
	}
}

// merge is pcmk__add_colocated_node_scores after the first level: it adds
// x's scores at factor f to t, then recursively those of the VMs x is
// colocated with (thisWith, for the allocation order) or of those colocated
// with x (when placing), and keeps the result only if some host is left.
func (e *engine) merge(t []Score, x int, f float32, thisWith bool, depth int) {
	if e.merging[x] {
		return // a loop: x is being merged further up this path
	}
	// The merge follows every path, so densely colocated VMs make it
	// exponential (in Pacemaker too). Past a budget of host scores for the
	// whole plan it merges only the VMs directly colocated: a plan stays
	// fast whatever the configuration.
	if depth >= 2 && e.mergeOps <= 0 {
		return
	}
	e.mergeOps -= e.nh
	e.merging[x] = true
	w := e.buf(depth)
	copy(w, t)
	e.addScaled(w, x, f)
	if e.anyAvail(w) {
		e.mergeFollowers(w, x, f, thisWith, depth+1)
		copy(t, w)
	}
	e.merging[x] = false
}

// mergeFollowers merges, into t, the VMs x is colocated with (thisWith) or
// those colocated with x.
func (e *engine) mergeFollowers(t []Score, x int, f float32, thisWith bool, depth int) {
	list := e.asPrim[x]
	if thisWith {
		list = e.asDep[x]
	}
	for _, ci := range list {
		c := e.in.Colocations[ci]
		other := e.vmIx[c.VM]
		if thisWith {
			other = e.vmIx[c.With]
		}
		// Pacemaker 2.1.5 passes down only the sign of the factor: a VM two
		// colocations away counts at its own colocation's score / INFINITY,
		// not at the product of the two (crm_simulate's traces show it).
		sign := float32(1)
		if f < 0 {
			sign = -1
		}
		e.merge(t, other, colocFactor(sign, c.Score), thisWith, depth)
	}
}

// sortScores fills t with v's scores for the allocation order: its own,
// merged with those of the VMs it is colocated with (cmp_resources).
func (e *engine) sortScores(v int, t []Score) {
	copy(t, e.live[v])
	if !e.anyAvail(t) {
		return
	}
	e.merging[v] = true
	e.mergeFollowers(t, v, 1, true, 1)
	e.merging[v] = false
}

// applyColocations changes v's live table as Pacemaker does when it
// places v: the colocations where v is the dependent (placing the other
// VM first), then the preferences of the VMs colocated with v.
func (e *engine) applyColocations(v int) {
	t := e.live[v]
	ex := e.explain[v]
	var terms map[int][]Term
	if ex != nil {
		terms = map[int][]Term{}
		e.colTerms[v] = terms
	}
	before := e.buf(0)
	for _, ci := range e.asDep[v] {
		c := e.in.Colocations[ci]
		p := e.vmIx[c.With]
		e.allocate(p)
		if e.state[p] == 1 {
			// A loop: the other VM waits for this one, so Pacemaker
			// applies nothing (its primary is still provisional).
			continue
		}
		copy(before, t)
		ph := e.assigned[p]
		src := fmt.Sprintf("colocation with %s (%s)", c.With, c.Score)
		if ph < 0 && c.Score < 0 {
			continue // apart from a VM that runs nowhere: nothing to do
		}
		for h := range t {
			switch {
			case ph < 0:
				// With a VM that runs nowhere: the score is taken away
				// everywhere (+INFINITY bans every host).
				t[h] = Add(-c.Score, t[h])
			case h == ph:
				// +INFINITY is a requirement, not a preference: it adds
				// nothing where the other VM runs.
				if c.Score < Infinity {
					t[h] = Add(c.Score, t[h])
				}
			case c.Score >= Infinity:
				t[h] = -Infinity
			}
		}
		if ex != nil && c.Score >= Infinity {
			ex.Notes = append(ex.Notes, fmt.Sprintf("must run with %s (on %s)", c.With, hostName(e, ph)))
		}
		if c.Score > -Infinity && c.Score < Infinity && !e.anyAvail(t) {
			copy(t, before)
			if ex != nil {
				ex.Notes = append(ex.Notes, src+" ignored: with it no host could run it")
			}
			continue
		}
		e.noteDiff(terms, before, t, src)
	}
	for _, ci := range e.asPrim[v] {
		c := e.in.Colocations[ci]
		if terms != nil {
			copy(before, t)
		}
		d := e.vmIx[c.VM]
		changed := e.mergeTop(t, d, colocFactor(1, c.Score))
		src := fmt.Sprintf("preferences of %s, colocated with it (%s)", c.VM, c.Score)
		if !changed && ex != nil {
			ex.Notes = append(ex.Notes, src+" ignored: with them no host could run it")
		}
		e.noteDiff(terms, before, t, src)
	}
}

// mergeTop merges d (colocated with the VM whose table is t) into t, as
// Pacemaker's apply_with_this does: the VM being placed is not marked as
// merging, so a loop can bring its own table back in. It reports whether
// the merge was kept.
func (e *engine) mergeTop(t []Score, d int, f float32) bool {
	if e.merging[d] {
		return true
	}
	e.merging[d] = true
	w := e.buf(1)
	copy(w, t)
	e.addScaled(w, d, f)
	ok := e.anyAvail(w)
	if ok {
		e.mergeFollowers(w, d, f, false, 2)
		copy(t, w)
	}
	e.merging[d] = false
	return ok
}

// noteDiff records, for an explanation, what a colocation step changed.
func (e *engine) noteDiff(terms map[int][]Term, before, after []Score, src string) {
	if terms == nil {
		return
	}
	for h := range after {
		if after[h] == before[h] {
			continue
		}
		d := after[h] - before[h]
		if after[h] <= -Infinity || after[h] >= Infinity {
			d = after[h]
		}
		terms[h] = append(terms[h], Term{Source: src, Score: d})
	}
}

// loadLive puts v's live table into e.acc (with the terms that explain it
// when asked).
func (e *engine) loadLive(v int, explain bool) {
	if explain {
		e.tmp.reset()
		e.tmp.terms = map[int][]Term{}
		e.own(v, &e.tmp)
	}
	for h, s := range e.live[v] {
		e.acc.has[h] = true
		e.acc.allowed[h] = true
		e.acc.val[h] = s
		e.acc.touched = append(e.acc.touched, h)
		if explain {
			e.acc.terms[h] = append(append([]Term(nil), e.tmp.terms[h]...), e.colTerms[v][h]...)
		}
	}
	if explain {
		e.tmp.reset()
	}
}

// glibPrimeMod is GLib's prime_mod table: the modulus of a hash table of
// 1<<shift buckets.
var glibPrimeMod = [...]uint32{1, 2, 3, 7, 13, 31, 61, 127, 251, 509, 1021, 2039, 4093, 8191, 16381,
	32749, 65521, 131071, 262139, 524287, 1048573, 2097143, 4194301, 8388593, 16777213, 33554393,
	67108859, 134217689, 268435399, 536870909, 1073741789, 2147483647}

// glibOrder returns the indexes of keys in the order GLib (2.74, Debian
// 12's) iterates a hash table, hashed with Pacemaker's crm_str_hash, into
// which they were inserted in that order. Pacemaker walks its node tables,
// keyed by node id, in this order, and where its comparisons tie (the host
// with the most free capacity) the first one walked wins: matching it needs
// the same walk (seen with crm_simulate's traces). Collisions after a
// resize are placed as a fresh insert would place them, which may differ
// from GLib's in-place rehash.
func glibOrder(keys []string) []int {
	type slot struct {
		used bool
		i    int
		hash uint32
	}
	shift := 3
	slots := make([]slot, 1<<shift)
	put := func(s slot) {
		mask := uint32(len(slots) - 1)
		idx := (s.hash * 11) % glibPrimeMod[shift]
		for step := uint32(1); slots[idx].used; step++ {
			idx = (idx + step) & mask
		}
		slots[idx] = s
	}
	for i, key := range keys {
		// crm_str_hash: h*31 + c over signed chars, from 0.
		h := uint32(0)
		for _, b := range []byte(key) {
			h = h*31 + uint32(int32(int8(b)))
		}
		if h < 2 {
			h = 2 // GLib reserves 0 and 1 for empty and deleted buckets
		}
		put(slot{true, i, h})
		if n := i + 1; len(slots) <= n+n/16 {
			old := slots
			shift = 3
			for m := int(float64(n) * 1.333); m>>shift != 0; {
				shift++
			}
			slots = make([]slot, 1<<shift)
			for _, s := range old {
				if s.used {
					put(s)
				}
			}
		}
	}
	order := make([]int, 0, len(keys))
	for _, s := range slots {
		if s.used {
			order = append(order, s.i)
		}
	}
	return order
}
