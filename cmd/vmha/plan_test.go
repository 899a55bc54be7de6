package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runPlanCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const planCluster = `
policy: {default-stickiness: 100, placement-strategy: balanced, migration-limit: 1}
hosts:
  - {name: h1, capacity: {memory: 4096, cpu: 4}, attributes: {pingd: "100"}}
  - {name: h2, capacity: {memory: 8192, cpu: 8}, attributes: {pingd: "100"}}
  - {name: h3, capacity: {memory: 4096, cpu: 4}, attributes: {pingd: "100"}}
vms:
  - {name: a, utilization: {memory: 1024, cpu: 1}, allow-migrate: true}
  - {name: b, utilization: {memory: 1024, cpu: 1}}
  - {name: c, utilization: {memory: 1024, cpu: 1}, target-state: stopped}
constraints:
  locations:
    - {vm: a, host: h1, score: 200}
    - vm: b
      rule: {score: -INFINITY, expressions: [{attribute: pingd, operation: lte, value: "0"}]}
`

const planStatus = `
now: 2026-01-01T00:00:00Z
vms:
  a: {host: h1}
  b: {host: h3}
  c: {host: h3}
`

type planJSONOut struct {
	Placement map[string]*string                    `json:"placement"`
	Actions   []map[string]any                      `json:"actions"`
	Scores    map[string]map[string]json.RawMessage `json:"scores"`
}

func TestPlanJSON(t *testing.T) {
	cfg := writeFile(t, "cluster.yaml", planCluster)
	st := writeFile(t, "status.yaml", planStatus)
	code, out, errs := runPlanCLI(t, "plan", "--config", cfg, "--status", st, "--fail-host", "h1", "--attr", "h3:pingd=0", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var got planJSONOut
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	// a: h1 fenced -> recovered on h2 (the most free capacity);
	// b: h3 lost its ping -> moves (no allow-migrate) to h2;
	// c: target stopped -> stopped, shown as null.
	if p := got.Placement["a"]; p == nil || *p != "h2" {
		t.Errorf("a placed %v\n%s", p, out)
	}
	if p := got.Placement["b"]; p == nil || *p != "h2" {
		t.Errorf("b placed %v\n%s", p, out)
	}
	if p, ok := got.Placement["c"]; !ok || p != nil {
		t.Errorf("c placed %v, want null", p)
	}
	want := map[string]string{"a": "recover", "b": "move", "c": "stop"}
	for _, a := range got.Actions {
		vm := a["vm"].(string)
		if a["action"] != want[vm] {
			t.Errorf("%s: action %v, want %s", vm, a["action"], want[vm])
		}
		delete(want, vm)
		if _, ok := a["from"]; !ok {
			t.Errorf("action %v has no from key", a)
		}
	}
	if len(want) != 0 {
		t.Errorf("missing actions for %v", want)
	}
	if s := string(got.Scores["b"]["h3"]); s != "-1000000" {
		t.Errorf("score of b on h3 %s, want -1000000 (-INFINITY, a number)", s)
	}
	if s := string(got.Scores["a"]["h2"]); s != "0" {
		t.Errorf("score of a on h2 %s, want 0", s)
	}
}

func TestPlanTextExplain(t *testing.T) {
	cfg := writeFile(t, "cluster.yaml", planCluster)
	code, out, errs := runPlanCLI(t, "plan", "--config", cfg, "--standby", "h2", "--explain", "a")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"a -> h1", "200 location 200", "host is in standby", "start  b  - -> h3"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestPlanErrors(t *testing.T) {
	cfg := writeFile(t, "cluster.yaml", planCluster)
	bad := writeFile(t, "bad.yaml", "hosts: [{name: h1}]\nvms: [{name: a}]\nconstraints: {locations: [{vm: a, host: nosuch, score: 1}]}")
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"plan"}, 2, "--config (or --pacemaker-cib) is required"},
		{[]string{"plan", "--config", cfg, "--fail-host", "h9"}, 2, "--fail-host h9: no such host"},
		{[]string{"plan", "--config", cfg, "--attr", "h1-pingd"}, 2, "want HOST:KEY=VALUE"},
		{[]string{"plan", "--config", cfg, "--explain", "zz"}, 2, "no such VM"},
		{[]string{"plan", "--config", cfg, "--now", "yesterday"}, 2, "RFC 3339"},
		{[]string{"plan", "--config", bad}, 1, `unknown host "nosuch"`},
		{[]string{"plan", "--config", "/nonexistent/cluster.yaml"}, 1, "no such file"},
	}
	for _, tt := range tests {
		code, _, errs := runPlanCLI(t, tt.args...)
		if code != tt.code || !strings.Contains(errs, tt.want) {
			t.Errorf("%v: exit %d %q, want %d containing %q", tt.args, code, errs, tt.code, tt.want)
		}
	}
}

const planCIB = `<cib crm_feature_set="3.16.1" validate-with="pacemaker-3.9" epoch="1" num_updates="0" admin_epoch="0">
<configuration>
 <crm_config><cluster_property_set id="o"><nvpair id="o1" name="placement-strategy" value="utilization"/></cluster_property_set></crm_config>
 <nodes>
  <node id="1" uname="n1"><utilization id="u1"><nvpair id="u11" name="cpu" value="1"/></utilization></node>
  <node id="2" uname="n2"><utilization id="u2"><nvpair id="u21" name="cpu" value="1"/></utilization></node>
 </nodes>
 <resources>
  <primitive id="A" class="ocf" provider="heartbeat" type="VirtualDomain"><utilization id="ua"><nvpair id="ua1" name="cpu" value="1"/></utilization></primitive>
  <primitive id="B" class="ocf" provider="heartbeat" type="VirtualDomain"><meta_attributes id="mb"><nvpair id="mb1" name="resource-stickiness" value="100"/></meta_attributes><utilization id="ub"><nvpair id="ub1" name="cpu" value="1"/></utilization></primitive>
  <group id="g"><primitive id="X" class="ocf" provider="heartbeat" type="Dummy"/></group>
 </resources>
 <constraints><rsc_location id="l1" rsc="A" node="n1" score="50"/></constraints>
</configuration>
<status>
 <node_state id="1" uname="n1" in_ccm="true" crmd="online" join="member" expected="member"><lrm id="1"><lrm_resources><lrm_resource id="B" class="ocf" provider="heartbeat" type="VirtualDomain"><lrm_rsc_op id="b1" operation="start" call-id="1" rc-code="0"/></lrm_resource></lrm_resources></lrm></node_state>
 <node_state id="2" uname="n2" in_ccm="true" crmd="online" join="member" expected="member"/>
</status></cib>`

func TestPlanPacemakerCIB(t *testing.T) {
	cib := writeFile(t, "cib.xml", planCIB)
	code, out, errs := runPlanCLI(t, "plan", "--pacemaker-cib", cib, "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	// crm_simulate 2.1.5 on this CIB: B (running, stickiness 100) is
	// placed first and stays on n1; A goes to n2.
	var got planJSONOut
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if p := got.Placement["A"]; p == nil || *p != "n2" {
		t.Errorf("A on %v, want n2", p)
	}
	if p := got.Placement["B"]; p == nil || *p != "n1" {
		t.Errorf("B on %v, want n1", p)
	}
	if !strings.Contains(errs, "group g not translated") {
		t.Errorf("stderr lacks the group warning: %q", errs)
	}
	if code, _, errs := runPlanCLI(t, "plan", "--pacemaker-cib", cib, "--config", cib); code != 2 || !strings.Contains(errs, "one or the other") {
		t.Errorf("both inputs: exit %d %q", code, errs)
	}
}

func TestImportPacemaker(t *testing.T) {
	cib := writeFile(t, "cib.xml", planCIB)
	status := filepath.Join(t.TempDir(), "status.yaml")
	code, out, errs := runPlanCLI(t, "import", "pacemaker", cib, "--status-out", status)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	cfg := writeFile(t, "cluster.yaml", out)
	// The imported files plan as the CIB does.
	code, out, errs = runPlanCLI(t, "plan", "--config", cfg, "--status", status, "-o", "json")
	if code != 0 {
		t.Fatalf("plan of the imported config: exit %d: %s\n%s", code, errs, out)
	}
	var got planJSONOut
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if p := got.Placement["A"]; p == nil || *p != "n2" {
		t.Errorf("A on %v, want n2", p)
	}
	if p := got.Placement["B"]; p == nil || *p != "n1" {
		t.Errorf("B on %v, want n1", p)
	}
	if code, _, _ := runPlanCLI(t, "import", "pacemaker", "/nonexistent.xml"); code != 1 {
		t.Errorf("missing file: exit %d, want 1", code)
	}
}

// TestImportPacemakerUnsafe: the seeds' KVM example (fencing off, two
// nodes with expected_votes 2 and no two_node) is imported with a warning
// for each unsafe setting, saying what vmha does instead.
func TestImportPacemakerUnsafe(t *testing.T) {
	cib := writeFile(t, "cib.xml", `<cib><configuration><crm_config><cluster_property_set id="o">
<nvpair id="o-st" name="stonith-enabled" value="false"/><nvpair id="o-q" name="no-quorum-policy" value="ignore"/>
</cluster_property_set></crm_config><nodes><node id="1" uname="kvm1"/><node id="2" uname="kvm2"/></nodes>
<resources><primitive id="vm1" class="ocf" provider="heartbeat" type="VirtualDomain"/></resources><constraints/></configuration></cib>`)
	coro := writeFile(t, "corosync.conf", "nodelist {\n node {\n  ring0_addr: kvm1\n }\n node {\n  ring0_addr: kvm2\n }\n}\nquorum {\n provider: corosync_votequorum\n expected_votes: 2\n}\n")
	code, _, errs := runPlanCLI(t, "import", "pacemaker", cib, "--corosync", coro)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{
		"unsafe: crm_config stonith-enabled (nvpair o-st)=false", "vmha always fences a lost host",
		"unsafe: crm_config no-quorum-policy (nvpair o-q)=ignore", "vmha never acts without quorum",
		"unsafe: corosync quorum expected_votes 2 without two_node: 1", "quorum.two_node: true",
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
	if code, _, errs := runPlanCLI(t, "import", "pacemaker", cib, "--corosync", writeFile(t, "bad.conf", "quorum {\n")); code != 1 || !strings.Contains(errs, "not closed") {
		t.Errorf("bad corosync.conf: exit %d %q", code, errs)
	}
}
