package virtlab

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// A lab host is its libvirtd and every process that libvirtd starts (QEMU
// guests). Losing power ends all of them at once, so each host runs in a
// cgroup (v2) of its own and its power cut writes that cgroup's
// cgroup.kill: the kernel SIGKILLs every process in it, libvirtd and QEMU
// alike, wherever they sit in sessions or process groups (QEMU runs in a
// session of its own, so a process group would miss it). Where no cgroup
// can be made (no cgroup2 mount, or no delegation to this process), the
// power cut falls back to the QEMU processes named by libvirtd's pid files,
// then libvirtd itself.

// cgroup2Root is where the cgroup2 hierarchy is mounted, or "".
func cgroup2Root() string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS ... - FSTYPE SOURCE OPTS
		fields := strings.Fields(sc.Text())
		for i, fl := range fields {
			if fl == "-" && i+1 < len(fields) && fields[i+1] == "cgroup2" && len(fields) > 4 {
				return fields[4]
			}
		}
	}
	return ""
}

// makeCgroup creates the host's cgroup, or returns "" (see above).
func makeCgroup(name string) string {
	root := cgroup2Root()
	if root == "" {
		return ""
	}
	dir := filepath.Join(root, fmt.Sprintf("vmha-lab-%d-%s-%d", os.Getpid(), name, time.Now().UnixNano()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return ""
	}
	if _, err := os.Stat(filepath.Join(dir, "cgroup.kill")); err != nil {
		// A kernel before 5.14 has no cgroup.kill.
		_ = os.Remove(dir)
		return ""
	}
	return dir
}

// removeCgroup removes the host's (by then empty) cgroup.
func (h *Host) removeCgroup() {
	if h.cgroup == "" {
		return
	}
	for i := 0; i < 50; i++ {
		if err := os.Remove(h.cgroup); err == nil || errors.Is(err, os.ErrNotExist) {
			return
		}
		// Processes killed a moment ago leave the cgroup when reaped.
		_ = os.WriteFile(filepath.Join(h.cgroup, "cgroup.kill"), []byte("1"), 0o644)
		time.Sleep(100 * time.Millisecond)
	}
}

// pidFile holds the current libvirtd's PID (it changes on PowerOn).
func (h *Host) pidFile() string { return filepath.Join(h.Dir, "libvirtd.pid") }

// PowerCutCommand is a shell command that ends the whole host as losing
// power would: libvirtd and every QEMU guest, with SIGKILL. Lab BMCs run it
// on power-off (labcluster Options.PowerOff); PowerOn brings the host's
// libvirtd back, as booting the host again would. It stays valid across
// PowerOn (it reads the current libvirtd from a pid file).
func (h *Host) PowerCutCommand() string {
	if h.cgroup != "" {
		return fmt.Sprintf(`echo 1 > '%s/cgroup.kill'`, h.cgroup)
	}
	return fmt.Sprintf(`p=$(cat '%s' 2>/dev/null); [ -n "$p" ] || exit 0; grep -q libvirtd /proc/$p/cmdline 2>/dev/null || exit 0; for f in /proc/$p/root/run/libvirt/qemu/*.pid; do case "$f" in */driver.pid) ;; *) kill -9 "$(cat "$f")" 2>/dev/null ;; esac; done; kill -9 $p; true`, h.pidFile())
}

// Cgroup is the host's cgroup ("" when the power cut uses the fallback).
func (h *Host) Cgroup() string { return h.cgroup }

// PoweredOn reports whether the host's libvirtd runs.
func (h *Host) PoweredOn() bool {
	_, exited := h.libvirtd()
	if exited == nil {
		return false
	}
	select {
	case <-exited:
		return false
	default:
		return true
	}
}

// PowerOn starts the host's libvirtd again after a power cut (a no-op
// while it runs): same folders, ports and definitions; no guest runs, as
// after a reboot (their runtime state was in the host's private /run).
func (h *Host) PowerOn() error {
	if h.PoweredOn() {
		return nil
	}
	if err := h.start(); err != nil {
		return fmt.Errorf("power on host %s: %w", h.Name, err)
	}
	return nil
}
