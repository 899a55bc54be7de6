package fencing

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Options tunes Fence. Zero durations take the value from DefaultOptions;
// Retries is used as given (0 = no retries).
type Options struct {
	// Timeout bounds the whole fence: status check, off command, retries and
	// polling until the device reports the power off.
	Timeout time.Duration
	// CallTimeout bounds each single PowerOff or Status call.
	CallTimeout time.Duration
	// PollInterval is the pause between status polls after the off command.
	PollInterval time.Duration
	// Retries is how many more times a failed PowerOff or Status call is
	// tried (consecutive failures) before Fence gives up. Negative means 0.
	Retries int
	// Backoff is the pause before the first retry; it doubles on every
	// further retry of the same call, up to MaxBackoff.
	Backoff time.Duration
	// MaxBackoff caps the retry pause.
	MaxBackoff time.Duration
}

// DefaultOptions returns the options used by the cluster leader.
func DefaultOptions() Options {
	return Options{
		Timeout:      60 * time.Second,
		CallTimeout:  10 * time.Second,
		PollInterval: time.Second,
		Retries:      3,
		Backoff:      500 * time.Millisecond,
		MaxBackoff:   5 * time.Second,
	}
}

func (o Options) withDefaults() Options {
	d := DefaultOptions()
	if o.Timeout <= 0 {
		o.Timeout = d.Timeout
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = d.CallTimeout
	}
	if o.PollInterval <= 0 {
		o.PollInterval = d.PollInterval
	}
	if o.Retries < 0 {
		o.Retries = 0
	}
	if o.Backoff <= 0 {
		o.Backoff = d.Backoff
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = d.MaxBackoff
	}
	if o.MaxBackoff < o.Backoff {
		o.MaxBackoff = o.Backoff
	}
	return o
}

// Result describes a fence, successful or not.
type Result struct {
	// Device is the device's Name().
	Device string
	// AlreadyOff is true when the first status read reported the power off,
	// so no off command was sent.
	AlreadyOff bool
	// Attempts counts PowerOff calls (including failed ones).
	Attempts int
	// Polls counts Status calls (including failed ones and the first check).
	Polls int
	// Duration is the time Fence took.
	Duration time.Duration
	// State is the last power state the device reported (PowerUnknown if it
	// never answered). A nil error from Fence implies PowerOff.
	State PowerState
}

// ErrStillOn is wrapped by the error of a fence whose device kept reporting
// the power on until the timeout.
var ErrStillOn = errors.New("power still on")

// ErrNotConfirmed is wrapped by the error of a fence whose device never
// reported a definite power state (on or off) before the timeout.
var ErrNotConfirmed = errors.New("power off not confirmed")

// Fence switches the host behind d off and verifies it: a fence succeeds
// only once d reports PowerOff. If the first status read already says off,
// no off command is sent. Otherwise Fence sends PowerOff, then polls Status
// every opt.PollInterval until the power is reported off or opt.Timeout
// elapses. Failed calls are retried with exponential backoff. The Result is
// filled in on failure too. Errors name the device, never a secret:
//
//	fence via ipmi 127.0.0.1:9001: power still on after 10s
func Fence(ctx context.Context, d Device, opt Options) (Result, error) {
	opt = opt.withDefaults()
	f := &fencer{
		d:     d,
		opt:   opt,
		start: time.Now(),
		res:   Result{Device: d.Name(), State: PowerUnknown},
	}
	err := f.run(ctx)
	f.res.Duration = time.Since(f.start)
	if err != nil {
		return f.res, fmt.Errorf("fence via %s: %w", f.res.Device, err)
	}
	return f.res, nil
}

// Steps named in errors.
const (
	opStatus = "status"
	opOff    = "power off"
	opPoll   = "status poll"
)

type fencer struct {
	d     Device
	opt   Options
	start time.Time
	res   Result
}

func (f *fencer) run(parent context.Context) error {
	if err := parent.Err(); err != nil {
		return fmt.Errorf("cancelled before start: %w", err)
	}
	ctx, cancel := context.WithTimeout(parent, f.opt.Timeout)
	defer cancel()

	// 1. Is it already off?
	st, err := f.status(ctx)
	if err != nil {
		return f.fail(parent, ctx, opStatus, err)
	}
	if st == PowerOff {
		f.res.AlreadyOff = true
		return nil
	}

	// 2. Off command.
	if err := f.powerOff(ctx); err != nil {
		return f.fail(parent, ctx, opOff, err)
	}

	// 3. Poll until the device reports off. The first poll is immediate:
	// many BMCs (and every simulator) switch at once.
	for {
		st, err := f.status(ctx)
		if err != nil {
			return f.fail(parent, ctx, opPoll, err)
		}
		if st == PowerOff {
			return nil
		}
		if err := sleep(ctx, f.opt.PollInterval); err != nil {
			return f.fail(parent, ctx, opPoll, nil)
		}
	}
}

// status reads the power state with retries and records it.
func (f *fencer) status(ctx context.Context) (PowerState, error) {
	st, err := retry(ctx, f.opt, &f.res.Polls, f.d.Status)
	if err != nil {
		return PowerUnknown, err
	}
	if st == "" {
		st = PowerUnknown
	}
	f.res.State = st
	return st, nil
}

// powerOff sends the off command with retries.
func (f *fencer) powerOff(ctx context.Context) error {
	_, err := retry(ctx, f.opt, &f.res.Attempts, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, f.d.PowerOff(ctx)
	})
	return err
}

// callError is a failed call that exhausted its retries.
type callError struct {
	attempts int
	err      error
}

func (e *callError) Error() string {
	return fmt.Sprintf("failed after %d attempt(s): %v", e.attempts, e.err)
}
func (e *callError) Unwrap() error { return e.err }

// retry runs call up to 1+Retries times, each bounded by CallTimeout, with
// backoff between failures, counting calls in *calls. It stops early when
// ctx ends, returning a *deadlineError that remembers the last call error.
//
// It is our own loop rather than a backoff library's: a fence's error must
// tell a device that failed (the last call's error, kept) from a fence
// deadline that cut the calls short, and a call that ignores its context
// must be abandoned at its own timeout (callOnce).
func retry[T any](ctx context.Context, opt Options, calls *int, call func(context.Context) (T, error)) (T, error) {
	var zero T
	backoff := opt.Backoff
	var last error
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return zero, &deadlineError{ctxErr: err, last: last}
		}
		*calls++
		v, err := callOnce(ctx, opt.CallTimeout, call)
		if err == nil {
			return v, nil
		}
		if ctx.Err() != nil {
			// The fence deadline (or the caller) cut this call short: its
			// error says nothing about the device, keep the previous one.
			if !errors.Is(err, ctx.Err()) {
				last = err
			}
			return zero, &deadlineError{ctxErr: ctx.Err(), last: last}
		}
		last = err
		if attempt > opt.Retries {
			return zero, &callError{attempts: attempt, err: last}
		}
		if err := sleep(ctx, backoff); err != nil {
			return zero, &deadlineError{ctxErr: err, last: last}
		}
		backoff = min(2*backoff, opt.MaxBackoff)
	}
}

// callOnce runs one call bounded by timeout. A device that ignores its
// context cannot stall the fence: the call is abandoned at the deadline
// (its goroutine touches nothing but its own result channel).
func callOnce[T any](ctx context.Context, timeout time.Duration, call func(context.Context) (T, error)) (T, error) {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := call(cctx)
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-cctx.Done():
		// Prefer the call's own answer if it arrived at the same moment.
		select {
		case r := <-done:
			return r.v, r.err
		default:
		}
		var zero T
		if err := ctx.Err(); err != nil {
			return zero, err
		}
		return zero, fmt.Errorf("no answer within %s: %w", timeout, cctx.Err())
	}
}

// deadlineError means the overall fence context ended while a call was
// being tried or between polls.
type deadlineError struct {
	ctxErr error
	last   error // last call error, may be nil
}

func (e *deadlineError) Error() string { return e.ctxErr.Error() }
func (e *deadlineError) Unwrap() error { return e.ctxErr }

// fail turns an error from a step into the fence's error. op names the
// step; err may be nil when the fence timed out between polls.
func (f *fencer) fail(parent, ctx context.Context, op string, err error) error {
	var de *deadlineError
	timedOut := ctx.Err() != nil && (err == nil || errors.As(err, &de))
	if !timedOut {
		return fmt.Errorf("%s %w", op, err)
	}
	var last error
	if de != nil {
		last = de.last
	}
	if perr := parent.Err(); perr != nil {
		// The caller gave up (cancelled or its own deadline).
		if last != nil {
			return fmt.Errorf("%w during %s (last error: %v)", perr, op, last)
		}
		return fmt.Errorf("%w during %s", perr, op)
	}
	// Our own timeout.
	suffix := ""
	if last != nil {
		suffix = fmt.Sprintf(" (last error: %v)", last)
	}
	switch {
	case op == opPoll && f.res.State == PowerOn:
		return fmt.Errorf("%w after %s%s", ErrStillOn, f.opt.Timeout, suffix)
	case op == opPoll:
		return fmt.Errorf("%w after %s: last state %s%s", ErrNotConfirmed, f.opt.Timeout, f.res.State, suffix)
	case last == nil:
		return fmt.Errorf("%s: no answer within %s: %w", op, f.opt.Timeout, context.DeadlineExceeded)
	default:
		return fmt.Errorf("%s: no success within %s%s: %w", op, f.opt.Timeout, suffix, context.DeadlineExceeded)
	}
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
