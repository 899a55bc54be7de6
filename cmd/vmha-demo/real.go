package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/vmha/vmha/internal/testlab/labcluster"
	"github.com/vmha/vmha/internal/testlab/virtlab"
)

// With -real (make demo-real) the story is the same with real guests: each
// host is a vmhad plus its own libvirtd running QEMU (TCG) guests; every
// guest boots from a disk image on the lab's shared storage and writes a
// counter and its host's name to it every second. The failure is a power
// cut of the whole host (vmhad, libvirtd, QEMU); its BMC's power-off is
// the same cut. "restart" ends when each recovered guest prints its first
// counter line on its new host, counting on from its disk.

// realVMs are the real-guest demo's guests and their preferred hosts.
var realVMs = []struct{ name, prefer string }{
	{"web1", "host1"}, {"db1", "host1"}, {"web2", "host2"}, {"db2", "host2"},
}

// startReal starts the lab's hypervisor hosts and points o at them.
func startReal(dir string, o *labcluster.Options) (*labcluster.RealLab, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("-real needs root (libvirtd in mount namespaces, cgroups)")
	}
	for _, c := range []string{"unshare", "qemu-system-x86_64", "qemu-io", "busybox", "cpio", "apt-get", "dpkg-deb"} {
		if _, err := exec.LookPath(c); err != nil {
			return nil, fmt.Errorf("-real needs %s (scripts/deps.sh installs the lab's packages)", c)
		}
	}
	say("starting 3 hypervisor hosts: each its own libvirtd (QEMU TCG) in a mount namespace and a cgroup; shared storage in %s", filepath.Join(dir, "shared"))
	lab, err := labcluster.StartRealLab(dir, 3)
	if err != nil {
		return nil, err
	}
	lab.Apply(o)
	return lab, nil
}

// addRealVMs creates each guest's disk on the shared storage and adds it
// with vmha vm add, then waits until each counts on its console.
func addRealVMs(vmha, sock string, lab *labcluster.RealLab) error {
	for _, v := range realVMs {
		xml, disk, err := lab.NewGuest(v.name)
		if err != nil {
			return err
		}
		out, err := exec.Command(vmha, "--socket", sock, "vm", "add", v.name, "--xml", xml, "--prefer", v.prefer).CombinedOutput()
		if err != nil {
			return fmt.Errorf("vmha vm add %s: %v: %s", v.name, err, out)
		}
		say("vmha vm add %s --xml %s --prefer %s (disk %s): %s", v.name, xml, v.prefer, disk, strings.TrimSpace(string(out)))
	}
	for _, v := range realVMs {
		if _, err := virtlab.WaitDisk(filepath.Join(lab.Shared, v.name+".img"), 120*time.Second, func(r virtlab.DiskRecord) bool { return r.N >= 1 }); err != nil {
			return fmt.Errorf("guest %s: %w", v.name, err)
		}
	}
	say("every guest booted and counts on its disk")
	return nil
}

// powerCut ends the victim as losing power would: its vmhad, its libvirtd
// and its QEMU guests, all with SIGKILL.
func powerCut(victim *labcluster.Host, lab *labcluster.RealLab) error {
	victim.Kill()
	cmd := lab.Host(victim.Name).PowerCutCommand()
	if out, err := exec.Command("sh", "-c", cmd).CombinedOutput(); err != nil {
		return fmt.Errorf("power cut of %s: %v: %s", victim.Name, err, out)
	}
	return nil
}

// firstCounters watches the survivors' consoles for each lost guest (every
// 50 ms) and returns a function that waits for all of them and gives the
// time the last one printed its first counter line on its new host.
func firstCounters(lab *labcluster.RealLab, victim string, lost []string, timeout time.Duration) func() (time.Time, error) {
	var mu sync.Mutex
	var last time.Time
	var errs []error
	var wg sync.WaitGroup
	deadline := time.Now().Add(timeout)
	for _, g := range lost {
		before, _, _ := virtlab.ReadDisk(filepath.Join(lab.Shared, g+".img"))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				for _, h := range lab.Hosts {
					if h.Name == victim {
						continue
					}
					cs, _ := virtlab.ReadCounters(h.SerialLog(g))
					if len(cs) == 0 {
						continue
					}
					at := time.Now()
					r, _, _ := virtlab.ReadDisk(filepath.Join(lab.Shared, g+".img"))
					say("%s prints its first counter line on %s: n=%d, on from n=%d that its disk held from %s (disk now: n=%d host=%s)", g, h.Name, cs[0].N, before.N, before.Host, r.N, r.Host)
					mu.Lock()
					if at.After(last) {
						last = at
					}
					mu.Unlock()
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
			mu.Lock()
			errs = append(errs, fmt.Errorf("%s printed no counter line on a survivor within %s", g, timeout))
			mu.Unlock()
		}()
	}
	return func() (time.Time, error) {
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return last, errors.Join(errs...)
	}
}
