package pacemaker

// A fast reader of the CIB into xCIB. encoding/xml reads a real CIB at
// about 40 MB/s, most of it in the operation history of every node; this
// reader scans the bytes once, builds a small element tree and fills xCIB
// from it, several times faster. It gives up (errSlowXML) on whatever it
// does not handle exactly as encoding/xml does (a DOCTYPE, CDATA, namespace
// prefixes, character references, carriage returns, control characters,
// invalid UTF-8, anything malformed), and ReadCIB then decodes with
// encoding/xml, which also words the errors. TestFastCIBAgreesWithXML
// checks that both fill the same xCIB.

import (
	"bytes"
	"encoding/xml"
	"errors"
	"strings"
	"unicode/utf8"
)

var errSlowXML = errors.New("not for the fast CIB reader")

// xattr is an attribute as it stands in the file (entities not replaced
// yet), as offsets into it: most attributes of a CIB are never read, and
// offsets hold no pointers for the collector to scan.
type xattr struct{ name, nameLen, raw, rawLen uint32 }

type xelem struct {
	name  string
	src   []byte // the file the attributes point into
	attrs []xattr
	kids  []*xelem
}

func (e *xelem) attr(name string) string {
	var raw []byte
	for _, a := range e.attrs {
		if string(e.src[a.name:a.name+a.nameLen]) == name {
			raw = e.src[a.raw : a.raw+a.rawLen] // the last one wins, as in encoding/xml
		}
	}
	v, _ := unescape(raw) // checked when scanned
	return v
}

type xmlScanner struct {
	d []byte
	i int
	// scratch collects an element's attributes; arena holds them, one
	// slice of it per element, a new chunk when one is full.
	scratch, arena []xattr
	// names interns element names.
	names map[string]string
}

// fastCIB decodes data into c, or returns errSlowXML.
func fastCIB(data []byte, c *xCIB) error {
	if len(data) > MaxCIB || !utf8.Valid(data) || bytes.IndexByte(data, '\r') >= 0 {
		return errSlowXML
	}
	for _, b := range data {
		if b < 0x20 && b != '\n' && b != '\t' {
			return errSlowXML
		}
	}
	s := &xmlScanner{d: data, names: map[string]string{}}
	// The prolog: the XML declaration, comments, white space.
	for {
		s.skipSpace()
		switch {
		case s.has("<?"):
			start := s.i
			if !s.skipPast("?>") {
				return errSlowXML
			}
			decl := strings.ToLower(string(s.d[start:s.i]))
			if strings.Contains(decl, "encoding") && !strings.Contains(decl, "utf-8") {
				return errSlowXML // encoding/xml refuses other encodings
			}
		case s.has("<!--"):
			if !s.skipComment() {
				return errSlowXML
			}
		case s.has("<") && !s.has("<!") && !s.has("</"):
			root, err := s.element()
			if err != nil {
				return err
			}
			if root.name != "cib" {
				return errSlowXML
			}
			c.XMLName = xml.Name{Local: "cib"}
			c.HaveQuorum = root.attr("have-quorum")
			fillCIB(root, c)
			return nil // encoding/xml reads the first element only
		default:
			return errSlowXML
		}
	}
}

func (s *xmlScanner) has(p string) bool { return bytes.HasPrefix(s.d[s.i:], []byte(p)) }

func (s *xmlScanner) skipPast(p string) bool {
	j := bytes.Index(s.d[s.i:], []byte(p))
	if j < 0 {
		return false
	}
	s.i += j + len(p)
	return true
}

// skipComment skips <!-- ... -->; a comment with -- inside is malformed.
func (s *xmlScanner) skipComment() bool {
	start := s.i + len("<!--")
	s.i = start
	if !s.skipPast("-->") {
		return false
	}
	return !bytes.Contains(s.d[start:s.i-len("-->")], []byte("--"))
}

func (s *xmlScanner) skipSpace() {
	for s.i < len(s.d) && (s.d[s.i] == ' ' || s.d[s.i] == '\n' || s.d[s.i] == '\t') {
		s.i++
	}
}

func isNameByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '_' || b == '-' || b == '.'
}

func isNameStart(b byte) bool { return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b == '_' }

func (s *xmlScanner) name() (string, error) {
	j := s.i
	for j < len(s.d) && isNameByte(s.d[j]) {
		j++
	}
	if j == s.i || !isNameStart(s.d[s.i]) {
		return "", errSlowXML
	}
	n, ok := s.names[string(s.d[s.i:j])]
	if !ok {
		n = string(s.d[s.i:j])
		s.names[n] = n
	}
	s.i = j
	return n, nil
}

// element reads the element that starts at s.i ('<') and its content.
func (s *xmlScanner) element() (*xelem, error) {
	s.i++ // <
	n, err := s.name()
	if err != nil {
		return nil, err
	}
	e := &xelem{name: n, src: s.d}
	s.scratch = s.scratch[:0]
	for {
		s.skipSpace()
		if s.i >= len(s.d) {
			return nil, errSlowXML
		}
		switch s.d[s.i] {
		case '/':
			if !s.has("/>") {
				return nil, errSlowXML
			}
			s.i += 2
			e.attrs = s.keep()
			return e, nil
		case '>':
			s.i++
			e.attrs = s.keep()
			return e, s.content(e)
		}
		a, err := s.attribute()
		if err != nil {
			return nil, err
		}
		s.scratch = append(s.scratch, a)
	}
}

// keep moves the attributes in scratch to the arena.
func (s *xmlScanner) keep() []xattr {
	n := len(s.scratch)
	if n == 0 {
		return nil
	}
	if cap(s.arena)-len(s.arena) < n {
		s.arena = make([]xattr, 0, max(4096, n))
	}
	i := len(s.arena)
	s.arena = append(s.arena, s.scratch...)
	return s.arena[i : i+n : i+n]
}

func (s *xmlScanner) attribute() (xattr, error) {
	start := s.i
	for s.i < len(s.d) && isNameByte(s.d[s.i]) {
		s.i++
	}
	n := s.d[start:s.i]
	if len(n) == 0 || !isNameStart(n[0]) || string(n) == "xmlns" || (s.i < len(s.d) && s.d[s.i] == ':') {
		return xattr{}, errSlowXML
	}
	s.skipSpace()
	if s.i >= len(s.d) || s.d[s.i] != '=' {
		return xattr{}, errSlowXML
	}
	s.i++
	s.skipSpace()
	if s.i >= len(s.d) || (s.d[s.i] != '"' && s.d[s.i] != '\'') {
		return xattr{}, errSlowXML
	}
	q := s.d[s.i]
	s.i++
	j := bytes.IndexByte(s.d[s.i:], q)
	if j < 0 {
		return xattr{}, errSlowXML
	}
	raw := s.d[s.i : s.i+j]
	s.i += j + 1
	if bytes.IndexByte(raw, '<') >= 0 || !plainEntities(raw) {
		return xattr{}, errSlowXML
	}
	return xattr{uint32(start), uint32(len(n)), uint32(s.i - j - 1), uint32(j)}, nil
}

var entities = []struct {
	name string
	c    byte
}{{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}}

// plainEntities reports whether every & in text starts a predefined
// entity.
func plainEntities(text []byte) bool {
	if bytes.IndexByte(text, '&') < 0 {
		return true
	}
	_, err := unescape(text)
	return err == nil
}

// unescape replaces the five predefined entities; anything else that
// starts with & goes to encoding/xml.
func unescape(raw []byte) (string, error) {
	if bytes.IndexByte(raw, '&') < 0 {
		return string(raw), nil
	}
	var b strings.Builder
	for len(raw) > 0 {
		k := bytes.IndexByte(raw, '&')
		if k < 0 {
			b.Write(raw)
			break
		}
		b.Write(raw[:k])
		raw = raw[k:]
		ok := false
		for _, e := range entities {
			if bytes.HasPrefix(raw, []byte(e.name)) {
				b.WriteByte(e.c)
				raw = raw[len(e.name):]
				ok = true
				break
			}
		}
		if !ok {
			return "", errSlowXML
		}
	}
	return b.String(), nil
}

// content reads e's children up to its end tag; text is checked and
// dropped (xCIB holds no character data).
func (s *xmlScanner) content(e *xelem) error {
	for {
		j := bytes.IndexByte(s.d[s.i:], '<')
		if j < 0 {
			return errSlowXML
		}
		if text := s.d[s.i : s.i+j]; bytes.IndexByte(text, '>') >= 0 || !plainEntities(text) {
			return errSlowXML // an odd entity, or ]]> and the like
		}
		s.i += j
		switch {
		case s.has("</"):
			s.i += 2
			n, err := s.name()
			if err != nil || n != e.name {
				return errSlowXML
			}
			s.skipSpace()
			if s.i >= len(s.d) || s.d[s.i] != '>' {
				return errSlowXML
			}
			s.i++
			return nil
		case s.has("<!--"):
			if !s.skipComment() {
				return errSlowXML
			}
		case s.has("<!"), s.has("<?"):
			return errSlowXML // CDATA, a declaration, a processing instruction
		default:
			k, err := s.element()
			if err != nil {
				return err
			}
			e.kids = append(e.kids, k)
		}
	}
}

// each calls f for every child of e named name.
func (e *xelem) each(name string, f func(*xelem)) {
	for _, k := range e.kids {
		if k.name == name {
			f(k)
		}
	}
}

// path calls f for every element reached from e through names, as
// encoding/xml's "a>b>c" does.
func (e *xelem) path(f func(*xelem), names ...string) {
	if len(names) == 0 {
		f(e)
		return
	}
	e.each(names[0], func(k *xelem) { k.path(f, names[1:]...) })
}

func fillCIB(root *xelem, c *xCIB) {
	root.each("configuration", func(cf *xelem) {
		cf.path(func(e *xelem) { c.Config.CRM.Sets = append(c.Config.CRM.Sets, xSetOf(e)) }, "crm_config", "cluster_property_set")
		cf.path(func(e *xelem) {
			c.Config.Nodes = append(c.Config.Nodes, xNode{ID: e.attr("id"), Uname: e.attr("uname"), Type: e.attr("type"),
				Attrs: xSetsOf(e, "instance_attributes"), Util: xSetsOf(e, "utilization")})
		}, "nodes", "node")
		rs := &c.Config.Resources
		cf.each("resources", func(r *xelem) {
			r.each("primitive", func(e *xelem) {
				p := xPrimitive{ID: e.attr("id"), Class: e.attr("class"), Provider: e.attr("provider"), Type: e.attr("type"),
					Template: e.attr("template"), Meta: xSetsOf(e, "meta_attributes"), Util: xSetsOf(e, "utilization")}
				e.path(func(o *xelem) {
					p.Ops = append(p.Ops, xOpSpec{ID: o.attr("id"), Name: o.attr("name"), Interval: o.attr("interval"),
						Role: o.attr("role"), OnFail: o.attr("on-fail")})
				}, "operations", "op")
				rs.Primitives = append(rs.Primitives, p)
			})
			rs.Groups = appendIDs(rs.Groups, r, "group")
			rs.Clones = appendIDs(rs.Clones, r, "clone")
			rs.Masters = appendIDs(rs.Masters, r, "master")
			rs.Bundles = appendIDs(rs.Bundles, r, "bundle")
		})
		cs := &c.Config.Constraints
		cf.each("constraints", func(r *xelem) {
			r.each("rsc_location", func(e *xelem) {
				l := xLocation{ID: e.attr("id"), Rsc: e.attr("rsc"), RscPattern: e.attr("rsc-pattern"), Node: e.attr("node"),
					Score: e.attr("score"), Sets: appendIDs(nil, e, "resource_set")}
				e.each("rule", func(k *xelem) { l.Rules = append(l.Rules, xRuleOf(k)) })
				cs.Locations = append(cs.Locations, l)
			})
			r.each("rsc_colocation", func(e *xelem) {
				cs.Colocations = append(cs.Colocations, xColocation{ID: e.attr("id"), Rsc: e.attr("rsc"), With: e.attr("with-rsc"),
					Score: e.attr("score"), Attr: e.attr("node-attribute"), Sets: appendIDs(nil, e, "resource_set")})
			})
			cs.Orders = appendIDs(cs.Orders, r, "rsc_order")
			cs.Tickets = appendIDs(cs.Tickets, r, "rsc_ticket")
		})
		cf.path(func(e *xelem) { c.Config.RscDefaults.Meta = append(c.Config.RscDefaults.Meta, xSetOf(e)) }, "rsc_defaults", "meta_attributes")
		cf.path(func(e *xelem) { c.Config.OpDefaults.Meta = append(c.Config.OpDefaults.Meta, xSetOf(e)) }, "op_defaults", "meta_attributes")
		cf.path(func(e *xelem) {
			c.Config.Tags = append(c.Config.Tags, xTag{ID: e.attr("id"), Refs: appendIDs(nil, e, "obj_ref")})
		}, "tags", "tag")
	})
	root.path(func(e *xelem) { c.Status.Nodes = append(c.Status.Nodes, xNodeStateOf(e)) }, "status", "node_state")
}

func xSetOf(e *xelem) xSet {
	s := xSet{ID: e.attr("id"), IDRef: e.attr("id-ref"), Rules: appendIDs(nil, e, "rule")}
	e.each("nvpair", func(k *xelem) {
		s.NV = append(s.NV, xNV{ID: k.attr("id"), IDRef: k.attr("id-ref"), Name: k.attr("name"), Value: k.attr("value")})
	})
	return s
}

func xSetsOf(e *xelem, name string) []xSet {
	var sets []xSet
	e.each(name, func(k *xelem) { sets = append(sets, xSetOf(k)) })
	return sets
}

func appendIDs(ids []xID, e *xelem, name string) []xID {
	e.each(name, func(k *xelem) { ids = append(ids, xID{ID: k.attr("id")}) })
	return ids
}

func xRuleOf(e *xelem) xRule {
	r := xRule{ID: e.attr("id"), Score: e.attr("score"), ScoreAttribute: e.attr("score-attribute"), BoolOp: e.attr("boolean-op")}
	for _, k := range e.kids {
		switch k.name {
		case "expression":
			r.Exprs = append(r.Exprs, xExpr{ID: k.attr("id"), Attribute: k.attr("attribute"), Operation: k.attr("operation"),
				Value: k.attr("value"), Type: k.attr("type"), ValueSource: k.attr("value-source")})
		case "rule":
			r.Rules = append(r.Rules, xRuleOf(k))
		case "date_expression":
			r.Dates = append(r.Dates, xml.Name{Local: k.name})
		}
	}
	return r
}

func xNodeStateOf(e *xelem) xNodeState {
	ns := xNodeState{ID: e.attr("id"), Uname: e.attr("uname"), InCCM: e.attr("in_ccm"), Crmd: e.attr("crmd"), Join: e.attr("join")}
	e.path(func(k *xelem) { ns.Transient = append(ns.Transient, xSetOf(k)) }, "transient_attributes", "instance_attributes")
	e.path(func(k *xelem) {
		var lr struct {
			ID  string `xml:"id,attr"`
			Ops []xOp  `xml:"lrm_rsc_op"`
		}
		lr.ID = k.attr("id")
		k.each("lrm_rsc_op", func(o *xelem) {
			lr.Ops = append(lr.Ops, xOp{ID: o.attr("id"), Operation: o.attr("operation"), Interval: o.attr("interval"),
				TransKey: o.attr("transition-key"), CallID: o.attr("call-id"), RC: o.attr("rc-code"), OpStatus: o.attr("op-status")})
		})
		ns.LRM = append(ns.LRM, lr)
	}, "lrm", "lrm_resources", "lrm_resource")
	return ns
}
