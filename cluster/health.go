package cluster

import (
	"context"
	"fmt"
	"strings"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/cluster/decide"
	"github.com/vmha/vmha/health"
	"github.com/vmha/vmha/internal/secret"
)

// maxReasonsTag bounds the reasons gossiped with #health-ipmi: all of a
// host's gossip tags share about 512 bytes.
const maxReasonsTag = 160

// healthLoop reads this host's own BMC (health.ipmi, docs/health.md) and
// publishes #health-ipmi and health-ipmi-reasons as live attributes; nil
// when it is off. A host speaks only for itself: it reads only the BMC of
// its own bmc: section.
func (n *Node) healthLoop() func(context.Context) {
	p := n.cfg.Health.IPMI
	if !p.Enabled || n.cfg.Witness || n.cfg.BMC.Address == "" {
		return nil
	}
	return func(ctx context.Context) {
		pw, err := secret.FromFile(n.cfg.BMC.PasswordFile)
		if err != nil {
			n.log.Error().Err(err).Msg("health.ipmi: cannot read the BMC password file; #health-ipmi is not published")
			return
		}
		m := &health.IPMIMonitor{
			Reader: &health.IPMI{Address: n.cfg.BMC.Address, Port: n.cfg.BMC.Port, User: n.cfg.BMC.User, Password: pw,
				Interface: n.cfg.BMC.Interface, CipherSuite: n.cfg.BMC.CipherSuite, NoSEL: !p.SEL},
			Rules: p.Rules, NoDefaults: !p.DefaultRules, Interval: p.Interval, Timeout: p.Timeout, Dampen: p.Dampen,
			Publish: func(l health.Level, reasons []string) {
				r := strings.Join(reasons, "; ")
				if len(r) > maxReasonsTag {
					r = r[:maxReasonsTag-3] + "..."
				}
				n.setAttrTag(decide.HealthReasonsAttr, r)
				n.setAttrTag(decide.HealthIPMIAttr, string(l))
				n.log.Info().Str("health", string(l)).Strs("reasons", reasons).Msg("host health (IPMI) published")
			},
			OnError: func(err error) {
				n.log.Warn().Err(err).Msg("health.ipmi: reading the BMC failed; the last health stays published")
			},
		}
		_ = m.Run(ctx)
	}
}

// healthIssues are the status lines about a host's health attributes: a
// health that is not green (with its reasons), and a hold that keeps the
// host out until an operator clears it.
func healthIssues(name string, attrs map[string]string) []api.Issue {
	var out []api.Issue
	worst, which := decide.LiveHealth(attrs)
	if worst != "" && worst != string(health.Green) {
		msg := fmt.Sprintf("host %s's health is %s (%s)", name, worst, strings.Join(which, ", "))
		if r := attrs[decide.HealthReasonsAttr]; r != "" {
			msg += ": " + r
		}
		sev := api.SeverityWarning
		if worst == string(health.Red) {
			sev = api.SeverityCritical
		}
		out = append(out, hostIssue(sev, "host_health", name, msg))
	}
	if h := attrs[decide.HealthHoldAttr]; h != "" {
		now := "green now"
		if worst != "" && worst != string(health.Green) {
			now = worst + " now"
		}
		out = append(out, hostIssue(api.SeverityWarning, "host_health_hold", name, fmt.Sprintf(
			"host %s is held at health %s (%s=%s, %s): its VMs stay away until an operator clears it: vmha host health clear %s", name, h, decide.HealthHoldAttr, h, now, name)))
	}
	return out
}
