package statemachine

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vmha/vmha/cluster/command"
	"github.com/vmha/vmha/model"
)

// rulesState is a cluster of hosts h1, h2 (and witness w) with VMs web,
// db and app.
func rulesState(t *testing.T) *model.State {
	t.Helper()
	s := model.NewState()
	for _, c := range []*command.Command{
		{Op: command.OpRegisterHost, Host: &model.Host{Name: "h1", MemoryMiB: 4096}},
		{Op: command.OpRegisterHost, Host: &model.Host{Name: "h2", MemoryMiB: 4096}},
		{Op: command.OpRegisterHost, Host: &model.Host{Name: "w", Witness: true}},
		{Op: command.OpAddVM, VM: &model.VM{Name: "web", MemoryMiB: 512}},
		{Op: command.OpAddVM, VM: &model.VM{Name: "db", MemoryMiB: 512}},
		{Op: command.OpAddVM, VM: &model.VM{Name: "app", MemoryMiB: 512}},
	} {
		if err := Apply(s, c); err != nil {
			t.Fatalf("setup %s: %v", c.Op, err)
		}
	}
	return s
}

var rulesAt = time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)

func setRules(s *model.State, text, by string, based int) error {
	return Apply(s, &command.Command{Op: command.OpSetRules, At: rulesAt, Rules: &text, By: by, RulesVersion: based, Why: "note " + by})
}

func stateJSON(t *testing.T, s *model.State) string {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestRulesNameTheLiveCluster: a rules file may constrain the cluster's
// hosts and VMs without describing them (operators found such a file
// refused with "unknown vm"); a name the cluster does not have is refused
// naming the item, and nothing changes.
func TestRulesNameTheLiveCluster(t *testing.T) {
	s := rulesState(t)
	good := "constraints:\n  locations:\n    - {vm: web, host: h1, score: 100}\n  colocations:\n    - {vm: db, with: app, score: -INFINITY}\n"
	if err := setRules(s, good, "alice", 0); err != nil {
		t.Fatalf("rules naming the cluster's VMs and hosts: %v", err)
	}
	for _, tt := range []struct{ text, want string }{
		{"constraints: {locations: [{vm: web, host: h9, score: 1}]}", `location 1 (vm web on h9): host "h9" is not a host of this cluster`},
		{"constraints: {locations: [{vm: web, host: w, score: 1}]}", `location 1 (vm web on w): host "w" is a witness`},
		{"constraints: {locations: [{vm: nope, rule: {score: 1, expressions: [{attribute: a, operation: defined}]}}]}", `location 1 (vm nope): vm "nope" is not managed`},
		{"constraints: {colocations: [{vm: web, with: ghost, score: 5}]}", `colocation 1 (vm web with ghost): vm "ghost" is not managed`},
		{"constraints: {colocations: [{vm: web, with: db, score: INFINITY}, {vm: db, with: app, score: INFINITY}, {vm: app, with: web, score: -INFINITY}]}", "unsatisfiable"},
	} {
		before := stateJSON(t, s)
		err := setRules(s, tt.text, "bob", 0)
		var ve *command.ValidationError
		if !errors.As(err, &ve) || ve.Field != "rules" || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want a rules validation error containing %q", tt.text, err, tt.want)
		}
		if stateJSON(t, s) != before {
			t.Errorf("%s: refused rules changed the state", tt.text)
		}
	}
}

// TestRulesHistory: every applied text is a version, by the command's
// principal ("cluster" when it has none), with its note; the history keeps
// the last MaxRulesHistory while version numbers keep increasing, and
// clearing the rules is a version too.
func TestRulesHistory(t *testing.T) {
	s := rulesState(t)
	for i := 1; i <= model.MaxRulesHistory+10; i++ {
		text := fmt.Sprintf("constraints: {locations: [{vm: web, host: h1, score: %d}]}\n", i)
		if err := setRules(s, text, fmt.Sprintf("op%d", i), 0); err != nil {
			t.Fatal(err)
		}
	}
	h := s.Status.RulesHistory
	if len(h) != model.MaxRulesHistory || h[0].Version != 11 || h[len(h)-1].Version != model.MaxRulesHistory+10 {
		t.Fatalf("history keeps %d versions %d..%d", len(h), h[0].Version, h[len(h)-1].Version)
	}
	last := h[len(h)-1]
	if last.By != "op60" || !last.At.Equal(rulesAt) || last.Note != "note op60" || last.Rules != s.Config.Rules {
		t.Fatalf("last version %+v", last)
	}
	if err := setRules(s, "", "", 0); err != nil {
		t.Fatal(err)
	}
	cur, _ := s.Status.RulesVersionNow()
	if s.Config.Rules != "" || cur.Version != 61 || cur.Rules != "" || cur.By != model.PrincipalCluster {
		t.Fatalf("clearing: rules %q, version %+v", s.Config.Rules, cur)
	}
	if e := s.Status.Events[len(s.Status.Events)-1]; e.Kind != model.EventRules || e.Action != "clear" {
		t.Fatalf("last event %+v", e)
	}
}

// TestRulesHistoryBytes: large texts keep fewer versions, never fewer than
// the one in force.
func TestRulesHistoryBytes(t *testing.T) {
	s := rulesState(t)
	pad := "# " + strings.Repeat("x", model.MaxRulesHistoryBytes/3) + "\n"
	for i := range 5 {
		if err := setRules(s, fmt.Sprintf("%spolicy: {migration-limit: %d}\n", pad, i), "op", 0); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(s.Status.RulesHistory); n != 2 || s.Status.RulesHistory[1].Version != 5 {
		t.Fatalf("kept %d versions", n)
	}
	big := "# " + strings.Repeat("y", model.MaxRulesHistoryBytes+10) + "\npolicy: {}\n"
	if err := setRules(s, big, "op", 0); err != nil {
		t.Fatal(err)
	}
	if h := s.Status.RulesHistory; len(h) != 1 || h[0].Version != 6 {
		t.Fatalf("a text larger than the bound: %d versions", len(h))
	}
}

// TestRulesCompareAndSet: a change based on another version than the one
// in force is refused, naming the version and its author, and changes
// nothing; "no version yet" holds only before the first.
func TestRulesCompareAndSet(t *testing.T) {
	s := rulesState(t)
	v1 := "constraints: {locations: [{vm: web, host: h1, score: 10}]}\n"
	v2 := "constraints: {locations: [{vm: web, host: h2, score: 10}]}\n"
	if err := setRules(s, v1, "alice", command.RulesUnversioned); err != nil {
		t.Fatalf("the first version based on none: %v", err)
	}
	before := stateJSON(t, s)
	for _, based := range []int{command.RulesUnversioned, 2, 7} {
		err := setRules(s, v2, "bob", based)
		var ce *command.ConflictError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), "rules changed since you read them (now version 1 by alice): read them again") {
			t.Errorf("based on %d: %v", based, err)
		}
		if stateJSON(t, s) != before {
			t.Fatalf("based on %d: a refused change changed the state", based)
		}
	}
	if err := setRules(s, v2, "bob", 1); err != nil {
		t.Fatalf("based on the version in force: %v", err)
	}
	// Rollback: version 1's text again, as version 3.
	if err := setRules(s, s.Status.RulesHistory[0].Rules, "carol", 2); err != nil {
		t.Fatal(err)
	}
	cur, _ := s.Status.RulesVersionNow()
	if cur.Version != 3 || cur.Rules != v1 || s.Config.Rules != v1 || cur.By != "carol" {
		t.Fatalf("after rollback: %+v", cur)
	}
}
