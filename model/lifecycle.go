package model

import (
	"fmt"
	"time"
)

// Target is what an operator wants for a VM (vmha vm set --state), as
// Proxmox's ha-manager states and Pacemaker's target-role.
type Target string

// VM targets.
const (
	// TargetStarted: run it, move it, recover it (the default).
	TargetStarted Target = "started"
	// TargetStopped: keep it stopped; it stays the cluster's (a notice,
	// not a problem), and starts again with vmha vm start.
	TargetStopped Target = "stopped"
	// TargetDisabled: stopped, and its fail counts cleared when set: the
	// way out of a VM that failed everywhere (as Proxmox's disabled).
	TargetDisabled Target = "disabled"
	// TargetIgnored: unmanaged. vmha never starts, stops or moves it,
	// whatever it observes; it keeps the capacity it uses where it runs.
	TargetIgnored Target = "ignored"
)

// ParseTarget checks an operator's target.
func ParseTarget(s string) (Target, error) {
	switch t := Target(s); t {
	case TargetStarted, TargetStopped, TargetDisabled, TargetIgnored:
		return t, nil
	}
	return "", fmt.Errorf("unknown state %q: started, stopped, disabled or ignored", s)
}

// Runs reports whether a VM of this target is to run.
func (t Target) Runs() bool { return t == TargetStarted || t == "" }

// VMState is an operator's target for one VM, kept apart from the rules
// (cluster.yaml) so that applying a rules file never drops it: a VM's
// state set here wins over the rules' target-state and managed.
type VMState struct {
	Target Target    `json:"target"`
	By     string    `json:"by"`
	At     time.Time `json:"at,omitzero"`
	Reason string    `json:"reason,omitempty"`
}

// ClusterMaintenance is Pacemaker's maintenance-mode: nothing is started,
// stopped, moved or fenced; monitoring goes on.
type ClusterMaintenance struct {
	By     string    `json:"by"`
	At     time.Time `json:"at,omitzero"`
	Reason string    `json:"reason,omitempty"`
}

// Failure is a VM's fail count on one host: how many times it failed to
// be defined or started there (or stopped there unasked), and the last.
type Failure struct {
	Count int       `json:"count"`
	Last  time.Time `json:"last,omitzero"`
	Error string    `json:"error,omitempty"`
}

// MaxEvents bounds the event log kept in the replicated state.
const MaxEvents = 10000

// Event kinds.
const (
	EventVM        = "vm"
	EventHost      = "host"
	EventCluster   = "cluster"
	EventRules     = "rules"
	EventFence     = "fence"
	EventRebalance = "rebalance"
)

// Event is one entry of the cluster's memory (vmha events): what was done
// to what, by whom (the authenticated principal, or "cluster" for the
// leader's own decisions), with what result and why.
type Event struct {
	Seq    uint64    `json:"seq"`
	At     time.Time `json:"at,omitzero"`
	Kind   string    `json:"kind"`
	Object string    `json:"object"`
	Action string    `json:"action"`
	// Result is ok, failed or refused ("" for a plain record).
	Result    string `json:"result,omitempty"`
	Principal string `json:"principal"`
	Reason    string `json:"reason,omitempty"`
	// Host is the other host involved (a move's target, a VM's host).
	Host       string `json:"host,omitempty"`
	RecoveryID string `json:"recovery_id,omitempty"`
	// MigrationID names the move.
	MigrationID string `json:"migration_id,omitempty"`
}

// PrincipalCluster is who the event log records for the leader's own
// decisions.
const PrincipalCluster = "cluster"
