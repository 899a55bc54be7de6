package virtlab

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPowerCutDiskGuest: a disk guest on h1 keeps its counter on a shared
// image; h2 cannot start it while it runs (QEMU's image lock); h1's power
// cut ends its libvirtd and QEMU; h2 then starts the guest from the same
// disk and the counter goes on from where h1 left it; h1 powers on again
// with the guest defined and not running.
func TestPowerCutDiskGuest(t *testing.T) {
	hosts := NewHosts(t, 2)
	img, err := EnsureDiskImage(DefaultCacheDir)
	if err != nil {
		t.Fatal(err)
	}
	a, b := hosts[0], hosts[1]
	disk := filepath.Join(t.TempDir(), "g.img")
	if err := NewSharedDisk(disk); err != nil {
		t.Fatal(err)
	}
	start := func(h *Host) error {
		return DefineAndStartXML(h, "g", DiskGuestXML("g", img, disk, 128))
	}
	if err := start(a); err != nil {
		t.Fatal(err)
	}
	before, err := WaitDisk(disk, 60*time.Second, func(r DiskRecord) bool { return r.Host == a.Name && r.N >= 2 })
	if err != nil {
		t.Fatalf("%v; console: %v", err, lastLinesOf(a.SerialLog("g")))
	}
	if locked, err := ImageLocked(disk); err != nil || !locked {
		t.Fatalf("ImageLocked while h1 runs the guest = %v, %v; want locked", locked, err)
	}
	if err := start(b); err == nil || !strings.Contains(err.Error(), "lock") {
		t.Fatalf("second start on %s while %s runs the guest: %v, want QEMU's write-lock error", b.Name, a.Name, err)
	}
	if got := b.LockConflicts(); len(got) == 0 {
		t.Fatalf("%s's QEMU log shows no write-lock conflict", b.Name)
	}
	pids := a.QEMUPIDs()
	if out, err := exec.Command("sh", "-c", a.PowerCutCommand()).CombinedOutput(); err != nil {
		t.Fatalf("power cut: %v: %s", err, out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for a.PoweredOn() || anyQEMU(pids) {
		if time.Now().After(deadline) {
			t.Fatalf("after the power cut: libvirtd up %v, QEMU %v", a.PoweredOn(), pids)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if locked, err := ImageLocked(disk); err != nil || locked {
		t.Fatalf("ImageLocked after the power cut = %v, %v; want free", locked, err)
	}
	if err := start(b); err != nil {
		t.Fatal(err)
	}
	after, err := WaitDisk(disk, 60*time.Second, func(r DiskRecord) bool { return r.Host == b.Name })
	if err != nil {
		t.Fatal(err)
	}
	if after.N <= before.N || after.Boot == before.Boot {
		t.Fatalf("on %s the disk says %+v after %+v on %s: the counter did not continue from the disk", b.Name, after, before, a.Name)
	}
	t.Logf("counter %d on %s, then %d on %s (cgroup %q)", before.N, a.Name, after.N, b.Name, a.Cgroup())
	if err := a.PowerOn(); err != nil {
		t.Fatal(err)
	}
	if g := a.RunningGuests(); len(g) != 0 {
		t.Fatalf("%s powered on running %v", a.Name, g)
	}
}

func anyQEMU(pids []int) bool {
	for _, p := range pids {
		if isQEMU(p) {
			return true
		}
	}
	return false
}

func lastLinesOf(path string) string {
	b, _ := exec.Command("tail", "-n", "5", path).CombinedOutput()
	return string(b)
}
