// Package api is the HTTP/JSON contract between vmha (the CLI), vmhad and
// its peers: request and response types, and a client. The local CLI talks
// over vmhad's unix socket; peers talk over the peer API port.
package api

import (
	"net/url"
	"strconv"
	"time"

	"github.com/vmha/vmha/model"
)

// Paths of the API.
const (
	PathStatus       = "/v1/status"
	PathHosts        = "/v1/hosts"
	PathVMs          = "/v1/vms"
	PathFenceHistory = "/v1/fence/history"
	PathFenceDevices = "/v1/fence/devices"
	// PathGossipKeys lists (GET) and changes (POST) the gossip keyring.
	// It is answered by the local host, which asks every member.
	PathGossipKeys = "/v1/gossip/keys"
	// PathHostAction is followed by /{host}/evacuate or /{host}/online.
	PathHostAction = "/v1/hosts"
	// PathRules gets (GET) or replaces (POST) the placement rules.
	PathRules = "/v1/rules"
	// PathRulesHistory lists the versions of the placement rules (GET);
	// PathRulesHistory/{version} is one of them with its text.
	PathRulesHistory = "/v1/rules/history"
	// PathPins lists the pins (GET); PathPins+"/clear" clears some (POST).
	PathPins = "/v1/pins"
	// PathRebalance plans or starts a rebalance (POST RebalanceRequest),
	// lists the runs (GET), and +"/cancel" ends the one under way.
	PathRebalance = "/v1/rebalance"
	// PathExplain is followed by /{vm}.
	PathExplain = "/v1/explain"
	// PathFencePolicy turns fencing off (with an acknowledgement) or on.
	PathFencePolicy = "/v1/fence-policy"
	// PathFence is followed by /{host}, /{host}/confirm, /{host}/test,
	// /{host}/devices (POST FenceDevicesSet: an operator sets the host's
	// fence devices) or /{host}/devices/accept (POST FenceDevicesAccept: an
	// operator accepts the devices the host offers).
	PathFence = "/v1/fence"
	// PathLocalDomains lists the answering host's own hypervisor domains,
	// straight from the hypervisor (never forwarded).
	PathLocalDomains = "/v1/local/domains"
	// PathLocalMigrations lists the answering host's own migration jobs.
	PathLocalMigrations = "/v1/local/migrations"
	// PathLocalStorageInit formats one of the answering host's configured
	// cluster file systems (POST StorageInit).
	PathLocalStorageInit = "/v1/local/storage/init"
	// PathLocalStorage checks the answering host's shared storage.
	PathLocalStorage = "/v1/local/storage"
	// Peer-only paths.
	PathRegister  = "/v1/peer/register"
	PathObserve   = "/v1/peer/observe"
	PathReadIndex = "/v1/peer/read-index"
	// PathAlive answers with the host's name and boot id: the leader's
	// second opinion before it takes a host that gossip declared failed
	// for lost.
	PathAlive = "/v1/peer/alive"
	PathNudge = "/v1/peer/nudge"
	// PathPeerLVM runs one LVM command (lvs or lvchange, checked) for the
	// agent of another host that moves a VM's logical volumes.
	PathPeerLVM = "/v1/peer/lvm"
	// PathMigrationResult is the source agent's report of a move's end.
	PathMigrationResult = "/v1/peer/migration-result"
)

// HeaderForwarded marks a request a follower forwarded to the leader, so that
// a request is forwarded at most once.
const HeaderForwarded = "X-Vmha-Forwarded"

// Error is the body of every non-2xx response.
type Error struct {
	Error string `json:"error"`
	// Field names the input field that was wrong, when one was.
	Field string `json:"field,omitempty"`
}

// Status is `vmha status`.
type Status struct {
	Node   string `json:"node"`
	Leader string `json:"leader"`
	Term   uint64 `json:"term"`
	Quorum Quorum `json:"quorum"`
	Hosts  []Host `json:"hosts"`
	VMs    []VM   `json:"vms"`
	// Problems lists what needs an operator, in plain words: the
	// messages of ProblemDetails, most severe first.
	Problems []string `json:"problems"`
	// ProblemDetails are the problems with their severity (critical or
	// warning) and code; Notices are deliberate states an operator set
	// (maintenance, a drained host, a VM stopped on purpose), severity
	// info. docs/status.md lists the codes.
	ProblemDetails []Issue `json:"problem_details"`
	Notices        []Issue `json:"notices"`
	// At is the answering host's clock when it built the status; the
	// ages below are counted from it.
	At time.Time `json:"at,omitzero"`
	// ClusterMaintenance is set while the whole cluster is in maintenance:
	// nothing is started, stopped, moved or fenced.
	ClusterMaintenance *model.ClusterMaintenance `json:"cluster_maintenance,omitempty"`
	// ReportStaleAfterSeconds is how old a host agent's last report may
	// be before what it said counts as stale (report_stale).
	ReportStaleAfterSeconds int64 `json:"report_stale_after_seconds,omitempty"`
	// Evacuations lists hosts being drained (until vmha host online).
	Evacuations []Evacuation `json:"evacuations"`
	// FencingOff is set while an operator has turned fencing off.
	FencingOff *model.FencingOff `json:"fencing_off,omitempty"`
	// Security says how the answering host authenticates its peers.
	Security Security `json:"security"`
}

// Severities of an Issue: a critical problem means VMs are down or the
// cluster cannot protect them now (vmha status --check exits 2); a warning
// means the cluster runs but something will bite at the next failure
// (exit 1); info is a notice, a deliberate state (exit 0).
const (
	SeverityCritical = "critical"
	SeverityWarning  = "warning"
	SeverityInfo     = "info"
)

// Issue is one problem or notice of the status.
type Issue struct {
	// Code names the kind of issue for scripts (no_quorum, fence_failed,
	// host_maintenance, ...: docs/status.md); Message says it for people.
	Code     string `json:"code"`
	Severity string `json:"severity"`
	Message  string `json:"message"`
	// Host and VM name what the issue is about, when it is about one.
	Host string `json:"host,omitempty"`
	VM   string `json:"vm,omitempty"`
}

// Admin states of a host or VM, next to its lifecycle state.
const (
	AdminDraining           = "draining"
	AdminDrained            = "drained"
	AdminMaintenance        = "maintenance"
	AdminRulesMaintenance   = "rules-maintenance"
	AdminStandby            = "standby"
	AdminStorageMaintenance = "storage-maintenance"
	AdminClusterMaintenance = "cluster-maintenance"
)

// AdminState is one state an operator put a host (or the cluster) in.
type AdminState struct {
	// State is draining, drained, maintenance, rules-maintenance
	// (cluster.yaml), standby (cluster.yaml), storage-maintenance or
	// cluster-maintenance.
	State  string    `json:"state"`
	Since  time.Time `json:"since,omitzero"`
	By     string    `json:"by,omitempty"`
	Reason string    `json:"reason,omitempty"`
	// Storage is the file system of a storage-maintenance; Done is set
	// once it (or a drain) has moved every VM it moves.
	Storage string `json:"storage,omitempty"`
	Done    bool   `json:"done,omitempty"`
}

// VMFailure is a VM's fail count on one host.
type VMFailure struct {
	Host           string    `json:"host"`
	Count          int       `json:"count"`
	Last           time.Time `json:"last,omitzero"`
	LastAgeSeconds int64     `json:"last_age_seconds"`
	Error          string    `json:"error,omitempty"`
}

// Security is how a host authenticates: mutual TLS for raft and the peer
// API, encrypted gossip. Insecure is set when either is missing (a lab on
// loopback, or insecure: true in vmhad.yaml): then anyone who reaches the
// ports can act as an operator or a host.
type Security struct {
	MutualTLS       bool   `json:"mutual_tls"`
	GossipEncrypted bool   `json:"gossip_encrypted"`
	Insecure        bool   `json:"insecure"`
	Explanation     string `json:"explanation"`
}

// Quorum explains who decides.
type Quorum struct {
	Voters      []string `json:"voters"`
	AliveVoters []string `json:"alive_voters"`
	Needed      int      `json:"needed"`
	Quorate     bool     `json:"quorate"`
	Explanation string   `json:"explanation"`
	// WaitingForAll lists the hosts a cold start under wait_for_all still
	// waits for (the cluster decides nothing until it is empty).
	WaitingForAll []string `json:"waiting_for_all,omitempty"`
}

// Host is one host in `vmha status` and `vmha host list`.
type Host struct {
	Name string `json:"name"`
	// Member is gossip's view: alive, suspect, failed, left, unknown.
	Member string `json:"member"`
	// State is the coordinator's: alive, lost, fenced, fence-failed.
	State  model.HostState `json:"state"`
	Reason string          `json:"reason,omitempty"`
	Since  time.Time       `json:"since,omitzero"`
	Leader bool            `json:"leader"`
	Voter  bool            `json:"voter"`
	// Witness hosts only vote (vmhad --witness).
	Witness bool `json:"witness,omitempty"`
	// Attributes are the host attributes placement rules see (rules file,
	// vmha host attr set, transient ones, live ones such as pingd).
	Attributes map[string]string `json:"attributes,omitempty"`
	APIAddr    string            `json:"api_addr"`
	MemoryMiB  uint64            `json:"memory_mib"`
	CPUs       uint              `json:"cpus"`
	UsedMiB    uint64            `json:"used_mib"`
	VMs        []string          `json:"vms"`
	// FenceDev is the fence topology as one display string ("L1: bmc@h1
	// (ipmi 10.0.0.1:623)"); FenceDevices is the same, structured ([]
	// when none).
	FenceDev     string            `json:"fence_device"`
	FenceDevices []FenceDeviceInfo `json:"fence_devices"`
	// FenceCheck is the leader's last status check of the fence device
	// (nil until the first check, or when no device is configured).
	FenceCheck *FenceCheck `json:"fence_check,omitempty"`
	RecoveryID string      `json:"recovery_id,omitempty"`
	LostAt     time.Time   `json:"lost_at,omitzero"`
	FencedAt   time.Time   `json:"fenced_at,omitzero"`
	// StorageHeartbeat is the leader's reading of the host's storage
	// heartbeat: writing, silent or never ("" without cluster file systems).
	StorageHeartbeat string `json:"storage_heartbeat,omitempty"`
	// Maintenance is set while the host's vmhad is in maintenance.
	Maintenance *model.Maintenance `json:"maintenance,omitempty"`
	// SeenAlive is false until gossip has reported the host alive since it
	// registered: until then it is neither device-checked nor fenced on the
	// cluster's own decision.
	SeenAlive bool `json:"seen_alive"`
	// Admin lists the states operators put the host in (drained,
	// maintenance, standby, ...), [] when none.
	Admin []AdminState `json:"admin,omitzero"`
	// ReportAt is when the host's agent last reported what it runs;
	// ReportAgeSeconds counts from the status's At (absent without a
	// report); ReportStale is set once it is older than
	// report_stale_after_seconds.
	ReportAt         time.Time `json:"report_at,omitzero"`
	ReportAgeSeconds *int64    `json:"report_age_seconds,omitempty"`
	ReportStale      bool      `json:"report_stale,omitempty"`
}

// VM is one VM in `vmha status`.
type VM struct {
	Name string `json:"name"`
	// Host is where the VM should run ("" when unplaced).
	Host string `json:"host"`
	// State is what that host's agent last reported for it: running,
	// shutoff, starting, ... or "unknown" when no report has arrived.
	State     string    `json:"state"`
	Since     time.Time `json:"since,omitzero"`
	Prefer    string    `json:"prefer,omitempty"`
	MemoryMiB uint64    `json:"memory_mib"`
	VCPUs     uint      `json:"vcpus"`
	Reason    string    `json:"reason"`
	Error     string    `json:"error,omitempty"`
	// Generation is the placement decision's number.
	Generation uint64 `json:"generation"`
	// MigratingFrom is set while the VM moves live from there to Host.
	MigratingFrom string `json:"migrating_from,omitempty"`
	MigrationID   string `json:"migration_id,omitempty"`
	// PinnedTo is set while a pin (vmha pins) keeps the VM on that host.
	PinnedTo string `json:"pinned_to,omitempty"`
	// Target is what the cluster keeps the VM at: started, stopped,
	// disabled or ignored (unmanaged); TargetSource says who decided it
	// (operator, rules or default), TargetBy and TargetReason the
	// operator's vmha vm set.
	Target       model.Target `json:"target,omitempty"`
	TargetSource string       `json:"target_source,omitempty"`
	TargetBy     string       `json:"target_by,omitempty"`
	TargetReason string       `json:"target_reason,omitempty"`
	// Actual is the VM's state as ActualHost's agent last reported it
	// (running, shutoff, ...; absent when no host reports it), since
	// ActualSince; ActualAgeSeconds counts from the status's At.
	Actual           string    `json:"actual,omitempty"`
	ActualHost       string    `json:"actual_host,omitempty"`
	ActualSince      time.Time `json:"actual_since,omitzero"`
	ActualAgeSeconds *int64    `json:"actual_age_seconds,omitempty"`
	// ReportAt is the time of that report; ReportStale is set when it is
	// too old (or from an earlier life of the host, or the host is
	// unreachable) to tell what runs now.
	ReportAt         time.Time `json:"report_at,omitzero"`
	ReportAgeSeconds *int64    `json:"report_age_seconds,omitempty"`
	ReportStale      bool      `json:"report_stale,omitempty"`
	// Failures are the VM's fail counts by host ([] when none; absent
	// only from a vmhad that predates them, as are Target and Admin).
	Failures []VMFailure `json:"failures,omitzero"`
	// Admin holds cluster-maintenance while the cluster is in maintenance
	// ([] otherwise).
	Admin []AdminState `json:"admin,omitzero"`
	// LastMove is how the move that placed the VM where it is ended
	// (outcome live or restart on the target; aborted, refused or failed
	// when it stayed), until the VM is placed anew.
	LastMove *model.MoveRecord `json:"last_move,omitempty"`
}

// FenceCheck is one periodic status check of a host's fence device.
type FenceCheck struct {
	At time.Time `json:"at,omitzero"`
	OK bool      `json:"ok"`
	// Power is what the device reported: on, off or unknown.
	Power string `json:"power"`
	Error string `json:"error,omitempty"`
	// Duration is how long the device took to answer, in nanoseconds.
	Duration time.Duration `json:"duration_ns"`
}

// FenceDeviceInfo is one device of a host's fence topology as vmha status
// shows it: what it is and where it answers, never its password, user or
// other options. A device used on two levels is listed once per level.
type FenceDeviceInfo struct {
	Name string `json:"name"`
	// Type is ipmi, libvirt or agent.
	Type string `json:"type"`
	// Level is the topology level (1 is tried first).
	Level int `json:"level"`
	// Address is the BMC's address (ipmi) or the device's (agent: its ip
	// parameter); Port the BMC's UDP port (ipmi, 623 unless set).
	Address string `json:"address,omitempty"`
	Port    int    `json:"port,omitempty"`
	// URI is the libvirt connection of a libvirt device.
	URI string `json:"uri,omitempty"`
	// Agent is the fence agent of an agent device (fence_ipmilan, ...).
	Agent string `json:"agent,omitempty"`
	// AllowUnsafe: the device is outside the fencing allow-lists (an
	// operator's vmha fence devices set --allow-unsafe).
	AllowUnsafe bool `json:"allow_unsafe,omitempty"`
}

// FenceDevicesOf lists t's devices level by level ([] for none).
func FenceDevicesOf(t *model.FenceTopology) []FenceDeviceInfo {
	out := []FenceDeviceInfo{}
	if t == nil {
		return out
	}
	for i, l := range t.Levels {
		for _, n := range l {
			info := FenceDeviceInfo{Name: n, Level: i + 1}
			if d := t.Device(n); d != nil {
				info.Type, info.AllowUnsafe = d.Type, d.AllowUnsafe
				switch d.Type {
				case "ipmi":
					info.Address, info.Port = d.Params["address"], 623
					if p, err := strconv.Atoi(d.Params["port"]); err == nil {
						info.Port = p
					}
				case "libvirt":
					info.URI = withoutPassword(d.Params["uri"])
				case "agent":
					info.Agent, info.Address = d.Params["agent"], d.Params["ip"]
				}
			}
			out = append(out, info)
		}
	}
	return out
}

// withoutPassword drops a password from a URI's user information.
func withoutPassword(uri string) string {
	u, err := url.Parse(uri)
	if err != nil || u.User == nil {
		return uri
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.User(u.User.Username())
		return u.String()
	}
	return uri
}

// FenceDevice is one row of `vmha fence devices`.
type FenceDevice struct {
	Host   string      `json:"host"`
	Level  int         `json:"level"`
	Device string      `json:"device"`
	Check  *FenceCheck `json:"check,omitempty"`
	// Offered marks a row of the topology the host offers in place of the
	// one in use (vmha fence devices accept HOST takes it), offered at
	// OfferedAt; Note says what else differs (a new password).
	Offered   bool      `json:"offered,omitempty"`
	OfferedAt time.Time `json:"offered_at,omitzero"`
	Note      string    `json:"note,omitempty"`
}

// FenceDevicesSet is the body of POST /v1/fence/{host}/devices (vmha fence
// devices set): the host's new topology, with its passwords (read from
// the spec's password files by the CLI). A device with allow_unsafe is
// accepted only with AllowUnsafe, the operator's confirmation.
type FenceDevicesSet struct {
	Fencing     *model.FenceTopology `json:"fencing"`
	AllowUnsafe bool                 `json:"allow_unsafe,omitempty"`
	RequestedBy string               `json:"requested_by"`
}

// FenceDevicesAccept is the body of POST /v1/fence/{host}/devices/accept
// (vmha fence devices accept): the host's pending offer becomes its
// topology.
type FenceDevicesAccept struct {
	RequestedBy string `json:"requested_by"`
}

// FenceRequest is the body of POST /v1/fence/{host} (vmha fence HOST).
type FenceRequest struct {
	// Action is off (default) or reboot.
	Action      string `json:"action"`
	RequestedBy string `json:"requested_by"`
}

// StorageCheck answers GET /v1/local/storage: the answering host's view of
// each cluster file system (readiness) and of its on-disk format (journals
// or slots, lock table, stack), as `vmha storage check` prints it.
type StorageCheck struct {
	Host string `json:"host"`
	// FileSystems has one entry per configured file system.
	FileSystems []StorageFS `json:"filesystems"`
	// Format lists the problems with the file systems' format ("" each
	// when none), for the cluster's host count.
	Hosts int `json:"hosts"`
}

// StorageFS is one file system in a storage check.
type StorageFS struct {
	Name    string   `json:"name"`
	Ready   bool     `json:"ready"`
	Reasons []string `json:"reasons,omitempty"`
	// FormatOK is false when the on-disk format is wrong or unreadable;
	// FormatError says why.
	FormatOK    bool   `json:"format_ok"`
	FormatError string `json:"format_error,omitempty"`
}

// HostAttr is the body of POST /v1/hosts/{host}/attr: an empty Value
// deletes the attribute.
type HostAttr struct {
	Key       string `json:"key"`
	Value     string `json:"value"`
	Transient bool   `json:"transient,omitempty"`
}

// EvacuateRequest is the body of POST /v1/hosts/{host}/evacuate.
type EvacuateRequest struct {
	Parallel int `json:"parallel"`
	// OnStuck is fail (default) or stop-restart, for VMs that cannot
	// move live.
	OnStuck string `json:"on_stuck,omitempty"`
	// Deadline, when set, turns the remaining moves into stop-and-start
	// once it has passed.
	Deadline    time.Duration `json:"deadline_ns,omitempty"`
	DryRun      bool          `json:"dry_run,omitempty"`
	RequestedBy string        `json:"requested_by"`
	// Storage limits the evacuation to the VMs on that cluster file
	// system (storage maintenance on the host).
	Storage string `json:"storage,omitempty"`
	// Force evacuates even when the other usable hosts cannot take the
	// host's VMs (the last usable host, not enough free memory, a VM that
	// fits nowhere): the VMs that do not fit stay, listed as stuck.
	Force bool `json:"force,omitempty"`
}

// HostOnline is the optional body of POST /v1/hosts/{host}/online.
type HostOnline struct {
	// EvacuationID, when set, ends only that evacuation (409 when another
	// one, or none, is under way).
	EvacuationID string `json:"evacuation_id,omitempty"`
}

// EvacuationPlan answers an evacuation: each VM's target and how it moves.
type EvacuationPlan struct {
	Host  string           `json:"host"`
	Moves []EvacuationMove `json:"moves"`
	// ID names the evacuation started (empty for a dry run).
	ID string `json:"id,omitempty"`
	// Shortfall says why the other usable hosts cannot take the VMs (a
	// dry run, or a forced evacuation, shows it; otherwise it is refused).
	Shortfall string `json:"shortfall,omitempty"`
}

// EvacuationMove is one VM of an evacuation plan.
type EvacuationMove struct {
	VM string `json:"vm"`
	To string `json:"to,omitempty"`
	// Live is true when the VM moves live; otherwise Stuck says why not.
	Live  bool   `json:"live"`
	Stuck string `json:"stuck,omitempty"`
}

// Evacuation is a host's evacuation in the status.
type Evacuation struct {
	Host     string    `json:"host"`
	Parallel int       `json:"parallel"`
	OnStuck  string    `json:"on_stuck"`
	By       string    `json:"by"`
	At       time.Time `json:"at,omitzero"`
	Deadline time.Time `json:"deadline,omitzero"`
	Done     bool      `json:"done"`
	// Left counts VMs still placed on the host; Moving those on their way.
	Left   int      `json:"left"`
	Moving int      `json:"moving"`
	Stuck  []string `json:"stuck,omitempty"`
	// Storage is set for a storage-maintenance evacuation.
	Storage string `json:"storage,omitempty"`
	// ID names the evacuation (vmha host online ends it by ID).
	ID string `json:"id,omitempty"`
	// MovedLive and Restarted count the VMs that left the host so far
	// by outcome (a restart: stopped here, started on the target).
	MovedLive int `json:"moved_live"`
	Restarted int `json:"restarted"`
}

// Rules carries the placement rules: a cluster.yaml ("" clears them).
// GET /v1/rules answers with the version in force; POST /v1/rules takes
// the change and its options.
type Rules struct {
	YAML string `json:"yaml"`
	// Version is the version in force (0: none recorded yet), By who
	// applied it and At when. Answers only.
	Version int       `json:"version,omitempty"`
	By      string    `json:"by,omitempty"`
	At      time.Time `json:"at,omitzero"`
	// IfVersion makes a change a compare-and-set: refused (409) unless
	// the version in force is still this one (0: none recorded yet).
	IfVersion *int `json:"if_version,omitempty"`
	// DryRun asks for the plan of the change (RulesPlan) and changes
	// nothing.
	DryRun bool `json:"dry_run,omitempty"`
	// Note is kept with the new version (vmha rules history).
	Note string `json:"note,omitempty"`
}

// RulesVersion is one version of the placement rules (vmha rules history):
// who applied it and when, its size in bytes, and a one-line summary of
// what changed from the version before. YAML is set only for one version
// asked by number.
type RulesVersion struct {
	Version int       `json:"version"`
	By      string    `json:"by"`
	At      time.Time `json:"at,omitzero"`
	Size    int       `json:"size"`
	Summary string    `json:"summary"`
	Note    string    `json:"note,omitempty"`
	// Current marks the version in force.
	Current bool   `json:"current,omitempty"`
	YAML    string `json:"yaml,omitempty"`
}

// RulesPlan is the answer to a rules change: with dry_run what the change
// would do to the running cluster, computed by the leader with the
// placement engine the cluster uses; without, what it does (Applied).
type RulesPlan struct {
	// Version is the version in force the plan was computed against: a
	// change sent with it as if_version applies to what was previewed.
	Version int `json:"version"`
	// Applied is the version the change created (not in a dry run).
	Applied int `json:"applied,omitempty"`
	// Changed is false when the text is the one in force.
	Changed bool `json:"changed"`
	// Summary says in one line what the text changes.
	Summary string `json:"summary"`
	// Actions are what the placement engine does to VMs under the new
	// rules, in its order.
	Actions []RulesAction `json:"actions"`
	// Disruptive is set when an action the change causes (not Pending)
	// stops or moves a running VM: vmha rules apply asks to confirm.
	Disruptive bool `json:"disruptive"`
	// Notes are what the engine could not plan (rules it refuses, VMs
	// that must wait).
	Notes []string `json:"notes,omitempty"`
}

// RulesAction is one VM's action under new rules: start, stop, migrate (a
// live move), move (shut down, then started on To) or recover.
type RulesAction struct {
	VM     string `json:"vm"`
	Action string `json:"action"`
	From   string `json:"from,omitempty"`
	To     string `json:"to,omitempty"`
	Live   bool   `json:"live,omitempty"`
	// Reason is the engine's: why the VM goes to To, or why no host can
	// take it (a stop the rules cannot satisfy names it here).
	Reason string `json:"reason,omitempty"`
	// Pending: the rules in force want this too; the change does not
	// cause it.
	Pending bool `json:"pending,omitempty"`
}

// FencePolicy is the body of POST /v1/fence-policy.
type FencePolicy struct {
	Enabled bool `json:"enabled"`
	// AcknowledgeDoubleRunRisk must be true to turn fencing off.
	AcknowledgeDoubleRunRisk bool   `json:"acknowledge_double_run_risk"`
	RequestedBy              string `json:"requested_by"`
}

// FenceConfirm is the body of POST /v1/fence/{host}/confirm.
type FenceConfirm struct {
	RequestedBy string `json:"requested_by"`
}

// FenceTest is the body of POST /v1/fence/{host}/test.
type FenceTest struct {
	// PowerCycle asks for a real off-and-on, refused while VMs are placed
	// on the host.
	PowerCycle  bool   `json:"power_cycle"`
	RequestedBy string `json:"requested_by"`
}

// FenceTestResult answers a device test.
type FenceTestResult struct {
	Host string `json:"host"`
	// Check sums up: OK when at least one level's devices all answered.
	Check FenceCheck `json:"check"`
	// Devices has one row per device of every level.
	Devices []FenceDevice `json:"devices"`
	// Cycled is true when a power cycle was done and verified.
	Cycled bool `json:"cycled"`
}

// GossipKeyOp is the body of POST /v1/gossip/keys. Key is the base64 key;
// it is never echoed back.
type GossipKeyOp struct {
	Op  string `json:"op"` // install, use or remove
	Key string `json:"key"`
}

// GossipKeys answers a keyring list or change: keys by fingerprint (never
// the key itself) with how many members hold each.
type GossipKeys struct {
	Members   int               `json:"members"`
	Responses int               `json:"responses"`
	Keys      []GossipKey       `json:"keys"`
	Errors    map[string]string `json:"errors,omitempty"`
}

// GossipKey is one key of the keyring.
type GossipKey struct {
	Fingerprint string `json:"fingerprint"`
	Members     int    `json:"members"`
	Primary     int    `json:"primary_on"`
}

// MigrateRequest is the body of POST /v1/vms/{name}/migrate.
type MigrateRequest struct {
	// To is the target host; empty lets the cluster pick one.
	To          string `json:"to,omitempty"`
	RequestedBy string `json:"requested_by"`
	// Pin keeps the VM on the target until PinTTL passes (0: until
	// vmha pins clear).
	Pin    bool          `json:"pin,omitempty"`
	PinTTL time.Duration `json:"pin_ttl,omitempty"`
	// DryRun checks everything the call would and answers what it would
	// do (MoveDryRun), committing nothing.
	DryRun bool `json:"dry_run,omitempty"`
}

// MigrationResult is a source agent's report of how a move ended.
type MigrationResult struct {
	VM          string `json:"vm"`
	MigrationID string `json:"migration_id"`
	// Outcome is migrated, aborted, refused or failed.
	Outcome string `json:"outcome"`
	// RunningOn is where the VM was found running afterwards ("" nowhere).
	RunningOn string        `json:"running_on"`
	Reason    string        `json:"reason,omitempty"`
	Downtime  time.Duration `json:"downtime_ns"`
	Wall      time.Duration `json:"wall_ns"`
}

// AddVM is the body of POST /v1/vms.
type AddVM struct {
	Name    string `json:"name"`
	XML     string `json:"xml"`
	XMLPath string `json:"xml_path,omitempty"`
	Prefer  string `json:"prefer,omitempty"`
	// AdoptFrom is the host whose libvirt runs the domain already (vmha
	// vm add --from-libvirt): the VM is placed there as it is added, and
	// its agent adopts the running domain instead of restarting it.
	AdoptFrom string `json:"adopt_from,omitempty"`
}

// Register is a host announcing itself to the leader at start.
type Register struct {
	Host model.Host `json:"host"`
	// Fencing is how the host is fenced, with its passwords (the peer API
	// carries it once, to the leader, which replicates it).
	Fencing *model.FenceTopology `json:"fencing,omitempty"`
}

// ReadIndex is the leader's answer to "how far must I have applied before I
// act": its term and the index of the last command its state machine
// applied, given after a barrier committed through a quorum. An agent
// compares Index with its own state machine's applied index (never raft's,
// which runs ahead of the state while a log replays).
type ReadIndex struct {
	Term  uint64 `json:"term"`
	Index uint64 `json:"index"`
}

// Nudge asks an agent to reconcile now; it carries the leader's term.
type Nudge struct {
	Term uint64 `json:"term"`
}

// Pin is one pin in `vmha pins`: the pin as the state holds it (its
// Expires is zero for a pin that lasts until cleared), and where the VM is
// placed now.
type Pin struct {
	model.Pin
	RunningOn string `json:"running_on"`
}

// ClearPins is the body of POST /v1/pins/clear: the VMs whose pins go, or
// All.
type ClearPins struct {
	VMs         []string `json:"vms,omitempty"`
	All         bool     `json:"all,omitempty"`
	RequestedBy string   `json:"requested_by"`
}

// MigrationJob is one live migration as its source host sees it, with the
// latest job statistics (GET /v1/hosts/{host}/migrations).
type MigrationJob struct {
	VM          string `json:"vm"`
	MigrationID string `json:"migration_id"`
	From        string `json:"from"`
	To          string `json:"to"`
	// Phase is prepare, pre-copy, post-copy, verify or done.
	Phase   string  `json:"phase"`
	Percent float64 `json:"percent"`
	// Bytes as libvirt counts them (memory plus any disk copy); rates in
	// bytes per second.
	DataTotal        uint64        `json:"data_total"`
	DataRemaining    uint64        `json:"data_remaining"`
	Throughput       uint64        `json:"throughput"`
	DirtyRate        uint64        `json:"dirty_rate"`
	ExpectedDowntime time.Duration `json:"expected_downtime"`
	Iteration        uint64        `json:"iteration"`
	Elapsed          time.Duration `json:"elapsed"`
	// Text is the sample in one line, for people.
	Text    string    `json:"text"`
	Updated time.Time `json:"updated,omitzero"`
	// Outcome is set once the job ended (migrated, aborted, failed, ...).
	Outcome string `json:"outcome,omitempty"`
}

// StorageInit is the body of POST /v1/local/storage/init.
type StorageInit struct {
	// FileSystem names a file system of the host's storage config.
	FileSystem string `json:"filesystem"`
	// Journals (GFS2) or slots (OCFS2); 0 means the cluster's host count.
	Journals int  `json:"journals,omitempty"`
	Yes      bool `json:"yes"`
	Force    bool `json:"force,omitempty"`
}

// StorageInitResult says what was formatted.
type StorageInitResult struct {
	FileSystem string `json:"filesystem"`
	Device     string `json:"device"`
	Type       string `json:"type"`
	Journals   int    `json:"journals"`
	Command    string `json:"command"`
}

// PeerLVM is the body of POST /v1/peer/lvm, and LVMOutput its answer.
type PeerLVM struct {
	Name string   `json:"name"`
	Args []string `json:"args"`
}

// LVMOutput is a peer LVM command's standard output.
type LVMOutput struct {
	Output string `json:"output"`
}

// RebalanceRequest is the body of POST /v1/rebalance.
type RebalanceRequest struct {
	DryRun bool `json:"dry_run,omitempty"`
	// MaxMoves caps the moves (0: no cap); MinGain is the least drop of
	// the cluster score a move must bring.
	MaxMoves int     `json:"max_moves"`
	MinGain  float64 `json:"min_gain"`
	// Parallel is how many moves run at once (at least 1).
	Parallel    int    `json:"parallel"`
	RequestedBy string `json:"requested_by"`
}

// HostOp is the body of POST /v1/hosts/{host}/maintenance and /expect
// (On: start or announce; off: end or withdraw) and of DELETE
// /v1/hosts/{host}.
type HostOp struct {
	On          bool   `json:"on"`
	Reason      string `json:"reason,omitempty"`
	RequestedBy string `json:"requested_by"`
}

// Alive is the answer of GET /v1/peer/alive.
type Alive struct {
	Node string `json:"node"`
	Boot string `json:"boot"`
}
