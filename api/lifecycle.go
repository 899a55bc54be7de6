package api

import (
	"time"

	"github.com/vmha/vmha/model"
)

// Paths of the VM lifecycle, the event log and cluster maintenance.
const (
	// PathVMs+"/{name}/state" sets a VM's target (POST VMStateRequest);
	// PathVMs+"/{name}/cleanup" clears its fail counts (POST Cleanup);
	// PathVMs+"/{name}/relocate" moves it cold (POST MigrateRequest).
	// PathFailures lists fail counts (GET, ?vm=).
	PathFailures = "/v1/failures"
	// PathEvents reads the event log (GET, see EventQuery).
	PathEvents = "/v1/events"
	// PathClusterMaintenance puts the cluster in maintenance or ends it
	// (POST HostOp).
	PathClusterMaintenance = "/v1/cluster/maintenance"
)

// VMStateRequest is the body of POST /v1/vms/{name}/state.
type VMStateRequest struct {
	// State is started, stopped, disabled or ignored; "" clears the
	// operator's target (the rules decide again).
	State string `json:"state"`
	// If makes it a compare-and-set: refused unless the VM's target is
	// still this ("-": none set). Empty: unconditional.
	If          string `json:"if,omitempty"`
	Reason      string `json:"reason,omitempty"`
	RequestedBy string `json:"requested_by"`
}

// VMTarget is a VM's effective target, the answer of a state change.
type VMTarget struct {
	VM     string       `json:"vm"`
	Target model.Target `json:"target"`
	// Source is operator, rules or default.
	Source string `json:"source"`
	By     string `json:"by,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Cleanup is the body of POST /v1/vms/{name}/cleanup.
type Cleanup struct {
	// Host limits the cleanup to one host's fail count ("" all).
	Host        string `json:"host,omitempty"`
	RequestedBy string `json:"requested_by"`
}

// Failure is one fail count (GET /v1/failures).
type Failure struct {
	VM    string    `json:"vm"`
	Host  string    `json:"host"`
	Count int       `json:"count"`
	Last  time.Time `json:"last,omitzero"`
	Error string    `json:"error,omitempty"`
	// Threshold is the VM's migration threshold (0: never banned);
	// Banned says the count keeps the VM off the host until Expires.
	Threshold int       `json:"threshold"`
	Banned    bool      `json:"banned"`
	Expires   time.Time `json:"expires,omitzero"`
}

// Events is the answer of GET /v1/events: the matching events, oldest
// first, and the last sequence number of the whole log (to follow it with
// ?after=).
type Events struct {
	Events []model.Event `json:"events"`
	Last   uint64        `json:"last"`
	// Oldest is the oldest sequence number the log still holds.
	Oldest uint64 `json:"oldest"`
}

// PathAlertTest sends a test event to the alert targets (POST AlertTest).
const PathAlertTest = "/v1/alerts/test"

// AlertTest is the body of POST /v1/alerts/test.
type AlertTest struct {
	// Name limits the test to one target ("" all).
	Name        string `json:"name,omitempty"`
	RequestedBy string `json:"requested_by"`
}

// AlertResult is one target's answer to a test.
type AlertResult struct {
	Name    string  `json:"name"`
	OK      bool    `json:"ok"`
	Error   string  `json:"error,omitempty"`
	Seconds float64 `json:"seconds"`
}
