package config

import (
	"errors"
	"fmt"
	"time"

	"github.com/vmha/vmha/health"
)

// Health configures this host's own health monitoring (docs/health.md):
// its BMC's sensors and event log, read by this host's vmhad and published
// as the host attribute #health-ipmi (green, yellow, red) with its reasons
// in health-ipmi-reasons, for the cluster's node-health-strategy.
type Health struct {
	IPMI HealthIPMI `mapstructure:"ipmi"`
}

// HealthIPMI reads the BMC the bmc: section describes (its address, user
// and password file).
type HealthIPMI struct {
	// Enabled turns the reading on (off by default).
	Enabled  bool          `mapstructure:"enabled"`
	Interval time.Duration `mapstructure:"interval"`
	// Timeout bounds one full read (sensors and SEL).
	Timeout time.Duration `mapstructure:"timeout"`
	// Dampen is how long a new level must hold before it is published.
	Dampen time.Duration `mapstructure:"dampen"`
	// SEL reads the system event log too (default true).
	SEL bool `mapstructure:"sel"`
	// DefaultRules appends health.DefaultRules after Rules (default true).
	DefaultRules bool          `mapstructure:"default_rules"`
	Rules        []health.Rule `mapstructure:"rules"`
}

func init() {
	Defaults["health.ipmi.enabled"] = false
	Defaults["health.ipmi.interval"] = "30s"
	Defaults["health.ipmi.timeout"] = "20s"
	Defaults["health.ipmi.dampen"] = "10s"
	Defaults["health.ipmi.sel"] = true
	Defaults["health.ipmi.default_rules"] = true
	Defaults["health.ipmi.rules"] = []any{}
}

// validateHealth checks the health: section against the bmc: one.
func validateHealth(h Health, b BMC) []error {
	var errs []error
	p := h.IPMI
	for i, r := range p.Rules {
		if err := r.Validate(fmt.Sprintf("health.ipmi.rules[%d]", i)); err != nil {
			errs = append(errs, err)
		}
	}
	if !p.Enabled {
		return errs
	}
	if b.Address == "" {
		errs = append(errs, errors.New("health.ipmi.enabled: needs this host's bmc: section (address, user, password_file): a host reads only its own BMC"))
	}
	if p.Interval < time.Second || p.Interval > time.Hour {
		errs = append(errs, fmt.Errorf("health.ipmi.interval: %v, want 1s to 1h", p.Interval))
	}
	if p.Timeout < time.Second || p.Timeout > 10*time.Minute {
		errs = append(errs, fmt.Errorf("health.ipmi.timeout: %v, want 1s to 10m", p.Timeout))
	}
	if p.Dampen < 0 || p.Dampen > time.Hour {
		errs = append(errs, fmt.Errorf("health.ipmi.dampen: %v, want 0 to 1h", p.Dampen))
	}
	return errs
}
