package virtlab

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"libvirt.org/go/libvirt"
)

func TestReadCounters(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.log")
	data := "[    0.1] kernel noise\nvmha-counter boot=ab12 n=1\r\ngarbage vmha-counter boot=ab12 n=2\nvmha-counter boot=zz n=3\n"
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	cs, err := ReadCounters(p)
	if err != nil {
		t.Fatal(err)
	}
	// "boot=zz" is not hex: a corrupted line must not count as a counter.
	if len(cs) != 2 || cs[0] != (Counter{"ab12", 1}) || cs[1] != (Counter{"ab12", 2}) {
		t.Fatalf("ReadCounters = %+v, want ab12/1, ab12/2", cs)
	}
	if cs, err := ReadCounters(filepath.Join(t.TempDir(), "missing")); err != nil || cs != nil {
		t.Fatalf("missing file: %v, %v; want no counters, no error", cs, err)
	}
}

// TestTwoHostsGuestCounts starts two isolated libvirtd hosts and a counter
// guest on one: each host sees only its own domains (the isolation the
// migration tests rely on), the guest's console counts up on the host it
// runs on, and Stop leaves no QEMU behind.
func TestTwoHostsGuestCounts(t *testing.T) {
	hosts := NewHosts(t, 2)
	img := TestImage(t)
	a, b := hosts[0], hosts[1]
	StartGuest(t, a, img, "count1")
	if err := WaitCounter(a.SerialLog("count1"), 3, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(b.SerialLog("count1")); err == nil {
		t.Fatalf("console of a guest on %s appeared on %s: the hosts share /var/log/libvirt", a.Name, b.Name)
	}
	for _, tc := range []struct {
		h    *Host
		want int
	}{{a, 1}, {b, 0}} {
		conn, err := libvirt.NewConnect(tc.h.URI)
		if err != nil {
			t.Fatal(err)
		}
		doms, err := conn.ListAllDomains(0)
		if err != nil {
			t.Fatal(err)
		}
		for i := range doms {
			_ = doms[i].Free()
		}
		conn.Close()
		if len(doms) != tc.want {
			t.Errorf("%s lists %d domains, want %d", tc.h.Name, len(doms), tc.want)
		}
	}
	pids := a.QEMUPIDs()
	if len(pids) != 1 {
		t.Fatalf("%s has QEMU pids %v, want one", a.Name, pids)
	}
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if isQEMU(pid) {
			t.Errorf("QEMU pid %d still running after Stop", pid)
		}
	}
}
