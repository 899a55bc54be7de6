package labcluster

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmha/vmha/cluster/decide"
	"github.com/vmha/vmha/internal/testlab/virtlab"
)

// TestRealGuestFailover is issue 18's host failure with a real guest: a
// QEMU (TCG) guest whose counter lives on a disk image on the lab's shared
// storage runs on a host whose vmhad then dies (the guest keeps running
// there: only the fence can stop it). The host's BMC powers it off, which
// kills its libvirtd and QEMU; the guest boots on a survivor from the same
// disk and its counter goes on from where it stopped. A checker reads the
// QEMU processes and QEMU's own lock errors all along: the disk is never
// open for writing by two QEMUs, and no start ever hit the lock.
//
// Then, on purpose, the same failure with fencing disabled: the guest's
// new host gets its vmhad killed, the cluster restarts the guest elsewhere
// without a fence, and the checker must see the double start (QEMU's image
// lock refuses the second QEMU).
func TestRealGuestFailover(t *testing.T) {
	virtlab.Need(t)
	testenvStart := time.Now()
	lab, err := StartRealLab(t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lab.Stop(); err != nil {
			t.Errorf("stop lab hosts: %v", err)
		}
	})
	var o Options
	lab.Apply(&o)
	c := startClusterWith(t, o)
	s := mustStatus(t, c)
	var victim *Host
	for _, h := range c.Hosts {
		if h.Name != s.Leader {
			victim = h
			break
		}
	}
	const guest = "g1"
	xml, disk, err := lab.NewGuest(guest)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := c.vmhaRetry(leaderHost(t, c), "vm", "add", guest, "--xml", xml, "--prefer", victim.Name); err != nil {
		t.Fatalf("vm add %s: %v: %s", guest, err, out)
	}
	if _, err := virtlab.WaitDisk(disk, 90*time.Second, func(r virtlab.DiskRecord) bool { return r.Host == victim.Name && r.N >= 2 }); err != nil {
		t.Fatal(err)
	}
	ch := watchQEMU(t, lab)
	if locked, err := virtlab.ImageLocked(disk); err != nil || !locked {
		t.Fatalf("the running guest's disk is not write-locked (%v, %v): QEMU's image locking is off", locked, err)
	}

	// The host's vmhad dies; its libvirtd and the guest run on.
	killedAt := time.Now()
	victim.Kill()
	s = waitRecovered(t, c, victim.Name, []string{guest})
	if v := lab.Host(victim.Name); v.PoweredOn() || len(v.RunningGuests()) > 0 {
		t.Fatalf("after the fence %s's libvirtd runs (%v) or its QEMU does (%v)", victim.Name, v.PoweredOn(), v.RunningGuests())
	}
	var survivor string
	for _, v := range s.VMs {
		if v.Name == guest {
			survivor = v.Host
		}
	}
	first, line, err := lab.FirstCounter(survivor, guest, "", 60*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := virtlab.WaitDisk(disk, 30*time.Second, func(r virtlab.DiskRecord) bool { return r.Host == survivor })
	if err != nil {
		t.Fatal(err)
	}
	vh := hostOf(s, victim.Name)
	ph := decide.Phases(decide.RecoveryTimes{Failed: killedAt, Lost: vh.LostAt, Fenced: vh.FencedAt, Restarted: first})
	t.Logf("real guest: %s", decide.RecoverySummary(1, 1, victim.Name, ph))
	// The guest went on from its disk: its first line on the survivor
	// counts past what it wrote on the victim, and the disk says so.
	if line.N <= 2 || rec.N < line.N {
		t.Fatalf("on %s the guest counts %d (disk %+v): it did not continue from its disk", survivor, line.N, rec)
	}
	if bad := ch.seen(); len(bad) > 0 {
		t.Fatalf("with fencing on, the checker saw a double start: %v", bad)
	}

	// Negative: fencing off on purpose, the same failure on the survivor.
	if err := victim.Start(); err != nil {
		t.Fatal(err)
	}
	waitMember(t, c, victim.Name)
	if out, err := c.vmhaRetry(victim, "fence", "disable", "--acknowledge-double-run-risk"); err != nil {
		t.Fatalf("fence disable: %v: %s", err, out)
	}
	c.Host(survivor).Kill()
	// The checker must see it: QEMU refusing the second start for the
	// disk's write lock (a second QEMU process may show for a moment too).
	deadline := time.Now().Add(45 * time.Second)
	for !slices.ContainsFunc(ch.seen(), func(f string) bool { return strings.Contains(f, "lock") }) {
		if time.Now().After(deadline) {
			t.Fatalf("with fencing off and %s's vmhad dead, the checker saw no refused double start of %s in 45 s (it saw %v)", survivor, guest, ch.seen())
		}
		time.Sleep(200 * time.Millisecond)
	}
	bad := ch.stop()
	t.Logf("with fencing off the checker saw:\n%s", strings.Join(bad[:min(5, len(bad))], "\n"))
	// QEMU's lock kept the second QEMU off the disk: the survivor's guest
	// is still the only writer.
	if r, _, err := virtlab.ReadDisk(disk); err != nil || r.Host != survivor {
		t.Fatalf("disk record %+v (%v), want still written from %s", r, err, survivor)
	}
	t.Logf("test took %s", time.Since(testenvStart).Round(time.Second))
}

// qemuChecker samples the lab hosts' QEMU processes every 100 ms and reads
// their QEMU logs: it records a guest alive on two hosts, and any QEMU
// that could not start because another held its disk's write lock.
type qemuChecker struct {
	mu      sync.Mutex
	found   []string
	samples int
	quit    chan struct{}
	done    chan struct{}
	once    sync.Once
}

func watchQEMU(t *testing.T, lab *RealLab) *qemuChecker {
	ch := &qemuChecker{quit: make(chan struct{}), done: make(chan struct{})}
	t.Cleanup(func() { ch.stop() })
	go func() {
		defer close(ch.done)
		for {
			select {
			case <-ch.quit:
				return
			case <-time.After(100 * time.Millisecond):
			}
			where := map[string][]string{}
			var locks []string
			for _, h := range lab.Hosts {
				for _, g := range h.RunningGuests() {
					where[g] = append(where[g], h.Name)
				}
				locks = append(locks, h.LockConflicts()...)
			}
			ch.mu.Lock()
			ch.samples++
			for g, hs := range where {
				if len(hs) > 1 {
					ch.found = append(ch.found, fmt.Sprintf("%s: QEMU on %v", g, hs))
				}
			}
			for _, l := range locks {
				if !slices.Contains(ch.found, l) {
					ch.found = append(ch.found, l)
				}
			}
			ch.mu.Unlock()
		}
	}()
	return ch
}

func (ch *qemuChecker) seen() []string {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return append([]string(nil), ch.found...)
}

func (ch *qemuChecker) stop() []string {
	ch.once.Do(func() { close(ch.quit) })
	<-ch.done
	return ch.seen()
}
