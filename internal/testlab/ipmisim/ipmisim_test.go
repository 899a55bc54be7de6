package ipmisim

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmha/vmha/internal/testlab/testenv"
)

func start(t *testing.T, opts Options) *Sim {
	t.Helper()
	testenv.NeedCommand(t, Command)
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	s, err := Start(opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return s
}

func TestAvailable(t *testing.T) {
	if _, err := exec.LookPath(Command); err != nil {
		if Available() == nil {
			t.Fatal("Available() = nil without ipmi_sim in PATH")
		}
		testenv.Missing(t, "ipmi_sim not found in PATH")
	}
	if err := Available(); err != nil {
		t.Fatal(err)
	}
}

func TestStartStatusAndStop(t *testing.T) {
	s := start(t, Options{User: "u1", Password: "pw-start-stop"})
	host, port := s.Addr()
	if host != "127.0.0.1" || port == 0 || port != s.Port() {
		t.Fatalf("Addr() = %s, %d; Port() = %d", host, port, s.Port())
	}
	if st, err := s.PowerState(); err != nil || st != "on" {
		t.Fatalf("PowerState() = %q, %v; want on", st, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	on, err := s.status(ctx, time.Second)
	if err != nil || !on {
		t.Fatalf("status over IPMI = %v, %v; want on", on, err)
	}
	if err := s.SetPowerState(false); err != nil {
		t.Fatal(err)
	}
	if on, err := s.status(ctx, time.Second); err != nil || on {
		t.Fatalf("status over IPMI after SetPowerState(false) = %v, %v; want off", on, err)
	}
	cmds, err := s.ChassisCommands()
	if err != nil || len(cmds) == 0 || cmds[len(cmds)-1] != "0x20 get power" {
		t.Fatalf("ChassisCommands() = %q, %v", cmds, err)
	}
	for _, f := range []string{lanConfFile, simEmuFile, scriptFile} {
		if _, err := os.Stat(filepath.Join(s.Dir(), f)); err != nil {
			t.Error(err)
		}
	}

	pid := s.PID()
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("ipmi_sim pid %d still exists after Stop (kill 0: %v)", pid, err)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if err := s.Pause(); err == nil {
		t.Fatal("Pause after Stop succeeded")
	}
}

func TestPauseResume(t *testing.T) {
	s := start(t, Options{})
	if err := s.Pause(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	_, err := s.status(ctx, 200*time.Millisecond)
	cancel()
	if err == nil {
		t.Fatal("paused BMC answered")
	}
	if err := s.Resume(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := s.status(ctx, time.Second); err != nil {
		t.Fatalf("resumed BMC: %v", err)
	}
}

func TestTempDirRemoved(t *testing.T) {
	testenv.NeedCommand(t, Command)
	s, err := Start(Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := s.Dir()
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary dir %s left behind: %v", dir, err)
	}
}

func TestFixedPortInUse(t *testing.T) {
	s := start(t, Options{})
	_, err := Start(Options{Dir: t.TempDir(), Port: s.Port()})
	if err == nil || !strings.Contains(err.Error(), "port "+strconv.Itoa(s.Port())+" is not free") {
		t.Fatalf("Start on a used port: %v", err)
	}
}

func TestChassisScript(t *testing.T) {
	testenv.NeedCommand(t, "sh")
	dir := t.TempDir()
	marker := filepath.Join(dir, "guests-killed")
	s := &Sim{dir: dir, opts: Options{PIDFile: filepath.Join(dir, "host.pid"), PowerOffCommand: "touch '" + marker + "'"}}
	if err := s.writeFiles(s.opts.PIDFile); err != nil {
		t.Fatal(err)
	}
	host := exec.Command("sleep", "600")
	if err := host.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = host.Process.Kill(); _ = host.Wait() })
	if err := os.WriteFile(s.opts.PIDFile, []byte(strconv.Itoa(host.Process.Pid)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		out, err := exec.Command(filepath.Join(dir, scriptFile), append([]string{"0x20"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("chassis.sh %v: %v: %s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if got := run("get", "power", "boot"); got != "power:1\nboot:default" {
		t.Fatalf("get = %q", got)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the power-off command ran before any power-off")
	}
	run("set", "power", "0")
	// The rest of the power cut (PowerOffCommand) ran too.
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("power-off command did not run: %v", err)
	}
	if got := run("get", "power"); got != "power:0" {
		t.Fatalf("after off: %q", got)
	}
	if st, _ := s.PowerState(); st != "off" {
		t.Fatalf("PowerState() = %q", st)
	}
	err := host.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("host process: %v, want killed by SIGKILL", err)
	}
	run("set", "power", "1")
	if st, _ := s.PowerState(); st != "on" {
		t.Fatalf("PowerState() = %q", st)
	}
}

func TestOptionsValidated(t *testing.T) {
	testenv.NeedCommand(t, Command)
	for _, tc := range []struct {
		opts Options
		want string
	}{
		{Options{Dir: t.TempDir(), Password: `bad"pw`}, "password may only hold"},
		{Options{Dir: t.TempDir(), User: "a-user-name-longer-than-16"}, "user longer than 16"},
		{Options{Dir: t.TempDir() + "/it's"}, "must not contain quotes"},
		{Options{Dir: t.TempDir(), Port: 70000}, "out of range"},
	} {
		s, err := Start(tc.opts)
		if err == nil {
			_ = s.Stop()
			t.Errorf("Start(%+v) succeeded", tc.opts)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Start(%+v) = %v, want %q", tc.opts, err, tc.want)
		}
	}
}

func TestUDPSocketsCount(t *testing.T) {
	s := start(t, Options{})
	n, err := udpSockets(s.Port())
	if err != nil {
		t.Skipf("no /proc/net/udp: %v", err)
	}
	if n != 1 {
		t.Fatalf("%d sockets on port %d, want 1", n, s.Port())
	}
}
