package decide

import (
	"fmt"

	"github.com/vmha/vmha/model"
	"github.com/vmha/vmha/placement"
)

// Target is a VM's effective target and where it comes from.
type Target struct {
	Target model.Target `json:"target"`
	// Source is "operator" (vmha vm set), "rules" (cluster.yaml's
	// target-state or managed) or "default".
	Source string `json:"source"`
	// By and At name the operator's change (Source operator).
	By     string `json:"by,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// String is the target as status shows it.
func (t Target) String() string {
	if t.Source == "operator" {
		return fmt.Sprintf("%s (by %s)", t.Target, t.By)
	}
	return string(t.Target)
}

// TargetOf is a VM's effective target: an operator's vmha vm set wins over
// the rules, which win over the default (started). rules may be nil.
func TargetOf(st *model.State, rules *Rules, vm string) Target {
	if s := st.Config.VMStates[vm]; s != nil {
		return Target{Target: s.Target, Source: "operator", By: s.By, Reason: s.Reason}
	}
	if rules != nil {
		if vi, ok := rules.vms[vm]; ok {
			switch {
			case vi.Unmanaged:
				return Target{Target: model.TargetIgnored, Source: "rules"}
			case vi.Target == placement.Stopped:
				return Target{Target: model.TargetStopped, Source: "rules"}
			}
		}
	}
	return Target{Target: model.TargetStarted, Source: "default"}
}

// TargetsOf is every VM's effective target under the view's rules (a rules
// text that does not compile counts as none).
func TargetsOf(v *View) map[string]Target {
	r, err := v.rules()
	if err != nil {
		r = nil
	}
	out := make(map[string]Target, len(v.State.Config.VMs))
	for name := range v.State.Config.VMs {
		out[name] = TargetOf(v.State, r, name)
	}
	return out
}
