// Package pacemaker connects vmha's placement model with Pacemaker: it
// writes a placement.Input as a CIB that Pacemaker's own scheduler
// (crm_simulate) can run, and reads crm_simulate's answer back, so tests
// can use Pacemaker as an oracle.
package pacemaker

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"sort"
	"strconv"

	"github.com/vmha/vmha/placement"
)

// FeatureSet is the CIB feature set we write: the highest Debian 12's
// Pacemaker 2.1.5 understands.
const FeatureSet = "3.16.1"

type writer struct {
	b   bytes.Buffer
	ids map[string]int
}

func (w *writer) id(prefix string) string {
	w.ids[prefix]++
	return fmt.Sprintf("%s-%d", prefix, w.ids[prefix])
}

func esc(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	// EscapeText leaves quotes alone in text; attributes need them escaped.
	return string(bytes.ReplaceAll(b.Bytes(), []byte(`"`), []byte("&#34;")))
}

func (w *writer) printf(format string, a ...any) { fmt.Fprintf(&w.b, format, a...) }

func (w *writer) nvpairs(tag, idp string, m map[string]string) {
	if len(m) == 0 {
		return
	}
	w.printf(`<%s id="%s">`, tag, w.id(idp))
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		w.printf(`<nvpair id="%s" name="%s" value="%s"/>`, w.id(idp+"-nv"), esc(k), esc(m[k]))
	}
	w.printf(`</%s>`, tag)
}

func ints(m map[string]int64) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = strconv.FormatInt(v, 10)
	}
	return out
}

// WriteCIB renders in as a CIB (configuration and status) for
// crm_simulate. Fencing is disabled, so only usable hosts are online:
// hosts in any other condition are written as cleanly down. Fail counts
// are written as start failures.
func WriteCIB(in *placement.Input) []byte {
	w := &writer{ids: map[string]int{}}
	w.printf(`<cib crm_feature_set="%s" validate-with="pacemaker-3.9" epoch="1" num_updates="0" admin_epoch="0" have-quorum="1" dc-uuid="1">`, FeatureSet)
	w.printf(`<configuration><crm_config>`)
	opts := map[string]string{"stonith-enabled": "false", "no-quorum-policy": "ignore"}
	if s := in.Policy.Strategy; s != "" {
		opts["placement-strategy"] = string(s)
	}
	if in.Policy.OptIn {
		opts["symmetric-cluster"] = "false"
	}
	if in.Policy.MigrationLimit > 0 {
		opts["migration-limit"] = strconv.Itoa(in.Policy.MigrationLimit)
	}
	w.nvpairs("cluster_property_set", "opts", opts)
	w.printf(`</crm_config><nodes>`)
	for i, h := range in.Hosts {
		w.node(i+1, h)
	}
	w.printf(`</nodes><resources>`)
	for _, v := range in.VMs {
		w.printf(`<primitive id="%s" class="ocf" provider="heartbeat" type="VirtualDomain">`, esc(v.Name))
		w.nvpairs("meta_attributes", "ma", primitiveMeta(v))
		w.nvpairs("utilization", "ru", ints(v.Utilization))
		w.printf(`</primitive>`)
	}
	w.printf(`</resources><constraints>`)
	w.constraints(in)
	w.printf(`</constraints>`)
	if in.Policy.DefaultStickiness != 0 {
		w.printf(`<rsc_defaults>`)
		w.nvpairs("meta_attributes", "rd", map[string]string{"resource-stickiness": in.Policy.DefaultStickiness.String()})
		w.printf(`</rsc_defaults>`)
	}
	w.printf(`</configuration><status>`)
	nodeID := map[string]int{}
	for i, h := range in.Hosts {
		nodeID[h.Name] = i + 1
	}
	for _, h := range in.Hosts {
		w.nodeState(in, h, nodeID[h.Name])
	}
	w.printf(`</status></cib>`)
	return w.b.Bytes()
}

// node writes host h as cluster node id: its attributes (standby and
// maintenance among them) and capacity.
func (w *writer) node(id int, h placement.HostInfo) {
	w.printf(`<node id="%d" uname="%s">`, id, esc(h.Name))
	attrs := map[string]string{}
	for k, v := range h.Attributes {
		attrs[k] = v
	}
	if h.Standby {
		attrs["standby"] = "on"
	}
	if h.Maintenance {
		attrs["maintenance"] = "true"
	}
	w.nvpairs("instance_attributes", "na", attrs)
	w.nvpairs("utilization", "nu", ints(h.Capacity))
	w.printf(`</node>`)
}

// primitiveMeta is the meta attributes of VM v's primitive.
func primitiveMeta(v placement.VMInfo) map[string]string {
	meta := map[string]string{}
	if v.Priority != 0 {
		meta["priority"] = strconv.Itoa(v.Priority)
	}
	if v.Target == placement.Stopped {
		meta["target-role"] = "Stopped"
	}
	if v.AllowMigrate {
		meta["allow-migrate"] = "true"
	}
	if v.Stickiness != nil {
		meta["resource-stickiness"] = v.Stickiness.String()
	}
	if v.MigrationThreshold > 0 {
		meta["migration-threshold"] = strconv.Itoa(v.MigrationThreshold)
	} else {
		meta["migration-threshold"] = "0"
	}
	if v.FailureTimeout > 0 {
		meta["failure-timeout"] = strconv.Itoa(int(v.FailureTimeout.Seconds())) + "s"
	}
	if v.Unmanaged {
		meta["is-managed"] = "false"
	}
	return meta
}

// constraints writes the locations, location rules and colocations.
func (w *writer) constraints(in *placement.Input) {
	for _, l := range in.Locations {
		w.printf(`<rsc_location id="%s" rsc="%s" node="%s" score="%s"/>`, w.id("loc"), esc(l.VM), esc(l.Host), l.Score)
	}
	for _, r := range in.LocationRules {
		w.printf(`<rsc_location id="%s" rsc="%s">`, w.id("locr"), esc(r.VM))
		w.rule(r.Rule, true)
		w.printf(`</rsc_location>`)
	}
	for _, c := range in.Colocations {
		w.printf(`<rsc_colocation id="%s" rsc="%s" with-rsc="%s" score="%s"/>`, w.id("col"), esc(c.VM), esc(c.With), c.Score)
	}
}

// nodeState writes the status of host h (node id): up when usable, what
// runs there, and the fail counts of VMs on it.
func (w *writer) nodeState(in *placement.Input, h placement.HostInfo, id int) {
	if h.Condition != placement.Usable {
		w.printf(`<node_state id="%d" uname="%s" in_ccm="false" crmd="offline" join="down" expected="down">`, id, esc(h.Name))
	} else {
		w.printf(`<node_state id="%d" uname="%s" in_ccm="true" crmd="online" join="member" expected="member">`, id, esc(h.Name))
	}
	fails := map[string]string{}
	w.printf(`<lrm id="%d"><lrm_resources>`, id)
	for _, v := range in.VMs {
		for _, f := range v.Failures {
			if f.Host == h.Name && f.Count > 0 {
				fails["fail-count-"+v.Name+"#start_0"] = strconv.Itoa(f.Count)
				fails["last-failure-"+v.Name+"#start_0"] = strconv.FormatInt(f.Last.Unix(), 10)
			}
		}
		if v.Current != h.Name || h.Condition != placement.Usable {
			continue
		}
		w.printf(`<lrm_resource id="%s" class="ocf" provider="heartbeat" type="VirtualDomain">`, esc(v.Name))
		w.printf(`<lrm_rsc_op id="%s_last_0" operation_key="%s_start_0" operation="start" crm-debug-origin="vmha" crm_feature_set="%s" transition-key="1:0:0:00000000-0000-0000-0000-000000000000" transition-magic="0:0;1:0:0:00000000-0000-0000-0000-000000000000" exit-reason="" on_node="%s" call-id="1" rc-code="0" op-status="0" interval="0" last-rc-change="1" exec-time="0" queue-time="0" op-digest="00000000000000000000000000000000"/>`,
			esc(v.Name), esc(v.Name), FeatureSet, esc(h.Name))
		w.printf(`</lrm_resource>`)
	}
	w.printf(`</lrm_resources></lrm>`)
	if len(fails) > 0 {
		w.printf(`<transient_attributes id="%d">`, id)
		w.nvpairs("instance_attributes", "st", fails)
		w.printf(`</transient_attributes>`)
	}
	w.printf(`</node_state>`)
}

func (w *writer) rule(r placement.Rule, top bool) {
	w.printf(`<rule id="%s"`, w.id("rule"))
	switch {
	case r.ScoreAttribute != "":
		w.printf(` score-attribute="%s"`, esc(r.ScoreAttribute))
	case top:
		w.printf(` score="%s"`, r.Score)
	default:
		w.printf(` score="0"`)
	}
	if r.BoolOp != "" {
		w.printf(` boolean-op="%s"`, esc(r.BoolOp))
	}
	w.printf(`>`)
	for _, e := range r.Expressions {
		w.printf(`<expression id="%s" attribute="%s" operation="%s"`, w.id("expr"), esc(e.Attribute), esc(e.Operation))
		if e.Operation != "defined" && e.Operation != "not_defined" {
			w.printf(` value="%s"`, esc(e.Value))
		}
		if e.Type != "" {
			w.printf(` type="%s"`, esc(e.Type))
		}
		w.printf(`/>`)
	}
	for _, sub := range r.Rules {
		w.rule(sub, false)
	}
	w.printf(`</rule>`)
}
