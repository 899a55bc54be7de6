package virtlab

import (
	"fmt"
	"path/filepath"
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
var crashInit = initHead("/tmp") + `insmod /lib/pvpanic.ko 2>/dev/null
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
	return kernelImage(cacheDir, "crash", crashImageVersion, func(work, pkgRoot string) (string, error) {
		mods, _ := filepath.Glob(filepath.Join(pkgRoot, "lib", "modules", "*", "kernel", "drivers", "misc", "pvpanic", "pvpanic*.ko*"))
		if len(mods) == 0 {
			return "", fmt.Errorf("the cloud kernel package has no pvpanic module")
		}
		root, err := guestRoot(work, crashInit, "lib")
		if err != nil {
			return "", err
		}
		_, err = copyModules(mods, filepath.Join(root, "lib"))
		return root, err
	})
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
	return guestSpec{Name: name, Img: img, Cmdline: cmdline, ACPI: true, OnReboot: "restart", OnCrash: onCrash,
		Devices: "    <panic model='isa'/>\n"}.xml()
}
