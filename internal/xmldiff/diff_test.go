package xmldiff

import (
	"strings"
	"testing"
)

func TestUnified(t *testing.T) {
	a := "<domain>\n  <name>web1</name>\n  <memory unit='MiB'>512</memory>\n  <vcpu>1</vcpu>\n</domain>\n"
	b := "<domain>\n  <name>web1</name>\n  <memory unit='MiB'>1024</memory>\n  <vcpu>1</vcpu>\n  <on_crash>restart</on_crash>\n</domain>\n"
	got := Unified("replicated", "web1.xml", a, b)
	want := `--- replicated
+++ web1.xml
@@ -1,5 +1,6 @@
 <domain>
   <name>web1</name>
-  <memory unit='MiB'>512</memory>
+  <memory unit='MiB'>1024</memory>
   <vcpu>1</vcpu>
+  <on_crash>restart</on_crash>
 </domain>
`
	if got != want {
		t.Errorf("Unified:\n%s\nwant:\n%s", got, want)
	}
	if d := Unified("a", "b", a, a); d != "" {
		t.Errorf("equal texts: %q, want no diff", d)
	}
}

// TestUnifiedHunks: changes far apart are separate hunks with their own
// line numbers; an addition at the end has an empty old side.
func TestUnifiedHunks(t *testing.T) {
	var a []string
	for i := range 20 {
		a = append(a, "line "+string(rune('a'+i)))
	}
	b := append([]string(nil), a...)
	b[1] = "changed b"
	b[15] = "changed p"
	got := Unified("a", "b", strings.Join(a, "\n"), strings.Join(b, "\n"))
	if n := strings.Count(got, "@@ -"); n != 2 {
		t.Fatalf("%d hunks, want 2:\n%s", n, got)
	}
	for _, w := range []string{"@@ -1,5 +1,5 @@", "@@ -13,7 +13,7 @@", "-line b\n+changed b", "-line p\n+changed p"} {
		if !strings.Contains(got, w) {
			t.Errorf("diff lacks %q:\n%s", w, got)
		}
	}
	if got := Unified("a", "b", "", "x\n"); got != "--- a\n+++ b\n@@ -0,0 +1,1 @@\n+x\n" {
		t.Errorf("from empty: %q", got)
	}
}

// TestNormalize: what libvirt adds (uuid, id, default devices, addresses,
// machine type, KiB units) does not show; what differs in the fields the
// operator wrote does.
func TestNormalize(t *testing.T) {
	ref := `<domain type='kvm'>
  <name>web1</name>
  <memory unit='MiB'>512</memory>
  <vcpu>2</vcpu>
  <os><type>hvm</type></os>
  <devices>
    <disk type='file' device='disk'><source file='/shared/web1.img'/><target dev='vda' bus='virtio'/></disk>
  </devices>
</domain>`
	host := `<domain type='kvm' id='7'>
  <name>web1</name>
  <uuid>6f2a0b8e-4c1d-4f0a-9a51-2d7c3e1b9f00</uuid>
  <memory unit='KiB'>524288</memory>
  <currentMemory unit='KiB'>524288</currentMemory>
  <vcpu placement='static'>2</vcpu>
  <os><type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type><boot dev='hd'/></os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='/shared/web1.img'/><target dev='vda' bus='virtio'/><alias name='virtio-disk0'/><address type='pci' domain='0x0000' bus='0x00' slot='0x04' function='0x0'/></disk>
    <controller type='usb' index='0'/>
    <memballoon model='virtio'/>
  </devices>
</domain>`
	r, h, err := Normalize(ref, host)
	if err != nil {
		t.Fatal(err)
	}
	if r != h {
		t.Fatalf("same definition differs after normalising:\n%s", Unified("replicated", "host", r, h))
	}
	changed := strings.Replace(strings.Replace(host, "524288</memory>", "1048576</memory>", 1), "web1.img", "web1-old.img", 1)
	r, h, err = Normalize(ref, changed)
	if err != nil {
		t.Fatal(err)
	}
	d := Unified("replicated", "host", r, h)
	for _, w := range []string{`-  <memory unit="KiB">524288</memory>`, `+  <memory unit="KiB">1048576</memory>`, `-      <source file="/shared/web1.img"/>`, `+      <source file="/shared/web1-old.img"/>`} {
		if !strings.Contains(d, w) {
			t.Errorf("diff lacks %q:\n%s", w, d)
		}
	}
	if _, _, err := Normalize("<domain>", host); err == nil {
		t.Error("broken XML normalised without an error")
	}
}
