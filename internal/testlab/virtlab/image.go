// Package virtlab runs real libvirt "hosts" on one machine for tests: each
// host is a libvirtd in its own mount namespace with its own configuration,
// state and TCP port, so live migration between two of them is the real
// thing (QEMU TCG, libvirt's peer-to-peer protocol, QEMU's migration stream).
// It also builds a tiny guest: a Debian cloud kernel and a busybox initrd
// whose /init prints a counter to the serial console every second, so a test
// can see that a guest survived a migration without rebooting.
//
// Everything it starts is tracked by PID and stopped by PID: other tests on
// the same machine run libvirt too, so nothing here kills by name.
package virtlab

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// DefaultCacheDir holds the kernel and initrd between test runs, so only the
// first run on a machine pays for the download (about 10 s) and the build.
const DefaultCacheDir = "/var/cache/vmha-lab"

// Image is a bootable guest: a kernel and an initrd for direct kernel boot.
type Image struct {
	Kernel string
	Initrd string
}

// imageVersion is part of the initrd's file name: bump it when /init changes
// so a stale cache is rebuilt instead of silently reused.
const imageVersion = "v1"

// initScript is the guest's PID 1. It prints one line a second to the
// serial console: a boot id drawn once per boot (so a reboot, even one that
// happened to reach the same count, is visible) and a counter. It never
// exits: PID 1 exiting panics the kernel.
var initScript = initHead() + `boot=$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
` + counterLoop

// counterLoop is the counter guests' console output, one line a second
// with the boot id ($boot): ReadCounters reads it.
const counterLoop = `i=0
while :; do
  i=$((i+1))
  echo "vmha-counter boot=$boot n=$i" > /dev/ttyS0
  sleep 1
done
`

// EnsureImage returns the cached guest image in cacheDir, building it first
// if needed. The kernel comes from VMHA_LAB_KERNEL when set (any bzImage),
// otherwise from Debian's linux-image-cloud-amd64 via apt-get download. A
// file lock serializes concurrent test processes (go test runs packages in
// parallel) so two of them never build into the same files.
func EnsureImage(cacheDir string) (Image, error) {
	unlock, err := lockCache(cacheDir)
	if err != nil {
		return Image{}, err
	}
	defer unlock()

	img := Image{
		Kernel: filepath.Join(cacheDir, "vmlinuz"),
		Initrd: filepath.Join(cacheDir, "initrd-"+imageVersion+".img"),
	}
	if !exists(img.Kernel) {
		if err := fetchKernel(cacheDir, img.Kernel); err != nil {
			return Image{}, err
		}
	}
	if !exists(img.Initrd) {
		if err := buildInitrd(cacheDir, img.Initrd); err != nil {
			return Image{}, err
		}
	}
	return img, nil
}

func exists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Size() > 0
}

// fetchKernel puts a kernel at dst: VMHA_LAB_KERNEL if set, else the current
// Debian cloud kernel package unpacked with dpkg-deb (no install: the
// machine's own kernel and /boot are left alone).
func fetchKernel(cacheDir, dst string) error {
	if k := os.Getenv("VMHA_LAB_KERNEL"); k != "" {
		return copyFile(k, dst)
	}
	work, err := os.MkdirTemp(cacheDir, "kernel-")
	if err != nil {
		return fmt.Errorf("kernel work dir: %w", err)
	}
	defer os.RemoveAll(work)
	_, kernel, err := unpackCloudKernel(work)
	if err != nil {
		return err
	}
	return copyFile(kernel, dst)
}

var dependsRE = regexp.MustCompile(`Depends:\s+(linux-image-\S+-cloud-amd64)\b`)

// cloudKernelPackage resolves the meta-package linux-image-cloud-amd64 to the
// versioned package it depends on (the meta-package has no kernel itself).
// With empty package lists (a fresh machine) it runs apt-get update once.
func cloudKernelPackage() (string, error) {
	for attempt := 0; attempt < 2; attempt++ {
		out, err := exec.Command("apt-cache", "depends", "linux-image-cloud-amd64").CombinedOutput()
		if err == nil {
			if m := dependsRE.FindSubmatch(out); m != nil {
				return string(m[1]), nil
			}
		}
		if attempt == 0 {
			// The same workaround as scripts/deps.sh: an empty parts folder.
			_ = os.MkdirAll("/tmp/aptparts", 0o755)
			if uout, uerr := exec.Command("apt-get", "-o", "Dir::Etc::Parts=/tmp/aptparts", "update", "-qq").CombinedOutput(); uerr != nil {
				return "", fmt.Errorf("apt-get update (to find linux-image-cloud-amd64): %w: %s", uerr, lastLines(uout, 5))
			}
			continue
		}
		return "", fmt.Errorf("apt-cache depends linux-image-cloud-amd64 names no versioned kernel package: %v %s", err, lastLines(out, 5))
	}
	return "", errors.New("unreachable")
}

// buildInitrd writes a gzip'd newc cpio with a static busybox and /init.
func buildInitrd(cacheDir, dst string) error {
	work, err := os.MkdirTemp(cacheDir, "initrd-")
	if err != nil {
		return fmt.Errorf("initrd work dir: %w", err)
	}
	defer os.RemoveAll(work)
	root, err := guestRoot(work, initScript)
	if err != nil {
		return err
	}
	return packInitrd(root, dst)
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("read %s: %w", src, err)
	}
	// A unique temporary name: parallel test processes may copy to the
	// same destination (the capabilities cache), and rename is atomic.
	tmp := fmt.Sprintf("%s.tmp%d", dst, os.Getpid())
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	return os.Rename(tmp, dst)
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// GuestXML is the domain definition of a counter guest: TCG (this machine
// cannot run KVM guests), 128 MiB, no balloon (its stats polling only adds
// noise to a migration), no disk and no network, and the serial console in
// a file under /var/log/libvirt. That folder is bind-mounted per host, so the
// same path in the XML lands in a different file on each host: the file on
// the source shows what the guest printed before the move, the one on the
// target what it printed after.
func GuestXML(name string, img Image, memoryMiB int) string {
	return guestSpec{Name: name, Img: img, MemoryMiB: memoryMiB}.xml()
}

// guestSpec is a lab guest's domain: GuestXML's, with what a kind of guest
// (crash, agent) changes or adds.
type guestSpec struct {
	Name      string
	Img       Image
	MemoryMiB int // 0: 128
	// Cmdline is the kernel's ("": console=ttyS0 quiet panic=-1).
	Cmdline string
	// ACPI adds <features><acpi/></features> (pvpanic is found through it).
	ACPI bool
	// OnReboot and OnCrash are the lifecycle actions ("": destroy).
	OnReboot, OnCrash string
	// Devices is device XML added after the serial port.
	Devices string
}

func (g guestSpec) xml() string {
	or := func(s, def string) string {
		if s == "" {
			return def
		}
		return s
	}
	mem := g.MemoryMiB
	if mem <= 0 {
		mem = 128
	}
	features := ""
	if g.ACPI {
		features = "  <features><acpi/></features>\n"
	}
	return fmt.Sprintf(`<domain type='qemu'>
  <name>%s</name>
  <memory unit='MiB'>%d</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>%s</kernel>
    <initrd>%s</initrd>
    <cmdline>%s</cmdline>
  </os>
%s  <on_poweroff>destroy</on_poweroff>
  <on_reboot>%s</on_reboot>
  <on_crash>%s</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <controller type='usb' model='none'/>
    <serial type='file'>
      <source path='%s' append='on'/>
      <target port='0'/>
    </serial>
%s    <memballoon model='none'/>
  </devices>
</domain>
`, g.Name, mem, g.Img.Kernel, g.Img.Initrd, or(g.Cmdline, "console=ttyS0 quiet panic=-1"), features,
		or(g.OnReboot, "destroy"), or(g.OnCrash, "destroy"), SerialPathInHost(g.Name), g.Devices)
}

// serialDir is where guests' consoles go, as seen inside a host's namespace.
const serialDir = "/var/log/libvirt/vmha-serial"

// SerialPathInHost is the console file's path as the host's libvirtd and
// QEMU see it.
func SerialPathInHost(domain string) string { return serialDir + "/" + domain + ".log" }

// Counter is one line the guest printed.
type Counter struct {
	Boot string
	N    int
}

var counterRE = regexp.MustCompile(`vmha-counter boot=([0-9a-f]+) n=(\d+)`)

// ReadCounters parses every counter line of a console file; a file that does
// not exist yet has none.
func ReadCounters(path string) ([]Counter, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	defer f.Close()
	var out []Counter
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := counterRE.FindStringSubmatch(sc.Text()); m != nil {
			n, _ := strconv.Atoi(m[2])
			out = append(out, Counter{Boot: m[1], N: n})
		}
	}
	return out, sc.Err()
}
