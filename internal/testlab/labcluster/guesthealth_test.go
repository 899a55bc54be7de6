package labcluster

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/internal/testlab/virtlab"
)

// TestGuestHealthThroughTheAgent is issue 18's guest health run by vmhad
// itself (docs/guest-health.md): two hosts with real libvirtd and QEMU
// (TCG) and a witness. A guest that panics three counter lines after each
// boot (pvpanic, <on_crash>destroy</on_crash>) runs with guest-monitor
// crash, guest-max-restarts 2 and migration-threshold INFINITY: its host's
// agent must see each crash and start it again there (a new boot on its
// console), the event log must count the failures, and the third crash must
// leave it stopped with vmha status naming it. vmha vm cleanup gives it a
// fresh budget and it boots again. It never runs on two hosts.
func TestGuestHealthThroughTheAgent(t *testing.T) {
	virtlab.Need(t)
	start := time.Now()
	img, err := virtlab.EnsureCrashImage(virtlab.DefaultCacheDir)
	if err != nil {
		t.Fatalf("crash image: %v", err)
	}
	const guest = "crashy"
	g := startGuestLab(t, guest, virtlab.CrashGuestXML(guest, img, 3, "destroy", false), `vms:
  - name: crashy
    guest-monitor: crash
    guest-max-restarts: 2
    guest-restart-window: 10m
    migration-threshold: INFINITY
`)
	c, lab, via, twice, ch := g.c, g.lab, g.via, g.twice, g.ch
	serial := lab[0].SerialLog(guest)

	// Three boots on host1: the first, then two restarts by its agent,
	// each a new boot on the console that crashed after 3 lines.
	boots := waitBoots(t, serial, 3, 90*time.Second)
	t.Logf("boots on host1: %v (%s)", boots, time.Since(start).Round(time.Millisecond))

	// The third crash is one too many: left stopped, reported by name.
	if _, err := c.WaitFor(context.Background(), 30*time.Second, guest+" given up on", func(*api.Status) bool {
		return strings.Contains(statusText(t, c, via), "guest-max-restarts 2")
	}); err != nil {
		t.Fatalf("%v\n%s", err, statusText(t, c, via))
	}
	out := statusText(t, c, via)
	t.Logf("vmha status:\n%s", out)
	if !strings.Contains(out, guest) {
		t.Fatalf("vmha status does not name %s:\n%s", guest, out)
	}
	// Stopped for good: no new boot for a while, nothing running on either host.
	time.Sleep(5 * time.Second)
	if b := bootsOf(t, serial); len(b) != 3 {
		t.Fatalf("after giving up, %s booted again: %v", guest, b)
	}
	for _, h := range lab {
		if g := h.RunningGuests(); len(g) > 0 {
			t.Fatalf("after giving up, %s runs %v", h.Name, g)
		}
	}
	ev := c.expect(t, via, 0, guest, "events", "--vm", guest)
	t.Logf("vmha events --vm %s:\n%s", guest, ev)
	if !strings.Contains(ev, "crashed") {
		t.Fatalf("the event log does not record the crashes:\n%s", ev)
	}

	// A fresh budget: it boots again on host1.
	c.expect(t, via, 0, "", "vm", "cleanup", guest)
	b := waitBoots(t, serial, 4, 60*time.Second)
	t.Logf("after cleanup, boot %s (%s)", b[3], time.Since(start).Round(time.Millisecond))
	if tw := twice(); len(tw) > 0 {
		t.Fatalf("a VM ran on two hosts: %v", tw[:min(5, len(tw))])
	}
	ch.verify(t)
	t.Logf("test took %s", time.Since(start).Round(time.Second))
}

// statusText is vmha status through via.
func statusText(t *testing.T, c *Cluster, via *Host) string {
	t.Helper()
	out, err := c.vmha(via, "status")
	if err != nil {
		t.Logf("vmha status: %v", err)
	}
	return string(out)
}

// bootsOf lists the boot ids on a guest's console, in order.
func bootsOf(t *testing.T, serial string) []string {
	t.Helper()
	cs, err := virtlab.ReadCounters(serial)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var boots []string
	for _, c := range cs {
		if len(boots) == 0 || boots[len(boots)-1] != c.Boot {
			boots = append(boots, c.Boot)
		}
	}
	return boots
}

// waitBoots waits until the console shows n boots and returns them.
func waitBoots(t *testing.T, serial string, n int, timeout time.Duration) []string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		b := bootsOf(t, serial)
		if len(b) >= n {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s shows %d boots after %s, want %d: %v", serial, len(b), timeout, n, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// guestLab is a lab of two hosts with real libvirtd and QEMU (TCG) and a
// witness, running one monitored guest (the guest-health tests).
type guestLab struct {
	c     *Cluster
	lab   []*virtlab.Host
	via   *Host
	twice func() []string
	ch    *checker
}

// startGuestLab starts the lab and adds guest with its domain XML and the
// rules (a cluster.yaml that names it). The rules name the VM, so it is
// added first, in a cluster maintenance (nothing starts) until they apply.
func startGuestLab(t *testing.T, guest, domainXML, rulesYAML string) *guestLab {
	t.Helper()
	lab := virtlab.NewHosts(t, 2)
	c := startClusterWith(t, Options{Witness: true, Hypervisors: []string{lab[0].URI, lab[1].URI}})
	g := &guestLab{c: c, lab: lab, via: c.Hosts[0], twice: runningTwice(t, c), ch: watchNeverTwice(t, c)}
	dir := t.TempDir()
	rules := filepath.Join(dir, "cluster.yaml")
	if err := os.WriteFile(rules, []byte(rulesYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	xml := filepath.Join(dir, guest+".xml")
	if err := os.WriteFile(xml, []byte(domainXML), 0o600); err != nil {
		t.Fatal(err)
	}
	c.expect(t, g.via, 0, "cluster in maintenance", "cluster", "maintenance")
	c.expect(t, g.via, 0, "vm "+guest+" added", "vm", "add", guest, "--xml", xml, "--prefer", "host1")
	c.expect(t, g.via, 0, "placement rules from", "rules", "apply", rules, "--yes")
	c.expect(t, g.via, 0, "maintenance ended", "cluster", "maintenance", "--off")
	return g
}
