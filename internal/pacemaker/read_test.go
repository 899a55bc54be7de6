package pacemaker

import (
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/vmha/vmha/placement"
)

// TestReadCIBRoundTrip writes random clusters as CIBs, reads them back,
// and requires the same plan: the reader understands what the writer
// (checked against crm_simulate) produces.
func TestReadCIBRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		in := genInput(t)
		in.Now = time.Unix(1_700_000_000, 0)
		back, warn, err := ReadCIB(WriteCIB(&in), in.Now)
		if err != nil {
			t.Fatal(err)
		}
		if len(warn) > 0 {
			t.Fatalf("warnings for a CIB we wrote: %v", warn)
		}
		a, err := placement.Solve(in, placement.Options{Scores: true})
		if err != nil {
			t.Fatal(err)
		}
		b, err := placement.Solve(back, placement.Options{Scores: true})
		if err != nil {
			t.Fatal(err)
		}
		for vm, h := range a.Placement {
			if b.Placement[vm] != h {
				t.Fatalf("%s: %q before the round trip, %q after", vm, h, b.Placement[vm])
			}
		}
		for _, v := range in.VMs {
			var w placement.VMInfo
			for _, x := range back.VMs {
				if x.Name == v.Name {
					w = x
				}
			}
			if w.Current != v.Current || w.Priority != v.Priority || w.Target != v.Target || w.AllowMigrate != v.AllowMigrate {
				t.Fatalf("%s: %+v read back as %+v", v.Name, v, w)
			}
		}
	})
}

func TestReadCIBWarnsAndTranslates(t *testing.T) {
	cib := `<cib crm_feature_set="3.16.1" validate-with="pacemaker-3.9" epoch="1" num_updates="0" admin_epoch="0">
<configuration>
 <crm_config><cluster_property_set id="o"><nvpair id="o1" name="placement-strategy" value="balanced"/><nvpair id="o2" name="migration-limit" value="2"/></cluster_property_set></crm_config>
 <nodes>
  <node id="1" uname="xen1"><instance_attributes id="a1"><nvpair id="a11" name="zone" value="a"/></instance_attributes><utilization id="u1"><nvpair id="u11" name="memory" value="4096"/></utilization></node>
  <node id="2" uname="xen2"><instance_attributes id="a2"><nvpair id="a21" name="standby" value="on"/></instance_attributes></node>
 </nodes>
 <resources>
  <primitive id="web" class="ocf" provider="heartbeat" type="VirtualDomain">
   <meta_attributes id="m1"><nvpair id="m11" name="allow-migrate" value="true"/><nvpair id="m12" name="migration-threshold" value="3"/><nvpair id="m13" name="failure-timeout" value="10m"/><nvpair id="m14" name="priority" value="5"/></meta_attributes>
   <utilization id="wu"><nvpair id="wu1" name="memory" value="1024"/></utilization>
  </primitive>
  <primitive id="fence1" class="stonith" type="fence_ipmilan"/>
  <group id="g1"><primitive id="inner" class="ocf" provider="heartbeat" type="Dummy"/></group>
  <clone id="c1"><primitive id="cl" class="ocf" provider="heartbeat" type="Dummy"/></clone>
 </resources>
 <constraints>
  <rsc_location id="l1" rsc="web" node="xen1" score="100"/>
  <rsc_location id="l2" rsc="web"><rule id="r1" score="-INFINITY" boolean-op="or"><expression id="e1" attribute="pingd" operation="lte" value="0"/><expression id="e2" attribute="pingd" operation="not_defined"/></rule></rsc_location>
  <rsc_order id="o1" first="a" then="b"/>
 </constraints>
 <rsc_defaults><meta_attributes id="rd"><nvpair id="rd1" name="resource-stickiness" value="INFINITY"/></meta_attributes></rsc_defaults>
</configuration>
<status>
 <node_state id="1" uname="xen1" in_ccm="true" crmd="online" join="member" expected="member">
  <transient_attributes id="1"><instance_attributes id="s1"><nvpair id="s11" name="pingd" value="100"/><nvpair id="s12" name="fail-count-web#monitor_10000" value="2"/><nvpair id="s13" name="last-failure-web#monitor_10000" value="1700000000"/></instance_attributes></transient_attributes>
  <lrm id="1"><lrm_resources><lrm_resource id="web" class="ocf" provider="heartbeat" type="VirtualDomain">
   <lrm_rsc_op id="w1" operation="start" call-id="3" rc-code="0"/><lrm_rsc_op id="w2" operation="monitor" call-id="4" rc-code="0"/>
  </lrm_resource></lrm_resources></lrm>
 </node_state>
 <node_state id="2" uname="xen2" in_ccm="false" crmd="offline" join="down" expected="down"/>
</status></cib>`
	in, warn, err := ReadCIB([]byte(cib), time.Unix(1_700_000_100, 0))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"group g1", "clone c1", "rsc_order o1"} {
		if !strings.Contains(strings.Join(warn, "\n"), w) {
			t.Errorf("warnings %v lack %q", warn, w)
		}
	}
	if len(in.VMs) != 1 || in.VMs[0].Name != "web" {
		t.Fatalf("VMs %+v, want only web (stonith, groups and clones are not VMs)", in.VMs)
	}
	w := in.VMs[0]
	if w.Current != "xen1" || !w.AllowMigrate || w.MigrationThreshold != 3 || w.FailureTimeout != 10*time.Minute || w.Priority != 5 || w.Utilization["memory"] != 1024 {
		t.Errorf("web %+v", w)
	}
	if len(w.Failures) != 1 || w.Failures[0].Count != 2 || w.Failures[0].Host != "xen1" {
		t.Errorf("failures %+v", w.Failures)
	}
	if in.Policy.Strategy != placement.StrategyBalanced || in.Policy.MigrationLimit != 2 || in.Policy.DefaultStickiness != placement.Infinity {
		t.Errorf("policy %+v", in.Policy)
	}
	if in.Hosts[0].Attributes["pingd"] != "100" || in.Hosts[0].Attributes["zone"] != "a" || in.Hosts[0].Capacity["memory"] != 4096 {
		t.Errorf("xen1 %+v", in.Hosts[0])
	}
	if !in.Hosts[1].Standby || in.Hosts[1].Condition != placement.Released {
		t.Errorf("xen2 %+v", in.Hosts[1])
	}
	if len(in.Locations) != 1 || len(in.LocationRules) != 1 || in.LocationRules[0].Rule.BoolOp != "or" {
		t.Errorf("constraints %+v %+v", in.Locations, in.LocationRules)
	}
}

func TestReadCIBErrors(t *testing.T) {
	for _, tt := range []struct{ cib, want string }{
		{"not xml", "does not parse"},
		{`<cib><configuration><nodes><node id="1" uname="a"><utilization id="u"><nvpair id="n" name="memory" value="lots"/></utilization></node></nodes></configuration></cib>`, `node a utilization memory="lots"`},
		{`<cib><configuration><nodes><node id="1" uname="a"/></nodes><resources><primitive id="p" class="ocf" type="X"/></resources><constraints><rsc_location id="l" rsc="p"><rule id="r" score="1"><expression id="e" attribute="x" operation="like" value="1"/></rule></rsc_location></constraints></configuration></cib>`, `unknown operation "like"`},
	} {
		_, _, err := ReadCIB([]byte(tt.cib), time.Now())
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("error %v, want containing %q", err, tt.want)
		}
	}
}

func FuzzReadCIB(f *testing.F) {
	f.Add([]byte(`<cib><configuration><nodes><node id="1" uname="a"/></nodes><resources><primitive id="p" class="ocf" type="X"/></resources></configuration></cib>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		in, _, err := ReadCIB(data, time.Unix(0, 0))
		if err != nil {
			return
		}
		if len(in.Hosts) > 50 || len(in.VMs) > 200 {
			return
		}
		if _, err := placement.Solve(in, placement.Options{Scores: true}); err != nil {
			t.Fatalf("a CIB that validated is refused by Solve: %v", err)
		}
	})
}
