package api

import "time"

// The planning questions (docs/whatif.md): what the cluster would do,
// answered from the engine before anything is done, and what it did.
const (
	// PathWhatIf is GET ?fail=H1,H2&standby=H3: the plan if those hosts
	// failed or went to standby now.
	PathWhatIf = "/v1/whatif"
	// PathRecoveries is GET: the host losses in the event log, newest
	// first, with their timelines (?limit=N, at most MaxRecoveries).
	PathRecoveries = "/v1/recoveries"
	// PathMigrations is GET: every VM moving now, with its progress.
	PathMigrations = "/v1/migrations"
)

// MaxRecoveries bounds GET /v1/recoveries.
const MaxRecoveries = 50

// WhatIf is the answer of GET /v1/whatif.
type WhatIf struct {
	Fail    []string `json:"fail"`
	Standby []string `json:"standby"`
	// Actions are what the cluster would do, in the engine's step order.
	Actions []WhatIfAction `json:"actions"`
	// Stranded are the VMs that would have nowhere to run.
	Stranded []WhatIfStranded `json:"stranded"`
	// Hosts are each host's memory before and after.
	Hosts []WhatIfHost `json:"hosts"`
}

// WhatIfAction is one thing the cluster would do.
type WhatIfAction struct {
	VM string `json:"vm"`
	// Action is start, stop, migrate (live), move (shut down and started
	// on the target) or restart (its host failed: started elsewhere once
	// the host is fenced).
	Action string `json:"action"`
	From   string `json:"from,omitempty"`
	To     string `json:"to,omitempty"`
	// How is live or restart for the actions that change a VM's host.
	How  string `json:"how,omitempty"`
	Why  string `json:"why"`
	Step int    `json:"step"`
}

// WhatIfStranded is a VM left with nowhere to run, and the engine's reason.
type WhatIfStranded struct {
	VM   string `json:"vm"`
	From string `json:"from,omitempty"`
	Why  string `json:"why"`
}

// WhatIfHost is one host's memory before and after the plan.
type WhatIfHost struct {
	Host string `json:"host"`
	// Condition is usable, offline, lost, fenced, failed or standby.
	Condition   string `json:"condition"`
	MemoryMiB   uint64 `json:"memory_mib"`
	BeforeMiB   uint64 `json:"before_mib"`
	AfterMiB    uint64 `json:"after_mib"`
	VMsBefore   int    `json:"vms_before"`
	VMsAfter    int    `json:"vms_after"`
	Overcommits bool   `json:"overcommits,omitempty"`
}

// MoveDryRun is the answer of POST /v1/vms/{name}/migrate or /relocate
// with dry_run: what the call would do, nothing committed.
type MoveDryRun struct {
	VM   string `json:"vm"`
	From string `json:"from"`
	To   string `json:"to"`
	// How is live or restart.
	How    string `json:"how"`
	Reason string `json:"reason"`
}

// Recovery is one host loss and its timeline (GET /v1/recoveries).
type Recovery struct {
	ID            string        `json:"recovery_id"`
	Host          string        `json:"host"`
	Reason        string        `json:"reason,omitempty"`
	LostAt        time.Time     `json:"lost_at,omitzero"`
	FencedAt      time.Time     `json:"fenced_at,omitzero"`
	FencedBy      string        `json:"fenced_by,omitempty"`
	FenceFailedAt time.Time     `json:"fence_failed_at,omitzero"`
	FenceError    string        `json:"fence_error,omitempty"`
	VMs           []RecoveredVM `json:"vms"`
	// Running counts the VMs reported running where they were restarted.
	Running int `json:"running"`
	// The phases, in seconds, when both their ends are known: fence
	// (lost → fenced), restart (fenced → the last VM running), total
	// (lost → the last VM running).
	FenceSeconds   *float64 `json:"fence_seconds,omitempty"`
	RestartSeconds *float64 `json:"restart_seconds,omitempty"`
	TotalSeconds   *float64 `json:"total_seconds,omitempty"`
	// Summary is the timeline in one line, as the demo prints it.
	Summary string `json:"summary"`
}

// RecoveredVM is one VM of a lost host.
type RecoveredVM struct {
	VM string `json:"vm"`
	// Host is where it was restarted ("" nowhere: Stranded says why).
	Host      string    `json:"host,omitempty"`
	PlacedAt  time.Time `json:"placed_at,omitzero"`
	RunningAt time.Time `json:"running_at,omitzero"`
	Stranded  string    `json:"stranded,omitempty"`
}

// Migration is a VM moving now (GET /v1/migrations).
type Migration struct {
	VM          string    `json:"vm"`
	MigrationID string    `json:"migration_id"`
	From        string    `json:"from"`
	To          string    `json:"to"`
	How         string    `json:"how"`
	Since       time.Time `json:"since,omitzero"`
	Reason      string    `json:"reason,omitempty"`
	// Progress is the source's latest statistics (nil: none yet, or the
	// source did not answer: Note says which).
	Progress *MigrationJob `json:"progress,omitempty"`
	Note     string        `json:"note,omitempty"`
}
