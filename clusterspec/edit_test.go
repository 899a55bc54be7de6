package clusterspec

import (
	"strings"
	"testing"

	"github.com/vmha/vmha/placement"
)

// TestRulesOfACluster: without a status the file is a running cluster's
// rules: its constraints may name hosts and VMs it does not describe;
// with one it is the whole world and may not.
func TestRulesOfACluster(t *testing.T) {
	text := "hosts: [{name: h1, capacity: {memory: 100}}]\nconstraints:\n  locations: [{vm: web, host: h2, score: 5}]\n  colocations: [{vm: web, with: db, score: -INFINITY}]\n"
	s, err := Parse([]byte(text))
	if err != nil {
		t.Fatalf("a rules file naming VMs it does not describe: %v", err)
	}
	in, err := s.Input(nil)
	if err != nil || len(in.Locations) != 1 || len(in.Colocations) != 1 || len(in.VMs) != 0 || len(in.Hosts) != 1 {
		t.Fatalf("input %+v, %v", in, err)
	}
	if _, err := s.Input(&Status{}); err == nil || !strings.Contains(err.Error(), `unknown vm "web"`) {
		t.Fatalf("as a whole world: %v", err)
	}
	// What the file says of itself is still checked.
	for _, bad := range []string{
		"constraints: {colocations: [{vm: a, with: a, score: 1}]}",
		"constraints: {colocations: [{vm: a, with: b, score: INFINITY}, {vm: b, with: a, score: -INFINITY}]}",
		"constraints: {locations: [{vm: a, host: h1}]}",
	} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("%s was accepted", bad)
		}
	}
}

// TestEditItems: the per-item edits change one constraint and keep the
// rest of the text, comments included; a second add sets the score; a
// remove of what is not there says so.
func TestEditItems(t *testing.T) {
	text := "# our rules\npolicy: {placement-strategy: balanced} # keep\nconstraints:\n  locations:\n    - {vm: db, host: h2, score: 50} # db likes h2\n"
	out, replaced, err := AddLocation(text, "web", "h1", 100)
	if err != nil || replaced {
		t.Fatal(replaced, err)
	}
	for _, want := range []string{"# our rules", "# keep", "# db likes h2", "{vm: web, host: h1, score: 100}"} {
		if !strings.Contains(out, want) {
			t.Fatalf("added location: %q lacks %q", out, want)
		}
	}
	out, replaced, err = AddLocation(out, "web", "h1", -placement.Infinity)
	if err != nil || !replaced || !strings.Contains(out, "score: -INFINITY") || strings.Count(out, "vm: web") != 1 {
		t.Fatalf("score change: %v %v\n%s", replaced, err, out)
	}
	out, err = RemoveLocation(out, "db", "h2")
	if err != nil || strings.Contains(out, "vm: db") || !strings.Contains(out, "vm: web") {
		t.Fatalf("remove: %v\n%s", err, out)
	}
	if _, err := RemoveLocation(out, "db", "h2"); err == nil || !strings.Contains(err.Error(), `no location of vm "db" on host "h2"`) {
		t.Fatalf("removing an absent location: %v", err)
	}
	// From no rules at all, and a colocation the file cannot satisfy.
	out, _, err = AddColocation("", "a", "b", placement.Infinity)
	if err != nil || !strings.Contains(out, "colocations:") {
		t.Fatalf("colocation on empty rules: %v\n%s", err, out)
	}
	if _, _, err := AddColocation(out, "b", "a", -placement.Infinity); err == nil || !strings.Contains(err.Error(), "unsatisfiable") {
		t.Fatalf("a contradicting colocation: %v", err)
	}
	if _, _, err := AddColocation(out, "a", "a", 5); err == nil || !strings.Contains(err.Error(), "colocated with itself") {
		t.Fatalf("a VM with itself: %v", err)
	}
	if out, err = RemoveColocation(out, "a", "b"); err != nil || strings.Contains(out, "vm: a") {
		t.Fatalf("remove colocation: %v\n%s", err, out)
	}
	if _, err := RemoveColocation(out, "a", "b"); err == nil {
		t.Fatal("removing an absent colocation")
	}
}

func TestSummarize(t *testing.T) {
	a := "hosts: [{name: h1}]\nconstraints: {locations: [{vm: web, host: h1, score: 10}]}\n"
	b := "policy: {migration-limit: 2}\nhosts: [{name: h1, standby: true}, {name: h2}]\nconstraints: {locations: [{vm: web, host: h1, score: 20}], colocations: [{vm: a, with: b, score: -INFINITY}]}\n"
	for _, tt := range []struct{ prev, cur, want string }{
		{"", "", "no rules"},
		{a, "", "rules cleared"},
		{a, a, "no change"},
		{"", a, "first rules: 1 hosts, 0 VMs, 1 locations, 0 colocations"},
		{a, "# hi\n" + a, "layout or comments only"},
		{a, b, "policy changed; host h2 added; host h1 changed; +location web on h1 20; -location web on h1 10; +colocation a with b -INFINITY"},
	} {
		if got := Summarize(tt.prev, tt.cur); got != tt.want {
			t.Errorf("Summarize:\n got %q\nwant %q", got, tt.want)
		}
	}
}
