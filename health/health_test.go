package health

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"
)

func TestDamper(t *testing.T) {
	d := Damper{Dampen: 5 * time.Second}
	t0 := time.Unix(1000, 0)
	steps := []struct {
		at      time.Duration
		v       int
		pub     bool
		current int
	}{
		{0, 200, true, 200},                // first value at once
		{1 * time.Second, 100, false, 200}, // a drop starts the clock
		{3 * time.Second, 200, false, 200}, // back before the dampen: nothing
		{4 * time.Second, 0, false, 200},   // a new drop restarts the clock
		{8 * time.Second, 0, false, 200},   // 4 s: not yet
		{9 * time.Second, 0, true, 0},      // 5 s stable: published
		{10 * time.Second, 0, false, 0},    // unchanged
		{11 * time.Second, 100, false, 0},  // recovery is dampened too
		{16 * time.Second, 100, true, 100}, // published after 5 s
	}
	for i, s := range steps {
		pub, v := d.Observe(s.v, t0.Add(s.at))
		if pub != s.pub || v != s.current {
			t.Fatalf("step %d (%v: %d): publish %v value %d, want %v %d", i, s.at, s.v, pub, v, s.pub, s.current)
		}
	}
}

type fakePinger map[string]bool

func (f fakePinger) Ping(_ context.Context, t string) error {
	if f[t] {
		return nil
	}
	return errors.New("unreachable")
}

func TestMeasure(t *testing.T) {
	m := &Monitor{Targets: []string{"a", "b", "c"}, Multiplier: 100, Timeout: time.Second, Pinger: fakePinger{"a": true, "c": true}}
	if got := m.Measure(context.Background()); got != 200 {
		t.Fatalf("pingd %d, want 200", got)
	}
}

func TestICMPLoopback(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("raw ICMP sockets need root")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := (ICMP{}).Ping(ctx, "127.0.0.1"); err != nil {
		t.Fatalf("ping 127.0.0.1: %v", err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	if err := (ICMP{}).Ping(ctx2, "no-such-host.invalid"); err == nil {
		t.Fatal("an unresolvable target answered")
	}
	// IPv6 too (pro-bing), and a target that never answers is an error
	// once the deadline passes, not a hang.
	ctx3, cancel3 := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel3()
	if err := (ICMP{}).Ping(ctx3, "::1"); err != nil {
		t.Logf("ping ::1: %v (IPv6 loopback may be off here)", err)
	}
	ctx4, cancel4 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel4()
	start := time.Now()
	if err := (ICMP{}).Ping(ctx4, "198.51.100.1"); err == nil {
		t.Fatal("TEST-NET-2 answered")
	}
	if time.Since(start) > 3*time.Second {
		t.Fatal("a silent target was waited for past the deadline")
	}
}
