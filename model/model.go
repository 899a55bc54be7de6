// Package model holds the cluster's replicated data: the desired config
// (hosts, VMs, fence devices) and the observed status (where each VM runs,
// host states, fence history). It has no behaviour beyond validation and
// copying; the state machine in cluster/ owns how it changes.
package model

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/vmha/vmha/internal/secret"
)

// Config is the desired state operators change through vmha.
type Config struct {
	Hosts map[string]*Host `json:"hosts"`
	VMs   map[string]*VM   `json:"vms"`
	// Fencing maps a host to how it is fenced: each host registers its own
	// topology (from its vmhad.yaml), so that any survivor can fence it.
	Fencing map[string]*FenceTopology `json:"fencing"`
	// HostAttrs are permanent host attributes set with vmha host attr set.
	HostAttrs map[string]map[string]string `json:"host_attrs,omitempty"`
	// Rules is the cluster.yaml (policy, host and VM placement settings,
	// constraints) placement follows; empty: the built-in defaults.
	Rules string `json:"rules,omitempty"`
	// FencingOff, when set, is an operator's explicit acknowledgement that
	// lost hosts are recovered WITHOUT being fenced (vmha fence disable).
	FencingOff *FencingOff `json:"fencing_off,omitempty"`
	// Expected are hosts an operator added (vmha host add) that have not
	// registered yet: they count for wait_for_all, and with closed
	// admission only known or expected hosts may register.
	Expected map[string]*Expected `json:"expected,omitempty"`
	// VMStates are the operators' targets by VM (vmha vm set); a VM
	// without one follows the rules (started by default).
	VMStates map[string]*VMState `json:"vm_states,omitempty"`
	// Maintenance, when set, puts the whole cluster in maintenance.
	Maintenance *ClusterMaintenance `json:"maintenance,omitempty"`
	// Tokens are the web console's API tokens by ID (vmha token create),
	// each with the hash of its secret only (token.go).
	Tokens map[string]*Token `json:"tokens,omitempty"`
}

// Expected is a host announced by vmha host add.
type Expected struct {
	By string    `json:"by"`
	At time.Time `json:"at,omitzero"`
}

// Maintenance marks a host whose vmhad is being worked on (vmha host
// maintenance): it may stop, crash or restart without being fenced, and
// its VMs are neither moved nor recovered meanwhile.
type Maintenance struct {
	By     string    `json:"by"`
	At     time.Time `json:"at,omitzero"`
	Reason string    `json:"reason,omitempty"`
}

// FencingOff records who turned fencing off, and when.
type FencingOff struct {
	By string    `json:"by"`
	At time.Time `json:"at,omitzero"`
}

// Host is a hypervisor host that runs vmhad.
type Host struct {
	Name string `json:"name"`
	// APIAddr is the host's peer API (host:port), used to forward writes
	// to the leader and to nudge agents.
	APIAddr string `json:"api_addr"`
	// MemoryMiB and CPUs are the host's capacity as its hypervisor reports.
	MemoryMiB uint64 `json:"memory_mib"`
	CPUs      uint   `json:"cpus"`
	// Witness hosts only vote: no hypervisor, no VMs, nothing to fence.
	Witness bool `json:"witness,omitempty"`
	// Watchdog is the timeout of the host's armed self-fencing watchdog
	// (0: none): cut off from the quorum, the host stops petting it and is
	// reset, so the majority may treat it as fenced after WatchdogWait.
	Watchdog time.Duration `json:"watchdog,omitempty"`
	// LibvirtURI is how other hosts' libvirtd reach this host's for a
	// live migration (qemu+tls://HOST/system); empty: no live migration
	// to this host.
	LibvirtURI string `json:"libvirt_uri,omitempty"`
	// MigrationURI is the address of the migration stream (tcp://ADDR).
	MigrationURI string `json:"migration_uri,omitempty"`
}

// VM is a virtual machine vmha keeps running.
type VM struct {
	Name string `json:"name"`
	// XMLPath is where the operator's domain XML came from (for display).
	XMLPath string `json:"xml_path,omitempty"`
	// XML is the domain definition every host defines the VM from, kept in
	// the replicated state so that any survivor can start it.
	XML       string `json:"xml"`
	MemoryMiB uint64 `json:"memory_mib"`
	VCPUs     uint   `json:"vcpus"`
	// Prefer is the host the VM runs on when that host is up.
	Prefer string `json:"prefer,omitempty"`
	// Disks are the sources of its disks (from the XML): shared storage.
	Disks []string `json:"disks,omitempty"`

	// UpdatedAt and UpdatedBy say when and by whom (the authenticated
	// principal) the definition was last replaced (vmha vm update); zero
	// for a VM never updated.
	UpdatedAt time.Time `json:"updated_at,omitzero"`
	UpdatedBy string    `json:"updated_by,omitempty"`
	// PreviousXML is the definition the update replaced, kept while the VM
	// may still run with it (PendingRestart).
	PreviousXML string `json:"previous_xml,omitempty"`
	// PendingRestart is set when the definition was replaced while the VM
	// was placed on a host: its running domain keeps the previous
	// definition until it next starts (the agent defines the replicated
	// XML before every start).
	PendingRestart bool `json:"pending_restart,omitempty"`
	// RestartRequested (vmha vm update --restart) asks the agent of the
	// host it runs on to restart it cold, once, with the new definition.
	RestartRequested bool `json:"restart_requested,omitempty"`
}

// FenceDevice is one device of a host's fence topology, as replicated.
type FenceDevice struct {
	// Name is unique in the cluster: the host's own device name, "@", the
	// host ("bmc@host1").
	Name string `json:"name"`
	// Type is ipmi, libvirt or agent (see fencing/spec).
	Type   string            `json:"type"`
	Params map[string]string `json:"params,omitempty"`
	// Password was read from the registering host's password file or
	// environment; it lives only in the replicated state (data_dir, 0700).
	Password secret.Persist `json:"password,omitempty"`
	Timeout  time.Duration  `json:"timeout,omitempty"`
	// AllowUnsafe lifts the fencing allow-lists for this device (see
	// fencing/spec). Only an operator's vmha fence devices set
	// --allow-unsafe puts it in the state; a host's registration never.
	AllowUnsafe bool `json:"allow_unsafe,omitempty"`
}

// Describe names the device for status and history, without secrets; a
// device outside the allow-lists says so.
func (d *FenceDevice) Describe() string {
	if d.AllowUnsafe {
		cp := *d
		cp.AllowUnsafe = false
		return cp.Describe() + " [allow_unsafe]"
	}
	switch d.Type {
	case "ipmi":
		port := d.Params["port"]
		if port == "" {
			port = "623"
		}
		return fmt.Sprintf("%s (ipmi %s:%s)", d.Name, d.Params["address"], port)
	case "libvirt":
		return fmt.Sprintf("%s (libvirt %s)", d.Name, d.Params["uri"])
	case "agent":
		return fmt.Sprintf("%s (%s %s)", d.Name, d.Params["agent"], d.Params["ip"])
	}
	return d.Name + " (" + d.Type + ")"
}

// FenceTopology is how one host is fenced: levels of device names tried in
// order, every device of a level must succeed.
type FenceTopology struct {
	Devices     []FenceDevice `json:"devices"`
	Levels      [][]string    `json:"levels"`
	Action      string        `json:"action,omitempty"`
	Delay       time.Duration `json:"delay,omitempty"`
	RandomDelay time.Duration `json:"random_delay,omitempty"`
}

// Device returns the named device, or nil.
func (t *FenceTopology) Device(name string) *FenceDevice {
	for i := range t.Devices {
		if t.Devices[i].Name == name {
			return &t.Devices[i]
		}
	}
	return nil
}

// Same reports whether t and o are the same topology, passwords included
// (a nil topology is the same only as another nil one).
func (t *FenceTopology) Same(o *FenceTopology) bool {
	if t == nil || o == nil {
		return t == nil && o == nil
	}
	a, _ := json.Marshal(t)
	b, _ := json.Marshal(o)
	return string(a) == string(b)
}

// PasswordChanges names the devices of o that t also has, with the same
// type and params, but another password: what a rotated BMC password
// looks like. Never the passwords themselves.
func (t *FenceTopology) PasswordChanges(o *FenceTopology) []string {
	if t == nil || o == nil {
		return nil
	}
	var out []string
	for _, d := range o.Devices {
		if old := t.Device(d.Name); old != nil && old.Password != d.Password {
			out = append(out, d.Name)
		}
	}
	sort.Strings(out)
	return out
}

// Describe summarises the topology for status: "L1: a; L2: b + c".
func (t *FenceTopology) Describe() string {
	if t == nil || len(t.Levels) == 0 {
		return "none"
	}
	var parts []string
	for i, l := range t.Levels {
		var ds []string
		for _, n := range l {
			if d := t.Device(n); d != nil {
				ds = append(ds, d.Describe())
			} else {
				ds = append(ds, n)
			}
		}
		p := strings.Join(ds, " + ")
		if len(t.Levels) > 1 {
			p = fmt.Sprintf("L%d: %s", i+1, p)
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, "; ")
}

// Status is what the cluster observed and decided.
type Status struct {
	// Placements maps a VM to the host it should run on.
	Placements map[string]*Placement `json:"placements"`
	// Hosts holds each host's lifecycle as the coordinator sees it.
	Hosts map[string]*HostStatus `json:"hosts"`
	// Observed is what each host's agent last reported: VM → state.
	Observed map[string]*Observation `json:"observed"`
	// FenceHistory lists every fence attempt, oldest first, and every
	// operator's change of a host's fence devices (Action devices-set or
	// devices-accept).
	FenceHistory []FenceRecord `json:"fence_history"`
	// FenceOffers are the fence topologies hosts offered in a
	// re-registration that differ from the ones the cluster uses, by host:
	// they are used only once an operator accepts them (vmha fence devices
	// accept HOST).
	FenceOffers map[string]*FenceOffer `json:"fence_offers,omitempty"`
	// Generation increases with every placement decision.
	Generation uint64 `json:"generation"`
	// TransientAttrs are host attributes that last until the host's
	// vmhad restarts (Pacemaker's transient attributes).
	TransientAttrs map[string]*TransientAttrs `json:"transient_attrs,omitempty"`
	// Evacuations by host, until the host is brought back online.
	Evacuations map[string]*Evacuation `json:"evacuations,omitempty"`
	// Formed records the boot id of every host when the cluster was last
	// seen whole (quorum.wait_for_all): while an alive host still runs that
	// boot, the cluster has formed since the last cold start.
	Formed map[string]string `json:"formed,omitempty"`
	// Maintenance by host (vmha host maintenance).
	Maintenance map[string]*Maintenance `json:"maintenance,omitempty"`
	// Pins by VM (vmha migrate --pin): explicit, listed, and expiring.
	Pins map[string]*Pin `json:"pins,omitempty"`
	// Rebalances are the last rebalancing runs, oldest first; at most one
	// (the last) is under way.
	Rebalances []*Rebalance `json:"rebalances,omitempty"`
	// Failures are the fail counts by VM, then host.
	Failures map[string]map[string]*Failure `json:"failures,omitempty"`
	// Events is the cluster's memory, oldest first, at most MaxEvents;
	// EventSeq numbers the last one.
	Events   []Event `json:"events,omitempty"`
	EventSeq uint64  `json:"event_seq,omitempty"`
	// AlertedSeq is the last event the leader handed to every alert
	// target: a new leader goes on from there.
	AlertedSeq uint64 `json:"alerted_seq,omitempty"`
	// RulesHistory are the last placement rules applied, oldest first;
	// the last is the one in force (Config.Rules).
	RulesHistory []RulesVersion `json:"rules_history,omitempty"`
}

// Rebalance is one run of vmha rebalance (or of the nightly schedule): the
// moves planned, and how each ended.
type Rebalance struct {
	ID string    `json:"id"`
	By string    `json:"by"`
	At time.Time `json:"at,omitzero"`
	// Before and Planned are the cluster scores now and after the planned
	// moves (lower is better balanced); After is measured at the end.
	Before   float64         `json:"before"`
	Planned  float64         `json:"planned"`
	After    float64         `json:"after,omitempty"`
	MaxMoves int             `json:"max_moves"`
	MinGain  float64         `json:"min_gain"`
	Parallel int             `json:"parallel"`
	Moves    []RebalanceMove `json:"moves"`
	// Skipped says why VMs were never candidates (no live migration,
	// pinned, ...), as the planner reported it.
	Skipped map[string]string `json:"skipped,omitempty"`
	Done    bool              `json:"done,omitempty"`
	EndedAt time.Time         `json:"ended_at,omitzero"`
	Note    string            `json:"note,omitempty"`
	// MovedLive and Restarted count the done moves by outcome, once the
	// run ended.
	MovedLive int `json:"moved_live,omitempty"`
	Restarted int `json:"restarted,omitempty"`
}

// RebalanceMove is one planned live migration of a rebalance.
type RebalanceMove struct {
	VM   string  `json:"vm"`
	From string  `json:"from"`
	To   string  `json:"to"`
	Gain float64 `json:"gain"`
	// Step: the moves of a step start once every earlier step ended.
	Step        int    `json:"step"`
	MigrationID string `json:"migration_id,omitempty"`
	// State is planned, moving, done, failed or skipped.
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"`
	// Outcome is how a done move got the VM there: live, or restart (its
	// live migration failed and it was stopped on From, then started on
	// To).
	Outcome string `json:"outcome,omitempty"`
}

// Move states of a rebalance.
const (
	MovePlanned = "planned"
	MoveMoving  = "moving"
	MoveDone    = "done"
	MoveFailed  = "failed"
	MoveSkipped = "skipped"
)

// Terminal reports whether a move of this state has ended.
func (m RebalanceMove) Terminal() bool {
	return m.State == MoveDone || m.State == MoveFailed || m.State == MoveSkipped
}

// ActiveRebalance is the rebalance under way, or nil.
func (s *Status) ActiveRebalance() *Rebalance {
	if n := len(s.Rebalances); n > 0 && !s.Rebalances[n-1].Done {
		return s.Rebalances[n-1]
	}
	return nil
}

// Pin keeps a VM on a host with an INFINITY location preference until it
// expires or an operator clears it. It is the only way a manual move
// outlasts the rules: a plain vmha migrate leaves nothing behind, unlike
// Pacemaker's hidden cli-prefer constraint.
type Pin struct {
	VM   string    `json:"vm"`
	Host string    `json:"host"`
	By   string    `json:"by"`
	At   time.Time `json:"at,omitzero"`
	// Expires is when the pin stops counting; zero means never.
	Expires time.Time `json:"expires,omitzero"`
}

// Active reports whether the pin still counts at now.
func (p *Pin) Active(now time.Time) bool {
	return p.Expires.IsZero() || now.Before(p.Expires)
}

// Placement is one VM's desired host, decided by the leader of Term.
type Placement struct {
	VM         string    `json:"vm"`
	Host       string    `json:"host"`
	Generation uint64    `json:"generation"`
	Term       uint64    `json:"term"`
	Reason     string    `json:"reason"`
	Since      time.Time `json:"since,omitzero"`
	// RecoveryID ties a placement made during a host recovery to its log
	// events and fence record.
	RecoveryID string `json:"recovery_id,omitempty"`
	// MigrateFrom is set while the VM moves live from that host to Host:
	// the VM is on MigrateFrom until the move is confirmed, so Host's
	// agent must not start it, and the planner must not move it.
	MigrateFrom string `json:"migrate_from,omitempty"`
	// MigrationID names the move in logs and status.
	MigrationID string `json:"migration_id,omitempty"`
	// Cold makes the move a stop on MigrateFrom, then a start on Host (a
	// VM that cannot move live, evacuated with --on-stuck stop-restart, or
	// a live move that failed without saying where the VM runs): Host
	// starts it only once MigrateFrom reported it inactive (or was fenced).
	Cold bool `json:"cold,omitempty"`
	// Fallback, on a cold move, is why it replaced a live one ("live
	// migration refused: ...").
	Fallback string `json:"fallback,omitempty"`
	// Moved records how the move that made this placement ended (set only
	// on the placement that ends a move, until the VM is placed anew).
	Moved *MoveRecord `json:"moved,omitempty"`
}

// MoveRecord is how one move ended.
type MoveRecord struct {
	// ID is the move's migration ID (a cold fallback's ID starts with
	// the live move's).
	ID   string `json:"migration_id"`
	From string `json:"from"`
	To   string `json:"to"`
	// Outcome is live or restart (the VM is on To), or aborted, refused
	// or failed (it stayed on From).
	Outcome string `json:"outcome"`
	// Why says why it was not live ("" for live).
	Why string `json:"why,omitempty"`
}

// Move outcomes that put the VM on the target.
const (
	MoveLive    = "live"
	MoveRestart = "restart"
)

// Arrived reports whether the move put the VM on its target.
func (m *MoveRecord) Arrived() bool {
	return m != nil && (m.Outcome == MoveLive || m.Outcome == MoveRestart)
}

// TransientAttrs hold for one boot of a host's vmhad.
type TransientAttrs struct {
	Boot  string            `json:"boot"`
	Attrs map[string]string `json:"attrs"`
}

// Evacuation drains a host: its VMs move away, at most Parallel at once,
// and nothing new is placed on it until vmha host online.
type Evacuation struct {
	// ID names this evacuation: the leader's updates carry it, so that
	// one the operator ended (vmha host online) is never re-created.
	ID       string    `json:"id,omitempty"`
	Host     string    `json:"host"`
	Parallel int       `json:"parallel"`
	OnStuck  string    `json:"on_stuck"` // fail or stop-restart
	By       string    `json:"by"`
	At       time.Time `json:"at,omitzero"`
	Deadline time.Time `json:"deadline,omitzero"`
	// Stuck lists VMs that cannot move live, with why (OnStuck fail).
	Stuck map[string]string `json:"stuck,omitempty"`
	// Done is set once no VM is placed on the host any more.
	Done bool `json:"done,omitempty"`
	// Storage, when set, limits the evacuation to the VMs (listed in
	// VMs) whose disks are on that cluster file system, so that it can be
	// taken down on the host for maintenance; the host keeps its other
	// VMs and takes new ones that do not use it.
	Storage string   `json:"storage,omitempty"`
	VMs     []string `json:"vms,omitempty"`
	// MovedLive and Restarted count the VMs that left the host by each
	// outcome, set when it is done.
	MovedLive int `json:"moved_live,omitempty"`
	Restarted int `json:"restarted,omitempty"`
}

// Covers reports whether the evacuation moves vm off its host.
func (e *Evacuation) Covers(vm string) bool {
	return e.Storage == "" || slices.Contains(e.VMs, vm)
}

// HostState is where a host stands in the failure lifecycle.
type HostState string

// Host states. A host goes alive → lost (serf declared it failed) → fencing
// → fenced or fence-failed; a fenced host that rejoins becomes alive again.
const (
	HostAlive       HostState = "alive"
	HostLost        HostState = "lost"
	HostFenced      HostState = "fenced"
	HostFenceFailed HostState = "fence-failed"
)

// HostStatus is one host's lifecycle state.
type HostStatus struct {
	State      HostState `json:"state"`
	Reason     string    `json:"reason,omitempty"`
	Since      time.Time `json:"since,omitzero"`
	RecoveryID string    `json:"recovery_id,omitempty"`
	// FenceRequestedBy names the operator request (vmha fence HOST) that
	// made this host lost; such a host is fenced even if it still gossips.
	FenceRequestedBy string `json:"fence_requested_by,omitempty"`
	// Unfenced marks a host released with fencing off: it was never
	// powered off, so when it gossips again it is simply back.
	Unfenced bool `json:"unfenced,omitempty"`
	// LostBoot is the boot id the host gossiped when it was lost; after a
	// fence, only a host with another boot id (it restarted) is back.
	LostBoot string `json:"lost_boot,omitempty"`
	// LostAt and FencedAt time the last recovery (for the demo timeline).
	LostAt   time.Time `json:"lost_at,omitzero"`
	FencedAt time.Time `json:"fenced_at,omitzero"`
	// SeenAlive is set when gossip first reports the host alive after it
	// registered (SeenAliveAt). A host never seen alive is only a
	// registration, a peer's word: its fence devices are not checked and
	// the cluster does not fence it on its own (an operator's vmha fence
	// HOST still does).
	SeenAlive   bool      `json:"seen_alive"`
	SeenAliveAt time.Time `json:"seen_alive_at,omitzero"`
}

// Observation is one agent's report.
type Observation struct {
	Host string    `json:"host"`
	At   time.Time `json:"at,omitzero"`
	// Boot is the reporting vmhad's boot id (as in gossip): a report from
	// an earlier life of the host is told apart from a current one.
	Boot string               `json:"boot,omitempty"`
	VMs  map[string]VMObserve `json:"vms"`
}

// VMObserve is one VM as an agent saw it.
type VMObserve struct {
	State string `json:"state"`
	// Since is when the agent first saw the VM in this state.
	Since time.Time `json:"since,omitzero"`
	Error string    `json:"error,omitempty"`
	// FailedAt is the time of the VM's last failed define or start on
	// this host (zero: none since it last started): the leader counts
	// each new one once, as a fail count.
	FailedAt time.Time `json:"failed_at,omitzero"`
}

// FenceOffer is a topology a registered host offered in place of the one
// the cluster uses for it. It holds the offered passwords (the state is the
// only place they live); no view shows them.
type FenceOffer struct {
	Topology FenceTopology `json:"topology"`
	// At is when the host first made this offer.
	At time.Time `json:"at,omitzero"`
}

// Actions of the fence history's configuration records.
const (
	// FenceDevicesSet: an operator set a host's fence devices (vmha fence
	// devices set).
	FenceDevicesSet = "devices-set"
	// FenceDevicesAccept: an operator accepted the devices the host
	// offered (vmha fence devices accept).
	FenceDevicesAccept = "devices-accept"
)

// FenceRecord is one fence attempt, or one change of a host's fence
// devices (Action FenceDevicesSet or FenceDevicesAccept: Before and After
// describe the topologies, without secrets).
type FenceRecord struct {
	RecoveryID string `json:"recovery_id"`
	Host       string `json:"host"`
	// Level is the topology level the device belongs to (1 = first tried);
	// 0 for an operator's manual confirmation.
	Level     int           `json:"level"`
	Device    string        `json:"device"`
	Action    string        `json:"action"`
	Requester string        `json:"requester"`
	Started   time.Time     `json:"started,omitzero"`
	Duration  time.Duration `json:"duration_ns"`
	OK        bool          `json:"ok"`
	Error     string        `json:"error,omitempty"`
	// Before and After are a configuration record's topologies, as
	// FenceTopology.Describe writes them (plus which passwords changed).
	Before string `json:"before,omitempty"`
	After  string `json:"after,omitempty"`
}

// State is everything the state machine holds.
type State struct {
	Config Config `json:"config"`
	Status Status `json:"status"`
}

// NewState returns an empty state with its maps made.
func NewState() *State {
	return &State{
		Config: Config{Hosts: map[string]*Host{}, VMs: map[string]*VM{}, Fencing: map[string]*FenceTopology{}},
		Status: Status{Placements: map[string]*Placement{}, Hosts: map[string]*HostStatus{}, Observed: map[string]*Observation{}},
	}
}

// Fill makes nil maps after decoding a state that lacked them.
func (s *State) Fill() {
	n := NewState()
	if s.Config.Hosts == nil {
		s.Config.Hosts = n.Config.Hosts
	}
	if s.Config.VMs == nil {
		s.Config.VMs = n.Config.VMs
	}
	if s.Config.Fencing == nil {
		s.Config.Fencing = n.Config.Fencing
	}
	if s.Status.Placements == nil {
		s.Status.Placements = n.Status.Placements
	}
	if s.Status.Hosts == nil {
		s.Status.Hosts = n.Status.Hosts
	}
	if s.Status.Observed == nil {
		s.Status.Observed = n.Status.Observed
	}
}

// SortedKeys returns a map's keys in order, for deterministic iteration.
func SortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// ValidateName checks a host or VM name: libvirt domain names and serf node
// names share this alphabet, and keeping it small keeps paths and logs safe.
func ValidateName(kind, name string) error {
	if name == "" {
		return fmt.Errorf("%s name is empty", kind)
	}
	if len(name) > 64 {
		return fmt.Errorf("%s name %q is longer than 64 characters", kind, name)
	}
	for i, r := range name {
		ok := r == '-' || r == '_' || r == '.' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
		if !ok || (i == 0 && (r == '-' || r == '.')) {
			return fmt.Errorf("%s name %q: only letters, digits, '-', '_' and '.' are allowed, not starting with '-' or '.'", kind, name)
		}
	}
	return nil
}

// WatchdogWait is how long after a host with watchdog timeout w was lost
// the majority may count it as reset by its watchdog: the host pets only
// while it reached the quorum within w/2, the device fires w after the last
// pet, and margin covers the petting period and detection skew.
func WatchdogWait(w, margin time.Duration) time.Duration {
	return w/2 + w + margin
}
