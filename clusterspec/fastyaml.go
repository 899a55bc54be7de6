package clusterspec

// A fast reader for the YAML that cluster.yaml and status.yaml are written
// in: block mappings and sequences, one-line flow collections, plain and
// quoted scalars, comments. yaml.v3 builds a node tree of the whole file
// before decoding it, which at 50,000 VMs takes seconds and gigabytes;
// this reader takes a small fraction of that. It gives up (errSlow) on
// anything outside that subset or anything yaml.v3 might read differently
// (anchors, tags, block scalars, multi-line scalars, null, duplicate or
// unknown keys, numbers other than plain decimals, any invalid value), and
// decodeStrict then reads the file with yaml.v3, which also words every
// error. A file it accepts decodes to what yaml.v3 decodes
// (TestFastYAMLAgreesWithYAMLv3).

import (
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vmha/vmha/placement"
)

var errSlow = errors.New("not for the fast reader")

// ynode is a parsed YAML node: a scalar (val; plain or quoted), a mapping
// (keys and kids) or a sequence (kids).
type ynode struct {
	kind  byte // 's', 'm' or 'q'
	plain bool
	val   string
	keys  []string
	kids  []*ynode
	seen  map[string]bool // the keys, once there are many
}

// has reports whether the mapping has key k already (a duplicate, which
// yaml.v3 refuses), or k is one yaml.v3 reads as null.
func (n *ynode) has(k string) bool {
	if k == "~" || k == "null" || k == "Null" || k == "NULL" {
		return true
	}
	if len(n.keys) < 16 {
		for _, x := range n.keys {
			if x == k {
				return true
			}
		}
		return false
	}
	if n.seen == nil {
		n.seen = make(map[string]bool, 2*len(n.keys))
		for _, x := range n.keys {
			n.seen[x] = true
		}
	}
	if n.seen[k] {
		return true
	}
	n.seen[k] = true
	return false
}

type yline struct {
	indent int
	text   string
}

type fastParser struct {
	lines []yline
	pos   int
}

// fastParse parses data into a node tree, or returns errSlow.
func fastParse(data []byte) (*ynode, error) {
	if !utf8.Valid(data) {
		return nil, errSlow
	}
	for _, c := range data {
		if c < 0x20 && c != '\n' && c != '\r' {
			return nil, errSlow // tabs, and control characters yaml.v3 refuses
		}
	}
	p := &fastParser{}
	s := string(data)
	for len(s) > 0 {
		var line string
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			line, s = s[:i], s[i+1:]
		} else {
			line, s = s, ""
		}
		line = strings.TrimSuffix(line, "\r")
		ind := 0
		for ind < len(line) && line[ind] == ' ' {
			ind++
		}
		text, err := stripComment(line[ind:])
		if err != nil {
			return nil, err
		}
		if text == "" {
			continue
		}
		if strings.ContainsAny(text, "\t") || strings.HasPrefix(text, "---") ||
			strings.HasPrefix(text, "...") || text[0] == '%' {
			return nil, errSlow
		}
		p.lines = append(p.lines, yline{ind, text})
	}
	if len(p.lines) == 0 || p.lines[0].indent != 0 {
		return nil, errSlow
	}
	n, err := p.node(0)
	if err != nil {
		return nil, err
	}
	if p.pos != len(p.lines) {
		return nil, errSlow
	}
	return n, nil
}

// stripComment cuts a comment off a line's text (a # at its start or after
// a space, outside quotes) and trailing spaces.
func stripComment(t string) (string, error) {
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

// node parses the block node at the current line, whose indent must be at
// least minIndent.
func (p *fastParser) node(minIndent int) (*ynode, error) {
	if p.pos >= len(p.lines) || p.lines[p.pos].indent < minIndent {
		return nil, errSlow // an empty value: null
	}
	l := p.lines[p.pos]
	if isSeqItem(l.text) {
		return p.seq(l.indent)
	}
	if _, _, ok := splitKey(l.text); ok {
		return p.mapping(l.indent)
	}
	// A lone scalar or flow collection on its own line.
	n, err := inline(l.text)
	if err != nil {
		return nil, err
	}
	p.pos++
	return n, p.endOfValue(l.indent)
}

// endOfValue checks that no line deeper than indent follows a value written
// on one line (it would continue a multi-line scalar).
func (p *fastParser) endOfValue(indent int) error {
	if p.pos < len(p.lines) && p.lines[p.pos].indent > indent {
		return errSlow
	}
	return nil
}

func (p *fastParser) mapping(ind int) (*ynode, error) {
	n := &ynode{kind: 'm'}
	for p.pos < len(p.lines) {
		l := p.lines[p.pos]
		if l.indent < ind {
			break
		}
		if l.indent > ind || isSeqItem(l.text) {
			return nil, errSlow
		}
		k, rest, ok := splitKey(l.text)
		if !ok || n.has(k) {
			return nil, errSlow
		}
		var v *ynode
		var err error
		if rest == "" {
			p.pos++
			switch {
			case p.pos < len(p.lines) && p.lines[p.pos].indent > ind:
				v, err = p.node(ind + 1)
			case p.pos < len(p.lines) && p.lines[p.pos].indent == ind && isSeqItem(p.lines[p.pos].text):
				v, err = p.seq(ind)
			default:
				err = errSlow // null
			}
		} else {
			v, err = inline(rest)
			p.pos++
			if err == nil {
				err = p.endOfValue(ind)
			}
		}
		if err != nil {
			return nil, err
		}
		n.keys = append(n.keys, k)
		n.kids = append(n.kids, v)
	}
	return n, nil
}

func (p *fastParser) seq(ind int) (*ynode, error) {
	n := &ynode{kind: 'q'}
	for p.pos < len(p.lines) {
		l := p.lines[p.pos]
		if l.indent < ind {
			break
		}
		if l.indent > ind || !isSeqItem(l.text) {
			if l.indent == ind {
				break // the next key of a mapping this sequence sits in
			}
			return nil, errSlow
		}
		var v *ynode
		var err error
		if l.text == "-" {
			p.pos++
			v, err = p.node(ind + 1)
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
				p.lines[p.pos] = yline{ind + 2 + k, rest}
				v, err = p.node(ind + 1)
			} else {
				v, err = inline(rest)
				p.pos++
				if err == nil {
					err = p.endOfValue(ind)
				}
			}
		}
		if err != nil {
			return nil, err
		}
		n.kids = append(n.kids, v)
	}
	return n, nil
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
		if key == "" || strings.ContainsAny(key, "#\"'") {
			return "", "", false
		}
	}
	rest = strings.TrimLeft(t[end+1:], " ")
	if end+1 < len(t) && t[end+1] != ' ' {
		return "", "", false
	}
	return key, rest, true
}

// inline parses a value written on one line: a flow collection, a quoted
// scalar or a plain scalar.
func inline(t string) (*ynode, error) {
	switch t[0] {
	case '{', '[':
		n, i, err := flow(t, 0)
		if err != nil {
			return nil, err
		}
		if strings.TrimLeft(t[i:], " ") != "" {
			return nil, errSlow
		}
		return n, nil
	case '"', '\'':
		s, i, err := quoted(t)
		if err != nil || i != len(t) {
			return nil, errSlow
		}
		return &ynode{kind: 's', val: s}, nil
	}
	if !plainStart(t) || strings.Contains(t, ": ") || strings.HasSuffix(t, ":") {
		return nil, errSlow
	}
	return &ynode{kind: 's', plain: true, val: t}, nil
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
// and the index after it. Escapes other than \" and \\ go to yaml.v3.
func quoted(t string) (string, int, error) {
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

// flow parses the flow collection at t[i] and returns the index after it.
func flow(t string, i int) (*ynode, int, error) {
	open := t[i]
	n := &ynode{kind: 'q'}
	closer := byte(']')
	if open == '{' {
		n.kind, closer = 'm', '}'
	}
	i++
	for {
		i = skipSpaces(t, i)
		if i >= len(t) {
			return nil, 0, errSlow
		}
		if t[i] == closer {
			return n, i + 1, nil
		}
		if n.kind == 'm' {
			var k string
			var err error
			if t[i] == '"' || t[i] == '\'' {
				var j int
				k, j, err = quoted(t[i:])
				i += j
			} else {
				j := strings.IndexAny(t[i:], ":,{}[]")
				if j <= 0 {
					err = errSlow
				} else {
					k = strings.TrimRight(t[i:i+j], " ")
					i += j
				}
			}
			if err != nil || k == "" || n.has(k) || i+1 >= len(t) || t[i] != ':' || t[i+1] != ' ' {
				return nil, 0, errSlow
			}
			n.keys = append(n.keys, k)
			i = skipSpaces(t, i+1)
		}
		v, j, err := flowValue(t, i)
		if err != nil {
			return nil, 0, err
		}
		n.kids = append(n.kids, v)
		i = skipSpaces(t, j)
		if i >= len(t) {
			return nil, 0, errSlow
		}
		switch t[i] {
		case ',':
			i++
		case closer:
		default:
			return nil, 0, errSlow
		}
	}
}

func flowValue(t string, i int) (*ynode, int, error) {
	if i >= len(t) {
		return nil, 0, errSlow
	}
	switch t[i] {
	case '{', '[':
		return flow(t, i)
	case '"', '\'':
		s, j, err := quoted(t[i:])
		if err != nil {
			return nil, 0, err
		}
		return &ynode{kind: 's', val: s}, i + j, nil
	}
	j := strings.IndexAny(t[i:], ",{}[]")
	if j < 0 {
		return nil, 0, errSlow
	}
	v := strings.TrimRight(t[i:i+j], " ")
	if !plainStart(v) || strings.IndexByte("?:", v[0]) >= 0 || strings.HasSuffix(v, ":") || strings.Contains(v, ": ") {
		return nil, 0, errSlow
	}
	return &ynode{kind: 's', plain: true, val: v}, i + j, nil
}

func skipSpaces(t string, i int) int {
	for i < len(t) && t[i] == ' ' {
		i++
	}
	return i
}

// The typed reads: each returns errSlow unless yaml.v3 would read the same.

func (n *ynode) str() (string, error) {
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

func (n *ynode) int64() (int64, error) {
	if n.kind != 's' || !n.plain || !isDecimal(n.val) {
		return 0, errSlow
	}
	return strconv.ParseInt(n.val, 10, 64)
}

func (n *ynode) int() (int, error) {
	v, err := n.int64()
	return int(v), err
}

func (n *ynode) bool() (bool, error) {
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

func (n *ynode) score() (*Score, error) {
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

func (n *ynode) duration() (Duration, error) {
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

func (n *ynode) time() (time.Time, error) {
	if n.kind != 's' || !n.plain || !strings.HasSuffix(n.val, "Z") {
		return time.Time{}, errSlow
	}
	t, err := time.Parse(time.RFC3339Nano, n.val)
	if err != nil {
		return time.Time{}, errSlow
	}
	return t, nil
}

// each calls f for every key and value of a mapping.
func (n *ynode) each(f func(k string, v *ynode) error) error {
	if n.kind != 'm' {
		return errSlow
	}
	for i, k := range n.keys {
		if err := f(k, n.kids[i]); err != nil {
			return err
		}
	}
	return nil
}

func (n *ynode) items() ([]*ynode, error) {
	if n.kind != 'q' {
		return nil, errSlow
	}
	return n.kids, nil
}

func (n *ynode) strMap() (map[string]string, error) {
	m := map[string]string{}
	err := n.each(func(k string, v *ynode) (err error) {
		m[k], err = v.str()
		return err
	})
	return m, err
}

func (n *ynode) int64Map() (map[string]int64, error) {
	m := map[string]int64{}
	err := n.each(func(k string, v *ynode) (err error) {
		m[k], err = v.int64()
		return err
	})
	return m, err
}

func boolPtr(b bool) *bool { return &b }

// fastSpec decodes cluster.yaml, or returns errSlow.
func fastSpec(data []byte) (*Spec, error) {
	root, err := fastParse(data)
	if err != nil {
		return nil, err
	}
	var s Spec
	err = root.each(func(k string, v *ynode) error {
		switch k {
		case "policy":
			return v.each(func(k string, v *ynode) (err error) {
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

func fastHost(h *Host, n *ynode) error {
	return n.each(func(k string, v *ynode) (err error) {
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

func fastVM(m *VM, n *ynode) error {
	return n.each(func(k string, v *ynode) (err error) {
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

func fastConstraints(c *Constraints, n *ynode) error {
	return n.each(func(k string, v *ynode) (err error) {
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

func fastLocation(l *Location, n *ynode) error {
	return n.each(func(k string, v *ynode) (err error) {
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

func fastColocation(co *Colocation, n *ynode) error {
	return n.each(func(k string, v *ynode) (err error) {
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

func fastRule(r *Rule, n *ynode) error {
	return n.each(func(k string, v *ynode) (err error) {
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

func fastExpression(e *Expression, n *ynode) error {
	return n.each(func(k string, v *ynode) (err error) {
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
func fastStatus(data []byte) (*Status, error) {
	root, err := fastParse(data)
	if err != nil {
		return nil, err
	}
	var st Status
	err = root.each(func(k string, v *ynode) (err error) {
		switch k {
		case "now":
			st.Now, err = v.time()
		case "hosts":
			st.Hosts = map[string]HostStatus{}
			err = v.each(func(name string, v *ynode) error {
				hs, err := fastHostStatus(v)
				st.Hosts[name] = hs
				return err
			})
		case "vms":
			st.VMs = make(map[string]VMStatus, len(v.kids))
			err = v.each(func(name string, v *ynode) error {
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

func fastHostStatus(n *ynode) (HostStatus, error) {
	var hs HostStatus
	err := n.each(func(k string, v *ynode) (err error) {
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

func fastVMStatus(n *ynode) (VMStatus, error) {
	var vs VMStatus
	err := n.each(func(k string, v *ynode) (err error) {
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

func fastFailure(f *Failure, n *ynode) error {
	return n.each(func(k string, v *ynode) (err error) {
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

// fastList reads a YAML list whose items each fill one T.
func fastList[T any](v *ynode, item func(*T, *ynode) error) ([]T, error) {
	items, err := v.items()
	if err != nil {
		return nil, err
	}
	out := make([]T, len(items))
	for i, it := range items {
		if err := item(&out[i], it); err != nil {
			return nil, err
		}
	}
	return out, nil
}
