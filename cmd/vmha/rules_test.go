package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmha/vmha/api"
)

const liveRules = `# the rules in force
constraints:
  locations:
    - {vm: web, host: h1, score: 10}
`

// rulesDaemon is a fake leader for the rules commands: the rules in force
// are version 3 by alice; a text with "# disrupt" in it stops a VM; a
// change based on another version than 3 is refused as the cluster does.
type rulesDaemon struct {
	mu    sync.Mutex
	posts []api.Rules
}

func (d *rulesDaemon) handler() http.Handler {
	at := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+api.PathRules, func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(api.Rules{YAML: liveRules, Version: 3, By: "alice", At: at})
	})
	mux.HandleFunc("POST "+api.PathRules, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var req api.Rules
		_ = json.Unmarshal(b, &req)
		d.mu.Lock()
		d.posts = append(d.posts, req)
		d.mu.Unlock()
		if req.IfVersion != nil && *req.IfVersion != 3 {
			w.WriteHeader(http.StatusConflict)
			_ = json.NewEncoder(w).Encode(api.Error{Error: "rules changed since you read them (now version 3 by alice): read them again"})
			return
		}
		plan := api.RulesPlan{Version: 3, Changed: req.YAML != liveRules, Summary: "+location web on h2 50", Actions: []api.RulesAction{
			{VM: "db", Action: "start", To: "h2", Reason: "h2 wins"},
			{VM: "old", Action: "stop", From: "h1", Pending: true, Reason: "no host can run it"},
		}}
		if strings.Contains(req.YAML, "# disrupt") {
			plan.Actions = append(plan.Actions,
				api.RulesAction{VM: "web", Action: "stop", From: "h1", Reason: "no host can run it (h1: location -INFINITY; h2: location -INFINITY)"},
				api.RulesAction{VM: "app", Action: "migrate", From: "h1", To: "h2", Live: true})
			plan.Disruptive = true
		}
		if !req.DryRun {
			plan = api.RulesPlan{Version: 3, Applied: 4, Changed: true, Summary: plan.Summary}
		}
		_ = json.NewEncoder(w).Encode(plan)
	})
	mux.HandleFunc("GET "+api.PathRulesHistory, func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode([]api.RulesVersion{
			{Version: 2, By: "bob", At: at.Add(-time.Hour), Size: 40, Summary: "first rules: 0 hosts, 0 VMs, 1 locations, 0 colocations"},
			{Version: 3, By: "alice", At: at, Size: len(liveRules), Summary: "+location web on h1 10", Note: "location add web h1 10", Current: true},
		})
	})
	mux.HandleFunc("GET "+api.PathRulesHistory+"/{version}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("version") != "2" {
			w.WriteHeader(http.StatusNotFound)
			_ = json.NewEncoder(w).Encode(api.Error{Error: "no rules version " + r.PathValue("version") + ": the cluster keeps versions 2 to 3"})
			return
		}
		_ = json.NewEncoder(w).Encode(api.RulesVersion{Version: 2, By: "bob", YAML: "constraints: {locations: [{vm: web, host: h2, score: 5}]}\n"})
	})
	return mux
}

func (d *rulesDaemon) take() []api.Rules {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.posts
	d.posts = nil
	return p
}

// TestRulesCommands: every change previews first (a dry run on the
// leader), asks for --yes without a terminal when it stops or moves a VM
// (exit 2), and applies with the previewed version as if_version; the
// item edits change one constraint of the live text and keep the rest;
// diff, history and rollback read the cluster's versions.
func TestRulesCommands(t *testing.T) {
	d := &rulesDaemon{}
	sock := fakeDaemon(t, d.handler())
	calm := writeFile(t, "calm.yaml", "constraints: {locations: [{vm: web, host: h2, score: 50}]}\n")
	rough := writeFile(t, "rough.yaml", "# disrupt\nconstraints: {locations: [{vm: web, host: h1, score: -INFINITY}]}\n")
	typo := writeFile(t, "typo.yaml", "constraints: {locatoins: []}\n")

	type post struct {
		dry       bool
		ifVersion int // -1: none
		yamlHas   string
		note      string
	}
	for _, tt := range []struct {
		name  string
		args  []string
		code  int
		want  []string
		posts []post
	}{
		{"dry run", []string{"rules", "apply", rough, "--dry-run"}, 0,
			[]string{"change against version 3: +location web on h2 50", "the cluster would:", "  stop web on h1: no host can run it (h1: location -INFINITY; h2: location -INFINITY)",
				"  move app from h1 to h2, live", "  start db on h2: h2 wins", "already wanted by the rules in force (not caused by this change):\n  stop old on h1"},
			[]post{{true, -1, "# disrupt", ""}}},
		{"disruptive without --yes", []string{"rules", "apply", rough}, 2,
			[]string{"This change stops or moves 2 VM(s): web, app. Add --yes to go ahead"},
			[]post{{true, -1, "# disrupt", ""}}},
		{"disruptive with --yes", []string{"rules", "apply", rough, "--yes", "--note", "ban web"}, 0,
			[]string{"placement rules from " + rough + " applied as version 4"},
			[]post{{true, -1, "# disrupt", "ban web"}, {false, 3, "# disrupt", "ban web"}}},
		{"calm change needs no --yes", []string{"rules", "apply", calm}, 0,
			[]string{"the cluster will:\n  start db on h2", "applied as version 4"},
			[]post{{true, -1, "h2", ""}, {false, 3, "h2", ""}}},
		{"json", []string{"rules", "apply", calm, "-o", "json"}, 0,
			[]string{`"applied": 4`, `"action": "start"`},
			[]post{{true, -1, "h2", ""}, {false, 3, "h2", ""}}},
		{"a mistyped key", []string{"rules", "apply", typo}, 2, []string{`unknown key "locatoins"`}, nil},
		{"diff", []string{"rules", "diff", calm}, 0,
			[]string{"--- cluster (version 3 by alice)\n+++ " + calm + "\n@@ -1,4 +1 @@\n-# the rules in force\n-constraints:\n-  locations:\n-    - {vm: web, host: h1, score: 10}\n+constraints: {locations: [{vm: web, host: h2, score: 50}]}\n"}, nil},
		{"history", []string{"rules", "history"}, 0,
			[]string{"VERSION", " 2 ", "bob", "*3", "+location web on h1 10 (location add web h1 10)"}, nil},
		{"history json", []string{"rules", "history", "-o", "json"}, 0, []string{`"version": 3`, `"current": true`, `"summary": "+location web on h1 10"`}, nil},
		{"rollback", []string{"rules", "rollback", "2"}, 0, []string{"placement rules of version 2 applied as version 4"},
			[]post{{true, -1, "score: 5", "rollback to version 2"}, {false, 3, "score: 5", "rollback to version 2"}}},
		{"rollback to a version not kept", []string{"rules", "rollback", "1"}, 1, []string{"keeps versions 2 to 3"}, nil},
		{"rollback to nonsense", []string{"rules", "rollback", "last"}, 2, []string{`"last" is not a version number`}, nil},
		{"location add", []string{"rules", "location", "add", "web", "h2", "--score", "50"}, 0, []string{"rules location add web h2 50 applied as version 4"},
			[]post{{true, 3, "{vm: web, host: h2, score: 50}", "location add web h2 50"}, {false, 3, "# the rules in force", "location add web h2 50"}}},
		{"location add without a score", []string{"rules", "location", "add", "web", "h2"}, 2, []string{"--score is required"}, nil},
		{"location add with a bad score", []string{"rules", "location", "add", "web", "h2", "--score", "lots"}, 2, []string{"--score"}, nil},
		{"location remove", []string{"rules", "location", "remove", "web", "h1", "--dry-run"}, 0, []string{"change against version 3"},
			[]post{{true, 3, "constraints:", "location remove web h1"}}},
		{"location remove of what is not there", []string{"rules", "location", "remove", "web", "h9"}, 2, []string{`no location of vm "web" on host "h9"`}, nil},
		{"colocation add", []string{"rules", "colocation", "add", "web", "db", "--score", "-INFINITY", "--dry-run"}, 0, []string{"change against version 3"},
			[]post{{true, 3, "{vm: web, with: db, score: -INFINITY}", "colocation add web db -INFINITY"}}},
		{"colocation with itself", []string{"rules", "colocation", "add", "web", "web", "--score", "5"}, 2, []string{`vm "web" colocated with itself`}, nil},
		{"clear", []string{"rules", "clear", "--dry-run"}, 0, []string{"change against version 3"}, []post{{true, -1, "", "rules cleared"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCLI(append([]string{"--socket", sock}, tt.args...)...)
			for _, w := range tt.want {
				if !strings.Contains(out+errOut, w) {
					t.Errorf("output lacks %q", w)
				}
			}
			if code != tt.code || t.Failed() {
				t.Fatalf("exit %d, stdout:\n%s\nstderr:\n%s\nwant exit %d", code, out, errOut, tt.code)
			}
			got := d.take()
			if len(got) != len(tt.posts) {
				t.Fatalf("%d posts, want %d: %+v", len(got), len(tt.posts), got)
			}
			for i, p := range tt.posts {
				g := got[i]
				iv := -1
				if g.IfVersion != nil {
					iv = *g.IfVersion
				}
				if g.DryRun != p.dry || iv != p.ifVersion || !strings.Contains(g.YAML, p.yamlHas) || g.Note != p.note {
					t.Errorf("post %d: %+v, want %+v", i, g, p)
				}
			}
		})
	}
}

// TestRulesConflict: a change the cluster refuses as stale exits 1 with
// the cluster's words.
func TestRulesConflict(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+api.PathRules, func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(api.Rules{YAML: liveRules, Version: 2})
	})
	mux.HandleFunc("POST "+api.PathRules, func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusConflict)
		_ = json.NewEncoder(w).Encode(api.Error{Error: "rules changed since you read them (now version 3 by alice): read them again"})
	})
	sock := fakeDaemon(t, mux)
	code, _, errOut := runCLI("--socket", sock, "rules", "location", "add", "web", "h2", "--score", "5", "--yes")
	if code != 1 || !strings.Contains(errOut, "now version 3 by alice") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}

func TestLineDiff(t *testing.T) {
	a := "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n"
	b := "a\nB\nc\nd\ne\nf\ng\nh\ni\nj\nk"
	var out strings.Builder
	if !writeUnified(&out, "x", "y", a, b, 2) {
		t.Fatal("no difference found")
	}
	want := "--- x\n+++ y\n@@ -1,4 +1,4 @@\n a\n-b\n+B\n c\n d\n@@ -9,2 +9,3 @@\n i\n j\n+k\n\\ No newline at end of file\n"
	if out.String() != want {
		t.Fatalf("diff:\n%s\nwant:\n%s", out.String(), want)
	}
	if writeUnified(&out, "x", "y", a, a, 3) {
		t.Fatal("a difference between equal texts")
	}
}
