// Package labcluster runs a real vmha cluster on this machine: several vmhad
// processes on loopback, each with its own libvirt test-driver hypervisor
// (test:///PATH/hostN.xml, so every host has private state) and its own BMC
// (OpenIPMI's ipmi_sim over the real IPMI LAN protocol, whose power-off kills
// that host's vmhad). The demo and the cluster tests share it.
package labcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/internal/testlab/ipmisim"
	"github.com/vmha/vmha/internal/testlab/testenv"
	"github.com/vmha/vmha/pki"
)

// Options describe the cluster to start.
type Options struct {
	// Dir holds every file of the cluster (configs, data, logs, sockets).
	Dir string
	// Hosts is the number of hosts (default 3).
	Hosts int
	// VMHAD is the path of the vmhad binary.
	VMHAD string
	// HostMemoryMiB is each simulated host's memory (default 8192).
	HostMemoryMiB int
	// NoBMC starts hosts without BMCs (nothing can fence them).
	NoBMC bool
	// BMCSensors gives every host's BMC sensors, an event log and an
	// emulator console (ipmisim.Options.Sensors), for health.ipmi.
	BMCSensors bool
	// Extra is appended to every host's vmhad.yaml.
	Extra string
	// HostExtra is appended to the named host's vmhad.yaml only.
	HostExtra map[string]string
	// GossipKey, when set, encrypts gossip: every host gets it in its
	// gossip.encrypt_key_file.
	GossipKey string
	// Hypervisors gives host i a real libvirtd (its URI, e.g. from
	// internal/virtlab) instead of a test:/// driver; live migration goes
	// between these. Hosts past the list keep the test driver.
	Hypervisors []string
	// PowerOff gives a host's BMC (and PDU) a shell command to run on
	// power-off after it kills the host's vmhad: with a real libvirtd
	// (Hypervisors), the one that kills its libvirtd and QEMU guests
	// (virtlab.Host.PowerCutCommand), so that a fence is a power cut.
	PowerOff map[string]string
	// PowerOn is what a host needs back before its vmhad starts again
	// after a power cut: with virtlab hosts, their libvirtd
	// (virtlab.Host.PowerOn), which the power cut killed too.
	PowerOn map[string]func() error
	// TLS runs raft and the peer API over mutual TLS: a cluster CA in
	// Dir/ca and a certificate per host (CN = host name).
	TLS bool
	// Witness makes the last host a witness ("witness"): a vote only, with
	// no hypervisor and no BMC.
	Witness bool
	// PDU gives every host a second fence device at level 2: another
	// ipmi_sim (a stand-in for a switched PDU outlet, it also kills the
	// host's vmhad) driven through the real fence_ipmilan agent.
	PDU bool
	// NodeDomains are domains the named host's test-driver libvirt runs
	// from the start, before vmha knows them (<domain> elements of its
	// node file): for adopting them (vmha vm add --from-libvirt).
	NodeDomains map[string]string
	// Users runs each host's vmhad as a user of its own (uid 41001, 41002,
	// ...), so that Partition can cut hosts apart with iptables' owner
	// match on loopback.
	Users bool
	// Web serves the web console on every host (Host.WebAddr, HTTPS with
	// a self-signed certificate unless TLS is set).
	Web bool
}

// Cluster is a running lab cluster.
type Cluster struct {
	opts  Options
	Hosts []*Host
	// chain is the iptables chain of Partition, once made.
	chain string
}

// Host is one simulated hypervisor host.
type Host struct {
	Name     string
	Dir      string
	Config   string
	Socket   string
	Log      string
	PIDFile  string
	APIAddr  string
	SerfAddr string
	// MetricsAddr serves the host's Prometheus metrics.
	MetricsAddr string
	// WebAddr serves the host's web console (Options.Web).
	WebAddr string
	BMC     *ipmisim.Sim
	// Witness is set on the witness host (Options.Witness).
	Witness bool
	// PDU is the level-2 device (Options.PDU), or nil.
	PDU *ipmisim.Sim
	// UID is the user vmhad runs as (0: the caller's).
	UID int
	// ports are the host's serf, raft and API ports.
	ports []int

	bin string
	// powerOn runs before vmhad starts (Options.PowerOn).
	powerOn func() error
	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
}

// BMCPassword is the demo BMCs' password (each host's password file holds
// it; it never appears in vmha's output).
const BMCPassword = "lab-bmc-secret"

// Start writes the configs, starts the BMCs and the vmhad processes.
func Start(o Options) (*Cluster, error) {
	if o.Hosts == 0 {
		o.Hosts = 3
	}
	if o.HostMemoryMiB == 0 {
		o.HostMemoryMiB = 8192
	}
	if o.VMHAD == "" {
		return nil, errors.New("labcluster: VMHAD binary path is empty")
	}
	c := &Cluster{opts: o}
	if o.Users {
		if err := traversable(o.Dir); err != nil {
			return nil, err
		}
	}
	// Per host: serf, raft, API, metrics and the web console.
	const perHost = 5
	ports, err := testenv.FreePorts(o.Hosts * perHost)
	if err != nil {
		return nil, err
	}
	var joins []string
	for i := 0; i < o.Hosts; i++ {
		joins = append(joins, fmt.Sprintf("127.0.0.1:%d", ports[i*perHost]))
	}
	for i := 0; i < o.Hosts; i++ {
		h := &Host{Name: fmt.Sprintf("host%d", i+1), bin: o.VMHAD}
		if o.Witness && i == o.Hosts-1 {
			h.Name, h.Witness = "witness", true
		}
		h.powerOn = o.PowerOn[h.Name]
		h.Dir = filepath.Join(o.Dir, h.Name)
		h.Config = filepath.Join(h.Dir, "vmhad.yaml")
		h.Socket = filepath.Join(h.Dir, "vmhad.sock")
		h.Log = filepath.Join(h.Dir, "vmhad.log")
		h.PIDFile = filepath.Join(h.Dir, "vmhad.pid")
		h.SerfAddr = joins[i]
		h.APIAddr = fmt.Sprintf("127.0.0.1:%d", ports[i*perHost+2])
		h.MetricsAddr = fmt.Sprintf("127.0.0.1:%d", ports[i*perHost+3])
		if o.Web {
			h.WebAddr = fmt.Sprintf("127.0.0.1:%d", ports[i*perHost+4])
		}
		h.ports = ports[i*perHost : i*perHost+3]
		if o.Users {
			h.UID = 41001 + i
		}
		if err := os.MkdirAll(h.Dir, 0o700); err != nil {
			return nil, err
		}
		c.Hosts = append(c.Hosts, h)
		if err := c.writeHostFiles(h, ports[i*perHost:i*perHost+4], joins); err != nil {
			c.Close()
			return nil, err
		}
	}
	for _, h := range c.Hosts {
		if err := h.Start(); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

func (c *Cluster) writeHostFiles(h *Host, ports []int, joins []string) error {
	node := fmt.Sprintf(`<node>
  <cpu><nodes>1</nodes><sockets>1</sockets><cores>8</cores><threads>1</threads><active>8</active><mhz>2000</mhz><model>x86_64</model></cpu>
  <memory>%d</memory>
%s</node>
`, c.opts.HostMemoryMiB*1024, c.opts.NodeDomains[h.Name])
	nodeXML := filepath.Join(h.Dir, "node.xml")
	if err := os.WriteFile(nodeXML, []byte(node), 0o600); err != nil {
		return err
	}
	bmc := ""
	if h.Witness {
		bmc = "witness: true\n"
	} else if !c.opts.NoBMC {
		sim, err := ipmisim.Start(ipmisim.Options{
			Dir: filepath.Join(h.Dir, "bmc"), User: "admin", Password: BMCPassword, PIDFile: h.PIDFile,
			PowerOffCommand: c.opts.PowerOff[h.Name], Sensors: c.opts.BMCSensors,
		})
		if err != nil {
			return fmt.Errorf("start BMC of %s: %w", h.Name, err)
		}
		h.BMC = sim
		pw := filepath.Join(h.Dir, "bmc.password")
		if err := os.WriteFile(pw, []byte(BMCPassword+"\n"), 0o600); err != nil {
			return err
		}
		bmc = fmt.Sprintf(`bmc:
  address: 127.0.0.1
  port: %d
  user: admin
  password_file: %s
`, sim.Port(), pw)
	}
	if c.opts.PDU && !h.Witness {
		pdu, err := ipmisim.Start(ipmisim.Options{
			Dir: filepath.Join(h.Dir, "pdu"), User: "admin", Password: BMCPassword, PIDFile: h.PIDFile,
			PowerOffCommand: c.opts.PowerOff[h.Name],
		})
		if err != nil {
			return fmt.Errorf("start PDU of %s: %w", h.Name, err)
		}
		h.PDU = pdu
		bmc += fmt.Sprintf(`fence:
  devices:
    - name: pdu
      type: agent
      params: {agent: fence_ipmilan, ip: 127.0.0.1, ipport: "%d", username: admin, lanplus: "1", cipher: "3", power_wait: "0"}
      password_file: %s
  levels: [[bmc], [pdu]]
`, pdu.Port(), filepath.Join(h.Dir, "bmc.password"))
	}
	if c.opts.TLS {
		caDir := c.CADir()
		if _, err := os.Stat(filepath.Join(caDir, pki.CACert)); err != nil {
			if err := pki.InitCA(caDir, "lab"); err != nil {
				return err
			}
		}
		crt, key, err := pki.Issue(caDir, h.Name, pki.RoleHost, []net.IP{net.ParseIP("127.0.0.1")}, nil)
		if err != nil {
			return err
		}
		hc, hk := filepath.Join(h.Dir, "tls.crt"), filepath.Join(h.Dir, "tls.key")
		if err := os.Rename(crt, hc); err != nil {
			return err
		}
		if err := os.Rename(key, hk); err != nil {
			return err
		}
		ca, err := os.ReadFile(filepath.Join(caDir, pki.CACert))
		if err != nil {
			return err
		}
		hca := filepath.Join(h.Dir, "ca.crt")
		if err := os.WriteFile(hca, ca, 0o644); err != nil {
			return err
		}
		bmc += fmt.Sprintf("tls: {ca_file: %s, cert_file: %s, key_file: %s}\n", hca, hc, hk)
	}
	if c.opts.GossipKey != "" {
		kf := filepath.Join(h.Dir, "gossip.key")
		if err := os.WriteFile(kf, []byte(c.opts.GossipKey+"\n"), 0o600); err != nil {
			return err
		}
		bmc += "gossip:\n  encrypt_key_file: " + kf + "\n"
	}
	if h.WebAddr != "" {
		bmc += "web: {addr: " + h.WebAddr + "}\n"
	}
	cfg := fmt.Sprintf(`node_name: %s
bind_addr: 127.0.0.1
ports: {serf: %d, raft: %d, api: %d}
join: [%s]
bootstrap_expect: %d
data_dir: %s
socket: %s
hypervisor_uri: %s
metrics_addr: 127.0.0.1:%d
%sfencing:
  timeout: 10s
  call_timeout: 2s
  poll_interval: 200ms
  retry_interval: 2s
  check_interval: 2s
agent:
  interval: 1s
  stop_timeout: 5s
log:
  level: info
%s`, h.Name, ports[0], ports[1], ports[2], strings.Join(joins, ", "), len(joins), filepath.Join(h.Dir, "data"), h.Socket, c.hypervisorURI(h, nodeXML), ports[3], bmc, c.opts.Extra+c.opts.HostExtra[h.Name])
	return os.WriteFile(h.Config, []byte(cfg), 0o600)
}

// Start (re)starts the host's vmhad. A host that starts has power: its BMC
// and PDU report on again (after a fence they said off, and a fence that
// found the power already off would not cut it again).
func (h *Host) Start() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	bin := h.bin
	if h.cmd != nil {
		return fmt.Errorf("%s already running", h.Name)
	}
	for _, s := range []*ipmisim.Sim{h.BMC, h.PDU} {
		if s != nil {
			if err := s.SetPowerState(true); err != nil {
				return err
			}
		}
	}
	if h.powerOn != nil {
		if err := h.powerOn(); err != nil {
			return err
		}
	}
	logf, err := os.OpenFile(h.Log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, "--config", h.Config)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Die with the harness: a crashed test must not leave daemons behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if h.UID != 0 {
		if err := chownTree(h.Dir, h.UID); err != nil {
			logf.Close()
			return err
		}
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(h.UID), Gid: uint32(h.UID)}
		// libvirt keeps per-user files under HOME and XDG_RUNTIME_DIR.
		cmd.Env = append(os.Environ(), "HOME="+h.Dir, "XDG_RUNTIME_DIR="+h.Dir, "XDG_CONFIG_HOME="+h.Dir, "XDG_CACHE_HOME="+h.Dir)
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start vmhad for %s: %w", h.Name, err)
	}
	if err := os.WriteFile(h.PIDFile, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o600); err != nil {
		_ = cmd.Process.Kill()
		logf.Close()
		return err
	}
	h.cmd = cmd
	h.done = make(chan struct{})
	done := h.done
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}()
	return nil
}

// PID is the running vmhad's process id, or 0.
func (h *Host) PID() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cmd == nil {
		return 0
	}
	return h.cmd.Process.Pid
}

// Running reports whether the vmhad process is alive.
func (h *Host) Running() bool {
	h.mu.Lock()
	done := h.done
	h.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// Kill sends SIGKILL (a host crash: its in-process hypervisor dies with it)
// and waits for the process to end.
func (h *Host) Kill() { h.signalAndWait(syscall.SIGKILL, 0) }

// Stop sends SIGTERM (a clean daemon stop) and waits, killing after 15 s.
func (h *Host) Stop() { h.signalAndWait(syscall.SIGTERM, 15*time.Second) }

func (h *Host) signalAndWait(sig syscall.Signal, grace time.Duration) {
	h.mu.Lock()
	cmd, done := h.cmd, h.done
	h.cmd = nil
	h.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	if grace > 0 {
		select {
		case <-done:
			return
		case <-time.After(grace):
			_ = cmd.Process.Kill()
		}
	}
	<-done
}

// Exited waits until the process ended by itself (e.g. the BMC powered the
// host off) and clears it so that Start can run it again.
func (h *Host) Exited(timeout time.Duration) bool {
	h.mu.Lock()
	done := h.done
	h.mu.Unlock()
	if done == nil {
		return true
	}
	select {
	case <-done:
		h.mu.Lock()
		h.cmd = nil
		h.mu.Unlock()
		return true
	case <-time.After(timeout):
		return false
	}
}

// hypervisorURI is host h's libvirt: a real libvirtd from
// Options.Hypervisors, or its own test driver. A real one also takes live
// migrations (the lab's migration stream on loopback).
func (c *Cluster) hypervisorURI(h *Host, nodeXML string) string {
	for i, hh := range c.Hosts {
		if hh == h && i < len(c.opts.Hypervisors) && c.opts.Hypervisors[i] != "" {
			u := c.opts.Hypervisors[i]
			return fmt.Sprintf("%s\nmigration: {libvirt_uri: %q, address: \"tcp://127.0.0.1\", timeout: 2m}", u, u)
		}
	}
	return "test://" + nodeXML
}

// CADir is where a TLS lab cluster keeps its CA (Options.TLS).
func (c *Cluster) CADir() string { return filepath.Join(c.opts.Dir, "ca") }

// Metrics fetches the host's Prometheus metrics text.
func (h *Host) Metrics() (string, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + h.MetricsAddr + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET /metrics on %s: HTTP %d", h.Name, resp.StatusCode)
	}
	return string(b), nil
}

// Client is an API client on the host's unix socket.
func (h *Host) Client() *api.Client { return api.NewUnixClient(h.Socket, 5*time.Second) }

// Status fetches `vmha status` through this host.
func (h *Host) Status(ctx context.Context) (*api.Status, error) { return h.Client().Status(ctx) }

// Close stops every vmhad and BMC the cluster started.
func (c *Cluster) Close() {
	c.removePartition()
	for _, h := range c.Hosts {
		h.Kill()
		if h.BMC != nil {
			_ = h.BMC.Stop()
		}
		if h.PDU != nil {
			_ = h.PDU.Stop()
		}
	}
}

// Host returns a host by name, or nil.
func (c *Cluster) Host(name string) *Host {
	for _, h := range c.Hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// Alive returns the hosts whose vmhad runs.
func (c *Cluster) Alive() []*Host {
	var out []*Host
	for _, h := range c.Hosts {
		if h.Running() {
			out = append(out, h)
		}
	}
	return out
}

// Status asks the first running host that answers.
func (c *Cluster) Status(ctx context.Context) (*api.Status, error) {
	last := errors.New("no host is running")
	for _, h := range c.Alive() {
		s, err := h.Status(ctx)
		if err == nil {
			return s, nil
		}
		last = err
	}
	return nil, last
}

// WaitFor polls the status every 50 ms until cond holds or the timeout ends.
func (c *Cluster) WaitFor(ctx context.Context, timeout time.Duration, what string, cond func(*api.Status) bool) (*api.Status, error) {
	return waitStatus(ctx, c.Status, timeout, what, cond)
}

// WaitForOn is WaitFor asking one host only: during a partition, the side
// a test watches.
func (c *Cluster) WaitForOn(ctx context.Context, h *Host, timeout time.Duration, what string, cond func(*api.Status) bool) (*api.Status, error) {
	return waitStatus(ctx, h.Status, timeout, what, cond)
}

func waitStatus(ctx context.Context, status func(context.Context) (*api.Status, error), timeout time.Duration, what string, cond func(*api.Status) bool) (*api.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last *api.Status
	var lastErr error
	for {
		s, err := status(ctx)
		if err == nil {
			last = s
			if cond(s) {
				return s, nil
			}
		} else {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			if last == nil {
				return nil, fmt.Errorf("timed out after %v waiting for %s: %v", timeout, what, lastErr)
			}
			return last, fmt.Errorf("timed out after %v waiting for %s", timeout, what)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// chownTree gives a host's directory to its user, except the BMC's files,
// which the (root) simulator keeps.
func chownTree(dir string, uid int) error {
	return filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if fi.IsDir() && (fi.Name() == "bmc" || fi.Name() == "pdu") {
			return filepath.SkipDir
		}
		return os.Lchown(p, uid, uid)
	})
}

// traversable lets other users pass through dir and every parent, so that
// per-host users reach their own directories below private temporary
// directories (only search permission is added, never read).
func traversable(dir string) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for d := dir; d != "/"; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o001 != 0 {
			continue
		}
		if err := os.Chmod(d, fi.Mode().Perm()|0o011); err != nil {
			return err
		}
	}
	return nil
}
