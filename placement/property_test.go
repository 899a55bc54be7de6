package placement

import (
	"encoding/json"
	"fmt"
	"testing"

	"pgregory.net/rapid"
)

var scoreChoices = []Score{-Infinity, -100, -1, 0, 1, 50, 100, 1000, Infinity}

// genInput draws a random cluster within the engine's whole model.
func genInput(t *rapid.T, minStick Score) Input {
	var in Input
	nh := rapid.IntRange(1, 6).Draw(t, "hosts")
	hostNames := []string{""}
	for i := 0; i < nh; i++ {
		name := fmt.Sprintf("h%d", i)
		hostNames = append(hostNames, name)
		h := HostInfo{
			Name:      name,
			Condition: HostCondition(rapid.IntRange(0, 3).Draw(t, "cond")),
			Capacity:  map[string]int64{"memory": int64(rapid.IntRange(0, 8).Draw(t, "mem")) * 1024, "cpu": int64(rapid.IntRange(0, 8).Draw(t, "cpu"))},
			Standby:   rapid.IntRange(0, 5).Draw(t, "standby") == 0,
			// Maintenance is rarer: it freezes a host.
			Maintenance: rapid.IntRange(0, 9).Draw(t, "maint") == 0,
			Attributes:  map[string]string{"zone": rapid.SampledFrom([]string{"a", "b"}).Draw(t, "zone")},
		}
		if rapid.Bool().Draw(t, "haspingd") {
			h.Attributes["pingd"] = fmt.Sprint(rapid.IntRange(0, 2).Draw(t, "pingd") * 100)
		}
		in.Hosts = append(in.Hosts, h)
	}
	nv := rapid.IntRange(0, 14).Draw(t, "vms")
	var vmNames []string
	for i := 0; i < nv; i++ {
		v := VMInfo{
			Name:         fmt.Sprintf("vm%d", i),
			Current:      rapid.SampledFrom(hostNames).Draw(t, "current"),
			Utilization:  map[string]int64{"memory": int64(rapid.IntRange(0, 4).Draw(t, "vmem")) * 1024, "cpu": int64(rapid.IntRange(0, 4).Draw(t, "vcpu"))},
			Priority:     rapid.IntRange(0, 2).Draw(t, "prio"),
			AllowMigrate: rapid.Bool().Draw(t, "migrate"),
		}
		if rapid.IntRange(0, 9).Draw(t, "stopped") == 0 {
			v.Target = Stopped
		}
		if rapid.IntRange(0, 3).Draw(t, "hasstick") == 0 {
			s := Score(rapid.IntRange(int(minStick), int(minStick)+200).Draw(t, "stick"))
			v.Stickiness = &s
		}
		vmNames = append(vmNames, v.Name)
		in.VMs = append(in.VMs, v)
	}
	in.Policy = Policy{
		DefaultStickiness: Score(rapid.IntRange(int(minStick), int(minStick)+100).Draw(t, "defstick")),
		Strategy:          rapid.SampledFrom([]Strategy{StrategyDefault, StrategyUtilization, StrategyMinimal, StrategyBalanced}).Draw(t, "strategy"),
		OptIn:             rapid.IntRange(0, 4).Draw(t, "optin") == 0,
		MigrationLimit:    rapid.IntRange(0, 2).Draw(t, "limit"),
	}
	if nv == 0 {
		return in
	}
	nl := rapid.IntRange(0, 2*nv).Draw(t, "locations")
	for i := 0; i < nl; i++ {
		in.Locations = append(in.Locations, Location{
			VM:    rapid.SampledFrom(vmNames).Draw(t, "lvm"),
			Host:  rapid.SampledFrom(hostNames[1:]).Draw(t, "lhost"),
			Score: rapid.SampledFrom(scoreChoices).Draw(t, "lscore"),
		})
	}
	if rapid.Bool().Draw(t, "pingrule") {
		in.LocationRules = append(in.LocationRules, LocationRule{VM: rapid.SampledFrom(vmNames).Draw(t, "rvm"),
			Rule: Rule{Score: -Infinity, Expressions: []Expression{{Attribute: "pingd", Operation: "lte", Value: "0"}}}})
	}
	if rapid.Bool().Draw(t, "zonerule") {
		in.LocationRules = append(in.LocationRules, LocationRule{VM: rapid.SampledFrom(vmNames).Draw(t, "zvm"),
			Rule: Rule{Score: rapid.SampledFrom(scoreChoices).Draw(t, "zscore"), Expressions: []Expression{{Attribute: "zone", Operation: "eq", Value: "a"}}}})
	}
	if nv >= 2 {
		nc := rapid.IntRange(0, nv/2).Draw(t, "colocations")
		for i := 0; i < nc; i++ {
			a := rapid.SampledFrom(vmNames).Draw(t, "cvm")
			b := rapid.SampledFrom(vmNames).Draw(t, "cwith")
			if a == b {
				continue
			}
			in.Colocations = append(in.Colocations, Colocation{VM: a, With: b, Score: rapid.SampledFrom(scoreChoices).Draw(t, "cscore")})
		}
		if checkMandatoryColocations(in.Colocations) != nil {
			in.Colocations = nil
		}
	}
	return in
}

// banned reports whether the input itself forbids v on host h through a
// -INFINITY location or rule, independently of the engine's arithmetic.
func banned(in *Input, v string, h *HostInfo) bool {
	for _, l := range in.Locations {
		if l.VM == v && l.Host == h.Name && l.Score <= -Infinity {
			return true
		}
	}
	for _, r := range in.LocationRules {
		if r.VM == v && r.Rule.Score <= -Infinity && r.Rule.Matches(h) {
			return true
		}
	}
	return false
}

// frozen reports whether a VM is not the engine's to move: its host is
// lost, offline or in maintenance, or it is unmanaged.
func frozen(in *Input, v *VMInfo) bool {
	if v.Unmanaged {
		return true
	}
	for _, h := range in.Hosts {
		if h.Name == v.Current {
			// A fenced host's VMs are off, whatever else the host says.
			return h.Condition == Lost || h.Condition == Offline || (h.Maintenance && h.Condition != Released)
		}
	}
	return false
}

func TestProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		in := genInput(t, 0)
		r, err := Solve(in, Options{Scores: true})
		if err != nil {
			t.Fatalf("valid input refused: %v", err)
		}
		if len(r.Placement) != len(in.VMs) {
			t.Fatalf("one placement per VM: %d for %d VMs", len(r.Placement), len(in.VMs))
		}
		checkPlacement(t, &in, r)
		checkActions(t, &in, r)
	})
}

// checkPlacement checks every VM's placement (checkPlacedVM) and, under a
// strategy that counts utilization, that no host the engine placed a VM on
// is over capacity for the keys that VM needs.
func checkPlacement(t *rapid.T, in *Input, r *Result) {
	hostBy := map[string]*HostInfo{}
	for i := range in.Hosts {
		hostBy[in.Hosts[i].Name] = &in.Hosts[i]
	}
	usage := map[string]map[string]int64{}
	newHere := map[string]map[string]bool{} // host -> keys needed by VMs placed by the engine
	for i := range in.VMs {
		v := &in.VMs[i]
		to, ok := r.Placement[v.Name]
		if !ok {
			t.Fatalf("%s has no placement", v.Name)
		}
		if to == "" {
			continue
		}
		if usage[to] == nil {
			usage[to], newHere[to] = map[string]int64{}, map[string]bool{}
		}
		for k, u := range v.Utilization {
			usage[to][k] += u
		}
		if !checkPlacedVM(t, in, r, v, hostBy[to]) {
			continue
		}
		for k, u := range v.Utilization {
			if u > 0 {
				newHere[to][k] = true
			}
		}
	}
	if in.Policy.Strategy == StrategyDefault {
		return
	}
	for h, keys := range newHere {
		for k := range keys {
			if usage[h][k] > hostBy[h].Capacity[k] {
				t.Fatalf("%s over capacity on %s: %d > %d", h, k, usage[h][k], hostBy[h].Capacity[k])
			}
		}
	}
}

// checkPlacedVM checks VM v placed on host h: a frozen VM stays where it
// is; any other is placed (it reports true) only where it may run.
func checkPlacedVM(t *rapid.T, in *Input, r *Result, v *VMInfo, h *HostInfo) (placedByEngine bool) {
	to := h.Name
	if frozen(in, v) {
		if to != v.Current {
			t.Fatalf("%s is frozen on %s but placed on %s", v.Name, v.Current, to)
		}
		return false
	}
	if v.Target == Stopped {
		t.Fatalf("%s has target stopped but is placed on %s", v.Name, to)
	}
	if banned(in, v.Name, h) {
		t.Fatalf("%s placed on %s, which a -INFINITY constraint forbids", v.Name, to)
	}
	if s := r.Scores[v.Name][to]; s < 0 {
		t.Fatalf("%s placed on %s with score %s", v.Name, to, s)
	}
	if h.Condition != Usable || h.Standby {
		t.Fatalf("%s placed on %s which is %v standby=%v", v.Name, to, h.Condition, h.Standby)
	}
	return true
}

// checkActions replays the actions on the current state and checks that
// they lead exactly to the placement.
func checkActions(t *rapid.T, in *Input, r *Result) {
	state := map[string]string{}
	hostBy := map[string]*HostInfo{}
	for i := range in.Hosts {
		hostBy[in.Hosts[i].Name] = &in.Hosts[i]
	}
	for _, v := range in.VMs {
		if h, ok := hostBy[v.Current]; ok && h.Condition != Released {
			state[v.Name] = v.Current
		}
	}
	last := 0
	for _, a := range r.Actions {
		if a.Step < last {
			t.Fatalf("actions out of step order: %+v", r.Actions)
		}
		last = a.Step
		switch a.Action {
		case ActStart, ActRecover:
			if state[a.VM] != "" {
				t.Fatalf("%s %s while running on %s", a.Action, a.VM, state[a.VM])
			}
			state[a.VM] = a.To
		case ActStop:
			if state[a.VM] != a.From {
				t.Fatalf("stop %s from %s but it runs on %q", a.VM, a.From, state[a.VM])
			}
			delete(state, a.VM)
		case ActMigrate, ActMove:
			if state[a.VM] != a.From || a.To == "" {
				t.Fatalf("%s %s from %s but it runs on %q", a.Action, a.VM, a.From, state[a.VM])
			}
			state[a.VM] = a.To
		}
	}
	for v, h := range r.Placement {
		if state[v] != h {
			t.Fatalf("after the actions %s runs on %q, placement says %q (actions %+v)", v, state[v], h, r.Actions)
		}
	}
}

func TestReplanIsStable(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		// Stickiness larger than any sum of finite preferences the
		// generator can draw (28 constraints of at most 1000, plus a rule):
		// with a weaker stickiness Pacemaker's greedy order itself can flip
		// between plans (a VM that now runs outranks one that wanted its
		// host), and vmha follows Pacemaker there.
		in := genInput(t, 100_000)
		// Colocations are left out: a primary is placed before its
		// dependent whatever their priorities (as in Pacemaker), so a
		// low-priority primary can take the room a high-priority VM had in
		// the previous plan. Pacemaker flips the same way; see
		// docs/placement.md.
		in.Colocations = nil
		// +INFINITY preferences would outweigh any finite stickiness.
		for i := range in.Locations {
			in.Locations[i].Score = min(in.Locations[i].Score, 1000)
		}
		for i := range in.LocationRules {
			in.LocationRules[i].Rule.Score = min(in.LocationRules[i].Rule.Score, 1000)
		}
		// The rescue search is off here: it can leave room that a
		// higher-priority VM takes on the next plan (see docs/placement.md,
		// "Known limits"); TestRescueOnlyAdds covers it.
		r, err := Solve(in, Options{NoSearch: true})
		if err != nil {
			t.Fatal(err)
		}
		next := in
		next.VMs = append([]VMInfo(nil), in.VMs...)
		for i := range next.VMs {
			next.VMs[i].Current = r.Placement[next.VMs[i].Name]
		}
		r2, err := Solve(next, Options{Explain: []string{"*"}, NoSearch: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(r2.Actions) != 0 {
			b, _ := json.MarshalIndent(in, "", " ")
			t.Logf("input %s", b)
			t.Logf("first plan %v order %v", r.Placement, r.Order)
			for _, a := range r2.Actions {
				t.Logf("%s: %s", a.VM, r2.Explanations[a.VM].Reason)
			}
			t.Fatalf("replanning the planned state yields actions %+v", r2.Actions)
		}
	})
}

func TestInfiniteStickinessNeverMoves(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		in := genInput(t, 0)
		in.Policy.DefaultStickiness = Infinity
		in.Policy.Strategy = StrategyDefault
		in.Colocations = nil
		for i := range in.VMs {
			in.VMs[i].Stickiness = nil
			in.VMs[i].Target = Started
		}
		r, err := Solve(in, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range r.Actions {
			if a.Action != ActMigrate && a.Action != ActMove {
				continue
			}
			// A move is allowed only when the host cannot run the VM at all.
			h := in.Hosts[0]
			for _, hh := range in.Hosts {
				if hh.Name == a.From {
					h = hh
				}
			}
			if h.Standby || h.Condition != Usable || banned(&in, a.VM, &h) {
				continue
			}
			if in.Policy.OptIn {
				continue // stickiness does not apply where the VM is not allowed
			}
			t.Fatalf("%s moved from %s with INFINITY stickiness: %+v", a.VM, a.From, a)
		}
	})
}

func TestRescueOnlyAdds(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		in := genInput(t, 0)
		greedy, err := Solve(in, Options{NoSearch: true})
		if err != nil {
			t.Fatal(err)
		}
		r, err := Solve(in, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range in.VMs {
			g, got := greedy.Placement[v.Name], r.Placement[v.Name]
			if g != "" && got == "" {
				t.Fatalf("rescue stopped %s (greedy put it on %s)", v.Name, g)
			}
			if g != "" && g == v.Current && got != g {
				t.Fatalf("rescue moved %s off its current host %s to %s", v.Name, g, got)
			}
		}
	})
}
