package clvm

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmha/vmha/internal/testlab/testenv"
	"github.com/vmha/vmha/sharedfs"
)

// loopPV attaches a fresh image file to a loop device and removes it at
// the end of the test, by its exact name.
func loopPV(t *testing.T) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "pv.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 64<<20); err != nil {
		t.Fatal(err)
	}
	out, err := sharedfs.ExecRunner{}.Run(context.Background(), "losetup", "-f", "--show", img)
	if err != nil {
		testenv.Missing(t, fmt.Sprintf("loop devices (losetup -f --show): %v", err))
	}
	dev := strings.TrimSpace(string(out))
	if !strings.HasPrefix(dev, "/dev/loop") {
		t.Fatalf("losetup printed %q", out)
	}
	t.Cleanup(func() {
		if _, err := (sharedfs.ExecRunner{}).Run(context.Background(), "losetup", "-d", dev); err != nil {
			t.Errorf("cleanup: losetup -d %s: %v", dev, err)
		}
	})
	return dev
}

// TestRealLVM runs the real pvcreate, vgcreate, lvcreate and lvs/vgs on a
// loop device. What the kernel prevents here: activating an LV (no
// device-mapper), so lvcreate runs with activation=0 and lvchange -aey
// must fail; and vgcreate --shared (no lvmlockd, which needs DLM or
// sanlock), which must fail with LVM's own reason.
func TestRealLVM(t *testing.T) {
	for _, c := range []string{"losetup", "pvcreate", "vgcreate", "lvcreate", "lvs", "vgs", "vgremove", "pvremove", "lvchange"} {
		testenv.NeedCommand(t, c)
	}
	if os.Geteuid() != 0 {
		testenv.Missing(t, "LVM on loop devices needs root")
	}
	ctx := context.Background()
	ex := sharedfs.ExecRunner{}
	dev := loopPV(t)
	vg := fmt.Sprintf("vmhatest%d", os.Getpid())
	if _, err := ex.Run(ctx, "pvcreate", "-y", dev); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = ex.Run(context.Background(), "pvremove", "-y", dev) })
	if _, err := ex.Run(ctx, "vgcreate", vg, dev); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := ex.Run(context.Background(), "vgremove", "-y", vg); err != nil {
			t.Errorf("cleanup: vgremove %s: %v", vg, err)
		}
	})
	if _, err := ex.Run(ctx, "lvcreate", "--config", "global{activation=0}", "-an", "-Zn", "-L", "8M", "-n", "web1-root", vg); err != nil {
		t.Fatal(err)
	}

	r := LocalRunner{Host: "h1"}
	m := &Manager{Run: r, Hosts: []string{"h1"}}
	st, err := m.Status(ctx, "h1", []string{vg + "/web1-root"})
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 1 || st[0].Ref() != vg+"/web1-root" || st[0].ActiveLocally || st[0].ActiveExclusively {
		t.Fatalf("lvs: %+v", st)
	}
	if _, err := m.Status(ctx, "h1", []string{vg + "/nope"}); err == nil {
		t.Fatal("lvs of a missing LV succeeded")
	}

	out, err := ex.Run(ctx, "vgs", "--reportformat", "json", "--binary", "-o", vgsFields, vg)
	if err != nil {
		t.Fatal(err)
	}
	vgs, err := ParseVGs(out)
	if err != nil || len(vgs) != 1 || vgs[0].Name != vg || vgs[0].Clustered || vgs[0].Shared {
		t.Fatalf("vgs: %+v %v", vgs, err)
	}
	if f, err := DetectLegacy(nil, vgs, nil); err != nil || len(f) != 0 {
		t.Fatalf("a local VG reported as clvmd: %+v %v", f, err)
	}

	// Exclusive activation needs device-mapper: the real lvchange fails,
	// and Start says which LV on which host.
	err = m.Start(ctx, "web1", "h1", []string{vg + "/web1-root"}, StartOptions{})
	if err == nil || !strings.Contains(err.Error(), "exclusive activation of "+vg+"/web1-root on h1") {
		t.Fatalf("activation without device-mapper: %v", err)
	}

	// vgcreate --shared needs lvmlockd: refused by LVM itself.
	dev2 := loopPV(t)
	vg2 := vg + "s"
	err = CreateSharedVG(ctx, r, "h1", vg2, LockDLM, []string{dev2})
	if err == nil {
		_, _ = ex.Run(context.Background(), "vgremove", "-y", vg2)
		t.Fatal("shared VG created without lvmlockd")
	}
	if !strings.Contains(err.Error(), "lvmlockd") || !strings.Contains(err.Error(), "shared VG "+vg2+" on h1") {
		t.Fatalf("vgcreate --shared: %v", err)
	}
	// vgcreate may have labelled the PV before refusing.
	_, _ = ex.Run(context.Background(), "pvremove", "-y", dev2)
}
