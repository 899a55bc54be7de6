package sharedfs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmha/vmha/internal/testlab/testenv"
)

func readTestdata(t testing.TB, name string) []byte { return testenv.Testdata(t, name) }

// proc-mounts-host.txt is /proc/mounts of the development machine.
func TestParseMountsCaptured(t *testing.T) {
	ms, err := ParseMounts(readTestdata(t, "proc-mounts-host.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if m, ok := FindMount(ms, "/proc"); !ok || m.Type != "proc" {
		t.Fatalf("/proc: %+v %v", m, ok)
	}
}

func TestParseMounts(t *testing.T) {
	table := "/dev/sdb /srv/vm\\040store gfs2 rw,relatime 0 0\n" +
		"/dev/sdc /srv/o ocfs2 ro,relatime 0 0\n" +
		"tmpfs /srv/o tmpfs rw 0 0\n"
	ms, err := ParseMounts([]byte(table))
	if err != nil {
		t.Fatal(err)
	}
	if m, ok := FindMount(ms, "/srv/vm store/"); !ok || m.Type != "gfs2" || m.Device != "/dev/sdb" {
		t.Fatalf("escaped mount point: %+v %v", m, ok)
	}
	// The last mount on a point is the one in effect.
	if m, _ := FindMount(ms, "/srv/o"); m.Type != "tmpfs" {
		t.Fatalf("stacked: %+v", m)
	}
	if !ms[1].ReadOnly() || ms[0].ReadOnly() {
		t.Fatal("ro option misread")
	}
	if got := MountsOfDevice(ms, "/dev/sdc"); len(got) != 1 {
		t.Fatalf("mounts of /dev/sdc: %v", got)
	}
	for _, bad := range []string{"/dev/sdb /x\n", "/dev/sdb /x\\04 gfs2 rw 0 0\n", "/dev/sdb /x\\999 gfs2 rw 0 0\n"} {
		if _, err := ParseMounts([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestParseBlkidCaptured(t *testing.T) {
	sig, err := ParseBlkidExport(readTestdata(t, "blkid-p-export-gfs2.txt"))
	if err != nil || sig.Type != "gfs2" || sig.Label != "alpha:vmstore" || sig.Usage != "filesystem" {
		t.Fatalf("gfs2: %+v %v", sig, err)
	}
	sig, err = ParseBlkidExport(readTestdata(t, "blkid-p-export-ocfs2.txt"))
	if err != nil || sig.Type != "ocfs2" || sig.Label != "vmstore" {
		t.Fatalf("ocfs2: %+v %v", sig, err)
	}
	sig, err = ParseBlkidExport(readTestdata(t, "blkid-p-export-empty.txt"))
	if err != nil || sig.Type != "" {
		t.Fatalf("empty: %+v %v", sig, err)
	}
	if _, err := ParseBlkidExport([]byte("TYPE\n")); err == nil {
		t.Fatal("line without = parsed")
	}
}

// TestProbeReal runs the real blkid on a zeroed image (exit 2, nothing
// found), on a missing path (also exit 2: Probe must tell them apart) and
// on a GFS2 image made by mkfs.gfs2.
func TestProbeReal(t *testing.T) {
	testenv.NeedCommand(t, "blkid")
	ctx := context.Background()
	img := filepath.Join(t.TempDir(), "z.img")
	if err := os.WriteFile(img, make([]byte, 4<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	sig, err := Probe(ctx, ExecRunner{}, img)
	if err != nil || sig.Type != "" {
		t.Fatalf("zeroed image: %+v, %v", sig, err)
	}
	if _, err := Probe(ctx, ExecRunner{}, filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("missing device probed")
	}
	testenv.NeedCommand(t, "mkfs.gfs2")
	if err := os.Truncate(img, 128<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := (ExecRunner{}).Run(ctx, "mkfs.gfs2", "-O", "-p", "lock_dlm", "-t", "alpha:p", "-j", "1", "-J", "8", img); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	sig, err = Probe(ctx, ExecRunner{}, img)
	if err != nil || sig.Type != "gfs2" || sig.Label != "alpha:p" {
		t.Fatalf("gfs2 image: %+v, %v", sig, err)
	}
}

func TestEvaluate(t *testing.T) {
	spec := Spec{Name: "vmstore", Type: "gfs2", MountPoint: "/srv/vm"}
	mounted := []Mount{{Device: "/dev/sdb", MountPoint: "/srv/vm", Type: "gfs2", Options: []string{"rw"}}}
	if r := Evaluate(spec, Observation{Mounts: mounted, ProbeTook: time.Millisecond}, time.Second); !r.Ready {
		t.Fatalf("ready host: %+v", r)
	}
	cases := []struct {
		name string
		obs  Observation
		want []string
	}{
		{"not mounted", Observation{}, []string{"not mounted at /srv/vm"}},
		{"wrong type", Observation{Mounts: []Mount{{Device: "/dev/sdb", MountPoint: "/srv/vm", Type: "ext4"}}}, []string{"mounted as ext4", "want gfs2"}},
		{"read-only", Observation{Mounts: []Mount{{Device: "/dev/sdb", MountPoint: "/srv/vm", Type: "gfs2", Options: []string{"ro"}}}}, []string{"read-only"}},
		{"no dlm", Observation{Mounts: mounted, LockManager: errors.New("dlm_controld is not running")}, []string{"dlm_controld is not running"}},
		{"probe failed", Observation{Mounts: mounted, ProbeErr: errors.New("EIO")}, []string{"heartbeat probe", "EIO"}},
		{"probe slow", Observation{Mounts: mounted, ProbeTook: 2 * time.Second}, []string{"took 2s, more than 1s"}},
		{"mounts unreadable", Observation{MountsErr: errors.New("denied")}, []string{"mount table unreadable"}},
		{"everything", Observation{LockManager: errors.New("down"), ProbeErr: errors.New("not run")}, []string{"not mounted", "down", "not run"}},
	}
	for _, c := range cases {
		r := Evaluate(spec, c.obs, time.Second)
		if r.Ready {
			t.Errorf("%s: ready", c.name)
			continue
		}
		all := strings.Join(r.Reasons, "; ")
		for _, w := range c.want {
			if !strings.Contains(all, w) {
				t.Errorf("%s: reasons %q do not say %q", c.name, all, w)
			}
		}
	}
}

type fakeLock struct{ err error }

func (f fakeLock) Check(context.Context) error { return f.err }

// TestCheckerTempDir runs the side-effecting checker against a temp dir
// listed in a mount table file. A real GFS2/OCFS2 mount is what the kernel
// prevents here, so the table says the temp dir is one.
func TestCheckerTempDir(t *testing.T) {
	dir := t.TempDir()
	mp := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mp, 0o755); err != nil {
		t.Fatal(err)
	}
	table := filepath.Join(dir, "mounts")
	if err := os.WriteFile(table, []byte("/dev/sdb "+mp+" gfs2 rw,relatime 0 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := Checker{Host: "h1", MountsFile: table, Lock: fakeLock{}, Timeout: 5 * time.Second}
	spec := Spec{Name: "vmstore", Type: "gfs2", MountPoint: mp}
	if r := c.Check(context.Background(), spec); !r.Ready {
		t.Fatalf("not ready: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(mp, HeartbeatDir, "h1")); err != nil {
		t.Fatalf("probe wrote no heartbeat: %v", err)
	}
	// Wrong type: not ready, and the probe must not write into the
	// directory (it would be the local disk under an unmounted point).
	other := filepath.Join(dir, "other")
	if err := os.Mkdir(other, 0o755); err != nil {
		t.Fatal(err)
	}
	r := c.Check(context.Background(), Spec{Name: "o", Type: "ocfs2", MountPoint: other})
	if r.Ready {
		t.Fatal("unmounted point ready")
	}
	if _, err := os.Stat(filepath.Join(other, HeartbeatDir)); !os.IsNotExist(err) {
		t.Fatalf("probe wrote under an unmounted point: %v", err)
	}
	// A lock manager that is down makes the host not ready.
	c.Lock = fakeLock{errors.New("o2cb offline")}
	if r := c.Check(context.Background(), spec); r.Ready || !strings.Contains(strings.Join(r.Reasons, ";"), "o2cb offline") {
		t.Fatalf("lock manager down: %+v", r)
	}
	// A missing mount table file is not "nothing mounted, fine".
	c.Lock, c.MountsFile = fakeLock{}, filepath.Join(dir, "nope")
	if r := c.Check(context.Background(), spec); r.Ready {
		t.Fatal("ready without a mount table")
	}
}

func TestProbeWritesAndReadsBack(t *testing.T) {
	hb := Heartbeat{Root: t.TempDir(), Host: "h1"}
	if took, err := hb.Probe(context.Background(), 5*time.Second); err != nil || took <= 0 {
		t.Fatalf("probe: %v %v", took, err)
	}
	b, err := os.ReadFile(hb.Path())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseHeartbeat(b); err != nil {
		t.Fatal(err)
	}
}

func TestProbeHangs(t *testing.T) {
	// A hung cluster file system blocks I/O in the kernel; a FIFO without a
	// reader blocks the writer's open the same way.
	dir := t.TempDir()
	hbdir := filepath.Join(dir, HeartbeatDir)
	if err := os.Mkdir(hbdir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Make the temporary file a FIFO: OpenFile(O_WRONLY) blocks until a
	// reader comes, as I/O on a hung cluster file system blocks.
	if err := mkfifo(filepath.Join(hbdir, ".h1.tmp")); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	hb := Heartbeat{Root: dir, Host: "h1"}
	start := time.Now()
	_, err := hb.Probe(context.Background(), 200*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "did not answer within 200ms") {
		t.Fatalf("hung probe: %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("probe did not give up at its timeout")
	}
	// Release the blocked writer so the goroutine ends before the test.
	f, err := os.OpenFile(filepath.Join(hbdir, ".h1.tmp"), os.O_RDONLY, 0)
	if err == nil {
		f.Close()
	}
}

func TestHeartbeatReadAndClassify(t *testing.T) {
	root := t.TempDir()
	now := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	clock := now
	h1 := Heartbeat{Root: root, Host: "h1", Now: func() time.Time { return clock }}
	if _, err := h1.Write(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, HeartbeatDir, "h3"), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	beats := ReadHeartbeats(root, []string{"h1", "h2", "h3", "../etc"})
	if !beats[0].Written.Equal(now) || beats[0].Err != nil {
		t.Fatalf("h1: %+v", beats[0])
	}
	if !beats[1].Written.IsZero() || beats[1].Err != nil {
		t.Fatalf("h2 never wrote: %+v", beats[1])
	}
	if beats[2].Err == nil || beats[3].Err == nil {
		t.Fatalf("garbage and bad name: %+v %+v", beats[2], beats[3])
	}

	var tr Tracker
	r0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) // the reader's clock is far off the writer's
	b := tr.Observe(r0, ReadHeartbeats(root, []string{"h1", "h2"}))
	if Classify(b[0], r0, 10*time.Second) != Writing || Classify(b[1], r0, 10*time.Second) != Never {
		t.Fatalf("first look: %+v", b)
	}
	// 30 s later h1 has not written again: silent (dead or cut from the
	// storage too), whatever its own clock says.
	b = tr.Observe(r0.Add(30*time.Second), ReadHeartbeats(root, []string{"h1"}))
	if got := Classify(b[0], r0.Add(30*time.Second), 10*time.Second); got != Silent {
		t.Fatalf("no new write: %s", got)
	}
	// It writes again: writing (isolated from the network, alive on disk).
	clock = clock.Add(time.Second)
	if _, err := h1.Write(); err != nil {
		t.Fatal(err)
	}
	b = tr.Observe(r0.Add(31*time.Second), ReadHeartbeats(root, []string{"h1"}))
	if got := Classify(b[0], r0.Add(32*time.Second), 10*time.Second); got != Writing {
		t.Fatalf("wrote again: %s", got)
	}
}

func TestHeartbeatRejectsBadHost(t *testing.T) {
	for _, h := range []string{"", "..", "a/b", ".hidden"} {
		if _, err := (Heartbeat{Root: t.TempDir(), Host: h}).Write(); err == nil {
			t.Errorf("host %q accepted", h)
		}
	}
}

func FuzzParseMounts(f *testing.F) {
	f.Add(readTestdata(f, "proc-mounts-host.txt"))
	f.Add([]byte("/dev/sdb /srv/vm\\040store gfs2 rw 0 0\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ms, err := ParseMounts(data)
		if err != nil {
			return
		}
		for _, m := range ms {
			if m.Type == "" || m.MountPoint == "" {
				t.Fatalf("empty field in %+v", m)
			}
		}
	})
}

func FuzzParseBlkidExport(f *testing.F) {
	for _, n := range []string{"blkid-p-export-gfs2.txt", "blkid-p-export-ocfs2.txt", "blkid-p-export-empty.txt"} {
		f.Add(readTestdata(f, n))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sig, err := ParseBlkidExport(data)
		if err == nil && sig.Type != sig.Fields["TYPE"] && sig.Type != sig.Fields["PTTYPE"] {
			t.Fatalf("type %q from %v", sig.Type, sig.Fields)
		}
	})
}

func FuzzParseHeartbeat(f *testing.F) {
	f.Add([]byte("2026-01-02T03:04:05.000000006Z\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tm, err := ParseHeartbeat(data)
		if err == nil && tm.IsZero() && !strings.HasPrefix(strings.TrimSpace(string(data)), "0001") {
			t.Fatalf("zero time from %q", data)
		}
	})
}

func TestProcessRunning(t *testing.T) {
	self, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	if err := (ProcessRunning{Name: strings.TrimSpace(string(self))}).Check(context.Background()); err != nil {
		t.Fatalf("own process not found: %v", err)
	}
	// dlm_controld cannot run here (no DLM in the kernel).
	if err := (ProcessRunning{Name: "dlm_controld"}).Check(context.Background()); err == nil || !strings.Contains(err.Error(), "dlm_controld is not running") {
		t.Fatalf("dlm_controld: %v", err)
	}
	// A fake /proc tree.
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "42"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "42", "comm"), []byte("dlm_controld\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := (ProcessRunning{Name: "dlm_controld", ProcRoot: root}).Check(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestO2CBStatusReal asks the real o2cb tool; the o2cb cluster cannot come
// online here (no ocfs2 modules, no configfs cluster), so it must say not
// running.
func TestO2CBStatusReal(t *testing.T) {
	testenv.NeedCommand(t, "o2cb")
	c := CommandSucceeds{Runner: ExecRunner{}, Name: "o2cb", Args: []string{"cluster-status", "alpha"}}
	err := c.Check(context.Background())
	if err == nil || !strings.Contains(err.Error(), "o2cb cluster-status alpha") {
		t.Fatalf("o2cb offline here, got %v", err)
	}
}

func TestHeartbeatRun(t *testing.T) {
	root := t.TempDir()
	n := 0
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	hb := Heartbeat{Root: root, Host: "h1", Now: func() time.Time { n++; return clock.Add(time.Duration(n) * time.Second) }}
	ticks := make(chan time.Time)
	var got []time.Time
	done := make(chan struct{})
	go func() {
		hb.Run(context.Background(), ticks, func(tm time.Time, err error) {
			if err != nil {
				t.Error(err)
			}
			got = append(got, tm)
		})
		close(done)
	}()
	ticks <- time.Time{}
	ticks <- time.Time{}
	close(ticks)
	<-done
	if len(got) != 3 || !got[2].Equal(clock.Add(3*time.Second)) {
		t.Fatalf("writes %v", got)
	}
	b := ReadHeartbeats(root, []string{"h1"})
	if !b[0].Written.Equal(got[2]) {
		t.Fatalf("file holds %v, last write %v", b[0].Written, got[2])
	}
}
