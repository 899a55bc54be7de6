package clusterspec

// A fast reader for the YAML that cluster.yaml and status.yaml are written
// in: block mappings and sequences, one-line flow collections, plain and
// quoted scalars, comments. yaml.v3 builds a node tree of the whole file
// before decoding it, which at 50,000 VMs takes seconds and gigabytes.
// This reader builds no tree: it reads the file a line at a time and
// hands each value to the decoder that asked for it (fastSpec, fastStatus)
// as it meets it, so a VM is decoded when its lines are read, and a scalar
// is a substring of the file. It gives up (errSlow) on anything outside
// that subset or anything yaml.v3 might read differently (anchors, tags,
// block scalars, multi-line scalars, null, duplicate or unknown keys,
// numbers other than plain decimals, any invalid value), and decodeStrict
// then reads the file with yaml.v3, which also words every error. A file
// it accepts decodes to what yaml.v3 decodes (TestFastYAMLAgreesWithYAMLv3,
// TestFastYAMLGenerated, FuzzFastYAML); what it refuses, yaml.v3 reads.

import (
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vmha/vmha/placement"
)

var errSlow = errors.New("not for the fast reader")

// yval is a value as a decoder meets it: a scalar (val; plain or quoted),
// a block mapping or sequence whose first line is the parser's current
// line (indent), or a flow collection at p.fc.t[at]. A block or flow value
// is read only when the decoder asks for its entries (each, items).
type yval struct {
	p      *fastParser
	kind   byte // 's' scalar, 'm' block mapping, 'q' block sequence, '{' or '[' flow
	plain  bool
	val    string
	indent int
	at     int
}

// keySet is the keys of one mapping so far, to refuse a duplicate (which
// yaml.v3 refuses) or a key yaml.v3 reads as null. Most mappings have a
// few keys: those stay in an array, and a map is made past 16.
type keySet struct {
	few  [16]string
	n    int
	many map[string]bool
}

// add reports false when k is a duplicate or a null, and records it.
func (s *keySet) add(k string) bool {
	if k == "~" || k == "null" || k == "Null" || k == "NULL" {
		return false
	}
	if s.many == nil {
		for _, x := range s.few[:s.n] {
			if x == k {
				return false
			}
		}
		if s.n < len(s.few) {
			s.few[s.n] = k
			s.n++
			return true
		}
		s.many = make(map[string]bool, 4*len(s.few))
		for _, x := range s.few {
			s.many[x] = true
		}
	}
	if s.many[k] {
		return false
	}
	s.many[k] = true
	return true
}

type yline struct {
	indent int
	text   string
}

// fastParser reads the file a line at a time: cur is the current line
// (when ok), rest the text after it. fc is the one-line flow collection
// being read: only one is read at a time, as a flow collection holds
// nothing but scalars and flow collections on the same line.
type fastParser struct {
	rest string
	cur  yline
	ok   bool
	fc   struct {
		t string
		i int // where the next flow value starts, or after the last one read
	}
}

// fastDecode reads the mapping at the top of data, calling f for each key
// and value, or returns errSlow.
func fastDecode(data string, f func(k string, v yval) error) error {
	if !plainText(data) {
		return errSlow
	}
	p := &fastParser{rest: data}
	if err := p.advance(); err != nil {
		return err
	}
	if !p.ok || p.cur.indent != 0 {
		return errSlow
	}
	v, err := p.value(0)
	if err != nil {
		return err
	}
	if err := v.each(f); err != nil {
		return err
	}
	if err := p.finish(v); err != nil {
		return err
	}
	if p.ok {
		return errSlow // lines left over
	}
	return nil
}

// plainText reports whether data is UTF-8 without the characters yaml.v3
// refuses or reads as something other than text: control characters but
// \n and \r\n (tabs too go to yaml.v3), DEL and the C1 controls (U+0085 is
// a line break to yaml.v3), the line and paragraph separators (breaks as
// well), a byte order mark, U+FFFE and U+FFFF.
func plainText(data string) bool {
	for i := 0; i < len(data); {
		c := data[i]
		if c < utf8.RuneSelf {
			if c < 0x20 && c != '\n' && c != '\r' || c == 0x7f {
				return false
			}
			if c == '\r' && (i+1 == len(data) || data[i+1] != '\n') {
				return false // a line break to yaml.v3, not to lines
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(data[i:])
		switch {
		case r == utf8.RuneError && n == 1, // not UTF-8
			r <= 0x9f, r == 0x2028, r == 0x2029, r == 0xfeff, r == 0xfffe, r == 0xffff:
			return false
		}
		i += n
	}
	return true
}

// advance moves to the next line that is not blank or a comment, or past
// the end (ok false).
func (p *fastParser) advance() error {
	for len(p.rest) > 0 {
		var line string
		if i := strings.IndexByte(p.rest, '\n'); i >= 0 {
			line, p.rest = p.rest[:i], p.rest[i+1:]
		} else {
			line, p.rest = p.rest, ""
		}
		line = strings.TrimSuffix(line, "\r")
		ind := 0
		for ind < len(line) && line[ind] == ' ' {
			ind++
		}
		text, err := stripComment(line[ind:])
		if err != nil {
			return err
		}
		if text == "" {
			continue
		}
		if strings.ContainsAny(text, "\t") || strings.HasPrefix(text, "---") ||
			strings.HasPrefix(text, "...") || text[0] == '%' {
			return errSlow
		}
		p.cur, p.ok = yline{ind, text}, true
		return nil
	}
	p.ok = false
	return nil
}

// stripComment cuts a comment off a line's text (a # at its start or after
// a space, outside quotes) and trailing spaces.
func stripComment(t string) (string, error) {
	if strings.IndexByte(t, '#') < 0 && strings.IndexByte(t, '"') < 0 && strings.IndexByte(t, '\'') < 0 {
		return strings.TrimRight(t, " "), nil // most lines: nothing to track
	}
	var quote byte
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case quote != 0:
			if c == '\\' && quote == '"' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			// A quote starts a quoted scalar only where a value or key
			// starts; elsewhere (it's, x 'y) it is part of a plain
			// scalar.
			if quoteStarts(t, i) {
				quote = c
			}
		case c == '#' && (i == 0 || t[i-1] == ' '):
			return strings.TrimRight(t[:i], " "), nil
		}
	}
	if quote != 0 {
		return "", errSlow // a quoted scalar over several lines
	}
	return strings.TrimRight(t, " "), nil
}

// quoteStarts reports whether the quote at t[i] opens a quoted scalar:
// at the start, right after a flow indicator, or after ": " or "- ".
func quoteStarts(t string, i int) bool {
	k := i - 1
	for k >= 0 && t[k] == ' ' {
		k--
	}
	switch {
	case k < 0:
		return true
	case t[k] == '{' || t[k] == '[' || t[k] == ',':
		return true
	case t[k] == ':' || t[k] == '-':
		return k < i-1 // a space between
	}
	return false
}

func isSeqItem(t string) bool { return t == "-" || strings.HasPrefix(t, "- ") }

// value is the block node at the current line, whose indent must be at
// least minIndent. A mapping or sequence is left for the decoder to read;
// a scalar or flow collection alone on its line is taken.
func (p *fastParser) value(minIndent int) (yval, error) {
	if !p.ok || p.cur.indent < minIndent {
		return yval{}, errSlow // an empty value: null
	}
	l := p.cur
	if isSeqItem(l.text) {
		return yval{p: p, kind: 'q', indent: l.indent}, nil
	}
	if _, _, ok := splitKey(l.text); ok {
		return yval{p: p, kind: 'm', indent: l.indent}, nil
	}
	return p.inlineValue(l.text, l.indent)
}

// inlineValue takes t, a value written on the current line at indent, and
// moves past the line: no deeper line may follow (it would continue a
// multi-line scalar).
func (p *fastParser) inlineValue(t string, indent int) (yval, error) {
	v, err := p.inline(t)
	if err != nil {
		return yval{}, err
	}
	if err := p.advance(); err != nil {
		return yval{}, err
	}
	if p.ok && p.cur.indent > indent {
		return yval{}, errSlow
	}
	return v, nil
}

// finish checks, once the decoder has read v, that a flow collection on
// a line of its own was read to the end of the line.
func (p *fastParser) finish(v yval) error {
	if v.kind == '{' || v.kind == '[' {
		if p.fc.i <= v.at || strings.TrimLeft(p.fc.t[p.fc.i:], " ") != "" {
			return errSlow
		}
	}
	return nil
}

// eachBlock reads the block mapping whose keys are at indent ind.
func (p *fastParser) eachBlock(ind int, f func(k string, v yval) error) error {
	var keys keySet
	for p.ok {
		l := p.cur
		if l.indent < ind {
			break
		}
		if l.indent > ind || isSeqItem(l.text) {
			return errSlow
		}
		k, rest, ok := splitKey(l.text)
		if !ok || !keys.add(k) {
			return errSlow
		}
		var v yval
		var err error
		if rest == "" {
			if err := p.advance(); err != nil {
				return err
			}
			switch {
			case p.ok && p.cur.indent > ind:
				v, err = p.value(ind + 1)
			case p.ok && p.cur.indent == ind && isSeqItem(p.cur.text):
				v = yval{p: p, kind: 'q', indent: ind}
			default:
				err = errSlow // null
			}
		} else {
			v, err = p.inlineValue(rest, ind)
		}
		if err != nil {
			return err
		}
		if err := f(k, v); err != nil {
			return err
		}
		if err := p.finish(v); err != nil {
			return err
		}
	}
	return nil
}

// itemsBlock reads the block sequence whose dashes are at indent ind.
func (p *fastParser) itemsBlock(ind int, f func(v yval) error) error {
	for p.ok {
		l := p.cur
		if l.indent < ind {
			break
		}
		if l.indent > ind || !isSeqItem(l.text) {
			if l.indent == ind {
				break // the next key of a mapping this sequence sits in
			}
			return errSlow
		}
		var v yval
		var err error
		if l.text == "-" {
			if err := p.advance(); err != nil {
				return err
			}
			v, err = p.value(ind + 1)
		} else {
			rest := l.text[2:]
			k := 0
			for k < len(rest) && rest[k] == ' ' {
				k++
			}
			rest = rest[k:]
			if _, _, ok := splitKey(rest); ok || isSeqItem(rest) {
				// "- name: x": a block node starting on the item's line;
				// read it as if it began on a line of its own.
				p.cur = yline{ind + 2 + k, rest}
				v, err = p.value(ind + 1)
			} else {
				v, err = p.inlineValue(rest, ind)
			}
		}
		if err != nil {
			return err
		}
		if err := f(v); err != nil {
			return err
		}
		if err := p.finish(v); err != nil {
			return err
		}
	}
	return nil
}

// splitKey splits "key: rest" or "key:" (a block mapping entry).
func splitKey(t string) (key, rest string, ok bool) {
	if t == "" || strings.IndexByte("{[&*!|>%@`?-", t[0]) >= 0 && (t[0] != '-' || len(t) == 1 || t[1] == ' ') {
		return "", "", false
	}
	var end int
	if t[0] == '"' || t[0] == '\'' {
		s, n, err := quoted(t)
		if err != nil {
			return "", "", false
		}
		key, end = s, n
		if end >= len(t) || t[end] != ':' {
			return "", "", false
		}
	} else {
		i := strings.Index(t, ": ")
		switch {
		case i >= 0:
			end = i
		case strings.HasSuffix(t, ":"):
			end = len(t) - 1
		default:
			return "", "", false
		}
		key = strings.TrimRight(t[:end], " ")
		if key == "" || strings.ContainsAny(key, "#\"'") || !plainStart(key) {
			return "", "", false
		}
	}
	rest = strings.TrimLeft(t[end+1:], " ")
	if end+1 < len(t) && t[end+1] != ' ' {
		return "", "", false
	}
	return key, rest, true
}

// inline takes a value written on one line: a flow collection (read
// later, by the decoder), a quoted scalar or a plain scalar.
func (p *fastParser) inline(t string) (yval, error) {
	switch t[0] {
	case '{', '[':
		p.fc.t, p.fc.i = t, 0
		return yval{p: p, kind: t[0]}, nil
	case '"', '\'':
		s, i, err := quoted(t)
		if err != nil || i != len(t) {
			return yval{}, errSlow
		}
		return yval{kind: 's', val: s}, nil
	}
	if !plainStart(t) || strings.Contains(t, ": ") || strings.HasSuffix(t, ":") {
		return yval{}, errSlow
	}
	return yval{kind: 's', plain: true, val: t}, nil
}

// plainStart reports whether a plain scalar may start as v does: not with
// an indicator, nor with -, ? or : followed by a space.
func plainStart(v string) bool {
	if v == "" || strings.IndexByte(",[]{}#&*!|>'\"%@`", v[0]) >= 0 {
		return false
	}
	if strings.IndexByte("-?:", v[0]) >= 0 && (len(v) == 1 || v[1] == ' ') {
		return false
	}
	return true
}

// quoted reads the quoted scalar that t starts with and returns its value
// and the index after it. Escapes other than \" and \\ go to yaml.v3. A
// scalar without escapes is a substring of t: no copy.
func quoted(t string) (string, int, error) {
	q := t[0]
	for i := 1; i < len(t); i++ {
		switch c := t[i]; {
		case q == '"' && c == '\\', q == '\'' && c == q && i+1 < len(t) && t[i+1] == '\'':
			return unescape(t)
		case c == q:
			return t[1:i], i + 1, nil
		}
	}
	return "", 0, errSlow
}

// unescape is quoted for a scalar with escapes (\" \\ or ”).
func unescape(t string) (string, int, error) {
	q := t[0]
	var b strings.Builder
	for i := 1; i < len(t); i++ {
		c := t[i]
		switch {
		case q == '"' && c == '\\':
			if i+1 >= len(t) || (t[i+1] != '"' && t[i+1] != '\\') {
				return "", 0, errSlow
			}
			i++
			b.WriteByte(t[i])
		case c == q && q == '\'' && i+1 < len(t) && t[i+1] == '\'':
			i++
			b.WriteByte('\'')
		case c == q:
			return b.String(), i + 1, nil
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, errSlow
}

// flow reads the flow collection at p.fc.i, a mapping when km is given
// (km gets each key and value) and a sequence otherwise (kq gets each
// value), and leaves p.fc.i after it. A nested collection is handed over
// unread, and must be read by the callback.
func (p *fastParser) flow(km func(k string, v yval) error, kq func(v yval) error) error {
	t, i := p.fc.t, p.fc.i
	closer := byte(']')
	if km != nil {
		closer = '}'
	}
	var keys keySet
	i++
	for {
		i = skipSpaces(t, i)
		if i >= len(t) {
			return errSlow
		}
		if t[i] == closer {
			p.fc.i = i + 1
			return nil
		}
		var k string
		if km != nil {
			var err error
			if k, i, err = flowKey(t, i, &keys); err != nil {
				return err
			}
		}
		v, j, err := p.flowValue(t, i)
		if err != nil {
			return err
		}
		if km != nil {
			err = km(k, v)
		} else {
			err = kq(v)
		}
		if err != nil {
			return err
		}
		if v.kind != 's' {
			// The callback read the nested collection: it ends at p.fc.i.
			if p.fc.i <= i {
				return errSlow
			}
			j = p.fc.i
		}
		i = skipSpaces(t, j)
		if i >= len(t) {
			return errSlow
		}
		switch t[i] {
		case ',':
			i++
		case closer:
		default:
			return errSlow
		}
	}
}

// flowKey reads the key of a flow mapping's entry at t[i], and its colon,
// and returns the index of its value; keys are the entry's keys so far.
func flowKey(t string, i int, keys *keySet) (string, int, error) {
	var k string
	if t[i] == '"' || t[i] == '\'' {
		s, j, err := quoted(t[i:])
		if err != nil {
			return "", 0, err
		}
		k, i = s, i+j
	} else {
		j := indexIn(t[i:], &flowKeyEnd)
		if j <= 0 {
			return "", 0, errSlow
		}
		k = strings.TrimRight(t[i:i+j], " ")
		i += j
		if k == "" || !plainStart(k) || k[0] == '?' || k[0] == ':' {
			return "", 0, errSlow // an indicator: a tag, an anchor, ...
		}
	}
	if k == "" || !keys.add(k) || i+1 >= len(t) || t[i] != ':' || t[i+1] != ' ' {
		return "", 0, errSlow
	}
	return k, skipSpaces(t, i+1), nil
}

// flowValue reads the scalar at t[i] and returns the index after it, or
// hands over the collection there (p.fc.i at its start).
func (p *fastParser) flowValue(t string, i int) (yval, int, error) {
	if i >= len(t) {
		return yval{}, 0, errSlow
	}
	switch t[i] {
	case '{', '[':
		p.fc.i = i
		return yval{p: p, kind: t[i], at: i}, i, nil
	case '"', '\'':
		s, j, err := quoted(t[i:])
		if err != nil {
			return yval{}, 0, err
		}
		return yval{kind: 's', val: s}, i + j, nil
	}
	j := indexIn(t[i:], &flowValueEnd)
	if j < 0 {
		return yval{}, 0, errSlow
	}
	v := strings.TrimRight(t[i:i+j], " ")
	if !plainStart(v) || strings.IndexByte("?:", v[0]) >= 0 || strings.HasSuffix(v, ":") || strings.Contains(v, ": ") {
		return yval{}, 0, errSlow
	}
	return yval{kind: 's', plain: true, val: v}, i + j, nil
}

// The bytes that end a plain key or value in a flow collection. yaml.v3
// ends one at ? too, where a key or value cannot end: ? goes to yaml.v3.
var flowKeyEnd, flowValueEnd = byteSet(":,{}[]?"), byteSet(",{}[]?")

func byteSet(chars string) (set [256]bool) {
	for i := 0; i < len(chars); i++ {
		set[chars[i]] = true
	}
	return set
}

// indexIn is strings.IndexAny for a set made once: IndexAny makes its set
// on every call, and the flow collections of 50,000 VMs call it a million
// times.
func indexIn(s string, set *[256]bool) int {
	for i := 0; i < len(s); i++ {
		if set[s[i]] {
			return i
		}
	}
	return -1
}

func skipSpaces(t string, i int) int {
	for i < len(t) && t[i] == ' ' {
		i++
	}
	return i
}

// The typed reads: each returns errSlow unless yaml.v3 would read the same.

func (n yval) str() (string, error) {
	if n.kind != 's' {
		return "", errSlow
	}
	if n.plain {
		switch n.val {
		case "~", "null", "Null", "NULL":
			return "", errSlow
		}
	}
	return n.val, nil
}

// isDecimal reports whether s is a plain decimal integer that every YAML
// reading agrees on (no sign but -, no leading zero, no underscores).
func isDecimal(s string) bool {
	d := strings.TrimPrefix(s, "-")
	if d == "" || len(d) > 18 || (d[0] == '0' && len(d) > 1) {
		return false
	}
	for i := 0; i < len(d); i++ {
		if d[i] < '0' || d[i] > '9' {
			return false
		}
	}
	return true
}

func (n yval) int64() (int64, error) {
	if n.kind != 's' || !n.plain || !isDecimal(n.val) {
		return 0, errSlow
	}
	return strconv.ParseInt(n.val, 10, 64)
}

func (n yval) int() (int, error) {
	v, err := n.int64()
	return int(v), err
}

func (n yval) bool() (bool, error) {
	if n.kind == 's' && n.plain {
		switch n.val {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
	}
	return false, errSlow
}

func (n yval) score() (*Score, error) {
	if n.kind != 's' || (n.plain && !isDecimal(n.val) && n.val != "INFINITY" && n.val != "-INFINITY" && n.val != "+INFINITY") {
		return nil, errSlow
	}
	v, err := placement.ParseScore(n.val)
	if err != nil {
		return nil, errSlow
	}
	s := Score(v)
	return &s, nil
}

func (n yval) duration() (Duration, error) {
	if n.kind != 's' || !n.plain {
		return 0, errSlow
	}
	var d Duration
	if isDecimal(n.val) {
		secs, _ := strconv.ParseInt(n.val, 10, 64)
		if secs < 0 {
			return 0, errSlow
		}
		return Duration(time.Duration(secs) * time.Second), nil
	}
	v, err := time.ParseDuration(n.val)
	if err != nil || v < 0 {
		return 0, errSlow
	}
	d = Duration(v)
	return d, nil
}

func (n yval) time() (time.Time, error) {
	if n.kind != 's' || !n.plain || !strings.HasSuffix(n.val, "Z") {
		return time.Time{}, errSlow
	}
	t, err := time.Parse(time.RFC3339Nano, n.val)
	if err != nil {
		return time.Time{}, errSlow
	}
	return t, nil
}

// each calls f for every key and value of a mapping, as they are read.
func (n yval) each(f func(k string, v yval) error) error {
	switch n.kind {
	case 'm':
		return n.p.eachBlock(n.indent, f)
	case '{':
		if n.p.fc.i != n.at {
			return errSlow
		}
		return n.p.flow(f, nil)
	}
	return errSlow
}

// items calls f for every item of a sequence, as they are read.
func (n yval) items(f func(v yval) error) error {
	switch n.kind {
	case 'q':
		return n.p.itemsBlock(n.indent, f)
	case '[':
		if n.p.fc.i != n.at {
			return errSlow
		}
		return n.p.flow(nil, f)
	}
	return errSlow
}

func (n yval) strMap() (map[string]string, error) {
	m := map[string]string{}
	err := n.each(func(k string, v yval) (err error) {
		m[k], err = v.str()
		return err
	})
	return m, err
}

func (n yval) int64Map() (map[string]int64, error) {
	m := map[string]int64{}
	err := n.each(func(k string, v yval) (err error) {
		m[k], err = v.int64()
		return err
	})
	return m, err
}

func boolPtr(b bool) *bool { return &b }

// fastSpec decodes cluster.yaml, or returns errSlow. The Spec's strings
// are substrings of data.
func fastSpec(data string) (*Spec, error) {
	var s Spec
	err := fastDecode(data, func(k string, v yval) (err error) {
		switch k {
		case "policy":
			return v.each(func(k string, v yval) (err error) {
				p := &s.Policy
				switch k {
				case "default-stickiness":
					p.DefaultStickiness, err = v.score()
				case "placement-strategy":
					p.PlacementStrategy, err = v.str()
				case "symmetric-cluster":
					var b bool
					b, err = v.bool()
					p.SymmetricCluster = boolPtr(b)
				case "migration-limit":
					p.MigrationLimit, err = v.int()
				case "on-forbidden":
					p.OnForbidden, err = v.str()
				default:
					err = errSlow
				}
				return err
			})
		case "hosts":
			s.Hosts, err = fastList(v, fastHost)
			return err
		case "vms":
			s.VMs, err = fastList(v, fastVM)
			return err
		case "constraints":
			return fastConstraints(&s.Constraints, v)
		}
		return errSlow
	})
	if err != nil {
		return nil, err
	}
	return &s, nil
}

func fastHost(h *Host, n yval) error {
	return n.each(func(k string, v yval) (err error) {
		switch k {
		case "name":
			h.Name, err = v.str()
		case "capacity":
			h.Capacity, err = v.int64Map()
		case "attributes":
			h.Attributes, err = v.strMap()
		case "standby":
			h.Standby, err = v.bool()
		case "maintenance":
			h.Maintenance, err = v.bool()
		default:
			err = errSlow
		}
		return err
	})
}

func fastVM(m *VM, n yval) error {
	return n.each(func(k string, v yval) (err error) {
		switch k {
		case "name":
			m.Name, err = v.str()
		case "domain":
			m.Domain, err = v.str()
		case "hypervisor":
			m.Hypervisor, err = v.str()
		case "utilization":
			m.Utilization, err = v.int64Map()
		case "priority":
			m.Priority, err = v.int()
		case "target-state":
			m.TargetState, err = v.str()
		case "allow-migrate":
			m.AllowMigrate, err = v.bool()
		case "stickiness":
			m.Stickiness, err = v.score()
		case "migration-threshold":
			m.MigrationThreshold, err = v.score()
		case "failure-timeout":
			m.FailureTimeout, err = v.duration()
		case "managed":
			var b bool
			b, err = v.bool()
			m.Managed = boolPtr(b)
		case "on-forbidden":
			m.OnForbidden, err = v.str()
		case "guest-monitor":
			m.GuestMonitor, err = v.str()
		case "guest-heartbeat-timeout":
			m.GuestHeartbeatTimeout, err = v.duration()
		case "guest-max-restarts":
			var n int
			n, err = v.int()
			m.GuestMaxRestarts = &n
		case "guest-restart-window":
			m.GuestRestartWindow, err = v.duration()
		default:
			err = errSlow
		}
		return err
	})
}

func fastConstraints(c *Constraints, n yval) error {
	return n.each(func(k string, v yval) (err error) {
		switch k {
		case "locations":
			c.Locations, err = fastList(v, fastLocation)
		case "colocations":
			c.Colocations, err = fastList(v, fastColocation)
		default:
			err = errSlow
		}
		return err
	})
}

func fastLocation(l *Location, n yval) error {
	return n.each(func(k string, v yval) (err error) {
		switch k {
		case "vm":
			l.VM, err = v.str()
		case "host":
			l.Host, err = v.str()
		case "score":
			l.Score, err = v.score()
		case "rule":
			l.Rule = &Rule{}
			err = fastRule(l.Rule, v)
		default:
			err = errSlow
		}
		return err
	})
}

func fastColocation(co *Colocation, n yval) error {
	return n.each(func(k string, v yval) (err error) {
		switch k {
		case "vm":
			co.VM, err = v.str()
		case "with":
			co.With, err = v.str()
		case "score":
			var s *Score
			if s, err = v.score(); err == nil {
				co.Score = *s
			}
		default:
			err = errSlow
		}
		return err
	})
}

func fastRule(r *Rule, n yval) error {
	return n.each(func(k string, v yval) (err error) {
		switch k {
		case "score":
			r.Score, err = v.score()
		case "score-attribute":
			r.ScoreAttribute, err = v.str()
		case "boolean-op":
			r.BooleanOp, err = v.str()
		case "expressions":
			r.Expressions, err = fastList(v, fastExpression)
		case "rules":
			r.Rules, err = fastList(v, fastRule)
		default:
			err = errSlow
		}
		return err
	})
}

func fastExpression(e *Expression, n yval) error {
	return n.each(func(k string, v yval) (err error) {
		switch k {
		case "attribute":
			e.Attribute, err = v.str()
		case "operation":
			e.Operation, err = v.str()
		case "value":
			e.Value, err = v.str()
		case "type":
			e.Type, err = v.str()
		default:
			err = errSlow
		}
		return err
	})
}

// fastStatus decodes status.yaml, or returns errSlow.
func fastStatus(data string) (*Status, error) {
	var st Status
	err := fastDecode(data, func(k string, v yval) (err error) {
		switch k {
		case "now":
			st.Now, err = v.time()
		case "hosts":
			st.Hosts = map[string]HostStatus{}
			err = v.each(func(name string, v yval) error {
				hs, err := fastHostStatus(v)
				st.Hosts[name] = hs
				return err
			})
		case "vms":
			st.VMs = map[string]VMStatus{}
			err = v.each(func(name string, v yval) error {
				vs, err := fastVMStatus(v)
				st.VMs[name] = vs
				return err
			})
		default:
			err = errSlow
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return &st, nil
}

func fastHostStatus(n yval) (HostStatus, error) {
	var hs HostStatus
	err := n.each(func(k string, v yval) (err error) {
		switch k {
		case "state":
			hs.State, err = v.str()
		case "attributes":
			hs.Attributes, err = v.strMap()
		case "standby":
			var b bool
			b, err = v.bool()
			hs.Standby = boolPtr(b)
		case "maintenance":
			var b bool
			b, err = v.bool()
			hs.Maintenance = boolPtr(b)
		default:
			err = errSlow
		}
		return err
	})
	return hs, err
}

func fastVMStatus(n yval) (VMStatus, error) {
	var vs VMStatus
	err := n.each(func(k string, v yval) (err error) {
		switch k {
		case "host":
			vs.Host, err = v.str()
		case "failures":
			vs.Failures, err = fastList(v, fastFailure)
		default:
			err = errSlow
		}
		return err
	})
	return vs, err
}

func fastFailure(f *Failure, n yval) error {
	return n.each(func(k string, v yval) (err error) {
		switch k {
		case "host":
			f.Host, err = v.str()
		case "count":
			f.Count, err = v.int()
		case "last":
			f.Last, err = v.time()
		default:
			err = errSlow
		}
		return err
	})
}

// fastList reads a YAML list whose items each fill one T, as they are
// read. An empty list is an empty slice, not nil, as yaml.v3 makes it.
func fastList[T any](v yval, item func(*T, yval) error) ([]T, error) {
	out := make([]T, 0)
	err := v.items(func(it yval) error {
		var zero T
		out = append(out, zero)
		return item(&out[len(out)-1], it)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
