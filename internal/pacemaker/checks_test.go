package pacemaker

import (
	"strings"
	"testing"
	"time"

	"github.com/vmha/vmha/placement"
)

// checksCIB holds one of each construct ReadCIB translates with
// Pacemaker's meaning or names in a warning.
const checksCIB = `<cib have-quorum="0"><configuration>
<crm_config><cluster_property_set id="o">
 <nvpair id="o-h" name="node-health-strategy" value="migrate-on-red"/>
 <nvpair id="o-l" name="shutdown-lock" value="true"/>
 <nvpair id="o-q" name="no-quorum-policy" value="freeze"/>
</cluster_property_set></crm_config>
<nodes><node id="id-a" uname="a"/><node id="id-b" uname="b"/></nodes>
<resources>
 <primitive id="p" class="ocf" provider="heartbeat" type="VirtualDomain">
  <meta_attributes id="pm"><nvpair id="pm1" name="priority" value="1.0"/></meta_attributes>
  <operations><op id="p-mon" name="monitor" interval="10s" on-fail="block"/></operations>
 </primitive>
 <primitive id="q" class="ocf" provider="heartbeat" type="VirtualDomain">
  <meta_attributes id="qm"><nvpair id="qm1" name="priority" value="high"/></meta_attributes>
 </primitive>
 <primitive id="r" class="ocf" provider="pacemaker" type="remote"/>
</resources>
<constraints>
 <rsc_location id="l-id" rsc="p"><rule id="ri" score="50"><expression id="ei" attribute="#id" operation="eq" value="id-b"/></rule></rsc_location>
 <rsc_location id="l-vs" rsc="q"><rule id="rv" score="5"><expression id="ev" attribute="x" operation="eq" value="y" value-source="param"/></rule></rsc_location>
 <rsc_location id="l-kind" rsc="q"><rule id="rk" score="5"><expression id="ek" attribute="#kind" operation="eq" value="cluster"/></rule></rsc_location>
 <rsc_location id="l-tag" rsc="vms" node="a" score="10"/>
 <rsc_location id="l-far" rsc="p" node="remote1" score="10"/>
</constraints>
<rsc_defaults><meta_attributes id="rd"><nvpair id="rd1" name="migration-threshold" value="3"/></meta_attributes></rsc_defaults>
<tags><tag id="vms"><obj_ref id="p"/></tag></tags>
</configuration>
<status>
 <node_state id="id-a" uname="a" in_ccm="true" crmd="online"><lrm><lrm_resources>
  <lrm_resource id="q"><lrm_rsc_op id="q_last_failure_0" operation="start" interval="0" transition-key="1:2:0:x" call-id="4" rc-code="5" op-status="0"/></lrm_resource>
 </lrm_resources></lrm></node_state>
 <node_state id="id-b" uname="b" in_ccm="true" crmd="online"/>
</status></cib>`

func TestReadCIBTranslatesOrWarns(t *testing.T) {
	in, warn, err := ReadCIB([]byte(checksCIB), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(warn, "\n")
	for _, want := range []string{
		"node-health-strategy (nvpair o-h)=migrate-on-red: vmha does not apply node health",
		"shutdown-lock (nvpair o-l)=true",
		"have-quorum=0 with crm_config no-quorum-policy (nvpair o-q)=freeze",
		`primitive p priority "1.0" is not an integer: read as 1`,
		`primitive q priority "high" is not an integer: read as 0`,
		"primitive p op p-mon on-fail=block",
		"primitive r is a Pacemaker Remote connection",
		"expression ev value-source=param",
		"expression ek on #kind",
		"rsc_location l-tag names tag vms",
		"rsc_location l-far names node remote1, which is not a translated cluster node",
		"lrm_rsc_op q_last_failure_0 (start, rc 5, op-status 0) did not succeed",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("no warning with %q in\n%s", want, all)
		}
	}
	vm := map[string]placement.VMInfo{}
	for _, v := range in.VMs {
		vm[v.Name] = v
	}
	if vm["p"].Priority != 1 || vm["q"].Priority != 0 || vm["p"].MigrationThreshold != 3 {
		t.Errorf("p %+v q %+v", vm["p"], vm["q"])
	}
	// #id eq id-b is #uname eq b.
	var idRule *placement.Rule
	for i := range in.LocationRules {
		if in.LocationRules[i].VM == "p" {
			idRule = &in.LocationRules[i].Rule
		}
	}
	if idRule == nil || idRule.Expressions[0].Attribute != "#uname" || idRule.Expressions[0].Value != "b" {
		t.Errorf("#id rule %+v", idRule)
	}
	for _, l := range in.Locations {
		if l.Host == "remote1" {
			t.Errorf("location on a node that is not a host kept: %+v", l)
		}
	}
}

func TestParsePriority(t *testing.T) {
	for _, c := range []struct {
		in    string
		n     int
		exact bool
	}{{"5", 5, true}, {"1.0", 1, false}, {"-3x", -3, false}, {"abc", 0, false}, {"INFINITY", 1000000, true},
		{"-INFINITY", -1000000, true}, {"99999999", 1000000, true}, {"99999999999999999999", 1000000, false}} {
		n, exact := parsePriority(c.in)
		if n != c.n || exact != c.exact {
			t.Errorf("%q: %d %v, want %d %v", c.in, n, exact, c.n, c.exact)
		}
	}
}
