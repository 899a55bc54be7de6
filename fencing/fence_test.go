package fencing

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeDevice is a scripted Device. It tests Fence's retry and poll logic
// only; the real BMC paths are tested in fencing/ipmi against ipmi_sim.
type fakeDevice struct {
	mu sync.Mutex

	on bool // current power

	offErrs     []error // returned by successive PowerOff calls, then nil
	statusErrs  []error // returned by successive Status calls, then none
	ignoreOff   bool    // accept PowerOff but stay on
	offDelay    int     // after a PowerOff, report on for this many more polls
	unknown     bool    // Status reports PowerUnknown
	hangStatus  bool    // Status ignores ctx and blocks until release is closed
	release     chan struct{}
	onStatus    func(n int) // called with the Status call number (1-based)
	offCalls    int
	onCalls     int
	statusCalls int
	pending     int // polls left before an accepted off takes effect
}

func (f *fakeDevice) Name() string { return "fake dev" }

func (f *fakeDevice) PowerOff(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.offCalls++
	if len(f.offErrs) > 0 {
		err := f.offErrs[0]
		f.offErrs = f.offErrs[1:]
		if err != nil {
			return err
		}
	}
	if f.ignoreOff {
		return nil
	}
	if f.offDelay > 0 {
		f.pending = f.offDelay
	} else {
		f.on = false
	}
	return nil
}

func (f *fakeDevice) PowerOn(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.onCalls++
	f.on = true
	return nil
}

func (f *fakeDevice) Status(ctx context.Context) (PowerState, error) {
	f.mu.Lock()
	f.statusCalls++
	n := f.statusCalls
	hook, hang := f.onStatus, f.hangStatus
	f.mu.Unlock()
	if hook != nil {
		hook(n)
	}
	if hang {
		<-f.release // deliberately ignores ctx
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.statusErrs) > 0 {
		err := f.statusErrs[0]
		f.statusErrs = f.statusErrs[1:]
		if err != nil {
			return PowerUnknown, err
		}
	}
	if f.unknown {
		return PowerUnknown, nil
	}
	if f.pending > 0 {
		f.pending--
		if f.pending == 0 {
			f.on = false
		}
		return PowerOn, nil
	}
	if f.on {
		return PowerOn, nil
	}
	return PowerOff, nil
}

func (f *fakeDevice) counts() (off, status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.offCalls, f.statusCalls
}

// fast are options in milliseconds so the table runs quickly; no test uses
// sleeps to synchronise, only as upper bounds on how long Fence may take.
func fast() Options {
	return Options{
		Timeout:      2 * time.Second,
		CallTimeout:  500 * time.Millisecond,
		PollInterval: time.Millisecond,
		Retries:      3,
		Backoff:      time.Millisecond,
		MaxBackoff:   4 * time.Millisecond,
	}
}

var errBMC = errors.New("bmc: session rejected")

// fenceCase is one case of TestFence.
type fenceCase struct {
	name string
	dev  *fakeDevice
	opt  func(*Options)

	wantErr      string // substring; "" means success
	wantIs       error
	wantAlready  bool
	wantAttempts int
	wantPolls    int // 0 = don't check
	wantState    PowerState
}

func TestFence(t *testing.T) {
	cases := []fenceCase{
		{
			name:         "already off",
			dev:          &fakeDevice{on: false},
			wantAlready:  true,
			wantAttempts: 0,
			wantPolls:    1,
			wantState:    PowerOff,
		},
		{
			name:         "off at once",
			dev:          &fakeDevice{on: true},
			wantAttempts: 1,
			wantPolls:    2,
			wantState:    PowerOff,
		},
		{
			name:         "off after 5 polls",
			dev:          &fakeDevice{on: true, offDelay: 5},
			wantAttempts: 1,
			wantPolls:    1 + 5 + 1,
			wantState:    PowerOff,
		},
		{
			name:      "power never changes",
			dev:       &fakeDevice{on: true, ignoreOff: true},
			opt:       func(o *Options) { o.Timeout = 100 * time.Millisecond },
			wantErr:   "fence via fake dev: power still on after 100ms",
			wantIs:    ErrStillOn,
			wantState: PowerOn,
			// one off command only: Fence does not resend it
			wantAttempts: 1,
		},
		{
			name:         "off fails twice then succeeds",
			dev:          &fakeDevice{on: true, offErrs: []error{errBMC, errBMC}},
			wantAttempts: 3,
			wantPolls:    2,
			wantState:    PowerOff,
		},
		{
			name:         "off always fails",
			dev:          &fakeDevice{on: true, offErrs: []error{errBMC, errBMC, errBMC, errBMC, errBMC}},
			wantErr:      "fence via fake dev: power off failed after 4 attempt(s): bmc: session rejected",
			wantIs:       errBMC,
			wantAttempts: 4,
			wantPolls:    1,
			wantState:    PowerOn,
		},
		{
			name:         "no retries",
			dev:          &fakeDevice{on: true, offErrs: []error{errBMC}},
			opt:          func(o *Options) { o.Retries = 0 },
			wantErr:      "power off failed after 1 attempt(s)",
			wantIs:       errBMC,
			wantAttempts: 1,
		},
		{
			name:         "first status fails then works",
			dev:          &fakeDevice{on: true, statusErrs: []error{errBMC, errBMC}},
			wantAttempts: 1,
			wantPolls:    4,
			wantState:    PowerOff,
		},
		{
			name:         "status errors while polling are retried",
			dev:          &fakeDevice{on: true, offDelay: 2, statusErrs: []error{nil, errBMC, nil, errBMC, errBMC}},
			wantAttempts: 1,
			wantState:    PowerOff,
		},
		{
			name:      "status always fails",
			dev:       &fakeDevice{on: true, statusErrs: []error{errBMC, errBMC, errBMC, errBMC, errBMC}},
			wantErr:   "fence via fake dev: status failed after 4 attempt(s): bmc: session rejected",
			wantIs:    errBMC,
			wantPolls: 4,
			wantState: PowerUnknown,
		},
		{
			name: "status fails after off command",
			dev: &fakeDevice{on: true, ignoreOff: true,
				statusErrs: []error{nil, errBMC, errBMC, errBMC, errBMC}},
			wantErr:      "fence via fake dev: status poll failed after 4 attempt(s)",
			wantIs:       errBMC,
			wantAttempts: 1,
			wantPolls:    5,
			wantState:    PowerOn,
		},
		{
			name: "status errors until the timeout",
			dev: &fakeDevice{on: true, statusErrs: func() []error {
				e := make([]error, 10000)
				for i := range e {
					e[i] = errBMC
				}
				return e
			}()},
			opt: func(o *Options) {
				o.Timeout = 50 * time.Millisecond
				o.Retries = 1 << 20
			},
			wantErr:   "fence via fake dev: status: no success within 50ms (last error: bmc: session rejected)",
			wantIs:    context.DeadlineExceeded,
			wantState: PowerUnknown,
		},
		{
			name:      "state never known",
			dev:       &fakeDevice{on: true, unknown: true},
			opt:       func(o *Options) { o.Timeout = 50 * time.Millisecond },
			wantErr:   "fence via fake dev: power off not confirmed after 50ms: last state unknown",
			wantIs:    ErrNotConfirmed,
			wantState: PowerUnknown,
			// unknown is not off: the off command is sent
			wantAttempts: 1,
		},
		{
			name: "device ignores its context",
			dev:  &fakeDevice{on: true, hangStatus: true, release: make(chan struct{})},
			opt: func(o *Options) {
				o.CallTimeout = 20 * time.Millisecond
				o.Retries = 1
			},
			wantErr:   "status failed after 2 attempt(s): no answer within 20ms: context deadline exceeded",
			wantIs:    context.DeadlineExceeded,
			wantPolls: 2,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.dev.release != nil {
				defer close(tc.dev.release)
			}
			opt := fast()
			if tc.opt != nil {
				tc.opt(&opt)
			}
			start := time.Now()
			res, err := Fence(context.Background(), tc.dev, opt)
			took := time.Since(start)
			checkFenceErr(t, tc, res, err)
			checkFenceResult(t, tc, res)
			if res.Duration <= 0 || res.Duration > took {
				t.Errorf("Duration = %s, measured %s", res.Duration, took)
			}
			if took > opt.Timeout+time.Second {
				t.Errorf("Fence took %s, timeout %s", took, opt.Timeout)
			}
			if tc.dev.onCalls != 0 {
				t.Errorf("Fence called PowerOn")
			}
		})
	}
}

// checkFenceErr checks Fence's error against the case: none, or one that
// holds wantErr and is wantIs.
func checkFenceErr(t *testing.T, tc fenceCase, res Result, err error) {
	t.Helper()
	if tc.wantErr == "" {
		if err != nil {
			t.Fatalf("Fence: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("Fence succeeded (%+v), want error %q", res, tc.wantErr)
	}
	if !strings.Contains(err.Error(), tc.wantErr) {
		t.Fatalf("error %q does not contain %q", err, tc.wantErr)
	}
	if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
		t.Fatalf("error %q is not %v", err, tc.wantIs)
	}
}

// checkFenceResult checks what Fence reports against the case and against
// the calls the device saw.
func checkFenceResult(t *testing.T, tc fenceCase, res Result) {
	t.Helper()
	if res.Device != "fake dev" {
		t.Errorf("Device = %q", res.Device)
	}
	if res.AlreadyOff != tc.wantAlready {
		t.Errorf("AlreadyOff = %v, want %v", res.AlreadyOff, tc.wantAlready)
	}
	offCalls, statusCalls := tc.dev.counts()
	if res.Attempts != tc.wantAttempts || offCalls != tc.wantAttempts {
		t.Errorf("Attempts = %d (device saw %d), want %d", res.Attempts, offCalls, tc.wantAttempts)
	}
	if tc.wantPolls != 0 && (res.Polls != tc.wantPolls || statusCalls != tc.wantPolls) {
		t.Errorf("Polls = %d (device saw %d), want %d", res.Polls, statusCalls, tc.wantPolls)
	}
	if tc.wantState != "" && res.State != tc.wantState {
		t.Errorf("State = %q, want %q", res.State, tc.wantState)
	}
}

func TestFenceTimeoutIsRespected(t *testing.T) {
	dev := &fakeDevice{on: true, ignoreOff: true}
	opt := fast()
	opt.Timeout = 80 * time.Millisecond
	opt.PollInterval = 10 * time.Millisecond
	res, err := Fence(context.Background(), dev, opt)
	if !errors.Is(err, ErrStillOn) {
		t.Fatalf("err = %v, want ErrStillOn", err)
	}
	if res.Duration < opt.Timeout {
		t.Fatalf("gave up after %s, before the %s timeout", res.Duration, opt.Timeout)
	}
	// Polls are paced by PollInterval: at most Timeout/PollInterval+2.
	if most := int(opt.Timeout/opt.PollInterval) + 2; res.Polls > most {
		t.Fatalf("%d polls in %s at %s interval (max %d)", res.Polls, opt.Timeout, opt.PollInterval, most)
	}
}

func TestFenceBackoffGrows(t *testing.T) {
	dev := &fakeDevice{on: true, offErrs: []error{errBMC, errBMC, errBMC}}
	opt := fast()
	opt.Backoff = 10 * time.Millisecond
	opt.MaxBackoff = time.Second
	res, err := Fence(context.Background(), dev, opt)
	if err != nil {
		t.Fatal(err)
	}
	// Pauses 10ms, 20ms, 40ms before attempts 2, 3, 4.
	if res.Attempts != 4 || res.Duration < 70*time.Millisecond {
		t.Fatalf("attempts %d in %s; want 4 in >= 70ms", res.Attempts, res.Duration)
	}
}

func TestFenceCancelled(t *testing.T) {
	t.Run("before start", func(t *testing.T) {
		dev := &fakeDevice{on: true}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		res, err := Fence(ctx, dev, fast())
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if off, st := dev.counts(); off != 0 || st != 0 {
			t.Fatalf("device called after cancel: %d off, %d status", off, st)
		}
		if res.State != PowerUnknown {
			t.Fatalf("State = %q", res.State)
		}
	})
	t.Run("while polling", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		// The 4th status call (3rd poll after the off command) cancels.
		dev := &fakeDevice{on: true, ignoreOff: true, onStatus: func(n int) {
			if n == 4 {
				cancel()
			}
		}}
		opt := fast()
		opt.Timeout = time.Minute
		opt.PollInterval = 10 * time.Millisecond
		res, err := Fence(ctx, dev, opt)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if !strings.HasPrefix(err.Error(), "fence via fake dev: context canceled during status poll") {
			t.Fatalf("err = %q", err)
		}
		if res.Duration > 10*time.Second {
			t.Fatalf("cancel took %s to be noticed", res.Duration)
		}
		if res.Polls < 4 || res.Polls > 5 {
			t.Fatalf("Polls = %d", res.Polls)
		}
	})
	t.Run("parent deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		defer cancel()
		dev := &fakeDevice{on: true, ignoreOff: true}
		_, err := Fence(ctx, dev, fast())
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want DeadlineExceeded", err)
		}
	})
}

func TestOptionsDefaults(t *testing.T) {
	got := Options{}.withDefaults()
	want := DefaultOptions()
	want.Retries = 0 // Retries is taken as given
	if got != want {
		t.Fatalf("Options{} -> %+v, want %+v", got, want)
	}
	if d := DefaultOptions(); d.Timeout <= d.CallTimeout || d.Retries < 1 || d.PollInterval <= 0 {
		t.Fatalf("implausible defaults %+v", d)
	}
	o := Options{Retries: -1, Backoff: time.Second, MaxBackoff: time.Millisecond}.withDefaults()
	if o.Retries != 0 || o.MaxBackoff != time.Second {
		t.Fatalf("%+v", o)
	}
}

func TestFenceSilentDevice(t *testing.T) {
	// Every call hangs past the fence deadline: the error says so plainly.
	dev := &fakeDevice{on: true, hangStatus: true, release: make(chan struct{})}
	defer close(dev.release)
	opt := fast()
	opt.Timeout = 50 * time.Millisecond
	opt.CallTimeout = time.Second
	_, err := Fence(context.Background(), dev, opt)
	if err == nil || err.Error() != "fence via fake dev: status: no answer within 50ms: context deadline exceeded" || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
}
