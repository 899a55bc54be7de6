package storage

import (
	"errors"
	"strings"
	"testing"

	"github.com/vmha/vmha/model"
)

var cfg = Config{
	Filesystems: []Filesystem{
		{Name: "vmstore", Type: "gfs2", Device: "/dev/disk/by-id/wwn-1", MountPoint: "/srv/vmstore"},
		{Name: "iso", Type: "ocfs2", Device: "/dev/disk/by-id/wwn-2", MountPoint: "/srv/iso/"},
	},
	VolumeGroups: []VolumeGroup{{Name: "vg-san", LockType: "sanlock"}, {Name: "vgdlm", LockType: "dlm"}},
}

const domain = `<domain type='kvm'>
  <name>web1</name><memory unit='MiB'>512</memory><vcpu>1</vcpu>
  <devices>
    <disk type='file' device='disk'><source file='/srv/vmstore/web1.qcow2'/></disk>
    <disk type='block' device='disk'><source dev='/dev/vgdlm/web1-data'/></disk>
    <disk type='block' device='disk'><source dev='/dev/mapper/vg--san-web1--log'/></disk>
    <disk type='volume' device='disk'><source pool='vgdlm' volume='web1-swap'/></disk>
    <disk type='file' device='cdrom'><source file='/srv/iso/debian.iso'/></disk>
    <disk type='file' device='cdrom'/>
  </devices>
</domain>`

func TestMapDisksFromDomainXML(t *testing.T) {
	info, err := model.ParseDomainXML([]byte(domain))
	if err != nil {
		t.Fatal(err)
	}
	rs, err := cfg.MapDisks(info.Name, info.Disks)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rs {
		got = append(got, r.String())
	}
	want := "filesystem vmstore|lv vgdlm/web1-data|lv vg-san/web1-log|lv vgdlm/web1-swap|filesystem iso"
	if strings.Join(got, "|") != want {
		t.Fatalf("got %q\nwant %q", strings.Join(got, "|"), want)
	}
	if lvs := LVs(rs); strings.Join(lvs, " ") != "vgdlm/web1-data vg-san/web1-log vgdlm/web1-swap" {
		t.Fatalf("LVs %v", lvs)
	}
	if fss := Filesystems(rs); strings.Join(fss, " ") != "vmstore iso" {
		t.Fatalf("file systems %v", fss)
	}
}

func TestMapDisksUnknown(t *testing.T) {
	cases := map[string]string{
		"/var/lib/libvirt/images/x.qcow2": "on no configured cluster file system",
		"/srv/vmstore":                    "on no configured", // the mount point itself is not a disk on it
		"/srv/vmstore2/x.img":             "on no configured", // a sibling path is not under the mount point
		"/dev/sda":                        "on no configured",
		"/dev/localvg/root":               `volume group "localvg" is not a configured shared VG`,
		"/dev/mapper/localvg-root":        `volume group "localvg"`,
		"default/x.qcow2":                 `libvirt pool "default"`,
		"rbd-pool/image/snap":             "not a path or a pool volume",
		"(disk without source)":           "has no source",
	}
	for disk, why := range cases {
		_, err := cfg.MapDisks("db1", []string{"/srv/vmstore/ok.img", disk})
		var de *DiskError
		if !errors.As(err, &de) {
			t.Errorf("%s: got %v, want a DiskError", disk, err)
			continue
		}
		if de.VM != "db1" || de.Disk != disk || !strings.Contains(err.Error(), "VM db1: disk "+disk) || !strings.Contains(err.Error(), why) {
			t.Errorf("%s: %q (want it to name the VM, the disk and say %q)", disk, err, why)
		}
	}
	// Several bad disks are all reported.
	_, err := cfg.MapDisks("db1", []string{"/a", "/b"})
	if err == nil || !strings.Contains(err.Error(), "disk /a") || !strings.Contains(err.Error(), "disk /b") {
		t.Fatalf("two bad disks: %v", err)
	}
}

func TestLVOfDevice(t *testing.T) {
	for in, want := range map[string]string{
		"/dev/vg/lv":                "vg/lv",
		"/dev/mapper/vg-lv":         "vg/lv",
		"/dev/mapper/my--vg-my--lv": "my-vg/my-lv",
		"/dev/mapper/a--b--c-d":     "a-b-c/d",
		"/dev/mapper/novg":          "",
		"/dev/sda":                  "",
		"/dev/disk/by-id/x":         "",
	} {
		vg, lv, ok := lvOfDevice(in)
		got := ""
		if ok {
			got = vg + "/" + lv
		}
		if got != want {
			t.Errorf("%s: got %q, want %q", in, got, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := cfg.Validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	bad := Config{
		Filesystems: []Filesystem{
			{Name: "a", Type: "ext4", Device: "/dev/x", MountPoint: "/srv/a"},
			{Name: "b", Type: "gfs2", Device: "sdb", MountPoint: "/srv/a/b"},
			{Name: "c", Type: "ocfs2", Device: "/dev/y", MountPoint: "/srv/c", Stack: "cman"},
			{Name: "d", Type: "gfs2", Device: "/dev/z", MountPoint: "/", Stack: "pcmk"},
		},
		VolumeGroups: []VolumeGroup{{Name: "a", LockType: "dlm"}, {Name: "bad/name", LockType: "clvmd"}},
	}
	err := bad.Validate()
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{
		`filesystems[0] "a": type "ext4"`,
		`filesystems[1] "b": device "sdb"`,
		`mount point /srv/a/b overlaps /srv/a`,
		`filesystems[2] "c": stack "cman"`,
		`filesystems[3] "d": stack "pcmk" is an OCFS2 setting`,
		`filesystems[3] "d": mount point "/"`,
		`volume group "a" has the same name as file system "a"`,
		`volume_groups[1] "bad/name"`,
		`lock type "clvmd"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
}

func FuzzMapDisks(f *testing.F) {
	for _, s := range []string{"/srv/vmstore/a", "/dev/mapper/vg--san-x", "vgdlm/x", "/dev/vgdlm/x", "a/b/c", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, disk string) {
		rs, err := cfg.MapDisks("vm", []string{disk})
		if err == nil && len(rs) != 1 {
			t.Fatalf("%q: no error and %d resources", disk, len(rs))
		}
		if err != nil && !strings.Contains(err.Error(), "VM vm: disk ") {
			t.Fatalf("%q: error %q does not name the VM", disk, err)
		}
	})
}
