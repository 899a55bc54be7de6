package virtlab

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"libvirt.org/go/libvirt"
)

// Host is one libvirtd "hypervisor host" running in its own mount namespace.
type Host struct {
	Name string
	// Dir holds the host's private /etc/libvirt (etc), /var/lib/libvirt
	// (lib), /var/log/libvirt (log) and /var/cache/libvirt (cache).
	Dir string
	// URI is how clients (and a peer libvirtd) reach this host:
	// qemu+tcp://127.0.0.1:PORT/system.
	URI     string
	TCPPort int
	// MigrationPortMin/Max is the range the host's QEMU listens on for an
	// incoming migration stream (qemu.conf migration_port_min/max).
	MigrationPortMin, MigrationPortMax int

	// mu guards cmd and exited, which PowerOn replaces.
	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	// cgroup is the host's own cgroup (v2) holding libvirtd and every
	// process it starts, or "" where none could be made (powercut.go).
	cgroup   string
	stopOnce sync.Once
	stopErr  error
}

// hostStartTimeout bounds how long a libvirtd may take to answer on its TCP
// port; it is about a second on an idle machine.
const hostStartTimeout = 30 * time.Second

// migrationPorts is how many incoming-migration ports each host gets; a
// migration holds one for its duration, so this bounds concurrent incoming
// migrations per host.
const migrationPorts = 16

// StartHost starts a libvirtd named name whose private folders live under
// dir (created if needed). The daemon runs in the foreground of an
// `unshare -m --propagation private` process, so the PID we hold is
// libvirtd's own and the mounts (tmpfs on /run, binds over the libvirt
// folders) vanish with its namespace. Call Stop to end it and its guests.
func StartHost(name, dir string) (*Host, error) {
	for _, p := range []string{"unshare", "/usr/sbin/libvirtd", "/usr/bin/qemu-system-x86_64"} {
		if _, err := exec.LookPath(p); err != nil {
			return nil, fmt.Errorf("start host %s: %s is missing: %w", name, p, err)
		}
	}
	tcpPort, err := freePorts(1)
	if err != nil {
		return nil, fmt.Errorf("start host %s: %w", name, err)
	}
	migMin, err := freePorts(migrationPorts)
	if err != nil {
		return nil, fmt.Errorf("start host %s: %w", name, err)
	}
	h := &Host{
		Name:             name,
		Dir:              dir,
		TCPPort:          tcpPort,
		URI:              fmt.Sprintf("qemu+tcp://127.0.0.1:%d/system", tcpPort),
		MigrationPortMin: migMin,
		MigrationPortMax: migMin + migrationPorts - 1,
	}
	if err := h.writeConfig(); err != nil {
		return nil, fmt.Errorf("start host %s: %w", name, err)
	}
	if err := h.writeIdentity(); err != nil {
		return nil, fmt.Errorf("start host %s: %w", name, err)
	}
	h.cgroup = makeCgroup(name)

	if err := h.start(); err != nil {
		return nil, fmt.Errorf("start host %s: %w", name, err)
	}
	return h, nil
}

// start runs libvirtd in a new mount namespace and waits until it answers.
func (h *Host) start() error {
	exited := make(chan struct{})
	// Inside the new namespace: a private /run (pid file, unix sockets,
	// QEMU's runtime state), then the host's own folders over libvirt's.
	// exec keeps the PID: unshare execs sh, sh execs libvirtd.
	var script strings.Builder
	script.WriteString("set -e\nmount -t tmpfs tmpfs /run\n")
	for _, b := range h.binds() {
		fmt.Fprintf(&script, "mkdir -p %q\nmount --bind %q %q\n", b[1], b[0], b[1])
	}
	script.WriteString("exec /usr/sbin/libvirtd --listen\n")
	cmd := exec.Command("unshare", "-m", "--propagation", "private", "--", "/bin/sh", "-c", script.String())
	if h.cgroup != "" {
		// Into the host's cgroup before anything runs, so that libvirtd
		// and every QEMU it forks belong to it (powercut.go).
		cmd = exec.Command("/bin/sh", "-c", `echo $$ > "$0/cgroup.procs" && exec "$@"`, h.cgroup,
			"unshare", "-m", "--propagation", "private", "--", "/bin/sh", "-c", script.String())
	}
	logf, err := os.OpenFile(filepath.Join(h.Dir, "libvirtd.out"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	// Own process group: a Ctrl-C on the test does not hit the daemon
	// before Stop has destroyed its guests.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("unshare libvirtd: %w", err)
	}
	h.mu.Lock()
	h.cmd, h.exited = cmd, exited
	h.mu.Unlock()
	_ = os.WriteFile(h.pidFile(), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644)
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	if err := h.waitReady(); err != nil {
		_ = h.Stop()
		return fmt.Errorf("%w; libvirtd output: %s", err, h.tail())
	}
	return nil
}

// PID is libvirtd's process id.
func (h *Host) PID() int {
	cmd, _ := h.libvirtd()
	return cmd.Process.Pid
}

// libvirtd is the current libvirtd process and the channel closed when it
// exits.
func (h *Host) libvirtd() (*exec.Cmd, chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cmd, h.exited
}

func (h *Host) binds() [][2]string {
	return [][2]string{
		{filepath.Join(h.Dir, "etc"), "/etc/libvirt"},
		{filepath.Join(h.Dir, "lib"), "/var/lib/libvirt"},
		{filepath.Join(h.Dir, "log"), "/var/log/libvirt"},
		{filepath.Join(h.Dir, "cache"), "/var/cache/libvirt"},
	}
}

// writeConfig copies the system's /etc/libvirt (so drivers find the files
// they expect) and overrides what must differ per host. Autostarted
// networks are removed: both daemons would fight over the same bridge.
func (h *Host) writeConfig() error {
	for _, b := range h.binds() {
		if err := os.MkdirAll(b[0], 0o755); err != nil {
			return err
		}
	}
	etc := filepath.Join(h.Dir, "etc")
	if out, err := exec.Command("cp", "-a", "/etc/libvirt/.", etc).CombinedOutput(); err != nil {
		return fmt.Errorf("copy /etc/libvirt to %s: %w: %s", etc, err, out)
	}
	_ = os.RemoveAll(filepath.Join(etc, "qemu", "networks", "autostart"))
	_ = os.RemoveAll(filepath.Join(etc, "storage", "autostart"))
	// Domains that other tests defined in the machine's own libvirtd must
	// not appear (or autostart) on a lab host.
	_ = os.RemoveAll(filepath.Join(etc, "qemu", "autostart"))
	if defs, err := filepath.Glob(filepath.Join(etc, "qemu", "*.xml")); err == nil {
		for _, d := range defs {
			_ = os.Remove(d)
		}
	}
	if err := os.MkdirAll(filepath.Join(h.Dir, "log", "vmha-serial"), 0o755); err != nil {
		return err
	}
	seedCapsCache(filepath.Join(h.Dir, "cache", "qemu", "capabilities"))
	uuid, err := randomUUID()
	if err != nil {
		return err
	}
	libvirtd := fmt.Sprintf(`# vmha virtlab host %s
listen_tls = 0
listen_tcp = 1
listen_addr = "127.0.0.1"
tcp_port = "%d"
auth_tcp = "none"
auth_unix_rw = "none"
host_uuid = "%s"
log_outputs = "3:file:/var/log/libvirt/libvirtd.log"
max_workers = 40
`, h.Name, h.TCPPort, uuid)
	// security_driver none and root: the guest's kernel, initrd and console
	// file live outside libvirt's folders, and there is no AppArmor
	// profile to load in a namespace. stdio_handler file: no virtlogd.
	qemu := fmt.Sprintf(`# vmha virtlab host %s
migration_port_min = %d
migration_port_max = %d
cgroup_controllers = [ ]
security_driver = "none"
user = "root"
group = "root"
stdio_handler = "file"
`, h.Name, h.MigrationPortMin, h.MigrationPortMax)
	if err := os.WriteFile(filepath.Join(etc, "libvirtd.conf"), []byte(libvirtd), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(etc, "qemu.conf"), []byte(qemu), 0o644)
}

func (h *Host) waitReady() error {
	deadline := time.Now().Add(hostStartTimeout)
	var last error
	for time.Now().Before(deadline) {
		_, exited := h.libvirtd()
		select {
		case <-exited:
			return fmt.Errorf("libvirtd exited during start-up")
		default:
		}
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", h.TCPPort), time.Second)
		if err == nil {
			_ = c.Close()
			conn, err := libvirt.NewConnect(h.URI)
			if err == nil {
				_, verr := conn.GetVersion()
				conn.Close()
				if verr == nil {
					return nil
				}
				err = verr
			}
			last = err
		} else {
			last = err
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("libvirtd not answering on %s after %s: %v", h.URI, hostStartTimeout, last)
}

func (h *Host) tail() string {
	b, _ := os.ReadFile(filepath.Join(h.Dir, "libvirtd.out"))
	l, _ := os.ReadFile(filepath.Join(h.Dir, "log", "libvirtd.log"))
	return lastLines(append(b, l...), 10)
}

// SerialLog is the path, outside the namespace, of a guest's console file
// on this host.
func (h *Host) SerialLog(domain string) string {
	return filepath.Join(h.Dir, "log", "vmha-serial", domain+".log")
}

// guestPIDFiles maps each guest's name to its QEMU pid file in the host's
// private /run, reached through libvirtd's /proc root.
func (h *Host) guestPIDFiles() map[string]string {
	cmd, _ := h.libvirtd()
	if cmd == nil || cmd.Process == nil {
		return nil
	}
	files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/root/run/libvirt/qemu/*.pid", cmd.Process.Pid))
	out := map[string]string{}
	for _, f := range files {
		// driver.pid there is libvirtd's own lock file, not a guest.
		if name := strings.TrimSuffix(filepath.Base(f), ".pid"); name != "driver" {
			out[name] = f
		}
	}
	return out
}

// RunningGuests lists the guests whose QEMU process is alive on this host,
// read from the processes themselves, not from libvirt or vmha: what a
// never-twice check must count.
func (h *Host) RunningGuests() []string {
	var names []string
	for name, f := range h.guestPIDFiles() {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 && isQEMU(pid) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

// QEMUPIDs lists the PIDs of this host's QEMU processes from their pid files
// in the host's private /run, reached through libvirtd's /proc root.
func (h *Host) QEMUPIDs() []int {
	cmd, _ := h.libvirtd()
	if cmd == nil || cmd.Process == nil {
		return nil
	}
	files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/root/run/libvirt/qemu/*.pid", cmd.Process.Pid))
	var pids []int
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// driver.pid there is libvirtd's own lock file, not a guest.
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 && isQEMU(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// Stop destroys every guest of the host, then stops libvirtd (SIGTERM, then
// SIGKILL after 10 s). QEMU outlives libvirtd by design, so guests are
// destroyed through libvirt first and any QEMU left (libvirtd already
// unresponsive) is killed by the PID from its pid file. Safe to call twice.
func (h *Host) Stop() error {
	h.stopOnce.Do(func() { h.stopErr = h.stop() })
	return h.stopErr
}

func (h *Host) stop() error {
	var errs []error
	pids := h.QEMUPIDs()
	cmd, exited := h.libvirtd()
	select {
	case <-exited:
	default:
		if conn, err := libvirt.NewConnect(h.URI); err == nil {
			if doms, err := conn.ListAllDomains(0); err == nil {
				for i := range doms {
					if active, _ := doms[i].IsActive(); active {
						if err := doms[i].Destroy(); err != nil {
							errs = append(errs, fmt.Errorf("destroy guest on %s: %w", h.Name, err))
						}
					}
					_ = doms[i].Free()
				}
			}
			conn.Close()
		}
	}
	for _, pid := range pids {
		if syscall.Kill(pid, 0) == nil && isQEMU(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	saveCapsCache(filepath.Join(h.Dir, "cache", "qemu", "capabilities"))
	if cmd != nil && cmd.Process != nil {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			errs = append(errs, fmt.Errorf("libvirtd of %s (pid %d) ignored SIGTERM for 10 s, killed", h.Name, cmd.Process.Pid))
		}
	}
	h.removeCgroup()
	return errors.Join(errs...)
}

// capsCacheDir keeps libvirt's probe of QEMU's capabilities between hosts.
// A libvirtd with an empty /var/cache/libvirt runs QEMU to probe them, which
// costs about 4 s of its start-up; libvirt revalidates a seeded file itself
// (QEMU and libvirtd binaries' times, kernel version) and re-probes when it
// is stale, so seeding is safe.
var capsCacheDir = filepath.Join(DefaultCacheDir, "qemu-capabilities")

func seedCapsCache(dst string) {
	files, _ := filepath.Glob(filepath.Join(capsCacheDir, "*.xml"))
	if len(files) == 0 {
		return
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return
	}
	for _, f := range files {
		_ = copyFile(f, filepath.Join(dst, filepath.Base(f)))
	}
}

// saveCapsCache keeps a host's probe for the next hosts (best effort; a
// missing cache only costs time).
func saveCapsCache(src string) {
	files, _ := filepath.Glob(filepath.Join(src, "*.xml"))
	if len(files) == 0 {
		return
	}
	if err := os.MkdirAll(capsCacheDir, 0o755); err != nil {
		return
	}
	for _, f := range files {
		dst := filepath.Join(capsCacheDir, filepath.Base(f))
		if !exists(dst) {
			_ = copyFile(f, dst)
		}
	}
}

// isQEMU guards against killing a recycled PID.
func isQEMU(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && bytes.Contains(b, []byte("qemu-system"))
}

func randomUUID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}

var portMu sync.Mutex
var portNext = 20000 + os.Getpid()%20000

// freePorts finds n consecutive TCP ports on 127.0.0.1 that are free now.
// The search starts at a PID-dependent base and moves on across calls, so
// hosts of one process and of parallel test processes do not pick the same
// range.
func freePorts(n int) (int, error) {
	portMu.Lock()
	defer portMu.Unlock()
	for tries := 0; tries < 2000; tries++ {
		base := portNext
		portNext += n
		if portNext+n > 60000 {
			portNext = 20000
		}
		ok := true
		var ls []net.Listener
		for p := base; p < base+n; p++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				ok = false
				break
			}
			ls = append(ls, l)
		}
		for _, l := range ls {
			l.Close()
		}
		if ok {
			return base, nil
		}
	}
	return 0, fmt.Errorf("no %d consecutive free TCP ports on 127.0.0.1", n)
}
