package migration

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

	"libvirt.org/go/libvirt"

	"github.com/vmha/vmha/internal/testlab/virtlab"
)

// Tests in this file run against two real libvirtd "hosts" on this machine
// (internal/testlab/virtlab) with QEMU TCG guests whose console prints a counter.

// TestMain runs libvirt's event loop in the test process, as vmhad does (the
// hypervisor package starts it on its first connection): with it, remote
// connections get keepalives and dispatch differently, and migrations must
// work in the configuration they run in. It must be registered before the
// first connection is opened.
func TestMain(m *testing.M) {
	if err := libvirt.EventRegisterDefaultImpl(); err != nil {
		fmt.Fprintln(os.Stderr, "register libvirt event loop:", err)
		os.Exit(1)
	}
	go func() {
		for {
			if err := libvirt.EventRunDefaultImpl(); err != nil {
				time.Sleep(time.Second)
			}
		}
	}()
	os.Exit(m.Run())
}

func endpoint(h *virtlab.Host) Endpoint {
	// No port in the migration URI: the target picks one from its own
	// migration_port range, so parallel migrations to one host do not
	// collide. 127.0.0.1 instead of the hostname, which both hosts share.
	return Endpoint{Host: h.Name, URI: h.URI, MigrationURI: "tcp://127.0.0.1"}
}

// domainOn reports (exists, active, persistent) for vm on h, straight from
// libvirt, independent of the code under test.
func domainOn(t *testing.T, h *virtlab.Host, vm string) (bool, bool, bool) {
	t.Helper()
	conn, err := libvirt.NewConnect(h.URI)
	if err != nil {
		t.Fatalf("connect %s: %v", h.URI, err)
	}
	defer conn.Close()
	d, err := conn.LookupDomainByName(vm)
	if err != nil {
		if isCode(err, libvirt.ERR_NO_DOMAIN) {
			return false, false, false
		}
		t.Fatalf("look up %s on %s: %v", vm, h.Name, err)
	}
	defer d.Free()
	active, err := d.IsActive()
	if err != nil {
		t.Fatal(err)
	}
	persistent, err := d.IsPersistent()
	if err != nil {
		t.Fatal(err)
	}
	return true, active, persistent
}

// checkCounters verifies that the guest never rebooted: every counter line on
// both hosts carries one boot id, and within each console file (appended
// across visits) the counter only goes up.
func checkCounters(t *testing.T, vm string, hosts ...*virtlab.Host) {
	t.Helper()
	boot := ""
	for _, h := range hosts {
		cs, err := virtlab.ReadCounters(h.SerialLog(vm))
		if err != nil {
			t.Fatal(err)
		}
		for i, c := range cs {
			if boot == "" {
				boot = c.Boot
			}
			if c.Boot != boot {
				t.Fatalf("%s on %s: boot id changed from %s to %s at line %d: the guest rebooted", vm, h.Name, boot, c.Boot, i)
			}
			if i > 0 && c.N <= cs[i-1].N {
				t.Fatalf("%s on %s: counter went from %d to %d: the guest restarted", vm, h.Name, cs[i-1].N, c.N)
			}
		}
	}
}

func lastN(t *testing.T, h *virtlab.Host, vm string) int {
	t.Helper()
	c, ok, err := virtlab.LastCounter(h.SerialLog(vm))
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		return 0
	}
	return c.N
}

type progressLog struct {
	mu      sync.Mutex
	samples []Progress
}

func (p *progressLog) add(s Progress) {
	p.mu.Lock()
	p.samples = append(p.samples, s)
	p.mu.Unlock()
}

func (p *progressLog) withData() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, s := range p.samples {
		if s.DataTotal > 0 && s.DataProcessed > 0 {
			n++
		}
	}
	return n
}

func TestLiveMigrationThereAndBack(t *testing.T) {
	hosts := virtlab.NewHosts(t, 2)
	a, b := hosts[0], hosts[1]
	img := virtlab.TestImage(t)
	const vm = "counter1"
	virtlab.StartGuest(t, a, img, vm)

	m := &Migrator{}
	ctx := context.Background()
	for i, hop := range []struct{ from, to *virtlab.Host }{{a, b}, {b, a}} {
		before := lastN(t, hop.from, vm)
		var pl progressLog
		res, err := m.Migrate(ctx, vm, endpoint(hop.from), endpoint(hop.to),
			Options{Timeout: 90 * time.Second, ProgressInterval: 100 * time.Millisecond}, pl.add)
		if err != nil {
			t.Fatalf("hop %d %s->%s: %v (result %+v)", i, hop.from.Name, hop.to.Name, err, res)
		}
		if res.Outcome != Migrated || res.RunningOn != hop.to.Name || res.State != "running" {
			t.Fatalf("hop %d: outcome %s, %s on %q; want migrated, running on %s", i, res.Outcome, res.State, res.RunningOn, hop.to.Name)
		}
		t.Logf("hop %d %s->%s: wall %s, libvirt call %s, job %s, downtime %s, setup %s, %d MiB sent in %d iterations, %d progress samples (%d with data)",
			i, hop.from.Name, hop.to.Name, res.Wall.Round(time.Millisecond), res.JobWall.Round(time.Millisecond),
			res.Job.TimeElapsed, res.Job.Downtime, res.Job.SetupTime, res.Job.DataProcessed>>20, res.Job.Iterations,
			len(pl.samples), pl.withData())
		if !res.Job.Valid || res.Job.Downtime <= 0 || res.Job.DataProcessed == 0 {
			t.Errorf("hop %d: completed job statistics missing: %+v", i, res.Job)
		}
		if pl.withData() == 0 {
			t.Errorf("hop %d: no progress sample carried job data (%d samples)", i, len(pl.samples))
		}
		// Independently of Migrate's own verification: defined and
		// running on the target only.
		if ex, _, _ := domainOn(t, hop.from, vm); ex {
			t.Errorf("hop %d: %s still defined on source %s", i, vm, hop.from.Name)
		}
		if ex, active, persistent := domainOn(t, hop.to, vm); !ex || !active || !persistent {
			t.Errorf("hop %d: on target %s: exists %v active %v persistent %v, want all", i, hop.to.Name, ex, active, persistent)
		}
		// The guest goes on counting on the target from where it was.
		if err := virtlab.WaitCounter(hop.to.SerialLog(vm), before+2, 30*time.Second); err != nil {
			t.Fatalf("hop %d: counter did not continue on %s past %d: %v", i, hop.to.Name, before, err)
		}
		checkCounters(t, vm, a, b)
	}

	// Post-copy: the stream is throttled to 16 MiB/s (about 8 s for the
	// guest; libvirt applies the limit to post-copy too) so the switch
	// after 300 ms happens with most memory unsent. What makes it
	// post-copy: the guest already runs on the target while memory is
	// still on its way, which the progress callback checks on the target.
	before := lastN(t, a, vm)
	var runningEarly, checks int
	res, err := m.Migrate(ctx, vm, endpoint(a), endpoint(b),
		Options{BandwidthMiBps: 16, PostCopyAfter: 300 * time.Millisecond, Timeout: 90 * time.Second, ProgressInterval: 250 * time.Millisecond},
		func(p Progress) {
			if p.Phase != PhasePostCopy || p.DataRemaining < 16<<20 {
				return
			}
			checks++
			if ex, active, _ := domainOn(t, b, vm); ex && active && domainRunning(t, b, vm) {
				runningEarly++
			}
		})
	if err != nil {
		t.Fatalf("post-copy hop: %v", err)
	}
	t.Logf("post-copy hop h1->h2: wall %s, switched %v; guest seen running on the target in %d of %d samples with >= 16 MiB unsent",
		res.Wall.Round(time.Millisecond), res.PostCopy, runningEarly, checks)
	if !res.PostCopy || res.Outcome != Migrated || res.RunningOn != b.Name {
		t.Fatalf("post-copy hop: switched %v, outcome %s on %q; want a post-copy migration to %s", res.PostCopy, res.Outcome, res.RunningOn, b.Name)
	}
	if runningEarly == 0 {
		t.Errorf("the guest never ran on the target while memory was unsent (%d samples): not post-copy", checks)
	}
	if err := virtlab.WaitCounter(b.SerialLog(vm), before+2, 30*time.Second); err != nil {
		t.Fatalf("post-copy hop: %v", err)
	}
	checkCounters(t, vm, a, b)

	// The tuning options are accepted by this libvirt and QEMU and still
	// move the guest intact. (TLS needs certificates: not tested here.)
	for i, hop := range []struct {
		from, to *virtlab.Host
		opts     Options
	}{
		{b, a, Options{AutoConverge: true, Compression: "xbzrle", MaxDowntime: 100 * time.Millisecond}},
		{a, b, Options{ParallelConnections: 2, BandwidthMiBps: 1000}},
	} {
		before := lastN(t, hop.from, vm)
		hop.opts.Timeout = 90 * time.Second
		res, err := m.Migrate(ctx, vm, endpoint(hop.from), endpoint(hop.to), hop.opts, nil)
		if err != nil {
			t.Fatalf("tuned hop %d %+v: %v", i, hop.opts, err)
		}
		t.Logf("tuned hop %d %s->%s %+v: wall %s, downtime %s", i, hop.from.Name, hop.to.Name, hop.opts,
			res.Wall.Round(time.Millisecond), res.Job.Downtime)
		if res.RunningOn != hop.to.Name {
			t.Fatalf("tuned hop %d: running on %q", i, res.RunningOn)
		}
		if err := virtlab.WaitCounter(hop.to.SerialLog(vm), before+2, 30*time.Second); err != nil {
			t.Fatalf("tuned hop %d: %v", i, err)
		}
		checkCounters(t, vm, a, b)
	}
}

func domainRunning(t *testing.T, h *virtlab.Host, vm string) bool {
	t.Helper()
	conn, err := libvirt.NewConnect(h.URI)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	d, err := conn.LookupDomainByName(vm)
	if err != nil {
		return false
	}
	defer d.Free()
	st, _, err := d.GetState()
	return err == nil && st == libvirt.DOMAIN_RUNNING
}

// TestAbortOnTimeoutLeavesGuestOnSource throttles the stream to 1 MiB/s so
// a 128 MiB guest cannot finish in 3 s: the timeout must abort the job, the
// result must say so, and the guest must still run (and count) on the
// source, with nothing left on the target.
func TestAbortOnTimeoutLeavesGuestOnSource(t *testing.T) {
	hosts := virtlab.NewHosts(t, 2)
	a, b := hosts[0], hosts[1]
	img := virtlab.TestImage(t)
	const vm = "slow1"
	virtlab.StartGuest(t, a, img, vm)

	hooks := &recordingHooks{}
	m := &Migrator{Hooks: hooks}
	var pl progressLog
	res, err := m.Migrate(context.Background(), vm, endpoint(a), endpoint(b),
		Options{BandwidthMiBps: 1, Timeout: 3 * time.Second, ProgressInterval: 200 * time.Millisecond}, pl.add)
	if want := []string{"before slow1 h1->h2", "abort slow1 h1->h2"}; fmt.Sprint(hooks.calls) != fmt.Sprint(want) {
		t.Errorf("hook calls %q, want %q: an aborted migration must undo the storage preparation", hooks.calls, want)
	}
	if !errors.Is(err, ErrAborted) {
		t.Fatalf("err = %v, want ErrAborted (result %+v)", err, res)
	}
	if res.Outcome != Aborted || res.RunningOn != a.Name || res.State != "running" {
		t.Fatalf("outcome %s, %s on %q; want aborted, running on %s", res.Outcome, res.State, res.RunningOn, a.Name)
	}
	t.Logf("aborted after %s: %s", res.Wall.Round(time.Millisecond), res.Reason)
	if pl.withData() == 0 {
		t.Errorf("no progress sample with data during a 3 s job")
	}
	if ex, active, _ := domainOn(t, a, vm); !ex || !active {
		t.Fatalf("after abort on %s: exists %v active %v, want running", a.Name, ex, active)
	}
	if ex, _, _ := domainOn(t, b, vm); ex {
		t.Fatalf("after abort %s exists on target %s", vm, b.Name)
	}
	before := lastN(t, a, vm)
	if err := virtlab.WaitCounter(a.SerialLog(vm), before+2, 30*time.Second); err != nil {
		t.Fatalf("guest stopped counting on the source after the abort: %v", err)
	}
	checkCounters(t, vm, a, b)

	// Ctrl-C: the caller's context is cancelled once the job moves
	// data; the running job must be aborted the same way.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	res, err = m.Migrate(ctx, vm, endpoint(a), endpoint(b), Options{BandwidthMiBps: 1, ProgressInterval: 100 * time.Millisecond}, func(p Progress) {
		if p.DataProcessed > 0 {
			cancel()
		}
	})
	if err == nil || res.Outcome != Aborted || res.RunningOn != a.Name {
		t.Fatalf("cancelled migration: err %v, result %+v; want aborted, running on %s", err, res, a.Name)
	}
	t.Logf("cancelled migration returned after %s: %s", time.Since(start).Round(time.Millisecond), res.Reason)
	if ex, active, _ := domainOn(t, a, vm); !ex || !active {
		t.Fatalf("after cancel on %s: exists %v active %v, want running", a.Name, ex, active)
	}
	if ex, _, _ := domainOn(t, b, vm); ex {
		t.Fatalf("after cancel %s exists on target %s", vm, b.Name)
	}
	before = lastN(t, a, vm)
	if err := virtlab.WaitCounter(a.SerialLog(vm), before+2, 30*time.Second); err != nil {
		t.Fatalf("guest stopped counting on the source after the cancel: %v", err)
	}
	checkCounters(t, vm, a, b)
}

// recordingHooks records the order of hook calls and can fail Before.
type recordingHooks struct {
	mu     sync.Mutex
	calls  []string
	before error
}

func (h *recordingHooks) rec(s string) {
	h.mu.Lock()
	h.calls = append(h.calls, s)
	h.mu.Unlock()
}

func (h *recordingHooks) Before(_ context.Context, vm string, src, dst Endpoint) error {
	h.rec(fmt.Sprintf("before %s %s->%s", vm, src.Host, dst.Host))
	return h.before
}

func (h *recordingHooks) After(_ context.Context, vm string, src, dst Endpoint) error {
	h.rec(fmt.Sprintf("after %s %s->%s", vm, src.Host, dst.Host))
	return nil
}

func (h *recordingHooks) Abort(_ context.Context, vm string, src, dst Endpoint) error {
	h.rec(fmt.Sprintf("abort %s %s->%s", vm, src.Host, dst.Host))
	return nil
}

// TestUnsafeRefusedUnlessForced gives the guest a disk with cache=writeback:
// Migrate must refuse it naming the disk, move nothing, and migrate it with
// Force.
func TestUnsafeRefusedUnlessForced(t *testing.T) {
	hosts := virtlab.NewHosts(t, 2)
	a, b := hosts[0], hosts[1]
	img := virtlab.TestImage(t)
	const vm = "unsafe1"
	disk := filepath.Join(t.TempDir(), "data.img")
	if err := os.WriteFile(disk, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	x := strings.Replace(virtlab.GuestXML(vm, img, 128), "<serial", fmt.Sprintf(
		"<disk type='file' device='disk'><driver name='qemu' type='raw' cache='writeback'/><source file='%s'/><target dev='vda' bus='virtio'/></disk>\n    <serial", disk), 1)
	conn, err := libvirt.NewConnect(a.URI)
	if err != nil {
		t.Fatal(err)
	}
	dom, err := conn.DomainDefineXML(x)
	if err != nil {
		t.Fatal(err)
	}
	if err := dom.Create(); err != nil {
		t.Fatal(err)
	}
	_ = dom.Free()
	conn.Close()
	if err := virtlab.WaitCounter(a.SerialLog(vm), 1, 60*time.Second); err != nil {
		t.Fatal(err)
	}

	m := &Migrator{}
	ctx := context.Background()
	// Other refusals first, on the same hosts: each names its reason and
	// moves nothing.
	if _, err := m.Migrate(ctx, "no-such-vm", endpoint(a), endpoint(b), Options{}, nil); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "no-such-vm") {
		t.Errorf("unknown VM: err = %v, want ErrNotFound naming it", err)
	}
	if _, err := m.Migrate(ctx, vm, endpoint(a), endpoint(b), Options{Compression: "lzma"}, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad compression: err = %v, want ErrInvalid", err)
	}
	if _, err := m.Migrate(ctx, vm, endpoint(a), endpoint(a), Options{}, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("same host: err = %v, want ErrInvalid", err)
	}
	hooks := &recordingHooks{before: errors.New("target cluster file system not mounted")}
	res, err := (&Migrator{Hooks: hooks}).Migrate(ctx, vm, endpoint(a), endpoint(b), Options{Force: true}, nil)
	if !errors.Is(err, ErrHook) || !errors.Is(err, hooks.before) || res.Outcome != Refused {
		t.Errorf("refusing hook: err = %v outcome %s, want ErrHook wrapping the hook's error, refused", err, res.Outcome)
	}
	if want := []string{"before unsafe1 h1->h2", "abort unsafe1 h1->h2"}; fmt.Sprint(hooks.calls) != fmt.Sprint(want) {
		t.Errorf("hook calls %q, want %q", hooks.calls, want)
	}

	// The dry run gives the same answers without moving anything.
	if err := m.Check(ctx, vm, endpoint(a), endpoint(b), Options{}); !errors.Is(err, ErrUnsafe) {
		t.Errorf("Check of the unsafe VM: %v, want ErrUnsafe", err)
	}
	if err := m.Check(ctx, vm, endpoint(a), endpoint(b), Options{Force: true}); err != nil {
		t.Errorf("Check of the unsafe VM with force: %v, want nil", err)
	}
	if err := m.Check(ctx, "no-such-vm", endpoint(a), endpoint(b), Options{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("Check of an unknown VM: %v, want ErrNotFound", err)
	}

	res, err = m.Migrate(ctx, vm, endpoint(a), endpoint(b), Options{Timeout: time.Minute}, nil)
	if !errors.Is(err, ErrUnsafe) || res.Outcome != Refused || !strings.Contains(err.Error(), "vda") || !strings.Contains(err.Error(), "writeback") {
		t.Fatalf("unsafe migration: err = %v outcome %s; want ErrUnsafe naming vda and writeback, refused", err, res.Outcome)
	}
	if ex, active, _ := domainOn(t, a, vm); !ex || !active {
		t.Fatalf("refused migration moved the guest: on %s exists %v active %v", a.Name, ex, active)
	}
	// Never twice: a domain of the same name active on the target (a
	// leftover, a split brain) makes Migrate refuse before any job.
	if err := virtlab.DefineAndStart(b, img, vm, 128); err != nil {
		t.Fatal(err)
	}
	_, err = m.Migrate(ctx, vm, endpoint(a), endpoint(b), Options{Force: true}, nil)
	if !errors.Is(err, ErrOnTarget) || !strings.Contains(err.Error(), b.Name) {
		t.Errorf("VM active on the target too: err = %v, want ErrOnTarget naming %s", err, b.Name)
	}
	removeDomain(t, b, vm)

	hooks = &recordingHooks{}
	res, err = (&Migrator{Hooks: hooks}).Migrate(ctx, vm, endpoint(a), endpoint(b), Options{Timeout: time.Minute, Force: true}, nil)
	if err != nil || res.Outcome != Migrated {
		t.Fatalf("forced migration: %v (outcome %s)", err, res.Outcome)
	}
	if want := []string{"before unsafe1 h1->h2", "after unsafe1 h1->h2"}; fmt.Sprint(hooks.calls) != fmt.Sprint(want) {
		t.Errorf("hook calls %q, want %q", hooks.calls, want)
	}
	if ex, active, _ := domainOn(t, b, vm); !ex || !active {
		t.Fatalf("forced migration: not running on %s", b.Name)
	}
}

// removeDomain destroys and undefines vm on h.
func removeDomain(t *testing.T, h *virtlab.Host, vm string) {
	t.Helper()
	conn, err := libvirt.NewConnect(h.URI)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	d, err := conn.LookupDomainByName(vm)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Free()
	if err := d.Destroy(); err != nil {
		t.Fatal(err)
	}
	if err := d.Undefine(); err != nil {
		t.Fatal(err)
	}
}
