package rebalance

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	"pgregory.net/rapid"

	"github.com/vmha/vmha/placement"
)

// tb is what the checks need of *testing.T and *rapid.T.
type tb interface {
	Helper()
	Fatal(...any)
	Fatalf(string, ...any)
}

// samePlan fails unless Plan and the reference climb give the same result:
// moves (gains to the bit), steps, skipped VMs and scores.
func samePlan(t tb, in placement.Input, opt Options) *Result {
	t.Helper()
	got, err := Plan(in, opt)
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	want, err := planRef(in, opt)
	if err != nil {
		t.Fatalf("planRef: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		n := min(len(got.Moves), len(want.Moves))
		i := 0
		for i < n && got.Moves[i] == want.Moves[i] {
			i++
		}
		t.Fatalf("options %+v: Plan differs from the reference at move %d of %d/%d:\n got %+v\nwant %+v\n(after %v, want %v)",
			opt, i, len(got.Moves), len(want.Moves), got.Moves[i:min(i+3, len(got.Moves))], want.Moves[i:min(i+3, len(want.Moves))], got.After, want.After)
	}
	return got
}

// TestClimbMatchesReference: on the small clusters of the property test,
// with every kind of constraint and option, Plan gives the reference's
// plan exactly.
func TestClimbMatchesReference(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		in := genInput(t)
		opt := Options{
			MaxMoves: rapid.IntRange(0, 6).Draw(t, "maxmoves"),
			MinGain:  rapid.SampledFrom([]float64{0, 1e-6, 1e-3, 0.01, 0.1}).Draw(t, "mingain"),
		}
		if rapid.IntRange(0, 4).Draw(t, "keys") == 0 {
			opt.Keys = rapid.SampledFrom([][]string{{"memory"}, {"cpu"}, {"gpu", "memory"}, {"cpu", "memory", "gpu"}}).Draw(t, "keylist")
		}
		samePlan(t, in, opt)
	})
}

// variedInput is benchInput with every host's capacities scaled by its own
// factor (so that there are more distinct capacities than bound groups),
// some pins and some anti-colocations.
func variedInput(seed uint64, nh, nv int) placement.Input {
	r := rand.New(rand.NewPCG(seed, 17))
	in := benchInput(nh, nv, true)
	for i := range in.Hosts {
		f := 1 + 0.3*r.Float64()
		c := in.Hosts[i].Capacity
		in.Hosts[i].Capacity = map[string]int64{"memory": int64(float64(c["memory"]) * f), "cpu": int64(float64(c["cpu"])*f) + 1}
	}
	for i := 0; i+6 < len(in.VMs) && i < 60; i += 7 {
		in.Colocations = append(in.Colocations, placement.Colocation{VM: in.VMs[i].Name, With: in.VMs[i+r.IntN(5)+1].Name, Score: -placement.Infinity})
	}
	return in
}

// TestClimbMatchesReferenceLarger runs both climbs to convergence on
// larger clusters of fixed seeds: the bench clusters (three host sizes),
// the hbal comparison's, and clusters with more distinct capacities.
func TestClimbMatchesReferenceLarger(t *testing.T) {
	sizes := [][2]int{{4, 30}, {10, 200}, {30, 1000}, {60, 2500}}
	if testing.Short() {
		sizes = sizes[:2]
	}
	for _, sz := range sizes {
		for _, pins := range []bool{false, true} {
			in := benchInput(sz[0], sz[1], pins)
			for _, g := range []float64{0, 1e-6, 1e-3} {
				t.Run(fmt.Sprintf("bench/%dx%d/pins=%v/mingain=%g", sz[0], sz[1], pins, g), func(t *testing.T) {
					samePlan(t, in, Options{MinGain: g})
				})
			}
		}
		for seed := uint64(1); seed <= 3; seed++ {
			in := variedInput(seed, sz[0], sz[1])
			t.Run(fmt.Sprintf("varied/%dx%d/seed=%d", sz[0], sz[1], seed), func(t *testing.T) {
				samePlan(t, in, Options{MinGain: 1e-6})
				samePlan(t, in, Options{MaxMoves: 5})
			})
		}
	}
	for seed := uint64(1); seed <= 20; seed++ {
		r := rand.New(rand.NewPCG(seed, 3))
		nn := 4 + r.IntN(17)
		in := genCluster(r, nn, nn*(3+r.IntN(8))).input()
		t.Run(fmt.Sprintf("hbal/seed=%d", seed), func(t *testing.T) {
			samePlan(t, in, Options{MinGain: 1e-4})
		})
	}
}

// TestUpperBound checks bounds.upper and bounds.reaches against the best gain of every class
// at every step of reference climbs: the bound must never be below it.
func TestUpperBound(t *testing.T) {
	check := func(t tb, in placement.Input, keys []string) {
		if len(keys) == 0 {
			keys = defaultKeys
		}
		m := newModel(&in, keys)
		p, err := newPlanner(&in, m)
		if err != nil {
			t.Fatal(err)
		}
		st := newStats(m)
		cs, _ := p.classes()
		bd := newBounds(p, st)
		bd.needs(cs)
		for step := 0; step < 300; step++ {
			bd.update()
			var all best
			for _, c := range cs {
				for _, v := range c.vms {
					if p.moved[v] {
						continue
					}
					var b best
					p.scan(st, v, c.a, math.Inf(-1), &b)
					if ub := bd.upper(v, c.a, c.f); b.ok && b.gain > ub {
						t.Fatalf("step %d: %s from %s gains %v to %s, above its bound %v",
							step, in.VMs[v].Name, m.hosts[c.a].Name, b.gain, m.hosts[b.to].Name, ub)
					}
					if b.ok && !bd.reaches(v, c.a, c.f, b.gain) {
						t.Fatalf("step %d: %s from %s gains %v to %s, but the front's bound does not reach it",
							step, in.VMs[v].Name, m.hosts[c.a].Name, b.gain, m.hosts[b.to].Name)
					}
					if b.ok && p.better(b.gain, b.v, b.to, &all) {
						all = b
					}
				}
			}
			if !all.ok {
				return
			}
			// Take the best move even when it loses, to visit
			// unbalanced states too.
			m.place(all.v, all.to)
			st.moved(all.from, all.to)
			p.moved[all.v] = true
		}
	}
	for seed := uint64(1); seed <= 3; seed++ {
		check(t, variedInput(seed, 20, 300), nil)
	}
	check(t, benchInput(8, 100, true), nil)
	rapid.Check(t, func(t *rapid.T) {
		in := genInput(t)
		check(t, in, rapid.SampledFrom([][]string{nil, {"memory"}, {"cpu", "memory", "gpu"}}).Draw(t, "keys"))
	})
}
