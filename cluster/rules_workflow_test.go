package cluster

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/cluster/decide"
	"github.com/vmha/vmha/model"
)

// rulesCall runs a rules handler as operator alice (a certificate).
func rulesCall(t *testing.T, h handlerFunc, method, version string, body any) (int, string) {
	t.Helper()
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	req := httptest.NewRequest(method, api.PathRules, nil)
	if version != "" {
		req.SetPathValue("version", version)
	}
	req = req.WithContext(contextWithPrincipal(req, Principal{Name: "alice", Role: RoleOperator, How: "certificate"}))
	rec := httptest.NewRecorder()
	h(rec, req, b)
	return rec.Code, rec.Body.String()
}

const aliceActor = "alice (operator certificate)"

func intp(i int) *int { return &i }

// TestRulesHandlerDryRunChangesNothing: a dry run answers the plan and
// leaves the state (rules, history, events) as it was.
func TestRulesHandlerDryRunChangesNothing(t *testing.T) {
	n := handlerNode(t)
	before := n.fsm.Copy()
	code, body := rulesCall(t, n.handleSetRules, "POST", "", api.Rules{YAML: "constraints: {locations: [{vm: vm1, host: h2, score: 100}]}\n", DryRun: true})
	var plan api.RulesPlan
	if code != 200 || json.Unmarshal([]byte(body), &plan) != nil || !plan.Changed || plan.Version != 0 || plan.Summary == "" {
		t.Fatalf("dry run: %d %s", code, body)
	}
	if !equalJSON(before, n.fsm.Copy()) {
		t.Fatal("a dry run changed the state")
	}
}

// TestRulesHandlerVersions: a change records the authenticated principal
// (in the version and the event log), a change based on a stale version
// is refused with 409 (dry run included) and changes nothing, and the
// history lists the versions.
func TestRulesHandlerVersions(t *testing.T) {
	n := handlerNode(t)
	v1 := "constraints: {locations: [{vm: vm1, host: h1, score: 10}]}\n"
	code, body := rulesCall(t, n.handleSetRules, "POST", "", api.Rules{YAML: v1, IfVersion: intp(0), Note: "first"})
	var done api.RulesPlan
	if code != 200 || json.Unmarshal([]byte(body), &done) != nil || done.Applied != 1 || done.Version != 0 {
		t.Fatalf("first change: %d %s", code, body)
	}
	st := n.fsm.Copy()
	if h := st.Status.RulesHistory; len(h) != 1 || h[0].By != aliceActor || h[0].Note != "first" || h[0].Rules != v1 {
		t.Fatalf("history %+v", h)
	}
	if e := st.Status.Events[len(st.Status.Events)-1]; e.Kind != model.EventRules || e.Principal != aliceActor {
		t.Fatalf("event %+v", e)
	}
	before := n.fsm.Copy()
	for _, dry := range []bool{true, false} {
		code, body = rulesCall(t, n.handleSetRules, "POST", "", api.Rules{YAML: "", IfVersion: intp(0), DryRun: dry})
		if code != 409 || !strings.Contains(body, "rules changed since you read them (now version 1 by "+aliceActor+"): read them again") {
			t.Fatalf("stale version (dry run %v): %d %s", dry, code, body)
		}
	}
	if !equalJSON(before, n.fsm.Copy()) {
		t.Fatal("a refused change changed the state")
	}
	if code, body = rulesCall(t, n.handleSetRules, "POST", "", api.Rules{YAML: "", IfVersion: intp(1)}); code != 200 {
		t.Fatalf("clearing based on version 1: %d %s", code, body)
	}
	code, body = rulesCall(t, n.handleGetRules, "GET", "", nil)
	var r api.Rules
	if code != 200 || json.Unmarshal([]byte(body), &r) != nil || r.Version != 2 || r.By != aliceActor || r.YAML != "" {
		t.Fatalf("get: %d %s", code, body)
	}
	code, body = rulesCall(t, n.handleRulesHistory, "GET", "", nil)
	var hist []api.RulesVersion
	if code != 200 || json.Unmarshal([]byte(body), &hist) != nil || len(hist) != 2 || hist[0].YAML != "" || hist[0].Size != len(v1) ||
		!strings.HasPrefix(hist[0].Summary, "first rules") || hist[1].Summary != "rules cleared" || !hist[1].Current || hist[0].Current {
		t.Fatalf("history: %d %s", code, body)
	}
	code, body = rulesCall(t, n.handleRulesVersion, "GET", "1", nil)
	var one api.RulesVersion
	if code != 200 || json.Unmarshal([]byte(body), &one) != nil || one.YAML != v1 {
		t.Fatalf("version 1: %d %s", code, body)
	}
	if code, body = rulesCall(t, n.handleRulesVersion, "GET", "9", nil); code != 404 || !strings.Contains(body, "keeps versions 1 to 2") {
		t.Fatalf("version 9: %d %s", code, body)
	}
	if code, body = rulesCall(t, n.handleRulesVersion, "GET", "x", nil); code != 400 || !strings.Contains(body, `"field": "version"`) {
		t.Fatalf("version x: %d %s", code, body)
	}
}

// TestRulesHandlerBadInput: bad input is refused with 400 naming the
// field, before anything reaches the log.
func TestRulesHandlerBadInput(t *testing.T) {
	n := handlerNode(t)
	before := n.fsm.Copy()
	for _, tt := range []struct {
		req   any
		field string
		want  string
	}{
		{api.Rules{YAML: "hosts: [{name: h1}]\n", IfVersion: intp(-2)}, "if_version", "-2 is not a version"},
		{api.Rules{YAML: "hosts: [{name: h1}]\n", Version: 3}, "version", "send if_version"},
		{api.Rules{YAML: "hosts: [{name: h1}]\n", By: "mallory"}, "by", "records who applied"},
		{api.Rules{YAML: "hosts: [{name: h1}]\n", Note: strings.Repeat("n", 201)}, "note", "at most 200"},
		{api.Rules{YAML: "constraints: {locations: [{vm: vm1, host: h9, score: 1}]}\n", DryRun: true}, "rules", `location 1 (vm vm1 on h9): host "h9" is not a host of this cluster`},
		{api.Rules{YAML: "constraints: {colocations: [{vm: vm1, with: ghost, score: 1}]}\n"}, "rules", `colocation 1 (vm vm1 with ghost): vm "ghost"`},
		{api.Rules{YAML: "hosts: [{name: h1, capacty: {}}]\n"}, "rules", `unknown key "capacty"`},
		{map[string]any{"yaml": "", "if_versoin": 1}, "", "if_versoin"},
	} {
		code, body := rulesCall(t, n.handleSetRules, "POST", "", tt.req)
		var e api.Error
		if code != 400 || json.Unmarshal([]byte(body), &e) != nil || e.Field != tt.field || !strings.Contains(e.Error, tt.want) {
			t.Errorf("%+v: %d %s, want 400 field %q containing %q", tt.req, code, body, tt.field, tt.want)
		}
	}
	if !equalJSON(before, n.fsm.Copy()) {
		t.Fatal("bad input changed the state")
	}
}

// TestRulesPlan: the preview is the engine's: a VM the new rules ban from
// its host moves (by a restart, as it cannot move live), one they ban
// from every host stops with the engine's reason, rules that change
// nothing cause nothing, and what the rules in force want already is
// marked pending.
func TestRulesPlan(t *testing.T) {
	f := baseFSM(t)
	now := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	applyAll(t, f,
		&Command{Op: OpAddVM, VM: &model.VM{Name: "vm2", XML: xmlFor("vm2"), MemoryMiB: 512}},
		&Command{Op: OpPlace, Placements: []model.Placement{{VM: "vm1", Host: "h1"}, {VM: "vm2", Host: "h2"}}},
		&Command{Op: OpObserve, Observation: &model.Observation{Host: "h1", At: now, VMs: map[string]model.VMObserve{"vm1": {State: "running"}}}},
		&Command{Op: OpObserve, Observation: &model.Observation{Host: "h2", At: now, VMs: map[string]model.VMObserve{"vm2": {State: "running"}}}},
	)
	view := func() *decide.View {
		return &decide.View{Now: now, State: f.Copy(), Members: members(map[string]decide.MemberStatus{"h1": decide.MemberAlive, "h2": decide.MemberAlive})}
	}
	plan, err := planRulesChange(view(), "constraints: {locations: [{vm: vm1, host: h1, score: -INFINITY}]}\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Actions) != 1 || plan.Actions[0].VM != "vm1" || plan.Actions[0].Action != "move" || plan.Actions[0].From != "h1" || plan.Actions[0].To != "h2" ||
		plan.Actions[0].Live || plan.Actions[0].Pending || !plan.Disruptive || plan.Actions[0].Reason == "" {
		t.Fatalf("ban from h1: %+v", plan)
	}
	loop := "constraints: {locations: [{vm: vm1, host: h1, score: -INFINITY}, {vm: vm1, host: h2, score: -INFINITY}]}\n"
	plan, err = planRulesChange(view(), loop)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Actions) != 1 || plan.Actions[0].Action != "stop" || plan.Actions[0].From != "h1" || !plan.Disruptive || plan.Actions[0].Reason != "no host can run it: h1: location -INFINITY; h2: location -INFINITY" {
		t.Fatalf("banned everywhere: %+v", plan)
	}
	// A colocation loop that cannot fit anywhere stops both VMs at once:
	// the preview names each, with the engine's reason.
	plan, err = planRulesChange(view(), "hosts: [{name: h1, capacity: {memory: 600}}, {name: h2, capacity: {memory: 600}}]\n"+
		"constraints: {colocations: [{vm: vm1, with: vm2, score: INFINITY}, {vm: vm2, with: vm1, score: INFINITY}]}\n")
	if err != nil {
		t.Fatal(err)
	}
	stops := map[string]string{}
	for _, a := range plan.Actions {
		if a.Action == "stop" {
			stops[a.VM] = a.Reason
		}
	}
	if len(stops) != 2 || !strings.Contains(stops["vm1"], "insufficient capacity") || !strings.Contains(stops["vm2"], "colocation loop") || !plan.Disruptive {
		t.Fatalf("colocation loop: %+v", plan)
	}
	if plan, err = planRulesChange(view(), ""); err != nil || len(plan.Actions) != 0 || plan.Disruptive || plan.Changed {
		t.Fatalf("no rules to no rules: %+v %v", plan, err)
	}
	// The rules in force ban vm1 everywhere already: its stop is pending,
	// not caused by a change that only adds a preference.
	applyAll(t, f, &Command{Op: OpSetRules, Rules: &loop})
	plan, err = planRulesChange(view(), loop+"# and a comment\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Actions) != 1 || !plan.Actions[0].Pending || plan.Disruptive {
		t.Fatalf("pending stop: %+v", plan)
	}
	if _, err := planRulesChange(view(), "bogus: 1\n"); err == nil {
		t.Fatal("bad rules were planned")
	}
}
