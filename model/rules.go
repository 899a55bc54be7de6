package model

import "time"

// MaxRulesHistory bounds the number of rules versions kept in the
// replicated state; MaxRulesHistoryBytes bounds their text together (a
// cluster.yaml of 50,000 VMs is a few MiB, and fifty of those would weigh
// on every snapshot). The newest version is always kept.
const (
	MaxRulesHistory      = 50
	MaxRulesHistoryBytes = 32 << 20
)

// RulesVersion is one applied placement rules text (vmha rules apply,
// rollback, clear and the per-item edits): the cluster keeps the last
// MaxRulesHistory, and Version numbers keep increasing across the bound,
// so that a version number names one text for ever.
type RulesVersion struct {
	Version int       `json:"version"`
	By      string    `json:"by"`
	At      time.Time `json:"at,omitzero"`
	// Rules is the cluster.yaml as applied ("" when the rules were
	// cleared).
	Rules string `json:"rules"`
	// Note says what the change was when the CLI knows (a rollback, an
	// item edit) or the operator said (--note).
	Note string `json:"note,omitempty"`
}

// RulesVersionNow is the version of the rules in force: the last one
// kept, or 0 before any was recorded (no rules, or rules applied before
// the cluster kept a history).
func (s *Status) RulesVersionNow() (RulesVersion, bool) {
	if n := len(s.RulesHistory); n > 0 {
		return s.RulesHistory[n-1], true
	}
	return RulesVersion{}, false
}
