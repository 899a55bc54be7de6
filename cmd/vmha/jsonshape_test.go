package main

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/model"
	"github.com/vmha/vmha/placement"
)

// outputTypes are the values the CLI prints with -o json (printJSON and
// printJSONLine): what its commands decode from vmhad and print again, and
// its own output types.
var outputTypes = []any{
	api.Status{}, []api.Host{}, []api.VM{}, api.VMDefinition{}, api.VMTarget{}, api.VMUpdateResult{},
	api.DomainDiff{}, api.DomainXML{}, []api.Failure{}, api.Events{},
	[]api.FenceDevice{}, api.FenceTestResult{}, model.FenceRecord{}, []model.FenceRecord{},
	api.EvacuationPlan{}, model.Placement{}, []api.Pin{}, []string{},
	model.Rebalance{}, []model.Rebalance{}, api.MigrationJob{}, []api.MigrationJob{},
	api.Rules{}, api.RulesPlan{}, []api.RulesVersion{}, api.StorageCheck{}, api.StorageInitResult{},
	api.GossipKeys{}, []api.AlertResult{}, placement.Explanation{}, []api.Token{}, api.TokenCreated{},
	planOutput{}, versionInfo{}, api.WhatIf{}, []api.Recovery{}, api.MoveDryRun{}, []api.Migration{},
}

// sample builds a value of t: every pointer points to a sample (but a
// *time.Time stays nil); with full set, every slice holds one and every map one entry (depth-limited);
// without, slices and maps stay nil. Times always stay zero.
func sample(t reflect.Type, full bool, depth int) reflect.Value {
	v := reflect.New(t).Elem()
	if depth > 6 || t == reflect.TypeFor[time.Time]() {
		return v
	}
	switch t.Kind() {
	case reflect.Pointer:
		if t.Elem() == reflect.TypeFor[time.Time]() {
			return v // a *time.Time is set only to a time (api.VMDefinition.UpdatedAt)
		}
		p := reflect.New(t.Elem())
		p.Elem().Set(sample(t.Elem(), full, depth+1))
		v.Set(p)
	case reflect.Struct:
		for i := range t.NumField() {
			if t.Field(i).IsExported() {
				v.Field(i).Set(sample(t.Field(i).Type, full, depth+1))
			}
		}
	case reflect.Slice:
		if full && t.Elem().Kind() != reflect.Uint8 {
			s := reflect.MakeSlice(t, 1, 1)
			s.Index(0).Set(sample(t.Elem(), full, depth+1))
			v.Set(s)
		}
	case reflect.Map:
		if full {
			m := reflect.MakeMap(t)
			m.SetMapIndex(sample(t.Key(), full, depth+1), sample(t.Elem(), full, depth+1))
			v.Set(m)
		}
	case reflect.String:
		v.SetString("x")
	}
	return v
}

// printed is v as -o json prints it, indented and as a JSON line.
func printed(t *testing.T, v any) []string {
	t.Helper()
	var a, b bytes.Buffer
	g := &globals{out: &a}
	if err := g.printJSON(v); err != nil {
		t.Fatalf("%T: %v", v, err)
	}
	g.out = &b
	if err := g.printJSONLine(v); err != nil {
		t.Fatalf("%T: %v", v, err)
	}
	if strings.Count(b.String(), "\n") != 1 {
		t.Errorf("%T: a JSON line of %d lines", v, strings.Count(b.String(), "\n"))
	}
	return []string{a.String(), b.String()}
}

// TestJSONOutputShapes: whatever -o json prints has no zero time
// ("0001-01-01T00:00:00Z": the field is left out), and no null where a
// list or a map belongs ([] and {} instead; a field tagged omitempty or
// omitzero is left out). Each output type is printed as its zero value,
// with every pointer set and every list nil, and with every list and map
// holding one sample; only pointers may print null (a documented "none",
// as in vmha plan's "from": null).
func TestJSONOutputShapes(t *testing.T) {
	for _, typ := range outputTypes {
		rt := reflect.TypeOf(typ)
		for _, full := range []bool{false, true} {
			v := sample(rt, full, 0).Interface()
			for _, out := range printed(t, v) {
				if strings.Contains(out, "0001-01-01") {
					t.Errorf("%s (full %v): a zero time printed:\n%s", rt, full, out)
				}
				var doc any
				if err := json.Unmarshal([]byte(out), &doc); err != nil {
					t.Fatalf("%s: %v", rt, err)
				}
				if path := nullPath(doc, ""); path != "" {
					t.Errorf("%s (full %v): null at %s:\n%s", rt, full, path, out)
				}
			}
		}
	}
	// The zero value of a list type itself prints [].
	for _, out := range printed(t, []api.VM(nil)) {
		if strings.TrimSpace(out) != "[]" {
			t.Errorf("a nil list printed %q", out)
		}
	}
}

// nullPath is the path of the first null in doc ("" for none). With every
// pointer of the sample set, a null can only be a list or a map.
func nullPath(doc any, at string) string {
	switch d := doc.(type) {
	case nil:
		return at + " (null)"
	case map[string]any:
		for k, v := range d {
			if p := nullPath(v, at+"."+k); p != "" {
				return p
			}
		}
	case []any:
		for i, v := range d {
			if p := nullPath(v, at+"["+string(rune('0'+i))+"]"); p != "" {
				return p
			}
		}
	}
	return ""
}

// TestJSONListsKeepsTheValue: jsonLists changes nothing but nil lists and
// maps, and never the value it was given.
func TestJSONListsKeepsTheValue(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	in := api.Status{At: at, Hosts: []api.Host{{Name: "h1", Since: at}}, VMs: nil}
	out := jsonLists(in).(api.Status)
	if out.VMs == nil || len(out.VMs) != 0 {
		t.Fatalf("VMs %#v, want []", out.VMs)
	}
	if in.VMs != nil {
		t.Fatal("jsonLists changed its argument")
	}
	if !out.At.Equal(at) || !out.Hosts[0].Since.Equal(at) || out.Hosts[0].Name != "h1" {
		t.Fatalf("jsonLists changed values: %+v", out)
	}
	if out.Hosts[0].VMs == nil {
		t.Fatal("a nested nil list stayed nil")
	}
	raw := json.RawMessage(nil)
	if got := jsonLists(map[string]any{"raw": raw}); !reflect.DeepEqual(got, map[string]any{"raw": raw}) {
		t.Fatalf("a RawMessage changed: %#v", got)
	}
}
