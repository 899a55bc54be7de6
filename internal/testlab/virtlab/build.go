package virtlab

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// The steps every guest image of the lab is built from (EnsureImage,
// EnsureCrashImage, EnsureDiskImage): the cache's lock, Debian's cloud
// kernel package unpacked, and an initrd of a static busybox and an init
// script.

// lockCache takes cacheDir's build lock: concurrent test processes (go test
// runs packages in parallel) never build into the same files. unlock
// releases it.
func lockCache(cacheDir string) (unlock func(), err error) {
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("create image cache %s: %w", cacheDir, err)
	}
	lock, err := os.OpenFile(filepath.Join(cacheDir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open image cache lock: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		lock.Close()
		return nil, fmt.Errorf("lock image cache %s: %w", cacheDir, err)
	}
	return func() {
		_ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
		lock.Close()
	}, nil
}

// unpackCloudKernel downloads the current Debian cloud kernel package into
// work and unpacks it there (no install: the machine's own kernel and
// /boot are left alone). It returns the package's root and its kernel.
func unpackCloudKernel(work string) (root, kernel string, err error) {
	pkg, err := cloudKernelPackage()
	if err != nil {
		return "", "", err
	}
	// apt drops root to _apt for downloads; the folder must be writable for
	// it or apt falls back to an unsandboxed download with a warning.
	_ = os.Chmod(work, 0o777)
	dl := exec.Command("apt-get", "download", "-q", pkg)
	dl.Dir = work
	if out, err := dl.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("apt-get download %s: %w: %s", pkg, err, lastLines(out, 5))
	}
	debs, _ := filepath.Glob(filepath.Join(work, "*.deb"))
	if len(debs) != 1 {
		return "", "", fmt.Errorf("apt-get download %s left %d .deb files in %s, want 1", pkg, len(debs), work)
	}
	root = filepath.Join(work, "pkg")
	if out, err := exec.Command("dpkg-deb", "-x", debs[0], root).CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("dpkg-deb -x %s: %w: %s", debs[0], err, lastLines(out, 5))
	}
	kernels, _ := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	if len(kernels) != 1 {
		return "", "", fmt.Errorf("package %s holds %d kernels under /boot, want 1", pkg, len(kernels))
	}
	return root, kernels[0], nil
}

// initHead is the start every lab guest's PID 1 shares: busybox's
// applets, /proc, /sys and /dev, and a tmpfs on each of tmpfs. The images'
// versions name the whole script, so the text must stay byte for byte
// what the guests were built with.
func initHead(tmpfs ...string) string {
	dirs := append([]string{"/proc", "/sys", "/dev"}, tmpfs...)
	s := "#!/bin/busybox sh\n/bin/busybox --install -s /bin\nmkdir -p " + strings.Join(dirs, " ") + "\n" +
		"mount -t proc proc /proc\nmount -t sysfs sysfs /sys\nmount -t devtmpfs devtmpfs /dev\n"
	for _, d := range tmpfs {
		s += "mount -t tmpfs tmpfs " + d + "\n"
	}
	return s
}

// guestRoot makes an initrd tree in work/root: a static busybox, init as
// /init, and the folders dirs.
func guestRoot(work, init string, dirs ...string) (string, error) {
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		return "", fmt.Errorf("busybox (Debian busybox-static) not found: %w", err)
	}
	// The initrd has no libraries: a dynamically linked busybox would not
	// start. Debian's busybox-static is static; the busybox package is not.
	if out, err := exec.Command("file", "-L", busybox).CombinedOutput(); err == nil && strings.Contains(string(out), "dynamically linked") {
		return "", fmt.Errorf("%s is dynamically linked; install busybox-static", busybox)
	}
	root := filepath.Join(work, "root")
	for _, d := range append([]string{"bin"}, dirs...) {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return "", err
		}
	}
	if err := copyFile(busybox, filepath.Join(root, "bin", "busybox")); err != nil {
		return "", err
	}
	if err := os.Chmod(filepath.Join(root, "bin", "busybox"), 0o755); err != nil {
		return "", err
	}
	return root, os.WriteFile(filepath.Join(root, "init"), []byte(init), 0o755)
}

// packInitrd writes root as a gzip'd newc cpio at dst (through dst.tmp,
// so that dst is whole or absent).
func packInitrd(root, dst string) error {
	tmp := dst + ".tmp"
	script := `cd "$1" && find . | cpio -o -H newc --quiet | gzip -1 > "$2"`
	if out, err := exec.Command("sh", "-c", script, "sh", root, tmp).CombinedOutput(); err != nil {
		return fmt.Errorf("build initrd %s with cpio: %w: %s", dst, err, lastLines(out, 5))
	}
	return os.Rename(tmp, dst)
}

// kernelImage returns the guest image named kind (KIND-vmlinuz-VERSION,
// KIND-initrd-VERSION.img) in cacheDir, building it first when it is not
// there: build gets a work folder with the cloud kernel package unpacked
// (pkgRoot) and returns the initrd's tree; the package's kernel is copied
// beside it.
func kernelImage(cacheDir, kind, version string, build func(work, pkgRoot string) (root string, err error)) (Image, error) {
	unlock, err := lockCache(cacheDir)
	if err != nil {
		return Image{}, err
	}
	defer unlock()
	img := Image{
		Kernel: filepath.Join(cacheDir, kind+"-vmlinuz-"+version),
		Initrd: filepath.Join(cacheDir, kind+"-initrd-"+version+".img"),
	}
	if exists(img.Kernel) && exists(img.Initrd) {
		return img, nil
	}
	work, err := os.MkdirTemp(cacheDir, kind+"-")
	if err != nil {
		return Image{}, err
	}
	defer os.RemoveAll(work)
	pkgRoot, kernel, err := unpackCloudKernel(work)
	if err != nil {
		return Image{}, err
	}
	root, err := build(work, pkgRoot)
	if err != nil {
		return Image{}, err
	}
	if err := packInitrd(root, img.Initrd); err != nil {
		return Image{}, err
	}
	return img, copyFile(kernel, img.Kernel)
}

// copyModules copies kernel modules into dir (busybox's insmod loads only
// uncompressed ones) and returns their file names in the given order.
func copyModules(mods []string, dir string) ([]string, error) {
	var names []string
	for _, m := range mods {
		if strings.HasSuffix(m, ".xz") || strings.HasSuffix(m, ".zst") {
			return nil, fmt.Errorf("compressed module %s: busybox insmod cannot load it", m)
		}
		if err := copyFile(m, filepath.Join(dir, filepath.Base(m))); err != nil {
			return nil, err
		}
		names = append(names, filepath.Base(m))
	}
	return names, nil
}
