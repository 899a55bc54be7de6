package labcluster

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vmha/vmha/api"
)

var domainID = regexp.MustCompile(`<domain [^>]*id='(\d+)'`)

// liveID is the libvirt domain id of dom on h ("" when it does not run):
// the test driver gives every start a new id, so an unchanged id means the
// domain was not restarted.
func liveID(t *testing.T, h *Host, dom string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var d api.DomainXML
	if err := h.Client().Do(ctx, http.MethodGet, api.PathLocalDomains+"/"+dom+api.PathDomainXMLSuffix, nil, &d, nil); err != nil {
		var se *api.StatusError
		if errors.As(err, &se) && se.Code == http.StatusNotFound {
			return ""
		}
		t.Fatalf("domain %s on %s: %v", dom, h.Name, err)
	}
	if d.State != "running" {
		return ""
	}
	m := domainID.FindStringSubmatch(d.XML)
	if m == nil {
		t.Fatalf("no domain id in the running XML of %s:\n%s", dom, d.XML)
	}
	return m[1]
}

// TestVMDefinitionsLab: a domain host2's libvirt runs before vmha knows it
// is adopted where it runs, without a restart (vm add --from-libvirt); a
// definition updated --at-next-start leaves it running with the old one
// (vm show and vm diff say so); update --restart restarts it once, on
// host2, with the new one (vm diff then matches); remove --keep-running
// leaves it running on host2.
func TestVMDefinitionsLab(t *testing.T) {
	const dom = `<domain type='test'><name>legacy1</name><memory unit='MiB'>256</memory><vcpu>1</vcpu><os><type>hvm</type></os></domain>`
	c := startClusterWith(t, Options{NodeDomains: map[string]string{"host2": "  " + dom + "\n"}})
	h1, h2 := c.Host("host1"), c.Host("host2")
	id := liveID(t, h2, "legacy1")
	if id == "" {
		t.Fatal("legacy1 does not run on host2 at the start")
	}
	if out, err := c.vmhaRetry(h1, "vm", "add", "--from-libvirt", "host2:legacy1"); err != nil {
		t.Fatalf("vm add --from-libvirt: %v: %s", err, out)
	}
	if _, err := c.WaitFor(context.Background(), 20*time.Second, "legacy1 running on host2", func(s *api.Status) bool {
		return len(s.VMs) == 1 && s.VMs[0].Host == "host2" && s.VMs[0].State == "running"
	}); err != nil {
		t.Fatal(err)
	}
	if now := liveID(t, h2, "legacy1"); now != id {
		t.Fatalf("adopting legacy1 restarted it: domain id %s, was %s", now, id)
	}

	dir := t.TempDir()
	write := func(mib string) string {
		p := filepath.Join(dir, mib+".xml")
		if err := os.WriteFile(p, []byte(strings.Replace(dom, ">256<", ">"+mib+"<", 1)), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if out, err := c.vmha(h1, "vm", "update", "legacy1", "--xml", write("512"), "--yes"); err != nil {
		t.Fatalf("vm update: %v: %s", err, out)
	}
	out, err := c.vmha(h1, "vm", "show", "legacy1", "-o", "json")
	var show api.VMDefinition
	if err != nil || json.Unmarshal(out, &show) != nil || !show.PendingRestart || show.MemoryMiB != 512 {
		t.Fatalf("vm show after update: %v %s", err, out)
	}
	if out, err := c.vmha(h1, "vm", "diff", "legacy1"); err != nil || !strings.Contains(string(out), `-  <memory unit="KiB">524288</memory>`) || !strings.Contains(string(out), `+  <memory unit="KiB">262144</memory>`) {
		t.Fatalf("vm diff after update: %v:\n%s", err, out)
	}
	if now := liveID(t, h2, "legacy1"); now != id {
		t.Fatalf("an update --at-next-start restarted legacy1: domain id %s, was %s", now, id)
	}

	if out, err := c.vmha(h1, "vm", "update", "legacy1", "--xml", write("768"), "--restart", "--yes"); err != nil {
		t.Fatalf("vm update --restart: %v: %s", err, out)
	}
	var diff api.DomainDiff
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := c.vmha(h1, "vm", "diff", "legacy1", "-o", "json")
		if err == nil && json.Unmarshal(out, &diff) == nil && diff.Same && diff.State == "running" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("legacy1 not restarted with its new definition: %v:\n%s", err, out)
		}
		time.Sleep(300 * time.Millisecond)
	}
	restarted := liveID(t, h2, "legacy1")
	if restarted == "" || restarted == id {
		t.Fatalf("after update --restart: domain id %q, was %s", restarted, id)
	}
	for _, h := range []*Host{c.Host("host1"), c.Host("host3")} {
		if other := liveID(t, h, "legacy1"); other != "" {
			t.Errorf("legacy1 runs on %s too", h.Name)
		}
	}

	if out, err := c.vmha(h1, "vm", "remove", "legacy1", "--keep-running", "--yes"); err != nil {
		t.Fatalf("vm remove --keep-running: %v: %s", err, out)
	}
	if _, err := c.WaitFor(context.Background(), 10*time.Second, "legacy1 gone from the cluster", func(s *api.Status) bool { return len(s.VMs) == 0 }); err != nil {
		t.Fatal(err)
	}
	// Several agent passes (the lab's interval is short) after the
	// removal: the domain is still the one that ran.
	for range 10 {
		time.Sleep(300 * time.Millisecond)
		if now := liveID(t, h2, "legacy1"); now != restarted {
			t.Fatalf("after remove --keep-running: legacy1's domain id %q, was %s", now, restarted)
		}
	}
}
