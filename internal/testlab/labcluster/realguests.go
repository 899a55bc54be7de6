package labcluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/vmha/vmha/internal/testlab/virtlab"
)

// RealLab is the hypervisor side of a real-guest lab cluster: one virtlab
// host (its own libvirtd, QEMU TCG guests, a cgroup that its power cut
// kills) per cluster host, named as the cluster host, and a shared-storage
// folder that every host sees, where the disk guests' images live.
type RealLab struct {
	Hosts []*virtlab.Host
	Image virtlab.Image
	// Shared is the shared storage: the guests' disk images.
	Shared string
	// XMLDir holds the guests' domain XML for vmha vm add.
	XMLDir string
}

// StartRealLab starts n virtlab hosts (host1..hostN) under dir, in
// parallel, and builds the disk guest's image on first use.
func StartRealLab(dir string, n int) (*RealLab, error) {
	img, err := virtlab.EnsureDiskImage(virtlab.DefaultCacheDir)
	if err != nil {
		return nil, fmt.Errorf("disk guest image: %w", err)
	}
	l := &RealLab{Image: img, Shared: filepath.Join(dir, "shared"), XMLDir: filepath.Join(dir, "guests"), Hosts: make([]*virtlab.Host, n)}
	for _, d := range []string{l.Shared, l.XMLDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range l.Hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("host%d", i+1)
			l.Hosts[i], errs[i] = virtlab.StartHost(name, filepath.Join(dir, "hv-"+name))
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		_ = l.Stop()
		return nil, err
	}
	return l, nil
}

// Apply fills o so that cluster host i runs on lab host i and its BMC's
// power-off is a power cut of the whole lab host (vmhad, libvirtd, QEMU);
// starting the host again powers its libvirtd on first.
func (l *RealLab) Apply(o *Options) {
	o.Hosts = len(l.Hosts)
	o.Hypervisors = nil
	o.PowerOff, o.PowerOn = map[string]string{}, map[string]func() error{}
	for _, h := range l.Hosts {
		o.Hypervisors = append(o.Hypervisors, h.URI)
		o.PowerOff[h.Name], o.PowerOn[h.Name] = h.PowerCutCommand(), h.PowerOn
	}
}

// Host returns the lab host of a cluster host, or nil.
func (l *RealLab) Host(name string) *virtlab.Host {
	for _, h := range l.Hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// NewGuest creates a disk guest's image on the shared storage and its
// domain XML, and returns the paths of both.
func (l *RealLab) NewGuest(name string) (xmlPath, disk string, err error) {
	disk = filepath.Join(l.Shared, name+".img")
	if err := virtlab.NewSharedDisk(disk); err != nil {
		return "", "", err
	}
	xmlPath = filepath.Join(l.XMLDir, name+".xml")
	return xmlPath, disk, os.WriteFile(xmlPath, []byte(virtlab.DiskGuestXML(name, l.Image, disk, 128)), 0o600)
}

// FirstCounter waits until guest's console on host shows a counter line of
// a boot other than notBoot (the guest running there again) and returns
// when it was first seen (polled every 50 ms) and the line.
func (l *RealLab) FirstCounter(host, guest, notBoot string, timeout time.Duration) (time.Time, virtlab.Counter, error) {
	h := l.Host(host)
	if h == nil {
		return time.Time{}, virtlab.Counter{}, fmt.Errorf("no lab host %s", host)
	}
	deadline := time.Now().Add(timeout)
	for {
		cs, err := virtlab.ReadCounters(h.SerialLog(guest))
		if err != nil {
			return time.Time{}, virtlab.Counter{}, err
		}
		for _, c := range cs {
			if c.Boot != notBoot {
				return time.Now(), c, nil
			}
		}
		if time.Now().After(deadline) {
			return time.Time{}, virtlab.Counter{}, fmt.Errorf("%s's console on %s shows no counter after %s", guest, host, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop stops every lab host and its guests.
func (l *RealLab) Stop() error {
	var errs []error
	for _, h := range l.Hosts {
		if h != nil {
			errs = append(errs, h.Stop())
		}
	}
	return errors.Join(errs...)
}
