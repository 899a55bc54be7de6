package pacemaker

import (
	"bytes"
	"encoding/xml"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// slowCIB decodes with encoding/xml, as ReadCIB did before the fast reader.
func slowCIB(data []byte) (xCIB, error) {
	var c xCIB
	err := xml.NewDecoder(bytes.NewReader(data)).Decode(&c)
	return c, err
}

// agree checks that whatever the fast reader accepts, encoding/xml decodes
// to the same xCIB.
func agree(t interface {
	Helper()
	Fatalf(string, ...any)
}, data []byte, mustBeFast bool) {
	t.Helper()
	var fast xCIB
	ferr := fastCIB(data, &fast)
	if ferr != nil {
		if mustBeFast {
			t.Fatalf("the fast reader refused it: %v", ferr)
		}
		return
	}
	slow, err := slowCIB(data)
	if err != nil {
		t.Fatalf("the fast reader accepted a CIB encoding/xml refuses (%v):\n%s", err, data)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("fast\n%+v\nencoding/xml\n%+v", fast, slow)
	}
}

const oddCIB = `<?xml version="1.0" encoding="UTF-8"?>
<!-- a comment before the root -->
<cib crm_feature_set="3.16.1" epoch="1">
 <configuration>
  <crm_config><cluster_property_set id="c"><nvpair id="c1" name="placement-strategy" value="balanced"/></cluster_property_set></crm_config>
  <crm_config><cluster_property_set id="c2"><nvpair id="c3" name="symmetric-cluster" value='false'/></cluster_property_set></crm_config>
  <nodes>
   <node id="1" uname="a &amp; b" type="member"><instance_attributes id="i"><nvpair id="n" name="zone" value="&lt;x&gt; &quot;y&quot; &apos;z&apos;"/></instance_attributes>
    <utilization id="u"><nvpair id="u1" name="memory" value="4096"/></utilization></node>
   <node id="2" uname="b"/>
  </nodes>
  <nodes><node id="3" uname="c"/></nodes>
  <node id="9" uname="not-under-nodes"/>
  <resources>
   <primitive id="p" class="ocf" provider="heartbeat" type="VirtualDomain">
    <meta_attributes id="m"><nvpair id="m1" name="priority" value="3"/><nvpair id="m2" name="allow-migrate" value="true"/></meta_attributes>
    <utilization id="pu"><nvpair id="pu1" name="memory" value="1024"/></utilization>
    <operations><op id="o" name="monitor" interval="10s"/></operations>
   </primitive>
   <group id="g"><primitive id="gp" class="ocf" type="X"/></group>
   <clone id="cl"/><master id="ms"/><bundle id="bu"/>
  </resources>
  <constraints>
   <rsc_location id="l1" rsc="p" node="a &amp; b" score="100"/>
   <rsc_location id="l2" rsc="p"><rule id="r" score="-INFINITY" boolean-op="or">
     <expression id="e1" attribute="pingd" operation="lte" value="0" type="number"/>
     <expression id="e2" attribute="pingd" operation="not_defined"/>
     <rule id="r2" score-attribute="w"><expression id="e3" attribute="#uname" operation="eq" value="b"/></rule>
     <date_expression id="d" operation="in_range" start="2026-01-01"/>
   </rule></rsc_location>
   <rsc_location id="l3" rsc-pattern="^p" score="1"/>
   <rsc_location id="l4" score="1"><resource_set id="rs"/></rsc_location>
   <rsc_colocation id="co" rsc="p" with-rsc="gp" score="INFINITY" node-attribute="zone"/>
   <rsc_order id="or" first="p" then="gp"/><rsc_ticket id="t" rsc="p" ticket="x"/>
  </constraints>
  <rsc_defaults><meta_attributes id="rd"><nvpair id="rd1" name="resource-stickiness" value="100"/></meta_attributes></rsc_defaults>
 </configuration>
 <status>
  <node_state id="1" uname="a &amp; b" in_ccm="true" crmd="online" join="member" expected="member">
   <transient_attributes id="1"><instance_attributes id="st"><nvpair id="s1" name="pingd" value="100"/><nvpair id="s2" name="fail-count-p#start_0" value="1"/></instance_attributes></transient_attributes>
   <lrm id="1"><lrm_resources>
    <lrm_resource id="p" class="ocf" type="VirtualDomain"><lrm_rsc_op id="p_last_0" operation="start" call-id="3" rc-code="0" op-status="0"/><lrm_rsc_op id="p_mon" operation="monitor" call-id="4" rc-code="0" op-status="0"/></lrm_resource>
    <lrm_resource id="gp"/>
   </lrm_resources></lrm>
  </node_state>
  <node_state id="2" uname="b" in_ccm="false" crmd="offline" join="down"/>
 </status>
</cib>
trailing text encoding/xml never reads`

func TestFastCIBAgreesWithXML(t *testing.T) {
	agree(t, []byte(oddCIB), true)
	agree(t, []byte(checksCIB), true)
	// Pacemaker's own scheduler suite (testdata/cts-scheduler).
	files, _ := filepath.Glob(filepath.Join(ctsDir, "xml", "*.xml"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		agree(t, data, false)
	}
	rapid.Check(t, func(t *rapid.T) {
		in := genInput(t)
		in.Now = time.Unix(1_700_000_000, 0)
		agree(t, WriteCIB(&in), true)
	})
	// What the fast reader must leave to encoding/xml (or read as it does).
	for _, s := range []string{
		`<cib><configuration><nodes><node id="1" uname="a&#65;"/></nodes></configuration></cib>`,
		`<cib><configuration><nodes><node id="1" uname="a"/></nodes></configuration></cib`,
		`<cib><configuration><nodes><node id="1" uname="a"></nodes></configuration></cib>`,
		`<cib><configuration><![CDATA[x]]></configuration></cib>`,
		`<!DOCTYPE cib><cib/>`,
		`<?xml version="1.0" encoding="ISO-8859-1"?><cib/>`,
		`<cib xmlns="urn:x"><configuration/></cib>`,
		`<x:cib xmlns:x="urn:x"/>`,
		`<cib><!-- a -- b --></cib>`,
		`<cib><configuration><nodes><node id="1" id="2" uname="a"/></nodes></configuration></cib>`,
		`<cib><status><node_state uname="a" in_ccm="true">a &bogus; b</node_state></status></cib>`,
		"<cib><status><node_state uname=\"a\r\nb\"/></status></cib>",
		`<other/>`,
		``,
		`<cib>`,
		`<cib a=b/>`,
	} {
		agree(t, []byte(s), false)
	}
}

func FuzzFastCIB(f *testing.F) {
	f.Add([]byte(oddCIB))
	f.Add([]byte(`<cib><configuration><nodes><node id="1" uname="a"/></nodes></configuration></cib>`))
	f.Fuzz(func(t *testing.T, data []byte) { agree(t, data, false) })
}
