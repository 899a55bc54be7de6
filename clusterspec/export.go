package clusterspec

import (
	"bytes"

	"go.yaml.in/yaml/v3"

	"github.com/vmha/vmha/placement"
)

// FromInput writes a placement model as cluster.yaml and status.yaml, for
// operators who migrate from another manager (vmha import pacemaker).
func FromInput(in *placement.Input) (*Spec, *Status) {
	s := &Spec{}
	if in.Policy.DefaultStickiness != 0 {
		ds := Score(in.Policy.DefaultStickiness)
		s.Policy.DefaultStickiness = &ds
	}
	s.Policy.PlacementStrategy = string(in.Policy.Strategy)
	if in.Policy.OptIn {
		f := false
		s.Policy.SymmetricCluster = &f
	}
	s.Policy.MigrationLimit = in.Policy.MigrationLimit
	st := &Status{Now: in.Now, Hosts: map[string]HostStatus{}, VMs: map[string]VMStatus{}}
	for _, h := range in.Hosts {
		s.Hosts = append(s.Hosts, Host{Name: h.Name, Capacity: h.Capacity, Attributes: h.Attributes, Standby: h.Standby, Maintenance: h.Maintenance})
		switch h.Condition {
		case placement.Lost:
			st.Hosts[h.Name] = HostStatus{State: "lost"}
		case placement.Released:
			st.Hosts[h.Name] = HostStatus{State: "fenced"}
		case placement.Offline:
			st.Hosts[h.Name] = HostStatus{State: "offline"}
		}
	}
	for _, v := range in.VMs {
		vm := VM{Name: v.Name, Utilization: v.Utilization, Priority: v.Priority, AllowMigrate: v.AllowMigrate,
			FailureTimeout: Duration(v.FailureTimeout)}
		vm.TargetState = string(v.Target)
		if v.Stickiness != nil {
			sc := Score(*v.Stickiness)
			vm.Stickiness = &sc
		}
		if v.MigrationThreshold > 0 {
			mt := Score(v.MigrationThreshold)
			vm.MigrationThreshold = &mt
		}
		if v.Unmanaged {
			f := false
			vm.Managed = &f
		}
		s.VMs = append(s.VMs, vm)
		if v.Current != "" || len(v.Failures) > 0 {
			vs := VMStatus{Host: v.Current}
			for _, f := range v.Failures {
				vs.Failures = append(vs.Failures, Failure{Host: f.Host, Count: f.Count, Last: f.Last})
			}
			st.VMs[v.Name] = vs
		}
	}
	for _, l := range in.Locations {
		sc := Score(l.Score)
		s.Constraints.Locations = append(s.Constraints.Locations, Location{VM: l.VM, Host: l.Host, Score: &sc})
	}
	for _, r := range in.LocationRules {
		rr := exportRule(r.Rule, true)
		s.Constraints.Locations = append(s.Constraints.Locations, Location{VM: r.VM, Rule: &rr})
	}
	for _, c := range in.Colocations {
		s.Constraints.Colocations = append(s.Constraints.Colocations, Colocation{VM: c.VM, With: c.With, Score: Score(c.Score)})
	}
	return s, st
}

func exportRule(r placement.Rule, top bool) Rule {
	out := Rule{ScoreAttribute: r.ScoreAttribute, BooleanOp: r.BoolOp}
	if top && r.ScoreAttribute == "" {
		sc := Score(r.Score)
		out.Score = &sc
	}
	for _, e := range r.Expressions {
		out.Expressions = append(out.Expressions, Expression{Attribute: e.Attribute, Operation: e.Operation, Value: e.Value, Type: e.Type})
	}
	for _, sub := range r.Rules {
		out.Rules = append(out.Rules, exportRule(sub, false))
	}
	return out
}

// Marshal writes v as YAML with two-space indentation.
func Marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	err := enc.Close()
	return b.Bytes(), err
}
