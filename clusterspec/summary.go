package clusterspec

import (
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/vmha/vmha/placement"
)

// maxSummary bounds Summarize's line.
const maxSummary = 160

// Summarize says in one line what changed from the rules prev to cur
// (vmha rules history): the policy, hosts and VMs added, removed or
// changed, and the constraints added and removed, each named.
func Summarize(prev, cur string) string {
	switch {
	case cur == "" && prev == "":
		return "no rules"
	case cur == "":
		return "rules cleared"
	case prev == cur:
		return "no change"
	}
	b, err := Parse([]byte(cur))
	if err != nil {
		return fmt.Sprintf("%d lines (%v)", strings.Count(cur, "\n"), err)
	}
	if prev == "" {
		return fmt.Sprintf("first rules: %d hosts, %d VMs, %d locations, %d colocations",
			len(b.Hosts), len(b.VMs), len(b.Constraints.Locations), len(b.Constraints.Colocations))
	}
	a, err := Parse([]byte(prev))
	if err != nil {
		a = &Spec{}
	}
	var parts []string
	if !reflect.DeepEqual(a.Policy, b.Policy) {
		parts = append(parts, "policy changed")
	}
	parts = append(parts, named("host", hostsByName(a.Hosts), hostsByName(b.Hosts))...)
	parts = append(parts, named("vm", vmsByName(a.VMs), vmsByName(b.VMs))...)
	parts = append(parts, items(a.Constraints.Locations, b.Constraints.Locations, describeLocation)...)
	parts = append(parts, items(a.Constraints.Colocations, b.Constraints.Colocations, describeColocation)...)
	if len(parts) == 0 {
		return "layout or comments only"
	}
	s := strings.Join(parts, "; ")
	if len(s) > maxSummary {
		s = s[:maxSummary-3] + "..."
	}
	return s
}

func hostsByName(hs []Host) map[string]any {
	m := map[string]any{}
	for _, h := range hs {
		m[h.Name] = h
	}
	return m
}

func vmsByName(vs []VM) map[string]any {
	m := map[string]any{}
	for _, v := range vs {
		m[v.Name] = v
	}
	return m
}

// named describes hosts or VMs added, removed and changed by name.
func named(kind string, a, b map[string]any) []string {
	var added, removed, changed []string
	for n, bv := range b {
		av, ok := a[n]
		switch {
		case !ok:
			added = append(added, n)
		case !reflect.DeepEqual(av, bv):
			changed = append(changed, n)
		}
	}
	for n := range a {
		if _, ok := b[n]; !ok {
			removed = append(removed, n)
		}
	}
	var out []string
	for _, g := range []struct {
		what  string
		names []string
	}{{"added", added}, {"removed", removed}, {"changed", changed}} {
		if len(g.names) == 0 {
			continue
		}
		sort.Strings(g.names)
		k := kind
		if len(g.names) > 1 {
			k += "s"
		}
		out = append(out, fmt.Sprintf("%s %s %s", k, strings.Join(g.names, ", "), g.what))
	}
	return out
}

// items describes the constraints only in b ("+") and only in a ("-"),
// counting duplicates.
func items[T any](a, b []T, describe func(T) string) []string {
	count := map[string]int{}
	for _, x := range a {
		count[describe(x)]--
	}
	for _, x := range b {
		count[describe(x)]++
	}
	var plus, minus []string
	for d, n := range count {
		for ; n > 0; n-- {
			plus = append(plus, "+"+d)
		}
		for ; n < 0; n++ {
			minus = append(minus, "-"+d)
		}
	}
	sort.Strings(plus)
	sort.Strings(minus)
	return append(plus, minus...)
}

func describeLocation(l Location) string {
	if l.Rule != nil {
		b, _ := Marshal(l.Rule)
		return fmt.Sprintf("location rule of %s (%s)", l.VM, strings.Join(strings.Fields(string(b)), " "))
	}
	sc := "?"
	if l.Score != nil {
		sc = placement.Score(*l.Score).String()
	}
	return fmt.Sprintf("location %s on %s %s", l.VM, l.Host, sc)
}

func describeColocation(c Colocation) string {
	return fmt.Sprintf("colocation %s with %s %s", c.VM, c.With, placement.Score(c.Score).String())
}
