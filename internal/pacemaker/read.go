package pacemaker

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vmha/vmha/placement"
)

type xNV struct {
	ID    string `xml:"id,attr"`
	IDRef string `xml:"id-ref,attr"`
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type xSet struct {
	ID    string `xml:"id,attr"`
	IDRef string `xml:"id-ref,attr"`
	NV    []xNV  `xml:"nvpair"`
	Rules []xID  `xml:"rule"`
}

type xExpr struct {
	ID          string `xml:"id,attr"`
	Attribute   string `xml:"attribute,attr"`
	Operation   string `xml:"operation,attr"`
	Value       string `xml:"value,attr"`
	Type        string `xml:"type,attr"`
	ValueSource string `xml:"value-source,attr"`
}

type xRule struct {
	ID             string     `xml:"id,attr"`
	Score          string     `xml:"score,attr"`
	ScoreAttribute string     `xml:"score-attribute,attr"`
	BoolOp         string     `xml:"boolean-op,attr"`
	Exprs          []xExpr    `xml:"expression"`
	Rules          []xRule    `xml:"rule"`
	Dates          []xml.Name `xml:"date_expression"`
}

type xCIB struct {
	XMLName    xml.Name `xml:"cib"`
	HaveQuorum string   `xml:"have-quorum,attr"`
	Config     struct {
		CRM struct {
			Sets []xSet `xml:"cluster_property_set"`
		} `xml:"crm_config"`
		Nodes     []xNode `xml:"nodes>node"`
		Resources struct {
			Primitives []xPrimitive `xml:"primitive"`
			Groups     []xID        `xml:"group"`
			Clones     []xID        `xml:"clone"`
			Masters    []xID        `xml:"master"`
			Bundles    []xID        `xml:"bundle"`
		} `xml:"resources"`
		Constraints struct {
			Locations   []xLocation   `xml:"rsc_location"`
			Colocations []xColocation `xml:"rsc_colocation"`
			Orders      []xID         `xml:"rsc_order"`
			Tickets     []xID         `xml:"rsc_ticket"`
		} `xml:"constraints"`
		RscDefaults struct {
			Meta []xSet `xml:"meta_attributes"`
		} `xml:"rsc_defaults"`
		OpDefaults struct {
			Meta []xSet `xml:"meta_attributes"`
		} `xml:"op_defaults"`
		Tags []xTag `xml:"tags>tag"`
	} `xml:"configuration"`
	Status struct {
		Nodes []xNodeState `xml:"node_state"`
	} `xml:"status"`
}

type xNode struct {
	ID    string `xml:"id,attr"`
	Uname string `xml:"uname,attr"`
	Type  string `xml:"type,attr"`
	Attrs []xSet `xml:"instance_attributes"`
	Util  []xSet `xml:"utilization"`
}

type xLocation struct {
	ID         string  `xml:"id,attr"`
	Rsc        string  `xml:"rsc,attr"`
	RscPattern string  `xml:"rsc-pattern,attr"`
	Node       string  `xml:"node,attr"`
	Score      string  `xml:"score,attr"`
	Rules      []xRule `xml:"rule"`
	Sets       []xID   `xml:"resource_set"`
}

type xColocation struct {
	ID    string `xml:"id,attr"`
	Rsc   string `xml:"rsc,attr"`
	With  string `xml:"with-rsc,attr"`
	Score string `xml:"score,attr"`
	Attr  string `xml:"node-attribute,attr"`
	Sets  []xID  `xml:"resource_set"`
}

type xTag struct {
	ID   string `xml:"id,attr"`
	Refs []xID  `xml:"obj_ref"`
}

type xNodeState struct {
	ID        string `xml:"id,attr"`
	Uname     string `xml:"uname,attr"`
	InCCM     string `xml:"in_ccm,attr"`
	Crmd      string `xml:"crmd,attr"`
	Join      string `xml:"join,attr"`
	Transient []xSet `xml:"transient_attributes>instance_attributes"`
	LRM       []struct {
		ID  string `xml:"id,attr"`
		Ops []xOp  `xml:"lrm_rsc_op"`
	} `xml:"lrm>lrm_resources>lrm_resource"`
}

type xOp struct {
	ID        string `xml:"id,attr"`
	Operation string `xml:"operation,attr"`
	Interval  string `xml:"interval,attr"`
	TransKey  string `xml:"transition-key,attr"`
	CallID    string `xml:"call-id,attr"`
	RC        string `xml:"rc-code,attr"`
	OpStatus  string `xml:"op-status,attr"`
}

type xID struct {
	ID string `xml:"id,attr"`
}

type xPrimitive struct {
	ID       string    `xml:"id,attr"`
	Class    string    `xml:"class,attr"`
	Provider string    `xml:"provider,attr"`
	Type     string    `xml:"type,attr"`
	Template string    `xml:"template,attr"`
	Meta     []xSet    `xml:"meta_attributes"`
	Util     []xSet    `xml:"utilization"`
	Ops      []xOpSpec `xml:"operations>op"`
}

// xOpSpec is a configured operation of a primitive.
type xOpSpec struct {
	ID       string `xml:"id,attr"`
	Name     string `xml:"name,attr"`
	Interval string `xml:"interval,attr"`
	Role     string `xml:"role,attr"`
	OnFail   string `xml:"on-fail,attr"`
}

func setsMap(sets []xSet) map[string]string {
	m := map[string]string{}
	for _, s := range sets {
		for _, nv := range s.NV {
			m[nv.Name] = nv.Value
		}
	}
	return m
}

// MaxCIB bounds the CIB we read.
const MaxCIB = 256 << 20

// ReadCIB translates a Pacemaker CIB (configuration and status) into the
// placement model. Every primitive counts as a VM. What it cannot
// translate (groups, clones, bundles, order constraints, tickets,
// resource sets, date rules, rsc-pattern) is skipped and listed in the
// warnings. now is the clock for failure timeouts.
func ReadCIB(data []byte, now time.Time) (placement.Input, []string, error) {
	var in placement.Input
	if len(data) > MaxCIB {
		return in, nil, fmt.Errorf("CIB is %d bytes, more than the %d allowed", len(data), MaxCIB)
	}
	var c xCIB
	if fastCIB(data, &c) != nil {
		c = xCIB{}
		dec := xml.NewDecoder(bytes.NewReader(data))
		if err := dec.Decode(&c); err != nil {
			return in, nil, fmt.Errorf("CIB does not parse: %w", err)
		}
	}
	in.Now = now
	r := &cibReader{in: &in}
	if err := r.translate(&c); err != nil {
		return in, nil, err
	}
	sort.Strings(r.warn)
	if err := placement.Validate(&in); err != nil {
		return in, r.warn, fmt.Errorf("translated CIB does not validate: %w", err)
	}
	return in, r.warn, nil
}

// cibReader fills a placement.Input from a decoded CIB, one section at a
// time, and keeps what it could not translate.
type cibReader struct {
	in   *placement.Input
	warn []string
	// hostIx and vmIx index in.Hosts and in.VMs by name.
	hostIx, vmIx map[string]int
	// nodeByID maps node ids to names; tags holds the tags' ids.
	nodeByID map[string]string
	tags     map[string]bool
	// runsOn lists the nodes each VM runs on, in the status order.
	runsOn map[string][]string
}

func (r *cibReader) skip(what string) { r.warn = append(r.warn, what) }

func (r *cibReader) translate(c *xCIB) error {
	if err := r.readPolicy(c); err != nil {
		return err
	}
	if err := r.readNodes(c.Config.Nodes); err != nil {
		return err
	}
	if err := r.readResources(c); err != nil {
		return err
	}
	r.tags = map[string]bool{}
	for _, tg := range c.Config.Tags {
		r.tags[tg.ID] = true
	}
	cs := c.Config.Constraints
	for _, l := range cs.Locations {
		if err := r.readLocation(l); err != nil {
			return err
		}
	}
	for _, co := range cs.Colocations {
		if err := r.readColocation(co); err != nil {
			return err
		}
	}
	for _, o := range cs.Orders {
		r.skip("rsc_order " + o.ID + " not translated")
	}
	for _, o := range cs.Tickets {
		r.skip("rsc_ticket " + o.ID + " not translated")
	}
	r.runsOn = map[string][]string{}
	for _, ns := range c.Status.Nodes {
		if err := r.readNodeState(ns); err != nil {
			return err
		}
	}
	for _, v := range r.in.VMs {
		if on := r.runsOn[v.Name]; len(on) > 1 {
			r.skip(fmt.Sprintf("resource %s is active on %d nodes (%s): Pacemaker stops it everywhere and recovers it (multiple-active); vmha takes it as running on %s", v.Name, len(on), strings.Join(on, ", "), v.Current))
		}
	}
	return nil
}

// readPolicy reads crm_config and rsc_defaults.
func (r *cibReader) readPolicy(c *xCIB) error {
	in := r.in
	crm := setsMap(c.Config.CRM.Sets)
	r.checkOptions(c, crm)
	in.Policy.Strategy = placement.Strategy(strings.ToLower(crm["placement-strategy"]))
	if v, ok := crm["symmetric-cluster"]; ok && isFalse(v) {
		in.Policy.OptIn = true
	}
	if v, ok := crm["migration-limit"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("crm_config migration-limit %q is not a number", v)
		}
		if n > 0 {
			in.Policy.MigrationLimit = n
		}
	}
	r.checkSets("rsc_defaults meta_attributes", c.Config.RscDefaults.Meta)
	r.checkSets("op_defaults meta_attributes", c.Config.OpDefaults.Meta)
	if v := setsMap(c.Config.OpDefaults.Meta)["on-fail"]; v != "" && !strings.EqualFold(v, "restart") {
		r.skip(fmt.Sprintf("op_defaults %s=%s: vmha treats every failure as on-fail=restart", nvID(c.Config.OpDefaults.Meta, "on-fail"), v))
	}
	defaults := setsMap(c.Config.RscDefaults.Meta)
	for _, k := range []string{"default-resource-stickiness", "resource-stickiness"} {
		if v, ok := defaults[k]; ok {
			s, err := placement.ParseScore(v)
			if err != nil {
				return fmt.Errorf("rsc_defaults %s: %w", k, err)
			}
			in.Policy.DefaultStickiness = s
		}
	}
	return nil
}

// readNodes makes a host of every cluster node (offline until the status
// section says otherwise).
func (r *cibReader) readNodes(nodes []xNode) error {
	in := r.in
	r.nodeByID = map[string]string{}
	for _, n := range nodes {
		r.nodeByID[n.ID] = n.Uname
		r.checkSets("node "+n.Uname+" instance_attributes", n.Attrs)
		r.checkSets("node "+n.Uname+" utilization", n.Util)
		if n.Type == "remote" || n.Type == "ping" {
			r.skip(fmt.Sprintf("node %s of type %s not translated", n.Uname, n.Type))
			continue
		}
		h := placement.HostInfo{Name: n.Uname, Attributes: map[string]string{}, Capacity: map[string]int64{}, Condition: placement.Offline}
		for k, v := range setsMap(n.Attrs) {
			switch k {
			case "standby":
				h.Standby = isTrue(v)
			case "maintenance":
				h.Maintenance = isTrue(v)
			default:
				h.Attributes[k] = v
			}
		}
		for k, v := range setsMap(n.Util) {
			x, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return fmt.Errorf("node %s utilization %s=%q is not an integer", n.Uname, k, v)
			}
			h.Capacity[k] = x
		}
		in.Hosts = append(in.Hosts, h)
	}
	r.hostIx = map[string]int{}
	for i, h := range in.Hosts {
		r.hostIx[h.Name] = i
	}
	return nil
}

// readResources makes a VM of every primitive that is not a fence device.
func (r *cibReader) readResources(c *xCIB) error {
	rs := c.Config.Resources
	for _, g := range rs.Groups {
		r.skip("group " + g.ID + " not translated")
	}
	for _, g := range rs.Clones {
		r.skip("clone " + g.ID + " not translated")
	}
	for _, g := range rs.Masters {
		r.skip("promotable clone " + g.ID + " not translated")
	}
	for _, g := range rs.Bundles {
		r.skip("bundle " + g.ID + " not translated")
	}
	r.vmIx = map[string]int{}
	// rsc_defaults apply to every primitive that does not set its own;
	// their stickiness is the policy's default stickiness.
	defaults := setsMap(c.Config.RscDefaults.Meta)
	delete(defaults, "resource-stickiness")
	delete(defaults, "default-resource-stickiness")
	for _, p := range rs.Primitives {
		if p.Class == "stonith" {
			if r.in.Policy.Strategy == "" || r.in.Policy.Strategy == placement.StrategyDefault {
				r.skip("primitive " + p.ID + " is a fence device (class stonith), not a VM: under the default placement-strategy Pacemaker counts it among its node's resources when it spreads resources by count, vmha does not, so ties may fall on another host")
			}
			continue
		}
		v := placement.VMInfo{Name: p.ID, Utilization: map[string]int64{}}
		meta := setsMap(p.Meta)
		r.checkPrimitive(p, meta)
		for k, val := range defaults {
			if _, own := meta[k]; !own {
				meta[k] = val
			}
		}
		for k, val := range meta {
			if err := r.applyPrimitiveMeta(&v, p.ID, k, val); err != nil {
				return err
			}
		}
		for k, val := range setsMap(p.Util) {
			x, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
				return fmt.Errorf("primitive %s utilization %s=%q is not an integer", p.ID, k, val)
			}
			v.Utilization[k] = x
		}
		r.vmIx[p.ID] = len(r.in.VMs)
		r.in.VMs = append(r.in.VMs, v)
	}
	return nil
}

// applyPrimitiveMeta reads one meta attribute of primitive id into v;
// attributes the model has no use for are ignored.
func (r *cibReader) applyPrimitiveMeta(v *placement.VMInfo, id, k, val string) error {
	switch k {
	case "priority":
		n, exact := parsePriority(val)
		if !exact {
			r.skip(fmt.Sprintf("primitive %s priority %q is not an integer: read as %d, as Pacemaker does", id, val, n))
		}
		v.Priority = n
	case "target-role":
		if strings.EqualFold(val, "stopped") {
			v.Target = placement.Stopped
		}
	case "allow-migrate":
		v.AllowMigrate = isTrue(val)
	case "resource-stickiness":
		s, err := placement.ParseScore(val)
		if err != nil {
			return fmt.Errorf("primitive %s resource-stickiness: %w", id, err)
		}
		v.Stickiness = &s
	case "migration-threshold":
		s, err := placement.ParseScore(val)
		if err != nil {
			return fmt.Errorf("primitive %s migration-threshold: %w", id, err)
		}
		if s > 0 && s < placement.Infinity {
			v.MigrationThreshold = int(s)
		}
	case "failure-timeout":
		d, err := parseInterval(val)
		if err != nil {
			return fmt.Errorf("primitive %s failure-timeout %q: %w", id, val, err)
		}
		v.FailureTimeout = d
	case "is-managed":
		v.Unmanaged = isFalse(val)
	}
	return nil
}

// readLocation reads one rsc_location: a score on a node, or rules.
func (r *cibReader) readLocation(l xLocation) error {
	in := r.in
	if l.RscPattern != "" || len(l.Sets) > 0 {
		r.skip("rsc_location " + l.ID + " with rsc-pattern or resource sets not translated")
		return nil
	}
	if _, ok := r.vmIx[l.Rsc]; !ok {
		if r.tags[l.Rsc] {
			r.skip("rsc_location " + l.ID + " names tag " + l.Rsc + ": tags in constraints are not translated")
			return nil
		}
		r.skip("rsc_location " + l.ID + " names " + l.Rsc + ", which is not a translated primitive")
		return nil
	}
	if l.Node != "" {
		if _, ok := r.hostIx[l.Node]; !ok {
			r.skip("rsc_location " + l.ID + " names node " + l.Node + ", which is not a translated cluster node (a remote or guest node, or none): dropped")
			return nil
		}
		s, err := placement.ParseScore(l.Score)
		if err != nil {
			return fmt.Errorf("rsc_location %s: %w", l.ID, err)
		}
		in.Locations = append(in.Locations, placement.Location{VM: l.Rsc, Host: l.Node, Score: s})
		return nil
	}
	for _, rule := range l.Rules {
		r.readHashRule("rsc_location "+l.ID+" rule "+rule.ID, &rule)
		pr, ok, err := convertXRule(rule, true)
		if err != nil {
			return fmt.Errorf("rsc_location %s rule %s: %w", l.ID, rule.ID, err)
		}
		if !ok {
			r.skip("rsc_location " + l.ID + " rule " + rule.ID + " uses date expressions: not translated")
			continue
		}
		in.LocationRules = append(in.LocationRules, placement.LocationRule{VM: l.Rsc, Rule: pr})
	}
	return nil
}

// readColocation reads one rsc_colocation between two primitives.
func (r *cibReader) readColocation(co xColocation) error {
	if len(co.Sets) > 0 {
		r.skip("rsc_colocation " + co.ID + " with resource sets not translated")
		return nil
	}
	if co.Attr != "" && co.Attr != "#uname" {
		r.skip("rsc_colocation " + co.ID + " by node attribute " + co.Attr + " not translated")
		return nil
	}
	_, ok1 := r.vmIx[co.Rsc]
	_, ok2 := r.vmIx[co.With]
	if !ok1 || !ok2 {
		if r.tags[co.Rsc] || r.tags[co.With] {
			r.skip("rsc_colocation " + co.ID + " names a tag: tags in constraints are not translated")
			return nil
		}
		r.skip("rsc_colocation " + co.ID + " names a resource that is not a translated primitive")
		return nil
	}
	s, err := placement.ParseScore(co.Score)
	if err != nil {
		return fmt.Errorf("rsc_colocation %s: %w", co.ID, err)
	}
	r.in.Colocations = append(r.in.Colocations, placement.Colocation{VM: co.Rsc, With: co.With, Score: s})
	return nil
}

// readNodeState reads one node's status: whether it is up, its transient
// attributes and fail counts, and the resources it runs.
func (r *cibReader) readNodeState(ns xNodeState) error {
	in := r.in
	hi, ok := r.hostIx[ns.Uname]
	if !ok {
		for _, lr := range ns.LRM {
			if _, vm := r.vmIx[lr.ID]; vm && running(lr.Ops) {
				r.skip(fmt.Sprintf("node_state %s is not a translated cluster node (a remote or guest node): resource %s runs there, vmha takes it as stopped", ns.Uname, lr.ID))
			}
		}
		return nil
	}
	h := &in.Hosts[hi]
	if isTrue(ns.InCCM) && ns.Crmd == "online" {
		h.Condition = placement.Usable
	} else {
		// A node that is down holds no running VMs for Pacemaker: as
		// after a fence, its VMs are recovered elsewhere.
		h.Condition = placement.Released
		if h.Maintenance {
			r.skip("node " + h.Name + " is in maintenance and offline: Pacemaker leaves the resources recorded there as they are; vmha takes the node as down and recovers them elsewhere")
		}
	}
	fails := map[string]*placement.Failure{}
	for k, v := range setsMap(ns.Transient) {
		if err := readTransient(h, fails, k, v); err != nil {
			return err
		}
	}
	if v, ok := h.Attributes["shutdown"]; ok && v != "0" && v != "" {
		// Pacemaker moves everything off a node that is shutting down.
		delete(h.Attributes, "shutdown")
		h.Standby = true
		r.skip("node " + h.Name + " is shutting down (transient attribute shutdown=" + v + "): vmha puts it in standby")
	}
	for rsc, f := range fails {
		if i, ok := r.vmIx[rsc]; ok && f.Count > 0 {
			in.VMs[i].Failures = append(in.VMs[i].Failures, *f)
		}
	}
	for _, lr := range ns.LRM {
		i, ok := r.vmIx[lr.ID]
		if !ok {
			continue
		}
		r.checkHistory(ns.Uname, lr.ID, lr.Ops)
		if running(lr.Ops) && h.Condition != placement.Usable {
			continue
		}
		if running(lr.Ops) {
			in.VMs[i].Current = ns.Uname
			r.runsOn[lr.ID] = append(r.runsOn[lr.ID], ns.Uname)
		}
	}
	return nil
}

// readTransient reads one transient attribute of host h: a fail count or
// last failure time of a resource (into fails, by resource), standby, or a
// node attribute.
func readTransient(h *placement.HostInfo, fails map[string]*placement.Failure, k, v string) error {
	failure := func(prefix string) *placement.Failure {
		rsc := strings.SplitN(strings.TrimPrefix(k, prefix), "#", 2)[0]
		f := fails[rsc]
		if f == nil {
			f = &placement.Failure{Host: h.Name}
			fails[rsc] = f
		}
		return f
	}
	switch {
	case strings.HasPrefix(k, "fail-count-"):
		n, err := placement.ParseScore(v)
		if err != nil {
			return fmt.Errorf("node %s %s: %w", h.Name, k, err)
		}
		f := failure("fail-count-")
		f.Count += int(min(n, placement.Infinity))
	case strings.HasPrefix(k, "last-failure-"):
		sec, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("node %s %s %q is not a time", h.Name, k, v)
		}
		f := failure("last-failure-")
		if t := time.Unix(sec, 0); t.After(f.Last) {
			f.Last = t
		}
	case k == "standby":
		h.Standby = isTrue(v)
	default:
		h.Attributes[k] = v
	}
	return nil
}

// running reads a resource's operation history on a node: the latest
// operation (highest call id) says whether it runs there.
func running(ops []xOp) bool {
	best, bestID := -1, int64(-2)
	for i, op := range ops {
		id, err := strconv.ParseInt(op.CallID, 10, 64)
		if err != nil {
			continue
		}
		if id > bestID {
			best, bestID = i, id
		}
	}
	if best < 0 {
		return false
	}
	op := ops[best]
	switch op.Operation {
	case "stop", "migrate_to":
		return op.RC != "0" // a failed stop leaves it running
	case "start", "migrate_from", "monitor", "promote", "demote", "notify", "reload", "reload-agent":
		return op.RC == "0" || op.RC == "8" || op.RC == "9"
	}
	return false
}

func convertXRule(r xRule, top bool) (placement.Rule, bool, error) {
	out := placement.Rule{ScoreAttribute: r.ScoreAttribute, BoolOp: r.BoolOp}
	if len(r.Dates) > 0 {
		return out, false, nil
	}
	if top && r.ScoreAttribute == "" {
		s, err := placement.ParseScore(r.Score)
		if err != nil {
			return out, false, err
		}
		out.Score = s
	}
	for _, e := range r.Exprs {
		out.Expressions = append(out.Expressions, placement.Expression{Attribute: e.Attribute, Operation: e.Operation, Value: e.Value, Type: e.Type})
	}
	for _, sub := range r.Rules {
		s, ok, err := convertXRule(sub, false)
		if err != nil || !ok {
			return out, ok, err
		}
		out.Rules = append(out.Rules, s)
	}
	return out, true, placement.ValidateRule(out, "rule "+r.ID)
}

func isTrue(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "on", "yes", "y", "1":
		return true
	}
	return false
}

func isFalse(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "false", "off", "no", "n", "0":
		return true
	}
	return false
}

// parseInterval reads Pacemaker intervals: seconds, or with a unit (s, m,
// h, ms), or an ISO 8601 duration is not supported.
func parseInterval(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	for _, suf := range []struct {
		s string
		d time.Duration
	}{{"ms", time.Millisecond}, {"msec", time.Millisecond}, {"s", time.Second}, {"sec", time.Second}, {"m", time.Minute}, {"min", time.Minute}, {"h", time.Hour}, {"hr", time.Hour}} {
		if n, err := strconv.ParseInt(strings.TrimSuffix(v, suf.s), 10, 64); err == nil && strings.HasSuffix(v, suf.s) {
			return time.Duration(n) * suf.d, nil
		}
	}
	return 0, fmt.Errorf("want seconds or a number with s, m or h")
}
