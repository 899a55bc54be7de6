package pacemaker

// What ReadCIB does with the parts of a CIB that the placement model has
// no place for: each is translated with Pacemaker's meaning where the
// model can say it, or named in a warning (element and id) with what vmha
// does instead. TestCTSScheduler holds the reader to it over Pacemaker's
// own scheduler regression suite: no disagreement without a warning.

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/vmha/vmha/placement"
)

// parsePriority reads a priority as Pacemaker 2.1.5 does (char2score):
// INFINITY, -INFINITY, or the leading integer ("1.0" is 1, "abc" is 0),
// clipped to ±INFINITY. exact is false when the text was more than that.
func parsePriority(v string) (n int, exact bool) {
	t := strings.TrimSpace(v)
	switch strings.ToUpper(strings.TrimPrefix(t, "+")) {
	case "INFINITY":
		return int(placement.Infinity), true
	case "-INFINITY":
		return -int(placement.Infinity), true
	}
	if x, err := strconv.Atoi(t); err == nil {
		return int(max(min(int64(x), int64(placement.Infinity)), -int64(placement.Infinity))), true
	}
	// strtoll: optional sign, then digits; whatever follows is dropped.
	i := 0
	if i < len(t) && (t[i] == '-' || t[i] == '+') {
		i++
	}
	j := i
	for j < len(t) && t[j] >= '0' && t[j] <= '9' {
		j++
	}
	if j == i {
		return 0, false
	}
	x, err := strconv.ParseInt(t[:j], 10, 64)
	if err != nil { // out of range: clipped
		if t[0] == '-' {
			return -int(placement.Infinity), false
		}
		return int(placement.Infinity), false
	}
	return int(max(min(x, int64(placement.Infinity)), -int64(placement.Infinity))), false
}

// checkSets warns about attribute sets vmha reads flat: a set with rules
// (Pacemaker applies it only where and when the rule holds), a set or
// nvpair by id-ref (a reference to another one's values).
func (r *cibReader) checkSets(where string, sets []xSet) {
	for _, s := range sets {
		if len(s.Rules) > 0 {
			r.skip(fmt.Sprintf("%s set %s has a rule %s: vmha applies its values unconditionally", where, s.ID, s.Rules[0].ID))
		}
		if s.IDRef != "" {
			r.skip(fmt.Sprintf("%s set id-ref=%s: the referenced values are not read", where, s.IDRef))
		}
		for _, nv := range s.NV {
			if nv.IDRef != "" {
				r.skip(fmt.Sprintf("%s set %s nvpair id-ref=%s: the referenced value is not read", where, s.ID, nv.IDRef))
			}
		}
	}
}

// nvID names an option's nvpair in a warning.
func nvID(sets []xSet, name string) string {
	id := ""
	for _, s := range sets {
		for _, nv := range s.NV {
			if nv.Name == name {
				id = nv.ID
			}
		}
	}
	if id == "" {
		return name
	}
	return fmt.Sprintf("%s (nvpair %s)", name, id)
}

// checkOptions warns about cluster options that change where Pacemaker
// places resources and that the model does not have.
func (r *cibReader) checkOptions(c *xCIB, crm map[string]string) {
	sets := c.Config.CRM.Sets
	r.checkSets("crm_config", sets)
	opt := func(name string) string { return "crm_config " + nvID(sets, name) }
	if v, ok := crm["node-health-strategy"]; ok && !strings.EqualFold(v, "none") {
		r.skip(fmt.Sprintf("%s=%s: vmha does not apply node health; the #health-* attributes stay ordinary host attributes and VMs may be placed on red or yellow hosts", opt("node-health-strategy"), v))
	}
	if v, ok := crm["shutdown-lock"]; ok && isTrue(v) {
		r.skip(fmt.Sprintf("%s=%s: vmha does not lock a resource to the host that shut down cleanly; it restarts the resource elsewhere", opt("shutdown-lock"), v))
	}
	if v, ok := crm["stop-all-resources"]; ok && isTrue(v) {
		r.skip(fmt.Sprintf("%s=%s: not translated; vmha places every VM its target role allows", opt("stop-all-resources"), v))
	}
	if v, ok := crm["maintenance-mode"]; ok && isTrue(v) {
		r.skip(fmt.Sprintf("%s=%s: not translated; vmha plans as if the cluster were managed", opt("maintenance-mode"), v))
	}
	if v, ok := crm["start-failure-is-fatal"]; ok && isFalse(v) {
		r.skip(fmt.Sprintf("%s=%s: not translated; a failed start counts as one failure towards migration-threshold", opt("start-failure-is-fatal"), v))
	}
	if c.HaveQuorum != "" && isFalse(c.HaveQuorum) {
		p := crm["no-quorum-policy"]
		if p == "" {
			p = "stop"
		}
		if !strings.EqualFold(p, "ignore") {
			r.skip(fmt.Sprintf("cib have-quorum=%s with %s=%s: vmha plans as if this partition had quorum (a vmha host without quorum places nothing)", c.HaveQuorum, opt("no-quorum-policy"), p))
		}
	}
}

// checkPrimitive warns about what a primitive's definition says that a
// VM of the model cannot.
func (r *cibReader) checkPrimitive(p xPrimitive, meta map[string]string) {
	where := "primitive " + p.ID
	r.checkSets(where+" meta_attributes", p.Meta)
	r.checkSets(where+" utilization", p.Util)
	if p.Template != "" {
		r.skip(fmt.Sprintf("%s uses template %s: the template's meta attributes and operations are not read", where, p.Template))
	}
	if p.Class == "ocf" && p.Provider == "pacemaker" && p.Type == "remote" {
		r.skip(fmt.Sprintf("%s is a Pacemaker Remote connection (ocf:pacemaker:remote): vmha places it as a VM; its remote node and the resources on it are not translated", where))
	}
	if g := meta["remote-node"]; g != "" {
		r.skip(fmt.Sprintf("%s defines guest node %s (meta remote-node): vmha places it as a VM; the guest node and the resources on it are not translated", where, g))
	}
	if ct := meta["container"]; ct != "" {
		r.skip(fmt.Sprintf("%s runs inside %s (meta container): vmha places them as separate VMs, not together", where, ct))
	}
	for _, op := range p.Ops {
		if op.OnFail != "" && !strings.EqualFold(op.OnFail, "restart") {
			r.skip(fmt.Sprintf("%s op %s on-fail=%s: vmha treats every failure as on-fail=restart (restart in place, move after migration-threshold failures)", where, op.ID, op.OnFail))
		}
		if strings.EqualFold(op.Role, "Stopped") {
			r.skip(fmt.Sprintf("%s op %s monitors role Stopped: vmha does not look for the resource where it should not run", where, op.ID))
		}
	}
}

// readHashRule translates expressions on Pacemaker's special node
// attributes: #id becomes #uname of the node with that id; #uname is the
// model's own; the others are named in a warning and left as ordinary
// attributes no host has.
func (r *cibReader) readHashRule(where string, rule *xRule) {
	for i := range rule.Exprs {
		e := &rule.Exprs[i]
		if e.ValueSource != "" && e.ValueSource != "literal" {
			r.skip(fmt.Sprintf("%s expression %s value-source=%s: the value is compared as the literal %q", where, e.ID, e.ValueSource, e.Value))
		}
		switch {
		case e.Attribute == "#id":
			r.translateID(where, e)
		case strings.HasPrefix(e.Attribute, "#") && e.Attribute != "#uname":
			r.skip(fmt.Sprintf("%s expression %s on %s: vmha has no such node attribute; it is not defined on any host", where, e.ID, e.Attribute))
		}
	}
	for i := range rule.Rules {
		r.readHashRule(where, &rule.Rules[i])
	}
}

// translateID turns an expression on #id (the node's id) into one on
// #uname.
func (r *cibReader) translateID(where string, e *xExpr) {
	switch e.Operation {
	case "defined", "not_defined":
		e.Attribute = "#uname" // every node has an id
		return
	case "eq", "ne":
		if e.Type == "" || strings.EqualFold(e.Type, "string") {
			if name, ok := r.nodeByID[e.Value]; ok {
				e.Attribute, e.Value = "#uname", name
			}
			// No node has that id: #id stays an attribute no host
			// defines, so eq never holds and ne always does, as in
			// Pacemaker.
			return
		}
	}
	r.skip(fmt.Sprintf("%s expression %s compares #id with %s: not translated; no host matches", where, e.ID, e.Operation))
}

// opFailed reports whether a recorded operation did not end as Pacemaker
// expected: still pending, or an op-status or rc other than the one its
// transition key expected (a probe may find the resource stopped, 7).
func opFailed(op xOp) bool {
	if op.OpStatus != "" && op.OpStatus != "0" {
		return true
	}
	want := ""
	if f := strings.Split(op.TransKey, ":"); len(f) >= 4 {
		want = f[2]
	}
	probe := op.Operation == "monitor" && (op.Interval == "0" || op.Interval == "")
	switch {
	case op.RC == "" || op.RC == want:
		return false
	case probe && (op.RC == "7" || op.RC == "0" || op.RC == "8"):
		return false
	case want == "" && (op.RC == "0" || op.RC == "8"):
		return false
	}
	return true
}

// checkHistory warns about a resource's operation history on a node that
// vmha reads only as "runs here or not": failed operations, whose meaning
// in Pacemaker depends on on-fail, per-operation fail counts, expiry and
// the failed operation's kind.
func (r *cibReader) checkHistory(node, rsc string, ops []xOp) {
	for _, op := range ops {
		if opFailed(op) {
			r.skip(fmt.Sprintf("node %s resource %s lrm_rsc_op %s (%s, rc %s, op-status %s) did not succeed: vmha reads the history only as whether %s runs there; Pacemaker's recovery (on-fail, per-operation fail counts, expired failures, agents not installed) is not reproduced",
				node, rsc, op.ID, op.Operation, op.RC, op.OpStatus, rsc))
			return
		}
	}
}
