package model

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"
)

// fillAll sets every field reachable from v to a non-zero value (maps and
// slices with two entries), so that a field Clone missed shows as a
// difference.
func fillAll(v reflect.Value, depth int, n *int) {
	*n++
	switch v.Kind() {
	case reflect.Pointer:
		if depth > 6 {
			return
		}
		v.Set(reflect.New(v.Type().Elem()))
		fillAll(v.Elem(), depth+1, n)
	case reflect.Map:
		if depth > 6 {
			return
		}
		v.Set(reflect.MakeMap(v.Type()))
		for i := range 2 {
			k := reflect.New(v.Type().Key()).Elem()
			k.SetString(fmt.Sprintf("k%d-%d", i, *n))
			e := reflect.New(v.Type().Elem()).Elem()
			fillAll(e, depth+1, n)
			v.SetMapIndex(k, e)
		}
	case reflect.Slice:
		if depth > 6 {
			return
		}
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := range 2 {
			fillAll(v.Index(i), depth+1, n)
		}
	case reflect.Struct:
		if v.Type() == timeType {
			v.Set(reflect.ValueOf(time.Date(2026, 11, 24, 1, 2, *n%60, 0, time.UTC)))
			return
		}
		for i := range v.NumField() {
			if v.Field(i).CanSet() {
				fillAll(v.Field(i), depth+1, n)
			}
		}
	case reflect.String:
		v.SetString(fmt.Sprintf("s%d", *n))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(*n%100 + 1))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(*n%100 + 1))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(*n) + 0.5)
	}
}

// TestCloneIsDeep: a clone of a state with every field set equals the
// JSON round trip (so no field is dropped or changed), and changing the
// clone anywhere leaves the original as it was.
func TestCloneIsDeep(t *testing.T) {
	s := NewState()
	n := 0
	fillAll(reflect.ValueOf(s).Elem(), 0, &n)
	c := s.Clone()
	js, _ := json.Marshal(s)
	jc, _ := json.Marshal(c)
	if string(js) != string(jc) {
		t.Fatalf("clone differs from the original:\n%s\n%s", js, jc)
	}
	// Change every reachable value of the clone in place (through its
	// maps, slices and pointers); the original must not move.
	mutate(reflect.ValueOf(c).Elem())
	js2, _ := json.Marshal(s)
	if string(js) != string(js2) {
		t.Fatal("changing the clone changed the original")
	}
	var back State
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	back.Fill()
	if !reflect.DeepEqual(normal(t, s.Clone()), normal(t, &back)) {
		t.Fatal("clone and JSON round trip disagree")
	}
}

func normal(t *testing.T, s *State) string {
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// mutate changes every leaf reachable from v in place: map entries are
// rewritten under their keys, slice elements and pointees are changed where
// they are, so any storage the clone shares with the original shows.
func mutate(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			mutate(v.Elem())
		}
	case reflect.Map:
		it := v.MapRange()
		for it.Next() {
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(it.Value())
			mutate(e)
			v.SetMapIndex(it.Key(), e)
		}
	case reflect.Slice:
		for i := range v.Len() {
			mutate(v.Index(i))
		}
	case reflect.Struct:
		if v.Type() == timeType {
			if v.CanSet() {
				v.Set(reflect.ValueOf(time.Unix(1, 0)))
			}
			return
		}
		for i := range v.NumField() {
			if v.Field(i).CanSet() {
				mutate(v.Field(i))
			}
		}
	case reflect.String:
		if v.CanSet() {
			v.SetString(v.String() + "~")
		}
	case reflect.Bool:
		if v.CanSet() {
			v.SetBool(!v.Bool())
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if v.CanSet() {
			v.SetInt(v.Int() + 1)
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if v.CanSet() {
			v.SetUint(v.Uint() + 1)
		}
	case reflect.Float32, reflect.Float64:
		if v.CanSet() {
			v.SetFloat(v.Float() + 1)
		}
	}
}

// TestHostSliceAnswersAsClone: a host's slice holds, for every VM placed on
// the host, moving from it or named by the agent, exactly what Clone
// holds; nothing of the other VMs; only the host's own report; every other
// field as Clone has it; and nothing shared with the original.
func TestHostSliceAnswersAsClone(t *testing.T) {
	s := NewState()
	n := 0
	fillAll(reflect.ValueOf(s).Elem(), 0, &n)
	hosts := []string{"h1", "h2", "h3"}
	for i := range 60 {
		name := fmt.Sprintf("vm%02d", i)
		s.Config.VMs[name] = &VM{Name: name, XML: "<domain/>", Disks: []string{"/d/" + name}}
		p := &Placement{VM: name, Host: hosts[i%3], Generation: uint64(i)}
		if i%7 == 0 {
			p.MigrateFrom = hosts[(i+1)%3]
		}
		s.Status.Placements[name] = p
	}
	for _, h := range hosts {
		s.Status.Observed[h] = &Observation{Host: h, VMs: map[string]VMObserve{"vm00": {State: "running"}}}
	}
	also := []string{"vm02", "vm05", "nosuchvm"}
	full, slice := s.Clone(), s.HostSlice("h1", also)
	want := map[string]bool{"vm02": true, "vm05": true}
	for name, p := range full.Status.Placements {
		if p.Host == "h1" || p.MigrateFrom == "h1" {
			want[name] = true
		}
	}
	for name := range full.Config.VMs {
		if !want[name] {
			if slice.Config.VMs[name] != nil || slice.Status.Placements[name] != nil {
				t.Errorf("%s is neither placed on h1 nor named, yet in the slice", name)
			}
			continue
		}
		if !reflect.DeepEqual(slice.Config.VMs[name], full.Config.VMs[name]) || !reflect.DeepEqual(slice.Status.Placements[name], full.Status.Placements[name]) {
			t.Errorf("%s: the slice answers otherwise than a clone", name)
		}
	}
	if len(slice.Status.Observed) != 1 || !reflect.DeepEqual(slice.Status.Observed["h1"], full.Status.Observed["h1"]) {
		t.Errorf("reports in the slice: %v", slice.Status.Observed)
	}
	rest := func(x *State) string {
		c := *x
		c.Config.VMs, c.Status.Placements, c.Status.Observed = nil, nil, nil
		b, _ := json.Marshal(c)
		return string(b)
	}
	if rest(slice) != rest(full) {
		t.Error("the slice's other fields differ from a clone's")
	}
	before := normal(t, s)
	mutate(reflect.ValueOf(slice).Elem())
	if normal(t, s) != before {
		t.Fatal("changing the slice changed the original")
	}
}
