// Package statemachine applies the replicated log's commands to the
// cluster state. Apply is a pure function of the state and the command (the
// leader stamps the command's time and term), so every host that applies
// the same log holds the same state, and the leader's decisions can be
// tested against the real state machine without raft.
package statemachine

import (
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/vmha/vmha/cluster/command"
	"github.com/vmha/vmha/clusterspec"
	"github.com/vmha/vmha/fencing/spec"
	"github.com/vmha/vmha/model"
)

// MaxFenceHistory bounds the history kept in the state.
const MaxFenceHistory = 1000

// Apply changes s by c, or returns an error and leaves s as it was. It is
// pure so that it can be tested without raft.
func Apply(s *model.State, c *command.Command) error {
	apply, ok := appliers[c.Op]
	if !ok {
		return fmt.Errorf("unknown command %q", c.Op)
	}
	// The events are read from the state before the command (a move's
	// source, an observation's previous state) and kept only if it applies.
	evs := eventsOf(s, c)
	if err := apply(s, c); err != nil {
		return err
	}
	recordEvents(s, evs)
	return nil
}

// appliers dispatch each op to its own function (as Nomad's FSM does), so
// that adding an op is one entry here and one function, not a branch in a
// switch that grew with every feature.
var appliers = map[command.Op]func(*model.State, *command.Command) error{
	command.OpRegisterHost:    onRegisterHost,
	command.OpAddVM:           onAddVM,
	command.OpRemoveVM:        onRemoveVM,
	command.OpPlace:           onPlace,
	command.OpHostState:       onHostState,
	command.OpFenceConfirm:    onFenceConfirm,
	command.OpHostAttr:        onHostAttr,
	command.OpEvacuation:      onEvacuation,
	command.OpPin:             onPin,
	command.OpRebalance:       onRebalance,
	command.OpMaintenance:     onMaintenance,
	command.OpRemoveHost:      onRemoveHost,
	command.OpFormed:          onFormed,
	command.OpExpectHost:      onExpectHost,
	command.OpSetRules:        onSetRules,
	command.OpSetFencing:      onSetFencing,
	command.OpFenceRecord:     onFenceRecord,
	command.OpSetFenceDevices: onSetFenceDevices,
	command.OpHostSeen:        onHostSeen,
	command.OpObserve:         onObserve,

	command.OpVMState:            onVMState,
	command.OpFailures:           onFailures,
	command.OpClusterMaintenance: onClusterMaintenance,
	command.OpUpdateVM:           onUpdateVM,
	command.OpAdoptVM:            onAdoptVM,
	command.OpAlerted:            onAlerted,
	command.OpTokenCreate:        onTokenCreate,
	command.OpTokenRevoke:        onTokenRevoke,
}

func onRegisterHost(s *model.State, c *command.Command) error {
	if c.Host == nil {
		return errors.New("register_host: no host")
	}
	return applyRegister(s, c)
}

func onAddVM(s *model.State, c *command.Command) error {
	if c.VM == nil {
		return errors.New("add_vm: no vm")
	}
	if err := validateVMAtApply(s, c.VM); err != nil {
		return err
	}
	vm := *c.VM
	s.Config.VMs[vm.Name] = &vm
	return nil
}

func onRemoveVM(s *model.State, c *command.Command) error {
	if _, ok := s.Config.VMs[c.Name]; !ok {
		return &command.NotFoundError{Kind: "vm", Name: c.Name}
	}
	delete(s.Config.VMs, c.Name)
	delete(s.Status.Placements, c.Name)
	delete(s.Status.Pins, c.Name)
	delete(s.Config.VMStates, c.Name)
	delete(s.Status.Failures, c.Name)
	return nil
}

func onPlace(s *model.State, c *command.Command) error {
	for _, p := range c.Placements {
		if _, ok := s.Config.VMs[p.VM]; !ok {
			return &command.NotFoundError{Kind: "vm", Name: p.VM}
		}
		if _, ok := s.Config.Hosts[p.Host]; p.Host != "" && !ok {
			return &command.NotFoundError{Kind: "host", Name: p.Host}
		}
	}
	for _, p := range c.Placements {
		s.Status.Generation++
		p.Generation = s.Status.Generation
		p.Term = c.Term
		p.Since = c.At
		s.Status.Placements[p.VM] = &p
	}
	return nil
}

func onHostState(s *model.State, c *command.Command) error {
	hc := c.HostState
	if hc == nil {
		return errors.New("host_state: no change")
	}
	if _, ok := s.Config.Hosts[hc.Host]; !ok {
		return &command.NotFoundError{Kind: "host", Name: hc.Host}
	}
	hs := s.Status.Hosts[hc.Host]
	if hs == nil {
		hs = &model.HostStatus{State: model.HostAlive}
		s.Status.Hosts[hc.Host] = hs
	}
	if err := CheckTransition(hc.Host, hs.State, hc.State); err != nil {
		return err
	}
	setHostState(hs, hc, c.At)
	if hc.State == model.HostFenced {
		forgetReports(s, hc.Host)
	}
	return nil
}

func onFenceConfirm(s *model.State, c *command.Command) error {
	hc, rec := c.HostState, c.Fence
	if hc == nil || rec == nil {
		return errors.New("fence_confirm: no host or record")
	}
	hs := s.Status.Hosts[hc.Host]
	if _, ok := s.Config.Hosts[hc.Host]; !ok || hs == nil {
		return &command.NotFoundError{Kind: "host", Name: hc.Host}
	}
	if hs.State != model.HostLost && hs.State != model.HostFenceFailed {
		return &command.ConflictError{What: fmt.Sprintf("host %s is %s, not lost: only a lost host can be confirmed down", hc.Host, hs.State)}
	}
	hc.State = model.HostFenced
	if hc.RecoveryID == "" {
		hc.RecoveryID = hs.RecoveryID
	}
	setHostState(hs, hc, c.At)
	forgetReports(s, hc.Host)
	appendFence(s, *rec)
	return nil
}

func onHostAttr(s *model.State, c *command.Command) error {
	a := c.Attr
	if a == nil {
		return errors.New("host_attr: no attribute")
	}
	if _, ok := s.Config.Hosts[a.Host]; !ok {
		return &command.NotFoundError{Kind: "host", Name: a.Host}
	}
	if err := ValidAttrName(a.Key); err != nil {
		return &command.ValidationError{Field: "key", Err: err}
	}
	var m map[string]string
	if a.Transient {
		if s.Status.TransientAttrs == nil {
			s.Status.TransientAttrs = map[string]*model.TransientAttrs{}
		}
		ta := s.Status.TransientAttrs[a.Host]
		if ta == nil || ta.Boot != a.Boot {
			ta = &model.TransientAttrs{Boot: a.Boot, Attrs: map[string]string{}}
			s.Status.TransientAttrs[a.Host] = ta
		}
		m = ta.Attrs
	} else {
		if s.Config.HostAttrs == nil {
			s.Config.HostAttrs = map[string]map[string]string{}
		}
		if s.Config.HostAttrs[a.Host] == nil {
			s.Config.HostAttrs[a.Host] = map[string]string{}
		}
		m = s.Config.HostAttrs[a.Host]
	}
	if a.Value == "" {
		delete(m, a.Key)
	} else {
		m[a.Key] = a.Value
	}
	return nil
}

func onEvacuation(s *model.State, c *command.Command) error {
	if err := checkEvacuation(s, c); err != nil {
		return err
	}
	if e := c.Evacuation; e != nil {
		if s.Status.Evacuations == nil {
			s.Status.Evacuations = map[string]*model.Evacuation{}
		}
		cp := *e
		s.Status.Evacuations[e.Host] = &cp
	} else {
		delete(s.Status.Evacuations, c.Name)
	}
	return nil
}

// checkEvacuation is OpEvacuation's compare-and-set. A start (an
// evacuation with an ID, no IfEvacuation) needs none under way on its
// host; an update (IfEvacuation, the evacuation's own ID) needs that very
// evacuation under way, so that a leader's pass planned before vmha host
// online cannot bring an ended evacuation back; an end needs one under way,
// and the one of IfEvacuation when set. Commands without IDs (logs written
// before evacuations had them) apply as they did: they start or replace.
func checkEvacuation(s *model.State, c *command.Command) error {
	e := c.Evacuation
	if e == nil {
		cur := s.Status.Evacuations[c.Name]
		switch {
		case cur == nil:
			return &command.ConflictError{What: fmt.Sprintf("host %s is not being evacuated", c.Name)}
		case c.IfEvacuation != "" && cur.ID != c.IfEvacuation:
			return &command.ConflictError{What: fmt.Sprintf("host %s's evacuation %s has ended; %s (by %s) is under way now", c.Name, c.IfEvacuation, orNone(cur.ID), cur.By)}
		}
		return nil
	}
	if _, ok := s.Config.Hosts[e.Host]; !ok {
		return &command.NotFoundError{Kind: "host", Name: e.Host}
	}
	cur := s.Status.Evacuations[e.Host]
	switch {
	case e.ID == "" && c.IfEvacuation == "":
		return nil
	case c.IfEvacuation == "":
		if cur != nil {
			return &command.ConflictError{What: fmt.Sprintf("host %s is already being evacuated (%s, by %s); vmha host online %s ends it", e.Host, orNone(cur.ID), cur.By, e.Host)}
		}
	case e.ID != c.IfEvacuation:
		return &command.ValidationError{Field: "evacuation.id", Err: fmt.Errorf("%q: an update must keep the evacuation's ID %q", e.ID, c.IfEvacuation)}
	case cur == nil:
		return &command.ConflictError{What: fmt.Sprintf("host %s's evacuation %s has ended (vmha host online): the update is refused", e.Host, c.IfEvacuation)}
	case cur.ID != c.IfEvacuation:
		return &command.ConflictError{What: fmt.Sprintf("host %s's evacuation %s has ended; %s (by %s) is under way now: the update is refused", e.Host, c.IfEvacuation, orNone(cur.ID), cur.By)}
	}
	return nil
}

func orNone(id string) string {
	if id == "" {
		return "one without an ID"
	}
	return id
}

func onPin(s *model.State, c *command.Command) error {
	return applyPin(s, c)
}

func onRebalance(s *model.State, c *command.Command) error {
	return applyRebalance(s, c.Rebalance)
}

func onMaintenance(s *model.State, c *command.Command) error {
	if _, ok := s.Config.Hosts[c.Name]; !ok {
		return &command.NotFoundError{Kind: "host", Name: c.Name}
	}
	if c.Maintenance == nil {
		if _, ok := s.Status.Maintenance[c.Name]; !ok {
			return &command.ConflictError{What: fmt.Sprintf("host %s is not in maintenance", c.Name)}
		}
		delete(s.Status.Maintenance, c.Name)
		return nil
	}
	if s.Status.Maintenance == nil {
		s.Status.Maintenance = map[string]*model.Maintenance{}
	}
	cp := *c.Maintenance
	s.Status.Maintenance[c.Name] = &cp
	return nil
}

func onRemoveHost(s *model.State, c *command.Command) error {
	return applyRemoveHost(s, c.Name)
}

func onFormed(s *model.State, c *command.Command) error {
	if len(c.Formed) == 0 {
		return errors.New("formed: no hosts")
	}
	s.Status.Formed = maps.Clone(c.Formed)
	return nil
}

func onExpectHost(s *model.State, c *command.Command) error {
	if c.Expected == nil {
		if _, ok := s.Config.Expected[c.Name]; !ok {
			return &command.ConflictError{What: fmt.Sprintf("host %s is not expected", c.Name)}
		}
		delete(s.Config.Expected, c.Name)
		return nil
	}
	if err := model.ValidateName("host", c.Name); err != nil {
		return &command.ValidationError{Field: "name", Err: err}
	}
	if _, ok := s.Config.Hosts[c.Name]; ok {
		return &command.ConflictError{What: fmt.Sprintf("host %s is already a member of the cluster", c.Name)}
	}
	if s.Config.Expected == nil {
		s.Config.Expected = map[string]*model.Expected{}
	}
	cp := *c.Expected
	s.Config.Expected[c.Name] = &cp
	return nil
}

// onSetRules replaces the placement rules and records the text as a new
// version of the rules history. With RulesVersion set it is a
// compare-and-set on the version in force.
func onSetRules(s *model.State, c *command.Command) error {
	if c.Rules == nil {
		return errors.New("set_rules: no rules")
	}
	if err := CheckRulesVersion(s, c.RulesVersion); err != nil {
		return err
	}
	if *c.Rules != "" {
		if _, err := CheckRules(s, *c.Rules); err != nil {
			return err
		}
	}
	s.Config.Rules = *c.Rules
	cur, _ := s.Status.RulesVersionNow()
	by := c.By
	if by == "" {
		by = model.PrincipalCluster
	}
	s.Status.RulesHistory = append(s.Status.RulesHistory, model.RulesVersion{
		Version: cur.Version + 1, By: by, At: c.At, Rules: *c.Rules, Note: c.Why})
	trimRulesHistory(s)
	return nil
}

// CheckRulesVersion refuses a rules change based on another version than
// the one in force (see command.Command.RulesVersion); 0 checks nothing.
func CheckRulesVersion(s *model.State, based int) error {
	if based == 0 {
		return nil
	}
	cur, ok := s.Status.RulesVersionNow()
	if based == command.RulesUnversioned {
		based = 0
	}
	if based == cur.Version {
		return nil
	}
	if !ok {
		return &command.ConflictError{What: fmt.Sprintf("rules changed since you read them (they have no version %d): read them again", based)}
	}
	return &command.ConflictError{What: fmt.Sprintf("rules changed since you read them (now version %d by %s): read them again", cur.Version, cur.By)}
}

// trimRulesHistory keeps the last MaxRulesHistory versions, and fewer when
// their texts together pass MaxRulesHistoryBytes (always the last one).
func trimRulesHistory(s *model.State) {
	h := s.Status.RulesHistory
	start, size := 0, 0
	if len(h) > model.MaxRulesHistory {
		start = len(h) - model.MaxRulesHistory
	}
	for i := len(h) - 1; i >= start; i-- {
		size += len(h[i].Rules)
		if size > model.MaxRulesHistoryBytes && i < len(h)-1 {
			start = i + 1
			break
		}
	}
	if start > 0 {
		// Copy rather than reslice, so the dropped texts are freed.
		s.Status.RulesHistory = append([]model.RulesVersion(nil), h[start:]...)
	}
}

func onSetFencing(s *model.State, c *command.Command) error {
	if c.FencingOff != nil && strings.TrimSpace(c.FencingOff.By) == "" {
		return &command.ValidationError{Field: "by", Err: errors.New("turning fencing off needs the name of who acknowledged the risk")}
	}
	s.Config.FencingOff = c.FencingOff
	return nil
}

func onFenceRecord(s *model.State, c *command.Command) error {
	if c.Fence == nil {
		return errors.New("fence_record: no record")
	}
	appendFence(s, *c.Fence)
	return nil
}

func onSetFenceDevices(s *model.State, c *command.Command) error {
	return applySetFenceDevices(s, c)
}

func onHostSeen(s *model.State, c *command.Command) error {
	for _, name := range c.Names {
		if _, ok := s.Config.Hosts[name]; !ok {
			continue // removed meanwhile
		}
		hs := s.Status.Hosts[name]
		if hs == nil {
			hs = &model.HostStatus{State: model.HostAlive, Since: c.At}
			s.Status.Hosts[name] = hs
		}
		if !hs.SeenAlive {
			hs.SeenAlive, hs.SeenAliveAt = true, c.At
		}
	}
	return nil
}

func onObserve(s *model.State, c *command.Command) error {
	o := c.Observation
	if o == nil {
		return errors.New("observe: no observation")
	}
	if _, ok := s.Config.Hosts[o.Host]; !ok {
		return &command.NotFoundError{Kind: "host", Name: o.Host}
	}
	cp := *o
	s.Status.Observed[o.Host] = &cp
	return nil
}

// applyRegister records a host's registration. Fence configuration runs as
// root on the leader and a registration is a peer's message, so it never
// changes a known host's fencing: only the first registration of a host
// brings its topology, and only one the allow-lists accept without
// allow_unsafe (any other is never taken, not even as an offer). A known host
// that offers another topology (other devices, or only a new password)
// leaves it as an offer in Status.FenceOffers for an operator to accept
// (vmha fence devices accept); one that offers the topology in use, or none,
// withdraws any earlier offer.
func applyRegister(s *model.State, c *command.Command) error {
	h := *c.Host
	if err := model.ValidateName("host", h.Name); err != nil {
		return &command.ValidationError{Field: "host.name", Err: err}
	}
	offer := c.Fencing
	if offer != nil && CheckTopology(h.Name, offer, false) != nil {
		// Never taken, not even as an offer. The API refuses such a
		// registration before it reaches the log (saying why); this
		// covers entries an older leader wrote, so that replaying them
		// registers the host, without the devices, on every version.
		offer = nil
	}
	_, known := s.Config.Hosts[h.Name]
	s.Config.Hosts[h.Name] = &h
	delete(s.Config.Expected, h.Name)
	if _, ok := s.Status.Hosts[h.Name]; !ok {
		s.Status.Hosts[h.Name] = &model.HostStatus{State: model.HostAlive, Since: c.At}
	}
	if !known {
		delete(s.Status.FenceOffers, h.Name)
		if offer == nil {
			delete(s.Config.Fencing, h.Name)
		} else {
			s.Config.Fencing[h.Name] = CloneTopology(offer)
		}
		return nil
	}
	cur := s.Config.Fencing[h.Name]
	switch {
	case offer == nil || cur.Same(offer):
		delete(s.Status.FenceOffers, h.Name)
	case s.Status.FenceOffers[h.Name] != nil && s.Status.FenceOffers[h.Name].Topology.Same(offer):
		// The same offer again (a restart, a new leader): it keeps its time.
	default:
		if s.Status.FenceOffers == nil {
			s.Status.FenceOffers = map[string]*model.FenceOffer{}
		}
		s.Status.FenceOffers[h.Name] = &model.FenceOffer{Topology: *CloneTopology(offer), At: c.At}
	}
	return nil
}

// RegisterOutcome says what a registration of host with offer does to
// state s: "first" (a new host, its topology is taken), "offer" (a known
// host offers another topology, kept pending), or "" (nothing changes in
// its fencing). Handlers use it to say so in the log.
func RegisterOutcome(s *model.State, host string, offer *model.FenceTopology) string {
	if _, known := s.Config.Hosts[host]; !known {
		return "first"
	}
	if offer == nil || s.Config.Fencing[host].Same(offer) {
		return ""
	}
	return "offer"
}

// applySetFenceDevices is an operator's change of a host's fence devices;
// see command.OpSetFenceDevices.
func applySetFenceDevices(s *model.State, c *command.Command) error {
	host, t, rec := c.Name, c.Fencing, c.Fence
	if t == nil || rec == nil {
		return errors.New("set_fence_devices: no topology or record")
	}
	h, ok := s.Config.Hosts[host]
	if !ok {
		return &command.NotFoundError{Kind: "host", Name: host}
	}
	if h.Witness {
		return &command.ConflictError{What: fmt.Sprintf("host %s is a witness: it runs no VM and is never fenced", host)}
	}
	switch rec.Action {
	case model.FenceDevicesAccept:
		o := s.Status.FenceOffers[host]
		if o == nil {
			return &command.ConflictError{What: fmt.Sprintf("host %s offers no other fence devices than the cluster uses (vmha fence devices lists offers)", host)}
		}
		if !o.Topology.Same(t) {
			return &command.ConflictError{What: fmt.Sprintf("host %s changed its offer meanwhile: look at it again (vmha fence devices) and accept again", host)}
		}
		// The offer came from the host: no allow_unsafe.
		if err := CheckTopology(host, t, false); err != nil {
			return &command.ValidationError{Field: "fencing", Err: err}
		}
	case model.FenceDevicesSet:
		if err := CheckTopology(host, t, true); err != nil {
			return &command.ValidationError{Field: "fencing", Err: err}
		}
	default:
		return fmt.Errorf("set_fence_devices: unknown action %q", rec.Action)
	}
	cur := s.Config.Fencing[host]
	r := *rec
	r.Host, r.Level, r.OK, r.Device = host, 0, true, "fence devices"
	if r.Started.IsZero() {
		r.Started = c.At
	}
	r.Before, r.After = describeChange(cur, t)
	s.Config.Fencing[host] = CloneTopology(t)
	delete(s.Status.FenceOffers, host)
	appendFence(s, r)
	return nil
}

// describeChange describes a change of topology from before to after for
// the history: each side's devices and levels (devices outside the
// allow-lists marked), and after it which passwords changed. Never a
// password.
func describeChange(before, after *model.FenceTopology) (string, string) {
	a := after.Describe()
	if pw := before.PasswordChanges(after); len(pw) > 0 {
		a += "; new password for " + strings.Join(pw, ", ")
	}
	return before.Describe(), a
}

// CheckTopology validates a replicated topology of host as fencing/spec
// does, without reading a file or opening a device: the allow-lists apply,
// and allow_unsafe is honoured only when trusted (an operator's command).
func CheckTopology(host string, t *model.FenceTopology, trusted bool) error {
	sp := SpecOf(host, t)
	if trusted {
		return sp.Validate()
	}
	return sp.ValidateUntrusted()
}

// CloneTopology is a deep copy of t (its params maps and level slices).
func CloneTopology(t *model.FenceTopology) *model.FenceTopology {
	cp := *t
	cp.Devices = make([]model.FenceDevice, len(t.Devices))
	for i, d := range t.Devices {
		d.Params = maps.Clone(d.Params)
		cp.Devices[i] = d
	}
	cp.Levels = make([][]string, len(t.Levels))
	for i, l := range t.Levels {
		cp.Levels[i] = append([]string(nil), l...)
	}
	return &cp
}

// ValidAttrName keeps attribute names to what rules can name; names that
// start with '#' are built in (#uname).
func ValidAttrName(k string) error {
	if k == "" || len(k) > 64 {
		return fmt.Errorf("attribute name %q: 1 to 64 characters", k)
	}
	for i, r := range k {
		letter := (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')
		ok := letter || r == '-' || r == '_' || r == '.' || (r >= '0' && r <= '9')
		if !ok || (i == 0 && !letter) {
			return fmt.Errorf("attribute name %q: letters, digits, '-', '_' and '.', starting with a letter", k)
		}
	}
	return nil
}

// CheckTransition enforces the host lifecycle, so that a late answer from a
// fence that was overtaken (an operator confirmed the host, or another fence
// succeeded) cannot move a fenced host back to lost or fence-failed, and a
// host can only be fenced after it was lost.
func CheckTransition(host string, from, to model.HostState) error {
	ok := false
	switch to {
	case model.HostAlive:
		ok = true
	case model.HostLost:
		ok = from == model.HostAlive || from == model.HostLost
	case model.HostFenceFailed, model.HostFenced:
		ok = from == model.HostLost || from == model.HostFenceFailed
	}
	if !ok {
		return &command.ConflictError{What: fmt.Sprintf("host %s cannot go from %s to %s", host, from, to)}
	}
	return nil
}

func setHostState(hs *model.HostStatus, hc *command.HostStateChange, at time.Time) {
	if hs.State != hc.State {
		hs.Since = at
	}
	hs.State, hs.Reason = hc.State, hc.Reason
	if hc.RecoveryID != "" {
		hs.RecoveryID = hc.RecoveryID
	}
	switch hc.State {
	case model.HostLost:
		hs.LostAt, hs.FencedAt = at, time.Time{}
		hs.FenceRequestedBy, hs.LostBoot = hc.RequestedBy, hc.Boot
	case model.HostFenced:
		hs.FencedAt, hs.Unfenced = at, hc.Unfenced
	case model.HostAlive:
		hs.FenceRequestedBy = ""
	}
}

// forgetReports drops what a fenced host last reported: it is powered off,
// nothing it said runs any more, and its next life reports afresh (status
// must not show its VMs running, nor adoption find them there).
func forgetReports(s *model.State, host string) {
	delete(s.Status.Observed, host)
}

func appendFence(s *model.State, r model.FenceRecord) {
	s.Status.FenceHistory = append(s.Status.FenceHistory, r)
	if n := len(s.Status.FenceHistory); n > MaxFenceHistory {
		s.Status.FenceHistory = append([]model.FenceRecord(nil), s.Status.FenceHistory[n-MaxFenceHistory:]...)
	}
}

// validateVMAtApply is what apply checks of a new VM: only what cannot
// change between versions (its name, no duplicate, its preferred host). The
// domain XML was checked before the command was proposed (ValidateVM), and
// a stricter XML reader in a later version must not make a replayed log
// mean something else on an upgraded host than on the others.
func validateVMAtApply(s *model.State, vm *model.VM) error {
	if err := model.ValidateName("vm", vm.Name); err != nil {
		return &command.ValidationError{Field: "name", Err: err}
	}
	if _, ok := s.Config.VMs[vm.Name]; ok {
		return &command.ConflictError{What: fmt.Sprintf("vm %q already exists", vm.Name)}
	}
	if vm.Prefer != "" {
		if _, ok := s.Config.Hosts[vm.Prefer]; !ok {
			return &command.ValidationError{Field: "prefer", Err: fmt.Errorf("unknown host %q (known: %v)", vm.Prefer, model.SortedKeys(s.Config.Hosts))}
		}
	}
	return nil
}

// ValidateVM checks a VM against the config it would join, before it is
// proposed; errors name the field. The domain XML must mean to vmha what it
// means to libvirt (model.ParseDomainXML), name the VM, and fit on at least
// one host of the cluster.
func ValidateVM(s *model.State, vm *model.VM) error {
	if err := model.ValidateName("vm", vm.Name); err != nil {
		return &command.ValidationError{Field: "name", Err: err}
	}
	if _, ok := s.Config.VMs[vm.Name]; ok {
		return &command.ConflictError{What: fmt.Sprintf("vm %q already exists", vm.Name)}
	}
	info, err := model.ParseDomainXML([]byte(vm.XML))
	if err != nil {
		return &command.ValidationError{Field: "xml", Err: err}
	}
	if info.Name != vm.Name {
		return &command.ValidationError{Field: "xml", Err: fmt.Errorf("domain <name> is %q, but the VM is called %q", info.Name, vm.Name)}
	}
	if err := model.CheckFits(info, s.Config.Hosts); err != nil {
		return &command.ValidationError{Field: "xml", Err: err}
	}
	if vm.Prefer != "" {
		if _, ok := s.Config.Hosts[vm.Prefer]; !ok {
			return &command.ValidationError{Field: "prefer", Err: fmt.Errorf("unknown host %q (known: %v)", vm.Prefer, model.SortedKeys(s.Config.Hosts))}
		}
	}
	return nil
}

// applyPin sets or clears pins; see command.OpPin.
func applyPin(s *model.State, c *command.Command) error {
	if p := c.Pin; p != nil {
		if _, ok := s.Config.VMs[p.VM]; !ok {
			return &command.NotFoundError{Kind: "vm", Name: p.VM}
		}
		if h, ok := s.Config.Hosts[p.Host]; !ok || h.Witness {
			return &command.ValidationError{Field: "pin.host", Err: fmt.Errorf("%q is not a host that runs VMs", p.Host)}
		}
		if !p.Expires.IsZero() && !p.Expires.After(c.At) {
			return &command.ValidationError{Field: "pin.expires", Err: fmt.Errorf("%s is not in the future", p.Expires.Format(time.RFC3339))}
		}
		if s.Status.Pins == nil {
			s.Status.Pins = map[string]*model.Pin{}
		}
		cp := *p
		s.Status.Pins[p.VM] = &cp
		return nil
	}
	if len(c.Names) == 0 {
		for vm, p := range s.Status.Pins {
			if !p.Active(c.At) {
				delete(s.Status.Pins, vm)
			}
		}
		return nil
	}
	for _, vm := range c.Names {
		if _, ok := s.Status.Pins[vm]; !ok {
			return &command.ConflictError{What: fmt.Sprintf("vm %s has no pin (vmha pins lists them)", vm)}
		}
	}
	for _, vm := range c.Names {
		delete(s.Status.Pins, vm)
	}
	return nil
}

// MaxRebalances bounds the rebalance history kept in the state.
const MaxRebalances = 20

// applyRebalance starts a rebalance (a new ID, none under way) or updates
// the one under way.
func applyRebalance(s *model.State, r *model.Rebalance) error {
	if r == nil || r.ID == "" {
		return errors.New("rebalance: no record")
	}
	for _, m := range r.Moves {
		if _, ok := s.Config.VMs[m.VM]; !ok && m.State == model.MovePlanned {
			return &command.NotFoundError{Kind: "vm", Name: m.VM}
		}
	}
	cp := *r
	cp.Moves = append([]model.RebalanceMove(nil), r.Moves...)
	if cur := s.Status.ActiveRebalance(); cur != nil {
		if cur.ID != r.ID {
			return &command.ConflictError{What: fmt.Sprintf("rebalance %s (by %s) is under way; vmha rebalance cancel ends it", cur.ID, cur.By)}
		}
		s.Status.Rebalances[len(s.Status.Rebalances)-1] = &cp
		return nil
	}
	for _, old := range s.Status.Rebalances {
		if old.ID == r.ID {
			return &command.ConflictError{What: fmt.Sprintf("rebalance %s has ended", r.ID)}
		}
	}
	s.Status.Rebalances = append(s.Status.Rebalances, &cp)
	if n := len(s.Status.Rebalances); n > MaxRebalances {
		s.Status.Rebalances = append([]*model.Rebalance(nil), s.Status.Rebalances[n-MaxRebalances:]...)
	}
	return nil
}

// applyRemoveHost removes a host and everything that names it. A host
// with VMs placed on it (or moving from it) is refused: they must go first.
func applyRemoveHost(s *model.State, host string) error {
	if _, ok := s.Config.Hosts[host]; !ok {
		return &command.NotFoundError{Kind: "host", Name: host}
	}
	var vms []string
	for _, vm := range model.SortedKeys(s.Status.Placements) {
		if p := s.Status.Placements[vm]; p.Host == host || p.MigrateFrom == host {
			vms = append(vms, vm)
		}
	}
	if len(vms) > 0 {
		return &command.ConflictError{What: fmt.Sprintf("host %s still has VMs placed on it (%s): evacuate it first (vmha evacuate %s)", host, strings.Join(vms, ", "), host)}
	}
	for _, v := range s.Config.VMs {
		if v.Prefer == host {
			v.Prefer = ""
		}
	}
	for vm, p := range s.Status.Pins {
		if p.Host == host {
			delete(s.Status.Pins, vm)
		}
	}
	delete(s.Config.Hosts, host)
	delete(s.Config.Fencing, host)
	delete(s.Status.FenceOffers, host)
	delete(s.Config.HostAttrs, host)
	delete(s.Config.Expected, host)
	delete(s.Status.Hosts, host)
	delete(s.Status.Observed, host)
	delete(s.Status.TransientAttrs, host)
	delete(s.Status.Evacuations, host)
	delete(s.Status.Maintenance, host)
	delete(s.Status.Formed, host)
	for vm := range s.Status.Failures {
		delete(s.Status.Failures[vm], host)
		if len(s.Status.Failures[vm]) == 0 {
			delete(s.Status.Failures, vm)
		}
	}
	return nil
}

// CheckRules validates a cluster.yaml against the cluster it would govern:
// the file must be valid on its own, and name only hosts and VMs the
// cluster has. Its constraints may name the cluster's hosts and VMs the
// file does not describe (it describes only what placement needs to know
// about them). The error names the item.
func CheckRules(s *model.State, yamlText string) (*clusterspec.Spec, error) {
	spec, err := clusterspec.Parse([]byte(yamlText))
	if err != nil {
		return nil, &command.ValidationError{Field: "rules", Err: err}
	}
	if _, err := spec.Input(nil); err != nil {
		return nil, &command.ValidationError{Field: "rules", Err: err}
	}
	errs := checkRuleNames(s, spec)
	for _, h := range spec.Hosts {
		if hh, ok := s.Config.Hosts[h.Name]; !ok {
			errs = append(errs, fmt.Errorf("host %q is not a host of this cluster (known: %v)", h.Name, model.SortedKeys(s.Config.Hosts)))
		} else if hh.Witness {
			errs = append(errs, fmt.Errorf("host %q is a witness: it runs no VM", h.Name))
		}
	}
	for _, v := range spec.VMs {
		if _, ok := s.Config.VMs[v.Name]; !ok {
			errs = append(errs, fmt.Errorf("vm %q is not managed by this cluster (add it with vmha vm add first)", v.Name))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, &command.ValidationError{Field: "rules", Err: err}
	}
	return spec, nil
}

// checkRuleNames checks that the constraints of spec name hosts that run
// VMs and VMs of the cluster s, each error naming its item.
func checkRuleNames(s *model.State, spec *clusterspec.Spec) []error {
	var errs []error
	vm := func(item, name string) {
		if _, ok := s.Config.VMs[name]; !ok {
			errs = append(errs, fmt.Errorf("%s: vm %q is not managed by this cluster (vmha status lists them)", item, name))
		}
	}
	for i, l := range spec.Constraints.Locations {
		item := fmt.Sprintf("location %d (vm %s", i+1, l.VM)
		if l.Host != "" {
			item += " on " + l.Host
		}
		item += ")"
		vm(item, l.VM)
		if l.Host == "" {
			continue
		}
		if h, ok := s.Config.Hosts[l.Host]; !ok {
			errs = append(errs, fmt.Errorf("%s: host %q is not a host of this cluster (known: %v)", item, l.Host, model.SortedKeys(s.Config.Hosts)))
		} else if h.Witness {
			errs = append(errs, fmt.Errorf("%s: host %q is a witness: it runs no VM", item, l.Host))
		}
	}
	for i, c := range spec.Constraints.Colocations {
		item := fmt.Sprintf("colocation %d (vm %s with %s)", i+1, c.VM, c.With)
		vm(item, c.VM)
		vm(item, c.With)
	}
	return errs
}

// SpecOf turns a replicated topology back into a fencing spec for one host,
// with the replicated passwords.
func SpecOf(host string, t *model.FenceTopology) spec.Spec {
	sp := spec.Spec{Hosts: []spec.Host{{Name: host, Levels: t.Levels, Action: t.Action, Delay: t.Delay, RandomDelay: t.RandomDelay}}}
	for _, d := range t.Devices {
		sp.Devices = append(sp.Devices, spec.Device{Name: d.Name, Type: d.Type, Params: d.Params, Timeout: d.Timeout, Secret: d.Password.Load(), AllowUnsafe: d.AllowUnsafe})
	}
	return sp
}
