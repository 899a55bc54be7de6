package decide

import (
	"slices"
	"strings"

	"github.com/vmha/vmha/cluster/command"
	"github.com/vmha/vmha/clusterspec"
	"github.com/vmha/vmha/model"
)

// Host attributes of node health (docs/health.md).
const (
	// HealthIPMIAttr is the health a host's vmhad reads from its own BMC:
	// green, yellow or red.
	HealthIPMIAttr = "#health-ipmi"
	// HealthReasonsAttr says why, shortened.
	HealthReasonsAttr = "health-ipmi-reasons"
	// HealthHoldAttr holds a host whose health sent its VMs away.
	HealthHoldAttr = clusterspec.HealthHoldAttr
)

// LiveHealth is the worst red/yellow/green among a host's #health*
// attributes (not the hold), and the attributes at that level; "" when it
// has none with a colour.
func LiveHealth(attrs map[string]string) (worst string, which []string) {
	rank := map[string]int{"green": 1, "yellow": 2, "red": 3}
	best := 0
	for _, k := range model.SortedKeys(attrs) {
		if !strings.HasPrefix(k, clusterspec.HealthAttrPrefix) {
			continue
		}
		v := strings.ToLower(strings.TrimSpace(attrs[k]))
		r := rank[v]
		switch {
		case r > best:
			best, worst, which = r, v, []string{k}
		case r == best && r > 0:
			which = append(which, k)
		}
	}
	return worst, which
}

// holdHealth sets the hold attribute on every host whose live health is
// yellow or red and scores below 0 under the cluster's strategy (its VMs
// leave it), unless node-health-recovery is auto. The hold only worsens:
// yellow becomes red, never the reverse; an operator clears it (vmha host
// health clear HOST), so nothing returns to the host by itself once it is
// green again.
func (b *builder) holdHealth() {
	rules, err := b.v.rules()
	if err != nil || rules == nil || rules.Spec == nil {
		return
	}
	hp := rules.Spec.Policy.Health()
	if hp.Strategy == clusterspec.HealthNone || !hp.Manual {
		return
	}
	st := b.v.State
	for _, name := range sortedHosts(b.v) {
		if h := st.Config.Hosts[name]; h == nil || h.Witness {
			continue
		}
		attrs := hostAttributes(st, b.v.Members, name, rules.hosts[name].Attributes)
		worst, which := LiveHealth(attrs)
		if worst != "red" && worst != "yellow" || hp.LevelScore(worst) >= 0 {
			continue
		}
		cur := st.Config.HostAttrs[name][HealthHoldAttr]
		if cur == worst || cur == "red" {
			continue
		}
		reason := attrs[HealthReasonsAttr]
		b.commit(&command.Command{Op: command.OpHostAttr, Attr: &command.HostAttr{Host: name, Key: HealthHoldAttr, Value: worst}},
			note(Warn, "host health sends VMs away: held until an operator clears it (vmha host health clear)", "host", name,
				"health", worst, "attributes", slices.Clone(which), "reasons", reason))
	}
}
