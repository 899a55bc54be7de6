package labcluster

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/internal/testlab/virtlab"
)

// TestGuestHeartbeatThroughTheAgent is guest-monitor heartbeat run by vmhad
// itself (docs/guest-health.md) against a real guest agent: two hosts with
// real libvirtd and QEMU (TCG) and a witness. The agent guest
// (virtlab.EnsureAgentImage: a busybox QEMU guest agent on the
// org.qemu.guest_agent.0 channel) answers libvirt's guest-ping until
// vmha.hang seconds after each boot, then stops answering while its kernel
// and QEMU keep running. With guest-heartbeat-timeout 10s, guest-max-restarts 1 and migration-threshold INFINITY its host's agent
// must find it hung and restart it in place (a new boot on its console),
// and on the second hang leave it stopped with vmha status naming it. It
// never runs on two hosts. Not the 5s minimum: the grace is counted from
// the domain's start, a TCG boot takes about 4 s to its agent, and a ping
// missed while it boots blocks about 5 s in libvirt's guest-sync whatever
// its timeout, so at 5s the first boot was restarted before it answered.
func TestGuestHeartbeatThroughTheAgent(t *testing.T) {
	virtlab.Need(t)
	start := time.Now()
	img, err := virtlab.EnsureAgentImage(virtlab.DefaultCacheDir)
	if err != nil {
		t.Fatalf("agent image: %v", err)
	}
	const guest = "hangy"
	g := startGuestLab(t, guest, virtlab.AgentGuestXML(guest, img, hangAfter), `vms:
  - name: hangy
    guest-monitor: heartbeat
    guest-heartbeat-timeout: 10s
    guest-heartbeat-startup: 10s
    guest-max-restarts: 1
    guest-restart-window: 10m
    migration-threshold: INFINITY
`)
	c, lab, via, twice, ch := g.c, g.lab, g.via, g.twice, g.ch
	serial := lab[0].SerialLog(guest)

	// Two boots on host1: the first, then the restart by its agent once the
	// first stopped answering.
	boots := waitBoots(t, serial, 2, 60*time.Second)
	t.Logf("boots on host1: %v (%s)", boots, time.Since(start).Round(time.Millisecond))
	// The first boot hung (its vmha-hang line) before it was restarted: the
	// restart was for the hang, not for a slow boot.
	log, _ := os.ReadFile(serial)
	if n := strings.Count(string(log), "vmha-hang boot="+boots[0]); n != 1 {
		t.Fatalf("the first boot %s restarted before its agent hung:\n%s", boots[0], tailOf(string(log), 20))
	}

	// The second hang is one too many: stopped, reported by name.
	if _, err := c.WaitFor(context.Background(), 30*time.Second, guest+" given up on", func(*api.Status) bool {
		return strings.Contains(statusText(t, c, via), "guest-max-restarts 1")
	}); err != nil {
		t.Fatalf("%v\n%s", err, statusText(t, c, via))
	}
	out := statusText(t, c, via)
	t.Logf("vmha status:\n%s", out)
	if !strings.Contains(out, guest) || !strings.Contains(out, "no heartbeat") {
		t.Fatalf("vmha status does not name %s and its missed heartbeats:\n%s", guest, out)
	}
	// Stopped for good: the hung domain is destroyed, no new boot.
	deadline := time.Now().Add(15 * time.Second)
	for len(lab[0].RunningGuests()) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("after giving up, %s still runs %v", lab[0].Name, lab[0].RunningGuests())
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(3 * time.Second)
	if b := bootsOf(t, serial); len(b) != 2 {
		t.Fatalf("after giving up, %s booted again: %v", guest, b)
	}
	for _, h := range lab {
		if g := h.RunningGuests(); len(g) > 0 {
			t.Fatalf("after giving up, %s runs %v", h.Name, g)
		}
	}
	if tw := twice(); len(tw) > 0 {
		t.Fatalf("a VM ran on two hosts: %v", tw[:min(5, len(tw))])
	}
	ch.verify(t)
	t.Logf("test took %s", time.Since(start).Round(time.Second))
}

// hangAfter is when the agent guest stops answering, in seconds after its
// boot: long enough for a TCG boot and a few answered pings.
const hangAfter = 6

// tailOf is the last n lines of s.
func tailOf(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
