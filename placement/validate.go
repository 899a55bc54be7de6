package placement

import (
	"errors"
	"fmt"
)

// Validate reports every problem in the input, each naming the item it is
// about. The engine refuses an input that does not validate, so a bad
// configuration never yields a plan.
func Validate(in *Input) error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	hosts := map[string]bool{}
	for i, h := range in.Hosts {
		switch {
		case h.Name == "":
			bad("host %d: no name", i+1)
		case hosts[h.Name]:
			bad("host %q: defined twice", h.Name)
		}
		hosts[h.Name] = true
		for k, v := range h.Capacity {
			if v < 0 {
				bad("host %q: capacity %s is negative (%d)", h.Name, k, v)
			}
		}
	}
	vms := map[string]bool{}
	for i, v := range in.VMs {
		switch {
		case v.Name == "":
			bad("vm %d: no name", i+1)
		case vms[v.Name]:
			bad("vm %q: defined twice", v.Name)
		}
		vms[v.Name] = true
		for k, u := range v.Utilization {
			if u < 0 {
				bad("vm %q: utilization %s is negative (%d)", v.Name, k, u)
			}
		}
		switch v.Target {
		case "", Started, Stopped:
		default:
			bad("vm %q: target state %q: want started or stopped", v.Name, v.Target)
		}
		if v.MigrationThreshold < 0 {
			bad("vm %q: migration-threshold %d is negative", v.Name, v.MigrationThreshold)
		}
		if v.FailureTimeout < 0 {
			bad("vm %q: failure-timeout %v is negative", v.Name, v.FailureTimeout)
		}
		for _, f := range v.Failures {
			if !hosts[f.Host] && f.Host != "" {
				// Failures on hosts no longer configured are harmless, but
				// a typo would silently lose a ban: name it.
				bad("vm %q: failure on unknown host %q", v.Name, f.Host)
			}
			if f.Count < 0 {
				bad("vm %q: fail count on %q is negative", v.Name, f.Host)
			}
		}
	}
	// Failures are checked after all hosts are known; redo host membership
	// for VMs listed before hosts is not needed since hosts come first.
	for i, l := range in.Locations {
		if !vms[l.VM] {
			bad("location %d: unknown vm %q", i+1, l.VM)
		}
		if !hosts[l.Host] {
			bad("location %d (vm %q): unknown host %q", i+1, l.VM, l.Host)
		}
	}
	for i, r := range in.LocationRules {
		if !vms[r.VM] {
			bad("location rule %d: unknown vm %q", i+1, r.VM)
		}
		if err := ValidateRule(r.Rule, fmt.Sprintf("location rule %d (vm %q)", i+1, r.VM)); err != nil {
			errs = append(errs, err)
		}
	}
	for i, c := range in.Colocations {
		if !vms[c.VM] {
			bad("colocation %d: unknown vm %q", i+1, c.VM)
		}
		if !vms[c.With] {
			bad("colocation %d (vm %q): unknown vm %q to colocate with", i+1, c.VM, c.With)
		}
		if c.VM == c.With {
			bad("colocation %d: vm %q colocated with itself", i+1, c.VM)
		}
	}
	if err := checkMandatoryColocations(in.Colocations); err != nil {
		errs = append(errs, err)
	}
	switch in.Policy.Strategy {
	case "", StrategyDefault, StrategyUtilization, StrategyMinimal, StrategyBalanced:
	default:
		bad("policy: placement strategy %q: want default, utilization, minimal or balanced", in.Policy.Strategy)
	}
	if in.Policy.MigrationLimit < 0 {
		bad("policy: migration limit %d is negative", in.Policy.MigrationLimit)
	}
	return errors.Join(errs...)
}

// checkMandatoryColocations finds VMs that +INFINITY colocations tie to
// one host while a -INFINITY colocation keeps them apart: no placement
// can run both, which is a configuration error rather than a stopped VM.
func checkMandatoryColocations(cs []Colocation) error {
	parent := map[string]string{}
	var find func(string) string
	find = func(x string) string {
		p, ok := parent[x]
		if !ok || p == x {
			return x
		}
		r := find(p)
		parent[x] = r
		return r
	}
	for _, c := range cs {
		if c.Score >= Infinity && c.VM != c.With {
			parent[find(c.VM)] = find(c.With)
		}
	}
	for i, c := range cs {
		if c.Score <= -Infinity && c.VM != c.With && find(c.VM) == find(c.With) {
			return fmt.Errorf("colocation %d: vm %q must avoid vm %q (-INFINITY), but +INFINITY colocations put them on the same host: unsatisfiable", i+1, c.VM, c.With)
		}
	}
	return nil
}
