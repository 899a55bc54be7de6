package model

import (
	"maps"
	"reflect"
	"sync"
	"time"
)

// Clone returns a deep copy of the state: no map, slice or pointer is
// shared with s, so the copy may be read without a lock and changed freely.
//
// It walks the types by reflection, so a field added to the model is copied
// without anyone remembering to add it here (TestCloneIsDeep checks it
// against a JSON round trip on a state with every field set). It replaces
// the JSON round trip the state machine used: at 50,000 VMs that took about
// a second per copy, and the coordinator copies the state several times a
// pass.
//
// The three maps that grow with the VMs (their definitions, placements
// and the hosts' reports) are copied by typed code around the same
// reflection: walking 50,000 of each by reflection was most of a copy
// (issue 17). cloneEach copies each struct by value and only its maps,
// slices and pointers by reflection; the reports' VM maps hold plain
// values and copy with maps.Clone.
func (s *State) Clone() *State {
	return s.cloneWith(s.Config.VMs, s.Status.Placements, s.Status.Observed)
}

// cloneWith is a deep copy of s with the three per-VM maps replaced by
// deep copies of the ones given (s's own, or a part of them).
func (s *State) cloneWith(vms map[string]*VM, placements map[string]*Placement, observed map[string]*Observation) *State {
	cp := *s
	cp.Config.VMs, cp.Status.Placements, cp.Status.Observed = nil, nil, nil
	out := deepCopy(reflect.ValueOf(&cp)).Interface().(*State)
	out.Config.VMs = cloneEach(vms)
	out.Status.Placements = cloneEach(placements)
	out.Status.Observed = cloneObserved(observed)
	out.Fill()
	return out
}

// HostSlice is a deep copy of the state as one host's agent needs it: the
// definitions and placements of the VMs placed on host or moving from it,
// and of the VMs named in also (the agent's hypervisor and memory), and
// host's own report; everything else whole. It costs one scan of the
// placements instead of a copy of every VM (issue 17: at 50,000 VMs each
// agent copied the whole state on every pass). For every VM it holds, it
// answers as Clone would (TestHostSliceAnswersAsClone).
func (s *State) HostSlice(host string, also []string) *State {
	keep := map[string]bool{}
	for name, p := range s.Status.Placements {
		if p != nil && (p.Host == host || p.MigrateFrom == host) {
			keep[name] = true
		}
	}
	for _, name := range also {
		keep[name] = true
	}
	return s.cloneWith(pick(s.Config.VMs, keep), pick(s.Status.Placements, keep), pick(s.Status.Observed, map[string]bool{host: true}))
}

// pick is the entries of m whose keys are in keep (shared, not copied).
func pick[V any](m map[string]V, keep map[string]bool) map[string]V {
	out := make(map[string]V, len(keep))
	for k := range keep {
		if v, ok := m[k]; ok {
			out[k] = v
		}
	}
	return out
}

// cloneEach deep-copies a map of pointers to structs.
func cloneEach[T any](m map[string]*T) map[string]*T {
	if m == nil {
		return nil
	}
	deep := deepFields(reflect.TypeFor[T]())
	out := make(map[string]*T, len(m))
	for k, v := range m {
		if v == nil {
			out[k] = nil
			continue
		}
		c := new(T)
		*c = *v
		if len(deep) > 0 {
			dst, src := reflect.ValueOf(c).Elem(), reflect.ValueOf(v).Elem()
			for _, i := range deep {
				if f := src.Field(i); !f.IsZero() {
					dst.Field(i).Set(deepCopy(f))
				}
			}
		}
		out[k] = c
	}
	return out
}

// cloneObserved deep-copies the hosts' reports: an Observation holds one
// map (VMs) of plain values (TestCloneIsDeep fails if that changes).
func cloneObserved(m map[string]*Observation) map[string]*Observation {
	if m == nil {
		return nil
	}
	out := make(map[string]*Observation, len(m))
	for k, o := range m {
		if o == nil {
			out[k] = nil
			continue
		}
		c := *o
		c.VMs = maps.Clone(o.VMs)
		out[k] = &c
	}
	return out
}

// deepFieldsOf caches, per struct type, the settable fields that are not
// plain (maps, slices, pointers, or structs holding them).
var deepFieldsOf sync.Map

func deepFields(t reflect.Type) []int {
	if d, ok := deepFieldsOf.Load(t); ok {
		return d.([]int)
	}
	var d []int
	for i := range t.NumField() {
		if f := t.Field(i); f.IsExported() && !isPlain(f.Type) {
			d = append(d, i)
		}
	}
	deepFieldsOf.Store(t, d)
	return d
}

var timeType = reflect.TypeFor[time.Time]()

func deepCopy(v reflect.Value) reflect.Value {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return reflect.Zero(v.Type())
		}
		p := reflect.New(v.Type().Elem())
		if isPlain(v.Type().Elem()) {
			p.Elem().Set(v.Elem())
		} else {
			p.Elem().Set(deepCopy(v.Elem()))
		}
		return p
	case reflect.Map:
		if v.IsNil() {
			return reflect.Zero(v.Type())
		}
		m := reflect.MakeMapWithSize(v.Type(), v.Len())
		plain := isPlain(v.Type().Elem())
		it := v.MapRange()
		for it.Next() {
			if plain {
				m.SetMapIndex(it.Key(), it.Value())
			} else {
				m.SetMapIndex(it.Key(), deepCopy(it.Value()))
			}
		}
		return m
	case reflect.Slice:
		if v.IsNil() {
			return reflect.Zero(v.Type())
		}
		sl := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		if isPlain(v.Type().Elem()) {
			reflect.Copy(sl, v)
			return sl
		}
		for i := range v.Len() {
			sl.Index(i).Set(deepCopy(v.Index(i)))
		}
		return sl
	case reflect.Struct:
		if isPlain(v.Type()) {
			return v
		}
		c := reflect.New(v.Type()).Elem()
		c.Set(v) // every field, exported or not, by value
		if v.Type() == timeType {
			return c // a value: its location pointer is shared and immutable
		}
		for i := range v.NumField() {
			if f := c.Field(i); f.CanSet() && !isPlain(f.Type()) {
				f.Set(deepCopy(v.Field(i)))
			}
		}
		return c
	case reflect.Interface:
		if v.IsNil() {
			return reflect.Zero(v.Type())
		}
		return deepCopy(v.Elem())
	}
	return v // bool, numbers, strings: values
}

// plainTypes caches, per type, whether it holds no map, slice or pointer,
// so that its values copy as they are.
var plainTypes sync.Map

func isPlain(t reflect.Type) bool {
	if p, ok := plainTypes.Load(t); ok {
		return p.(bool)
	}
	p := plainOf(t)
	plainTypes.Store(t, p)
	return p
}

func plainOf(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Interface:
		return false
	case reflect.Struct:
		if t == timeType {
			return true
		}
		for i := range t.NumField() {
			if !isPlain(t.Field(i).Type) {
				return false
			}
		}
		return true
	case reflect.Array:
		return isPlain(t.Elem())
	}
	return true
}
