// Package qmplibvirt is go-qemu's QMP monitor (qmp.Monitor) over libvirt's
// QEMU monitor passthrough (virDomainQemuMonitorCommand): libvirt stays the
// owner of the monitor socket, and vmha still reaches what QMP offers that
// the libvirt binding does not type: the guest's run state (guest-panicked,
// watchdog) and the dirty page rate that predicts a live migration's time
// and downtime.
package qmplibvirt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/digitalocean/go-qemu/qmp"
	"github.com/digitalocean/go-qemu/qmp/raw"
)

// Passthrough runs one QMP command in a domain's QEMU and returns its JSON
// reply: hypervisor.Libvirt's QemuMonitorCommand.
type Passthrough interface {
	QemuMonitorCommand(ctx context.Context, domain, cmd string) (string, error)
}

// Monitor is a qmp.Monitor for one libvirt domain.
type Monitor struct {
	ctx    context.Context
	p      Passthrough
	domain string
}

var _ qmp.Monitor = (*Monitor)(nil)

// New is the monitor of domain through p; ctx bounds every command.
func New(ctx context.Context, p Passthrough, domain string) *Monitor {
	return &Monitor{ctx: ctx, p: p, domain: domain}
}

// Connect does nothing: libvirt holds the connection to QEMU.
func (m *Monitor) Connect() error { return nil }

// Disconnect does nothing: libvirt holds the connection to QEMU.
func (m *Monitor) Disconnect() error { return nil }

// Run sends one QMP command and returns QEMU's reply. A reply with an
// "error" member is returned as an error, as go-qemu's socket monitor does.
func (m *Monitor) Run(command []byte) ([]byte, error) {
	out, err := m.p.QemuMonitorCommand(m.ctx, m.domain, string(command))
	if err != nil {
		return nil, err
	}
	var r struct {
		Error *struct {
			Class string `json:"class"`
			Desc  string `json:"desc"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		return nil, fmt.Errorf("qmp reply from %s: %w", m.domain, err)
	}
	if r.Error != nil {
		return nil, fmt.Errorf("qmp %s: %s: %s", m.domain, r.Error.Class, r.Error.Desc)
	}
	return []byte(out), nil
}

// Events is not offered: libvirt consumes QEMU's events and turns them
// into its own (the hypervisor package's lifecycle and watchdog events).
func (m *Monitor) Events(context.Context) (<-chan qmp.Event, error) {
	return nil, qmp.ErrEventsNotSupported
}

// Status is QEMU's run state of a guest (query-status).
type Status struct {
	Running bool
	// State is QEMU's run state: running, paused, guest-panicked,
	// watchdog, shutdown, ...
	State string
}

// Panicked reports whether the guest kernel panicked (pvpanic) and QEMU holds it.
func (s Status) Panicked() bool { return s.State == raw.RunStateGuestPanicked.String() }

// QueryStatus asks QEMU for the guest's run state through go-qemu's typed
// API.
func QueryStatus(m qmp.Monitor) (Status, error) {
	st, err := raw.NewMonitor(m).QueryStatus()
	if err != nil {
		return Status{}, err
	}
	return Status{Running: st.Running, State: st.Status.String()}, nil
}

// DirtyRate is a measured guest memory dirty rate.
type DirtyRate struct {
	MiBPerSec int64
	Period    time.Duration
}

// MeasureDirtyRate runs calc-dirty-rate for period (whole seconds, at least
// one) and polls query-dirty-rate until QEMU has measured it. go-qemu's
// generated API predates these commands, so they go through Run as JSON.
func MeasureDirtyRate(ctx context.Context, m qmp.Monitor, period time.Duration) (DirtyRate, error) {
	secs := max(int64(period/time.Second), 1)
	cmd, _ := json.Marshal(qmp.Command{Execute: "calc-dirty-rate", Args: map[string]any{"calc-time": secs}})
	if _, err := m.Run(cmd); err != nil {
		return DirtyRate{}, err
	}
	q, _ := json.Marshal(qmp.Command{Execute: "query-dirty-rate"})
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		out, err := m.Run(q)
		if err != nil {
			return DirtyRate{}, err
		}
		var r struct {
			Return struct {
				Status    string `json:"status"`
				DirtyRate *int64 `json:"dirty-rate"`
				CalcTime  int64  `json:"calc-time"`
			} `json:"return"`
		}
		if err := json.Unmarshal(out, &r); err != nil {
			return DirtyRate{}, fmt.Errorf("query-dirty-rate: %w", err)
		}
		if r.Return.Status == "measured" && r.Return.DirtyRate != nil {
			return DirtyRate{MiBPerSec: *r.Return.DirtyRate, Period: time.Duration(r.Return.CalcTime) * time.Second}, nil
		}
		select {
		case <-ctx.Done():
			return DirtyRate{}, ctx.Err()
		case <-t.C:
		}
	}
}

// Prediction is the expected course of a pre-copy live migration.
type Prediction struct {
	// Time is the whole migration, Downtime the final stop-and-copy.
	Time, Downtime time.Duration
	Rounds         int
	// Converges: the remaining memory got under what the downtime limit
	// allows; false when the guest dirties memory as fast as the link
	// copies it (a post-copy or auto-converge migration, or another VM,
	// is the better choice).
	Converges bool
}

// ErrNoBandwidth is returned for a bandwidth that is not positive.
var ErrNoBandwidth = errors.New("migration bandwidth must be positive")

// PredictMigration models QEMU's pre-copy: the first round copies all of
// memMiB at bandwidth, each next one what the guest dirtied during the
// previous, until what is left fits in maxDowntime (or 30 rounds, QEMU
// then keeps going but vmha calls it not converging). Pure.
func PredictMigration(memMiB uint64, dirtyMiBps, bandwidthMiBps float64, maxDowntime time.Duration) (Prediction, error) {
	if bandwidthMiBps <= 0 {
		return Prediction{}, ErrNoBandwidth
	}
	left := float64(memMiB)
	var total float64
	limit := maxDowntime.Seconds() * bandwidthMiBps // MiB copyable while stopped
	p := Prediction{}
	for p.Rounds = 0; p.Rounds < 30; p.Rounds++ {
		if left <= limit {
			p.Converges = true
			break
		}
		secs := left / bandwidthMiBps
		total += secs
		left = math.Min(float64(memMiB), dirtyMiBps*secs)
	}
	down := left / bandwidthMiBps
	p.Downtime = time.Duration(down * float64(time.Second))
	p.Time = time.Duration((total + down) * float64(time.Second))
	return p, nil
}
