package fencing

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// journal records device calls across devices, to check their order.
type journal struct {
	mu    sync.Mutex
	calls []string
}

func (j *journal) add(s string) {
	j.mu.Lock()
	j.calls = append(j.calls, s)
	j.mu.Unlock()
}

func (j *journal) list() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]string(nil), j.calls...)
}

// topoDev is a named scripted device for topology tests.
type topoDev struct {
	name      string
	j         *journal
	mu        sync.Mutex
	on        bool
	statusErr error // every Status fails with it
	offErr    error // every PowerOff fails with it
	onErr     error // every PowerOn fails with it
	ignoreOff bool
}

func (d *topoDev) Name() string { return d.name }

func (d *topoDev) PowerOff(context.Context) error {
	d.j.add(d.name + " off")
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.offErr != nil {
		return d.offErr
	}
	if !d.ignoreOff {
		d.on = false
	}
	return nil
}

func (d *topoDev) PowerOn(context.Context) error {
	d.j.add(d.name + " on")
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.onErr != nil {
		return d.onErr
	}
	d.on = true
	return nil
}

func (d *topoDev) Status(context.Context) (PowerState, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.statusErr != nil {
		return PowerUnknown, d.statusErr
	}
	if d.on {
		return PowerOn, nil
	}
	return PowerOff, nil
}

func (d *topoDev) isOn() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.on
}

// fakeClock hands every After to the test through waits; the test fires
// it. Now advances only when a timer fires.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	waits chan fakeTimer
}

type fakeTimer struct {
	d    time.Duration
	fire func()
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), waits: make(chan fakeTimer, 4)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.waits <- fakeTimer{d: d, fire: func() {
		c.mu.Lock()
		c.now = c.now.Add(d)
		now := c.now
		c.mu.Unlock()
		ch <- now
	}}
	return ch
}

func topoOpts() Options {
	o := fast()
	o.Timeout = 300 * time.Millisecond
	return o
}

func TestTopologyLevel1FailsLevel2Succeeds(t *testing.T) {
	j := &journal{}
	bmcErr := errors.New("bmc 10.0.0.11 does not answer")
	ipmi := &topoDev{name: "ipmi h1", j: j, on: true, statusErr: bmcErr}
	pduA := &topoDev{name: "pdu-a outlet 3", j: j, on: true}
	pduB := &topoDev{name: "pdu-b outlet 3", j: j, on: true}
	topo := Topology{Host: "h1", Levels: []Level{{Devices: []Device{ipmi}}, {Devices: []Device{pduA, pduB}}}}
	rep, err := topo.Run(context.Background(), RunOptions{Fence: topoOpts()})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !rep.Fenced || rep.Level != 2 || rep.Action != ActionOff || rep.Host != "h1" {
		t.Fatalf("report %+v", rep)
	}
	if pduA.isOn() || pduB.isOn() {
		t.Fatal("an outlet of level 2 is still on")
	}
	steps := rep.Steps()
	if len(steps) != 3 {
		t.Fatalf("steps %+v", steps)
	}
	if s := steps[0]; s.Level != 1 || s.Device != "ipmi h1" || s.OK || !errors.Is(s.Err, bmcErr) || !strings.Contains(s.Error, "does not answer") {
		t.Fatalf("step 1 %+v", s)
	}
	for i, name := range []string{"pdu-a outlet 3", "pdu-b outlet 3"} {
		if s := steps[i+1]; s.Level != 2 || s.Device != name || !s.OK || s.Action != StepOff || s.Error != "" {
			t.Fatalf("step %d %+v", i+2, s)
		}
	}
	if rep.Levels[0].OK || !rep.Levels[1].OK {
		t.Fatalf("levels %+v", rep.Levels)
	}
	if got := j.list(); fmt.Sprint(got) != "[pdu-a outlet 3 off pdu-b outlet 3 off]" {
		t.Fatalf("calls %q", got)
	}
}

func TestTopologyAllLevelsFail(t *testing.T) {
	j := &journal{}
	ipmi := &topoDev{name: "ipmi h1", j: j, on: true, ignoreOff: true}
	pduA := &topoDev{name: "pdu-a", j: j, on: true}
	pduB := &topoDev{name: "pdu-b", j: j, on: true, offErr: errors.New("outlet locked")}
	topo := Topology{Host: "h1", Levels: []Level{{Devices: []Device{ipmi}}, {Devices: []Device{pduA, pduB}}}}
	rep, err := topo.Run(context.Background(), RunOptions{Fence: topoOpts()})
	if err == nil {
		t.Fatalf("Run succeeded: %+v", rep)
	}
	t.Logf("error: %v", err)
	var te *TopologyError
	if !errors.As(err, &te) || len(te.Levels) != 2 {
		t.Fatalf("error %#v is not a TopologyError with 2 levels", err)
	}
	msg := err.Error()
	for _, want := range []string{
		"fence h1: all 2 level(s) failed",
		"level 1: fence via ipmi h1: power still on",
		"level 2: fence via pdu-b: power off failed after 4 attempt(s): outlet locked",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if !errors.Is(err, ErrStillOn) {
		t.Error("errors.Is(err, ErrStillOn) is false")
	}
	if rep.Fenced || rep.Level != 0 || len(rep.Levels) != 2 {
		t.Fatalf("report %+v", rep)
	}
	// pdu-a was switched off before pdu-b failed: the history must say so.
	steps := rep.Steps()
	if len(steps) != 3 || !steps[1].OK || steps[1].Device != "pdu-a" || steps[2].OK {
		t.Fatalf("steps %+v", steps)
	}
}

func TestTopologyAlreadyOff(t *testing.T) {
	j := &journal{}
	d := &topoDev{name: "ipmi h2", j: j, on: false}
	rep, err := Topology{Host: "h2", Levels: []Level{{Devices: []Device{d}}}}.Run(context.Background(), RunOptions{Fence: topoOpts()})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Fenced || rep.Level != 1 || !rep.Steps()[0].AlreadyOff {
		t.Fatalf("report %+v", rep)
	}
	if calls := j.list(); len(calls) != 0 {
		t.Fatalf("commands sent to an already-off host: %q", calls)
	}
}

func TestTopologyReboot(t *testing.T) {
	j := &journal{}
	a := &topoDev{name: "pdu-a", j: j, on: true}
	b := &topoDev{name: "pdu-b", j: j, on: true}
	topo := Topology{Host: "h3", Levels: []Level{{Devices: []Device{a, b}}}, Action: ActionReboot}
	rep, err := topo.Run(context.Background(), RunOptions{Fence: topoOpts()})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Fenced || !rep.PoweredOn || rep.Action != ActionReboot {
		t.Fatalf("report %+v", rep)
	}
	// Both outlets off (verified) before either comes back on.
	if got := fmt.Sprint(j.list()); got != "[pdu-a off pdu-b off pdu-a on pdu-b on]" {
		t.Fatalf("calls %s", got)
	}
	if !a.isOn() || !b.isOn() {
		t.Fatal("not powered on again")
	}
	var actions []string
	for _, s := range rep.Steps() {
		actions = append(actions, s.Device+" "+s.Action)
	}
	if got := strings.Join(actions, ","); got != "pdu-a off,pdu-b off,pdu-a on,pdu-b on" {
		t.Fatalf("steps %s", got)
	}

	t.Run("power on fails", func(t *testing.T) {
		j := &journal{}
		d := &topoDev{name: "ipmi h3", j: j, on: true, onErr: errors.New("no answer")}
		rep, err := Topology{Host: "h3", Levels: []Level{{Devices: []Device{d}}}}.Run(context.Background(),
			RunOptions{Action: ActionReboot, Fence: topoOpts()})
		// The host is off: that is a fence, whatever happens after.
		if err != nil || !rep.Fenced || rep.PoweredOn {
			t.Fatalf("report %+v, %v", rep, err)
		}
		s := rep.Steps()
		if len(s) != 2 || s[1].Action != StepOn || s[1].OK || !strings.Contains(s[1].Error, "power on via ipmi h3: failed after 4 attempt(s): no answer") {
			t.Fatalf("steps %+v", s)
		}
	})
	t.Run("override to off", func(t *testing.T) {
		j := &journal{}
		d := &topoDev{name: "x", j: j, on: true}
		rep, err := Topology{Host: "h3", Action: ActionReboot, Levels: []Level{{Devices: []Device{d}}}}.Run(context.Background(),
			RunOptions{Action: ActionOff, Fence: topoOpts()})
		if err != nil || rep.Action != ActionOff || d.isOn() {
			t.Fatalf("report %+v, %v, on=%v", rep, err, d.isOn())
		}
	})
}

func TestTopologyDelay(t *testing.T) {
	j := &journal{}
	d := &topoDev{name: "ipmi h1", j: j, on: true}
	clock := newFakeClock()
	var gotMax time.Duration
	topo := Topology{Host: "h1", Levels: []Level{{Devices: []Device{d}}}, Delay: 10 * time.Second, RandomDelay: 5 * time.Second}
	type out struct {
		rep Report
		err error
	}
	done := make(chan out, 1)
	go func() {
		rep, err := topo.Run(context.Background(), RunOptions{
			Fence: topoOpts(), Clock: clock,
			Rand: func(limit time.Duration) time.Duration { gotMax = limit; return 3 * time.Second },
		})
		done <- out{rep, err}
	}()
	w := <-clock.waits
	if w.d != 13*time.Second {
		t.Fatalf("waits %s, want 10s static + 3s random", w.d)
	}
	// While the delay runs, nothing may reach the device.
	if calls := j.list(); len(calls) != 0 {
		t.Fatalf("device used during the delay: %q", calls)
	}
	select {
	case o := <-done:
		t.Fatalf("Run returned before the delay ended: %+v, %v", o.rep, o.err)
	default:
	}
	w.fire()
	o := <-done
	if o.err != nil || !o.rep.Fenced || o.rep.Delay != 13*time.Second || o.rep.Duration != 13*time.Second {
		t.Fatalf("report %+v, %v", o.rep, o.err)
	}
	if gotMax != 5*time.Second {
		t.Fatalf("Rand got max %s", gotMax)
	}
	if d.isOn() {
		t.Fatal("not fenced")
	}
}

func TestTopologyDelayBoundsAndSkip(t *testing.T) {
	t.Run("random source clamped to the bound", func(t *testing.T) {
		clock := newFakeClock()
		d := &topoDev{name: "d", j: &journal{}, on: true}
		topo := Topology{Host: "h", Levels: []Level{{Devices: []Device{d}}}, RandomDelay: 2 * time.Second}
		done := make(chan error, 1)
		go func() {
			_, err := topo.Run(context.Background(), RunOptions{Fence: topoOpts(), Clock: clock,
				Rand: func(time.Duration) time.Duration { return time.Hour }})
			done <- err
		}()
		w := <-clock.waits
		if w.d != 2*time.Second {
			t.Fatalf("waits %s, want the 2s bound", w.d)
		}
		w.fire()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
	t.Run("no delay for a manual fence", func(t *testing.T) {
		clock := newFakeClock()
		d := &topoDev{name: "d", j: &journal{}, on: true}
		topo := Topology{Host: "h", Levels: []Level{{Devices: []Device{d}}}, Delay: time.Minute}
		// The fake clock would block Run forever if After were called.
		rep, err := topo.Run(context.Background(), RunOptions{Fence: topoOpts(), Clock: clock, NoDelay: true})
		if err != nil || rep.Delay != 0 || !rep.Fenced {
			t.Fatalf("report %+v, %v", rep, err)
		}
	})
	t.Run("cancelled during the delay", func(t *testing.T) {
		clock := newFakeClock()
		j := &journal{}
		d := &topoDev{name: "d", j: j, on: true}
		topo := Topology{Host: "h", Levels: []Level{{Devices: []Device{d}}}, Delay: time.Minute}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := topo.Run(ctx, RunOptions{Fence: topoOpts(), Clock: clock})
			done <- err
		}()
		<-clock.waits
		cancel()
		err := <-done
		if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "fence h: during the 1m0s fence delay") {
			t.Fatalf("error %v", err)
		}
		if calls := j.list(); len(calls) != 0 || !d.isOn() {
			t.Fatalf("device used after cancel: %q", calls)
		}
	})
	t.Run("default random source stays in bounds", func(t *testing.T) {
		seen := map[bool]bool{}
		for range 2000 {
			v := uniform(10 * time.Millisecond)
			if v < 0 || v > 10*time.Millisecond {
				t.Fatalf("uniform gave %s", v)
			}
			seen[v > 5*time.Millisecond] = true
		}
		if len(seen) != 2 {
			t.Fatal("uniform never reached one half of its range in 2000 draws")
		}
		if uniform(0) != 0 {
			t.Fatal("uniform(0) != 0")
		}
	})
}

func TestTopologyValidate(t *testing.T) {
	d := &topoDev{name: "d", j: &journal{}}
	for _, tc := range []struct {
		topo Topology
		want string
	}{
		{Topology{Levels: []Level{{Devices: []Device{d}}}}, "host name is empty"},
		{Topology{Host: "h1"}, "fence topology of host h1: no level"},
		{Topology{Host: "h1", Levels: []Level{{Devices: []Device{d}}, {}}}, "fence topology of host h1: level 2 has no device"},
		{Topology{Host: "h1", Levels: []Level{{Devices: []Device{d, nil}}}}, "level 1 device 2 is nil"},
		{Topology{Host: "h1", Levels: []Level{{Devices: []Device{d}}}, Action: "cycle"}, `fence action "cycle" is not`},
		{Topology{Host: "h1", Levels: []Level{{Devices: []Device{d}}}, Delay: -time.Second}, "delay -1s is outside"},
		{Topology{Host: "h1", Levels: []Level{{Devices: []Device{d}}}, RandomDelay: time.Hour}, "random delay 1h0m0s is outside"},
	} {
		err := tc.topo.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v, want %q", tc.topo, err, tc.want)
			continue
		}
		// Run refuses it too, without touching any device.
		if _, rerr := tc.topo.Run(context.Background(), RunOptions{NoDelay: true}); rerr == nil || !strings.Contains(rerr.Error(), tc.want) {
			t.Errorf("Run(%+v) = %v", tc.topo, rerr)
		}
	}
	if calls := d.j.list(); len(calls) != 0 {
		t.Fatalf("invalid topology touched a device: %q", calls)
	}
	if err := (Topology{Host: "h", Levels: []Level{{Devices: []Device{d}}}, Action: ActionReboot, Delay: time.Second, RandomDelay: time.Second}).Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := (Topology{Host: "h", Levels: []Level{{Devices: []Device{d}}}}).Run(context.Background(), RunOptions{Action: "halt"}); err == nil {
		t.Fatal("Run accepted action halt")
	}
}

func TestParseAction(t *testing.T) {
	for in, want := range map[string]Action{"": ActionOff, "off": ActionOff, "poweroff": ActionOff, " Reboot ": ActionReboot} {
		if got, err := ParseAction(in); err != nil || got != want {
			t.Errorf("ParseAction(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseAction("on"); err == nil || !strings.Contains(err.Error(), `"on"`) {
		t.Errorf("ParseAction(on) = %v", err)
	}
}

func TestChooseExecutor(t *testing.T) {
	for _, tc := range []struct {
		target string
		cands  []string
		want   string
		err    bool
	}{
		{"h1", []string{"h1", "h2", "h3"}, "h2", false},
		{"h2", []string{"h1", "h2"}, "h1", false},
		{"h1", []string{"H1", "", "h3"}, "h3", false},
		{"h1", []string{"h1"}, "", true},
		{"h1", []string{" h1 ", "H1"}, "", true},
		{"h1", nil, "", true},
		{"", []string{"h2"}, "", true},
	} {
		got, err := ChooseExecutor(tc.target, tc.cands)
		if tc.err {
			if err == nil {
				t.Errorf("ChooseExecutor(%q, %q) = %q, want error", tc.target, tc.cands, got)
			}
			if tc.target != "" && !errors.Is(err, ErrNoExecutor) {
				t.Errorf("error %v is not ErrNoExecutor", err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ChooseExecutor(%q, %q) = %q, %v; want %q", tc.target, tc.cands, got, err, tc.want)
		}
	}
}

func TestRunRefusesSelfFence(t *testing.T) {
	j := &journal{}
	d := &topoDev{name: "ipmi h1", j: j, on: true}
	topo := Topology{Host: "h1", Levels: []Level{{Devices: []Device{d}}}}
	_, err := topo.Run(context.Background(), RunOptions{Executor: "H1", Fence: topoOpts(), NoDelay: true})
	if !errors.Is(err, ErrNoExecutor) {
		t.Fatalf("Run on the target itself: %v", err)
	}
	if calls := j.list(); len(calls) != 0 || !d.isOn() {
		t.Fatalf("device used: %q", calls)
	}
	if rep, err := topo.Run(context.Background(), RunOptions{Executor: "h2", Fence: topoOpts(), NoDelay: true}); err != nil || !rep.Fenced {
		t.Fatalf("Run from h2: %+v, %v", rep, err)
	}
}
