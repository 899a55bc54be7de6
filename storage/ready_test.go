package storage

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmha/vmha/sharedfs"
)

func TestHostAttributesAndVMReady(t *testing.T) {
	attrs := HostAttributes([]sharedfs.Readiness{{Name: "vmstore", Ready: true}, {Name: "iso", Ready: false, Reasons: []string{"not mounted"}}})
	if attrs["storage.vmstore"] != "ready" || attrs["storage.iso"] != "not-ready" || attrs["storage-ready"] != "false" {
		t.Fatalf("attrs %v", attrs)
	}
	if HostAttributes([]sharedfs.Readiness{{Name: "vmstore", Ready: true}})["storage-ready"] != "true" {
		t.Fatal("all ready not true")
	}
	onStore := []Resource{{Disk: "/srv/vmstore/a", Kind: KindFilesystem, Name: "vmstore"}, {Disk: "/dev/vg0/a", Kind: KindLogicalVolume, Name: "vg0", LV: "a"}}
	if ok, why := VMReady(onStore, attrs); !ok {
		t.Fatalf("refused: %s", why)
	}
	onISO := append(onStore, Resource{Disk: "/srv/iso/x.iso", Kind: KindFilesystem, Name: "iso"})
	if ok, why := VMReady(onISO, attrs); ok || why != "storage not ready: iso" {
		t.Fatalf("iso not ready: %v %q", ok, why)
	}
	if ok, why := VMReady(onStore, map[string]string{}); ok || !strings.Contains(why, "vmstore (no readiness reported)") {
		t.Fatalf("no attrs: %v %q", ok, why)
	}
}

func TestUsers(t *testing.T) {
	vms := map[string][]Resource{
		"b": {{Kind: KindFilesystem, Name: "vmstore"}},
		"a": {{Kind: KindLogicalVolume, Name: "vg0", LV: "a"}, {Kind: KindFilesystem, Name: "vmstore"}},
		"c": {{Kind: KindLogicalVolume, Name: "vg0", LV: "c"}},
	}
	if got := strings.Join(Users("vmstore", vms), ","); got != "a,b" {
		t.Fatalf("vmstore users %s", got)
	}
	if got := strings.Join(Users("vg0", vms), ","); got != "a,c" {
		t.Fatalf("vg0 users %s", got)
	}
}

// TestHostCheck checks two configured file systems on this host: the
// mount table file lists one temp dir as gfs2 (mounting GFS2 is what the
// kernel prevents here) and not the other; dlm_controld cannot run here,
// so the first is not ready either, for that reason alone.
func TestHostCheck(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "vmstore")
	if err := os.Mkdir(store, 0o755); err != nil {
		t.Fatal(err)
	}
	table := filepath.Join(dir, "mounts")
	if err := os.WriteFile(table, []byte("/dev/sdb "+store+" gfs2 rw 0 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Filesystems: []Filesystem{
		{Name: "vmstore", Type: "gfs2", Device: "/dev/sdb", MountPoint: store},
		{Name: "iso", Type: "ocfs2", Device: "/dev/sdc", MountPoint: filepath.Join(dir, "iso")},
	}}
	rs := HostCheck{Host: "h1", Cluster: "alpha", Runner: sharedfs.ExecRunner{}, MountsFile: table, Timeout: 5 * time.Second}.Check(context.Background(), cfg)
	if len(rs) != 2 || rs[0].Name != "vmstore" || rs[1].Name != "iso" {
		t.Fatalf("%+v", rs)
	}
	if rs[0].Ready || len(rs[0].Reasons) != 1 || !strings.Contains(rs[0].Reasons[0], "dlm_controld is not running") {
		t.Fatalf("vmstore: %+v", rs[0])
	}
	if rs[1].Ready || !strings.Contains(strings.Join(rs[1].Reasons, ";"), "not mounted") {
		t.Fatalf("iso: %+v", rs[1])
	}
	if _, err := os.Stat(filepath.Join(store, sharedfs.HeartbeatDir, "h1")); err != nil {
		t.Fatalf("no probe on the mounted one: %v", err)
	}
	if HostAttributes(rs)["storage-ready"] != "false" {
		t.Fatal("storage-ready")
	}
}

func TestLockManagerFor(t *testing.T) {
	if lm, ok := LockManagerFor(Filesystem{Type: "ocfs2"}, "alpha", nil).(sharedfs.CommandSucceeds); !ok || strings.Join(lm.Args, " ") != "cluster-status alpha" {
		t.Fatalf("ocfs2/o2cb: %#v", lm)
	}
	for _, f := range []Filesystem{{Type: "gfs2"}, {Type: "ocfs2", Stack: "pcmk"}} {
		if lm, ok := LockManagerFor(f, "alpha", nil).(sharedfs.ProcessRunning); !ok || lm.Name != "dlm_controld" {
			t.Fatalf("%+v: %#v", f, lm)
		}
	}
}
