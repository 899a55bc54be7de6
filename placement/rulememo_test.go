package placement

import (
	"fmt"
	"reflect"
	"testing"

	"pgregory.net/rapid"
)

// Attribute names and values the random rules and hosts share, so that
// rules match some hosts and not others: numbers with and without spaces,
// decimals, versions, words in either case, the host name (#uname).
var (
	memoAttrs  = []string{"pingd", "zone", "rack", "kernel", "#uname", "score"}
	memoValues = []string{"0", "1", "100", " 100 ", "1e2", "-5", "2.5", "a", "A", "b", "h1", "5.10.0", "5.9", "6", "INFINITY", "-INFINITY", "x1"}
	memoOps    = []string{"lt", "lte", "gt", "gte", "eq", "ne", "defined", "not_defined"}
	memoTypes  = []string{"", "number", "integer", "string", "version"}
)

func genRule(t *rapid.T, depth int) Rule {
	r := Rule{BoolOp: rapid.SampledFrom([]string{"", "and", "or", "OR", "And"}).Draw(t, "boolop")}
	if rapid.IntRange(0, 3).Draw(t, "scoreattr") == 0 {
		r.ScoreAttribute = rapid.SampledFrom(memoAttrs).Draw(t, "sattr")
	} else {
		r.Score = rapid.SampledFrom(scoreChoices).Draw(t, "rscore")
	}
	ne := rapid.IntRange(0, 3).Draw(t, "nexpr")
	for i := 0; i < ne; i++ {
		x := Expression{
			Attribute: rapid.SampledFrom(memoAttrs).Draw(t, "attr"),
			Operation: rapid.SampledFrom(memoOps).Draw(t, "op"),
			Type:      rapid.SampledFrom(memoTypes).Draw(t, "type"),
		}
		if x.Operation != "defined" && x.Operation != "not_defined" || rapid.Bool().Draw(t, "valueanyway") {
			x.Value = rapid.SampledFrom(memoValues).Draw(t, "value")
		}
		r.Expressions = append(r.Expressions, x)
	}
	if depth > 0 {
		nr := rapid.IntRange(0, 2).Draw(t, "nrules")
		for i := 0; i < nr; i++ {
			r.Rules = append(r.Rules, genRule(t, depth-1))
		}
	}
	if len(r.Expressions) == 0 && len(r.Rules) == 0 {
		r.Expressions = []Expression{{Attribute: "pingd", Operation: "defined"}}
	}
	return r
}

func genMemoHosts(t *rapid.T) []HostInfo {
	nh := rapid.IntRange(1, 8).Draw(t, "hosts")
	var hosts []HostInfo
	for i := 0; i < nh; i++ {
		h := HostInfo{Name: fmt.Sprintf("h%d", i), Attributes: map[string]string{}}
		for _, a := range memoAttrs[:len(memoAttrs)-1] {
			if rapid.Bool().Draw(t, "has") {
				h.Attributes[a] = rapid.SampledFrom(memoValues).Draw(t, "hvalue")
			}
		}
		if rapid.Bool().Draw(t, "hasscore") {
			h.Attributes["score"] = rapid.SampledFrom(append([]string{"50", "-50", "junk"}, memoValues...)).Draw(t, "hscore")
		}
		hosts = append(hosts, h)
	}
	return hosts
}

// genMemoInput draws hosts with random attributes and VMs whose location
// rules come from a small pool, often repeated (as in a real
// configuration, where many VMs carry the same ping rule), sometimes as a
// copy that differs in one field.
func genMemoInput(t *rapid.T) Input {
	in := Input{Hosts: genMemoHosts(t)}
	in.Policy.Strategy = rapid.SampledFrom([]Strategy{StrategyDefault, StrategyBalanced}).Draw(t, "strategy")
	in.Policy.OptIn = rapid.Bool().Draw(t, "optin")
	var pool []Rule
	for i, n := 0, rapid.IntRange(1, 4).Draw(t, "pool"); i < n; i++ {
		pool = append(pool, genRule(t, 2))
	}
	nv := rapid.IntRange(1, 12).Draw(t, "vms")
	for i := 0; i < nv; i++ {
		name := fmt.Sprintf("vm%d", i)
		in.VMs = append(in.VMs, VMInfo{Name: name, Current: rapid.SampledFrom(append([]string{""}, hostNames(in.Hosts)...)).Draw(t, "current")})
		for j, n := 0, rapid.IntRange(0, 3).Draw(t, "nrules"); j < n; j++ {
			r := rapid.SampledFrom(pool).Draw(t, "rule")
			if rapid.IntRange(0, 3).Draw(t, "mutate") == 0 {
				r = mutateRule(t, r)
			}
			in.LocationRules = append(in.LocationRules, LocationRule{VM: name, Rule: r})
		}
	}
	return in
}

func hostNames(hs []HostInfo) []string {
	var ns []string
	for _, h := range hs {
		ns = append(ns, h.Name)
	}
	return ns
}

// mutateRule returns a deep copy of r with one field changed.
func mutateRule(t *rapid.T, r Rule) Rule {
	c := r
	c.Expressions = append([]Expression(nil), r.Expressions...)
	c.Rules = append([]Rule(nil), r.Rules...)
	switch rapid.IntRange(0, 4).Draw(t, "field") {
	case 0:
		c.Score = rapid.SampledFrom(scoreChoices).Draw(t, "mscore")
		c.ScoreAttribute = ""
	case 1:
		c.BoolOp = rapid.SampledFrom([]string{"", "and", "or"}).Draw(t, "mboolop")
	case 2:
		if len(c.Expressions) > 0 {
			i := rapid.IntRange(0, len(c.Expressions)-1).Draw(t, "mexpr")
			c.Expressions[i].Value = rapid.SampledFrom(memoValues).Draw(t, "mvalue")
		}
	case 3:
		if len(c.Expressions) > 0 {
			i := rapid.IntRange(0, len(c.Expressions)-1).Draw(t, "mexpr")
			c.Expressions[i].Type = rapid.SampledFrom(memoTypes).Draw(t, "mtype")
		}
	case 4:
		c.Rules = append(c.Rules, genRule(t, 0))
	}
	return c
}

// directHits evaluates rule r on every host without any memo.
func directHits(hosts []*HostInfo, r *Rule) []hostScore {
	var hits []hostScore
	for i, h := range hosts {
		if r.Matches(h) {
			hits = append(hits, hostScore{i, r.value(h)})
		}
	}
	return hits
}

// TestRuleMemoMatchesDirect: with random rules (nested, repeated, and
// copies that differ in one field) on hosts with random attributes, the
// hits the engine keeps for each location rule, evaluated once per
// distinct rule, are those of evaluating that rule directly on every host.
func TestRuleMemoMatchesDirect(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		in := genMemoInput(t)
		e := newEngine(&in, Options{})
		for i := range in.LocationRules {
			want := directHits(e.hosts, &in.LocationRules[i].Rule)
			if got := e.ruleHits[i]; !reflect.DeepEqual(got, want) {
				t.Fatalf("rule %d %+v: memoised hits %v, direct %v", i, in.LocationRules[i].Rule, got, want)
			}
		}
	})
}

// TestRuleKeyIsExact: two rules share a memo key only when they are equal
// field for field.
func TestRuleKeyIsExact(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a := genRule(t, 2)
		b := genRule(t, 2)
		if rapid.Bool().Draw(t, "mutated") {
			b = mutateRule(t, a)
		}
		ka, kb := string(appendRuleKey(nil, &a)), string(appendRuleKey(nil, &b))
		if (ka == kb) != rulesEqual(&a, &b) {
			t.Fatalf("keys equal %v, rules equal %v:\n%+v\n%+v", ka == kb, rulesEqual(&a, &b), a, b)
		}
	})
}

func rulesEqual(a, b *Rule) bool {
	if a.Score != b.Score || a.ScoreAttribute != b.ScoreAttribute || a.BoolOp != b.BoolOp ||
		len(a.Expressions) != len(b.Expressions) || len(a.Rules) != len(b.Rules) {
		return false
	}
	for i := range a.Expressions {
		if a.Expressions[i] != b.Expressions[i] {
			return false
		}
	}
	for i := range a.Rules {
		if !rulesEqual(&a.Rules[i], &b.Rules[i]) {
			return false
		}
	}
	return true
}

// TestRuleMemoSameResult: the whole result (placement, actions, scores,
// explanations) is the same with the memo and without it.
func TestRuleMemoSameResult(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		in := genMemoInput(t)
		sameAsReference(t, in, Options{Scores: true, Explain: []string{"*"}})
		sameAsReference(t, in, Options{})
	})
}

// sameAsReference checks that Solve gives the same result with its
// shortcuts as without them (Options.reference).
func sameAsReference(t *rapid.T, in Input, opt Options) {
	ref := opt
	ref.reference = true
	want, err := Solve(in, ref)
	if err != nil {
		t.Fatalf("valid input refused: %v", err)
	}
	got, err := Solve(in, opt)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("results differ with the shortcuts (options %+v):\n got %+v\nwant %+v", opt, got, want)
	}
}

// TestShortcutsSameResult: on the random clusters of the other properties
// (capacity, colocations, opt-in, every strategy, standby, maintenance,
// fail counts), Solve gives the same result with its shortcuts as
// without them.
func TestShortcutsSameResult(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		in := genInput(t, 0)
		sameAsReference(t, in, Options{})
		sameAsReference(t, in, Options{NoSearch: true})
		sameAsReference(t, in, Options{Explain: []string{"vm0"}})
	})
}

// TestValidateRuleWording: the rule's name in Validate's errors, made only
// when a rule is wrong, reads as it always did.
func TestValidateRuleWording(t *testing.T) {
	in := Input{Hosts: []HostInfo{{Name: "h1"}}, VMs: []VMInfo{{Name: "a"}}, LocationRules: []LocationRule{
		{VM: "a", Rule: Rule{Score: 1, Expressions: []Expression{{Attribute: "pingd", Operation: "defined"}}}},
		{VM: "a", Rule: Rule{Score: 1, Rules: []Rule{
			{Expressions: []Expression{{Attribute: "pingd", Operation: "defined"}}},
			{Expressions: []Expression{{Attribute: "pingd", Operation: "defined"}, {Attribute: "zone", Operation: "like", Value: "a"}}},
		}}},
		{VM: "b", Rule: Rule{Score: 1, ScoreAttribute: "x", Expressions: []Expression{{Attribute: "pingd", Operation: "defined"}}}},
		{VM: "a", Rule: Rule{Score: 1, Expressions: []Expression{{Attribute: "pingd", Operation: "lt"}}}},
	}}
	want := `location rule 2 (vm "a"), rule 2, expression 2: unknown operation "like" (want lt, lte, gt, gte, eq, ne, defined or not_defined)
location rule 3: unknown vm "b"
location rule 3 (vm "b"): has both score and score-attribute
location rule 4 (vm "a"), expression 1: operation lt needs a value`
	err := Validate(&in)
	if err == nil || err.Error() != want {
		t.Errorf("got\n%v\nwant\n%s", err, want)
	}
	if err := ValidateRule(Rule{BoolOp: "xor", Expressions: []Expression{{Attribute: "a", Operation: "defined"}}}, "rule r1"); err == nil ||
		err.Error() != `rule r1: boolean-op "xor": want and or or` {
		t.Errorf("ValidateRule: %v", err)
	}
}
