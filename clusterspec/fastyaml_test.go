package clusterspec

import (
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"testing"

	"github.com/vmha/vmha/internal/testlab/plangen"
)

// TestFastYAMLAgreesWithYAMLv3: whatever the fast reader accepts decodes to
// what yaml.v3 decodes, and it accepts the files we write ourselves
// (samples, generated inputs); the rest falls back to yaml.v3.
func TestFastYAMLAgreesWithYAMLv3(t *testing.T) {
	sample, err := os.ReadFile("../configs/cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sampleStatus, err := os.ReadFile("../configs/status.yaml")
	if err != nil {
		t.Fatal(err)
	}
	genC, genS := plangen.Files(8, 100)
	fast := []struct {
		name         string
		spec, status string
		specSlow     bool // the spec uses what only yaml.v3 reads (anchors)
	}{
		{"base", base, "", false},
		{"sample", string(sample), string(sampleStatus), true},
		{"generated", string(genC), string(genS), false},
		{"strings", `
hosts:
  - name: "h1"   # quoted
    attributes: {pingd: 100, ok: true, f: 1.5, q: "it's", s: 'a''b', e: "x\"y\\z", c: a:b, n: -3, t: 2026-01-01T00:00:00Z}
  -
    name: h2
    capacity:
      memory: 0
vms:
- name: it's
  failure-timeout: 1h30m
constraints:
  locations:
  - vm: it's
    rule: {score: "-INFINITY", expressions: [{attribute: "#uname", operation: eq, value: h1}], rules: []}
`, `
now: 2026-01-01T00:00:00.5Z
hosts: {h1: {state: lost, standby: false, attributes: {}}}
vms:
  "it's":
    failures:
      - {host: h1, count: 2, last: 2026-01-01T00:00:00Z}
      - host: h2
        count: 0
`, false},
	}
	for _, c := range fast {
		t.Run(c.name, func(t *testing.T) {
			got, err := fastSpec(c.spec)
			var want Spec
			if werr := decodeStrict([]byte(c.spec), &want); werr != nil {
				t.Fatal(werr)
			}
			switch {
			case err != nil && !c.specSlow:
				t.Fatalf("fast reader refused the spec: %v", err)
			case err == nil && c.specSlow:
				t.Fatal("fast reader read anchors")
			case err == nil && !reflect.DeepEqual(*got, want):
				t.Errorf("spec: fast\n%+v\nyaml.v3\n%+v", *got, want)
			}
			if c.status == "" {
				return
			}
			gs, err := fastStatus(c.status)
			if err != nil {
				t.Fatalf("fast reader refused the status: %v", err)
			}
			var ws Status
			if err := decodeStrict([]byte(c.status), &ws); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*gs, ws) {
				t.Errorf("status: fast\n%+v\nyaml.v3\n%+v", *gs, ws)
			}
		})
	}

	// Inputs the fast reader must leave to yaml.v3 (or read as it does).
	odd := []string{
		"policy: {default-stickiness: 0x10}",
		"policy: {default-stickiness: 010}",
		"policy: {migration-limit: +3}",
		"policy: {symmetric-cluster: yes}",
		"policy: {placement-strategy: ~}",
		"policy: {placement-strategy: null}",
		"policy:\n  placement-strategy:\n",
		"policy: {placement-strategy: balanced, placement-strategy: default}",
		"hosts:\n  - &a {name: h1}\n  - *a\n",
		"hosts:\n  - name: !!str h1\n",
		"hosts:\n  - name: |\n      h1\n",
		"hosts:\n  - name: h1\n    standby: true\n  - name: h2\n      bad: indent\n",
		"hosts:\n  - name: a\n    b\n",
		"hosts:\n  - {name: h1,\n     standby: true}\n",
		"hosts:\n  - name: \"h\\t1\"\n",
		"---\nhosts: []\n---\nhosts: []\n",
		"hosts: []\nhosts: []\n",
		"vms:\n  - name: a\n    failure-timeout: -5\n",
		"vms:\n  - name: a\n    unknown: 1\n",
		"vms:\n  - name: a\n    priority: 1.5\n",
		"vms:\n  - {name: a, stickiness: INFINITY, migration-threshold: -INFINITY}\n",
		"vms:\n  - {name: a: b}\n",
		"vms:\n  - name: a: b\n",
		"\ufeffhosts: []\n",
		"hosts:\n\t- name: h1\n",
		"hosts: [{name: 'h1'}, {name: \"h2\"},]\n",
		"constraints:\n  locations:\n    - {vm: a, host: h1, score: 100}\n  colocations:\n    - {vm: a, with: b, score: -INFINITY}\n",
		"hosts:\n- name: h1 # c\n  attributes:\n    a: b#c\n    d: 'e # f'\n",
		"hosts:\n  - name: [h1]\n",
		"hosts:\n  - name: {a: b}\n",
		"hosts: {name: h1}\n",
		"hosts:\n  - - name: h1\n",
		"hosts:\n- name: x 'y # z'\n",
		"hosts:\n- name: x \"y # z\"\n",
		"hosts:\n- {name: 'a # b', attributes: {k: \"c # d\", l: e 'f}}\n",
		"hosts:\n- name: 'a' # c\n  attributes: {'k': 'it''s'}\n",
		"hosts:\n- name: a\x7fb\n",
		"hosts:\n- name: a\u0085b\n",
		"hosts:\n- name: a\u2028b\n",
		"hosts:\n- name: a\ufeffb\n",
	}
	for _, y := range odd {
		got, ferr := fastSpec(y)
		var want Spec
		werr := decodeStrict([]byte(y), &want)
		if ferr != nil {
			continue // yaml.v3 reads it, whatever it says
		}
		if werr != nil {
			t.Errorf("%q: the fast reader accepted what yaml.v3 refuses (%v)", y, werr)
			continue
		}
		if !reflect.DeepEqual(*got, want) {
			t.Errorf("%q: fast %+v, yaml.v3 %+v", y, *got, want)
		}
	}
	oddStatus := []string{
		"now: 2026-01-01T01:00:00+01:00\n",
		"now: 2026-01-01\n",
		"now: \"2026-01-01T00:00:00Z\"\n",
		"vms: {a: {host: h1}, a: {host: h2}}\n",
		"hosts: {h1: {standby: on}}\n",
		"vms:\n  a:\n    failures:\n      - {host: h1, count: 1, last: 2026-01-01T00:00:00Z}\n",
	}
	for _, y := range oddStatus {
		got, ferr := fastStatus(y)
		var want Status
		werr := decodeStrict([]byte(y), &want)
		if ferr != nil {
			continue
		}
		if werr != nil {
			t.Errorf("%q: the fast reader accepted what yaml.v3 refuses (%v)", y, werr)
			continue
		}
		if !reflect.DeepEqual(*got, want) {
			t.Errorf("%q: fast %+v, yaml.v3 %+v", y, *got, want)
		}
	}
}

// FuzzFastYAML: whatever the fast reader accepts, yaml.v3 decodes alike
// (checkFastYAML). The seeds add generated files of both
// shapes (TestFastYAMLGenerated's generator).
func FuzzFastYAML(f *testing.F) {
	f.Add(base)
	f.Add("now: 2026-01-01T00:00:00Z\nvms:\n  a: {host: h1, failures: [{host: h1, count: 1}]}\n")
	f.Add("hosts:\n- name: x 'y # z'\n  attributes: {'k': 'it''s', v: \"a\\\"b\"}\n")
	g := &yamlGen{r: rand.New(rand.NewPCG(17, 2)), clean: true}
	for i := 0; i < 8; i++ {
		f.Add(g.doc(g.spec()))
		f.Add(g.doc(g.status()))
	}
	f.Fuzz(func(t *testing.T, y string) { checkFastYAML(t, y) })
}

// TestDecodeOwned: DecodeOwned decodes as Decode does, on files for the
// fast reader and on files it leaves to yaml.v3, errors included.
func TestDecodeOwned(t *testing.T) {
	genC, _ := plangen.Files(8, 100)
	for _, y := range []string{base, string(genC), "hosts:\n  - &a {name: h1}\n  - *a\n", "vms:\n  - name: a\n    unknown: 1\n", ""} {
		want, werr := Decode([]byte(y))
		got, err := DecodeOwned([]byte(y))
		if fmt.Sprint(err) != fmt.Sprint(werr) || !reflect.DeepEqual(got, want) {
			t.Errorf("%q: DecodeOwned %+v, %v; Decode %+v, %v", y, got, err, want, werr)
		}
	}
}
