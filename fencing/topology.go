package fencing

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Action is what a fence does to its target.
type Action string

// Actions. Off is the default, like Pacemaker's stonith-action=poweroff: a
// host that comes back by itself after a reboot can rejoin with stale state,
// so the safe choice is to leave it off until an operator looks at it.
const (
	ActionOff    Action = "off"
	ActionReboot Action = "reboot"
)

// ParseAction accepts "off" (also "poweroff", "" for the default) and
// "reboot". The error names the bad value.
func ParseAction(s string) (Action, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "off", "poweroff":
		return ActionOff, nil
	case "reboot":
		return ActionReboot, nil
	}
	return "", fmt.Errorf("fence action %q is not %q or %q", s, ActionOff, ActionReboot)
}

// Step actions recorded in a StepResult.
const (
	StepOff = "off" // switch off and verify (Fence)
	StepOn  = "on"  // power back on, second half of a reboot
)

// Limits on the fence delays. A delay longer than this is almost certainly
// a unit mistake (e.g. "300" read as seconds meant as milliseconds), and a
// lost host whose VMs wait that long for recovery is an outage of its own.
const (
	MaxStaticDelay = 5 * time.Minute
	MaxRandomDelay = 5 * time.Minute
)

// Level is one way to fence a host: every device of the level must
// succeed (e.g. the two PDU outlets of a host with two power supplies:
// switching off only one leaves the host running).
type Level struct {
	Devices []Device
}

// Topology is how one host is fenced: levels tried in order until one
// fully succeeds (level 1 usually IPMI, level 2 the PDU outlets), the
// default action and the delays before fencing.
type Topology struct {
	// Host is the target host's name.
	Host string
	// Levels are tried in order; the first level whose devices all succeed
	// ends the fence.
	Levels []Level
	// Action is the default action (ActionOff when empty).
	Action Action
	// Delay is waited before every fence of this host.
	Delay time.Duration
	// RandomDelay bounds an extra random wait, uniform in [0, RandomDelay],
	// added to Delay. In a two-host cluster that splits, each side tries to
	// fence the other at the same moment; a delay on one side (static) or
	// on both (random) lets one win instead of both dying.
	RandomDelay time.Duration
}

// Validate checks the topology without touching any device. The error
// names the host and the bad item.
func (t Topology) Validate() error {
	var errs []error
	host := t.Host
	if strings.TrimSpace(host) == "" {
		errs = append(errs, errors.New("fence topology: host name is empty"))
		host = "(unnamed)"
	}
	if len(t.Levels) == 0 {
		errs = append(errs, fmt.Errorf("fence topology of host %s: no level (a host needs at least one fence device)", host))
	}
	for i, l := range t.Levels {
		if len(l.Devices) == 0 {
			errs = append(errs, fmt.Errorf("fence topology of host %s: level %d has no device", host, i+1))
		}
		for j, d := range l.Devices {
			if d == nil {
				errs = append(errs, fmt.Errorf("fence topology of host %s: level %d device %d is nil", host, i+1, j+1))
			}
		}
	}
	if t.Action != "" {
		if _, err := ParseAction(string(t.Action)); err != nil {
			errs = append(errs, fmt.Errorf("fence topology of host %s: %w", host, err))
		}
	}
	errs = append(errs, checkDelays(host, t.Delay, t.RandomDelay)...)
	return errors.Join(errs...)
}

func checkDelays(host string, static, random time.Duration) []error {
	var errs []error
	if static < 0 || static > MaxStaticDelay {
		errs = append(errs, fmt.Errorf("fence topology of host %s: delay %s is outside 0-%s", host, static, MaxStaticDelay))
	}
	if random < 0 || random > MaxRandomDelay {
		errs = append(errs, fmt.Errorf("fence topology of host %s: random delay %s is outside 0-%s", host, random, MaxRandomDelay))
	}
	return errs
}

// Clock is the time source of Run's delays, replaceable in tests.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// RunOptions tunes one run of a topology.
type RunOptions struct {
	// Action overrides the topology's default action when set.
	Action Action
	// Fence tunes each device's off-and-verify (see Fence).
	Fence Options
	// NoDelay skips the delays: for a fence the operator asked for by hand,
	// where there is no race to break.
	NoDelay bool
	// Clock defaults to the real clock.
	Clock Clock
	// Rand returns a duration uniform in [0, limit]; defaults to math/rand/v2.
	Rand func(limit time.Duration) time.Duration
	// Executor is the host running this fence (see ChooseExecutor). When
	// set, Run refuses to fence that same host: a host never runs the
	// device that fences itself.
	Executor string
}

// StepResult is one device action of a run, the unit of fence history.
type StepResult struct {
	Level  int    `json:"level"` // 1-based
	Device string `json:"device"`
	// Action is StepOff or StepOn.
	Action string `json:"action"`
	OK     bool   `json:"ok"`
	// AlreadyOff: the device reported the power off before any command.
	AlreadyOff bool          `json:"already_off,omitempty"`
	Error      string        `json:"error,omitempty"`
	Started    time.Time     `json:"started"`
	Duration   time.Duration `json:"duration"`
	// Err is the step's error for errors.Is; not serialised.
	Err error `json:"-"`
}

// LevelResult is the outcome of one level.
type LevelResult struct {
	Level int          `json:"level"` // 1-based
	OK    bool         `json:"ok"`    // every device confirmed off
	Steps []StepResult `json:"steps"`
	Err   error        `json:"-"`
}

// Report describes a run of a topology, successful or not.
type Report struct {
	Host   string `json:"host"`
	Action Action `json:"action"`
	// Fenced is true once every device of one level confirmed the power
	// off: the host's VMs may be recovered elsewhere.
	Fenced bool `json:"fenced"`
	// Level is the level that fenced the host (1-based), 0 if none did.
	Level int `json:"level,omitempty"`
	// PoweredOn (reboot only) is true when the power-on after the verified
	// off succeeded on every device of the fencing level. A failed power-on
	// does not undo a fence: the host is off, which is what safety needs.
	PoweredOn bool `json:"powered_on,omitempty"`
	// Delay is the delay waited before the first level.
	Delay    time.Duration `json:"delay"`
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration"`
	Levels   []LevelResult `json:"levels"`
}

// Steps returns every step of every level, in the order they ran.
func (r Report) Steps() []StepResult {
	var out []StepResult
	for _, l := range r.Levels {
		out = append(out, l.Steps...)
	}
	return out
}

// TopologyError is the error of a run in which no level fenced the host.
// Its message lists every level's failure; Unwrap gives them to errors.Is.
type TopologyError struct {
	Host   string
	Levels []error // one per level tried, in order
	Cause  error   // set when the run stopped early (cancelled, invalid)
}

func (e *TopologyError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "fence %s: ", e.Host)
	switch {
	case e.Cause != nil && len(e.Levels) == 0:
		b.WriteString(e.Cause.Error())
		return b.String()
	case e.Cause != nil:
		fmt.Fprintf(&b, "%v after %d level(s) failed", e.Cause, len(e.Levels))
	default:
		fmt.Fprintf(&b, "all %d level(s) failed", len(e.Levels))
	}
	for i, err := range e.Levels {
		fmt.Fprintf(&b, "; level %d: %v", i+1, err)
	}
	return b.String()
}

// Unwrap returns the cause and the level errors.
func (e *TopologyError) Unwrap() []error {
	out := make([]error, 0, len(e.Levels)+1)
	if e.Cause != nil {
		out = append(out, e.Cause)
	}
	return append(out, e.Levels...)
}

// Run fences t.Host: it waits the delay, then tries each level in order.
// Within a level the devices are switched off one after the other, each
// verified off (Fence); the first failure fails the level and the next
// level is tried. With ActionReboot, a level whose devices are all off is
// then powered on again, all devices only after all are off (so a host fed
// by two outlets really loses power). The run ends at the first level that
// fenced the host. A nil error means Report.Fenced; otherwise the error is a
// *TopologyError listing every level's failure, and the Report still holds
// every step for the history.
func (t Topology) Run(ctx context.Context, opt RunOptions) (Report, error) {
	clock := opt.Clock
	if clock == nil {
		clock = realClock{}
	}
	action := t.Action
	if opt.Action != "" {
		action = opt.Action
	}
	rep := Report{Host: t.Host, Started: clock.Now()}
	finish := func(err error) (Report, error) {
		rep.Duration = clock.Now().Sub(rep.Started)
		return rep, err
	}
	a, err := ParseAction(string(action))
	if err != nil {
		return finish(&TopologyError{Host: t.Host, Cause: err})
	}
	rep.Action = a
	if err := t.Validate(); err != nil {
		return finish(&TopologyError{Host: t.Host, Cause: err})
	}
	if opt.Executor != "" {
		if _, err := ChooseExecutor(t.Host, []string{opt.Executor}); err != nil {
			return finish(&TopologyError{Host: t.Host, Cause: err})
		}
	}

	if !opt.NoDelay {
		rep.Delay = t.Delay
		if t.RandomDelay > 0 {
			rnd := opt.Rand
			if rnd == nil {
				rnd = uniform
			}
			r := rnd(t.RandomDelay)
			// A faulty source must not stretch the bound it was given.
			r = max(0, min(r, t.RandomDelay))
			rep.Delay += r
		}
		if rep.Delay > 0 {
			select {
			case <-clock.After(rep.Delay):
			case <-ctx.Done():
				return finish(&TopologyError{Host: t.Host, Cause: fmt.Errorf("during the %s fence delay: %w", rep.Delay, ctx.Err())})
			}
		}
	}

	terr := &TopologyError{Host: t.Host}
	for i, lvl := range t.Levels {
		if err := ctx.Err(); err != nil {
			terr.Cause = err
			return finish(terr)
		}
		lr := runLevel(ctx, clock, i+1, lvl, a, opt.Fence)
		rep.Levels = append(rep.Levels, lr)
		if lr.OK {
			rep.Fenced = true
			rep.Level = i + 1
			if a == ActionReboot {
				rep.PoweredOn = lr.Err == nil
			}
			return finish(nil)
		}
		terr.Levels = append(terr.Levels, lr.Err)
	}
	return finish(terr)
}

// runLevel runs one level. lr.OK means every device confirmed off; lr.Err
// is the first off failure (when !OK) or the first power-on failure of a
// reboot (when OK).
func runLevel(ctx context.Context, clock Clock, n int, lvl Level, a Action, fopt Options) LevelResult {
	lr := LevelResult{Level: n}
	for _, d := range lvl.Devices {
		start := clock.Now()
		res, err := Fence(ctx, d, fopt)
		st := StepResult{
			Level: n, Device: d.Name(), Action: StepOff, OK: err == nil,
			AlreadyOff: res.AlreadyOff, Started: start, Duration: clock.Now().Sub(start), Err: err,
		}
		if err != nil {
			st.Error = err.Error()
			lr.Steps = append(lr.Steps, st)
			lr.Err = err
			return lr
		}
		lr.Steps = append(lr.Steps, st)
	}
	lr.OK = true
	if a != ActionReboot {
		return lr
	}
	for _, d := range lvl.Devices {
		start := clock.Now()
		err := powerOn(ctx, d, fopt)
		st := StepResult{
			Level: n, Device: d.Name(), Action: StepOn, OK: err == nil,
			Started: start, Duration: clock.Now().Sub(start), Err: err,
		}
		if err != nil {
			st.Error = err.Error()
			if lr.Err == nil {
				lr.Err = err
			}
		}
		lr.Steps = append(lr.Steps, st)
	}
	return lr
}

// powerOn switches d on with the retries and per-call timeout of opt. It
// does not wait for the host to report on: the fence is already complete,
// and a host may take minutes to come back.
func powerOn(ctx context.Context, d Device, opt Options) error {
	opt = opt.withDefaults()
	var calls int
	_, err := retry(ctx, opt, &calls, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, d.PowerOn(ctx)
	})
	var de *deadlineError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &de) && de.last != nil:
		return fmt.Errorf("power on via %s: %w (last error: %v)", d.Name(), de.ctxErr, de.last)
	case errors.As(err, &de):
		return fmt.Errorf("power on via %s: %w", d.Name(), de.ctxErr)
	}
	return fmt.Errorf("power on via %s: %w", d.Name(), err)
}

func uniform(limit time.Duration) time.Duration {
	if limit <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(limit) + 1))
}

// ErrNoExecutor is wrapped by ChooseExecutor's error when no candidate may
// run the target's fence devices.
var ErrNoExecutor = errors.New("no host may run the fence devices")

// ChooseExecutor picks the host that runs the devices fencing target: the
// first candidate (in the caller's order of preference) that is not the
// target itself. A host never runs the device that fences itself: a host
// that is lost to the cluster cannot be trusted to report its own death,
// and one that fences itself cannot report the result. Names compare
// case-insensitively, so "Node1" cannot pass for "node1". Empty names are
// skipped.
func ChooseExecutor(target string, candidates []string) (string, error) {
	if strings.TrimSpace(target) == "" {
		return "", errors.New("choose fence executor: target host name is empty")
	}
	for _, c := range candidates {
		if strings.TrimSpace(c) == "" || strings.EqualFold(strings.TrimSpace(c), strings.TrimSpace(target)) {
			continue
		}
		return c, nil
	}
	return "", fmt.Errorf("choose fence executor for %s among %q: %w (a host never fences itself)", target, candidates, ErrNoExecutor)
}

// Rebooter is implemented by devices with a native power cycle (IPMI
// chassis power cycle, libvirt reset, an agent's reboot action). Topology
// runs do not use it (a reboot there is off, verify off, on, which proves
// the host lost power); it is for operators who ask a device to cycle.
type Rebooter interface {
	Reboot(ctx context.Context) error
}
