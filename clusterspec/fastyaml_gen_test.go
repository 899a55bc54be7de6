package clusterspec

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// yamlGen writes random cluster.yaml and status.yaml files in the many
// ways YAML allows: block or flow collections, items on the dash's line or
// below it, plain or quoted keys and scalars (with escapes, #, colons),
// comments, blank lines, odd indents, and values the fast reader must
// leave to yaml.v3 (null, yes, 0x10, 1.5, tags, anchors, block scalars).
// mutate then breaks some of them a character or a line at a time.
type yamlGen struct {
	r     *rand.Rand
	b     strings.Builder
	clean bool // write only what the fast reader takes (before mutate)
}

// odd reports whether to write something the fast reader may refuse: now
// and then, never in a clean file.
func (g *yamlGen) odd(oneIn int) bool { return !g.clean && g.r.IntN(oneIn) == 0 }

func (g *yamlGen) pick(xs ...string) string { return xs[g.r.IntN(len(xs))] }

// scalar is a value for a string field: mostly plain names, sometimes
// quoted, escaped, or something yaml.v3 reads another way.
func (g *yamlGen) scalar() string {
	switch g.r.IntN(14) {
	case 0:
		return `"` + g.name() + `"`
	case 1:
		return `'` + g.name() + `'`
	case 2:
		return g.pick(`"a\"b"`, `"a\\b"`, `'it''s'`, `"x # y"`, `'a: b'`, `it's`, `a:b`, `a#b`, `x 'y # z'`)
	}
	if g.odd(10) {
		return g.pick(`"\t"`, `"\u00e9"`, "~", "null", "", "yes", "true", "0x10", "010", "+3", "1.5", "-", "!!str x", "&a x", "*a", "|\n      x", "[x]", "{a: b}", "2026-01-01")
	}
	return g.name()
}

func (g *yamlGen) name() string {
	return g.pick("h1", "h2", "h3", "a", "b", "vm1", "zone", "memory", "cpu", "pingd", "host-0", "é")
}

// number is a value for an integer or score field.
func (g *yamlGen) number() string {
	switch {
	case g.odd(10):
		return g.pick("INFINITY", "-INFINITY", "+INFINITY", `"INFINITY"`, `"-100"`, "'5'")
	case g.odd(10):
		return g.pick("0x10", "010", "+3", "1.5", "1_000", "-0", "~", "1e3", "99999999999999999999", "true")
	case g.r.IntN(10) == 0:
		return "-" + fmt.Sprint(g.r.IntN(1000))
	}
	return fmt.Sprint(g.r.IntN(5000))
}

func (g *yamlGen) boolean() string {
	if g.odd(10) {
		return g.pick("yes", "on", "True", `"true"`, "~")
	}
	return g.pick("true", "false")
}

func (g *yamlGen) duration() string {
	if g.odd(10) {
		return g.pick("-5", "5x", `"10m"`, "-1s")
	}
	return g.pick("10m", "90", "1h30m", "0", "1.5h")
}

func (g *yamlGen) time() string {
	if g.odd(10) {
		return g.pick("2026-01-01T01:00:00+01:00", "2026-01-01", `"2026-01-01T00:00:00Z"`)
	}
	return g.pick("2026-01-01T00:00:00Z", "2026-01-01T00:00:00.5Z")
}

// field is one key and a function writing its value.
type field struct {
	key string
	val func() string // a one-line value, or "" for nested
	sub *shape        // nested
}

// shape is a mapping (fields) or a list of one (item).
type shape struct {
	fields []field
	list   *shape
	n      int // the list's maximum length
}

func (g *yamlGen) spec() *shape {
	str, num, boo := g.scalar, g.number, g.boolean
	strMap := &shape{fields: []field{{"zone", str, nil}, {"pingd", str, nil}, {"k", str, nil}}}
	intMap := &shape{fields: []field{{"memory", num, nil}, {"cpu", num, nil}}}
	expr := &shape{fields: []field{{"attribute", str, nil}, {"operation", str, nil}, {"value", str, nil}, {"type", str, nil}}}
	rule := &shape{fields: []field{{"score", num, nil}, {"score-attribute", str, nil}, {"boolean-op", str, nil},
		{"expressions", nil, &shape{list: expr, n: 3}}}}
	rule.fields = append(rule.fields, field{"rules", nil, &shape{list: &shape{fields: rule.fields[:4]}, n: 2}})
	return &shape{fields: []field{
		{"policy", nil, &shape{fields: []field{{"default-stickiness", num, nil}, {"placement-strategy", str, nil},
			{"symmetric-cluster", boo, nil}, {"migration-limit", num, nil}, {"on-forbidden", str, nil}}}},
		{"hosts", nil, &shape{n: 4, list: &shape{fields: []field{{"name", str, nil}, {"capacity", nil, intMap},
			{"attributes", nil, strMap}, {"standby", boo, nil}, {"maintenance", boo, nil}}}}},
		{"vms", nil, &shape{n: 4, list: &shape{fields: []field{{"name", str, nil}, {"domain", str, nil},
			{"hypervisor", str, nil}, {"utilization", nil, intMap}, {"priority", num, nil}, {"target-state", str, nil},
			{"allow-migrate", boo, nil}, {"stickiness", num, nil}, {"migration-threshold", num, nil},
			{"failure-timeout", g.duration, nil}, {"managed", boo, nil}, {"guest-max-restarts", num, nil}}}}},
		{"constraints", nil, &shape{fields: []field{
			{"locations", nil, &shape{n: 3, list: &shape{fields: []field{{"vm", str, nil}, {"host", str, nil},
				{"score", num, nil}, {"rule", nil, rule}}}}},
			{"colocations", nil, &shape{n: 3, list: &shape{fields: []field{{"vm", str, nil}, {"with", str, nil}, {"score", num, nil}}}}},
		}}},
	}}
}

func (g *yamlGen) status() *shape {
	failure := &shape{fields: []field{{"host", g.scalar, nil}, {"count", g.number, nil}, {"last", g.time, nil}}}
	host := &shape{fields: []field{{"state", g.scalar, nil}, {"attributes", nil, &shape{fields: []field{{"pingd", g.scalar, nil}}}},
		{"standby", g.boolean, nil}, {"maintenance", g.boolean, nil}}}
	vm := &shape{fields: []field{{"host", g.scalar, nil}, {"failures", nil, &shape{n: 2, list: failure}}}}
	// hosts and vms are mappings keyed by name: a few names, each a
	// field of the same shape.
	named := func(s *shape) *shape {
		out := &shape{}
		for _, n := range []string{"h1", "h2", "vm1", "a"} {
			out.fields = append(out.fields, field{n, nil, s})
		}
		return out
	}
	return &shape{fields: []field{{"now", g.time, nil}, {"hosts", nil, named(host)}, {"vms", nil, named(vm)}}}
}

// key writes a mapping key, now and then quoted or null.
func (g *yamlGen) key(k string) string {
	switch g.r.IntN(20) {
	case 0:
		return `"` + k + `"`
	case 1:
		return `'` + k + `'`
	}
	if g.odd(40) {
		return g.pick("~", "null", "unknown", k+" ")
	}
	return k
}

// pickFields chooses some of s's fields in a random order, now and then
// one twice.
func (g *yamlGen) pickFields(s *shape) []field {
	var out []field
	for _, i := range g.r.Perm(len(s.fields)) {
		if g.r.IntN(3) > 0 {
			out = append(out, s.fields[i])
		}
	}
	if len(out) > 0 && g.odd(25) {
		out = append(out, out[0])
	}
	return out
}

// flow writes s on one line.
func (g *yamlGen) flow(s *shape) string {
	var parts []string
	if s.list != nil {
		for i := g.r.IntN(s.n + 1); i > 0; i-- {
			parts = append(parts, g.flow(s.list))
		}
		end := "]"
		if g.odd(4) {
			end = g.pick(",]", " ]")
		}
		return "[" + strings.Join(parts, g.pick(", ", ",", " , ")) + end
	}
	for _, f := range g.pickFields(s) {
		v := ""
		if f.sub != nil {
			v = g.flow(f.sub)
		} else {
			v = f.val()
		}
		sep := g.pick(": ", ":  ")
		if g.odd(10) {
			sep = ":"
		}
		parts = append(parts, g.key(f.key)+sep+v)
	}
	return "{" + strings.Join(parts, g.pick(", ", ",")) + g.pick("}", "}", " }")
}

// block writes s's entries at indent ind.
func (g *yamlGen) block(s *shape, ind int) {
	pad := strings.Repeat(" ", ind)
	if s.list != nil {
		for i := g.r.IntN(s.n + 1); i > 0; i-- {
			switch {
			case g.r.IntN(3) == 0:
				g.line(pad + "- " + g.flow(s.list))
			case g.r.IntN(6) == 0:
				inner := &yamlGen{r: g.r, clean: g.clean}
				inner.block(s.list, ind+g.pick2(2, 4))
				if inner.b.Len() == 0 && !g.odd(3) {
					g.line(pad + "- {}") // not a null
					continue
				}
				g.line(pad + "-")
				g.b.WriteString(inner.b.String())
			default:
				// "- key: v" and the rest below, aligned.
				sub := &strings.Builder{}
				inner := &yamlGen{r: g.r, clean: g.clean}
				inner.block(s.list, ind+2)
				text := inner.b.String()
				if text == "" {
					g.line(pad + "- {}")
					continue
				}
				sub.WriteString(pad + "- " + text[ind+2:])
				g.b.WriteString(sub.String())
			}
		}
		return
	}
	for _, f := range g.pickFields(s) {
		k := pad + g.key(f.key) + ":"
		switch {
		case f.sub == nil:
			g.line(k + " " + f.val())
		case g.r.IntN(3) == 0:
			g.line(k + " " + g.flow(f.sub))
		default:
			in := ind + g.pick2(2, 4)
			if f.sub.list != nil && g.r.IntN(2) == 0 {
				in = ind // the dashes at the key's indent
			}
			inner := &yamlGen{r: g.r, clean: g.clean}
			inner.block(f.sub, in)
			if inner.b.Len() == 0 && !g.odd(3) {
				empty := "{}" // not a null
				if f.sub.list != nil {
					empty = "[]"
				}
				g.line(k + " " + empty)
				continue
			}
			g.line(k)
			g.b.WriteString(inner.b.String())
		}
	}
}

func (g *yamlGen) pick2(a, b int) int {
	if g.r.IntN(2) == 0 {
		return a
	}
	return b
}

// line writes one line, now and then with a comment or a blank line.
func (g *yamlGen) line(s string) {
	g.b.WriteString(s)
	switch g.r.IntN(20) {
	case 0:
		g.b.WriteString(" # a comment")
	case 1:
		g.b.WriteString("   ")
	case 2:
		g.b.WriteString("\n\n# own line")
	case 3:
		g.b.WriteString("\r")
	}
	g.b.WriteByte('\n')
}

// doc writes a whole file of the shape.
func (g *yamlGen) doc(s *shape) string {
	g.b.Reset()
	if g.r.IntN(15) == 0 {
		return g.flow(s) + "\n"
	}
	g.block(s, 0)
	return g.b.String()
}

// mutate breaks y a little: a character deleted, inserted or changed, a
// line doubled, dropped, indented or moved.
func mutate(r *rand.Rand, y string) string {
	if y == "" {
		return y
	}
	lines := strings.Split(y, "\n")
	i := r.IntN(len(lines))
	switch r.IntN(6) {
	case 0:
		lines = append(lines[:i+1], lines[i:]...)
	case 1:
		lines = append(lines[:i], lines[i+1:]...)
	case 2:
		lines[i] = "  " + lines[i]
	case 3:
		lines[i] = strings.TrimPrefix(lines[i], " ")
	default:
		j := r.IntN(len(y))
		c := string(" :-#'\"{}[],\tx0\\"[r.IntN(15)])
		switch r.IntN(3) {
		case 0:
			return y[:j] + y[j+1:]
		case 1:
			return y[:j] + c + y[j:]
		default:
			return y[:j] + c + y[j+1:]
		}
	}
	return strings.Join(lines, "\n")
}

// checkFastYAML checks one input: what the fast reader accepts, yaml.v3
// decodes alike (what it refuses goes to yaml.v3, so a user sees yaml.v3's
// result either way). It reports whether the spec and the status were
// accepted. (Until issue 17 the reader built a tree of the whole file;
// the streaming reader was checked against that one too while it was
// written, then the copy was dropped: yaml.v3 is the reference.)
func checkFastYAML(t *testing.T, y string) (specOK, statusOK bool) {
	t.Helper()
	return fastAgrees(t, y, fastSpec), fastAgrees(t, y, fastStatus)
}

// fastAgrees reads y with a fast reader and, when it accepts, checks that
// yaml.v3 decodes the same; it reports whether the fast reader accepted.
func fastAgrees[T any](t *testing.T, y string, fast func(string) (*T, error)) bool {
	t.Helper()
	got, err := fast(y)
	if err != nil {
		return false
	}
	var want T
	if werr := decodeStrict([]byte(y), &want); werr != nil {
		t.Fatalf("%q: the fast reader accepted what yaml.v3 refuses (%v)", y, werr)
	}
	if !reflect.DeepEqual(*got, want) {
		t.Fatalf("%q: fast %+v, yaml.v3 %+v", y, *got, want)
	}
	return true
}

// TestFastYAMLGenerated runs checkFastYAML on random files of both shapes,
// as written and mutated, and checks that the generator gives the fast
// reader enough files it accepts for the comparison to mean something.
func TestFastYAMLGenerated(t *testing.T) {
	n := 4000
	if testing.Short() {
		n = 500
	}
	r := rand.New(rand.NewPCG(17, 1))
	g := &yamlGen{r: r}
	var accepted, tried int
	for i := 0; i < n; i++ {
		g.clean = i%4 < 2
		var y string
		if i%2 == 0 {
			y = g.doc(g.spec())
		} else {
			y = g.doc(g.status())
		}
		sok, tok := checkFastYAML(t, y)
		tried++
		if sok || tok {
			accepted++
		}
		for m := r.IntN(3); m > 0; m-- {
			y = mutate(r, y)
			checkFastYAML(t, y)
		}
	}
	t.Logf("the fast reader accepted %d of %d unmutated files (half of them clean)", accepted, tried)
	if accepted < tried/4 {
		t.Errorf("the fast reader accepted only %d of %d generated files: the generator no longer exercises it", accepted, tried)
	}
}
