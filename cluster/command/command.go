// Package command defines the entries of vmha's replicated log: one
// Command per entry, the Op that says which payload it carries, and the
// errors a refused command (or request) reports. It is plain data, shared
// by the state machine that applies commands, the leader's decisions that
// produce them, and the API that proposes them.
package command

import (
	"fmt"
	"time"

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
	// OpVMState sets VM Name's target (VMState), or with VMState nil
	// clears it (the rules decide again). With IfTarget set it is a
	// compare-and-set: refused unless the VM's target is still that.
	OpVMState Op = "vm_state"
	// OpFailures counts a VM's failures on hosts (Failures) or clears
	// them (Names: VMs, Name: only that host; vmha vm cleanup).
	OpFailures Op = "failures"
	// OpAlerted records that the alerts of every event up to AlertedSeq
	// were delivered (never goes back).
	OpAlerted Op = "alerted"
	// OpClusterMaintenance puts the whole cluster in maintenance
	// (ClusterMaintenance set) or ends it.
	OpClusterMaintenance Op = "cluster_maintenance"
	// OpUpdateVM replaces VM's definition (vmha vm update): VM carries the
	// new XML and what was read from it, and RestartRequested for
	// --restart. The VM keeps its placement, pins, target and fail counts.
	OpUpdateVM Op = "update_vm"
	// OpAdoptVM adds VM and places it, in one entry, on the host where
	// its domain already runs (Placements, one): vmha vm add
	// --from-libvirt. No agent ever sees the VM unplaced, which it would
	// stop.
	OpAdoptVM Op = "adopt_vm"
	// OpTokenCreate adds an API token (Token: its hash, never its
	// secret); OpTokenRevoke removes token Name (token.go).
	OpTokenCreate Op = "token_create"
	OpTokenRevoke Op = "token_revoke"
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
	VMState     *model.VMState       `json:"vm_state,omitempty"`
	// IfTarget makes OpVMState a compare-and-set ("" none; "-" for "no
	// target set").
	IfTarget model.Target   `json:"if_target,omitempty"`
	Failures []FailureCount `json:"failures,omitempty"`
	// IfEvacuation makes OpEvacuation a compare-and-set: an update (and
	// an end, when set) applies only to the evacuation of that ID under
	// way; a start (an Evacuation with an ID and no IfEvacuation) only
	// when none is under way for its host.
	IfEvacuation string `json:"if_evacuation,omitempty"`

	ClusterMaintenance *model.ClusterMaintenance `json:"cluster_maintenance,omitempty"`
	AlertedSeq         uint64                    `json:"alerted_seq,omitempty"`
	Token              *model.Token              `json:"token,omitempty"`
	// By is the authenticated principal an operator's command is recorded
	// with in the event log; empty for the leader's own decisions.
	By string `json:"by,omitempty"`
	// Why is the reason the event log records ("" to use the command's
	// own); for OpSetRules also the note of the rules version.
	Why string `json:"why,omitempty"`
	// RulesVersion makes OpSetRules a compare-and-set: the version of the
	// rules the change was based on (0: no check; RulesUnversioned: the
	// rules had no version yet).
	RulesVersion int `json:"rules_version,omitempty"`
}

// RulesUnversioned is Command.RulesVersion for a change based on rules
// that had no version yet (none applied, or applied before the cluster
// kept a history).
const RulesUnversioned = -1

// FailureCount is one failure of VM on Host the leader saw reported, at
// At (the agent's time of it, so that one report is counted once).
type FailureCount struct {
	VM    string    `json:"vm"`
	Host  string    `json:"host"`
	At    time.Time `json:"at"`
	Error string    `json:"error,omitempty"`
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

// HostAttr is one attribute change.
type HostAttr struct {
	Host      string `json:"host"`
	Key       string `json:"key"`
	Value     string `json:"value"`
	Transient bool   `json:"transient,omitempty"`
	// Boot is the host's boot id a transient attribute belongs to.
	Boot string `json:"boot,omitempty"`
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
