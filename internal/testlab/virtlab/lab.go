package virtlab

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"libvirt.org/go/libvirt"

	"github.com/vmha/vmha/internal/testlab/testenv"
)

// Need skips the test (or fails it under CI=true) when a part the lab needs
// is missing: root, libvirtd, QEMU, busybox-static, cpio, the apt tools for
// the kernel.
func Need(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Missing(t, "the libvirt lab needs root (mount namespaces, libvirtd)")
	}
	for _, c := range []string{"unshare", "libvirtd", "qemu-system-x86_64", "qemu-io", "busybox", "cpio", "gzip"} {
		testenv.NeedCommand(t, c)
	}
	if os.Getenv("VMHA_LAB_KERNEL") == "" && !exists(filepath.Join(DefaultCacheDir, "vmlinuz")) {
		testenv.NeedCommand(t, "apt-get")
		testenv.NeedCommand(t, "dpkg-deb")
	}
	if _, err := exec.LookPath("/usr/sbin/libvirtd"); err != nil {
		testenv.Missing(t, "/usr/sbin/libvirtd not found (Debian libvirt-daemon-system)")
	}
}

// NewHosts starts n lab hosts named h1..hn for the test and stops them (and
// their guests) when it ends, whether it passed or not.
func NewHosts(t testing.TB, n int) []*Host {
	t.Helper()
	Need(t)
	base := t.TempDir()
	hosts := make([]*Host, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	// In parallel: a libvirtd start is mostly waiting (about 1 s with a
	// seeded capabilities cache, 5 s without).
	for i := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("h%d", i+1)
			hosts[i], errs[i] = StartHost(name, filepath.Join(base, name))
		}()
	}
	wg.Wait()
	for _, h := range hosts {
		if h == nil {
			continue
		}
		t.Cleanup(func() {
			if err := h.Stop(); err != nil {
				t.Errorf("lab: stop host %s: %v", h.Name, err)
			}
		})
	}
	for _, err := range errs {
		if err != nil {
			t.Fatalf("lab: %v", err)
		}
	}
	return hosts
}

// TestImage returns the cached guest image, building it on first use.
func TestImage(t testing.TB) Image {
	t.Helper()
	img, err := EnsureImage(DefaultCacheDir)
	if err != nil {
		t.Fatalf("lab: guest image: %v", err)
	}
	return img
}

// StartGuest defines and starts a counter guest on h and waits until its
// console shows the first counter line (the kernel has booted and /init
// runs), so a migration right after moves a live guest, not a booting one.
func StartGuest(t testing.TB, h *Host, img Image, name string) {
	t.Helper()
	start := time.Now()
	if err := DefineAndStart(h, img, name, 128); err != nil {
		t.Fatalf("lab: %v", err)
	}
	if err := WaitCounter(h.SerialLog(name), 1, 60*time.Second); err != nil {
		t.Fatalf("lab: guest %s on %s: %v", name, h.Name, err)
	}
	t.Logf("lab: guest %s booted on %s in %s", name, h.Name, time.Since(start).Round(time.Millisecond))
}

// DefineAndStart defines a persistent counter guest on h and starts it.
func DefineAndStart(h *Host, img Image, name string, memoryMiB int) error {
	conn, err := libvirt.NewConnect(h.URI)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", h.URI, err)
	}
	defer conn.Close()
	dom, err := conn.DomainDefineXML(GuestXML(name, img, memoryMiB))
	if err != nil {
		return fmt.Errorf("define guest %s on %s: %w", name, h.Name, err)
	}
	defer dom.Free()
	if err := dom.Create(); err != nil {
		return fmt.Errorf("start guest %s on %s: %w", name, h.Name, err)
	}
	return nil
}

// WaitCounter waits until the console file at path shows a counter of at
// least n.
func WaitCounter(path string, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		cs, err := ReadCounters(path)
		if err != nil {
			return fmt.Errorf("read console %s: %w", path, err)
		}
		if len(cs) > 0 && cs[len(cs)-1].N >= n {
			return nil
		}
		if time.Now().After(deadline) {
			last := "no counter line"
			if len(cs) > 0 {
				last = fmt.Sprintf("last counter %d", cs[len(cs)-1].N)
			}
			return fmt.Errorf("console %s shows no counter >= %d after %s (%s)", path, n, timeout, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// LastCounter returns the last counter line of a console file, or false.
func LastCounter(path string) (Counter, bool, error) {
	cs, err := ReadCounters(path)
	if err != nil || len(cs) == 0 {
		return Counter{}, false, err
	}
	return cs[len(cs)-1], true, nil
}
