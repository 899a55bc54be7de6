package labcluster

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/model"
)

func vmOf(s *api.Status, name string) api.VM {
	for _, v := range s.VMs {
		if v.Name == name {
			return v
		}
	}
	return api.VM{}
}

// TestVMLifecycle: the operator's day on a live cluster (issue 14). A VM is
// stopped and stays stopped (a notice, not a problem), started again,
// unmanaged and managed, relocated cold; a VM whose domain cannot start is
// tried on every host with a backoff, counted, and left stopped with the
// reason instead of retried for ever, until vmha vm cleanup; every step is
// in vmha events with the authenticated principal (the socket's user).
func TestVMLifecycle(t *testing.T) {
	c := startCluster(t)
	addVMs(t, c, "life1", "life2")
	via := leaderHost(t, c)
	ck := watchNeverTwice(t, c)
	defer ck.verify(t)

	c.expect(t, via, 0, "target stopped", "vm", "stop", "life1", "--reason", "patching")
	s, err := c.WaitFor(context.Background(), 20*time.Second, "life1 stopped", func(s *api.Status) bool {
		v := vmOf(s, "life1")
		return v.Host == "" && v.Actual != string(model.DomainRunning)
	})
	if err != nil {
		t.Fatal(err)
	}
	if hasProblem(s, "life1") || !hasNotice(s, "life1") {
		t.Fatalf("a VM stopped by an operator must be a notice, not a problem: problems %v, notices %v", s.Problems, s.Notices)
	}
	c.expect(t, via, 1, "changed meanwhile", "vm", "set", "life1", "--state", "ignored", "--if", "started")
	c.expect(t, via, 2, "unknown state", "vm", "set", "life1", "--state", "paused")
	c.expect(t, via, 0, "target started", "vm", "start", "life1")
	waitAllRunning(t, c, 2)
	bigger := filepath.Join(t.TempDir(), "life1.xml")
	if err := os.WriteFile(bigger, []byte("<domain type='test'><name>life1</name><memory unit='MiB'>384</memory><vcpu>1</vcpu><os><type>hvm</type></os></domain>"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.expect(t, via, 2, "--yes", "vm", "update", "life1", "--xml", bigger)
	c.expect(t, via, 0, "384", "vm", "update", "life1", "--xml", bigger, "--yes")

	c.expect(t, via, 0, "target ignored", "vm", "unmanage", "life2")
	s = mustStatus(t, c)
	if v := vmOf(s, "life2"); v.Target != model.TargetIgnored || v.Actual != string(model.DomainRunning) {
		t.Fatalf("an unmanaged VM keeps running, shown as unmanaged: %+v", v)
	}
	c.expect(t, via, 1, "only a started VM is relocated", "relocate", "life2", "--to", otherHost(c, vmOf(s, "life2").Host))
	c.expect(t, via, 0, "target started", "vm", "manage", "life2")

	from := vmOf(mustStatus(t, c), "life2").Host
	to := otherHost(c, from)
	c.expect(t, via, 0, "running on "+to, "relocate", "life2", "--to", to, "--wait", "--timeout", "40s")

	// A domain libvirt cannot define: tried on each host with a backoff,
	// then left stopped, with why.
	dir := t.TempDir()
	bad := filepath.Join(dir, "broken.xml")
	if err := os.WriteFile(bad, []byte("<domain type='bogus'><name>broken</name><memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type>hvm</type></os></domain>"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.expect(t, via, 0, "added", "vm", "add", "broken", "--xml", bad)
	_, err = c.WaitFor(context.Background(), 60*time.Second, "broken given up on every host", func(s *api.Status) bool {
		v := vmOf(s, "broken")
		return v.Host == "" && len(v.Failures) == len(c.Hosts) && strings.Contains(v.Reason, "failed 3 times")
	})
	if err != nil {
		t.Fatal(err)
	}
	out := c.expect(t, via, 0, "broken", "vm", "failcount", "broken")
	if strings.Count(out, "until ") != len(c.Hosts) {
		t.Fatalf("vmha vm failcount should show broken kept off every host:\n%s", out)
	}
	// Given up: no more attempts while the counts hold.
	n := failureEvents(t, c, via, "broken")
	time.Sleep(5 * time.Second)
	if again := failureEvents(t, c, via, "broken"); again != n {
		t.Fatalf("broken was tried again after it was given up (%d → %d failure events)", n, again)
	}
	c.expect(t, via, 0, "cleared", "vm", "cleanup", "broken")
	c.expect(t, via, 0, "target stopped", "vm", "stop", "broken")
	c.expect(t, via, 0, "no failures", "vm", "failcount", "broken")

	// Cluster maintenance: nothing moves; status says so.
	c.expect(t, via, 0, "cluster in maintenance", "cluster", "maintenance", "--reason", "switch upgrade")
	c.expect(t, via, 0, "CLUSTER IN MAINTENANCE", "status")
	c.expect(t, via, 1, "cluster is in maintenance", "relocate", "life1", "--to", otherHost(c, vmOf(mustStatus(t, c), "life1").Host))
	c.expect(t, via, 0, "maintenance ended", "cluster", "maintenance", "--off")

	// The event log has each step once, with the socket's user as the
	// principal.
	raw := c.expect(t, via, 0, "[", "events", "-o", "json")
	var evs []model.Event
	if err := json.Unmarshal([]byte(raw), &evs); err != nil {
		t.Fatalf("vmha events -o json: %v\n%s", err, raw)
	}
	want := map[string]bool{"life1 update": false, "life1 set-stopped": false, "life1 stop": false, "life1 set-started": false, "life2 set-ignored": false,
		"life2 set-started": false, "life2 relocate": false, "broken cleanup": false, "cluster maintenance-on": false, "cluster maintenance-off": false}
	for _, e := range evs {
		k := e.Object + " " + e.Action
		if _, ok := want[k]; !ok {
			continue
		}
		want[k] = true
		if e.Action != "stop" && !strings.HasPrefix(e.Principal, "root (uid 0) on ") {
			t.Errorf("%s recorded with principal %q, want the socket's user (root (uid 0) on HOST)", k, e.Principal)
		}
		if k == "life1 set-stopped" && e.Reason != "patching" {
			t.Errorf("life1's stop recorded with reason %q", e.Reason)
		}
	}
	for k, seen := range want {
		if !seen {
			t.Errorf("no event %q in vmha events", k)
		}
	}
	c.expect(t, via, 0, "set-stopped", "events", "--vm", "life1", "--since", "1h")
}

func otherHost(c *Cluster, than string) string {
	for _, h := range c.Hosts {
		if h.Name != than {
			return h.Name
		}
	}
	return ""
}

func failureEvents(t *testing.T, c *Cluster, via *Host, vm string) int {
	t.Helper()
	raw := c.expect(t, via, 0, "[", "events", "--vm", vm, "-o", "json")
	var evs []model.Event
	if err := json.Unmarshal([]byte(raw), &evs); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range evs {
		if e.Action == "failed" {
			n++
		}
	}
	return n
}
