package virtlab

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"libvirt.org/go/libvirt"
)

// A disk guest is the counter guest with state on shared storage: it boots
// the same kernel with an initrd that also loads virtio-blk, and keeps its
// counter in the first sector of a raw disk image (vda) that every lab host
// sees at the same path (the lab's shared storage). Each second it writes
// "vmha-disk n=N host=H boot=B" there (and fsyncs), and prints the same
// counter on the serial console. At boot it reads the sector back, so a
// guest restarted on another host from the same disk continues the count.
// H is the name of the host it runs on, read from a one-sector identity
// disk (vdb, read-only) that each host keeps in its own /var/lib/libvirt:
// the same domain XML names a different file on each host.

// diskImageVersion is part of the disk guest's file names: bump it when
// diskInitScript or the module list changes.
const diskImageVersion = "v1"

// diskModules are the Debian cloud kernel's modules the guest loads, in
// dependency order, to see virtio disks (they are not built in).
var diskModules = []string{
	"kernel/drivers/virtio/virtio_ring.ko",
	"kernel/drivers/virtio/virtio.ko",
	"kernel/drivers/virtio/virtio_pci_legacy_dev.ko",
	"kernel/drivers/virtio/virtio_pci_modern_dev.ko",
	"kernel/drivers/virtio/virtio_pci.ko",
	"kernel/drivers/block/virtio_blk.ko",
}

var diskInitScript = initHead() + `for m in /lib/vmha-modules/*.ko; do insmod "$m"; done
n=0
while [ ! -b /dev/vda ] || [ ! -b /dev/vdb ]; do
  n=$((n+1)); [ $n -gt 100 ] && { echo "vmha-disk-error no virtio disks" > /dev/ttyS0; break; }
  sleep 0.1
done
host=$(dd if=/dev/vdb bs=512 count=1 2>/dev/null | tr -dc 'a-zA-Z0-9._-')
boot=$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
i=$(dd if=/dev/vda bs=512 count=1 2>/dev/null | tr -d '\000' | sed -n 's/^vmha-disk n=\([0-9]*\) .*/\1/p')
i=${i:-0}
while :; do
  i=$((i+1))
  echo "vmha-disk n=$i host=$host boot=$boot" | dd of=/dev/vda bs=512 count=1 conv=sync,notrunc,fsync 2>/dev/null
  echo "vmha-counter boot=$boot n=$i host=$host" > /dev/ttyS0
  sleep 1
done
`

// EnsureDiskImage returns the disk guest's kernel and initrd from cacheDir,
// building them on first use from Debian's linux-image-cloud-amd64 (kernel
// and modules from the same package, so they always match).
func EnsureDiskImage(cacheDir string) (Image, error) {
	return kernelImage(cacheDir, "disk", diskImageVersion, func(work, pkgRoot string) (string, error) {
		mods, _ := filepath.Glob(filepath.Join(pkgRoot, "lib", "modules", "*"))
		if len(mods) != 1 {
			return "", fmt.Errorf("the cloud kernel package holds %d module trees, want 1", len(mods))
		}
		root, err := guestRoot(work, diskInitScript, "lib/vmha-modules")
		if err != nil {
			return "", err
		}
		// Numbered so that the shell's glob loads them in dependency order.
		for i, m := range diskModules {
			if err := copyFile(filepath.Join(mods[0], m), filepath.Join(root, "lib", "vmha-modules", fmt.Sprintf("%02d-%s", i, filepath.Base(m)))); err != nil {
				return "", err
			}
		}
		return root, nil
	})
}

// SharedDiskSize is the size of a disk guest's raw image (only its first
// sector is used).
const SharedDiskSize = 1 << 20

// NewSharedDisk creates an empty raw disk image at path (on the lab's
// shared storage: any folder outside the hosts' private ones).
func NewSharedDisk(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("create shared disk: %w", err)
	}
	if err := f.Truncate(SharedDiskSize); err != nil {
		f.Close()
		return fmt.Errorf("size shared disk %s: %w", path, err)
	}
	return f.Close()
}

// identityPathInHost is a host's identity disk as its QEMU sees it.
const identityPathInHost = "/var/lib/libvirt/vmha-host.img"

// writeIdentity writes the host's one-sector identity disk (its name).
func (h *Host) writeIdentity() error {
	b := make([]byte, 512)
	copy(b, h.Name)
	return os.WriteFile(filepath.Join(h.Dir, "lib", "vmha-host.img"), b, 0o644)
}

// DiskGuestXML is the domain of a disk guest whose counter lives on the
// raw image disk (a path every host sees). The disk uses writethrough
// caching (every guest write reaches the file before it completes; no
// O_DIRECT, which tmpfs refuses) and QEMU's default image locking.
func DiskGuestXML(name string, img Image, disk string, memoryMiB int) string {
	x := GuestXML(name, img, memoryMiB)
	disks := fmt.Sprintf(`    <disk type='file' device='disk'>
      <driver name='qemu' type='raw' cache='writethrough'/>
      <source file='%s'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='%s'/>
      <target dev='vdb' bus='virtio'/>
      <readonly/>
    </disk>
`, disk, identityPathInHost)
	// One UUID wherever the guest is defined, as for any VM on shared
	// storage (libvirt refuses a second definition under another UUID).
	sum := sha256.Sum256([]byte(name))
	sum[6], sum[8] = sum[6]&0x0f|0x40, sum[8]&0x3f|0x80
	uuid := fmt.Sprintf("%x-%x-%x-%x-%x", sum[0:4], sum[4:6], sum[6:8], sum[8:10], sum[10:16])
	x = strings.Replace(x, "</name>\n", "</name>\n  <uuid>"+uuid+"</uuid>\n", 1)
	return strings.Replace(x, "    <controller type='usb' model='none'/>\n", "    <controller type='usb' model='none'/>\n"+disks, 1)
}

// DiskRecord is the counter record a disk guest keeps on its disk.
type DiskRecord struct {
	N    int
	Host string
	Boot string
}

var diskRE = regexp.MustCompile(`^vmha-disk n=(\d+) host=(\S*) boot=([0-9a-f]+)`)

// ReadDisk reads the record from a disk guest's image (false: none yet).
func ReadDisk(path string) (DiskRecord, bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return DiskRecord{}, false, err
	}
	defer f.Close()
	b := make([]byte, 512)
	if _, err := f.ReadAt(b, 0); err != nil {
		return DiskRecord{}, false, err
	}
	m := diskRE.FindSubmatch(bytes.TrimRight(b, "\x00"))
	if m == nil {
		return DiskRecord{}, false, nil
	}
	n, _ := strconv.Atoi(string(m[1]))
	return DiskRecord{N: n, Host: string(m[2]), Boot: string(m[3])}, true, nil
}

// WaitDisk waits until the image's record satisfies ok.
func WaitDisk(path string, timeout time.Duration, ok func(DiskRecord) bool) (DiskRecord, error) {
	deadline := time.Now().Add(timeout)
	var last DiskRecord
	for {
		r, found, err := ReadDisk(path)
		if err != nil {
			return r, err
		}
		if found {
			last = r
			if ok(r) {
				return r, nil
			}
		}
		if time.Now().After(deadline) {
			return last, fmt.Errorf("disk %s: no matching record after %s (last %+v)", path, timeout, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ErrImageLocked is what ImageLocked returns when a QEMU holds an image's
// write lock.
var ErrImageLocked = errors.New("image is locked for writing by a QEMU process")

// ImageLocked asks QEMU's own tools whether a QEMU process holds the raw
// image open for writing: qemu-io opens it read-write (and does nothing),
// which QEMU's image locking refuses while a running guest has it. (qemu-img
// info would not tell: a raw image's readers share writes.)
func ImageLocked(path string) (bool, error) {
	out, err := exec.Command("qemu-io", "-f", "raw", "-c", "quit", path).CombinedOutput()
	if err == nil {
		return false, nil
	}
	if strings.Contains(string(out), `Failed to get "write" lock`) {
		return true, nil
	}
	return false, fmt.Errorf("qemu-io %s: %w: %s", path, err, lastLines(out, 3))
}

// LockConflicts returns the lines of this host's QEMU logs in which QEMU
// refused to start a guest because another process holds its disk's write
// lock: the double start that image locking caught.
func (h *Host) LockConflicts() []string {
	files, _ := filepath.Glob(filepath.Join(h.Dir, "log", "qemu", "*.log"))
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, `Failed to get "write" lock`) {
				out = append(out, h.Name+": "+strings.TrimSpace(l))
			}
		}
	}
	return out
}

// DefineAndStartXML defines a persistent guest from its XML on h and
// starts it.
func DefineAndStartXML(h *Host, name, xml string) error {
	conn, err := libvirt.NewConnect(h.URI)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", h.URI, err)
	}
	defer conn.Close()
	dom, err := conn.DomainDefineXML(xml)
	if err != nil {
		return fmt.Errorf("define guest %s on %s: %w", name, h.Name, err)
	}
	defer dom.Free()
	if err := dom.Create(); err != nil {
		return fmt.Errorf("start guest %s on %s: %w", name, h.Name, err)
	}
	return nil
}
