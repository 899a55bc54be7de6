package clusterspec

// The fast YAML reader as it was before it decoded while reading (commit
// 1b44d5f: a node tree of the whole file, then the decoding), kept as the
// reference the streaming reader is compared with: on every input both
// must accept or refuse alike and decode alike (TestFastYAMLSameAsTree,
// FuzzFastYAML). Identifiers carry a ref prefix. One change: it checks the
// characters as the streaming reader does (plainText), a fix FuzzFastYAML
// called for (the tree reader took DEL, which yaml.v3 refuses), and plain
// keys must start as plain scalars do (it took {!: 0}, a tag to yaml.v3),
// and a ? in a plain flow scalar goes to yaml.v3 (which ends the scalar
// there).

import (
	"strconv"
	"strings"
	"time"

	"github.com/vmha/vmha/placement"
)

// refYnode is a parsed YAML node: a scalar (val; plain or refQuoted), a mapping
// (keys and kids) or a sequence (kids).
type refYnode struct {
	kind  byte // 's', 'm' or 'q'
	plain bool
	val   string
	keys  []string
	kids  []*refYnode
	seen  map[string]bool // the keys, once there are many
}

// has reports whether the mapping has key k already (a duplicate, which
// yaml.v3 refuses), or k is one yaml.v3 reads as null.
func (n *refYnode) has(k string) bool {
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

type refYline struct {
	indent int
	text   string
}

type refFastParser struct {
	lines []refYline
	pos   int
}

// refFastParse parses data into a node tree, or returns errSlow.
func refFastParse(data []byte) (*refYnode, error) {
	if !plainText(string(data)) {
		return nil, errSlow // changed: the streaming reader's check, which also refuses DEL and more
	}
	p := &refFastParser{}
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
		text, err := refStripComment(line[ind:])
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
		p.lines = append(p.lines, refYline{ind, text})
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

// refStripComment cuts a comment off a line's text (a # at its start or after
// a space, outside quotes) and trailing spaces.
func refStripComment(t string) (string, error) {
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
			// A quote starts a refQuoted scalar only where a value or key
			// starts; elsewhere (it's, x 'y) it is part of a plain
			// scalar.
			if refQuoteStarts(t, i) {
				quote = c
			}
		case c == '#' && (i == 0 || t[i-1] == ' '):
			return strings.TrimRight(t[:i], " "), nil
		}
	}
	if quote != 0 {
		return "", errSlow // a refQuoted scalar over several lines
	}
	return strings.TrimRight(t, " "), nil
}

// refQuoteStarts reports whether the quote at t[i] opens a refQuoted scalar:
// at the start, right after a refFlow indicator, or after ": " or "- ".
func refQuoteStarts(t string, i int) bool {
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

func refIsSeqItem(t string) bool { return t == "-" || strings.HasPrefix(t, "- ") }

// node parses the block node at the current line, whose indent must be at
// least minIndent.
func (p *refFastParser) node(minIndent int) (*refYnode, error) {
	if p.pos >= len(p.lines) || p.lines[p.pos].indent < minIndent {
		return nil, errSlow // an empty value: null
	}
	l := p.lines[p.pos]
	if refIsSeqItem(l.text) {
		return p.seq(l.indent)
	}
	if _, _, ok := refSplitKey(l.text); ok {
		return p.mapping(l.indent)
	}
	// A lone scalar or refFlow collection on its own line.
	n, err := refInline(l.text)
	if err != nil {
		return nil, err
	}
	p.pos++
	return n, p.endOfValue(l.indent)
}

// endOfValue checks that no line deeper than indent follows a value written
// on one line (it would continue a multi-line scalar).
func (p *refFastParser) endOfValue(indent int) error {
	if p.pos < len(p.lines) && p.lines[p.pos].indent > indent {
		return errSlow
	}
	return nil
}

func (p *refFastParser) mapping(ind int) (*refYnode, error) {
	n := &refYnode{kind: 'm'}
	for p.pos < len(p.lines) {
		l := p.lines[p.pos]
		if l.indent < ind {
			break
		}
		if l.indent > ind || refIsSeqItem(l.text) {
			return nil, errSlow
		}
		k, rest, ok := refSplitKey(l.text)
		if !ok || n.has(k) {
			return nil, errSlow
		}
		var v *refYnode
		var err error
		if rest == "" {
			p.pos++
			switch {
			case p.pos < len(p.lines) && p.lines[p.pos].indent > ind:
				v, err = p.node(ind + 1)
			case p.pos < len(p.lines) && p.lines[p.pos].indent == ind && refIsSeqItem(p.lines[p.pos].text):
				v, err = p.seq(ind)
			default:
				err = errSlow // null
			}
		} else {
			v, err = refInline(rest)
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

func (p *refFastParser) seq(ind int) (*refYnode, error) {
	n := &refYnode{kind: 'q'}
	for p.pos < len(p.lines) {
		l := p.lines[p.pos]
		if l.indent < ind {
			break
		}
		if l.indent > ind || !refIsSeqItem(l.text) {
			if l.indent == ind {
				break // the next key of a mapping this sequence sits in
			}
			return nil, errSlow
		}
		var v *refYnode
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
			if _, _, ok := refSplitKey(rest); ok || refIsSeqItem(rest) {
				// "- name: x": a block node starting on the item's line;
				// read it as if it began on a line of its own.
				p.lines[p.pos] = refYline{ind + 2 + k, rest}
				v, err = p.node(ind + 1)
			} else {
				v, err = refInline(rest)
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

// refSplitKey splits "key: rest" or "key:" (a block mapping entry).
func refSplitKey(t string) (key, rest string, ok bool) {
	if t == "" || strings.IndexByte("{[&*!|>%@`?-", t[0]) >= 0 && (t[0] != '-' || len(t) == 1 || t[1] == ' ') {
		return "", "", false
	}
	var end int
	if t[0] == '"' || t[0] == '\'' {
		s, n, err := refQuoted(t)
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
		if key == "" || strings.ContainsAny(key, "#\"'") || !refPlainStart(key) {
			return "", "", false
		}
	}
	rest = strings.TrimLeft(t[end+1:], " ")
	if end+1 < len(t) && t[end+1] != ' ' {
		return "", "", false
	}
	return key, rest, true
}

// refInline parses a value written on one line: a refFlow collection, a refQuoted
// scalar or a plain scalar.
func refInline(t string) (*refYnode, error) {
	switch t[0] {
	case '{', '[':
		n, i, err := refFlow(t, 0)
		if err != nil {
			return nil, err
		}
		if strings.TrimLeft(t[i:], " ") != "" {
			return nil, errSlow
		}
		return n, nil
	case '"', '\'':
		s, i, err := refQuoted(t)
		if err != nil || i != len(t) {
			return nil, errSlow
		}
		return &refYnode{kind: 's', val: s}, nil
	}
	if !refPlainStart(t) || strings.Contains(t, ": ") || strings.HasSuffix(t, ":") {
		return nil, errSlow
	}
	return &refYnode{kind: 's', plain: true, val: t}, nil
}

// refPlainStart reports whether a plain scalar may start as v does: not with
// an indicator, nor with -, ? or : followed by a space.
func refPlainStart(v string) bool {
	if v == "" || strings.IndexByte(",[]{}#&*!|>'\"%@`", v[0]) >= 0 {
		return false
	}
	if strings.IndexByte("-?:", v[0]) >= 0 && (len(v) == 1 || v[1] == ' ') {
		return false
	}
	return true
}

// refQuoted reads the refQuoted scalar that t starts with and returns its value
// and the index after it. Escapes other than \" and \\ go to yaml.v3.
func refQuoted(t string) (string, int, error) {
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

// refFlow parses the refFlow collection at t[i] and returns the index after it.
func refFlow(t string, i int) (*refYnode, int, error) {
	open := t[i]
	n := &refYnode{kind: 'q'}
	closer := byte(']')
	if open == '{' {
		n.kind, closer = 'm', '}'
	}
	i++
	for {
		i = refSkipSpaces(t, i)
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
				k, j, err = refQuoted(t[i:])
				i += j
			} else {
				j := strings.IndexAny(t[i:], ":,{}[]?")
				if j <= 0 {
					err = errSlow
				} else {
					k = strings.TrimRight(t[i:i+j], " ")
					i += j
					if k == "" || !refPlainStart(k) || k[0] == '?' || k[0] == ':' {
						err = errSlow // an indicator: a tag, an anchor, ...
					}
				}
			}
			if err != nil || k == "" || n.has(k) || i+1 >= len(t) || t[i] != ':' || t[i+1] != ' ' {
				return nil, 0, errSlow
			}
			n.keys = append(n.keys, k)
			i = refSkipSpaces(t, i+1)
		}
		v, j, err := refFlowValue(t, i)
		if err != nil {
			return nil, 0, err
		}
		n.kids = append(n.kids, v)
		i = refSkipSpaces(t, j)
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

func refFlowValue(t string, i int) (*refYnode, int, error) {
	if i >= len(t) {
		return nil, 0, errSlow
	}
	switch t[i] {
	case '{', '[':
		return refFlow(t, i)
	case '"', '\'':
		s, j, err := refQuoted(t[i:])
		if err != nil {
			return nil, 0, err
		}
		return &refYnode{kind: 's', val: s}, i + j, nil
	}
	j := strings.IndexAny(t[i:], ",{}[]?")
	if j < 0 {
		return nil, 0, errSlow
	}
	v := strings.TrimRight(t[i:i+j], " ")
	if !refPlainStart(v) || strings.IndexByte("?:", v[0]) >= 0 || strings.HasSuffix(v, ":") || strings.Contains(v, ": ") {
		return nil, 0, errSlow
	}
	return &refYnode{kind: 's', plain: true, val: v}, i + j, nil
}

func refSkipSpaces(t string, i int) int {
	for i < len(t) && t[i] == ' ' {
		i++
	}
	return i
}

// The typed reads: each returns errSlow unless yaml.v3 would read the same.

func (n *refYnode) str() (string, error) {
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

// refIsDecimal reports whether s is a plain decimal integer that every YAML
// reading agrees on (no sign but -, no leading zero, no underscores).
func refIsDecimal(s string) bool {
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

func (n *refYnode) int64() (int64, error) {
	if n.kind != 's' || !n.plain || !refIsDecimal(n.val) {
		return 0, errSlow
	}
	return strconv.ParseInt(n.val, 10, 64)
}

func (n *refYnode) int() (int, error) {
	v, err := n.int64()
	return int(v), err
}

func (n *refYnode) bool() (bool, error) {
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

func (n *refYnode) score() (*Score, error) {
	if n.kind != 's' || (n.plain && !refIsDecimal(n.val) && n.val != "INFINITY" && n.val != "-INFINITY" && n.val != "+INFINITY") {
		return nil, errSlow
	}
	v, err := placement.ParseScore(n.val)
	if err != nil {
		return nil, errSlow
	}
	s := Score(v)
	return &s, nil
}

func (n *refYnode) duration() (Duration, error) {
	if n.kind != 's' || !n.plain {
		return 0, errSlow
	}
	var d Duration
	if refIsDecimal(n.val) {
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

func (n *refYnode) time() (time.Time, error) {
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
func (n *refYnode) each(f func(k string, v *refYnode) error) error {
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

func (n *refYnode) items() ([]*refYnode, error) {
	if n.kind != 'q' {
		return nil, errSlow
	}
	return n.kids, nil
}

func (n *refYnode) strMap() (map[string]string, error) {
	m := map[string]string{}
	err := n.each(func(k string, v *refYnode) (err error) {
		m[k], err = v.str()
		return err
	})
	return m, err
}

func (n *refYnode) int64Map() (map[string]int64, error) {
	m := map[string]int64{}
	err := n.each(func(k string, v *refYnode) (err error) {
		m[k], err = v.int64()
		return err
	})
	return m, err
}

func refBoolPtr(b bool) *bool { return &b }

// refFastSpec decodes cluster.yaml, or returns errSlow.
func refFastSpec(data []byte) (*Spec, error) {
	root, err := refFastParse(data)
	if err != nil {
		return nil, err
	}
	var s Spec
	err = root.each(func(k string, v *refYnode) error {
		switch k {
		case "policy":
			return v.each(func(k string, v *refYnode) (err error) {
				p := &s.Policy
				switch k {
				case "default-stickiness":
					p.DefaultStickiness, err = v.score()
				case "placement-strategy":
					p.PlacementStrategy, err = v.str()
				case "symmetric-cluster":
					var b bool
					b, err = v.bool()
					p.SymmetricCluster = refBoolPtr(b)
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
			s.Hosts, err = refFastList(v, refFastHost)
			return err
		case "vms":
			s.VMs, err = refFastList(v, refFastVM)
			return err
		case "constraints":
			return refFastConstraints(&s.Constraints, v)
		}
		return errSlow
	})
	if err != nil {
		return nil, err
	}
	return &s, nil
}

func refFastHost(h *Host, n *refYnode) error {
	return n.each(func(k string, v *refYnode) (err error) {
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

func refFastVM(m *VM, n *refYnode) error {
	return n.each(func(k string, v *refYnode) (err error) {
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
			m.Managed = refBoolPtr(b)
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

func refFastConstraints(c *Constraints, n *refYnode) error {
	return n.each(func(k string, v *refYnode) (err error) {
		switch k {
		case "locations":
			c.Locations, err = refFastList(v, refFastLocation)
		case "colocations":
			c.Colocations, err = refFastList(v, refFastColocation)
		default:
			err = errSlow
		}
		return err
	})
}

func refFastLocation(l *Location, n *refYnode) error {
	return n.each(func(k string, v *refYnode) (err error) {
		switch k {
		case "vm":
			l.VM, err = v.str()
		case "host":
			l.Host, err = v.str()
		case "score":
			l.Score, err = v.score()
		case "rule":
			l.Rule = &Rule{}
			err = refFastRule(l.Rule, v)
		default:
			err = errSlow
		}
		return err
	})
}

func refFastColocation(co *Colocation, n *refYnode) error {
	return n.each(func(k string, v *refYnode) (err error) {
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

func refFastRule(r *Rule, n *refYnode) error {
	return n.each(func(k string, v *refYnode) (err error) {
		switch k {
		case "score":
			r.Score, err = v.score()
		case "score-attribute":
			r.ScoreAttribute, err = v.str()
		case "boolean-op":
			r.BooleanOp, err = v.str()
		case "expressions":
			r.Expressions, err = refFastList(v, refFastExpression)
		case "rules":
			r.Rules, err = refFastList(v, refFastRule)
		default:
			err = errSlow
		}
		return err
	})
}

func refFastExpression(e *Expression, n *refYnode) error {
	return n.each(func(k string, v *refYnode) (err error) {
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

// refFastStatus decodes status.yaml, or returns errSlow.
func refFastStatus(data []byte) (*Status, error) {
	root, err := refFastParse(data)
	if err != nil {
		return nil, err
	}
	var st Status
	err = root.each(func(k string, v *refYnode) (err error) {
		switch k {
		case "now":
			st.Now, err = v.time()
		case "hosts":
			st.Hosts = map[string]HostStatus{}
			err = v.each(func(name string, v *refYnode) error {
				hs, err := refFastHostStatus(v)
				st.Hosts[name] = hs
				return err
			})
		case "vms":
			st.VMs = make(map[string]VMStatus, len(v.kids))
			err = v.each(func(name string, v *refYnode) error {
				vs, err := refFastVMStatus(v)
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

func refFastHostStatus(n *refYnode) (HostStatus, error) {
	var hs HostStatus
	err := n.each(func(k string, v *refYnode) (err error) {
		switch k {
		case "state":
			hs.State, err = v.str()
		case "attributes":
			hs.Attributes, err = v.strMap()
		case "standby":
			var b bool
			b, err = v.bool()
			hs.Standby = refBoolPtr(b)
		case "maintenance":
			var b bool
			b, err = v.bool()
			hs.Maintenance = refBoolPtr(b)
		default:
			err = errSlow
		}
		return err
	})
	return hs, err
}

func refFastVMStatus(n *refYnode) (VMStatus, error) {
	var vs VMStatus
	err := n.each(func(k string, v *refYnode) (err error) {
		switch k {
		case "host":
			vs.Host, err = v.str()
		case "failures":
			vs.Failures, err = refFastList(v, refFastFailure)
		default:
			err = errSlow
		}
		return err
	})
	return vs, err
}

func refFastFailure(f *Failure, n *refYnode) error {
	return n.each(func(k string, v *refYnode) (err error) {
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

// refFastList reads a YAML list whose items each fill one T.
func refFastList[T any](v *refYnode, item func(*T, *refYnode) error) ([]T, error) {
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
