package placement

import (
	"fmt"
	"strconv"
	"strings"
)

// Operations a rule expression may use.
var validOps = map[string]bool{
	"lt": true, "lte": true, "gt": true, "gte": true, "eq": true, "ne": true,
	"defined": true, "not_defined": true,
}

// ValidateRule reports the first problem in r; where names the rule in
// the error (for example `location rule 2 of vm "web"`).
func ValidateRule(r Rule, where string) error {
	return validateRule(&r, func() string { return where })
}

// validateRule is ValidateRule with the rule's name made only for an
// error: Validate checks tens of thousands of rules that are fine.
func validateRule(r *Rule, where func() string) error {
	if r.ScoreAttribute != "" && r.Score != 0 {
		return fmt.Errorf("%s: has both score and score-attribute", where())
	}
	switch strings.ToLower(r.BoolOp) {
	case "", "and", "or":
	default:
		return fmt.Errorf("%s: boolean-op %q: want and or or", where(), r.BoolOp)
	}
	if len(r.Expressions) == 0 && len(r.Rules) == 0 {
		return fmt.Errorf("%s: has no expressions", where())
	}
	for i, e := range r.Expressions {
		w := func() string { return fmt.Sprintf("%s, expression %d", where(), i+1) }
		if e.Attribute == "" {
			return fmt.Errorf("%s: no attribute", w())
		}
		if !validOps[e.Operation] {
			return fmt.Errorf("%s: unknown operation %q (want lt, lte, gt, gte, eq, ne, defined or not_defined)", w(), e.Operation)
		}
		switch e.Type {
		case "", "number", "integer", "string", "version":
		default:
			return fmt.Errorf("%s: unknown type %q (want number, string or version)", w(), e.Type)
		}
		if e.Operation != "defined" && e.Operation != "not_defined" && e.Value == "" {
			return fmt.Errorf("%s: operation %s needs a value", w(), e.Operation)
		}
	}
	for i := range r.Rules {
		if err := validateRule(&r.Rules[i], func() string { return fmt.Sprintf("%s, rule %d", where(), i+1) }); err != nil {
			return err
		}
	}
	return nil
}

// attr returns a host attribute; #uname is the host's name.
func attr(h *HostInfo, name string) (string, bool) {
	if name == "#uname" {
		return h.Name, true
	}
	v, ok := h.Attributes[name]
	return v, ok
}

// Matches reports whether rule r holds on host h.
func (r Rule) Matches(h *HostInfo) bool {
	or := strings.EqualFold(r.BoolOp, "or")
	n := 0
	for _, e := range r.Expressions {
		ok := e.Matches(h)
		if or && ok {
			return true
		}
		if !or && !ok {
			return false
		}
		n++
	}
	for _, sub := range r.Rules {
		ok := sub.Matches(h)
		if or && ok {
			return true
		}
		if !or && !ok {
			return false
		}
		n++
	}
	// An "and" of everything true is true; an "or" with no true is false.
	return !or && n > 0
}

// Matches evaluates e on host h with Pacemaker's semantics: on a host
// without the attribute only "ne" and "not_defined" hold (so a ping rule
// needs "or not_defined pingd" to catch hosts that never reported), and a
// value that does not parse as the requested type compares as a string.
func (e Expression) Matches(h *HostInfo) bool {
	v, ok := attr(h, e.Attribute)
	switch e.Operation {
	case "defined":
		return ok
	case "not_defined":
		return !ok
	}
	if !ok {
		return e.Operation == "ne"
	}
	c := compareTyped(v, e.Value, e.kind())
	switch e.Operation {
	case "lt":
		return c < 0
	case "lte":
		return c <= 0
	case "gt":
		return c > 0
	case "gte":
		return c >= 0
	case "eq":
		return c == 0
	case "ne":
		return c != 0
	}
	return false
}

func (e Expression) kind() string {
	if e.Type != "" {
		if e.Type == "integer" {
			return "number"
		}
		return e.Type
	}
	switch e.Operation {
	case "lt", "lte", "gt", "gte":
		return "number"
	}
	return "string"
}

func compareTyped(a, b, kind string) int {
	switch kind {
	case "number":
		x, err1 := strconv.ParseFloat(strings.TrimSpace(a), 64)
		y, err2 := strconv.ParseFloat(strings.TrimSpace(b), 64)
		if err1 == nil && err2 == nil {
			switch {
			case x < y:
				return -1
			case x > y:
				return 1
			}
			return 0
		}
	case "version":
		return compareVersions(a, b)
	}
	// Pacemaker compares strings without regard to case.
	return strings.Compare(strings.ToLower(a), strings.ToLower(b))
}

// compareVersions compares dotted versions field by field as integers; a
// missing field counts as 0, so 1.2 equals 1.2.0.
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y int64
		if i < len(as) {
			x, _ = strconv.ParseInt(strings.TrimSpace(as[i]), 10, 64)
		}
		if i < len(bs) {
			y, _ = strconv.ParseInt(strings.TrimSpace(bs[i]), 10, 64)
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

// value is what a matching rule contributes on host h.
func (r Rule) value(h *HostInfo) Score {
	if r.ScoreAttribute == "" {
		return r.Score
	}
	v, ok := attr(h, r.ScoreAttribute)
	if !ok {
		return 0
	}
	s, err := ParseScore(v)
	if err != nil {
		return 0
	}
	return s
}

// Describe renders the rule's condition for explanations, e.g.
// "pingd lte 0 or pingd not_defined".
func (r Rule) Describe() string {
	var parts []string
	for _, x := range r.Expressions {
		p := x.Attribute + " " + x.Operation
		if x.Operation != "defined" && x.Operation != "not_defined" {
			p += " " + x.Value
		}
		parts = append(parts, p)
	}
	for _, sub := range r.Rules {
		parts = append(parts, "("+sub.Describe()+")")
	}
	op := r.BoolOp
	if op == "" {
		op = "and"
	}
	return strings.Join(parts, " "+op+" ")
}

// appendRuleKey appends to b an encoding of everything r's outcome on a
// host depends on: its score, score attribute, boolean operation,
// expressions and nested rules, each string prefixed by its length and
// each list by its count, so two rules have the same key only when they
// are equal field for field.
func appendRuleKey(b []byte, r *Rule) []byte {
	b = strconv.AppendInt(b, int64(r.Score), 10)
	b = append(b, ',')
	b = appendKeyString(b, r.ScoreAttribute)
	b = appendKeyString(b, r.BoolOp)
	b = strconv.AppendInt(b, int64(len(r.Expressions)), 10)
	b = append(b, 'e')
	for _, x := range r.Expressions {
		b = appendKeyString(b, x.Attribute)
		b = appendKeyString(b, x.Operation)
		b = appendKeyString(b, x.Value)
		b = appendKeyString(b, x.Type)
	}
	b = strconv.AppendInt(b, int64(len(r.Rules)), 10)
	b = append(b, 'r')
	for i := range r.Rules {
		b = appendRuleKey(b, &r.Rules[i])
	}
	return b
}

func appendKeyString(b []byte, s string) []byte {
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, ':')
	return append(b, s...)
}
