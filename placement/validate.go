package placement

import (
	"errors"
	"fmt"
)

// Validate reports every problem in the input, each naming the item it is
// about. The engine refuses an input that does not validate, so a bad
// configuration never yields a plan.
func Validate(in *Input) error {
	var p problems
	hosts := p.checkHosts(in.Hosts)
	vms := p.checkVMs(in.VMs, hosts)
	p.checkConstraints(in, hosts, vms)
	switch in.Policy.Strategy {
	case "", StrategyDefault, StrategyUtilization, StrategyMinimal, StrategyBalanced:
	default:
		p.bad("policy: placement strategy %q: want default, utilization, minimal or balanced", in.Policy.Strategy)
	}
	if in.Policy.MigrationLimit < 0 {
		p.bad("policy: migration limit %d is negative", in.Policy.MigrationLimit)
	}
	return errors.Join(p.errs...)
}

// problems collects Validate's findings in order.
type problems struct{ errs []error }

func (p *problems) bad(format string, a ...any) { p.errs = append(p.errs, fmt.Errorf(format, a...)) }

func (p *problems) add(err error) {
	if err != nil {
		p.errs = append(p.errs, err)
	}
}

// checkHosts checks names and capacities and returns the set of names.
func (p *problems) checkHosts(hs []HostInfo) map[string]bool {
	hosts := make(map[string]bool, len(hs))
	for i, h := range hs {
		switch {
		case h.Name == "":
			p.bad("host %d: no name", i+1)
		case hosts[h.Name]:
			p.bad("host %q: defined twice", h.Name)
		}
		hosts[h.Name] = true
		for k, v := range h.Capacity {
			if v < 0 {
				p.bad("host %q: capacity %s is negative (%d)", h.Name, k, v)
			}
		}
	}
	return hosts
}

// checkVMs checks each VM against the known hosts and returns the set of
// names.
func (p *problems) checkVMs(vs []VMInfo, hosts map[string]bool) map[string]bool {
	vms := make(map[string]bool, len(vs))
	for i, v := range vs {
		switch {
		case v.Name == "":
			p.bad("vm %d: no name", i+1)
		case vms[v.Name]:
			p.bad("vm %q: defined twice", v.Name)
		}
		vms[v.Name] = true
		p.checkVM(v, hosts)
	}
	return vms
}

func (p *problems) checkVM(v VMInfo, hosts map[string]bool) {
	for k, u := range v.Utilization {
		if u < 0 {
			p.bad("vm %q: utilization %s is negative (%d)", v.Name, k, u)
		}
	}
	switch v.Target {
	case "", Started, Stopped:
	default:
		p.bad("vm %q: target state %q: want started or stopped", v.Name, v.Target)
	}
	if v.MigrationThreshold < 0 {
		p.bad("vm %q: migration-threshold %d is negative", v.Name, v.MigrationThreshold)
	}
	if v.FailureTimeout < 0 {
		p.bad("vm %q: failure-timeout %v is negative", v.Name, v.FailureTimeout)
	}
	for _, f := range v.Failures {
		if !hosts[f.Host] && f.Host != "" {
			// Failures on hosts no longer configured are harmless, but
			// a typo would silently lose a ban: name it.
			p.bad("vm %q: failure on unknown host %q", v.Name, f.Host)
		}
		if f.Count < 0 {
			p.bad("vm %q: fail count on %q is negative", v.Name, f.Host)
		}
	}
}

// checkConstraints checks that locations, rules and colocations name known
// VMs and hosts, and that the mandatory colocations can be satisfied.
func (p *problems) checkConstraints(in *Input, hosts, vms map[string]bool) {
	for i, l := range in.Locations {
		if !vms[l.VM] {
			p.bad("location %d: unknown vm %q", i+1, l.VM)
		}
		if !hosts[l.Host] {
			p.bad("location %d (vm %q): unknown host %q", i+1, l.VM, l.Host)
		}
	}
	for i := range in.LocationRules {
		r := &in.LocationRules[i]
		if !vms[r.VM] {
			p.bad("location rule %d: unknown vm %q", i+1, r.VM)
		}
		p.add(validateRule(&r.Rule, func() string { return fmt.Sprintf("location rule %d (vm %q)", i+1, r.VM) }))
	}
	for i, c := range in.Colocations {
		if !vms[c.VM] {
			p.bad("colocation %d: unknown vm %q", i+1, c.VM)
		}
		if !vms[c.With] {
			p.bad("colocation %d (vm %q): unknown vm %q to colocate with", i+1, c.VM, c.With)
		}
		if c.VM == c.With {
			p.bad("colocation %d: vm %q colocated with itself", i+1, c.VM)
		}
	}
	p.add(checkMandatoryColocations(in.Colocations))
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
