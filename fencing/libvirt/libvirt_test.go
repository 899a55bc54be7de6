package libvirt_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	lv "libvirt.org/go/libvirt"

	"github.com/vmha/vmha/fencing"
	fvirt "github.com/vmha/vmha/fencing/libvirt"
)

// test:///default is one in-process hypervisor shared by every connection
// of the test binary: the tests check our device's effect through a second,
// independent connection. Domain names are unique per test.
const defaultURI = "test:///default"

var seq atomic.Int64

func domainXML(name string) string {
	return fmt.Sprintf(`<domain type='test'><name>%s</name><memory unit='MiB'>128</memory><vcpu>1</vcpu><os><type>hvm</type></os></domain>`, name)
}

// observer is an independent connection to test:///default.
func observer(t *testing.T) *lv.Connect {
	t.Helper()
	c, err := lv.NewConnect(defaultURI)
	if err != nil {
		t.Fatalf("connect %s: %v", defaultURI, err)
	}
	t.Cleanup(func() { _, _ = c.Close() })
	return c
}

// runningDomain defines and starts a persistent domain with a unique name.
func runningDomain(t *testing.T, obs *lv.Connect, prefix string) string {
	t.Helper()
	name := fmt.Sprintf("%s-%d", prefix, seq.Add(1))
	dom, err := obs.DomainDefineXML(domainXML(name))
	if err != nil {
		t.Fatalf("define %s: %v", name, err)
	}
	defer dom.Free()
	if err := dom.Create(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		if d, err := obs.LookupDomainByName(name); err == nil {
			_ = d.Destroy()
			_ = d.Undefine()
			d.Free()
		}
	})
	return name
}

func state(t *testing.T, obs *lv.Connect, name string) lv.DomainState {
	t.Helper()
	dom, err := obs.LookupDomainByName(name)
	if err != nil {
		t.Fatalf("look up %s: %v", name, err)
	}
	defer dom.Free()
	s, _, err := dom.GetState()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newConn(t *testing.T, cfg fvirt.Config) *fvirt.Conn {
	t.Helper()
	c, err := fvirt.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func device(t *testing.T, c *fvirt.Conn, host string) *fvirt.Device {
	t.Helper()
	d, err := c.Device(host)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func opts() fencing.Options {
	return fencing.Options{Timeout: 5 * time.Second, CallTimeout: 2 * time.Second, PollInterval: 10 * time.Millisecond, Retries: 1, Backoff: 10 * time.Millisecond}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestFenceOnOffReboot(t *testing.T) {
	obs := observer(t)
	dom := runningDomain(t, obs, "vmha-h1")
	other := runningDomain(t, obs, "vmha-h2")
	c := newConn(t, fvirt.Config{URI: defaultURI, Domains: map[string]string{"h1": dom, "h2": other}})
	d := device(t, c, "h1")
	if want := "libvirt test:///default domain " + dom; d.Name() != want {
		t.Fatalf("Name %q, want %q", d.Name(), want)
	}
	if st, err := d.Status(ctxT(t)); err != nil || st != fencing.PowerOn {
		t.Fatalf("Status %q, %v", st, err)
	}
	res, err := fencing.Fence(ctxT(t), d, opts())
	if err != nil {
		t.Fatalf("Fence: %v", err)
	}
	if res.AlreadyOff || res.Attempts != 1 || res.State != fencing.PowerOff {
		t.Fatalf("Result %+v", res)
	}
	if s := state(t, obs, dom); s != lv.DOMAIN_SHUTOFF {
		t.Fatalf("domain state %d after fence, want shut off", s)
	}
	if s := state(t, obs, other); s != lv.DOMAIN_RUNNING {
		t.Fatalf("the other host's domain is in state %d: the map sent the fence to the wrong domain", s)
	}
	// A second fence finds it off and sends nothing.
	if res, err := fencing.Fence(ctxT(t), d, opts()); err != nil || !res.AlreadyOff {
		t.Fatalf("second fence %+v, %v", res, err)
	}
	// Destroying an off domain is success too (the off is idempotent).
	if err := d.PowerOff(ctxT(t)); err != nil {
		t.Fatalf("PowerOff of an off domain: %v", err)
	}
	if err := d.PowerOn(ctxT(t)); err != nil {
		t.Fatalf("PowerOn: %v", err)
	}
	if s := state(t, obs, dom); s != lv.DOMAIN_RUNNING {
		t.Fatalf("state %d after PowerOn", s)
	}
	if err := d.PowerOn(ctxT(t)); err != nil {
		t.Fatalf("PowerOn of a running domain: %v", err)
	}
	if err := d.Reboot(ctxT(t)); err != nil {
		t.Fatalf("Reboot: %v", err)
	}
	if s := state(t, obs, dom); s != lv.DOMAIN_RUNNING {
		t.Fatalf("state %d after Reboot", s)
	}
}

func TestTopologyRebootThroughLibvirt(t *testing.T) {
	obs := observer(t)
	dom := runningDomain(t, obs, "vmha-reboot")
	c := newConn(t, fvirt.Config{URI: defaultURI, Domains: map[string]string{"h1": dom}})
	topo := fencing.Topology{Host: "h1", Levels: []fencing.Level{{Devices: []fencing.Device{device(t, c, "h1")}}}}
	rep, err := topo.Run(ctxT(t), fencing.RunOptions{Action: fencing.ActionReboot, Fence: opts()})
	if err != nil || !rep.Fenced || !rep.PoweredOn {
		t.Fatalf("report %+v, %v", rep, err)
	}
	if s := state(t, obs, dom); s != lv.DOMAIN_RUNNING {
		t.Fatalf("state %d after reboot", s)
	}
}

func TestPausedDomainIsOn(t *testing.T) {
	obs := observer(t)
	dom := runningDomain(t, obs, "vmha-paused")
	d, err := obs.LookupDomainByName(dom)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Suspend(); err != nil {
		t.Fatal(err)
	}
	d.Free()
	c := newConn(t, fvirt.Config{URI: defaultURI})
	dev := device(t, c, dom) // no map: the host is its own domain
	// A paused guest can be resumed and write again: it is not fenced.
	if st, err := dev.Status(ctxT(t)); err != nil || st != fencing.PowerOn {
		t.Fatalf("Status of a paused domain %q, %v; want on", st, err)
	}
	if _, err := fencing.Fence(ctxT(t), dev, opts()); err != nil {
		t.Fatal(err)
	}
	if s := state(t, obs, dom); s != lv.DOMAIN_SHUTOFF {
		t.Fatalf("state %d", s)
	}
}

func TestTransientDomainVanishes(t *testing.T) {
	obs := observer(t)
	name := fmt.Sprintf("vmha-transient-%d", seq.Add(1))
	dom, err := obs.DomainCreateXML(domainXML(name), 0)
	if err != nil {
		t.Fatal(err)
	}
	dom.Free()
	c := newConn(t, fvirt.Config{URI: defaultURI, Domains: map[string]string{"h9": name}})
	d := device(t, c, "h9")
	res, err := fencing.Fence(ctxT(t), d, opts())
	if err != nil {
		t.Fatalf("Fence of a transient domain: %v", err)
	}
	if res.State != fencing.PowerOff {
		t.Fatalf("Result %+v", res)
	}
	if _, err := obs.LookupDomainByName(name); err == nil {
		t.Fatal("transient domain still exists")
	}
	if err := d.PowerOn(ctxT(t)); !errors.Is(err, fvirt.ErrNoDomain) {
		t.Fatalf("PowerOn of a destroyed transient domain: %v", err)
	}
}

func TestUnknownDomainIsNotOff(t *testing.T) {
	c := newConn(t, fvirt.Config{URI: defaultURI, Domains: map[string]string{"h1": "no-such-domain-x"}})
	d := device(t, c, "h1")
	st, err := d.Status(ctxT(t))
	if !errors.Is(err, fvirt.ErrNoDomain) || st != fencing.PowerUnknown {
		t.Fatalf("Status %q, %v; want ErrNoDomain", st, err)
	}
	if !strings.Contains(err.Error(), "domain no-such-domain-x (host h1) on test:///default") {
		t.Fatalf("error %q does not name the domain, host and URI", err)
	}
	if _, err := fencing.Fence(ctxT(t), d, opts()); err == nil {
		t.Fatal("Fence of a missing domain succeeded")
	}
}

func TestPrivateNodeFile(t *testing.T) {
	// test:///PATH gives this connection its own hypervisor, with the
	// domains of the file: two hosts of one lab on one management host.
	dir := t.TempDir()
	node := `<node>
  <cpu><nodes>1</nodes><sockets>1</sockets><cores>2</cores><threads>1</threads><mhz>2000</mhz><model>x86_64</model></cpu>
  <memory>8388608</memory>
  <domain type='test'><name>lab-node-a</name><memory>1048576</memory><vcpu>1</vcpu><os><type>hvm</type></os></domain>
  <domain type='test'><name>lab-node-b</name><memory>1048576</memory><vcpu>1</vcpu><os><type>hvm</type></os></domain>
</node>`
	p := filepath.Join(dir, "node.xml")
	if err := os.WriteFile(p, []byte(node), 0o644); err != nil {
		t.Fatal(err)
	}
	hm, err := fvirt.ParseHostMap("a:lab-node-a;b:lab-node-b")
	if err != nil {
		t.Fatal(err)
	}
	c := newConn(t, fvirt.Config{URI: "test://" + p, Domains: hm})
	a, b := device(t, c, "a"), device(t, c, "b")
	for _, d := range []*fvirt.Device{a, b} {
		if st, err := d.Status(ctxT(t)); err != nil || st != fencing.PowerOn {
			t.Fatalf("%s: %q, %v", d.Name(), st, err)
		}
	}
	if _, err := fencing.Fence(ctxT(t), a, opts()); err != nil {
		t.Fatal(err)
	}
	// The connection is kept: the private state shows a off and b on.
	if st, err := a.Status(ctxT(t)); err != nil || st != fencing.PowerOff {
		t.Fatalf("a: %q, %v", st, err)
	}
	if st, err := b.Status(ctxT(t)); err != nil || st != fencing.PowerOn {
		t.Fatalf("b: %q, %v", st, err)
	}
}

func TestConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		cfg  fvirt.Config
		want string
	}{
		{fvirt.Config{}, "libvirt fence: uri is empty"},
		{fvirt.Config{URI: "mgmt-host"}, `uri "mgmt-host" is not a libvirt URI`},
		{fvirt.Config{URI: "qemu+tcp://root:Hunter2-x@mgmt/system"}, "holds a password"},
		{fvirt.Config{URI: defaultURI, Timeout: -time.Second}, "timeout -1s is negative"},
		{fvirt.Config{URI: defaultURI, Domains: map[string]string{"h1": " "}}, "host h1 maps to an empty domain name"},
		{fvirt.Config{URI: defaultURI, Domains: map[string]string{"": "d"}}, "empty host name"},
	} {
		_, err := fvirt.New(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%v) = %v, want %q", tc.cfg.URI, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "Hunter2") {
			t.Errorf("error leaks the URI password: %v", err)
		}
	}
	c := newConn(t, fvirt.Config{URI: defaultURI})
	if _, err := c.Device(""); err == nil {
		t.Error("Device(\"\") succeeded")
	}
}

func TestParseHostMap(t *testing.T) {
	m, err := fvirt.ParseHostMap("h1:vm-one, h2=vm-two;h3\th4:x")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(m) != "map[h1:vm-one h2:vm-two h3:h3 h4:x]" {
		t.Fatalf("map %v", m)
	}
	for _, bad := range []string{"h1:", ":d", "h1:a;h1:b"} {
		if _, err := fvirt.ParseHostMap(bad); err == nil {
			t.Errorf("ParseHostMap(%q) succeeded", bad)
		}
	}
}

func TestUnreachableHypervisor(t *testing.T) {
	// Nothing listens on this port: the connect fails at once.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c := newConn(t, fvirt.Config{URI: "qemu+tcp://" + addr + "/system", Timeout: 3 * time.Second})
	_, err = device(t, c, "h1").Status(ctxT(t))
	if err == nil || !strings.Contains(err.Error(), "connect to qemu+tcp://"+addr+"/system") {
		t.Fatalf("Status: %v", err)
	}
	t.Logf("error: %v", err)
}

func TestSilentHypervisor(t *testing.T) {
	// Accepts TCP connections and never answers: libvirt's RPC would wait
	// forever; the device gives up at its timeout.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-accepted
		for _, c := range conns {
			_ = c.Close() // lets the abandoned libvirt call fail and return
		}
	})
	c := newConn(t, fvirt.Config{URI: "qemu+tcp://" + l.Addr().String() + "/system", Timeout: 300 * time.Millisecond})
	start := time.Now()
	_, err = device(t, c, "h1").Status(ctxT(t))
	took := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no answer within 300ms") {
		t.Fatalf("Status: %v", err)
	}
	if took > 3*time.Second {
		t.Fatalf("Status took %s with a 300ms timeout", took)
	}
}

func BenchmarkFenceLibvirtTest(b *testing.B) {
	obs, err := lv.NewConnect(defaultURI)
	if err != nil {
		b.Fatal(err)
	}
	defer obs.Close()
	name := fmt.Sprintf("vmha-bench-%d", seq.Add(1))
	dom, err := obs.DomainDefineXML(domainXML(name))
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = dom.Destroy(); _ = dom.Undefine(); dom.Free() }()
	c, err := fvirt.New(fvirt.Config{URI: defaultURI})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	d, _ := c.Device(name)
	ctx := context.Background()
	o := opts()
	for b.Loop() {
		b.StopTimer()
		if err := dom.Create(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		res, err := fencing.Fence(ctx, d, o)
		if err != nil || res.AlreadyOff {
			b.Fatalf("%+v, %v", res, err)
		}
	}
}
