package hooks

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/vmha/vmha/clvm"
	"github.com/vmha/vmha/migration"
	"github.com/vmha/vmha/sharedfs"
	"github.com/vmha/vmha/storage"
)

// recorder records lvchange commands per host; activation is what the
// kernel prevents here (no device-mapper, no lvmlockd).
type recorder struct {
	mu   sync.Mutex
	cmds []string
	fail map[string]error
}

func (r *recorder) Run(_ context.Context, host, name string, args ...string) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	line := host + ": " + sharedfs.CommandLine(name, args)
	r.cmds = append(r.cmds, line)
	return nil, r.fail[line]
}

const xml = `<domain type='kvm'><name>web1</name><memory>524288</memory>
<devices>
  <disk type='block' device='disk'><source dev='/dev/vg0/web1-root'/></disk>
  <disk type='file' device='disk'><source file='/srv/vmstore/web1-data.qcow2'/></disk>
</devices></domain>`

var cfg = storage.Config{
	Filesystems:  []storage.Filesystem{{Name: "vmstore", Type: "gfs2", Device: "/dev/sdb", MountPoint: "/srv/vmstore"}},
	VolumeGroups: []storage.VolumeGroup{{Name: "vg0", LockType: "dlm"}},
}

func newHooks(r *recorder, domain string) *Hooks {
	return &Hooks{
		LVM: &clvm.Manager{Run: r},
		LVs: DomainLVs(cfg, func(context.Context, string) ([]byte, error) { return []byte(domain), nil }),
	}
}

var (
	src = migration.Endpoint{Host: "h1", URI: "qemu:///system"}
	dst = migration.Endpoint{Host: "h2", URI: "qemu+tls://h2/system"}
)

func TestMigrationSequence(t *testing.T) {
	r := &recorder{}
	h := newHooks(r, xml)
	ctx := context.Background()
	if err := h.Before(ctx, "web1", src, dst); err != nil {
		t.Fatal(err)
	}
	if err := h.After(ctx, "web1", src, dst); err != nil {
		t.Fatal(err)
	}
	want := "h1: lvchange -asy vg0/web1-root|h2: lvchange -asy vg0/web1-root|h1: lvchange -an vg0/web1-root|h2: lvchange -aey vg0/web1-root"
	if got := strings.Join(r.cmds, "|"); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestAbort(t *testing.T) {
	r := &recorder{}
	h := newHooks(r, xml)
	ctx := context.Background()
	if err := h.Before(ctx, "web1", src, dst); err != nil {
		t.Fatal(err)
	}
	if err := h.Abort(ctx, "web1", src, dst); err != nil {
		t.Fatal(err)
	}
	want := "h1: lvchange -asy vg0/web1-root|h2: lvchange -asy vg0/web1-root|h2: lvchange -an vg0/web1-root|h1: lvchange -aey vg0/web1-root"
	if got := strings.Join(r.cmds, "|"); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

// A disk on no known storage refuses the migration before any command.
func TestUnknownDiskRefuses(t *testing.T) {
	r := &recorder{}
	h := newHooks(r, strings.Replace(xml, "/srv/vmstore/", "/var/lib/libvirt/images/", 1))
	err := h.Before(context.Background(), "web1", src, dst)
	if err == nil || !strings.Contains(err.Error(), "VM web1: disk /var/lib/libvirt/images/web1-data.qcow2") {
		t.Fatalf("got %v", err)
	}
	if len(r.cmds) != 0 {
		t.Fatalf("ran %v", r.cmds)
	}
}

func TestTargetNotReadyRefuses(t *testing.T) {
	r := &recorder{}
	h := newHooks(r, xml)
	h.TargetReady = func(_ context.Context, vm, host string) error {
		if host == "h2" {
			return errors.New("vmstore is not mounted at /srv/vmstore")
		}
		return nil
	}
	err := h.Before(context.Background(), "web1", src, dst)
	if err == nil || !strings.Contains(err.Error(), "not ready on h2") || !strings.Contains(err.Error(), "not mounted") {
		t.Fatalf("got %v", err)
	}
	if len(r.cmds) != 0 {
		t.Fatalf("ran %v", r.cmds)
	}
}

// A VM on cluster file systems only needs no LVM commands.
func TestNoLVs(t *testing.T) {
	r := &recorder{}
	h := newHooks(r, strings.Replace(xml, "<disk type='block' device='disk'><source dev='/dev/vg0/web1-root'/></disk>", "", 1))
	ctx := context.Background()
	for _, f := range []func(context.Context, string, migration.Endpoint, migration.Endpoint) error{h.Before, h.After, h.Abort} {
		if err := f(ctx, "web1", src, dst); err != nil {
			t.Fatal(err)
		}
	}
	if len(r.cmds) != 0 {
		t.Fatalf("ran %v", r.cmds)
	}
}
