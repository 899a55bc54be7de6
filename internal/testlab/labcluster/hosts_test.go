package labcluster

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/model"
)

// TestHostOperations: daemon maintenance (a host killed meanwhile is not
// fenced and its VMs stay placed on it), wait_for_all at a cold start with
// one host missing (nothing is fenced or placed until it is back), and
// removing a host (refused while it runs or holds VMs; then its vote and
// records go).
func TestHostOperations(t *testing.T) {
	c := startClusterWith(t, Options{Hosts: 4, Extra: "quorum:\n  wait_for_all: true\n"})
	addVMs(t, c, "m1", "m2", "m3", "m4", "m5", "m6")
	s := mustStatus(t, c)
	var target string
	for _, h := range s.Hosts {
		if h.Name != s.Leader && len(h.VMs) > 0 {
			target = h.Name
		}
	}
	if target == "" {
		t.Fatal("no follower runs a VM")
	}
	via := c.Host(s.Leader)
	before := hostOf(s, target).VMs

	// Maintenance: kill -9 the host's vmhad, long past failure detection.
	c.expect(t, via, 1, `unknown host "nope"`, "host", "maintenance", "nope")
	c.expect(t, via, 0, target+" is in maintenance", "host", "maintenance", target, "--reason", "upgrade")
	c.Host(target).Kill()
	time.Sleep(6 * time.Second)
	s = mustStatus(t, c)
	if h := hostOf(s, target); h.State != model.HostAlive || h.Maintenance == nil || !slices.Equal(h.VMs, before) {
		t.Fatalf("a host in maintenance that died: %+v (its VMs before: %v)", h, before)
	}
	if !hasNotice(s, "host "+target+" is in maintenance") || hasProblem(s, "host "+target+" is in maintenance") {
		t.Fatalf("status does not say %s is in maintenance as a notice (a deliberate state, not a problem): problems %v, notices %v", target, s.Problems, s.Notices)
	}
	// The CLI shows it in the host's row, and a monitoring check sees no
	// critical problem in it.
	c.expect(t, via, 0, "maintenance since", "status")
	if out, err := c.vmha(via, "status", "--check"); strings.HasPrefix(string(out), "VMHA CRITICAL") || !strings.HasPrefix(string(out), "VMHA ") || strings.Count(string(out), "\n") != 1 {
		t.Fatalf("vmha status --check with a host in maintenance: %v: %q", err, out)
	}
	c.expect(t, via, 1, "not back in gossip yet", "host", "maintenance", target, "--off")
	if err := c.Host(target).Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitFor(context.Background(), 30*time.Second, target+" back in gossip", func(s *api.Status) bool {
		return hostOf(s, target).Member == "alive"
	}); err != nil {
		t.Fatal(err)
	}
	c.expect(t, via, 0, "maintenance ended", "host", "maintenance", target, "--off")
	c.expect(t, via, 1, "not in maintenance", "host", "maintenance", target, "--off")
	waitAllRunning(t, c, 6)
	c.expectNoFence(t)

	// Cold start with one host down: wait_for_all holds every decision.
	for _, h := range c.Hosts {
		h.Stop()
	}
	late := c.Hosts[2] // one that runs VMs (addVMs prefers the first three)
	for _, h := range c.Hosts {
		if h == late {
			continue
		}
		if err := h.Start(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.WaitFor(context.Background(), 40*time.Second, "waiting for "+late.Name, func(s *api.Status) bool {
		return s.Leader != "" && slices.Equal(s.Quorum.WaitingForAll, []string{late.Name})
	}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Second) // far past failure detection and the unseen grace
	s = mustStatus(t, c)
	if h := hostOf(s, late.Name); h.State != model.HostAlive || len(h.VMs) == 0 {
		t.Fatalf("under wait_for_all the missing host was acted on: %+v", h)
	}
	if !hasProblem(s, "waiting for all hosts") {
		t.Fatalf("status does not explain wait_for_all: %v", s.Problems)
	}
	via = c.Host(s.Leader)
	c.expect(t, via, 1, "still has VMs placed on it", "host", "remove", late.Name, "--yes")
	if err := late.Start(); err != nil {
		t.Fatal(err)
	}
	waitAllRunning(t, c, 6)
	c.expectNoFence(t)

	// Remove the host: refused while alive; evacuated and stopped, it goes.
	// (The status may show the VMs running from their last report before
	// the host is back in gossip: wait for every host first.)
	s, err := c.WaitFor(context.Background(), 30*time.Second, "every host back in gossip", func(s *api.Status) bool {
		for _, h := range s.Hosts {
			if h.Member != "alive" || h.State != model.HostAlive {
				return false
			}
		}
		return s.Leader != ""
	})
	if err != nil {
		t.Fatal(err)
	}
	via = c.Host(s.Leader)
	gone := late.Name
	if gone == s.Leader {
		gone = c.Hosts[1].Name
	}
	c.expect(t, via, 1, "is alive", "host", "remove", gone, "--yes")
	c.expect(t, via, 0, gone+" evacuated", "evacuate", gone, "--on-stuck", "stop-restart")
	c.Host(gone).Stop()
	c.expect(t, via, 0, gone+" removed from the cluster", "host", "remove", gone, "--yes")
	c.expect(t, via, 1, `unknown host "`+gone+`"`, "host", "remove", gone, "--yes")
	s, err = c.WaitFor(context.Background(), 20*time.Second, gone+" gone from status and votes", func(s *api.Status) bool {
		for _, h := range s.Hosts {
			if h.Name == gone {
				return false
			}
		}
		return !slices.Contains(s.Quorum.Voters, gone)
	})
	if err != nil {
		t.Fatal(err)
	}
	// Announce a host that has not joined: listed until it does.
	c.expect(t, via, 0, "host9 announced", "host", "add", "host9")
	c.expect(t, via, 1, "already a member", "host", "add", s.Leader)
	if s := mustStatus(t, c); !hasProblem(s, "host host9 was announced") {
		t.Fatalf("status does not list the announced host: %v", s.Problems)
	}
	c.expect(t, via, 0, "withdrawn", "host", "add", "host9", "--undo")
	waitAllRunning(t, c, 6)
}

func hasNotice(s *api.Status, part string) bool {
	for _, n := range s.Notices {
		if strings.Contains(n.Message, part) {
			return true
		}
	}
	return false
}

func hasProblem(s *api.Status, part string) bool {
	for _, p := range s.Problems {
		if strings.Contains(p, part) {
			return true
		}
	}
	return false
}

func waitAllRunning(t *testing.T, c *Cluster, n int) {
	t.Helper()
	if _, err := c.WaitFor(context.Background(), 60*time.Second, "every VM running", func(s *api.Status) bool {
		if s.Leader == "" || len(s.VMs) != n {
			return false
		}
		for _, v := range s.VMs {
			if v.State != "running" {
				return false
			}
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
}

func (c *Cluster) expectNoFence(t *testing.T) {
	t.Helper()
	var hist []model.FenceRecord
	if err := c.Alive()[0].Client().Do(context.Background(), "GET", api.PathFenceHistory, nil, &hist, nil); err != nil {
		t.Fatal(err)
	}
	if len(hist) != 0 {
		t.Fatalf("a host was fenced: %+v", hist)
	}
}
