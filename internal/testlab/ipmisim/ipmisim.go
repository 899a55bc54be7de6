// Package ipmisim runs OpenIPMI's ipmi_sim as a BMC on loopback, speaking
// the real IPMI LAN protocol (IPMI 1.5 and 2.0/RMCP+), for tests and the
// demo. The simulated host's power lives in a state file; a chassis control
// script flips it and can kill -9 a process (the "host") on power-off.
package ipmisim

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/types"
)

// Command is the simulator binary looked up in PATH.
const Command = "ipmi_sim"

// Host is the loopback address the simulator listens on.
const Host = "127.0.0.1"

// Defaults for Options.
const (
	DefaultUser         = "admin"
	DefaultPassword     = "ipmisim-pass"
	DefaultStartTimeout = 15 * time.Second
)

// Options configures a simulator.
type Options struct {
	// Dir is the work directory for the config, state and log files. It is
	// created if needed. Empty means a new temporary directory, removed by
	// Stop. It must not contain quotes or newlines (it ends up in a shell
	// command line).
	Dir string
	// Port is the UDP port on 127.0.0.1; 0 picks a free one.
	Port int
	// User and Password are the BMC's admin account (defaults DefaultUser,
	// DefaultPassword). At most 16 and 20 characters, no quotes or spaces.
	User, Password string
	// PIDFile, if set, names a file holding a process id. On power-off (and
	// reset) the chassis script kill -9s that process: it plays the host
	// losing power.
	PIDFile string
	// PowerOffCommand, if set, is a shell command the chassis script runs
	// on power-off (and reset) after killing the PIDFile process: the rest
	// of what a power cut ends, such as a lab host's QEMU guests.
	PowerOffCommand string
	// IgnorePowerOff is a fault: the off command is accepted but the power
	// stays on (and the PIDFile process is left alone).
	IgnorePowerOff bool
	// StartTimeout bounds Start's wait for the BMC to answer
	// (default DefaultStartTimeout).
	StartTimeout time.Duration
	// Sensors gives the BMC sensors (CPU temperature, a fan, PSU
	// redundancy: sensors.go), an event log, and an emulator console on
	// loopback through which SetSensor, SetRedundancyLost and AddSEL
	// change them at run time.
	Sensors bool
}

// Sim is a running ipmi_sim. Always call Stop.
type Sim struct {
	opts    Options
	dir     string
	rmDir   bool
	port    int
	pid     int
	cmd     *exec.Cmd
	done    chan struct{} // closed once the process has been reaped
	waitErr error         // set before done is closed

	stopOnce sync.Once
	stopErr  error

	consolePort int
	consoleMu   sync.Mutex
}

// File names inside Dir.
const (
	lanConfFile  = "lan.conf"
	simEmuFile   = "sim.emu"
	scriptFile   = "chassis.sh"
	powerOffFile = "poweroff.sh"
	powerFile    = "power"
	chassisLog   = "chassis.log"
	simLogFile   = "ipmi_sim.log"
	stateDirName = "state"
)

// Available reports whether ipmi_sim is installed (nil) or why not.
func Available() error {
	if _, err := exec.LookPath(Command); err != nil {
		return fmt.Errorf("ipmisim: %s not found in PATH (Debian package openipmi)", Command)
	}
	return nil
}

// Start writes the configuration into opts.Dir, starts ipmi_sim in its own
// process group and returns once the BMC answers a Get Chassis Status over
// IPMI 2.0. The simulated host starts powered on.
func Start(opts Options) (*Sim, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	if opts.User == "" {
		opts.User = DefaultUser
	}
	if opts.Password == "" {
		opts.Password = DefaultPassword
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = DefaultStartTimeout
	}
	if err := checkWord("user", opts.User, 16); err != nil {
		return nil, err
	}
	if err := checkWord("password", opts.Password, 20); err != nil {
		return nil, err
	}
	if opts.Port < 0 || opts.Port > 65535 {
		return nil, fmt.Errorf("ipmisim: port %d out of range", opts.Port)
	}

	s := &Sim{opts: opts}
	if opts.Dir == "" {
		d, err := os.MkdirTemp("", "ipmisim-")
		if err != nil {
			return nil, fmt.Errorf("ipmisim: %w", err)
		}
		s.dir, s.rmDir = d, true
	} else {
		d, err := filepath.Abs(opts.Dir)
		if err != nil {
			return nil, fmt.Errorf("ipmisim: %w", err)
		}
		if err := checkPath("dir", d); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("ipmisim: %w", err)
		}
		s.dir = d
	}
	if err := checkPath("dir", s.dir); err != nil {
		s.cleanupDir()
		return nil, err
	}
	pidFile := ""
	if opts.PIDFile != "" {
		p, err := filepath.Abs(opts.PIDFile)
		if err != nil {
			s.cleanupDir()
			return nil, fmt.Errorf("ipmisim: %w", err)
		}
		if err := checkPath("pid file", p); err != nil {
			s.cleanupDir()
			return nil, err
		}
		pidFile = p
	}
	if err := s.writeFiles(pidFile); err != nil {
		s.cleanupDir()
		return nil, err
	}

	// A picked port can be taken between the probe and ipmi_sim's bind
	// (ipmi_sim sets SO_REUSEADDR, so it does not fail then: it would share
	// the port). Detect that and try another port.
	tries := 1
	if opts.Port == 0 {
		tries = 5
	}
	var lastErr error
	for range tries {
		port := opts.Port
		if port == 0 {
			p, err := freeUDPPort()
			if err != nil {
				s.cleanupDir()
				return nil, err
			}
			port = p
		} else if err := probeUDPPort(port); err != nil {
			s.cleanupDir()
			return nil, err
		}
		lastErr = s.startOn(port)
		if lastErr == nil {
			return s, nil
		}
		if !errors.Is(lastErr, errPortShared) {
			break
		}
	}
	s.cleanupDir()
	return nil, lastErr
}

var errPortShared = errors.New("UDP port shared with another process")

// startOn writes lan.conf for port, starts the process and waits for it.
func (s *Sim) startOn(port int) error {
	s.port = port
	if s.opts.Sensors {
		cp, err := freeTCPPort()
		if err != nil {
			return err
		}
		s.consolePort = cp
	}
	if err := os.WriteFile(filepath.Join(s.dir, lanConfFile), []byte(s.lanConf()), 0o600); err != nil {
		return fmt.Errorf("ipmisim: %w", err)
	}
	logf, err := os.OpenFile(s.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("ipmisim: %w", err)
	}
	defer logf.Close()

	cmd := exec.Command(Command,
		"-c", filepath.Join(s.dir, lanConfFile),
		"-f", filepath.Join(s.dir, simEmuFile),
		"-s", filepath.Join(s.dir, stateDirName),
		"-n")
	cmd.Dir = s.dir
	cmd.Stdin = nil // /dev/null
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:   true,            // own group: Stop kills the scripts too
		Pdeathsig: syscall.SIGKILL, // never outlive the test binary
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("ipmisim: start %s: %w", Command, err)
	}
	s.cmd = cmd
	s.pid = cmd.Process.Pid
	done := make(chan struct{})
	s.done = done
	s.stopOnce = sync.Once{}
	go func() {
		s.waitErr = cmd.Wait()
		close(done)
	}()

	if err := s.waitReady(); err != nil {
		_ = s.kill()
		return fmt.Errorf("ipmisim: %w; log %s: %s", err, s.LogPath(), s.logTail())
	}
	if n, err := udpSockets(port); err == nil && n > 1 {
		_ = s.kill()
		return fmt.Errorf("ipmisim: port %d: %w", port, errPortShared)
	}
	return nil
}

// waitReady polls the BMC until it answers or the process dies.
func (s *Sim) waitReady() error {
	deadline := time.Now().Add(s.opts.StartTimeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("%s exited during start-up: %v", Command, s.waitErr)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, last = s.status(ctx, 250*time.Millisecond)
		cancel()
		if last == nil {
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("%s exited during start-up: %v", Command, s.waitErr)
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("BMC on %s:%d did not answer within %s (last error: %s)",
		Host, s.port, s.opts.StartTimeout, s.scrub(fmt.Sprint(last)))
}

// status asks the BMC for the chassis power over IPMI 2.0, cipher suite 3.
func (s *Sim) status(ctx context.Context, exchange time.Duration) (bool, error) {
	c, err := client.NewClient(Host, s.port, s.opts.User, s.opts.Password)
	if err != nil {
		return false, err
	}
	c.WithInterface(client.InterfaceLanplus).
		WithCipherSuiteID(types.CipherSuiteID3).
		WithTimeout(exchange).
		WithRetry(0)
	if err := c.Connect(ctx); err != nil {
		// A cancelled context skips the Close Session exchange (there is no
		// session) and only releases the socket.
		cctx, cancel := context.WithCancel(context.Background())
		cancel()
		_ = c.Close(cctx)
		return false, err
	}
	defer c.Close(ctx) //nolint:errcheck // best effort
	st, err := c.GetChassisStatus(ctx)
	if err != nil {
		return false, err
	}
	return st.PowerIsOn, nil
}

// Addr returns the BMC's address.
func (s *Sim) Addr() (host string, port int) { return Host, s.port }

// Port returns the BMC's UDP port.
func (s *Sim) Port() int { return s.port }

// PID returns the ipmi_sim process id (also its process group id).
func (s *Sim) PID() int { return s.pid }

// Dir returns the work directory.
func (s *Sim) Dir() string { return s.dir }

// LogPath returns ipmi_sim's output file.
func (s *Sim) LogPath() string { return filepath.Join(s.dir, simLogFile) }

// ChassisLogPath returns the file where the chassis script records each
// call ("0x20 get power", "0x20 set power 0", ...).
func (s *Sim) ChassisLogPath() string { return filepath.Join(s.dir, chassisLog) }

// ChassisCommands returns the chassis script calls so far, one per entry.
func (s *Sim) ChassisCommands() ([]string, error) {
	b, err := os.ReadFile(s.ChassisLogPath())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = append(out, l)
		}
	}
	return out, sc.Err()
}

// PowerState reads the simulated host's power: "on" or "off".
func (s *Sim) PowerState() (string, error) {
	b, err := os.ReadFile(filepath.Join(s.dir, powerFile))
	if err != nil {
		return "", fmt.Errorf("ipmisim: %w", err)
	}
	st := strings.TrimSpace(string(b))
	if st != "on" && st != "off" {
		return "", fmt.Errorf("ipmisim: power state file holds %q", st)
	}
	return st, nil
}

// SetPowerState switches the simulated host's power directly, without
// going through IPMI (e.g. a host that is already off).
func (s *Sim) SetPowerState(on bool) error {
	v := "off\n"
	if on {
		v = "on\n"
	}
	p := filepath.Join(s.dir, powerFile)
	if err := os.WriteFile(p+".set", []byte(v), 0o644); err != nil {
		return fmt.Errorf("ipmisim: %w", err)
	}
	if err := os.Rename(p+".set", p); err != nil {
		return fmt.Errorf("ipmisim: %w", err)
	}
	return nil
}

// Pause stops the simulator (SIGSTOP): the BMC goes silent.
func (s *Sim) Pause() error { return s.signal(syscall.SIGSTOP) }

// Resume continues a paused simulator (SIGCONT).
func (s *Sim) Resume() error { return s.signal(syscall.SIGCONT) }

func (s *Sim) signal(sig syscall.Signal) error {
	select {
	case <-s.done:
		return fmt.Errorf("ipmisim: %s (pid %d) is not running", Command, s.pid)
	default:
	}
	if err := syscall.Kill(-s.pid, sig); err != nil {
		return fmt.Errorf("ipmisim: signal %v to group %d: %w", sig, s.pid, err)
	}
	return nil
}

// Stop kills the simulator's process group and waits for it; it removes
// Dir if Start created it. Safe to call more than once.
func (s *Sim) Stop() error {
	s.stopOnce.Do(func() {
		s.stopErr = s.kill()
		s.cleanupDir()
	})
	return s.stopErr
}

// kill SIGKILLs the process group (works on a paused group too) and reaps
// the process.
func (s *Sim) kill() error {
	if s.cmd == nil {
		return nil
	}
	select {
	case <-s.done:
		return nil
	default:
	}
	if err := syscall.Kill(-s.pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("ipmisim: kill group %d: %w", s.pid, err)
	}
	select {
	case <-s.done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("ipmisim: %s (pid %d) did not exit after SIGKILL", Command, s.pid)
	}
}

func (s *Sim) cleanupDir() {
	if s.rmDir {
		_ = os.RemoveAll(s.dir)
	}
}

// lanConf is ipmi_sim's configuration: one LAN channel on loopback, one
// admin user, chassis power handled by the script.
func (s *Sim) lanConf() string {
	return fmt.Sprintf(`# written by vmha internal/ipmisim
name "ipmisim"

set_working_mc 0x20

  startlan 1
    addr %s %d
    priv_limit admin
    allowed_auths_callback md2 md5
    allowed_auths_user md2 md5
    allowed_auths_operator md2 md5
    allowed_auths_admin md2 md5
    guid a123456789abcdefa123456789abcdef
  endlan

  chassis_control "'%s' 0x20"

  user 2 true "%s" "%s" admin 10 md2 md5
%s`, Host, s.port, filepath.Join(s.dir, scriptFile), s.opts.User, s.opts.Password, s.consoleConf())
}

const baseEmu = `# written by vmha internal/ipmisim
mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr
mc_enable 0x20
`

// chassisScript is called by ipmi_sim as "SCRIPT MC get PARAM..." (prints
// "PARAM:VALUE" lines) and "SCRIPT MC set PARAM VALUE ...".
const chassisScript = `#!/bin/sh
# chassis_control for ipmi_sim, written by vmha internal/ipmisim.
state=%s
pidfile=%s
ignore_off=%d
log=%s
poweroff=%s

echo "$*" >>"$log"
mc=$1
op=$2
shift 2

setpower() {
	echo "$1" >"$state.tmp" && mv -f "$state.tmp" "$state"
}

killhost() {
	if [ -n "$pidfile" ] && [ -s "$pidfile" ]; then
		pid=$(cat "$pidfile")
		case $pid in
		'' | *[!0-9]*) ;;
		*) kill -9 "$pid" 2>/dev/null ;;
		esac
	fi
	if [ -x "$poweroff" ]; then "$poweroff" >>"$log" 2>&1; fi
}

case $op in
get)
	for p in "$@"; do
		case $p in
		power)
			if [ "$(cat "$state" 2>/dev/null)" = on ]; then
				echo "power:1"
			else
				echo "power:0"
			fi
			;;
		boot) echo "boot:default" ;;
		esac
	done
	;;
set)
	while [ $# -ge 2 ]; do
		case $1 in
		power)
			if [ "$2" = 0 ]; then
				if [ "$ignore_off" = 0 ]; then
					killhost
					setpower off
				fi
			else
				setpower on
			fi
			;;
		reset)
			if [ "$ignore_off" = 0 ]; then killhost; fi
			;;
		esac
		shift 2
	done
	;;
esac
exit 0
`

func (s *Sim) writeFiles(pidFile string) error {
	ignore := 0
	if s.opts.IgnorePowerOff {
		ignore = 1
	}
	script := fmt.Sprintf(chassisScript,
		shQuote(filepath.Join(s.dir, powerFile)), shQuote(pidFile), ignore,
		shQuote(filepath.Join(s.dir, chassisLog)), shQuote(filepath.Join(s.dir, powerOffFile)))
	files := []struct {
		name string
		data string
		mode os.FileMode
	}{
		{simEmuFile, s.simEmu(), 0o644},
		{scriptFile, script, 0o755},
		{powerFile, "on\n", 0o644},
	}
	_ = os.Remove(filepath.Join(s.dir, powerOffFile))
	if c := s.opts.PowerOffCommand; c != "" {
		files = append(files, struct {
			name string
			data string
			mode os.FileMode
		}{powerOffFile, "#!/bin/sh\n" + c + "\n", 0o755})
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(s.dir, f.name), []byte(f.data), f.mode); err != nil {
			return fmt.Errorf("ipmisim: %w", err)
		}
		if err := os.Chmod(filepath.Join(s.dir, f.name), f.mode); err != nil {
			return fmt.Errorf("ipmisim: %w", err)
		}
	}
	// ipmi_sim persists users and LAN parameters in its state directory and
	// prefers them to lan.conf: start from a clean one every time.
	state := filepath.Join(s.dir, stateDirName)
	if err := os.RemoveAll(state); err != nil {
		return fmt.Errorf("ipmisim: %w", err)
	}
	if err := os.MkdirAll(state, 0o755); err != nil {
		return fmt.Errorf("ipmisim: %w", err)
	}
	// A fresh log per Start.
	if err := os.Remove(filepath.Join(s.dir, chassisLog)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("ipmisim: %w", err)
	}
	return nil
}

// logTail returns the end of ipmi_sim's log, without the password.
func (s *Sim) logTail() string {
	b, err := os.ReadFile(s.LogPath())
	if err != nil {
		return err.Error()
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "(empty)"
	}
	return s.scrub(t)
}

func (s *Sim) scrub(v string) string {
	return strings.ReplaceAll(v, s.opts.Password, "[redacted]")
}

// checkWord validates a value written into lan.conf between quotes.
func checkWord(field, v string, maxLen int) error {
	if len(v) > maxLen {
		return fmt.Errorf("ipmisim: %s longer than %d characters", field, maxLen)
	}
	for _, r := range v {
		if r <= ' ' || r == '"' || r == '\'' || r == '\\' || r >= 0x7f {
			return fmt.Errorf("ipmisim: %s may only hold printable ASCII without spaces, quotes or backslashes", field)
		}
	}
	return nil
}

// checkPath validates a path that ends up single-quoted in a shell command
// inside a double-quoted lan.conf string.
func checkPath(field, p string) error {
	if strings.ContainsAny(p, "'\"\\\n\r") {
		return fmt.Errorf("ipmisim: %s %q must not contain quotes, backslashes or newlines", field, p)
	}
	return nil
}

func shQuote(v string) string { return "'" + v + "'" }

// freeUDPPort asks the kernel for a free UDP port on loopback.
func freeUDPPort() (int, error) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(Host)})
	if err != nil {
		return 0, fmt.Errorf("ipmisim: pick a UDP port: %w", err)
	}
	defer c.Close() //nolint:errcheck // a probe socket: nothing was written
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}

// probeUDPPort fails if port is already bound on loopback.
func probeUDPPort(port int) error {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(Host), Port: port})
	if err != nil {
		return fmt.Errorf("ipmisim: UDP port %d is not free: %w", port, err)
	}
	return c.Close()
}

// udpSockets counts UDP sockets bound to port (any address) from
// /proc/net/udp{,6}.
func udpSockets(port int) (int, error) {
	n := 0
	for _, f := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return 0, err
		}
		lines := strings.Split(string(b), "\n")
		for _, l := range lines[1:] {
			fields := strings.Fields(l)
			if len(fields) < 2 {
				continue
			}
			i := strings.LastIndexByte(fields[1], ':')
			if i < 0 {
				continue
			}
			p, err := strconv.ParseUint(fields[1][i+1:], 16, 16)
			if err == nil && int(p) == port {
				n++
			}
		}
	}
	return n, nil
}
