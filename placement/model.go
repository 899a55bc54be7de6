package placement

import (
	"time"
)

// Input is everything the engine decides from: the configuration (hosts,
// VMs, constraints, policy), where each VM runs now, host states and
// attributes, fail counts, and the clock. The engine never reads the clock
// itself, so the same Input always yields the same Result.
type Input struct {
	Hosts         []HostInfo
	VMs           []VMInfo
	Locations     []Location
	LocationRules []LocationRule
	Colocations   []Colocation
	Policy        Policy
	// Now is the time against which failure timeouts expire.
	Now time.Time
}

// HostInfo is one host as placement sees it.
type HostInfo struct {
	Name      string
	Condition HostCondition
	// Capacity is what the host offers per utilization key (for example
	// "memory" in MiB, "cpu" in vCPUs, or any custom key). A key the host
	// does not list counts as zero capacity, as in Pacemaker.
	Capacity map[string]int64
	// Attributes are matched by location rules (zone, rack, pingd, ...).
	Attributes map[string]string
	// Standby hosts run nothing: their VMs move away.
	Standby bool
	// Maintenance hosts are left alone: their VMs stay as they are, and
	// nothing new starts there.
	Maintenance bool
}

// TargetState is what the operator wants for a VM.
type TargetState string

// Target states.
const (
	Started TargetState = "started"
	Stopped TargetState = "stopped"
)

// VMInfo is one VM as placement sees it.
type VMInfo struct {
	Name string
	// Current is the host the VM runs on (or is assigned to) now; "" if none.
	Current string
	// Utilization is what the VM needs per key (see HostInfo.Capacity).
	Utilization map[string]int64
	// Priority: when capacity is short, higher priorities are placed first.
	Priority int
	// Target is started (the default when empty) or stopped.
	Target TargetState
	// AllowMigrate lets the VM move live between two running hosts.
	AllowMigrate bool
	// Stickiness overrides Policy.DefaultStickiness when set.
	Stickiness *Score
	// MigrationThreshold bans the VM from a host once it failed there this
	// many times; 0 disables the ban (Pacemaker's default is INFINITY,
	// which in practice also never bans).
	MigrationThreshold int
	// FailureTimeout expires failures older than this; 0 keeps them.
	FailureTimeout time.Duration
	// Unmanaged VMs are never started, stopped or moved; they keep the
	// capacity they use.
	Unmanaged bool
	// Failures are the VM's recorded failures per host.
	Failures []Failure

	// Pinned keeps a VM that runs on a usable host where it is, whatever
	// the scores or capacity say: a cluster without rules never stops or
	// moves a running VM (the leader sets it; vmha plan never does).
	Pinned bool `json:"-"`
}

// Failure is a fail count of a VM on a host with the time of the last one.
type Failure struct {
	Host  string
	Count int
	Last  time.Time
}

// Location says how much a VM wants (or must avoid) one host.
type Location struct {
	VM    string
	Host  string
	Score Score
}

// LocationRule scores the hosts whose attributes match Rule.
type LocationRule struct {
	VM   string
	Rule Rule
}

// Rule is a Pacemaker location rule: when its expressions hold on a host,
// the host gets Score, or the value of the host's ScoreAttribute.
type Rule struct {
	Score          Score
	ScoreAttribute string
	// BoolOp is "and" (the default) or "or".
	BoolOp      string
	Expressions []Expression
	// Rules are nested rules combined with the expressions by BoolOp; their
	// own scores are ignored, as in Pacemaker.
	Rules []Rule
}

// Expression compares a host attribute with a value. Attribute "#uname"
// is the host's name.
type Expression struct {
	Attribute string
	// Operation is one of lt lte gt gte eq ne defined not_defined.
	Operation string
	Value     string
	// Type is number, string or version; empty picks number for the
	// ordering operations and string otherwise.
	Type string
}

// Colocation places VM relative to With: a positive score pulls it onto
// With's host, a negative one pushes it away; ±INFINITY are mandatory.
// With is placed first.
type Colocation struct {
	VM    string
	With  string
	Score Score
}

// Strategy is Pacemaker's placement-strategy.
type Strategy string

// Placement strategies.
const (
	// StrategyDefault ignores utilization.
	StrategyDefault Strategy = "default"
	// StrategyUtilization never exceeds capacity; ties go to the host with
	// fewer VMs.
	StrategyUtilization Strategy = "utilization"
	// StrategyMinimal never exceeds capacity and fills hosts in name order,
	// to use as few hosts as possible.
	StrategyMinimal Strategy = "minimal"
	// StrategyBalanced never exceeds capacity and prefers the host with
	// more free capacity.
	StrategyBalanced Strategy = "balanced"
)

// Policy holds the cluster-wide options.
type Policy struct {
	DefaultStickiness Score
	Strategy          Strategy
	// OptIn makes the cluster asymmetric: a VM runs only on hosts that a
	// location constraint or rule names with a score of zero or more.
	OptIn bool
	// MigrationLimit caps the live migrations a host takes part in at once;
	// 0 means no limit.
	MigrationLimit int
}

// ActionKind names what the agents must do for a VM.
type ActionKind string

// Actions.
const (
	ActStart   ActionKind = "start"
	ActStop    ActionKind = "stop"
	ActMigrate ActionKind = "migrate"
	ActMove    ActionKind = "move"
	ActRecover ActionKind = "recover"
)

// Action is one step of a plan. Actions with a lower Step run first; those
// of the same Step may run in parallel.
type Action struct {
	VM     string     `json:"vm"`
	Action ActionKind `json:"action"`
	From   string     `json:"from,omitempty"`
	To     string     `json:"to,omitempty"`
	Step   int        `json:"step"`
}

// Result is the engine's answer.
type Result struct {
	// Placement maps every VM to its host, or "" when it stays stopped.
	Placement map[string]string
	Actions   []Action
	// Scores holds every VM's final score per host, when asked for.
	Scores map[string]map[string]Score
	// Explanations holds the explanation of each VM that was asked for.
	Explanations map[string]*Explanation
	// Blocked lists VMs that must wait (their host is lost, not fenced).
	Blocked map[string]string
	// Order is the order in which VMs were allocated.
	Order []string
}

// Explanation says why a VM goes where it goes.
type Explanation struct {
	VM     string `json:"vm"`
	Host   string `json:"host"`
	Reason string `json:"reason"`
	// Rank is the VM's position in the allocation order (0 first).
	Rank  int               `json:"rank"`
	Hosts []HostExplanation `json:"hosts"`
	Notes []string          `json:"notes,omitempty"`
}

// HostExplanation is one host's verdict for one VM.
type HostExplanation struct {
	Host string `json:"host"`
	// Filters lists every filter that rejected the host.
	Filters []string `json:"filters,omitempty"`
	// Terms are the score terms that were summed, in order.
	Terms []Term `json:"terms,omitempty"`
	Score Score  `json:"score"`
	// Eligible is true when the host could take the VM.
	Eligible bool `json:"eligible"`
}

// Term is one addend of a host's score.
type Term struct {
	Source string `json:"source"`
	Score  Score  `json:"score"`
}
