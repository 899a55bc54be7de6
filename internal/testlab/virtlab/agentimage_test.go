package virtlab

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"libvirt.org/go/libvirt"

	"github.com/vmha/vmha/hypervisor"
)

// TestGuestAgentAnswersPing runs the agent guest (EnsureAgentImage) on one
// lab host with vmha.hang=8: libvirt's guest-ping through the hypervisor
// package's GuestPing gets an answer once the guest is up (libvirt's
// guest-sync first), a command the lab agent does not know gets
// CommandNotFound, and after the hang the pings fail while the guest keeps
// running (its console counter goes on).
func TestGuestAgentAnswersPing(t *testing.T) {
	Need(t)
	start := time.Now()
	h := NewHosts(t, 1)[0]
	img, err := EnsureAgentImage(DefaultCacheDir)
	if err != nil {
		t.Fatalf("agent image: %v", err)
	}
	const name = "agent1"
	if err := DefineAndStartXML(h, name, AgentGuestXML(name, img, 8)); err != nil {
		t.Fatal(err)
	}
	hv, err := hypervisor.OpenLibvirt(h.URI, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = hv.Close() }()
	ctx := context.Background()

	var pingErr error
	for deadline := time.Now().Add(30 * time.Second); ; {
		if pingErr = hv.GuestPing(ctx, name, time.Second); pingErr == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer to guest-ping within 30s: %v\nconsole:\n%s", pingErr, lastLinesOf(h.SerialLog(name)))
		}
		time.Sleep(200 * time.Millisecond)
	}
	up := time.Since(start)
	t.Logf("first guest-ping answered %s after the start", up.Round(time.Millisecond))
	for i := 0; i < 3; i++ {
		if err := hv.GuestPing(ctx, name, time.Second); err != nil {
			t.Fatalf("guest-ping %d: %v", i, err)
		}
	}

	conn, err := libvirt.NewConnect(h.URI)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	dom, err := conn.LookupDomainByName(name)
	if err != nil {
		t.Fatal(err)
	}
	defer dom.Free()
	out, err := dom.QemuAgentCommand(`{"execute":"guest-info"}`, libvirt.DomainQemuAgentCommandTimeout(2), 0)
	if err == nil || !strings.Contains(err.Error(), "CommandNotFound") && !strings.Contains(err.Error(), "not found") {
		t.Fatalf("guest-info = %q, %v; want a CommandNotFound error", out, err)
	}
	t.Logf("guest-info: %v", err)

	// The hang: pings fail, the guest runs on.
	var failedAt time.Duration
	for deadline := time.Now().Add(30 * time.Second); ; {
		if err := hv.GuestPing(ctx, name, time.Second); err != nil {
			failedAt = time.Since(start)
			t.Logf("guest-ping after the hang: %v (%s)", err, failedAt.Round(time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("guest-ping still answered 30s later: vmha.hang=8 did not stop the agent")
		}
		time.Sleep(500 * time.Millisecond)
	}
	before, _ := ReadCounters(h.SerialLog(name))
	t0 := time.Now()
	if err := hv.GuestPing(ctx, name, time.Second); err == nil {
		t.Fatal("guest-ping answered again after the hang")
	}
	t.Logf("a missed ping took %s", time.Since(t0).Round(time.Millisecond))
	if err := WaitCounter(h.SerialLog(name), len(before)+2, 15*time.Second); err != nil {
		t.Fatalf("the hung guest's kernel stopped too: %v", err)
	}
	if g := h.RunningGuests(); len(g) != 1 {
		t.Fatalf("running guests %v, want %s", g, name)
	}
	t.Logf("test took %s", time.Since(start).Round(time.Millisecond))
}
