package ipmi_test

import (
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
	"testing"
	"time"

	"github.com/bougou/go-ipmi/pkg/bmc"
	"github.com/bougou/go-ipmi/pkg/hal/mock"
	"github.com/bougou/go-ipmi/pkg/server"
	"github.com/bougou/go-ipmi/pkg/transport/udp"

	"github.com/vmha/vmha/fencing"
	"github.com/vmha/vmha/fencing/ipmi"
	"github.com/vmha/vmha/internal/secret"
	"github.com/vmha/vmha/internal/testlab/ipmisim"
	"github.com/vmha/vmha/internal/testlab/testenv"
)

// Distinctive values so a leak is easy to spot.
const (
	simUser     = "fencer"
	simPassword = "Pw-7f3a9c-sim"
)

// startSim starts a real ipmi_sim and returns it with a matching Config.
func startSim(t testing.TB, opts ipmisim.Options) (*ipmisim.Sim, ipmi.Config) {
	t.Helper()
	testenv.NeedCommand(t, "ipmi_sim")
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
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
	host, port := sim.Addr()
	return sim, ipmi.Config{
		Host:     host,
		Port:     port,
		User:     simUser,
		Password: secret.New(simPassword),
		Timeout:  2 * time.Second,
	}
}

func newDevice(t testing.TB, cfg ipmi.Config) *ipmi.Device {
	t.Helper()
	d, err := ipmi.New(cfg)
	if err != nil {
		t.Fatalf("ipmi.New: %v", err)
	}
	return d
}

// fenceOpts are short but realistic for a loopback BMC.
func fenceOpts() fencing.Options {
	return fencing.Options{
		Timeout:      10 * time.Second,
		CallTimeout:  3 * time.Second,
		PollInterval: 50 * time.Millisecond,
		Retries:      2,
		Backoff:      50 * time.Millisecond,
	}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// ipmitoolStatus asks ipmitool for the power status (password via the
// environment, not argv).
func ipmitoolStatus(t *testing.T, sim *ipmisim.Sim) string {
	t.Helper()
	bin := testenv.NeedCommand(t, "ipmitool")
	host, port := sim.Addr()
	cmd := exec.Command(bin, "-I", "lanplus", "-H", host, "-p", strconv.Itoa(port),
		"-U", simUser, "-E", "-C", "3", "chassis", "power", "status")
	cmd.Env = append(os.Environ(), "IPMI_PASSWORD="+simPassword)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ipmitool: %v: %s", err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestNewValidation(t *testing.T) {
	pw := secret.New("pw")
	for _, tc := range []struct {
		cfg  ipmi.Config
		want string
	}{
		{ipmi.Config{User: "u", Password: pw}, "ipmi: host is empty"},
		{ipmi.Config{Host: "  ", User: "u", Password: pw}, "ipmi: host is empty"},
		{ipmi.Config{Host: "a b", User: "u", Password: pw}, `ipmi: host "a b" is not`},
		{ipmi.Config{Host: "h", Port: -1, User: "u", Password: pw}, "ipmi: port -1 is out of range"},
		{ipmi.Config{Host: "h", Port: 65536, User: "u", Password: pw}, "ipmi: port 65536 is out of range"},
		{ipmi.Config{Host: "h", Password: pw}, "ipmi: user is empty"},
		{ipmi.Config{Host: "h", User: strings.Repeat("u", 17), Password: pw}, "ipmi: user is longer than 16"},
		{ipmi.Config{Host: "h", User: "u"}, "ipmi: password is empty"},
		{ipmi.Config{Host: "h", User: "u", Password: secret.New(strings.Repeat("p", 21))}, "ipmi: password is longer than 20"},
		{ipmi.Config{Host: "h", User: "u", Password: secret.New(strings.Repeat("p", 17)), Interface: "lan"}, "ipmi: password is longer than 16"},
		{ipmi.Config{Host: "h", User: "u", Password: pw, Interface: "open"}, `ipmi: interface "open" is not`},
		{ipmi.Config{Host: "h", User: "u", Password: pw, CipherSuite: 20}, "ipmi: cipher suite 20"},
		{ipmi.Config{Host: "h", User: "u", Password: pw, CipherSuite: -3}, "ipmi: cipher suite -3"},
		{ipmi.Config{Host: "h", User: "u", Password: pw, Timeout: -time.Second}, "ipmi: timeout -1s is negative"},
	} {
		d, err := ipmi.New(tc.cfg)
		if err == nil {
			t.Errorf("New(%+v) = %v, want error %q", tc.cfg, d, tc.want)
			continue
		}
		if !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("New(%+v): %q, want %q", tc.cfg, err, tc.want)
		}
		if strings.Contains(err.Error(), strings.Repeat("p", 17)) {
			t.Errorf("error leaks the password: %q", err)
		}
	}

	for cfg, name := range map[ipmi.Config]string{
		{Host: "10.0.0.11", User: "u", Password: pw}:                                              "ipmi 10.0.0.11:623",
		{Host: "bmc1.example", Port: 9001, User: "u", Password: pw, Interface: "lan"}:             "ipmi bmc1.example:9001",
		{Host: "fe80::1", User: "u", Password: pw, CipherSuite: 17, Timeout: time.Second}:         "ipmi [fe80::1]:623",
		{Host: "h", User: strings.Repeat("u", 16), Password: secret.New(strings.Repeat("p", 20))}: "ipmi h:623",
	} {
		d, err := ipmi.New(cfg)
		if err != nil {
			t.Errorf("New(%+v): %v", cfg, err)
			continue
		}
		if d.Name() != name {
			t.Errorf("Name() = %q, want %q", d.Name(), name)
		}
	}
}

func TestPasswordNeverPrinted(t *testing.T) {
	const pw = "Sup3r-Secret-9d1e"
	cfg := ipmi.Config{Host: "127.0.0.1", Port: 9001, User: "admin", Password: secret.New(pw)}
	d := newDevice(t, cfg)
	type holder struct {
		dev *ipmi.Device
		val ipmi.Device
	}
	outputs := map[string]string{
		"cfg":    fmt.Sprintf("%v %+v %#v", cfg, cfg, cfg),
		"&cfg":   fmt.Sprintf("%v %+v %#v", &cfg, &cfg, &cfg),
		"Name":   d.Name(),
		"dev":    fmt.Sprintf("%v %+v %#v %s", d, d, d, d),
		"*dev":   fmt.Sprintf("%v %+v %#v", *d, *d, *d),
		"holder": fmt.Sprintf("%v %+v %#v", holder{d, *d}, holder{d, *d}, holder{d, *d}),
	}
	for what, out := range outputs {
		if strings.Contains(out, pw) {
			t.Errorf("%s prints the password: %s", what, out)
		}
	}
	if got := fmt.Sprint(d); got != "ipmi 127.0.0.1:9001" {
		t.Errorf("fmt.Sprint(dev) = %q", got)
	}
	t.Logf("cfg prints as: %s", outputs["cfg"])
}

func TestPasswordFromFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const pw = "file-Pw-0c41 x"
	for _, tc := range []struct {
		name, content string
		mode          os.FileMode
		want          string // password, or error substring when wantErr
		wantErr       bool
	}{
		{"plain", pw, 0o600, pw, false},
		{"newline", pw + "\n", 0o600, pw, false},
		{"crlf", pw + "\r\n", 0o400, pw, false},
		{"one newline only", pw + "\n\n", 0o600, "holds more than one line", true},
		{"group readable", pw + "\n", 0o640, "has mode 0640: it must not be readable by group or others", true},
		{"world readable", pw + "\n", 0o604, "has mode 0604", true},
		{"empty", "\n", 0o600, "is empty", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := write(strings.ReplaceAll(tc.name, " ", "-"), tc.content, tc.mode)
			got, err := ipmi.PasswordFromFile(p)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("PasswordFromFile succeeded, want %q", tc.want)
				}
				if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
					t.Fatalf("error %q should contain %q and the file name", err, tc.want)
				}
				if strings.Contains(err.Error(), "0c41") {
					t.Fatalf("error leaks the password: %q", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Reveal() != tc.want {
				t.Fatalf("password %q, want %q", got.Reveal(), tc.want)
			}
		})
	}
	if _, err := ipmi.PasswordFromFile(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("missing file: %v", err)
	}
	if _, err := ipmi.PasswordFromFile(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("directory: %v", err)
	}
}

func TestStatusOnIPMISim(t *testing.T) {
	_, cfg := startSim(t, ipmisim.Options{})
	d := newDevice(t, cfg)
	st, err := d.Status(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if st != fencing.PowerOn {
		t.Fatalf("Status = %q, want on", st)
	}
}

func TestFenceIPMISim(t *testing.T) {
	sim, cfg := startSim(t, ipmisim.Options{})
	d := newDevice(t, cfg)
	res, err := fencing.Fence(ctxT(t), d, fenceOpts())
	if err != nil {
		t.Fatalf("Fence: %v", err)
	}
	t.Logf("fence: %+v", res)
	if res.AlreadyOff || res.Attempts != 1 || res.State != fencing.PowerOff || res.Device != d.Name() {
		t.Fatalf("Result %+v", res)
	}
	if st, err := sim.PowerState(); err != nil || st != "off" {
		t.Fatalf("sim power %q, %v; want off", st, err)
	}
	if out := ipmitoolStatus(t, sim); out != "Chassis Power is off" {
		t.Fatalf("ipmitool says %q", out)
	}
	cmds, err := sim.ChassisCommands()
	if err != nil {
		t.Fatal(err)
	}
	if n := count(cmds, "0x20 set power 0"); n != 1 {
		t.Fatalf("%d off commands reached the BMC: %q", n, cmds)
	}

	t.Run("fence_ipmilan agrees", func(t *testing.T) {
		bin := testenv.NeedCommand(t, "fence_ipmilan")
		_, port := sim.Addr()
		// Options on stdin (the fence-agents API), so the password is not
		// in argv.
		cmd := exec.Command(bin)
		cmd.Stdin = strings.NewReader(fmt.Sprintf("action=status\nip=127.0.0.1\nipport=%d\nusername=%s\npassword=%s\nlanplus=1\ncipher=3\n",
			port, simUser, simPassword))
		out, err := cmd.CombinedOutput()
		// fence agents exit 2 for "off" on status.
		var ee *exec.ExitError
		if err != nil && (!errors.As(err, &ee) || ee.ExitCode() != 2) {
			t.Fatalf("fence_ipmilan: %v: %s", err, out)
		}
		if !strings.Contains(string(out), "Status: OFF") {
			t.Fatalf("fence_ipmilan says %q", out)
		}
	})

	t.Run("power on again", func(t *testing.T) {
		if err := d.PowerOn(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		if st, err := d.Status(ctxT(t)); err != nil || st != fencing.PowerOn {
			t.Fatalf("Status after PowerOn = %q, %v", st, err)
		}
		if out := ipmitoolStatus(t, sim); out != "Chassis Power is on" {
			t.Fatalf("ipmitool says %q", out)
		}
	})
}

func count(lines []string, s string) int {
	n := 0
	for _, l := range lines {
		if l == s {
			n++
		}
	}
	return n
}

func TestFenceKillsHostProcess(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "host.pid")
	host := exec.Command("sleep", "600")
	if err := host.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- host.Wait() }()
	t.Cleanup(func() {
		_ = host.Process.Kill()
		<-exited //nolint:errcheck // killed on purpose: the exit status is SIGKILL
	})
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(host.Process.Pid)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	_, cfg := startSim(t, ipmisim.Options{Dir: filepath.Join(dir, "sim"), PIDFile: pidFile})
	if _, err := fencing.Fence(ctxT(t), newDevice(t, cfg), fenceOpts()); err != nil {
		t.Fatalf("Fence: %v", err)
	}
	select {
	case err := <-exited:
		exited <- err // for the cleanup
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("host process ended with %v, want SIGKILL", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("host process still running 10s after the fence")
	}
}

func TestFenceAlreadyOffIPMISim(t *testing.T) {
	sim, cfg := startSim(t, ipmisim.Options{})
	if err := sim.SetPowerState(false); err != nil {
		t.Fatal(err)
	}
	d := newDevice(t, cfg)
	for i := range 2 {
		res, err := fencing.Fence(ctxT(t), d, fenceOpts())
		if err != nil {
			t.Fatalf("Fence #%d: %v", i+1, err)
		}
		if !res.AlreadyOff || res.Attempts != 0 || res.State != fencing.PowerOff {
			t.Fatalf("Fence #%d: %+v, want already off without an off command", i+1, res)
		}
	}
	cmds, err := sim.ChassisCommands()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cmds {
		if strings.Contains(c, "set") {
			t.Fatalf("a command reached the chassis of an already-off host: %q", cmds)
		}
	}
}

func TestWrongPassword(t *testing.T) {
	const wrong = "Wrong-Pw-5b2e7"
	sim, cfg := startSim(t, ipmisim.Options{})
	for _, iface := range []string{"lanplus", "lan"} {
		t.Run(iface, func(t *testing.T) {
			cfg := cfg
			cfg.Interface = iface
			cfg.Password = secret.New(wrong)
			cfg.Timeout = time.Second
			d := newDevice(t, cfg)
			_, err := d.Status(ctxT(t))
			if err == nil {
				t.Fatal("Status with a wrong password succeeded")
			}
			t.Logf("status error: %v", err)
			// RMCP+ refuses the login; ipmi_sim drops IPMI 1.5 requests
			// with a wrong auth code, which looks like a silent BMC.
			if want := map[string]error{"lanplus": ipmi.ErrAuth, "lan": context.DeadlineExceeded}[iface]; !errors.Is(err, want) {
				t.Fatalf("error is not %v", want)
			}
			res, ferr := fencing.Fence(ctxT(t), d, fencing.Options{Timeout: 5 * time.Second, Retries: 1, Backoff: 10 * time.Millisecond})
			if ferr == nil {
				t.Fatalf("Fence with a wrong password succeeded: %+v", res)
			}
			t.Logf("fence error: %v", ferr)
			for _, s := range []string{
				err.Error(), fmt.Sprintf("%+v %#v", err, err),
				ferr.Error(), fmt.Sprintf("%+v %#v", ferr, ferr),
			} {
				if strings.Contains(s, wrong) || strings.Contains(s, simPassword) {
					t.Fatalf("error text leaks a password: %s", s)
				}
			}
			if !strings.HasPrefix(ferr.Error(), "fence via "+d.Name()+": status failed after 2 attempt(s): ipmi status: ") {
				t.Fatalf("fence error %q", ferr)
			}
		})
	}
	if st, _ := sim.PowerState(); st != "on" {
		t.Fatalf("power %q after failed logins", st)
	}
}

func TestBMCSilent(t *testing.T) {
	sim, cfg := startSim(t, ipmisim.Options{})
	cfg.Timeout = 400 * time.Millisecond
	d := newDevice(t, cfg)
	if err := sim.Pause(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Resume() })

	start := time.Now()
	_, err := d.Status(ctxT(t))
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("Status of a silent BMC took %s with a 400ms timeout", took)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no answer from 127.0.0.1:") {
		t.Fatalf("Status: %v, want a deadline error", err)
	}
	t.Logf("status error: %v", err)

	opt := fencing.Options{Timeout: 1500 * time.Millisecond, CallTimeout: time.Second, PollInterval: 50 * time.Millisecond, Retries: 5, Backoff: 50 * time.Millisecond}
	start = time.Now()
	res, err := fencing.Fence(ctxT(t), d, opt)
	took := time.Since(start)
	if err == nil {
		t.Fatalf("Fence of a silent BMC succeeded: %+v", res)
	}
	t.Logf("fence error after %s: %v", took, err)
	if took > opt.Timeout+2*time.Second {
		t.Fatalf("Fence took %s, timeout %s", took, opt.Timeout)
	}
	if !strings.HasPrefix(err.Error(), "fence via "+d.Name()+": status: no success within 1.5s") {
		t.Fatalf("fence error %q", err)
	}

	// Back from the dead, the BMC still works.
	if err := sim.Resume(); err != nil {
		t.Fatal(err)
	}
	d2 := newDevice(t, ipmi.Config{Host: cfg.Host, Port: cfg.Port, User: cfg.User, Password: cfg.Password})
	if st, err := d2.Status(ctxT(t)); err != nil || st != fencing.PowerOn {
		t.Fatalf("Status after Resume = %q, %v", st, err)
	}
}

func TestIgnorePowerOff(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "host.pid")
	host := exec.Command("sleep", "600")
	if err := host.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = host.Process.Kill(); _ = host.Wait() })
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(host.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	sim, cfg := startSim(t, ipmisim.Options{Dir: filepath.Join(dir, "sim"), PIDFile: pidFile, IgnorePowerOff: true})
	d := newDevice(t, cfg)
	opt := fenceOpts()
	opt.Timeout = time.Second
	res, err := fencing.Fence(ctxT(t), d, opt)
	if err == nil {
		t.Fatalf("Fence succeeded against a BMC that ignores power off: %+v", res)
	}
	t.Logf("fence error: %v (%+v)", err, res)
	if !errors.Is(err, fencing.ErrStillOn) || err.Error() != "fence via "+d.Name()+": power still on after 1s" {
		t.Fatalf("error %q, want power still on", err)
	}
	if res.Attempts != 1 || res.Polls < 3 || res.State != fencing.PowerOn {
		t.Fatalf("Result %+v", res)
	}
	if st, _ := sim.PowerState(); st != "on" {
		t.Fatalf("sim power %q", st)
	}
	if err := host.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("host process gone: %v", err)
	}
}

func TestLanInterfaceIPMI15(t *testing.T) {
	sim, cfg := startSim(t, ipmisim.Options{})
	cfg.Interface = "lan"
	d := newDevice(t, cfg)
	if st, err := d.Status(ctxT(t)); err != nil || st != fencing.PowerOn {
		t.Fatalf("Status = %q, %v", st, err)
	}
	if _, err := fencing.Fence(ctxT(t), d, fenceOpts()); err != nil {
		t.Fatal(err)
	}
	if st, _ := sim.PowerState(); st != "off" {
		t.Fatalf("sim power %q", st)
	}
}

func TestConcurrentCalls(t *testing.T) {
	_, cfg := startSim(t, ipmisim.Options{})
	d := newDevice(t, cfg)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 4 {
		wg.Go(func() {
			for range 3 {
				if st, err := d.Status(ctxT(t)); err != nil || st != fencing.PowerOn {
					errs <- fmt.Errorf("status %q, %v", st, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestCancelledContext(t *testing.T) {
	d := newDevice(t, ipmi.Config{Host: "127.0.0.1", Port: 9, User: "u", Password: secret.New("p")})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := d.Status(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Status with a cancelled context: %v", err)
	}
}

// startGoIPMIBMC runs go-ipmi's reference BMC in-process on loopback with a
// mock chassis that is powered on.
func startGoIPMIBMC(t *testing.T, user, pass string) (*mock.Chassis, int) {
	t.Helper()
	var guid [16]byte
	copy(guid[:], "vmha-fence-test")
	h := mock.New()
	ch := h.Chassis().(*mock.Chassis)
	if err := ch.SetPower(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	b := bmc.New(bmc.DeviceInfo{
		DeviceID: 32, DeviceRevision: 1, FirmwareMajor: 1, IPMIVersion: 0x20,
		ManufacturerID: 0x000157, ProductID: 1, AdditionalDeviceSupport: 0x39,
	}, guid, h)
	u, err := b.Users.Add(2, user)
	if err != nil {
		t.Fatal(err)
	}
	u.SetPassword([]byte(pass))
	u.Enabled = true
	u.ChannelAccess[1] = bmc.UserChannelAccess{MaxPrivilege: bmc.PrivilegeLevelAdministrator, Enabled: true}

	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	srv := server.NewServer(b, udp.Wrap(pc))
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		_ = srv.Close()
		_ = pc.Close()
		<-served
	})
	return ch, pc.LocalAddr().(*net.UDPAddr).Port
}

func TestFenceGoIPMIBMC(t *testing.T) {
	const user, pass = "ADMIN", "Pw-go-ipmi-31"
	ch, port := startGoIPMIBMC(t, user, pass)
	d := newDevice(t, ipmi.Config{Host: "127.0.0.1", Port: port, User: user, Password: secret.New(pass), Timeout: 2 * time.Second})
	if st, err := d.Status(ctxT(t)); err != nil || st != fencing.PowerOn {
		t.Fatalf("Status = %q, %v", st, err)
	}
	res, err := fencing.Fence(ctxT(t), d, fenceOpts())
	if err != nil {
		t.Fatalf("Fence: %v", err)
	}
	if res.AlreadyOff || res.State != fencing.PowerOff {
		t.Fatalf("Result %+v", res)
	}
	if on, _ := ch.PowerState(context.Background()); on {
		t.Fatal("mock chassis still on after the fence")
	}
	// A second fence finds it off.
	if res, err := fencing.Fence(ctxT(t), d, fenceOpts()); err != nil || !res.AlreadyOff {
		t.Fatalf("second fence: %+v, %v", res, err)
	}
}

func BenchmarkStatusIPMISim(b *testing.B) {
	_, cfg := startSim(b, ipmisim.Options{})
	d := newDevice(b, cfg)
	ctx := context.Background()
	for b.Loop() {
		if _, err := d.Status(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

func TestPowerCycleIPMISim(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "host.pid")
	host := exec.Command("sleep", "600")
	if err := host.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- host.Wait() }()
	t.Cleanup(func() { _ = host.Process.Kill(); <-exited }) //nolint:errcheck // killed on purpose
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(host.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	sim, cfg := startSim(t, ipmisim.Options{Dir: filepath.Join(dir, "sim"), PIDFile: pidFile})
	d := newDevice(t, cfg)
	if err := d.Reboot(ctxT(t)); err != nil {
		t.Fatalf("Reboot: %v", err)
	}
	cmds, err := sim.ChassisCommands()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("chassis commands: %q", cmds)
	select {
	case err := <-exited:
		exited <- err
	case <-time.After(10 * time.Second):
		t.Fatalf("the host process survived a power cycle (chassis saw %q)", cmds)
	}
	// ipmi_sim switches the power back on after its cycle pause.
	deadline := time.Now().Add(15 * time.Second)
	for {
		st, err := d.Status(ctxT(t))
		if err == nil && st == fencing.PowerOn {
			break
		}
		if time.Now().After(deadline) {
			cmds, _ := sim.ChassisCommands()
			t.Fatalf("Status after the cycle %q, %v (chassis saw %q)", st, err, cmds)
		}
		time.Sleep(100 * time.Millisecond)
	}
	cmds, _ = sim.ChassisCommands()
	off, on := index(cmds, "0x20 set power 0"), index(cmds, "0x20 set power 1")
	if off < 0 || on < off {
		t.Fatalf("chassis commands %q: want power 0 then power 1", cmds)
	}
}

func index(l []string, s string) int {
	for i, v := range l {
		if v == s {
			return i
		}
	}
	return -1
}

// BenchmarkFenceIPMISim is a whole fence through our device (status, off,
// status poll until off) against ipmi_sim; the host is switched back on
// outside the timer. Compare with fencing/agent's BenchmarkFenceIPMILan,
// fence_ipmilan against the same simulator.
func BenchmarkFenceIPMISim(b *testing.B) { benchFence(b, "lanplus") }

// BenchmarkFenceIPMISimLan is the same over IPMI 1.5.
func BenchmarkFenceIPMISimLan(b *testing.B) { benchFence(b, "lan") }

func benchFence(b *testing.B, iface string) {
	sim, cfg := startSim(b, ipmisim.Options{})
	cfg.Interface = iface
	d := newDevice(b, cfg)
	ctx := context.Background()
	o := fenceOpts()
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
