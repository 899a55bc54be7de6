package agent_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmha/vmha/fencing"
	"github.com/vmha/vmha/fencing/agent"
	"github.com/vmha/vmha/internal/secret"
	"github.com/vmha/vmha/internal/testlab/ipmisim"
	"github.com/vmha/vmha/internal/testlab/testenv"
)

const (
	simUser     = "fencer"
	simPassword = "Pw-agent-4e1b"
)

// fakeAgent writes a shell fence agent that follows the fence-agents API
// on a power file, and records its argv, stdin and environment.
func fakeAgent(t *testing.T, extra string) (path, dir string) {
	t.Helper()
	testenv.NeedCommand(t, "sh")
	dir = t.TempDir()
	path = filepath.Join(dir, "fence_fake")
	script := fmt.Sprintf(`#!/bin/sh
dir=%s
echo "argc=$#" >"$dir/argv"
env >"$dir/env"
cat >"$dir/stdin"
action=$(sed -n 's/^action=//p' "$dir/stdin")
%s
case $action in
status) [ "$(cat "$dir/power")" = on ] && exit 0; exit 2 ;;
off) echo off >"$dir/power"; echo "Success: Powered OFF"; exit 0 ;;
on) echo on >"$dir/power"; exit 0 ;;
reboot) echo rebooted >>"$dir/log"; exit 0 ;;
monitor) exit 0 ;;
esac
echo "unknown action $action" >&2
exit 1
`, dir, extra)
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "power"), []byte("on\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, dir
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func fopts() fencing.Options {
	return fencing.Options{Timeout: 20 * time.Second, CallTimeout: 15 * time.Second, PollInterval: 50 * time.Millisecond, Retries: 1, Backoff: 50 * time.Millisecond}
}

func TestProtocolWithFakeAgent(t *testing.T) {
	const pw = "Fake-Pw-91x"
	path, dir := fakeAgent(t, "")
	d, err := agent.New(agent.Config{Agent: path, Password: secret.New(pw),
		Options: map[string]string{"ip": "10.0.0.5", "plug": "3", "lanplus": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	if d.Name() != "agent fence_fake 10.0.0.5 plug 3" {
		t.Fatalf("Name %q", d.Name())
	}
	if st, err := d.Status(ctxT(t)); err != nil || st != fencing.PowerOn {
		t.Fatalf("Status %q, %v", st, err)
	}
	// Options on stdin, one per line, password last; nothing on argv.
	if got, want := read(t, filepath.Join(dir, "stdin")), "action=status\nip=10.0.0.5\nlanplus=1\nplug=3\npassword="+pw+"\n"; got != want {
		t.Fatalf("stdin %q, want %q", got, want)
	}
	if got := read(t, filepath.Join(dir, "argv")); got != "argc=0\n" {
		t.Fatalf("argv %q", got)
	}
	if env := read(t, filepath.Join(dir, "env")); strings.Contains(env, pw) {
		t.Fatal("password in the agent's environment")
	}
	res, err := fencing.Fence(ctxT(t), d, fopts())
	if err != nil || res.AlreadyOff || res.State != fencing.PowerOff {
		t.Fatalf("Fence %+v, %v", res, err)
	}
	if p := read(t, filepath.Join(dir, "power")); p != "off\n" {
		t.Fatalf("power %q", p)
	}
	if err := d.PowerOn(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := d.Reboot(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := d.Monitor(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(dir, "stdin")); !strings.HasPrefix(got, "action=monitor\n") {
		t.Fatalf("stdin %q", got)
	}
}

func TestAgentFailures(t *testing.T) {
	const pw = "Leaky-Pw-73"
	t.Run("status error exit 1", func(t *testing.T) {
		// The agent echoes its stdin to stderr, as a verbose agent might.
		path, _ := fakeAgent(t, `if [ "$action" = status ]; then cat "$dir/stdin" >&2; echo "ERROR: Failed: Unable to obtain correct plug status" >&2; exit 1; fi`)
		d, err := agent.New(agent.Config{Agent: path, Password: secret.New(pw)})
		if err != nil {
			t.Fatal(err)
		}
		st, err := d.Status(ctxT(t))
		var ae *agent.Error
		if !errors.As(err, &ae) || ae.ExitCode != 1 || st != fencing.PowerUnknown {
			t.Fatalf("Status %q, %v", st, err)
		}
		if !strings.Contains(err.Error(), "fence_fake status: exit code 1: ") || !strings.Contains(err.Error(), "Unable to obtain correct plug status") {
			t.Fatalf("error %q", err)
		}
		for _, s := range []string{err.Error(), fmt.Sprintf("%+v %#v", err, err), fmt.Sprintf("%v %+v %#v", d, d, *d)} {
			if strings.Contains(s, pw) {
				t.Fatalf("password leaked: %s", s)
			}
		}
		t.Logf("error: %v", err)
	})
	t.Run("off fails", func(t *testing.T) {
		path, _ := fakeAgent(t, `[ "$action" = off ] && { echo "ERROR: outlet locked" >&2; exit 1; }`)
		d, _ := agent.New(agent.Config{Agent: path})
		if _, err := fencing.Fence(ctxT(t), d, fopts()); err == nil || !strings.Contains(err.Error(), "fence_fake off: exit code 1: ERROR: outlet locked") {
			t.Fatalf("Fence: %v", err)
		}
	})
	t.Run("hung agent is killed with its children", func(t *testing.T) {
		path, dir := fakeAgent(t, `sleep 600 & echo $! >"$dir/child"; wait`)
		d, _ := agent.New(agent.Config{Agent: path, Timeout: 500 * time.Millisecond})
		start := time.Now()
		_, err := d.Status(ctxT(t))
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "agent killed") {
			t.Fatalf("Status: %v", err)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Fatalf("took %s", took)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(read(t, filepath.Join(dir, "child"))))
		if err != nil {
			t.Fatal(err)
		}
		// The child may linger a moment as a zombie of init; it must not
		// keep running.
		deadline := time.Now().Add(5 * time.Second)
		for syscall.Kill(pid, 0) == nil && !isZombie(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("agent's child %d still running", pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

func isZombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && f[0] == "Z"
}

func TestNewValidation(t *testing.T) {
	path, _ := fakeAgent(t, "")
	for _, tc := range []struct {
		cfg  agent.Config
		want string
	}{
		{agent.Config{}, "fence agent: agent is empty"},
		{agent.Config{Agent: "ipmitool"}, `"ipmitool" is not a fence_* agent name`},
		{agent.Config{Agent: "fence_does_not_exist_x"}, "fence_does_not_exist_x not found"},
		{agent.Config{Agent: "/bin/sh"}, "/bin/sh is not a fence_* program"},
		{agent.Config{Agent: path, Options: map[string]string{"password": "Opt-Pw-1"}}, "option password is not allowed"},
		{agent.Config{Agent: path, Options: map[string]string{"action": "on"}}, "option action is not allowed"},
		{agent.Config{Agent: path, Options: map[string]string{"Ip": "x"}}, `option name "Ip"`},
		{agent.Config{Agent: path, Options: map[string]string{"ip": "x\naction=on"}}, "option ip holds a line break"},
		{agent.Config{Agent: path, Password: secret.New("a\nb")}, "password holds a line break"},
		{agent.Config{Agent: path, Timeout: -1}, "timeout -1ns is negative"},
		{agent.Config{Agent: path, Password: secret.New(" pw")}, "password starts or ends with white space"},
	} {
		_, err := agent.New(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "Opt-Pw-1") {
			t.Errorf("error leaks: %v", err)
		}
	}
}

// startSim runs a real ipmi_sim for fence_ipmilan.
func startSim(t testing.TB, opts ipmisim.Options) *ipmisim.Sim {
	t.Helper()
	testenv.NeedCommand(t, "ipmi_sim")
	opts.Dir = t.TempDir()
	opts.User, opts.Password = simUser, simPassword
	sim, err := ipmisim.Start(opts)
	if err != nil {
		t.Fatalf("ipmisim.Start: %v", err)
	}
	t.Cleanup(func() {
		if err := sim.Stop(); err != nil {
			t.Errorf("sim.Stop: %v", err)
		}
	})
	return sim
}

func ipmilan(t testing.TB, sim *ipmisim.Sim, pw string, extra map[string]string) *agent.Device {
	t.Helper()
	testenv.NeedCommand(t, "fence_ipmilan")
	testenv.NeedCommand(t, "ipmitool")
	o := map[string]string{
		"ip": ipmisim.Host, "ipport": strconv.Itoa(sim.Port()), "username": simUser,
		"lanplus": "1", "cipher": "3",
	}
	for k, v := range extra {
		o[k] = v
	}
	d, err := agent.New(agent.Config{Agent: "fence_ipmilan", Options: o, Password: secret.New(pw), Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func ipmitoolStatus(t *testing.T, sim *ipmisim.Sim) string {
	t.Helper()
	bin := testenv.NeedCommand(t, "ipmitool")
	cmd := exec.Command(bin, "-I", "lanplus", "-H", ipmisim.Host, "-p", strconv.Itoa(sim.Port()),
		"-U", simUser, "-E", "-C", "3", "chassis", "power", "status")
	cmd.Env = append(os.Environ(), "IPMI_PASSWORD="+simPassword)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ipmitool: %v: %s", err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestFenceIPMILanAgainstIPMISim(t *testing.T) {
	sim := startSim(t, ipmisim.Options{})
	d := ipmilan(t, sim, simPassword, nil)
	if want := "agent fence_ipmilan 127.0.0.1:" + strconv.Itoa(sim.Port()); d.Name() != want {
		t.Fatalf("Name %q, want %q", d.Name(), want)
	}
	if st, err := d.Status(ctxT(t)); err != nil || st != fencing.PowerOn {
		t.Fatalf("Status %q, %v", st, err)
	}
	res, err := fencing.Fence(ctxT(t), d, fopts())
	if err != nil {
		t.Fatalf("Fence: %v", err)
	}
	t.Logf("fence: %+v", res)
	if res.AlreadyOff || res.State != fencing.PowerOff {
		t.Fatalf("Result %+v", res)
	}
	if st, err := sim.PowerState(); err != nil || st != "off" {
		t.Fatalf("sim power %q, %v", st, err)
	}
	if out := ipmitoolStatus(t, sim); out != "Chassis Power is off" {
		t.Fatalf("ipmitool says %q", out)
	}
	if err := d.PowerOn(ctxT(t)); err != nil {
		t.Fatalf("PowerOn: %v", err)
	}
	if st, err := sim.PowerState(); err != nil || st != "on" {
		t.Fatalf("sim power %q after on, %v", st, err)
	}
	if err := d.Monitor(ctxT(t)); err != nil {
		t.Fatalf("Monitor: %v", err)
	}
	cmds, err := sim.ChassisCommands()
	if err != nil {
		t.Fatal(err)
	}
	if !contains(cmds, "0x20 set power 0") || !contains(cmds, "0x20 set power 1") {
		t.Fatalf("chassis saw %q", cmds)
	}
}

func contains(l []string, s string) bool {
	for _, v := range l {
		if v == s {
			return true
		}
	}
	return false
}

func TestIPMILanWrongPassword(t *testing.T) {
	const wrong = "Wrong-Agent-Pw-2"
	sim := startSim(t, ipmisim.Options{})
	d := ipmilan(t, sim, wrong, map[string]string{"login_timeout": "2", "shell_timeout": "2"})
	_, err := d.Status(ctxT(t))
	if err == nil {
		t.Fatal("status with a wrong password succeeded")
	}
	t.Logf("error: %v", err)
	if strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), simPassword) {
		t.Fatalf("error leaks a password: %v", err)
	}
	if st, _ := sim.PowerState(); st != "on" {
		t.Fatalf("power %q", st)
	}
}

func TestIPMILanIgnoredOff(t *testing.T) {
	sim := startSim(t, ipmisim.Options{IgnorePowerOff: true})
	// power_timeout bounds fence_ipmilan's own wait for the off.
	d := ipmilan(t, sim, simPassword, map[string]string{"power_timeout": "2", "power_wait": "0"})
	o := fopts()
	o.Retries = 0
	res, err := fencing.Fence(ctxT(t), d, o)
	if err == nil {
		t.Fatalf("Fence succeeded against a BMC that ignores off: %+v", res)
	}
	t.Logf("error: %v", err)
	if st, _ := sim.PowerState(); st != "on" {
		t.Fatalf("power %q", st)
	}
}

// BenchmarkFenceIPMILan fences ipmi_sim through fence_ipmilan (off with
// verification, then the host is switched back on outside the timer).
// power_wait=0: the agent's default 2 s pause after the off says nothing
// about the protocol; BenchmarkFenceIPMILanDefaults keeps it.
func BenchmarkFenceIPMILan(b *testing.B) {
	benchIPMILan(b, map[string]string{"power_wait": "0"})
}

// BenchmarkFenceIPMILanDefaults is fence_ipmilan as shipped.
func BenchmarkFenceIPMILanDefaults(b *testing.B) { benchIPMILan(b, nil) }

func benchIPMILan(b *testing.B, extra map[string]string) {
	sim := startSim(b, ipmisim.Options{})
	d := ipmilan(b, sim, simPassword, extra)
	ctx := context.Background()
	o := fopts()
	for b.Loop() {
		b.StopTimer()
		if err := sim.SetPowerState(true); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		res, err := fencing.Fence(ctx, d, o)
		if err != nil || res.AlreadyOff {
			b.Fatalf("%+v, %v", res, err)
		}
	}
}

// TestQuotedPasswordSurvives checks, with the real fence-agents input
// parser, that a password in double quotes reaches the agent unchanged
// (fencing.py strips one pair of quotes from every value).
func TestQuotedPasswordSurvives(t *testing.T) {
	testenv.NeedCommand(t, "fence_ipmilan")
	// The interpreter the Debian agents use, with their modules.
	py := "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		testenv.Missing(t, py+" not found")
	}
	const pw = `"Quoted-Pw"`
	// A fence_* program that runs fencing.py's stdin parser and prints the
	// password it got, between markers.
	dir := t.TempDir()
	path := filepath.Join(dir, "fence_echo")
	script := "#!" + py + `
import sys
sys.path.append("/usr/share/fence")
from fencing import process_input
opt = process_input(["passwd", "ipaddr", "login"])
print("GOT<" + opt.get("--password", "") + ">")
sys.exit(3)
`
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	d, err := agent.New(agent.Config{Agent: path, Password: secret.New(pw)})
	if err != nil {
		t.Fatal(err)
	}
	// Exit 3 is a failure by design, so the error carries the output; the
	// printed password is redacted only if it is exactly the password (a
	// stripped quote would leave a quote inside the markers).
	_, err = d.Status(ctxT(t))
	if err == nil || !strings.Contains(err.Error(), "GOT<[redacted]>") {
		t.Fatalf("the agent did not get the password unchanged: %v", err)
	}
}
