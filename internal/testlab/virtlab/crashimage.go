package virtlab

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// crashImageVersion names the crash guest's files: bump it when its /init
// changes.
const crashImageVersion = "v2"

// crashInit is the crash guest's PID 1: it loads the pvpanic driver (so a
// kernel panic reaches QEMU as a guest-panicked event), prints the same
// counter as the counter guest, and when the kernel command line has
// vmha.crash=N it panics the kernel (sysrq c) after N counter lines. With
// vmha.dirty=1 it keeps rewriting 8 MiB of random bytes in RAM, for dirty-rate
// measurements.
const crashInit = `#!/bin/busybox sh
/bin/busybox --install -s /bin
mkdir -p /proc /sys /dev /tmp
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
insmod /lib/pvpanic.ko 2>/dev/null
insmod /lib/pvpanic-mmio.ko 2>/dev/null
echo 1 > /proc/sys/kernel/sysrq
crash=$(sed -n 's/.*vmha\.crash=\([0-9]*\).*/\1/p' /proc/cmdline)
if grep -q vmha.dirty=1 /proc/cmdline; then
  (while :; do head -c 8388608 /dev/urandom > /tmp/dirty; done) &
fi
boot=$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
i=0
while :; do
  i=$((i+1))
  echo "vmha-counter boot=$boot n=$i" > /dev/ttyS0
  if [ -n "$crash" ] && [ "$i" -ge "$crash" ]; then
    echo "vmha-crash boot=$boot" > /dev/ttyS0
    echo c > /proc/sysrq-trigger
  fi
  sleep 1
done
`

// EnsureCrashImage returns the crash guest: the Debian cloud kernel and an
// initrd with its pvpanic modules (from the same package, so they load)
// and crashInit. Built once into cacheDir, like EnsureImage.
func EnsureCrashImage(cacheDir string) (Image, error) {
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return Image{}, fmt.Errorf("create image cache %s: %w", cacheDir, err)
	}
	lock, err := os.OpenFile(filepath.Join(cacheDir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return Image{}, fmt.Errorf("open image cache lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return Image{}, fmt.Errorf("lock image cache %s: %w", cacheDir, err)
	}
	defer func() { _ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) }()
	img := Image{
		Kernel: filepath.Join(cacheDir, "crash-vmlinuz-"+crashImageVersion),
		Initrd: filepath.Join(cacheDir, "crash-initrd-"+crashImageVersion+".img"),
	}
	if exists(img.Kernel) && exists(img.Initrd) {
		return img, nil
	}
	pkg, err := cloudKernelPackage()
	if err != nil {
		return Image{}, err
	}
	work, err := os.MkdirTemp(cacheDir, "crash-")
	if err != nil {
		return Image{}, err
	}
	defer os.RemoveAll(work)
	_ = os.Chmod(work, 0o777) // apt downloads as _apt
	dl := exec.Command("apt-get", "download", "-q", pkg)
	dl.Dir = work
	if out, err := dl.CombinedOutput(); err != nil {
		return Image{}, fmt.Errorf("apt-get download %s: %w: %s", pkg, err, lastLines(out, 5))
	}
	debs, _ := filepath.Glob(filepath.Join(work, "*.deb"))
	if len(debs) != 1 {
		return Image{}, fmt.Errorf("apt-get download %s left %d .deb files, want 1", pkg, len(debs))
	}
	deb := filepath.Join(work, "deb")
	if out, err := exec.Command("dpkg-deb", "-x", debs[0], deb).CombinedOutput(); err != nil {
		return Image{}, fmt.Errorf("dpkg-deb -x: %w: %s", err, lastLines(out, 5))
	}
	kernels, _ := filepath.Glob(filepath.Join(deb, "boot", "vmlinuz-*"))
	mods, _ := filepath.Glob(filepath.Join(deb, "lib", "modules", "*", "kernel", "drivers", "misc", "pvpanic", "pvpanic*.ko*"))
	if len(kernels) != 1 || len(mods) == 0 {
		return Image{}, fmt.Errorf("package %s: %d kernels, %d pvpanic modules", pkg, len(kernels), len(mods))
	}
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		return Image{}, fmt.Errorf("busybox (Debian busybox-static) not found: %w", err)
	}
	root := filepath.Join(work, "root")
	for _, d := range []string{"bin", "lib"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return Image{}, err
		}
	}
	if err := copyFile(busybox, filepath.Join(root, "bin", "busybox")); err != nil {
		return Image{}, err
	}
	if err := os.Chmod(filepath.Join(root, "bin", "busybox"), 0o755); err != nil {
		return Image{}, err
	}
	for _, m := range mods {
		if strings.HasSuffix(m, ".xz") || strings.HasSuffix(m, ".zst") {
			return Image{}, fmt.Errorf("compressed module %s: busybox insmod cannot load it", m)
		}
		if err := copyFile(m, filepath.Join(root, "lib", filepath.Base(m))); err != nil {
			return Image{}, err
		}
	}
	if err := os.WriteFile(filepath.Join(root, "init"), []byte(crashInit), 0o755); err != nil {
		return Image{}, err
	}
	tmp := img.Initrd + ".tmp"
	script := `cd "$1" && find . | cpio -o -H newc --quiet | gzip -1 > "$2"`
	if out, err := exec.Command("sh", "-c", script, "sh", root, tmp).CombinedOutput(); err != nil {
		return Image{}, fmt.Errorf("build crash initrd: %w: %s", err, lastLines(out, 5))
	}
	if err := os.Rename(tmp, img.Initrd); err != nil {
		return Image{}, err
	}
	return img, copyFile(kernels[0], img.Kernel)
}

// CrashGuestXML is a counter guest that panics after crashAfter counter
// lines (0: never) with what guest monitoring needs: a pvpanic device
// (<panic model='isa'/>, found through ACPI) and an on_crash action
// ("destroy" or "preserve"). dirty keeps the guest writing memory.
func CrashGuestXML(name string, img Image, crashAfter int, onCrash string, dirty bool) string {
	cmdline := "console=ttyS0 quiet panic=0"
	if crashAfter > 0 {
		cmdline += fmt.Sprintf(" vmha.crash=%d", crashAfter)
	}
	if dirty {
		cmdline += " vmha.dirty=1"
	}
	return fmt.Sprintf(`<domain type='qemu'>
  <name>%s</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>%s</kernel>
    <initrd>%s</initrd>
    <cmdline>%s</cmdline>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>%s</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <controller type='usb' model='none'/>
    <serial type='file'>
      <source path='%s' append='on'/>
      <target port='0'/>
    </serial>
    <memballoon model='none'/>
    <panic model='isa'/>
  </devices>
</domain>
`, name, img.Kernel, img.Initrd, cmdline, onCrash, SerialPathInHost(name))
}
