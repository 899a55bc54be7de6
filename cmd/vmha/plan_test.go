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
	if s := string(got.Scores["b"]["h3"]); s != `"-INFINITY"` {
		t.Errorf("score of b on h3 %s, want \"-INFINITY\"", s)
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
		{[]string{"plan"}, 2, "--config is required"},
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
