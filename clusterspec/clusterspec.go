// Package clusterspec reads cluster.yaml (hosts, VMs, constraints,
// policies) and status.yaml (where VMs run, host states, live attributes,
// fail counts) into the placement engine's model. Decoding is strict: an
// unknown key is an error that names it, and the result is validated
// before anything uses it.
package clusterspec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"go.yaml.in/yaml/v3"

	"github.com/vmha/vmha/placement"
)

// Spec is cluster.yaml.
type Spec struct {
	Policy      Policy      `yaml:"policy,omitempty"`
	Hosts       []Host      `yaml:"hosts"`
	VMs         []VM        `yaml:"vms"`
	Constraints Constraints `yaml:"constraints,omitempty"`
}

// Policy holds the cluster-wide options.
type Policy struct {
	DefaultStickiness *Score `yaml:"default-stickiness,omitempty"`
	PlacementStrategy string `yaml:"placement-strategy,omitempty"`
	// SymmetricCluster false makes the cluster opt-in. Default true.
	SymmetricCluster *bool `yaml:"symmetric-cluster,omitempty"`
	MigrationLimit   int   `yaml:"migration-limit,omitempty"`
	// OnForbidden is what a running VM does when its host becomes
	// -INFINITY for it and it cannot move live: restart (the default,
	// as Pacemaker: stopped there, started elsewhere) or stay.
	OnForbidden string `yaml:"on-forbidden,omitempty"`
	// Node health, as Pacemaker's cluster options of the same names
	// (clusterspec/health.go, docs/health.md).
	NodeHealthStrategy string `yaml:"node-health-strategy,omitempty"`
	NodeHealthBase     *Score `yaml:"node-health-base,omitempty"`
	NodeHealthGreen    *Score `yaml:"node-health-green,omitempty"`
	NodeHealthYellow   *Score `yaml:"node-health-yellow,omitempty"`
	NodeHealthRed      *Score `yaml:"node-health-red,omitempty"`
	// NodeHealthRecovery is manual (the default: a host whose health
	// sent VMs away is held until an operator clears it) or auto.
	NodeHealthRecovery string `yaml:"node-health-recovery,omitempty"`
}

// Host is one hypervisor host.
type Host struct {
	Name        string            `yaml:"name"`
	Capacity    map[string]int64  `yaml:"capacity,omitempty"`
	Attributes  map[string]string `yaml:"attributes,omitempty"`
	Standby     bool              `yaml:"standby,omitempty"`
	Maintenance bool              `yaml:"maintenance,omitempty"`
}

// VM is one virtual machine.
type VM struct {
	Name string `yaml:"name"`
	// Domain is the path of the libvirt domain XML; placement does not
	// read it.
	Domain     string `yaml:"domain,omitempty"`
	Hypervisor string `yaml:"hypervisor,omitempty"`
	// Utilization; when empty, vmha takes memory and vCPUs from the
	// domain XML (outside this package).
	Utilization        map[string]int64 `yaml:"utilization,omitempty"`
	Priority           int              `yaml:"priority,omitempty"`
	TargetState        string           `yaml:"target-state,omitempty"`
	AllowMigrate       bool             `yaml:"allow-migrate,omitempty"`
	Stickiness         *Score           `yaml:"stickiness,omitempty"`
	MigrationThreshold *Score           `yaml:"migration-threshold,omitempty"`
	FailureTimeout     Duration         `yaml:"failure-timeout,omitempty"`
	// Managed false leaves the VM alone. Default true.
	Managed *bool `yaml:"managed,omitempty"`
	// OnForbidden overrides the policy's on-forbidden for this VM.
	OnForbidden string `yaml:"on-forbidden,omitempty"`
	// Guest health (clusterspec/guest.go, docs/guest-health.md).
	GuestMonitor          string   `yaml:"guest-monitor,omitempty"`
	GuestHeartbeatTimeout Duration `yaml:"guest-heartbeat-timeout,omitempty"`
	// GuestHeartbeatStartup is how long a started guest whose agent has
	// not answered yet may stay silent (the boot; vSphere's "minimum
	// uptime"); the timeout applies once it has answered.
	GuestHeartbeatStartup Duration `yaml:"guest-heartbeat-startup,omitempty"`
	GuestMaxRestarts      *int     `yaml:"guest-max-restarts,omitempty"`
	GuestRestartWindow    Duration `yaml:"guest-restart-window,omitempty"`
}

// Constraints are the placement constraints.
type Constraints struct {
	Locations   []Location   `yaml:"locations,omitempty"`
	Colocations []Colocation `yaml:"colocations,omitempty"`
}

// Location is either a host and a score, or a rule.
type Location struct {
	VM    string `yaml:"vm"`
	Host  string `yaml:"host,omitempty"`
	Score *Score `yaml:"score,omitempty"`
	Rule  *Rule  `yaml:"rule,omitempty"`
}

// Rule is a location rule over host attributes.
type Rule struct {
	Score          *Score       `yaml:"score,omitempty"`
	ScoreAttribute string       `yaml:"score-attribute,omitempty"`
	BooleanOp      string       `yaml:"boolean-op,omitempty"`
	Expressions    []Expression `yaml:"expressions,omitempty"`
	Rules          []Rule       `yaml:"rules,omitempty"`
}

// Expression compares a host attribute (or #uname) with a value.
type Expression struct {
	Attribute string `yaml:"attribute"`
	Operation string `yaml:"operation"`
	Value     string `yaml:"value,omitempty"`
	Type      string `yaml:"type,omitempty"`
}

// Colocation places VM with (positive score) or away from (negative) With.
type Colocation struct {
	VM    string `yaml:"vm"`
	With  string `yaml:"with"`
	Score Score  `yaml:"score"`
}

// Score is a placement.Score written as an integer or [+-]INFINITY.
type Score placement.Score

// UnmarshalYAML reads an integer or INFINITY.
func (s *Score) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: a score must be an integer or INFINITY", n.Line)
	}
	v, err := placement.ParseScore(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*s = Score(v)
	return nil
}

// MarshalYAML writes INFINITY as the string Pacemaker uses.
func (s Score) MarshalYAML() (any, error) {
	ps := placement.Score(s)
	if ps >= placement.Infinity || ps <= -placement.Infinity {
		return ps.String(), nil
	}
	return int64(ps), nil
}

// Duration is a Go duration ("10m", "1h30m") or a number of seconds.
type Duration time.Duration

// UnmarshalYAML reads "10m" or 600.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: a duration must be like 10m or a number of seconds", n.Line)
	}
	if secs, err := strconv.ParseInt(n.Value, 10, 64); err == nil {
		if secs < 0 {
			return fmt.Errorf("line %d: duration %q is negative", n.Line, n.Value)
		}
		*d = Duration(time.Duration(secs) * time.Second)
		return nil
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil || v < 0 {
		return fmt.Errorf("line %d: duration %q: want like 10m or a number of seconds", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as Go prints it.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// IsZero lets omitempty drop a zero duration.
func (d Duration) IsZero() bool { return d == 0 }

// Status is status.yaml: the live side of the cluster.
type Status struct {
	// Now is the time failure timeouts are measured against; when empty
	// the caller supplies the clock.
	Now   time.Time             `yaml:"now,omitempty"`
	Hosts map[string]HostStatus `yaml:"hosts,omitempty"`
	VMs   map[string]VMStatus   `yaml:"vms,omitempty"`
}

// HostStatus is a host's live state.
type HostStatus struct {
	// State is up (the default), lost (failed, not fenced), fenced, or
	// offline (left cleanly).
	State       string            `yaml:"state,omitempty"`
	Attributes  map[string]string `yaml:"attributes,omitempty"`
	Standby     *bool             `yaml:"standby,omitempty"`
	Maintenance *bool             `yaml:"maintenance,omitempty"`
}

// VMStatus is where a VM runs and how it failed.
type VMStatus struct {
	Host     string    `yaml:"host,omitempty"`
	Failures []Failure `yaml:"failures,omitempty"`
}

// Failure is a fail count on a host.
type Failure struct {
	Host  string    `yaml:"host"`
	Count int       `yaml:"count"`
	Last  time.Time `yaml:"last,omitempty"`
}

// maxInput bounds what we read: a cluster.yaml of 50,000 VMs is a few MiB.
const maxInput = 64 << 20

func decodeStrict(data []byte, v any) error {
	if len(data) > maxInput {
		return fmt.Errorf("%d bytes, more than the %d allowed", len(data), maxInput)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("empty document")
		}
		return friendly(err)
	}
	// A second document is almost always a paste error.
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return errors.New("more than one YAML document")
	}
	return nil
}

// friendly rewrites yaml.v3's "field x not found in type y" into words
// that name the key.
func friendly(err error) error {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "yaml: unmarshal errors:\n  ")
	if i := strings.Index(msg, ": field "); i >= 0 {
		rest := msg[i+len(": field "):]
		if j := strings.Index(rest, " not found in type"); j >= 0 {
			return fmt.Errorf("%s: unknown key %q", msg[:i], rest[:j])
		}
	}
	return errors.New(strings.ReplaceAll(msg, "\n  ", "; "))
}

// Parse reads and validates cluster.yaml.
func Parse(data []byte) (*Spec, error) {
	s, err := Decode(data)
	if err != nil {
		return nil, err
	}
	if _, err := s.Input(nil); err != nil {
		return nil, err
	}
	return s, nil
}

// Decode reads cluster.yaml without validating it: the caller validates
// with Input, as vmha plan does (Input with a status checks all that
// Parse does, and more).
func Decode(data []byte) (*Spec, error) {
	if len(data) <= maxInput {
		if s, err := fastSpec(string(data)); err == nil {
			return s, nil
		}
	}
	return decodeSlow(data)
}

// DecodeOwned is Decode for a caller that hands data over: the Spec's
// strings share data's memory instead of a copy of it (20 MB at 50,000
// VMs, a tenth of reading the file), so data must not be changed
// afterwards. vmha plan reads the file into data for this alone.
func DecodeOwned(data []byte) (*Spec, error) {
	if len(data) > 0 && len(data) <= maxInput {
		if s, err := fastSpec(unsafe.String(&data[0], len(data))); err == nil {
			return s, nil
		}
	}
	return decodeSlow(data)
}

// decodeSlow is Decode by yaml.v3: anything the fast reader leaves, and
// every error.
func decodeSlow(data []byte) (*Spec, error) {
	var s Spec
	if err := decodeStrict(data, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// ParseStatus reads status.yaml.
func ParseStatus(data []byte) (*Status, error) {
	if len(data) <= maxInput {
		if st, err := fastStatus(string(data)); err == nil {
			return st, nil
		}
	}
	var st Status
	if err := decodeStrict(data, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

var hostStates = map[string]placement.HostCondition{
	"": placement.Usable, "up": placement.Usable, "lost": placement.Lost,
	"fenced": placement.Released, "offline": placement.Offline,
}

// Input builds and validates the engine's input from the spec and an
// optional status.
//
// With a status the file is the whole world (vmha plan): its constraints
// may name only the hosts and VMs it describes. Without one it is the
// placement rules of a running cluster, whose hosts and VMs come from the
// cluster itself (registration, vmha vm add): the file describes only what
// placement needs to know about some of them, so its constraints may name
// hosts and VMs it does not describe, and the cluster checks those names
// against its members when the rules are applied. Everything else is
// checked alike.
func (s *Spec) Input(st *Status) (placement.Input, error) {
	var in placement.Input
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	p := s.Policy
	if p.DefaultStickiness != nil {
		in.Policy.DefaultStickiness = placement.Score(*p.DefaultStickiness)
	}
	in.Policy.Strategy = placement.Strategy(p.PlacementStrategy)
	in.Policy.OptIn = p.SymmetricCluster != nil && !*p.SymmetricCluster
	in.Policy.MigrationLimit = p.MigrationLimit
	if !validOnForbidden(p.OnForbidden) {
		bad("policy: on-forbidden %q: want restart or stay", p.OnForbidden)
	}
	if err := p.validateHealth(); err != nil {
		errs = append(errs, err)
	}

	// Sized up front (and left nil when empty, as before): at 50,000 VMs
	// growing these slices costs more than filling them.
	nrules := 0
	for _, l := range s.Constraints.Locations {
		if l.Rule != nil {
			nrules++
		}
	}
	in.Hosts = makeCap[placement.HostInfo](len(s.Hosts))
	in.VMs = makeCap[placement.VMInfo](len(s.VMs))
	in.LocationRules = makeCap[placement.LocationRule](nrules)
	in.Locations = makeCap[placement.Location](len(s.Constraints.Locations) - nrules)
	for _, h := range s.Hosts {
		hi := placement.HostInfo{Name: h.Name, Capacity: h.Capacity, Standby: h.Standby, Maintenance: h.Maintenance,
			Attributes: map[string]string{}}
		for k, v := range h.Attributes {
			hi.Attributes[k] = v
		}
		in.Hosts = append(in.Hosts, hi)
	}
	for _, v := range s.VMs {
		vi := placement.VMInfo{Name: v.Name, Utilization: v.Utilization, Priority: v.Priority,
			Target: placement.TargetState(v.TargetState), AllowMigrate: v.AllowMigrate,
			FailureTimeout: time.Duration(v.FailureTimeout), Unmanaged: v.Managed != nil && !*v.Managed}
		if v.Stickiness != nil {
			sc := placement.Score(*v.Stickiness)
			vi.Stickiness = &sc
		}
		if v.MigrationThreshold != nil {
			mt := placement.Score(*v.MigrationThreshold)
			switch {
			case mt < 0:
				bad("vm %q: migration-threshold %s is negative", v.Name, mt)
			case mt >= placement.Infinity:
				vi.MigrationThreshold = 0 // INFINITY: never ban
			default:
				vi.MigrationThreshold = int(mt)
			}
		}
		if !validOnForbidden(v.OnForbidden) {
			bad("vm %q: on-forbidden %q: want restart or stay", v.Name, v.OnForbidden)
		}
		for _, msg := range v.guestProblems() {
			bad("vm %q: %s", v.Name, msg)
		}
		switch v.Hypervisor {
		case "", "kvm", "xen":
		default:
			bad("vm %q: hypervisor %q: want kvm or xen", v.Name, v.Hypervisor)
		}
		in.VMs = append(in.VMs, vi)
	}
	for i, l := range s.Constraints.Locations {
		switch {
		case l.Rule != nil && (l.Host != "" || l.Score != nil):
			bad("location %d (vm %q): give either host and score, or rule", i+1, l.VM)
		case l.Rule != nil:
			r, err := convertRule(*l.Rule, func() string { return fmt.Sprintf("location %d (vm %q) rule", i+1, l.VM) })
			if err != nil {
				errs = append(errs, err)
				continue
			}
			in.LocationRules = append(in.LocationRules, placement.LocationRule{VM: l.VM, Rule: r})
		case l.Host == "" || l.Score == nil:
			bad("location %d (vm %q): needs host and score (or a rule)", i+1, l.VM)
		default:
			in.Locations = append(in.Locations, placement.Location{VM: l.VM, Host: l.Host, Score: placement.Score(*l.Score)})
		}
	}
	for _, c := range s.Constraints.Colocations {
		in.Colocations = append(in.Colocations, placement.Colocation{VM: c.VM, With: c.With, Score: placement.Score(c.Score)})
	}
	check := placement.Validate
	if st != nil {
		applyStatus(&in, st, bad)
	} else {
		check = validateRules
	}
	if err := check(&in); err != nil {
		errs = append(errs, err)
	}
	return in, errors.Join(errs...)
}

// validateRules validates in as a running cluster's rules (see Input):
// the hosts and VMs its constraints name but it does not describe count
// as described, with nothing known about them.
func validateRules(in *placement.Input) error {
	chk := *in
	chk.Hosts = append([]placement.HostInfo(nil), in.Hosts...)
	chk.VMs = append([]placement.VMInfo(nil), in.VMs...)
	hosts, vms := map[string]bool{}, map[string]bool{}
	for _, h := range in.Hosts {
		hosts[h.Name] = true
	}
	for _, v := range in.VMs {
		vms[v.Name] = true
	}
	host := func(name string) {
		if name != "" && !hosts[name] {
			hosts[name] = true
			chk.Hosts = append(chk.Hosts, placement.HostInfo{Name: name})
		}
	}
	vm := func(name string) {
		if name != "" && !vms[name] {
			vms[name] = true
			chk.VMs = append(chk.VMs, placement.VMInfo{Name: name})
		}
	}
	for _, l := range in.Locations {
		vm(l.VM)
		host(l.Host)
	}
	for _, r := range in.LocationRules {
		vm(r.VM)
	}
	for _, c := range in.Colocations {
		vm(c.VM)
		vm(c.With)
	}
	return placement.Validate(&chk)
}

// convertRule converts r; where names it in an error, and is called only
// for one (a file may hold tens of thousands of rules).
func convertRule(r Rule, where func() string) (placement.Rule, error) {
	out := placement.Rule{ScoreAttribute: r.ScoreAttribute, BoolOp: r.BooleanOp}
	switch {
	case r.Score != nil && r.ScoreAttribute != "":
		return out, fmt.Errorf("%s: give score or score-attribute, not both", where())
	case r.Score == nil && r.ScoreAttribute == "":
		return out, fmt.Errorf("%s: needs score or score-attribute", where())
	case r.Score != nil:
		out.Score = placement.Score(*r.Score)
	}
	for _, e := range r.Expressions {
		out.Expressions = append(out.Expressions, placement.Expression{Attribute: e.Attribute, Operation: e.Operation, Value: e.Value, Type: e.Type})
	}
	for i, sub := range r.Rules {
		// Nested rules carry no score of their own.
		if sub.Score == nil && sub.ScoreAttribute == "" {
			sub.Score = new(Score)
		}
		c, err := convertRule(sub, func() string { return fmt.Sprintf("%s, rule %d", where(), i+1) })
		if err != nil {
			return out, err
		}
		out.Rules = append(out.Rules, c)
	}
	if placement.ValidateRule(out, "") == nil {
		return out, nil
	}
	return out, placement.ValidateRule(out, where())
}

// applyStatus sets the status's states, attributes, placements and fail
// counts on in. Each host and VM is applied on its own, so the maps are
// walked in any order; the problems, at most one per name and loop, are
// reported in name order, as they always were.
func applyStatus(in *placement.Input, st *Status, bad func(string, ...any)) {
	in.Now = st.Now
	var problems nameOrder
	hosts := make(map[string]*placement.HostInfo, len(in.Hosts))
	for i := range in.Hosts {
		hosts[in.Hosts[i].Name] = &in.Hosts[i]
	}
	for name, hs := range st.Hosts {
		h := hosts[name]
		if h == nil {
			problems.add(name, "status: unknown host %q", name)
			continue
		}
		c, ok := hostStates[hs.State]
		if !ok {
			problems.add(name, "status: host %q: state %q: want up, lost, fenced or offline", name, hs.State)
		}
		h.Condition = c
		for k, v := range hs.Attributes {
			h.Attributes[k] = v
		}
		if hs.Standby != nil {
			h.Standby = *hs.Standby
		}
		if hs.Maintenance != nil {
			h.Maintenance = *hs.Maintenance
		}
	}
	problems.report(bad)
	vms := make(map[string]*placement.VMInfo, len(in.VMs))
	for i := range in.VMs {
		vms[in.VMs[i].Name] = &in.VMs[i]
	}
	for name, vs := range st.VMs {
		v := vms[name]
		if v == nil {
			problems.add(name, "status: unknown vm %q", name)
			continue
		}
		if vs.Host != "" && hosts[vs.Host] == nil {
			problems.add(name, "status: vm %q runs on unknown host %q", name, vs.Host)
		}
		v.Current = vs.Host
		for _, f := range vs.Failures {
			v.Failures = append(v.Failures, placement.Failure{Host: f.Host, Count: f.Count, Last: f.Last})
		}
	}
	problems.report(bad)
}

// nameOrder collects problems found in a map's order, to report them in
// the order of the names they are about: sorting only the problems saves
// sorting 50,000 names that have none.
type nameOrder []struct{ name, msg string }

func (o *nameOrder) add(name, format string, a ...any) {
	*o = append(*o, struct{ name, msg string }{name, fmt.Sprintf(format, a...)})
}

// report passes the problems to bad in name order, and forgets them.
func (o *nameOrder) report(bad func(string, ...any)) {
	sort.SliceStable(*o, func(i, j int) bool { return (*o)[i].name < (*o)[j].name })
	for _, p := range *o {
		bad("%s", p.msg)
	}
	*o = (*o)[:0]
}

// makeCap returns an empty slice with room for n elements, or nil for 0.
func makeCap[T any](n int) []T {
	if n <= 0 {
		return nil
	}
	return make([]T, 0, n)
}

func validOnForbidden(s string) bool { return s == "" || s == "restart" || s == "stay" }

// OnForbiddenOf is VM vm's on-forbidden: its own, the policy's, or
// restart.
func (s *Spec) OnForbiddenOf(vm string) string {
	for _, v := range s.VMs {
		if v.Name == vm && v.OnForbidden != "" {
			return v.OnForbidden
		}
	}
	if s.Policy.OnForbidden != "" {
		return s.Policy.OnForbidden
	}
	return "restart"
}
