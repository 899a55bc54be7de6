package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/vmha/vmha/model"
)

// Op names a command in the replicated log.
type Op string

// Commands the state machine applies.
const (
	OpRegisterHost Op = "register_host"
	OpAddVM        Op = "add_vm"
	OpRemoveVM     Op = "remove_vm"
	OpPlace        Op = "place"
	OpHostState    Op = "host_state"
	OpFenceRecord  Op = "fence_record"
	OpObserve      Op = "observe"
	// OpFenceConfirm records an operator's statement that a lost host is
	// down (vmha fence confirm): the host becomes fenced and the statement
	// joins the fence history, in one entry.
	OpFenceConfirm Op = "fence_confirm"
	// OpSetFencing turns fencing off (FencingOff set) or on again.
	OpSetFencing Op = "set_fencing"
	// OpSetRules replaces the placement rules (a cluster.yaml).
	OpSetRules Op = "set_rules"
	// OpHostAttr sets (or with an empty value, deletes) a host attribute.
	OpHostAttr Op = "host_attr"
	// OpEvacuation starts or updates (Evacuation set) or ends (Name set:
	// vmha host online) the evacuation of a host.
	OpEvacuation Op = "evacuation"
	// OpPin sets a pin (Pin set) or clears pins (Names: those VMs' pins;
	// empty Names with Pin nil: every expired pin).
	OpPin Op = "pin"
	// OpRebalance starts a rebalance or updates the one under way (same ID).
	OpRebalance Op = "rebalance"
	// OpMaintenance puts host Name in daemon maintenance (Maintenance set)
	// or ends it.
	OpMaintenance Op = "maintenance"
	// OpRemoveHost removes host Name from the cluster; OpExpectHost
	// announces (Expected set) or withdraws a host that has not joined.
	OpRemoveHost Op = "remove_host"
	OpExpectHost Op = "expect_host"
	// OpFormed records the boot ids of a whole cluster (Formed).
	OpFormed Op = "formed"
	// OpSetFenceDevices is an operator's change of host Name's fence
	// devices to Fencing: vmha fence devices set (Fence.Action
	// devices-set) or accept (devices-accept, Fencing is the host's pending
	// offer). Fence is the fence history's record of it.
	OpSetFenceDevices Op = "set_fence_devices"
	// OpHostSeen records that gossip reported the hosts Names alive (the
	// first time after they registered).
	OpHostSeen Op = "host_seen"
)

// Command is one entry of the replicated log. Exactly one payload is set,
// as Op says. The leader stamps At and Term so that applying is
// deterministic on every host.
type Command struct {
	Op   Op        `json:"op"`
	At   time.Time `json:"at"`
	Term uint64    `json:"term"`

	Host        *model.Host          `json:"host,omitempty"`
	Fencing     *model.FenceTopology `json:"fencing,omitempty"`
	VM          *model.VM            `json:"vm,omitempty"`
	Name        string               `json:"name,omitempty"`
	Placements  []model.Placement    `json:"placements,omitempty"`
	HostState   *HostStateChange     `json:"host_state,omitempty"`
	Fence       *model.FenceRecord   `json:"fence,omitempty"`
	Observation *model.Observation   `json:"observation,omitempty"`
	FencingOff  *model.FencingOff    `json:"fencing_off,omitempty"`
	Rules       *string              `json:"rules,omitempty"`
	Evacuation  *model.Evacuation    `json:"evacuation,omitempty"`
	Attr        *HostAttr            `json:"attr,omitempty"`
	Pin         *model.Pin           `json:"pin,omitempty"`
	Names       []string             `json:"names,omitempty"`
	Rebalance   *model.Rebalance     `json:"rebalance,omitempty"`
	Maintenance *model.Maintenance   `json:"maintenance,omitempty"`
	Expected    *model.Expected      `json:"expected,omitempty"`
	Formed      map[string]string    `json:"formed,omitempty"`
}

// HostStateChange moves a host through its failure lifecycle.
type HostStateChange struct {
	Host       string          `json:"host"`
	State      model.HostState `json:"state"`
	Reason     string          `json:"reason,omitempty"`
	RecoveryID string          `json:"recovery_id,omitempty"`
	// RequestedBy is set when an operator asked for the fence.
	RequestedBy string `json:"requested_by,omitempty"`
	// Boot is the host's gossiped boot id when it is marked lost.
	Boot string `json:"boot,omitempty"`
	// Unfenced: released as fenced although no device ran (fencing off).
	Unfenced bool `json:"unfenced,omitempty"`
}

// maxFenceHistory bounds the history kept in the state.
const maxFenceHistory = 1000

// FSM is the replicated state machine. Reads take a consistent copy.
type FSM struct {
	mu    sync.RWMutex
	state *model.State
	// applied is the raft index of the last command this state machine
	// has applied (or restored from a snapshot). It is the only index an
	// agent may compare with a read index: raft's own AppliedIndex counts
	// entries handed to the FSM's queue, which runs ahead of the state
	// while a rejoining host replays its log (issue 19: a host started VMs
	// from placements that later entries in its queue had moved away).
	applied uint64
	// notify gets a non-blocking signal after every apply so the local
	// agent reconciles promptly.
	notify chan struct{}
}

// NewFSM returns an empty state machine.
func NewFSM() *FSM {
	return &FSM{state: model.NewState(), notify: make(chan struct{}, 1)}
}

// Changed signals after state changes.
func (f *FSM) Changed() <-chan struct{} { return f.notify }

// Read runs fn on the current state under a read lock. fn must not keep
// references past its return.
func (f *FSM) Read(fn func(s *model.State)) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	fn(f.state)
}

// Copy returns a deep copy of the state (model.State.Clone).
func (f *FSM) Copy() *model.State {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.state.Clone()
}

// ReadAt runs fn on the current state and the index of the last command it
// reflects, under a read lock. fn must not keep references past its return.
func (f *FSM) ReadAt(fn func(s *model.State, applied uint64)) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	fn(f.state, f.applied)
}

// CopyAt returns a deep copy of the state and the index of the last command
// it reflects, taken together.
func (f *FSM) CopyAt() (*model.State, uint64) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.state.Clone(), f.applied
}

// AppliedIndex is the index of the last command applied to the state (see
// FSM.applied; not raft's AppliedIndex).
func (f *FSM) AppliedIndex() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.applied
}

// Apply implements raft.FSM. It returns nil or an error; an error means the
// command was rejected and changed nothing.
func (f *FSM) Apply(l *raft.Log) any {
	var c Command
	if err := json.Unmarshal(l.Data, &c); err != nil {
		f.mu.Lock()
		f.applied = max(f.applied, l.Index)
		f.mu.Unlock()
		return fmt.Errorf("decode command at index %d: %w", l.Index, err)
	}
	f.mu.Lock()
	err := apply(f.state, &c)
	// A rejected command is applied too: it changed nothing, on every host.
	f.applied = max(f.applied, l.Index)
	f.mu.Unlock()
	if err == nil {
		select {
		case f.notify <- struct{}{}:
		default:
		}
	}
	return err
}

// apply changes s by c, or returns an error and leaves s as it was. It is
// pure so that it can be tested without raft.
func apply(s *model.State, c *Command) error {
	switch c.Op {
	case OpRegisterHost:
		if c.Host == nil {
			return errors.New("register_host: no host")
		}
		return applyRegister(s, c)
	case OpAddVM:
		if c.VM == nil {
			return errors.New("add_vm: no vm")
		}
		if err := validateVMAtApply(s, c.VM); err != nil {
			return err
		}
		vm := *c.VM
		s.Config.VMs[vm.Name] = &vm
	case OpRemoveVM:
		if _, ok := s.Config.VMs[c.Name]; !ok {
			return &NotFoundError{Kind: "vm", Name: c.Name}
		}
		delete(s.Config.VMs, c.Name)
		delete(s.Status.Placements, c.Name)
		delete(s.Status.Pins, c.Name)
	case OpPlace:
		for _, p := range c.Placements {
			if _, ok := s.Config.VMs[p.VM]; !ok {
				return &NotFoundError{Kind: "vm", Name: p.VM}
			}
			if _, ok := s.Config.Hosts[p.Host]; p.Host != "" && !ok {
				return &NotFoundError{Kind: "host", Name: p.Host}
			}
		}
		for _, p := range c.Placements {
			s.Status.Generation++
			p.Generation = s.Status.Generation
			p.Term = c.Term
			p.Since = c.At
			s.Status.Placements[p.VM] = &p
		}
	case OpHostState:
		hc := c.HostState
		if hc == nil {
			return errors.New("host_state: no change")
		}
		if _, ok := s.Config.Hosts[hc.Host]; !ok {
			return &NotFoundError{Kind: "host", Name: hc.Host}
		}
		hs := s.Status.Hosts[hc.Host]
		if hs == nil {
			hs = &model.HostStatus{State: model.HostAlive}
			s.Status.Hosts[hc.Host] = hs
		}
		if err := checkTransition(hc.Host, hs.State, hc.State); err != nil {
			return err
		}
		setHostState(hs, hc, c.At)
		if hc.State == model.HostFenced {
			forgetReports(s, hc.Host)
		}
	case OpFenceConfirm:
		hc, rec := c.HostState, c.Fence
		if hc == nil || rec == nil {
			return errors.New("fence_confirm: no host or record")
		}
		hs := s.Status.Hosts[hc.Host]
		if _, ok := s.Config.Hosts[hc.Host]; !ok || hs == nil {
			return &NotFoundError{Kind: "host", Name: hc.Host}
		}
		if hs.State != model.HostLost && hs.State != model.HostFenceFailed {
			return &ConflictError{What: fmt.Sprintf("host %s is %s, not lost: only a lost host can be confirmed down", hc.Host, hs.State)}
		}
		hc.State = model.HostFenced
		if hc.RecoveryID == "" {
			hc.RecoveryID = hs.RecoveryID
		}
		setHostState(hs, hc, c.At)
		forgetReports(s, hc.Host)
		appendFence(s, *rec)
	case OpHostAttr:
		a := c.Attr
		if a == nil {
			return errors.New("host_attr: no attribute")
		}
		if _, ok := s.Config.Hosts[a.Host]; !ok {
			return &NotFoundError{Kind: "host", Name: a.Host}
		}
		if err := validAttrName(a.Key); err != nil {
			return &ValidationError{Field: "key", Err: err}
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
	case OpEvacuation:
		if e := c.Evacuation; e != nil {
			if _, ok := s.Config.Hosts[e.Host]; !ok {
				return &NotFoundError{Kind: "host", Name: e.Host}
			}
			if s.Status.Evacuations == nil {
				s.Status.Evacuations = map[string]*model.Evacuation{}
			}
			cp := *e
			s.Status.Evacuations[e.Host] = &cp
		} else {
			if _, ok := s.Status.Evacuations[c.Name]; !ok {
				return &ConflictError{What: fmt.Sprintf("host %s is not being evacuated", c.Name)}
			}
			delete(s.Status.Evacuations, c.Name)
		}
	case OpPin:
		return applyPin(s, c)
	case OpRebalance:
		return applyRebalance(s, c.Rebalance)
	case OpMaintenance:
		if _, ok := s.Config.Hosts[c.Name]; !ok {
			return &NotFoundError{Kind: "host", Name: c.Name}
		}
		if c.Maintenance == nil {
			if _, ok := s.Status.Maintenance[c.Name]; !ok {
				return &ConflictError{What: fmt.Sprintf("host %s is not in maintenance", c.Name)}
			}
			delete(s.Status.Maintenance, c.Name)
			return nil
		}
		if s.Status.Maintenance == nil {
			s.Status.Maintenance = map[string]*model.Maintenance{}
		}
		cp := *c.Maintenance
		s.Status.Maintenance[c.Name] = &cp
	case OpRemoveHost:
		return applyRemoveHost(s, c.Name)
	case OpFormed:
		if len(c.Formed) == 0 {
			return errors.New("formed: no hosts")
		}
		s.Status.Formed = maps.Clone(c.Formed)
	case OpExpectHost:
		if c.Expected == nil {
			if _, ok := s.Config.Expected[c.Name]; !ok {
				return &ConflictError{What: fmt.Sprintf("host %s is not expected", c.Name)}
			}
			delete(s.Config.Expected, c.Name)
			return nil
		}
		if err := model.ValidateName("host", c.Name); err != nil {
			return &ValidationError{Field: "name", Err: err}
		}
		if _, ok := s.Config.Hosts[c.Name]; ok {
			return &ConflictError{What: fmt.Sprintf("host %s is already a member of the cluster", c.Name)}
		}
		if s.Config.Expected == nil {
			s.Config.Expected = map[string]*model.Expected{}
		}
		cp := *c.Expected
		s.Config.Expected[c.Name] = &cp
	case OpSetRules:
		if c.Rules == nil {
			return errors.New("set_rules: no rules")
		}
		if *c.Rules != "" {
			if _, err := checkRules(s, *c.Rules); err != nil {
				return err
			}
		}
		s.Config.Rules = *c.Rules
	case OpSetFencing:
		if c.FencingOff != nil && strings.TrimSpace(c.FencingOff.By) == "" {
			return &ValidationError{Field: "by", Err: errors.New("turning fencing off needs the name of who acknowledged the risk")}
		}
		s.Config.FencingOff = c.FencingOff
	case OpFenceRecord:
		if c.Fence == nil {
			return errors.New("fence_record: no record")
		}
		appendFence(s, *c.Fence)
	case OpSetFenceDevices:
		return applySetFenceDevices(s, c)
	case OpHostSeen:
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
	case OpObserve:
		o := c.Observation
		if o == nil {
			return errors.New("observe: no observation")
		}
		if _, ok := s.Config.Hosts[o.Host]; !ok {
			return &NotFoundError{Kind: "host", Name: o.Host}
		}
		cp := *o
		s.Status.Observed[o.Host] = &cp
	default:
		return fmt.Errorf("unknown command %q", c.Op)
	}
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
func applyRegister(s *model.State, c *Command) error {
	h := *c.Host
	if err := model.ValidateName("host", h.Name); err != nil {
		return &ValidationError{Field: "host.name", Err: err}
	}
	offer := c.Fencing
	if offer != nil && checkTopology(h.Name, offer, false) != nil {
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
			s.Config.Fencing[h.Name] = cloneTopology(offer)
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
		s.Status.FenceOffers[h.Name] = &model.FenceOffer{Topology: *cloneTopology(offer), At: c.At}
	}
	return nil
}

// registerOutcome says what a registration of host with offer does to
// state s: "first" (a new host, its topology is taken), "offer" (a known
// host offers another topology, kept pending), or "" (nothing changes in
// its fencing). Handlers use it to say so in the log.
func registerOutcome(s *model.State, host string, offer *model.FenceTopology) string {
	if _, known := s.Config.Hosts[host]; !known {
		return "first"
	}
	if offer == nil || s.Config.Fencing[host].Same(offer) {
		return ""
	}
	return "offer"
}

// applySetFenceDevices is an operator's change of a host's fence devices;
// see OpSetFenceDevices.
func applySetFenceDevices(s *model.State, c *Command) error {
	host, t, rec := c.Name, c.Fencing, c.Fence
	if t == nil || rec == nil {
		return errors.New("set_fence_devices: no topology or record")
	}
	h, ok := s.Config.Hosts[host]
	if !ok {
		return &NotFoundError{Kind: "host", Name: host}
	}
	if h.Witness {
		return &ConflictError{What: fmt.Sprintf("host %s is a witness: it runs no VM and is never fenced", host)}
	}
	switch rec.Action {
	case model.FenceDevicesAccept:
		o := s.Status.FenceOffers[host]
		if o == nil {
			return &ConflictError{What: fmt.Sprintf("host %s offers no other fence devices than the cluster uses (vmha fence devices lists offers)", host)}
		}
		if !o.Topology.Same(t) {
			return &ConflictError{What: fmt.Sprintf("host %s changed its offer meanwhile: look at it again (vmha fence devices) and accept again", host)}
		}
		// The offer came from the host: no allow_unsafe.
		if err := checkTopology(host, t, false); err != nil {
			return &ValidationError{Field: "fencing", Err: err}
		}
	case model.FenceDevicesSet:
		if err := checkTopology(host, t, true); err != nil {
			return &ValidationError{Field: "fencing", Err: err}
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
	s.Config.Fencing[host] = cloneTopology(t)
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

// checkTopology validates a replicated topology of host as fencing/spec
// does, without reading a file or opening a device: the allow-lists apply,
// and allow_unsafe is honoured only when trusted (an operator's command).
func checkTopology(host string, t *model.FenceTopology, trusted bool) error {
	sp := SpecOf(host, t)
	if trusted {
		return sp.Validate()
	}
	return sp.ValidateUntrusted()
}

// cloneTopology is a deep copy of t (its params maps and level slices).
func cloneTopology(t *model.FenceTopology) *model.FenceTopology {
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

// HostAttr is one attribute change.
type HostAttr struct {
	Host      string `json:"host"`
	Key       string `json:"key"`
	Value     string `json:"value"`
	Transient bool   `json:"transient,omitempty"`
	// Boot is the host's boot id a transient attribute belongs to.
	Boot string `json:"boot,omitempty"`
}

// validAttrName keeps attribute names to what rules can name; names that
// start with '#' are built in (#uname).
func validAttrName(k string) error {
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

// checkTransition enforces the host lifecycle, so that a late answer from a
// fence that was overtaken (an operator confirmed the host, or another fence
// succeeded) cannot move a fenced host back to lost or fence-failed, and a
// host can only be fenced after it was lost.
func checkTransition(host string, from, to model.HostState) error {
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
		return &ConflictError{What: fmt.Sprintf("host %s cannot go from %s to %s", host, from, to)}
	}
	return nil
}

func setHostState(hs *model.HostStatus, hc *HostStateChange, at time.Time) {
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
	if n := len(s.Status.FenceHistory); n > maxFenceHistory {
		s.Status.FenceHistory = append([]model.FenceRecord(nil), s.Status.FenceHistory[n-maxFenceHistory:]...)
	}
}

// validateVMAtApply is what apply checks of a new VM: only what cannot
// change between versions (its name, no duplicate, its preferred host). The
// domain XML was checked before the command was proposed (ValidateVM), and
// a stricter XML reader in a later version must not make a replayed log
// mean something else on an upgraded host than on the others.
func validateVMAtApply(s *model.State, vm *model.VM) error {
	if err := model.ValidateName("vm", vm.Name); err != nil {
		return &ValidationError{Field: "name", Err: err}
	}
	if _, ok := s.Config.VMs[vm.Name]; ok {
		return &ConflictError{What: fmt.Sprintf("vm %q already exists", vm.Name)}
	}
	if vm.Prefer != "" {
		if _, ok := s.Config.Hosts[vm.Prefer]; !ok {
			return &ValidationError{Field: "prefer", Err: fmt.Errorf("unknown host %q (known: %v)", vm.Prefer, model.SortedKeys(s.Config.Hosts))}
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
		return &ValidationError{Field: "name", Err: err}
	}
	if _, ok := s.Config.VMs[vm.Name]; ok {
		return &ConflictError{What: fmt.Sprintf("vm %q already exists", vm.Name)}
	}
	info, err := model.ParseDomainXML([]byte(vm.XML))
	if err != nil {
		return &ValidationError{Field: "xml", Err: err}
	}
	if info.Name != vm.Name {
		return &ValidationError{Field: "xml", Err: fmt.Errorf("domain <name> is %q, but the VM is called %q", info.Name, vm.Name)}
	}
	if err := model.CheckFits(info, s.Config.Hosts); err != nil {
		return &ValidationError{Field: "xml", Err: err}
	}
	if vm.Prefer != "" {
		if _, ok := s.Config.Hosts[vm.Prefer]; !ok {
			return &ValidationError{Field: "prefer", Err: fmt.Errorf("unknown host %q (known: %v)", vm.Prefer, model.SortedKeys(s.Config.Hosts))}
		}
	}
	return nil
}

// ValidationError is bad input in a named field.
type ValidationError struct {
	Field string
	Err   error
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *ValidationError) Unwrap() error { return e.Err }

// NotFoundError names a missing host or VM.
type NotFoundError struct{ Kind, Name string }

func (e *NotFoundError) Error() string { return fmt.Sprintf("unknown %s %q", e.Kind, e.Name) }

// ConflictError is a request that contradicts the current state.
type ConflictError struct{ What string }

func (e *ConflictError) Error() string { return e.What }

// snapshotFormat marks a snapshot that carries its applied index. Older
// snapshots are the bare state.
const snapshotFormat = "vmha-state/2"

// snapshotEnvelope is a snapshot: the state and the index of the last
// command it reflects.
type snapshotEnvelope struct {
	Format  string          `json:"format"`
	Applied uint64          `json:"applied_index"`
	State   json.RawMessage `json:"state"`
}

// Snapshot implements raft.FSM.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	st, err := json.Marshal(f.state)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(snapshotEnvelope{Format: snapshotFormat, Applied: f.applied, State: st})
	if err != nil {
		return nil, err
	}
	return fsmSnapshot(b), nil
}

// Restore implements raft.FSM. It reads both snapshot formats; one in the
// old format (the bare state) leaves the applied index at 0 until the next
// command, so an agent waits for that command rather than trust it.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	var env snapshotEnvelope
	if err := json.Unmarshal(b, &env); err == nil && env.Format == snapshotFormat {
		b = env.State
	} else {
		env = snapshotEnvelope{}
	}
	s := model.NewState()
	if err := json.Unmarshal(b, s); err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	s.Fill()
	f.mu.Lock()
	f.state = s
	f.applied = env.Applied
	f.mu.Unlock()
	select {
	case f.notify <- struct{}{}:
	default:
	}
	return nil
}

type fsmSnapshot []byte

func (s fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s fsmSnapshot) Release() {}

// applyPin sets or clears pins; see OpPin.
func applyPin(s *model.State, c *Command) error {
	if p := c.Pin; p != nil {
		if _, ok := s.Config.VMs[p.VM]; !ok {
			return &NotFoundError{Kind: "vm", Name: p.VM}
		}
		if h, ok := s.Config.Hosts[p.Host]; !ok || h.Witness {
			return &ValidationError{Field: "pin.host", Err: fmt.Errorf("%q is not a host that runs VMs", p.Host)}
		}
		if !p.Expires.IsZero() && !p.Expires.After(c.At) {
			return &ValidationError{Field: "pin.expires", Err: fmt.Errorf("%s is not in the future", p.Expires.Format(time.RFC3339))}
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
			return &ConflictError{What: fmt.Sprintf("vm %s has no pin (vmha pins lists them)", vm)}
		}
	}
	for _, vm := range c.Names {
		delete(s.Status.Pins, vm)
	}
	return nil
}

// maxRebalances bounds the rebalance history kept in the state.
const maxRebalances = 20

// applyRebalance starts a rebalance (a new ID, none under way) or updates
// the one under way.
func applyRebalance(s *model.State, r *model.Rebalance) error {
	if r == nil || r.ID == "" {
		return errors.New("rebalance: no record")
	}
	for _, m := range r.Moves {
		if _, ok := s.Config.VMs[m.VM]; !ok && m.State == model.MovePlanned {
			return &NotFoundError{Kind: "vm", Name: m.VM}
		}
	}
	cp := *r
	cp.Moves = append([]model.RebalanceMove(nil), r.Moves...)
	if cur := s.Status.ActiveRebalance(); cur != nil {
		if cur.ID != r.ID {
			return &ConflictError{What: fmt.Sprintf("rebalance %s (by %s) is under way; vmha rebalance cancel ends it", cur.ID, cur.By)}
		}
		s.Status.Rebalances[len(s.Status.Rebalances)-1] = &cp
		return nil
	}
	for _, old := range s.Status.Rebalances {
		if old.ID == r.ID {
			return &ConflictError{What: fmt.Sprintf("rebalance %s has ended", r.ID)}
		}
	}
	s.Status.Rebalances = append(s.Status.Rebalances, &cp)
	if n := len(s.Status.Rebalances); n > maxRebalances {
		s.Status.Rebalances = append([]*model.Rebalance(nil), s.Status.Rebalances[n-maxRebalances:]...)
	}
	return nil
}

// applyRemoveHost removes a host and everything that names it. A host
// with VMs placed on it (or moving from it) is refused: they must go first.
func applyRemoveHost(s *model.State, host string) error {
	if _, ok := s.Config.Hosts[host]; !ok {
		return &NotFoundError{Kind: "host", Name: host}
	}
	var vms []string
	for _, vm := range model.SortedKeys(s.Status.Placements) {
		if p := s.Status.Placements[vm]; p.Host == host || p.MigrateFrom == host {
			vms = append(vms, vm)
		}
	}
	if len(vms) > 0 {
		return &ConflictError{What: fmt.Sprintf("host %s still has VMs placed on it (%s): evacuate it first (vmha evacuate %s)", host, strings.Join(vms, ", "), host)}
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
	return nil
}
