package storage

import (
	"strings"
	"testing"

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
