package migration

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"libvirt.org/go/libvirt"
)

// fakeMigrations is a MigrateFunc that takes d per move, counts how many
// run at once (globally and per target) from inside the calls themselves,
// and honours cancellation like the real one: aborted, VM on the source.
type fakeMigrations struct {
	d         time.Duration
	fail      map[string]bool
	running   atomic.Int32
	peak      atomic.Int32
	mu        sync.Mutex
	perTarget map[string]int
	peakTgt   map[string]int
}

func (f *fakeMigrations) migrate(ctx context.Context, vm string, src, dst Endpoint, _ Options, progress func(Progress)) (Result, error) {
	n := f.running.Add(1)
	defer f.running.Add(-1)
	for {
		p := f.peak.Load()
		if n <= p || f.peak.CompareAndSwap(p, n) {
			break
		}
	}
	f.mu.Lock()
	f.perTarget[dst.Host]++
	f.peakTgt[dst.Host] = max(f.peakTgt[dst.Host], f.perTarget[dst.Host])
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.perTarget[dst.Host]--
		f.mu.Unlock()
	}()
	res := Result{VM: vm, Source: src.Host, Target: dst.Host}
	progress(Progress{Phase: PhasePreCopy, DataTotal: 100, DataProcessed: 50})
	select {
	case <-time.After(f.d):
	case <-ctx.Done():
		res.Outcome, res.RunningOn, res.Reason = Aborted, src.Host, "cancelled"
		return res, fmt.Errorf("%w: %s", ErrAborted, vm)
	}
	if f.fail[vm] {
		res.Outcome, res.RunningOn, res.Reason = Failed, src.Host, "injected failure"
		return res, errors.New("injected failure")
	}
	res.Outcome, res.RunningOn = Migrated, dst.Host
	res.Job = JobStats{DataTotal: 100, Valid: true}
	return res, nil
}

func newFake(d time.Duration) *fakeMigrations {
	return &fakeMigrations{d: d, fail: map[string]bool{}, perTarget: map[string]int{}, peakTgt: map[string]int{}}
}

func moves(n int, targets ...string) []Move {
	var out []Move
	for i := 0; i < n; i++ {
		out = append(out, Move{
			VM:     fmt.Sprintf("vm%d", i),
			Source: Endpoint{Host: "src", URI: "x://src"},
			Target: Endpoint{Host: targets[i%len(targets)], URI: "x://" + targets[i%len(targets)]},
		})
	}
	return out
}

func TestExecutorLimits(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		n, parallel, perTgt  int
		targets              []string
		wantPeak, wantTgtMax int
	}{
		{"parallel 2 of 7", 7, 2, 0, []string{"a", "b", "c"}, 2, 2},
		{"parallel 1", 4, 1, 0, []string{"a", "b"}, 1, 1},
		{"per target 1, 3 targets", 9, 5, 1, []string{"a", "b", "c"}, 3, 1},
		{"zero means 1", 3, 0, 0, []string{"a"}, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(30 * time.Millisecond)
			var mu sync.Mutex
			var events []Event
			ex := &Executor{Migrate: f.migrate, Parallel: tc.parallel, PerTarget: tc.perTgt,
				OnEvent: func(ev Event) { mu.Lock(); events = append(events, ev); mu.Unlock() }}
			rep, err := ex.Run(context.Background(), moves(tc.n, tc.targets...))
			if err != nil {
				t.Fatal(err)
			}
			if got := int(f.peak.Load()); got != tc.wantPeak {
				t.Errorf("peak concurrency inside MigrateFunc = %d, want %d", got, tc.wantPeak)
			}
			if rep.MaxRunning != tc.wantPeak {
				t.Errorf("Report.MaxRunning = %d, want %d", rep.MaxRunning, tc.wantPeak)
			}
			for tgt, p := range f.peakTgt {
				if p > tc.wantTgtMax {
					t.Errorf("target %s had %d at once, want <= %d", tgt, p, tc.wantTgtMax)
				}
			}
			for i, r := range rep.Results {
				if r.VM != fmt.Sprintf("vm%d", i) || r.Outcome != Migrated {
					t.Errorf("result %d = %s %s, want vm%d migrated", i, r.VM, r.Outcome, i)
				}
			}
			last := events[len(events)-1].Overall
			if last.Succeeded != tc.n || last.Running != 0 || last.DataProcessed != last.DataTotal || last.DataTotal != uint64(100*tc.n) {
				t.Errorf("final overall = %+v, want %d succeeded, none running, all data processed", last, tc.n)
			}
			checkEventOrder(t, events)
		})
	}
}

// checkEventOrder checks that, per VM, events come in order: started,
// then progress, then finished.
func checkEventOrder(t *testing.T, events []Event) {
	t.Helper()
	state := map[string]EventKind{}
	for _, ev := range events {
		prev := state[ev.VM]
		ok := (ev.Kind == EventStarted && prev == "") ||
			(ev.Kind == EventProgress && (prev == EventStarted || prev == EventProgress)) ||
			(ev.Kind == EventFinished && (prev == EventStarted || prev == EventProgress))
		if !ok {
			t.Fatalf("%s: event %s after %q", ev.VM, ev.Kind, prev)
		}
		state[ev.VM] = ev.Kind
	}
}

func TestExecutorCancelAbortsRunningSkipsRest(t *testing.T) {
	f := newFake(10 * time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	ex := &Executor{Migrate: f.migrate, Parallel: 2, OnEvent: func(ev Event) {
		if ev.Kind == EventStarted && ev.Overall.Running == 2 {
			cancel() // Ctrl-C as soon as two jobs run
		}
	}}
	start := time.Now()
	rep, err := ex.Run(ctx, moves(5, "a"))
	if time.Since(start) > 5*time.Second {
		t.Fatalf("Run took %s after cancel; running jobs were not aborted", time.Since(start))
	}
	if err == nil {
		t.Fatal("cancelled run returned no error")
	}
	var aborted, skipped int
	for _, r := range rep.Results {
		switch r.Outcome {
		case Aborted:
			aborted++
		case Skipped:
			skipped++
			if !strings.Contains(r.Reason, "context canceled") {
				t.Errorf("skip reason %q does not say it was cancelled", r.Reason)
			}
		default:
			t.Errorf("%s: outcome %s, want aborted or skipped", r.VM, r.Outcome)
		}
		if r.RunningOn != "src" {
			t.Errorf("%s: running on %q after cancel, want src", r.VM, r.RunningOn)
		}
	}
	if aborted != 2 || skipped != 3 {
		t.Errorf("aborted %d skipped %d, want 2 and 3", aborted, skipped)
	}
}

func TestExecutorFailuresAndDuplicates(t *testing.T) {
	f := newFake(time.Millisecond)
	f.fail["vm1"] = true
	mv := moves(3, "a")
	mv = append(mv, mv[0]) // vm0 twice
	rep, err := (&Executor{Migrate: f.migrate, Parallel: 3}).Run(context.Background(), mv)
	if err == nil || !strings.Contains(err.Error(), "vm1") || !strings.Contains(err.Error(), "injected failure") {
		t.Fatalf("err = %v, want it to name vm1 and its failure", err)
	}
	if !strings.Contains(err.Error(), "duplicate") {
		t.Errorf("err = %v, want it to name the duplicate", err)
	}
	want := []Outcome{Migrated, Failed, Migrated, Skipped}
	for i, r := range rep.Results {
		if r.Outcome != want[i] {
			t.Errorf("result %d (%s) = %s, want %s", i, r.VM, r.Outcome, want[i])
		}
	}
	if _, err := (&Executor{Migrate: f.migrate, Parallel: -1}).Run(context.Background(), mv); !errors.Is(err, ErrInvalid) {
		t.Errorf("negative parallel: err = %v, want ErrInvalid", err)
	}
}

func TestOptionsFlagsAndParams(t *testing.T) {
	dst := Endpoint{Host: "b", URI: "qemu+tcp://b/system", MigrationURI: "tcp://10.0.0.2"}
	flags, p := Options{}.flagsAndParams(dst)
	if flags != DefaultFlags || !p.URISet || p.URI != "tcp://10.0.0.2" || p.BandwidthSet || p.CompressionSet {
		t.Errorf("zero options: flags %#x params %+v; want default flags and only the target's migration URI", flags, p)
	}
	if flags&libvirt.MIGRATE_UNSAFE != 0 {
		t.Error("unsafe flag set without Force")
	}
	o := Options{MigrationURI: "tcp://192.0.2.1:49152", BandwidthMiBps: 100, AutoConverge: true, PostCopyAfter: time.Second,
		Compression: "xbzrle", TLS: true, ParallelConnections: 4, Force: true, DestXML: "<domain/>", MaxDowntime: 100 * time.Millisecond}
	flags, p = o.flagsAndParams(dst)
	for _, f := range []libvirt.DomainMigrateFlags{libvirt.MIGRATE_LIVE, libvirt.MIGRATE_PEER2PEER, libvirt.MIGRATE_PERSIST_DEST,
		libvirt.MIGRATE_UNDEFINE_SOURCE, libvirt.MIGRATE_AUTO_CONVERGE, libvirt.MIGRATE_POSTCOPY, libvirt.MIGRATE_COMPRESSED,
		libvirt.MIGRATE_TLS, libvirt.MIGRATE_PARALLEL, libvirt.MIGRATE_UNSAFE} {
		if flags&f == 0 {
			t.Errorf("flag %#x missing from %#x", f, flags)
		}
	}
	if p.URI != o.MigrationURI || p.Bandwidth != 100 || p.Compression != "xbzrle" || p.ParallelConnections != 4 || p.DestXML != "<domain/>" {
		t.Errorf("params %+v do not carry the options", p)
	}
	if err := o.validate(); err != nil {
		t.Errorf("valid options rejected: %v", err)
	}
	if got := o.xenUnsupported(); len(got) != 7 {
		t.Errorf("xenUnsupported = %v, want 7 options named", got)
	}
	for _, bad := range []Options{{Timeout: -1}, {Compression: "lz4"}, {MigrationURI: "10.0.0.2"}, {MaxDowntime: time.Microsecond}, {PostCopyAfter: -time.Second}} {
		if err := bad.validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: validate = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestCheckSafe(t *testing.T) {
	x := `<domain><devices>
	  <disk type='file' device='disk'><driver name='qemu' cache='none'/><source file='/s/ok.img'/><target dev='vda'/></disk>
	  <disk type='file' device='disk'><driver name='qemu' cache='writeback'/><source file='/s/wb.img'/><target dev='vdb'/></disk>
	  <disk type='block' device='disk'><driver name='qemu'/><source dev='/dev/vg/lv'/><target dev='vdc'/></disk>
	  <disk type='file' device='disk'><driver name='qemu' cache='unsafe'/><source file='/s/ro.img'/><target dev='vdd'/><readonly/></disk>
	  <disk type='file' device='cdrom'><source file='/s/x.iso'/><target dev='hdc'/></disk>
	  <disk type='network' device='disk'><source protocol='rbd' name='pool/img'/><target dev='vde'/></disk>
	  <disk type='file' device='disk'><driver name='qemu' cache='directsync'/><source file='/s/ds.img'/><target dev='vdf'/></disk>
	</devices></domain>`
	reasons, err := checkSafe(x)
	if err != nil {
		t.Fatal(err)
	}
	if len(reasons) != 2 || !strings.Contains(reasons[0], "vdb") || !strings.Contains(reasons[0], "writeback") ||
		!strings.Contains(reasons[1], "vdc") || !strings.Contains(reasons[1], "default") {
		t.Errorf("reasons = %q, want vdb (writeback) and vdc (default cache)", reasons)
	}
	if _, err := checkSafe("<domain"); err == nil {
		t.Error("broken XML accepted")
	}
}

func TestProgressString(t *testing.T) {
	p := Progress{Phase: PhasePreCopy, DataTotal: 128 << 20, DataRemaining: 64 << 20, Throughput: 12 << 20,
		DirtyRate: 1 << 19, Iteration: 2, ExpectedDowntime: 300 * time.Millisecond, Throttle: 20}
	want := "pre-copy 50% 64/128 MiB, 12.0 MiB/s, dirty 0.5 MiB/s, iteration 2, expected downtime 300ms, throttle 20%"
	if got := p.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got := (Progress{Phase: PhasePrepare, Elapsed: 1234 * time.Millisecond}).String(); got != "prepare 1.2s" {
		t.Errorf("String() without data = %q", got)
	}
	if p.DataRemaining = 200 << 20; p.Percent() != 0 {
		t.Errorf("Percent with more remaining than total = %v, want 0", p.Percent())
	}
}
