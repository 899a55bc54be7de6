package main

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
)

// jsonLists returns v with every nil slice and map that JSON would print as
// null made empty, so that -o json prints [] and {} for an empty list or
// set, never null, whatever path built the value (a decoded answer, a
// literal). Fields tagged omitempty or omitzero are left as they are (they
// are absent when empty); pointers stay null where they are nil ("no such
// thing", e.g. vmha plan's "from": null); []byte (base64,
// json.RawMessage) is untouched. v itself is not changed.
func jsonLists(v any) any {
	if v == nil {
		return nil
	}
	return fillLists(reflect.ValueOf(v), true).Interface()
}

var noLists = map[reflect.Kind]bool{reflect.Bool: true, reflect.Int: true, reflect.Int8: true, reflect.Int16: true, reflect.Int32: true,
	reflect.Int64: true, reflect.Uint: true, reflect.Uint8: true, reflect.Uint16: true, reflect.Uint32: true, reflect.Uint64: true,
	reflect.Float32: true, reflect.Float64: true, reflect.String: true}

// fillLists is jsonLists on a reflect.Value; empty says whether a nil
// slice or map here is made empty.
func fillLists(v reflect.Value, empty bool) reflect.Value {
	t := v.Type()
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return v
		}
		p := reflect.New(t.Elem())
		p.Elem().Set(fillLists(v.Elem(), true))
		return p
	case reflect.Interface:
		if v.IsNil() {
			return v
		}
		out := reflect.New(t).Elem()
		out.Set(fillLists(v.Elem(), true))
		return out
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return v
		}
		if v.IsNil() {
			if empty {
				return reflect.MakeSlice(t, 0, 0)
			}
			return v
		}
		if noLists[t.Elem().Kind()] {
			return v
		}
		out := reflect.MakeSlice(t, v.Len(), v.Len())
		for i := range v.Len() {
			out.Index(i).Set(fillLists(v.Index(i), true))
		}
		return out
	case reflect.Array:
		out := reflect.New(t).Elem()
		for i := range v.Len() {
			out.Index(i).Set(fillLists(v.Index(i), true))
		}
		return out
	case reflect.Map:
		if v.IsNil() {
			if empty {
				return reflect.MakeMap(t)
			}
			return v
		}
		if noLists[t.Elem().Kind()] {
			return v
		}
		out := reflect.MakeMapWithSize(t, v.Len())
		for it := v.MapRange(); it.Next(); {
			out.SetMapIndex(it.Key(), fillLists(it.Value(), true))
		}
		return out
	case reflect.Struct:
		out := reflect.New(t).Elem()
		out.Set(v) // unexported fields (time.Time's) as they are
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			tag := f.Tag.Get("json")
			if tag == "-" {
				continue
			}
			_, opts, _ := strings.Cut(tag, ",")
			omit := strings.Contains(","+opts+",", ",omitempty,") || strings.Contains(","+opts+",", ",omitzero,")
			out.Field(i).Set(fillLists(v.Field(i), !omit))
		}
		return out
	}
	return v
}

// jsonVersion is the version of the contract of -o json (README, "JSON
// output"): every document that is an object carries it as "json_version";
// an array's is the one vmha version -o json prints. Adding a field does
// not change it; renaming or removing one, changing a field's type or
// meaning, or turning an object into an array (or back) does.
const jsonVersion = 1

// versionedJSON is v as compact JSON, its empty lists as [] (jsonLists),
// with "json_version" as the first field when it is an object. Arrays (and
// the rare scalar) stay as they are.
func versionedJSON(v any) ([]byte, error) {
	b, err := json.Marshal(jsonLists(v))
	if err != nil {
		return nil, err
	}
	if len(b) == 0 || b[0] != '{' {
		return b, nil
	}
	head := fmt.Sprintf(`{"json_version":%d`, jsonVersion)
	if string(b) == "{}" {
		return []byte(head + "}"), nil
	}
	return append([]byte(head+","), b[1:]...), nil
}
