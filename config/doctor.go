package config

import (
	"fmt"
	"time"
)

// Doctor schedules the leader's own run of vmha doctor (docs/doctor.md)
// and sets the clock-skew thresholds it reports.
type Doctor struct {
	// Interval runs the doctor this often on the host that leads at the
	// time (0: never; the first tick one interval after vmhad started).
	Interval time.Duration `mapstructure:"interval"`
	// ClockWarn and ClockFail are the clock differences from the asking
	// host above which a host's clock is a warn and a fail.
	ClockWarn time.Duration `mapstructure:"clock_warn"`
	ClockFail time.Duration `mapstructure:"clock_fail"`
}

// Doctor defaults: no scheduled run; clocks warn above 500 ms (raft
// timers, event order) and fail above 5 s (certificates, leases).
const (
	DefaultClockWarn = 500 * time.Millisecond
	DefaultClockFail = 5 * time.Second
)

func init() {
	Defaults["doctor.interval"] = "0s"
	Defaults["doctor.clock_warn"] = DefaultClockWarn.String()
	Defaults["doctor.clock_fail"] = DefaultClockFail.String()
}

// validateDoctor checks the doctor: section.
func validateDoctor(d Doctor) []error {
	var errs []error
	if d.Interval != 0 && (d.Interval < time.Minute || d.Interval > 30*24*time.Hour) {
		errs = append(errs, fmt.Errorf("doctor.interval: %v, want 0 (off) or 1m to 720h", d.Interval))
	}
	if d.ClockWarn < 0 {
		errs = append(errs, fmt.Errorf("doctor.clock_warn: %v, want more than 0", d.ClockWarn))
	}
	if d.ClockFail < 0 || d.Fail() <= d.Warn() {
		errs = append(errs, fmt.Errorf("doctor.clock_fail: %v, want more than doctor.clock_warn (%v)", d.Fail(), d.Warn()))
	}
	return errs
}

// Warn is ClockWarn, or its default when unset.
func (d Doctor) Warn() time.Duration {
	if d.ClockWarn <= 0 {
		return DefaultClockWarn
	}
	return d.ClockWarn
}

// Fail is ClockFail, or its default when unset.
func (d Doctor) Fail() time.Duration {
	if d.ClockFail <= 0 {
		return DefaultClockFail
	}
	return d.ClockFail
}
