// Package agent is a fence device that runs an external fence agent, any
// fence_* program of Debian's fence-agents (fence_ipmilan, fence_apc,
// fence_ilo, fence_idrac, ...), so operators keep the agents they already
// trust for their PDUs and management boards.
//
// The agent is run once per call with no arguments and its options as
// key=value lines on stdin (the fence-agents API that Pacemaker's fenced
// uses), so the password never appears in argv, visible to every local
// user through ps. Exit codes follow the API: 0 success; for "status", 0
// on, 2 off and anything else an error.
package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/vmha/vmha/fencing"
	"github.com/vmha/vmha/internal/secret"
)

// DefaultTimeout bounds each agent run when Config.Timeout is zero. Agents
// wait for the power to change themselves (power_wait, power_timeout), so
// this is longer than a single protocol exchange.
const DefaultTimeout = 60 * time.Second

// Config describes one fence agent and its options.
type Config struct {
	// Agent is the program: a name found in PATH (or /usr/sbin) that starts
	// with "fence_", or an absolute path.
	Agent string
	// Options are the agent's own options without the leading dashes, as
	// in its metadata ("ip", "username", "lanplus", "cipher", "plug",
	// "ipport", ...). "action" is set per call; the password goes in
	// Password.
	Options map[string]string
	// Password, when set, is sent as password=... on stdin.
	Password secret.String
	// Timeout bounds each run (default DefaultTimeout); the agent's
	// process group is killed when it expires.
	Timeout time.Duration
}

// Device runs a fence agent. It implements fencing.Device and
// fencing.Rebooter and is safe for concurrent use.
type Device struct {
	path    string
	agent   string // base name, for Name and errors
	opts    []string
	timeout time.Duration
	name    string
	// password is a closure so that no printing path reaches the value;
	// wire is the form written to the agent's stdin.
	password func() string
	wire     func() string
}

var (
	_ fencing.Device   = (*Device)(nil)
	_ fencing.Rebooter = (*Device)(nil)
)

var (
	agentName = regexp.MustCompile(`^fence_[A-Za-z0-9_]+$`)
	optionKey = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
)

// reserved options are set by the device itself, or would carry a secret
// in the option map where printing code might reach it.
var reserved = map[string]string{
	"action":   "it is set per call",
	"option":   "it is the old name of action",
	"password": "put the password in the password file or environment variable",
	"passwd":   "put the password in the password file or environment variable",
}

// New validates cfg and finds the agent program. Errors name the bad
// option, never a value that could be a secret.
func New(cfg Config) (*Device, error) {
	agent := strings.TrimSpace(cfg.Agent)
	if agent == "" {
		return nil, errors.New("fence agent: agent is empty")
	}
	var path string
	if filepath.IsAbs(agent) {
		if !agentName.MatchString(filepath.Base(agent)) {
			return nil, fmt.Errorf("fence agent: %s is not a fence_* program", agent)
		}
		fi, err := os.Stat(agent)
		if err != nil {
			return nil, fmt.Errorf("fence agent: %w", err)
		}
		if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			return nil, fmt.Errorf("fence agent: %s is not an executable file", agent)
		}
		path = agent
	} else {
		if !agentName.MatchString(agent) {
			return nil, fmt.Errorf("fence agent: %q is not a fence_* agent name (e.g. fence_ipmilan)", agent)
		}
		p, err := exec.LookPath(agent)
		if err != nil {
			// Debian installs the agents in /usr/sbin, which is not in
			// every service's PATH.
			if fi, serr := os.Stat(filepath.Join("/usr/sbin", agent)); serr == nil && fi.Mode().IsRegular() {
				p, err = filepath.Join("/usr/sbin", agent), nil
			}
		}
		if err != nil {
			return nil, fmt.Errorf("fence agent: %s not found in PATH or /usr/sbin (Debian package fence-agents)", agent)
		}
		path = p
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("fence agent %s: timeout %s is negative", agent, cfg.Timeout)
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	keys := make([]string, 0, len(cfg.Options))
	for k := range cfg.Options {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var lines []string
	for _, k := range keys {
		v := cfg.Options[k]
		if !optionKey.MatchString(k) {
			return nil, fmt.Errorf("fence agent %s: option name %q is not lower-case letters, digits and _", agent, k)
		}
		if why, ok := reserved[k]; ok {
			return nil, fmt.Errorf("fence agent %s: option %s is not allowed: %s", agent, k, why)
		}
		// One option per line: a newline would smuggle in another option.
		if strings.ContainsAny(v, "\r\n\x00") {
			return nil, fmt.Errorf("fence agent %s: option %s holds a line break", agent, k)
		}
		lines = append(lines, k+"="+v)
	}
	pass := cfg.Password.Reveal()
	if strings.ContainsAny(pass, "\r\n\x00") {
		return nil, fmt.Errorf("fence agent %s: password holds a line break", agent)
	}
	// fencing.py strips each stdin line and one pair of surrounding double
	// quotes from the value: white space at either end would be lost, and a
	// quoted password needs one more pair of quotes to survive.
	if strings.TrimSpace(pass) != pass {
		return nil, fmt.Errorf("fence agent %s: password starts or ends with white space, which fence agents strip from their input", agent)
	}
	wire := pass
	if len(pass) >= 2 && strings.HasPrefix(pass, `"`) && strings.HasSuffix(pass, `"`) {
		wire = `"` + pass + `"`
	}
	base := filepath.Base(path)
	return &Device{
		path:     path,
		agent:    base,
		opts:     lines,
		timeout:  timeout,
		name:     describe(base, cfg.Options),
		password: func() string { return pass },
		wire:     func() string { return wire },
	}, nil
}

// describe names the device by agent, address and plug: enough to tell
// devices apart in status output, and nothing that could be secret.
func describe(agent string, o map[string]string) string {
	var parts []string
	addr := o["ip"]
	if addr == "" {
		addr = o["ipaddr"]
	}
	if addr != "" {
		if p := o["ipport"]; p != "" {
			addr += ":" + p
		}
		parts = append(parts, addr)
	}
	plug := o["plug"]
	if plug == "" {
		plug = o["port"]
	}
	if plug != "" {
		parts = append(parts, "plug "+plug)
	}
	if len(parts) == 0 {
		return "agent " + agent
	}
	return "agent " + agent + " " + strings.Join(parts, " ")
}

// Name is "agent fence_x ADDRESS[:PORT] [plug P]".
func (d *Device) Name() string { return d.name }

// String implements fmt.Stringer: the Name.
func (d Device) String() string { return d.name }

// GoString implements fmt.GoStringer so %#v prints the Name too.
func (d Device) GoString() string { return d.name }

// Exit codes of the fence-agents API.
const (
	exitOK     = 0
	exitStatus = 2 // status: the power is off
)

// Status runs action=status: exit 0 is on, 2 is off, anything else fails.
func (d *Device) Status(ctx context.Context) (fencing.PowerState, error) {
	code, err := d.run(ctx, "status", exitOK, exitStatus)
	if err != nil {
		return fencing.PowerUnknown, err
	}
	if code == exitStatus {
		return fencing.PowerOff, nil
	}
	return fencing.PowerOn, nil
}

// PowerOff runs action=off. Agents wait for the off themselves; Fence
// still verifies it with Status.
func (d *Device) PowerOff(ctx context.Context) error {
	_, err := d.run(ctx, "off", exitOK)
	return err
}

// PowerOn runs action=on.
func (d *Device) PowerOn(ctx context.Context) error {
	_, err := d.run(ctx, "on", exitOK)
	return err
}

// Reboot runs action=reboot (the agent's own off-then-on).
func (d *Device) Reboot(ctx context.Context) error {
	_, err := d.run(ctx, "reboot", exitOK)
	return err
}

// Monitor runs action=monitor: is the device itself reachable and working
// (not the host's power). For periodic device checks.
func (d *Device) Monitor(ctx context.Context) error {
	_, err := d.run(ctx, "monitor", exitOK)
	return err
}

// maxOutput bounds how much of an agent's output is kept for errors.
const maxOutput = 64 << 10

// Error is a failed agent run. Its message holds the agent's last output
// lines with the password removed.
type Error struct {
	Device string
	Action string
	// ExitCode is the agent's exit code, -1 if it did not exit normally.
	ExitCode int
	msg      string
	kind     error
}

func (e *Error) Error() string { return e.msg }

// Unwrap returns context.DeadlineExceeded or context.Canceled when the run
// was cut short, else nil.
func (e *Error) Unwrap() error { return e.kind }

// run executes the agent once with action and returns its exit code if it
// is one of ok.
func (d *Device) run(ctx context.Context, action string, ok ...int) (int, error) {
	fail := func(code int, kind error, format string, a ...any) (int, error) {
		return code, &Error{Device: d.name, Action: action, ExitCode: code, kind: kind,
			msg: fmt.Sprintf("%s %s: ", d.agent, action) + d.scrub(fmt.Sprintf(format, a...))}
	}
	if err := ctx.Err(); err != nil {
		return fail(-1, err, "%v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()

	var in bytes.Buffer
	in.WriteString("action=" + action + "\n")
	for _, l := range d.opts {
		in.WriteString(l + "\n")
	}
	if p := d.wire(); p != "" {
		in.WriteString("password=" + p + "\n")
	}

	cmd := exec.CommandContext(ctx, d.path)
	cmd.Stdin = &in
	out := &capped{max: maxOutput}
	cmd.Stdout = out
	cmd.Stderr = out
	// A small, fixed environment: the agent must not pick up settings (or
	// secrets) of the daemon's environment, and its messages stay parseable.
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C", "LC_ALL=C"}
	// Agents start helpers (ipmitool, ssh, snmpget): kill the whole group
	// at the deadline, not just the agent, so nothing lingers.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second

	start := time.Now()
	err := cmd.Run()
	code := -1
	if cmd.ProcessState != nil {
		code = cmd.ProcessState.ExitCode()
	}
	if cerr := ctx.Err(); cerr != nil {
		if errors.Is(cerr, context.DeadlineExceeded) {
			return fail(-1, cerr, "no result within %s (agent killed)%s", time.Since(start).Round(time.Millisecond), tail(out.String()))
		}
		return fail(-1, cerr, "%v%s", cerr, tail(out.String()))
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return fail(-1, nil, "run %s: %v", d.path, err)
	}
	for _, c := range ok {
		if code == c {
			return code, nil
		}
	}
	return fail(code, nil, "exit code %d%s", code, tail(out.String()))
}

// tail is the end of the agent's output, for an error message: the last
// few non-empty lines, on one line.
func tail(s string) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		// Python warnings about the agent's own imports say nothing about
		// the fence.
		if l == "" || strings.Contains(l, "DeprecationWarning") || strings.HasPrefix(l, "from pipes import") {
			continue
		}
		lines = append(lines, l)
	}
	if len(lines) > 3 {
		lines = lines[len(lines)-3:]
	}
	if len(lines) == 0 {
		return ""
	}
	return ": " + strings.Join(lines, " | ")
}

func (d *Device) scrub(s string) string {
	// The longer wire form first, so no part of it is left around.
	for _, p := range []string{d.wire(), d.password()} {
		if p != "" {
			s = strings.ReplaceAll(s, p, secret.Redacted)
		}
	}
	return s
}

// capped is a buffer that keeps the last max bytes written.
type capped struct {
	max int
	buf []byte
}

func (c *capped) Write(p []byte) (int, error) {
	c.buf = append(c.buf, p...)
	if len(c.buf) > c.max {
		c.buf = c.buf[len(c.buf)-c.max:]
	}
	return len(p), nil
}

func (c *capped) String() string { return string(c.buf) }
