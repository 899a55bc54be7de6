package rebalance

import (
	"fmt"
	"math"
	"reflect"
	"testing"

	"pgregory.net/rapid"

	"github.com/vmha/vmha/placement"
)

// genInput draws a small cluster with everything Plan must respect:
// host states, capacities (including a key the metric does not balance),
// stickiness, locations, colocations of every sign, VMs that may not move.
func genInput(t *rapid.T) placement.Input {
	var in placement.Input
	nh := rapid.IntRange(1, 7).Draw(t, "hosts")
	names := []string{""}
	for i := 0; i < nh; i++ {
		h := placement.HostInfo{
			Name: fmt.Sprintf("h%d", i),
			Capacity: map[string]int64{
				"memory": int64(rapid.IntRange(0, 16).Draw(t, "mem")) * 1024,
				"cpu":    int64(rapid.IntRange(0, 16).Draw(t, "cpu")),
			},
		}
		switch rapid.IntRange(0, 9).Draw(t, "state") {
		case 0:
			h.Standby = true
		case 1:
			h.Maintenance = true
		case 2:
			h.Condition = placement.HostCondition(rapid.IntRange(1, 3).Draw(t, "cond"))
		}
		if rapid.Bool().Draw(t, "hasgpu") {
			h.Capacity["gpu"] = int64(rapid.IntRange(0, 2).Draw(t, "gpu"))
		}
		names = append(names, h.Name)
		in.Hosts = append(in.Hosts, h)
	}
	stickies := []*placement.Score{nil, ptr(0), ptr(100), ptr(placement.Infinity)}
	nv := rapid.IntRange(0, 24).Draw(t, "vms")
	for i := 0; i < nv; i++ {
		v := placement.VMInfo{
			Name:         fmt.Sprintf("vm%02d", i),
			Current:      rapid.SampledFrom(names).Draw(t, "current"),
			AllowMigrate: rapid.IntRange(0, 5).Draw(t, "nomigrate") != 0,
			Unmanaged:    rapid.IntRange(0, 12).Draw(t, "unmanaged") == 0,
			Stickiness:   rapid.SampledFrom(stickies).Draw(t, "stick"),
			Utilization: map[string]int64{
				"memory": int64(rapid.IntRange(0, 8).Draw(t, "vmem")) * 512,
				"cpu":    int64(rapid.IntRange(0, 4).Draw(t, "vcpu")),
			},
		}
		if rapid.IntRange(0, 12).Draw(t, "stopped") == 0 {
			v.Target = placement.Stopped
		}
		if rapid.IntRange(0, 6).Draw(t, "usesgpu") == 0 {
			v.Utilization["gpu"] = 1
		}
		in.VMs = append(in.VMs, v)
	}
	scores := []placement.Score{-placement.Infinity, -100, 0, 50, placement.Infinity}
	if nv > 0 {
		for i, n := 0, rapid.IntRange(0, 6).Draw(t, "locations"); i < n; i++ {
			in.Locations = append(in.Locations, placement.Location{
				VM:    in.VMs[rapid.IntRange(0, nv-1).Draw(t, "lvm")].Name,
				Host:  rapid.SampledFrom(names[1:]).Draw(t, "lhost"),
				Score: rapid.SampledFrom(scores).Draw(t, "lscore"),
			})
		}
	}
	if nv > 1 {
		colo := []placement.Score{-placement.Infinity, -100, 100, placement.Infinity}
		for i, n := 0, rapid.IntRange(0, 4).Draw(t, "colocations"); i < n; i++ {
			a := rapid.IntRange(0, nv-1).Draw(t, "cvm")
			b := rapid.IntRange(0, nv-1).Draw(t, "cwith")
			if a != b {
				in.Colocations = append(in.Colocations, placement.Colocation{VM: in.VMs[a].Name, With: in.VMs[b].Name, Score: rapid.SampledFrom(colo).Draw(t, "cscore")})
			}
		}
	}
	in.Policy = placement.Policy{
		DefaultStickiness: placement.Score(rapid.SampledFrom([]int{0, 0, 100}).Draw(t, "defstick")),
		Strategy:          placement.StrategyUtilization,
		OptIn:             rapid.IntRange(0, 5).Draw(t, "optin") == 0,
		MigrationLimit:    rapid.IntRange(0, 2).Draw(t, "limit"),
	}
	if placement.Validate(&in) != nil {
		t.Skip("unsatisfiable colocations")
	}
	return in
}

func ptr(s placement.Score) *placement.Score { return &s }

// locationScore is a VM's preference for a host from the location
// constraints alone, computed here independently of the engine: the
// generator draws no rules and no fail counts.
func locationScore(in *placement.Input, vm, host string) placement.Score {
	var s placement.Score
	allowed := false
	for _, l := range in.Locations {
		if l.VM == vm && l.Host == host {
			s = placement.Add(s, l.Score)
			allowed = true
		}
	}
	if in.Policy.OptIn && !allowed {
		return -placement.Infinity
	}
	return s
}

func TestPlanProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		in := genInput(t)
		opt := Options{
			MaxMoves: rapid.IntRange(0, 6).Draw(t, "maxmoves"),
			MinGain:  rapid.SampledFrom([]float64{0, 1e-3, 0.01, 0.1}).Draw(t, "mingain"),
		}
		res, err := Plan(in, opt)
		if err != nil {
			t.Fatalf("Plan: %v", err)
		}
		checkPlan(t, in, opt, res)

		again, err := Plan(in, opt)
		if err != nil || !reflect.DeepEqual(res, again) {
			t.Fatalf("not deterministic:\n%+v\n%+v (%v)", res, again, err)
		}

		// Nothing left to gain: with no move budget, planning the result
		// again (the VMs that moved may not move twice) finds no move.
		if opt.MaxMoves == 0 && opt.MinGain > 0 {
			next := apply(in, res.Moves)
			moved := map[string]bool{}
			for _, m := range res.Moves {
				moved[m.VM] = true
			}
			for i := range next.VMs {
				if moved[next.VMs[i].Name] {
					next.VMs[i].AllowMigrate = false
				}
			}
			res2, err := Plan(next, opt)
			if err != nil {
				t.Fatal(err)
			}
			if len(res2.Moves) > 0 {
				t.Fatalf("planning the result again moves %+v", res2.Moves)
			}
		}
	})
}

// apply returns in with the moves done.
func apply(in placement.Input, moves []Move) placement.Input {
	out := in
	out.VMs = append([]placement.VMInfo(nil), in.VMs...)
	to := map[string]string{}
	for _, m := range moves {
		to[m.VM] = m.To
	}
	for i := range out.VMs {
		if h, ok := to[out.VMs[i].Name]; ok {
			out.VMs[i].Current = h
		}
	}
	return out
}

// checkPlan replays a plan move by move and step by step and checks every
// rule Plan promises.
func checkPlan(t *rapid.T, in placement.Input, opt Options, res *Result) {
	const eps = 1e-9
	if s := Score(in, nil); math.Abs(s-res.Before) > eps {
		t.Fatalf("Before %v, Score %v", res.Before, s)
	}
	if opt.MaxMoves > 0 && len(res.Moves) > opt.MaxMoves {
		t.Fatalf("%d moves, at most %d allowed", len(res.Moves), opt.MaxMoves)
	}
	r := newPlanReplay(t, in, res)
	for i, m := range res.Moves {
		vm := r.vms[m.VM]
		r.checkMoveAllowed(i, m, vm, res)
		r.checkStep(i, m, vm)
		r.apply(m, vm)
		// The score drops by the announced gain, at least MinGain.
		s := Score(in, r.where)
		if s > r.prev+eps {
			t.Fatalf("move %d: score rises from %v to %v", i, r.prev, s)
		}
		// The planner keeps running sums, so its gain may differ from a
		// full recomputation by float rounding (1e-8 seen on CI): within
		// 1e-6 of a score of order 1 it is the same move.
		if math.Abs((r.prev-s)-m.Gain) > 1e-6 || m.Gain < opt.MinGain {
			t.Fatalf("move %d: gain %v announced, %v measured, min %v", i, m.Gain, r.prev-s, opt.MinGain)
		}
		r.prev = s
	}
	if math.Abs(r.prev-res.After) > eps {
		t.Fatalf("After %v, replayed %v", res.After, r.prev)
	}
}

// planReplay is the cluster as checkPlan replays a plan on it.
type planReplay struct {
	t        *rapid.T
	in       placement.Input
	hosts    map[string]*placement.HostInfo
	vms      map[string]*placement.VMInfo
	where    map[string]string           // VM -> host
	used     map[string]map[string]int64 // host -> key -> usage
	together map[string]bool             // VMs with a positive colocation
	anti     map[[2]string]bool          // pairs with a negative colocation
	prev     float64                     // the score before the next move
	moved    map[string]bool
	// The current step: its number, the usage when it began, what arrives
	// on each host in it, the migrations on each host, and the VMs that
	// leave a host in it.
	step     int
	base     map[string]map[string]int64
	incoming map[string]map[string]int64
	inStep   map[string]int
	leaving  map[string]string
}

func newPlanReplay(t *rapid.T, in placement.Input, res *Result) *planReplay {
	r := &planReplay{
		t: t, in: in, prev: res.Before,
		hosts: map[string]*placement.HostInfo{}, vms: map[string]*placement.VMInfo{},
		where: map[string]string{}, used: map[string]map[string]int64{},
		together: map[string]bool{}, anti: map[[2]string]bool{}, moved: map[string]bool{},
		incoming: map[string]map[string]int64{}, inStep: map[string]int{}, leaving: map[string]string{},
	}
	for i := range in.Hosts {
		r.hosts[in.Hosts[i].Name] = &in.Hosts[i]
	}
	for i := range in.VMs {
		vm := &in.VMs[i]
		r.vms[vm.Name] = vm
		r.where[vm.Name] = vm.Current
		if vm.Current != "" {
			if r.used[vm.Current] == nil {
				r.used[vm.Current] = map[string]int64{}
			}
			for k, u := range vm.Utilization {
				r.used[vm.Current][k] += u
			}
		}
	}
	for _, c := range in.Colocations {
		if c.Score > 0 {
			r.together[c.VM], r.together[c.With] = true, true
		}
		if c.Score < 0 {
			r.anti[[2]string{c.VM, c.With}], r.anti[[2]string{c.With, c.VM}] = true, true
		}
	}
	return r
}

func (r *planReplay) open(h string) bool {
	x := r.hosts[h]
	return x != nil && x.Condition == placement.Usable && !x.Standby && !x.Maintenance
}

// checkMoveAllowed checks that move i may happen at all: a known VM that
// may migrate, once, between usable hosts, towards a host it likes at
// least as much and where no VM it must avoid runs.
func (r *planReplay) checkMoveAllowed(i int, m Move, vm *placement.VMInfo, res *Result) {
	t := r.t
	switch {
	case vm == nil:
		t.Fatalf("move %d: unknown VM %q", i, m.VM)
	case r.moved[m.VM]:
		t.Fatalf("move %d: %s moves twice", i, m.VM)
	case r.where[m.VM] != m.From || m.From == m.To:
		t.Fatalf("move %d: %s is on %q, not %q (to %q)", i, m.VM, r.where[m.VM], m.From, m.To)
	case !r.open(m.From) || !r.open(m.To):
		t.Fatalf("move %d: %s from %s to %s: both hosts must be usable, not standby, not in maintenance", i, m.VM, m.From, m.To)
	case !vm.AllowMigrate || vm.Unmanaged || vm.Target == placement.Stopped:
		t.Fatalf("move %d: %s may not migrate (%+v)", i, m.VM, vm)
	case res.Skipped[m.VM] != "":
		t.Fatalf("move %d: %s is skipped (%s) but moves", i, m.VM, res.Skipped[m.VM])
	case r.together[m.VM]:
		t.Fatalf("move %d: %s has a positive colocation and moves alone", i, m.VM)
	}
	st := r.in.Policy.DefaultStickiness
	if vm.Stickiness != nil {
		st = *vm.Stickiness
	}
	if st >= placement.Infinity {
		t.Fatalf("move %d: %s has stickiness INFINITY", i, m.VM)
	}
	if to, from := locationScore(&r.in, m.VM, m.To), locationScore(&r.in, m.VM, m.From); to < 0 || to < from {
		t.Fatalf("move %d: %s scores %v on %s, %v on %s", i, m.VM, to, m.To, from, m.From)
	}
	for other, h := range r.where {
		if h == m.To && r.anti[[2]string{m.VM, other}] {
			t.Fatalf("move %d: %s joins %s on %s despite a negative colocation", i, m.VM, other, m.To)
		}
	}
}

// checkStep checks move i within its step: steps numbered from 1, never
// skipping or going back; room on the target at every point of the step
// (what was there when the step began plus everything arriving in it);
// the migration limit; no arrival where a VM to avoid is leaving.
func (r *planReplay) checkStep(i int, m Move, vm *placement.VMInfo) {
	t := r.t
	if m.Step != r.step && m.Step != r.step+1 || (i == 0 && m.Step != 1) {
		t.Fatalf("move %d: step %d after step %d", i, m.Step, r.step)
	}
	if m.Step != r.step {
		r.step = m.Step
		r.base = copyUsage(r.used)
		r.incoming = map[string]map[string]int64{}
		r.inStep = map[string]int{}
		r.leaving = map[string]string{}
	}
	if r.incoming[m.To] == nil {
		r.incoming[m.To] = map[string]int64{}
	}
	for k, u := range vm.Utilization {
		r.incoming[m.To][k] += u
		if u > 0 && r.base[m.To][k]+r.incoming[m.To][k] > r.hosts[m.To].Capacity[k] {
			t.Fatalf("move %d (step %d): %s overfills %s on %s (%d+%d > %d)", i, r.step, m.VM, m.To, k, r.base[m.To][k], r.incoming[m.To][k], r.hosts[m.To].Capacity[k])
		}
	}
	r.inStep[m.From]++
	r.inStep[m.To]++
	if l := r.in.Policy.MigrationLimit; l > 0 && (r.inStep[m.From] > l || r.inStep[m.To] > l) {
		t.Fatalf("move %d (step %d): more than %d migrations at once on %s or %s", i, r.step, l, m.From, m.To)
	}
	for other, h := range r.leaving {
		if h == m.To && r.anti[[2]string{m.VM, other}] {
			t.Fatalf("move %d (step %d): %s arrives on %s while %s, which it must avoid, leaves it", i, r.step, m.VM, m.To, other)
		}
	}
}

// apply moves the VM.
func (r *planReplay) apply(m Move, vm *placement.VMInfo) {
	r.leaving[m.VM] = m.From
	for k, u := range vm.Utilization {
		r.used[m.From][k] -= u
		if r.used[m.To] == nil {
			r.used[m.To] = map[string]int64{}
		}
		r.used[m.To][k] += u
	}
	r.where[m.VM] = m.To
	r.moved[m.VM] = true
}

func copyUsage(used map[string]map[string]int64) map[string]map[string]int64 {
	c := map[string]map[string]int64{}
	for h, m := range used {
		c[h] = map[string]int64{}
		for k, v := range m {
			c[h][k] = v
		}
	}
	return c
}
