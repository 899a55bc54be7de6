package hypervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"libvirt.org/go/libvirt"

	"github.com/vmha/vmha/internal/testlab/testenv"
	"github.com/vmha/vmha/model"
)

// eventWait bounds every wait for an event. The test driver dispatches on the
// next event loop iteration, so this only matters when something is broken.
const eventWait = 5 * time.Second

func domainXML(name string, memMiB int) string {
	return fmt.Sprintf(`<domain type='test'><name>%s</name><memory unit='MiB'>%d</memory><vcpu>1</vcpu><os><type>hvm</type></os></domain>`, name, memMiB)
}

// testLogger logs to stderr under -v only. Not t.Log: the event loop
// goroutine outlives each test and logging to a finished test panics.
func testLogger() zerolog.Logger {
	if testing.Verbose() {
		return zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr}).Level(zerolog.DebugLevel).With().Timestamp().Logger()
	}
	return zerolog.Nop()
}

// hostURI writes a test-driver node file into the test's temp dir and returns
// its URI. Each file gives the connection its own private simulated host.
func hostURI(t *testing.T, memKiB uint64, cpus int) string {
	t.Helper()
	node := fmt.Sprintf(`<node>
  <cpu><nodes>1</nodes><sockets>1</sockets><cores>%d</cores><threads>1</threads><active>%d</active><mhz>2000</mhz><model>x86_64</model></cpu>
  <memory>%d</memory>
</node>
`, cpus, cpus, memKiB)
	path := filepath.Join(t.TempDir(), "host.xml")
	if err := os.WriteFile(path, []byte(node), 0o644); err != nil {
		t.Fatal(err)
	}
	return "test://" + path // path is absolute, so this is test:///...
}

// openHost connects to a fresh simulated host (8 GiB, 4 CPUs unless the
// caller passes its own URI) and closes it at the end of the test.
func openHost(t *testing.T, uri string) *Libvirt {
	t.Helper()
	if uri == "" {
		uri = hostURI(t, 8*1024*1024, 4)
	}
	l, err := OpenLibvirt(uri, testLogger())
	if err != nil {
		// Tell "libvirt is not usable here" from "our node file or code is
		// wrong": the built-in default test host needs nothing but libvirt.
		if c, derr := libvirt.NewConnect("test:///default"); derr != nil {
			testenv.Missing(t, "libvirt test driver cannot be opened: "+derr.Error())
		} else {
			c.Close()
		}
		t.Fatalf("OpenLibvirt(%s): %v", uri, err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return l
}

func mustDefine(t *testing.T, l *Libvirt, name string) {
	t.Helper()
	got, err := l.Define(context.Background(), domainXML(name, 512))
	if err != nil {
		t.Fatalf("Define(%s): %v", name, err)
	}
	if got != name {
		t.Fatalf("Define returned name %q, want %q", got, name)
	}
}

func mustStart(t *testing.T, l *Libvirt, name string) {
	t.Helper()
	if err := l.Start(context.Background(), name); err != nil {
		t.Fatalf("Start(%s): %v", name, err)
	}
}

// domainByName returns the listed domain, or ok=false if it is not listed.
func domainByName(t *testing.T, l *Libvirt, name string) (Domain, bool) {
	t.Helper()
	doms, err := l.List(context.Background())
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	for _, d := range doms {
		if d.Name == name {
			return d, true
		}
	}
	return Domain{}, false
}

func stateOf(t *testing.T, l *Libvirt, name string) State {
	t.Helper()
	d, ok := domainByName(t, l, name)
	if !ok {
		t.Fatalf("domain %s not listed", name)
	}
	return d.State
}

func TestDefineStartList(t *testing.T) {
	l := openHost(t, "")
	mustDefine(t, l, "vm1")
	if got := stateOf(t, l, "vm1"); got != StateShutoff {
		t.Fatalf("state after define = %s, want %s", got, StateShutoff)
	}
	mustStart(t, l, "vm1")

	doms, err := l.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(doms) != 1 {
		t.Fatalf("List = %+v, want exactly vm1", doms)
	}
	d := doms[0]
	if d.Name != "vm1" || d.State != StateRunning || d.MemoryMiB != 512 || d.VCPUs != 1 {
		t.Errorf("List()[0] = %+v, want vm1 running 512 MiB 1 vCPU", d)
	}
	if len(d.UUID) != 36 {
		t.Errorf("UUID = %q, want a 36-character UUID string", d.UUID)
	}
}

func TestStart(t *testing.T) {
	l := openHost(t, "")
	mustDefine(t, l, "vm1")

	t.Run("twice is fine", func(t *testing.T) {
		mustStart(t, l, "vm1")
		mustStart(t, l, "vm1")
		if got := stateOf(t, l, "vm1"); got != StateRunning {
			t.Fatalf("state = %s, want running", got)
		}
	})
	t.Run("unknown domain is ErrNotFound", func(t *testing.T) {
		err := l.Start(context.Background(), "nope")
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("Start(nope) = %v, want ErrNotFound", err)
		}
		t.Logf("error: %v", err)
		if !strings.Contains(err.Error(), `"nope"`) {
			t.Errorf("error %q does not name the domain", err)
		}
		if !errors.Is(err, libvirt.ERR_NO_DOMAIN) {
			t.Errorf("error %q lost libvirt's code", err)
		}
	})
	t.Run("cancelled context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := l.Start(ctx, "vm1"); !errors.Is(err, context.Canceled) {
			t.Fatalf("Start with cancelled ctx = %v, want context.Canceled", err)
		}
	})
}

func TestStop(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, l *Libvirt) // leaves domain "vm1" in the state to stop from
		stop    string                         // domain to stop
		listed  bool                           // whether vm1 should still be listed (shut off)
	}{
		{
			name:    "running stops gracefully",
			prepare: func(t *testing.T, l *Libvirt) { mustDefine(t, l, "vm1"); mustStart(t, l, "vm1") },
			stop:    "vm1", listed: true,
		},
		{
			name: "paused is stopped",
			prepare: func(t *testing.T, l *Libvirt) {
				mustDefine(t, l, "vm1")
				mustStart(t, l, "vm1")
				dom, err := l.conn.LookupDomainByName("vm1")
				if err != nil {
					t.Fatal(err)
				}
				defer dom.Free()
				if err := dom.Suspend(); err != nil {
					t.Fatal(err)
				}
				if got := stateOf(t, l, "vm1"); got != StatePaused {
					t.Fatalf("state after suspend = %s, want paused", got)
				}
			},
			stop: "vm1", listed: true,
		},
		{
			name:    "already stopped is nil",
			prepare: func(t *testing.T, l *Libvirt) { mustDefine(t, l, "vm1") },
			stop:    "vm1", listed: true,
		},
		{
			name:    "unknown domain is nil",
			prepare: func(t *testing.T, l *Libvirt) {},
			stop:    "nope",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := openHost(t, "")
			tt.prepare(t, l)
			if err := l.Stop(context.Background(), tt.stop, 5*time.Second); err != nil {
				t.Fatalf("Stop(%s) = %v", tt.stop, err)
			}
			d, ok := domainByName(t, l, "vm1")
			if ok != tt.listed {
				t.Fatalf("vm1 listed = %v, want %v", ok, tt.listed)
			}
			if ok && d.State != StateShutoff {
				t.Fatalf("state after Stop = %s, want shutoff", d.State)
			}
			// Stopping again is always fine.
			if err := l.Stop(context.Background(), tt.stop, time.Second); err != nil {
				t.Fatalf("second Stop(%s) = %v", tt.stop, err)
			}
		})
	}
}

func TestUndefine(t *testing.T) {
	l := openHost(t, "")
	mustDefine(t, l, "vm1")
	mustDefine(t, l, "vm2")
	if err := l.Undefine(context.Background(), "vm1"); err != nil {
		t.Fatalf("Undefine: %v", err)
	}
	if _, ok := domainByName(t, l, "vm1"); ok {
		t.Fatal("vm1 still listed after Undefine")
	}
	if _, ok := domainByName(t, l, "vm2"); !ok {
		t.Fatal("Undefine(vm1) removed vm2")
	}
	if err := l.Undefine(context.Background(), "vm1"); err != nil {
		t.Fatalf("Undefine of a missing domain = %v, want nil", err)
	}
}

func TestDefineErrors(t *testing.T) {
	l := openHost(t, "")
	tests := []struct {
		name    string
		xml     string
		want    []string // substrings the error must contain
		libvirt bool     // libvirt refused it (vmha accepted it)
	}{
		{
			name: "truncated XML",
			xml:  `<domain type='test'><name>vm1</name>`,
			want: []string{`"vm1"`, l.uri, "does not parse"},
		},
		{
			name: "not XML",
			xml:  `this is not xml`,
			want: []string{l.uri, "does not parse"},
		},
		{
			name: "no name",
			xml:  `<domain type='test'><memory unit='MiB'>512</memory></domain>`,
			want: []string{l.uri, "<name>"},
		},
		{
			name: "two memories",
			xml:  `<domain type='test'><name>vm1</name><memory unit='GiB'>7</memory><memory unit='MiB'>64</memory><os><type>hvm</type></os></domain>`,
			want: []string{`"vm1"`, l.uri, "<memory> appears 2 times; libvirt reads only the first"},
		},
		{
			name:    "libvirt refuses",
			xml:     `<domain type='test'><name>vm1</name><memory unit='MiB'>512</memory></domain>`,
			want:    []string{`"vm1"`, l.uri, "os <type>"},
			libvirt: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name, err := l.Define(context.Background(), tt.xml)
			if err == nil {
				t.Fatalf("Define succeeded with name %q", name)
			}
			t.Logf("error: %v", err)
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			var le libvirt.Error
			if got := errors.As(err, &le); got != tt.libvirt {
				t.Errorf("error %q wraps a libvirt.Error: %v, want %v", err, got, tt.libvirt)
			}
		})
	}
	doms, err := l.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(doms) != 0 {
		t.Fatalf("failed defines left domains: %+v", doms)
	}
}

// TestDefineChecksWhatLibvirtDefined makes vmha's reading of the XML
// differ from libvirt's (a parser that lies) and checks that Define
// notices, says both values, and undefines a domain it created but not
// one that existed before.
func TestDefineChecksWhatLibvirtDefined(t *testing.T) {
	const uuidA = "6b1f3a8e-1c52-4d4b-9a43-2b1e5c7d9f01"
	const uuidB = "6b1f3a8e-1c52-4d4b-9a43-2b1e5c7d9f02"
	withUUID := func(name, uuid string) string {
		return fmt.Sprintf(`<domain type='test'><name>%s</name><uuid>%s</uuid><memory unit='MiB'>512</memory><os><type>hvm</type></os></domain>`, name, uuid)
	}
	lie := func(l *Libvirt, edit func(*model.DomainInfo)) {
		l.parse = func(b []byte) (model.DomainInfo, error) {
			info, err := model.ParseDomainXML(b)
			edit(&info)
			return info, err
		}
	}
	listed := func(t *testing.T, l *Libvirt) []string {
		t.Helper()
		doms, err := l.List(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, d := range doms {
			out = append(out, d.Name+"/"+d.UUID)
		}
		return out
	}
	wantErr := func(t *testing.T, err error, want ...string) {
		t.Helper()
		if err == nil {
			t.Fatalf("Define succeeded, want an error containing %q", want)
		}
		t.Logf("error: %v", err)
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not contain %q", err, w)
			}
		}
	}

	t.Run("name differs, new domain undefined", func(t *testing.T) {
		l := openHost(t, "")
		lie(l, func(i *model.DomainInfo) { i.Name = "vm2" })
		_, err := l.Define(context.Background(), domainXML("vm1", 512))
		wantErr(t, err, l.uri, `libvirt defined the name "vm1" where vmha read "vm2"`, "undefined \"vm1\"")
		if got := listed(t, l); len(got) != 0 {
			t.Fatalf("domains after the refused define: %v, want none", got)
		}
	})

	t.Run("uuid differs, new domain undefined", func(t *testing.T) {
		l := openHost(t, "")
		lie(l, func(i *model.DomainInfo) { i.UUID = uuidB })
		_, err := l.Define(context.Background(), withUUID("vm1", uuidA))
		wantErr(t, err, "libvirt defined the UUID "+uuidA+" where vmha read "+uuidB, "undefined")
		if got := listed(t, l); len(got) != 0 {
			t.Fatalf("domains after the refused define: %v, want none", got)
		}
	})

	t.Run("defined before, left alone", func(t *testing.T) {
		l := openHost(t, "")
		if _, err := l.Define(context.Background(), withUUID("vm1", uuidA)); err != nil {
			t.Fatal(err)
		}
		mustStart(t, l, "vm1")
		lie(l, func(i *model.DomainInfo) { i.Name = "other" })
		_, err := l.Define(context.Background(), withUUID("vm1", uuidA))
		wantErr(t, err, `libvirt defined the name "vm1" where vmha read "other"`, "was defined before")
		if got := listed(t, l); len(got) != 1 || got[0] != "vm1/"+uuidA {
			t.Fatalf("domains = %v, want vm1/%s still defined", got, uuidA)
		}
		if st := stateOf(t, l, "vm1"); st != StateRunning {
			t.Fatalf("vm1 is %s, want still running", st)
		}
	})

	t.Run("transient running domain stays", func(t *testing.T) {
		l := openHost(t, "")
		dom, err := l.conn.DomainCreateXML(withUUID("vm1", uuidA), 0)
		if err != nil {
			t.Fatal(err)
		}
		dom.Free()
		lie(l, func(i *model.DomainInfo) { i.Name = "other" })
		_, err = l.Define(context.Background(), withUUID("vm1", uuidA))
		wantErr(t, err, `where vmha read "other"`, "undefined \"vm1\"")
		if st := stateOf(t, l, "vm1"); st != StateRunning {
			t.Fatalf("vm1 is %s, want still running", st)
		}
		d, err := l.conn.LookupDomainByName("vm1")
		if err != nil {
			t.Fatal(err)
		}
		defer d.Free()
		if p, err := d.IsPersistent(); err != nil || p {
			t.Fatalf("vm1 persistent = %v (%v), want transient again", p, err)
		}
	})

	t.Run("agreement", func(t *testing.T) {
		l := openHost(t, "")
		name, err := l.Define(context.Background(), withUUID("vm1", strings.ToUpper(uuidA)))
		if err != nil || name != "vm1" {
			t.Fatalf("Define = %q, %v", name, err)
		}
		if got := listed(t, l); len(got) != 1 || got[0] != "vm1/"+uuidA {
			t.Fatalf("domains = %v, want vm1/%s", got, uuidA)
		}
	})
}

// TestParseDomainXMLAgreesWithLibvirt defines, with libvirt's own parser
// (the test driver shares it with the others), documents that
// model.ParseDomainXML accepts and checks that libvirt reads the same name,
// UUID, memory and vCPUs; and documents what libvirt makes of the ones it
// refuses, which is why they are refused.
func TestParseDomainXMLAgreesWithLibvirt(t *testing.T) {
	const osType = `<os><type>hvm</type></os>`
	tests := []struct {
		name string
		xml  string
		// For a refused document: what libvirt reads (name, KiB), showing
		// that encoding/xml's last-wins reading would differ.
		libvirtName string
		libvirtKiB  uint64
	}{
		{name: "plain", xml: `<domain type='test'><name>a</name><memory unit='MiB'>512</memory><vcpu>2</vcpu>` + osType + `</domain>`},
		{name: "units", xml: `<domain type='test'><name>a</name><uuid>0D4C6A4E-7B43-4F4E-9C1E-1F2A3B4C5D6E</uuid><memory unit='KB'>1500</memory><vcpu current='1'>3</vcpu>` + osType + `</domain>`},
		{name: "bytes", xml: `<domain type='test'><name>a</name><memory unit='bytes'>1025</memory>` + osType + `</domain>`},
		{name: "leading space", xml: "<domain type='test'><name>a</name><memory unit='GB'>\n 2</memory><vcpu> 4</vcpu>" + osType + `</domain>`},
		{name: "comment and CDATA", xml: `<domain type='test'><name><![CDATA[a]]></name><memory>1<!-- c -->024</memory>` + osType + `</domain>`},
		{name: "numa agrees", xml: `<domain type='test'><name>a</name><memory unit='MiB'>2048</memory><vcpu>2</vcpu><cpu><numa><cell id='0' cpus='0-1' memory='2' unit='GiB'/></numa></cpu>` + osType + `</domain>`},
		{name: "extensions", xml: `<domain type='test' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'><name>a</name><memory>1024</memory>` + osType + `<metadata><m:x xmlns:m='urn:m'/></metadata><qemu:commandline><qemu:arg value='-a'/></qemu:commandline></domain>`},

		{name: "two names and memories", xml: `<domain type='test'><name>big</name><name>a</name><memory unit='GiB'>7</memory><memory unit='MiB'>64</memory>` + osType + `</domain>`,
			libvirtName: "big", libvirtKiB: 7 << 20},
		{name: "unit of the second memory", xml: `<domain type='test'><name>a</name><memory>7</memory><memory unit='GiB'>64</memory>` + osType + `</domain>`,
			libvirtName: "a", libvirtKiB: 7},
		{name: "namespaced name", xml: `<domain type='test'><name>a</name><name xmlns='urn:x'>b</name><memory>1024</memory>` + osType + `</domain>`,
			libvirtName: "a", libvirtKiB: 1024},
		{name: "namespaced unit", xml: `<domain type='test' xmlns:x='urn:x'><name>a</name><memory x:unit='GiB'>7</memory>` + osType + `</domain>`,
			libvirtName: "a", libvirtKiB: 7},
		{name: "element in the name", xml: `<domain type='test'><name>a<x>b</x>c</name><memory>1024</memory>` + osType + `</domain>`,
			libvirtName: "abc", libvirtKiB: 1024},
		{name: "two numa", xml: `<domain type='test'><name>a</name><memory unit='GiB'>1</memory><vcpu>1</vcpu><cpu><numa><cell id='0' cpus='0' memory='1' unit='GiB'/></numa><numa><cell id='1' cpus='0' memory='7' unit='GiB'/></numa></cpu>` + osType + `</domain>`,
			libvirtName: "a", libvirtKiB: 1 << 20},
		{name: "spaces around the name", xml: `<domain type='test'><name> a </name><memory>1024</memory>` + osType + `</domain>`,
			libvirtName: " a ", libvirtKiB: 1024},
	}
	l := openHost(t, "")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, perr := model.ParseDomainXML([]byte(tt.xml))
			dom, err := l.conn.DomainDefineXML(tt.xml)
			if err != nil {
				if perr == nil {
					t.Fatalf("vmha accepts it (%+v), libvirt refuses: %v", info, err)
				}
				t.Skipf("both refuse: vmha %v; libvirt %v", perr, err)
			}
			defer func() {
				if err := dom.Undefine(); err != nil {
					t.Error(err)
				}
				dom.Free()
			}()
			name, _ := dom.GetName()
			uuid, _ := dom.GetUUIDString()
			kib, _ := dom.GetMaxMemory()
			vcpus, _ := dom.GetVcpusFlags(libvirt.DOMAIN_VCPU_CONFIG | libvirt.DOMAIN_VCPU_MAXIMUM)
			if tt.libvirtName != "" {
				if perr == nil {
					t.Fatalf("vmha accepts it as %+v; want refused", info)
				}
				t.Logf("vmha: %v; libvirt reads name %q, %d KiB", perr, name, kib)
				if name != tt.libvirtName || kib != tt.libvirtKiB {
					t.Fatalf("libvirt reads %q, %d KiB; the test expects %q, %d KiB", name, kib, tt.libvirtName, tt.libvirtKiB)
				}
				return
			}
			if perr != nil {
				t.Fatalf("vmha refuses what libvirt defines as %q, %d KiB: %v", name, kib, perr)
			}
			if name != info.Name || kib != info.MemoryKiB || uint(vcpus) != info.VCPUs || (info.UUID != "" && uuid != info.UUID) {
				t.Fatalf("libvirt reads %q %s %d KiB %d vCPUs; vmha %+v", name, uuid, kib, vcpus, info)
			}
		})
	}
}

func TestHostsAreSeparate(t *testing.T) {
	a := openHost(t, "")
	b := openHost(t, "")
	mustDefine(t, a, "vm1")
	mustStart(t, a, "vm1")

	doms, err := b.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(doms) != 0 {
		t.Fatalf("host b sees %+v, defined only on host a", doms)
	}
	if err := b.Start(context.Background(), "vm1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Start on host b = %v, want ErrNotFound", err)
	}
	if got := stateOf(t, a, "vm1"); got != StateRunning {
		t.Fatalf("host a vm1 state = %s, want running", got)
	}
}

// nextEvent reads events for domain, skipping other domains' events, until
// one arrives or eventWait passes.
func nextEvent(t *testing.T, l *Libvirt, domain string) Event {
	t.Helper()
	timeout := time.After(eventWait)
	for {
		select {
		case e, ok := <-l.Events():
			if !ok {
				t.Fatal("Events channel closed")
			}
			if e.Domain == domain {
				return e
			}
		case <-timeout:
			t.Fatalf("no event for %s within %s", domain, eventWait)
		}
	}
}

// waitEvent reads events until one for domain has the detail, and returns it
// together with the details seen before it.
func waitEvent(t *testing.T, l *Libvirt, domain, detail string) (Event, []string) {
	t.Helper()
	var seen []string
	for {
		e := nextEvent(t, l, domain)
		if e.Detail == detail {
			return e, seen
		}
		seen = append(seen, e.Detail)
	}
}

func TestEvents(t *testing.T) {
	l := openHost(t, "")
	before := time.Now()

	mustDefine(t, l, "vm1")
	e, _ := waitEvent(t, l, "vm1", "defined")
	if e.State != StateShutoff {
		t.Errorf("defined event state = %s, want shutoff (looked up)", e.State)
	}

	mustStart(t, l, "vm1")
	e, skipped := waitEvent(t, l, "vm1", "started")
	if e.State != StateRunning {
		t.Errorf("started event state = %s, want running", e.State)
	}
	if e.Time.Before(before) {
		t.Errorf("event time %v is before the test began", e.Time)
	}
	if len(skipped) != 0 {
		t.Errorf("events between defined and started: %v", skipped)
	}

	if err := l.Stop(context.Background(), "vm1", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	e, skipped = waitEvent(t, l, "vm1", "stopped")
	if e.State != StateShutoff {
		t.Errorf("stopped event state = %s, want shutoff", e.State)
	}
	t.Logf("events between started and stopped: %v", skipped)

	if err := l.Undefine(context.Background(), "vm1"); err != nil {
		t.Fatal(err)
	}
	e, _ = waitEvent(t, l, "vm1", "undefined")
	if e.State != StateShutoff {
		t.Errorf("undefined event state = %s, want shutoff", e.State)
	}
	if n := l.DroppedEvents(); n != 0 {
		t.Errorf("DroppedEvents = %d with an attentive reader", n)
	}
}

func TestEventsDroppedWhenFull(t *testing.T) {
	l := openHost(t, "")
	mustDefine(t, l, "vm1")
	// Nobody reads Events: cycle the domain until the callback reports a
	// drop. Each cycle queues at least two events, so a bound of a few
	// times the buffer is generous.
	for i := 0; l.DroppedEvents() == 0; i++ {
		if i > 20*eventBuffer {
			t.Fatalf("no drop after %d start/stop cycles; %d events buffered", i, len(l.Events()))
		}
		mustStart(t, l, "vm1")
		if err := l.Stop(context.Background(), "vm1", time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(l.Events()); n != eventBuffer {
		t.Fatalf("%d events buffered when dropping, want a full buffer of %d", n, eventBuffer)
	}
	// The hypervisor stays usable while the reader is behind.
	mustStart(t, l, "vm1")
}

func TestNodeInfo(t *testing.T) {
	tests := []struct {
		memKiB  uint64
		cpus    int
		wantMiB uint64
	}{
		{memKiB: 8 * 1024 * 1024, cpus: 4, wantMiB: 8192},
		{memKiB: 64 * 1024 * 1024, cpus: 32, wantMiB: 65536},
		{memKiB: 1536 * 1024, cpus: 1, wantMiB: 1536},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%dMiB-%dcpu", tt.wantMiB, tt.cpus), func(t *testing.T) {
			l := openHost(t, hostURI(t, tt.memKiB, tt.cpus))
			got, err := l.NodeInfo(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			want := NodeInfo{MemoryMiB: tt.wantMiB, CPUs: uint(tt.cpus)}
			if got != want {
				t.Fatalf("NodeInfo = %+v, want %+v", got, want)
			}
		})
	}
}

func TestConcurrentUse(t *testing.T) {
	l := openHost(t, "")
	const domains, workers = 4, 8
	for i := range domains {
		mustDefine(t, l, fmt.Sprintf("vm%d", i))
	}
	// Drain events so the callback races with the readers too.
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for range l.Events() {
		}
	}()

	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, workers*domains*3)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range domains {
				name := fmt.Sprintf("vm%d", (i+w)%domains)
				if err := l.Start(ctx, name); err != nil {
					errs <- fmt.Errorf("Start(%s): %w", name, err)
				}
				if _, err := l.List(ctx); err != nil {
					errs <- fmt.Errorf("List: %w", err)
				}
				if _, err := l.NodeInfo(ctx); err != nil {
					errs <- fmt.Errorf("NodeInfo: %w", err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	doms, err := l.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(doms) != domains {
		t.Fatalf("List = %+v, want %d domains", doms, domains)
	}
	for _, d := range doms {
		if d.State != StateRunning {
			t.Errorf("%s is %s after concurrent starts, want running", d.Name, d.State)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	<-drained // Close closed the Events channel
}

func TestClose(t *testing.T) {
	l := openHost(t, "")
	mustDefine(t, l, "vm1")

	// Keep events flowing while Close runs: the callback must not send on
	// the closed channel, and calls that lose the race get ErrClosed.
	stop := make(chan struct{})
	busy := make(chan error, 1)
	go func() {
		ctx := context.Background()
		for {
			select {
			case <-stop:
				busy <- nil
				return
			default:
			}
			err := l.Start(ctx, "vm1")
			if err == nil {
				err = l.Stop(ctx, "vm1", time.Second)
			}
			if errors.Is(err, ErrClosed) {
				busy <- nil
				return
			}
			if err != nil {
				busy <- err
				return
			}
		}
	}()
	// Wait for the loop to produce at least one event before closing.
	nextEvent(t, l, "vm1")
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	close(stop)
	if err := <-busy; err != nil {
		t.Fatalf("worker: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for range l.Events() { // must terminate: the channel is closed
	}
	if _, err := l.List(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("List after Close = %v, want ErrClosed", err)
	}
	if err := l.Stop(context.Background(), "vm1", time.Second); !errors.Is(err, ErrClosed) {
		t.Fatalf("Stop after Close = %v, want ErrClosed", err)
	}
}

func TestStateFromLibvirt(t *testing.T) {
	tests := []struct {
		in   libvirt.DomainState
		want State
	}{
		{libvirt.DOMAIN_NOSTATE, StateUnknown},
		{libvirt.DOMAIN_RUNNING, StateRunning},
		{libvirt.DOMAIN_BLOCKED, StateRunning},
		{libvirt.DOMAIN_PAUSED, StatePaused},
		{libvirt.DOMAIN_PMSUSPENDED, StatePaused},
		{libvirt.DOMAIN_SHUTDOWN, StateShutdown},
		{libvirt.DOMAIN_SHUTOFF, StateShutoff},
		{libvirt.DOMAIN_CRASHED, StateCrashed},
		{libvirt.DomainState(99), StateUnknown},
	}
	for _, tt := range tests {
		if got := stateFromLibvirt(tt.in); got != tt.want {
			t.Errorf("stateFromLibvirt(%d) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestEventState(t *testing.T) {
	tests := []struct {
		in         libvirt.DomainEventType
		wantState  State
		wantDetail string
	}{
		{libvirt.DOMAIN_EVENT_DEFINED, StateUnknown, "defined"},
		{libvirt.DOMAIN_EVENT_UNDEFINED, StateUnknown, "undefined"},
		{libvirt.DOMAIN_EVENT_STARTED, StateRunning, "started"},
		{libvirt.DOMAIN_EVENT_SUSPENDED, StatePaused, "suspended"},
		{libvirt.DOMAIN_EVENT_RESUMED, StateRunning, "resumed"},
		{libvirt.DOMAIN_EVENT_STOPPED, StateShutoff, "stopped"},
		{libvirt.DOMAIN_EVENT_SHUTDOWN, StateShutdown, "shutdown"},
		{libvirt.DOMAIN_EVENT_PMSUSPENDED, StatePaused, "pmsuspended"},
		{libvirt.DOMAIN_EVENT_CRASHED, StateCrashed, "crashed"},
		{libvirt.DomainEventType(99), StateUnknown, "event-99"},
	}
	for _, tt := range tests {
		s, d := eventState(tt.in)
		if s != tt.wantState || d != tt.wantDetail {
			t.Errorf("eventState(%d) = %s, %q; want %s, %q", tt.in, s, d, tt.wantState, tt.wantDetail)
		}
	}
}

func TestNameFromXML(t *testing.T) {
	tests := []struct{ in, want string }{
		{domainXML("vm1", 512), "vm1"},
		{`<domain><name> spaced </name>`, "spaced"}, // broken after the name
		{`<domain><devices><name>disk</name></devices></domain>`, ""},
		{`not xml`, ""},
		{``, ""},
	}
	for _, tt := range tests {
		if got := nameFromXML(tt.in); got != tt.want {
			t.Errorf("nameFromXML(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestRedefineStoppedDomain: a VM stopped on a host stays defined there;
// defining it again from the same XML (which has no <uuid>) must work, or
// the VM could never start on that host again.
func TestRedefineStoppedDomain(t *testing.T) {
	l := openHost(t, "")
	mustDefine(t, l, "vm1")
	mustStart(t, l, "vm1")
	doms, _ := l.List(context.Background())
	uuid := doms[0].UUID
	if err := l.Stop(context.Background(), "vm1", time.Second); err != nil {
		t.Fatal(err)
	}
	mustDefine(t, l, "vm1")
	mustStart(t, l, "vm1")
	doms, _ = l.List(context.Background())
	if len(doms) != 1 || doms[0].UUID != uuid || doms[0].State != StateRunning {
		t.Fatalf("after redefine: %+v (UUID was %s)", doms, uuid)
	}
}
