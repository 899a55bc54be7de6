// Package health measures a host's own health for placement: the ping
// attribute (Pacemaker's pingd: reachable targets × multiplier, published
// only once it has been stable for the dampen interval), so that rules
// such as "-INFINITY where pingd lte 0" keep VMs off a host that lost its
// uplink.
package health

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	probing "github.com/prometheus-community/pro-bing"
)

// Pinger checks that one target answers.
type Pinger interface {
	Ping(ctx context.Context, target string) error
}

// ICMP pings with ICMP echo through prometheus-community/pro-bing: over a
// raw socket (vmhad runs as root), IPv4 or IPv6; replies to other pings
// are told apart by the library (id, sequence, a tracker in the payload).
type ICMP struct{}

// Ping sends one echo request to target and waits for its reply until ctx
// ends (at most 5 s without a deadline).
func (ICMP) Ping(ctx context.Context, target string) error {
	p, err := probing.NewPinger(target)
	if err != nil {
		return fmt.Errorf("ping %s: %w", target, err)
	}
	p.SetPrivileged(true)
	p.Count, p.Timeout = 1, 5*time.Second
	if dl, ok := ctx.Deadline(); ok {
		p.Timeout = time.Until(dl)
	}
	if err := p.RunWithContext(ctx); err != nil {
		return fmt.Errorf("ping %s: %w", target, err)
	}
	if st := p.Statistics(); st.PacketsRecv == 0 {
		return fmt.Errorf("ping %s: no answer within %s", target, p.Timeout.Round(time.Millisecond))
	}
	return nil
}

// Damper publishes a value only once it has held for the dampen interval,
// so that a short blip does not move VMs (Pacemaker's attrd dampening).
type Damper struct {
	Dampen    time.Duration
	published int
	have      bool
	pending   int
	since     time.Time
}

// Observe takes a new measurement and says whether, and what, to publish.
func (d *Damper) Observe(v int, now time.Time) (publish bool, value int) {
	if !d.have {
		// The first value is published at once: the attribute must
		// exist for rules such as "pingd lte 0" to see the host.
		d.have, d.published, d.pending, d.since = true, v, v, now
		return true, v
	}
	if v != d.pending {
		d.pending, d.since = v, now
	}
	if d.pending != d.published && now.Sub(d.since) >= d.Dampen {
		d.published = d.pending
		return true, d.published
	}
	return false, d.published
}

// Monitor pings the targets every Interval and publishes pingd.
type Monitor struct {
	Targets    []string
	Multiplier int
	Interval   time.Duration
	Timeout    time.Duration
	Dampen     time.Duration
	Pinger     Pinger
	// Publish receives every value to publish (from Run's goroutine).
	Publish func(pingd int)
}

// Measure pings every target at once and returns reachable × multiplier.
func (m *Monitor) Measure(ctx context.Context) int {
	var ok atomic.Int32
	var wg sync.WaitGroup
	for _, t := range m.Targets {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, m.Timeout)
			defer cancel()
			if m.Pinger.Ping(cctx, t) == nil {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	return int(ok.Load()) * m.Multiplier
}

// Run measures and publishes until ctx ends.
func (m *Monitor) Run(ctx context.Context) error {
	if len(m.Targets) == 0 || m.Pinger == nil || m.Publish == nil || m.Interval <= 0 {
		return errors.New("health: monitor needs targets, a pinger, a publisher and an interval")
	}
	var d Damper
	d.Dampen = m.Dampen
	for {
		v := m.Measure(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if pub, val := d.Observe(v, time.Now()); pub {
			m.Publish(val)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(m.Interval):
		}
	}
}
