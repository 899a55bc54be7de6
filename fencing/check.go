package fencing

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// DeviceCheck is the outcome of a status-only check of one device: the
// periodic health check that shows a broken device before an incident
// needs it. A check never sends a power command.
type DeviceCheck struct {
	Host   string `json:"host,omitempty"`
	Level  int    `json:"level,omitempty"` // 1-based, 0 when checked alone
	Device string `json:"device"`
	// OK is true when the device answered with a definite power state.
	OK bool `json:"ok"`
	// State is what the device reported (PowerUnknown on failure).
	State    PowerState    `json:"state"`
	Error    string        `json:"error,omitempty"`
	Checked  time.Time     `json:"checked"`
	Duration time.Duration `json:"duration"`
}

// Check reads d's status once within timeout (a device that ignores its
// context is abandoned at the deadline). A device that answers "unknown"
// is not OK: it cannot confirm a fence either.
func Check(ctx context.Context, d Device, timeout time.Duration) DeviceCheck {
	if timeout <= 0 {
		timeout = DefaultOptions().CallTimeout
	}
	start := time.Now()
	st, err := callOnce(ctx, timeout, d.Status)
	c := DeviceCheck{Device: d.Name(), State: st, Checked: start, Duration: time.Since(start)}
	switch {
	case err != nil:
		c.State = PowerUnknown
		c.Error = fmt.Sprintf("status of %s: %v", c.Device, err)
	case st != PowerOn && st != PowerOff:
		c.State = PowerUnknown
		c.Error = fmt.Sprintf("status of %s: the device reports no definite power state (%q)", c.Device, st)
	default:
		c.OK = true
	}
	return c
}

// Check checks every device of every level concurrently, status only, and
// returns one DeviceCheck per device in level order. A host is fenceable
// when at least one level has all its devices OK (see Fenceable).
func (t Topology) Check(ctx context.Context, timeout time.Duration) []DeviceCheck {
	var out []DeviceCheck
	for i, l := range t.Levels {
		for range l.Devices {
			out = append(out, DeviceCheck{Host: t.Host, Level: i + 1})
		}
	}
	var wg sync.WaitGroup
	k := 0
	for _, l := range t.Levels {
		for _, d := range l.Devices {
			slot := &out[k]
			k++
			if d == nil {
				slot.State, slot.Error = PowerUnknown, "no device"
				continue
			}
			wg.Go(func() {
				c := Check(ctx, d, timeout)
				c.Host, c.Level = slot.Host, slot.Level
				*slot = c
			})
		}
	}
	wg.Wait()
	return out
}

// Fenceable reports whether checks (from Topology.Check) show at least one
// level whose devices all answered: the host can be fenced today.
func Fenceable(checks []DeviceCheck) bool {
	levels := map[int]bool{}
	for _, c := range checks {
		ok, seen := levels[c.Level]
		levels[c.Level] = c.OK && (ok || !seen)
	}
	for _, ok := range levels {
		if ok {
			return true
		}
	}
	return false
}
