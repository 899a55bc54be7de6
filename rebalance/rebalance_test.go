package rebalance

import (
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/vmha/vmha/placement"
)

func host(name string, mem, cpu int64) placement.HostInfo {
	return placement.HostInfo{Name: name, Capacity: map[string]int64{"memory": mem, "cpu": cpu}}
}

func vm(name, cur string, mem, cpu int64) placement.VMInfo {
	return placement.VMInfo{Name: name, Current: cur, AllowMigrate: true, Utilization: map[string]int64{"memory": mem, "cpu": cpu}}
}

// ganetiExample is the cluster of the first hbal run in docs/rebalance.md:
// hbal scores it 0.48337514 and moves vm2 to node3, reaching 0.08049382.
func ganetiExample() placement.Input {
	return placement.Input{
		Hosts: []placement.HostInfo{host("node1", 16384, 8), host("node2", 16384, 8), host("node3", 32768, 16)},
		VMs:   []placement.VMInfo{vm("vm1", "node1", 4096, 2), vm("vm2", "node1", 4096, 4), vm("vm3", "node2", 2048, 2), vm("vm4", "node3", 2048, 1)},
	}
}

func TestGanetiExample(t *testing.T) {
	res, err := Plan(ganetiExample(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Figures printed by hbal 3.0.2 (8 decimals) for the same cluster.
	if math.Abs(res.Before-0.48337514) > 1e-8 || math.Abs(res.After-0.08049382) > 1e-8 {
		t.Errorf("scores %.8f -> %.8f, hbal 0.48337514 -> 0.08049382", res.Before, res.After)
	}
	if len(res.Moves) != 1 || res.Moves[0] != (Move{VM: "vm2", From: "node1", To: "node3", Gain: res.Moves[0].Gain, Step: 1}) {
		t.Fatalf("moves %+v, want vm2 from node1 to node3 in step 1, as hbal", res.Moves)
	}
	if g := res.Moves[0].Gain; math.Abs(g-(res.Before-res.After)) > 1e-12 {
		t.Errorf("gain %v, scores drop by %v", g, res.Before-res.After)
	}
}

func TestScoreWhere(t *testing.T) {
	in := ganetiExample()
	if a, b := Score(in, nil), Score(in, map[string]string{"vm2": "node3"}); a <= b {
		t.Errorf("moving vm2 to node3 should lower the score: %v -> %v", a, b)
	}
	// Usage ratios memory (.5 .5), cpu (.5 .5): perfectly balanced.
	even := placement.Input{Hosts: []placement.HostInfo{host("a", 100, 4), host("b", 200, 8)},
		VMs: []placement.VMInfo{vm("x", "a", 50, 2), vm("y", "b", 100, 4)}}
	if s := Score(even, nil); s != 0 {
		t.Errorf("balanced cluster scores %v", s)
	}
	// Only memory counted: memory (.5, 0) has standard deviation .25.
	if s := Score(even, map[string]string{"y": "a"}, "memory"); math.Abs(s-0.75) > 1e-12 {
		// y on a: a uses 150/100, b 0/200 -> ratios 1.5 and 0: sd .75.
		t.Errorf("memory-only score %v, want 0.75", s)
	}
	// Hosts that cannot take VMs do not count.
	even.Hosts = append(even.Hosts, placement.HostInfo{Name: "c", Standby: true, Capacity: map[string]int64{"memory": 100, "cpu": 4}})
	if s := Score(even, nil); s != 0 {
		t.Errorf("a standby host changed the score to %v", s)
	}
}

func TestPlanErrors(t *testing.T) {
	in := ganetiExample()
	bad := ganetiExample()
	bad.VMs[0].Current = "nowhere"
	dup := ganetiExample()
	dup.Hosts = append(dup.Hosts, host("node1", 1, 1))
	for _, tc := range []struct {
		name string
		in   placement.Input
		opt  Options
		want string
	}{
		{"negative max moves", in, Options{MaxMoves: -1}, "max moves -1 is negative"},
		{"negative min gain", in, Options{MinGain: -0.5}, "min gain -0.5"},
		{"NaN min gain", in, Options{MinGain: math.NaN()}, "min gain NaN"},
		{"duplicate key", in, Options{Keys: []string{"cpu", "cpu"}}, `key "cpu" given twice`},
		{"unknown current host", bad, Options{}, `vm "vm1" runs on unknown host "nowhere"`},
		{"invalid input", dup, Options{}, `host "node1": defined twice`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Plan(tc.in, tc.opt)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Plan = %+v, %v; want an error with %q", res, err, tc.want)
			}
		})
	}
}

func TestSkipped(t *testing.T) {
	inf := placement.Infinity
	in := placement.Input{
		Hosts: []placement.HostInfo{host("a", 100, 10), host("b", 100, 10), host("c", 100, 10),
			{Name: "s", Standby: true, Capacity: map[string]int64{"memory": 100, "cpu": 10}}},
		VMs: []placement.VMInfo{
			vm("nomigrate", "a", 10, 1), vm("unmanaged", "a", 10, 1), vm("sticky", "a", 10, 1),
			vm("pinned", "a", 10, 1), vm("must", "a", 10, 1), vm("with", "a", 10, 1),
			vm("likes", "a", 10, 1), vm("friend", "a", 10, 1), vm("stopping", "a", 10, 1),
			vm("onstandby", "s", 10, 1), vm("off", "", 10, 1), vm("empty", "a", 0, 0),
			vm("preferred", "a", 10, 1), vm("free", "a", 10, 1),
		},
		Locations: []placement.Location{
			{VM: "pinned", Host: "a", Score: inf},
			{VM: "preferred", Host: "a", Score: 100}, {VM: "preferred", Host: "b", Score: 50},
		},
		Colocations: []placement.Colocation{{VM: "must", With: "with", Score: inf}, {VM: "likes", With: "friend", Score: 100}},
	}
	in.VMs[0].AllowMigrate = false
	in.VMs[1].Unmanaged = true
	in.VMs[2].Stickiness = &inf
	in.VMs[8].Target = placement.Stopped
	res, err := Plan(in, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"nomigrate": "live migration not allowed",
		"unmanaged": "unmanaged",
		"sticky":    "stickiness INFINITY",
		"pinned":    "pinned to a",
		"must":      "mandatory colocation with with",
		"with":      "mandatory colocation with must",
		"likes":     "colocated with friend (score 100)",
		"friend":    "colocated with likes (score 100)",
		"stopping":  "to be stopped",
		"onstandby": "runs on s, which is in standby",
		"off":       "not running",
		"empty":     "uses none of the balanced resources",
		"preferred": "no other host scores as high as a (100)",
	}
	for name, why := range want {
		if !strings.Contains(res.Skipped[name], why) {
			t.Errorf("%s: skipped for %q, want %q", name, res.Skipped[name], why)
		}
	}
	if len(res.Skipped) != len(want) {
		t.Errorf("skipped %v, want only %v", res.Skipped, want)
	}
	// Only "free" may move, and a is the only loaded host: it leaves.
	if len(res.Moves) != 1 || res.Moves[0].VM != "free" {
		t.Errorf("moves %+v, want free only", res.Moves)
	}
}

// TestLocations checks that preferences decide among targets: a VM goes
// only where it scores at least as high as where it is, never where it is
// banned.
func TestLocations(t *testing.T) {
	inf := placement.Infinity
	in := placement.Input{
		Hosts: []placement.HostInfo{host("a", 100, 10), host("b", 100, 10), host("c", 100, 10), host("d", 100, 10)},
		VMs:   []placement.VMInfo{vm("x", "a", 40, 4), vm("y", "a", 40, 4)},
		// x likes a and c alike and is banned from b; d scores 0 < 10.
		Locations: []placement.Location{
			{VM: "x", Host: "a", Score: 10}, {VM: "x", Host: "c", Score: 10}, {VM: "x", Host: "b", Score: -inf},
		},
	}
	res, err := Plan(in, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, m := range res.Moves {
		got[m.VM] = m.To
	}
	if got["x"] != "c" {
		t.Errorf("x went to %q, want c (the only other host it likes as much as a): %+v", got["x"], res.Moves)
	}
}

// TestAntiColocation: y's best move is onto b, where z runs, which y must
// avoid; with the colocation y stays, without it y goes to b.
func TestAntiColocation(t *testing.T) {
	in := placement.Input{
		Hosts: []placement.HostInfo{host("a", 100, 10), host("b", 100, 10), host("c", 100, 10)},
		VMs:   []placement.VMInfo{vm("y", "a", 50, 5), vm("q", "a", 45, 4), vm("z", "b", 5, 1), vm("r", "c", 60, 6)},
	}
	in.VMs[1].AllowMigrate = false
	in.VMs[3].AllowMigrate = false
	for _, score := range []placement.Score{0, -placement.Infinity, -100} {
		in.Colocations = nil
		if score != 0 {
			in.Colocations = []placement.Colocation{{VM: "z", With: "y", Score: score}}
		}
		res, err := Plan(in, Options{})
		if err != nil {
			t.Fatal(err)
		}
		var y []Move
		for _, m := range res.Moves {
			if m.VM == "y" {
				y = append(y, m)
			}
		}
		switch {
		case score == 0 && (len(y) != 1 || y[0].To != "b"):
			t.Errorf("without the colocation y should move to b: %+v", res.Moves)
		case score < 0 && len(y) > 0:
			t.Errorf("colocation %v: y joins z: %+v", score, res.Moves)
		}
	}
}

// TestStepsWaitForRoom: b2 can go to A only once a1 has left it, so it
// runs in a later step.
func TestStepsWaitForRoom(t *testing.T) {
	mem := func(name, cur string, m int64) placement.VMInfo {
		return placement.VMInfo{Name: name, Current: cur, AllowMigrate: true, Utilization: map[string]int64{"memory": m}}
	}
	in := placement.Input{
		Hosts: []placement.HostInfo{host("A", 100, 1), host("B", 100, 1), host("C", 100, 1)},
		VMs:   []placement.VMInfo{mem("a1", "A", 45), mem("a2", "A", 45), mem("b1", "B", 50), mem("b2", "B", 40)},
	}
	res, err := Plan(in, Options{MaxMoves: 2, Keys: []string{"memory"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []Move{{VM: "a1", From: "A", To: "C", Step: 1}, {VM: "b2", From: "B", To: "A", Step: 2}}
	for i := range res.Moves {
		res.Moves[i].Gain = 0
	}
	if !reflect.DeepEqual(res.Moves, want) {
		t.Errorf("moves %+v, want %+v", res.Moves, want)
	}
}

func TestMaxMovesAndMinGain(t *testing.T) {
	var in placement.Input
	for _, h := range []string{"a", "b", "c", "d"} {
		in.Hosts = append(in.Hosts, host(h, 1000, 100))
	}
	for i := 0; i < 20; i++ {
		in.VMs = append(in.VMs, vm(string(rune('m'+i%10))+string(rune('0'+i/10)), "a", 40, 4))
	}
	all, err := Plan(in, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Moves) < 10 {
		t.Fatalf("only %d moves to spread 20 VMs over 4 hosts", len(all.Moves))
	}
	three, _ := Plan(in, Options{MaxMoves: 3})
	if !reflect.DeepEqual(three.Moves, all.Moves[:3]) {
		t.Errorf("MaxMoves 3 gives %+v, want the first 3 of %+v", three.Moves, all.Moves[:3])
	}
	// A min gain equal to the first move's gain stops the same climb at
	// the first move that gains less (gains need not decrease along the
	// climb: the best move of each step is the best then).
	minGain := all.Moves[0].Gain
	cut, _ := Plan(in, Options{MinGain: minGain})
	if len(cut.Moves) >= len(all.Moves) || len(cut.Moves) == 0 || !reflect.DeepEqual(cut.Moves, all.Moves[:len(cut.Moves)]) {
		t.Errorf("MinGain %v: %+v, want a shorter prefix of %+v", minGain, cut.Moves, all.Moves)
	}
	for _, m := range cut.Moves {
		if m.Gain < minGain {
			t.Errorf("move %+v gains less than MinGain %v", m, minGain)
		}
	}
}

// TestMigrationLimit: with a limit of one migration per host at a time,
// no host appears twice in a step.
func TestMigrationLimit(t *testing.T) {
	var in placement.Input
	for _, h := range []string{"a", "b", "c", "d", "e"} {
		in.Hosts = append(in.Hosts, host(h, 1000, 100))
	}
	for i := 0; i < 12; i++ {
		in.VMs = append(in.VMs, vm("v"+string(rune('a'+i)), "a", 50, 5))
	}
	in.Policy.MigrationLimit = 1
	res, err := Plan(in, Options{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[[2]any]bool{}
	for _, m := range res.Moves {
		for _, h := range []string{m.From, m.To} {
			k := [2]any{m.Step, h}
			if seen[k] {
				t.Fatalf("host %s takes part in two migrations in step %d: %+v", h, m.Step, res.Moves)
			}
			seen[k] = true
		}
	}
	if len(res.Moves) == 0 || res.Moves[len(res.Moves)-1].Step != len(res.Moves) {
		t.Errorf("all moves leave host a: one per step expected, got %+v", res.Moves)
	}
}

// TestEngineScoresWithoutConstraints guards the shortcut that skips the
// engine for VMs without location constraints: the engine must indeed
// score them the same on every host, stickiness aside.
func TestEngineScoresWithoutConstraints(t *testing.T) {
	in := ganetiExample()
	in.Policy.Strategy = placement.StrategyBalanced
	res, err := placement.Solve(in, placement.Options{Scores: true})
	if err != nil {
		t.Fatal(err)
	}
	for name, sc := range res.Scores {
		var first *placement.Score
		for _, s := range sc {
			if first == nil {
				first = &s
			} else if s != *first {
				t.Errorf("%s: engine scores %v differ between hosts without any constraint", name, sc)
				break
			}
		}
	}
}
