package storage

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmha/vmha/internal/testlab/testenv"
	"github.com/vmha/vmha/sharedfs"
)

// recorder records commands and runs none: it proves that refused
// requests ran nothing.
type recorder struct{ cmds []string }

func (r *recorder) Run(_ context.Context, name string, args ...string) ([]byte, error) {
	r.cmds = append(r.cmds, sharedfs.CommandLine(name, args))
	return nil, nil
}

func image(t *testing.T, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, size); err != nil {
		t.Fatal(err)
	}
	return p
}

func emptyMounts(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "mounts")
	if err := os.WriteFile(p, []byte("proc /proc proc rw 0 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestInitRefusesBeforeRunning(t *testing.T) {
	img := image(t, 1<<20)
	mounts := emptyMounts(t)
	mountedTable := filepath.Join(t.TempDir(), "mounts-with-img")
	if err := os.WriteFile(mountedTable, []byte(img+" /srv/vmstore gfs2 rw 0 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fs := Filesystem{Name: "vmstore", Type: "gfs2", Device: img, MountPoint: "/srv/vmstore"}
	cases := []struct {
		name string
		req  InitRequest
		want string
	}{
		{"no yes", InitRequest{FS: fs, Cluster: "alpha", Hosts: 3, MountsFile: mounts}, "pass --yes"},
		{"no hosts", InitRequest{FS: fs, Cluster: "alpha", Hosts: 0, Yes: true, MountsFile: mounts}, "0 hosts"},
		{"no cluster", InitRequest{FS: fs, Hosts: 2, Yes: true, MountsFile: mounts}, "cluster name is empty"},
		{"bad type", InitRequest{FS: Filesystem{Name: "x", Type: "xfs", Device: img}, Cluster: "alpha", Hosts: 2, Yes: true, MountsFile: mounts}, `type "xfs"`},
		{"mounted, even forced", InitRequest{FS: fs, Cluster: "alpha", Hosts: 2, Yes: true, Force: true, MountsFile: mountedTable}, "is mounted at /srv/vmstore"},
		{"no mount table", InitRequest{FS: fs, Cluster: "alpha", Hosts: 2, Yes: true, MountsFile: filepath.Join(t.TempDir(), "none")}, "cannot tell whether"},
		{"missing device", InitRequest{FS: Filesystem{Name: "vmstore", Type: "gfs2", Device: img + ".missing"}, Cluster: "alpha", Hosts: 2, Yes: true, MountsFile: mounts}, "no such file"},
	}
	for _, c := range cases {
		var r recorder
		err := Init(context.Background(), &r, c.req)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want it to say %q", c.name, err, c.want)
		}
		if len(r.cmds) != 0 {
			t.Errorf("%s: ran %v", c.name, r.cmds)
		}
	}
	// Without --yes the error shows the command it would run.
	err := Init(context.Background(), &recorder{}, InitRequest{FS: fs, Cluster: "alpha", Hosts: 3, MountsFile: mounts})
	if !strings.Contains(err.Error(), "mkfs.gfs2 -O -p lock_dlm -t alpha:vmstore -j 3 -J 8 "+img) {
		t.Fatalf("no command in %v", err)
	}
}

// TestInitRealTools formats image files with the real mkfs.gfs2 and
// mkfs.ocfs2 and reads them back; blkid finds the signature the second
// time. Mounting is what the kernel prevents here, so "mounted" comes from
// a mount table file.
func TestInitRealTools(t *testing.T) {
	for _, tool := range []string{"mkfs.gfs2", "tunegfs2", "gfs2_edit", "mkfs.ocfs2", "debugfs.ocfs2", "tunefs.ocfs2", "blkid", "modprobe", "wipefs"} {
		testenv.NeedCommand(t, tool)
	}
	ctx := context.Background()
	r := sharedfs.ExecRunner{}
	mounts := emptyMounts(t)
	for _, typ := range []string{"gfs2", "ocfs2"} {
		img := image(t, 256<<20)
		fs := Filesystem{Name: "vms", Type: typ, Device: img, MountPoint: "/srv/vms"}
		if err := Init(ctx, r, InitRequest{FS: fs, Cluster: "alpha", Hosts: 3, Yes: true, MountsFile: mounts}); err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		if err := CheckFilesystem(ctx, r, fs, "alpha", 3); err != nil {
			t.Fatalf("%s check: %v", typ, err)
		}
		if err := CheckFilesystem(ctx, r, fs, "alpha", 4); err == nil {
			t.Fatalf("%s: 3 journals/slots passed for 4 hosts", typ)
		}
		if err := CheckFilesystem(ctx, r, fs, "beta", 3); err == nil {
			t.Fatalf("%s: cluster alpha passed for beta", typ)
		}
		// CheckAll names the file system and the device of each problem.
		err := CheckAll(ctx, r, Config{Filesystems: []Filesystem{fs, fs}}, "alpha", 5)
		if err == nil || strings.Count(err.Error(), "file system vms: "+typ+" "+img) != 2 {
			t.Fatalf("%s: CheckAll for 5 hosts: %v", typ, err)
		}
		// The device now holds a file system: refused without --force.
		err = Init(ctx, r, InitRequest{FS: fs, Cluster: "alpha", Hosts: 4, Yes: true, MountsFile: mounts})
		if err == nil || !strings.Contains(err.Error(), "already holds "+typ) || !strings.Contains(err.Error(), "--force") {
			t.Fatalf("%s: second init: %v", typ, err)
		}
		if err := CheckFilesystem(ctx, r, fs, "alpha", 4); err == nil {
			t.Fatalf("%s: the refused init changed the device", typ)
		}
		// Forced: reformatted for 4 hosts.
		if err := Init(ctx, r, InitRequest{FS: fs, Cluster: "alpha", Hosts: 4, Yes: true, Force: true, MountsFile: mounts}); err != nil {
			t.Fatalf("%s forced: %v", typ, err)
		}
		if err := CheckFilesystem(ctx, r, fs, "alpha", 4); err != nil {
			t.Fatalf("%s after forced init: %v", typ, err)
		}
	}
}
