package labcluster

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/internal/testlab/ipmisim"
)

// vmHost is where status places vm ("" if nowhere).
func vmHost(s *api.Status, vm string) string {
	for _, v := range s.VMs {
		if v.Name == vm {
			return v.Host
		}
	}
	return ""
}

// waitAttr waits until host's attribute key is value.
func waitAttr(t *testing.T, c *Cluster, host, key, value string) *api.Status {
	t.Helper()
	s, err := c.WaitFor(context.Background(), 20*time.Second, host+" "+key+"="+value, func(s *api.Status) bool {
		return attrOf(s, host, key) == value
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// waitRunning waits until vm runs (on host, unless host is "").
func waitRunning(t *testing.T, c *Cluster, vm, host string) *api.Status {
	t.Helper()
	s, err := c.WaitFor(context.Background(), 30*time.Second, vm+" running "+host, func(s *api.Status) bool {
		for _, v := range s.VMs {
			if v.Name == vm && v.State == "running" && (host == "" || v.Host == host) {
				return true
			}
		}
		return false
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sameHosts fails unless every VM of want runs where it says.
func sameHosts(t *testing.T, s *api.Status, want map[string]string, why string) {
	t.Helper()
	for vm, h := range want {
		if got := vmHost(s, vm); got != h {
			t.Fatalf("%s moved from %s to %s: %s", vm, h, got, why)
		}
	}
}

func attrOf(s *api.Status, host, key string) string {
	for _, h := range s.Hosts {
		if h.Name == host {
			return h.Attributes[key]
		}
	}
	return ""
}

// TestHealthRedDrainsHost (issue 18 part 3, proactive HA): every host's
// vmhad reads its own BMC (ipmi_sim with sensors) and publishes
// #health-ipmi. host1's CPU temperature goes critical at run time: its
// #health-ipmi turns red, and under node-health-strategy migrate-on-red its
// VMs leave it (the test driver cannot migrate live, so they restart
// elsewhere; with allow-migrate and real libvirtd they move live, the path
// docs/moves.md describes: TestHealthRedMovesGuestsLive), never active twice. The leader holds host1
// (health-hold=red). The temperature goes back: #health-ipmi is green, but
// nothing comes to host1 (a new VM that prefers it goes elsewhere) until an
// operator clears the hold, which is refused while the host is red.
func TestHealthRedDrainsHost(t *testing.T) {
	start := time.Now()
	c := startClusterWith(t, Options{BMCSensors: true,
		Extra: "health:\n  ipmi:\n    enabled: true\n    interval: 1s\n    timeout: 10s\n    dampen: 1s\n"})
	h1 := c.Host("host1")
	ctx := context.Background()
	_, err := c.WaitFor(ctx, 30*time.Second, "#health-ipmi green on every host", func(s *api.Status) bool {
		for _, h := range s.Hosts {
			if h.Attributes["#health-ipmi"] != "green" {
				return false
			}
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	addVMs(t, c, "g1", "g2", "g3", "g4") // g1 and g4 on host1
	rules := filepath.Join(t.TempDir(), "cluster.yaml")
	if err := os.WriteFile(rules, []byte("policy:\n  node-health-strategy: migrate-on-red\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.expect(t, h1, 0, "placement rules from", "rules", "apply", rules, "--yes")
	s := mustStatus(t, c)
	if vmHost(s, "g1") != "host1" || vmHost(s, "g4") != "host1" {
		t.Fatalf("g1 on %s, g4 on %s; want host1", vmHost(s, "g1"), vmHost(s, "g4"))
	}
	before := map[string]string{"g2": vmHost(s, "g2"), "g3": vmHost(s, "g3")}
	ch := watchNeverTwice(t, c)

	// Yellow (above upper non-critical) moves nothing under migrate-on-red.
	if err := h1.BMC.SetSensor(ipmisim.SensorCPUTemp, ipmisim.CPUTempWarning); err != nil {
		t.Fatal(err)
	}
	waitAttr(t, c, "host1", "#health-ipmi", "yellow")
	time.Sleep(2 * time.Second)
	sameHosts(t, mustStatus(t, c), map[string]string{"g1": "host1", "g4": "host1"}, "yellow moves nothing under migrate-on-red")

	hot := time.Now()
	if err := h1.BMC.SetSensor(ipmisim.SensorCPUTemp, ipmisim.CPUTempCritical); err != nil {
		t.Fatal(err)
	}
	s = waitAttr(t, c, "host1", "#health-ipmi", "red")
	red := time.Since(hot)
	if r := attrOf(s, "host1", "health-ipmi-reasons"); !strings.Contains(r, "CPU Temp 95 degrees C, above upper critical 90") {
		t.Fatalf("health-ipmi-reasons = %q", r)
	}
	s, err = c.WaitFor(ctx, 60*time.Second, "g1 and g4 running off host1", func(s *api.Status) bool {
		for _, v := range s.VMs {
			if v.State != "running" || v.Host == "host1" || v.MigratingFrom != "" {
				return false
			}
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	drained := time.Since(hot)
	t.Logf("CPU critical -> #health-ipmi red in %s; host1 drained in %s", red.Round(time.Millisecond), drained.Round(time.Millisecond))
	sameHosts(t, s, before, "only host1's VMs should move")
	if attrOf(s, "host1", "health-hold") != "red" {
		t.Fatalf("health-hold = %q, want red", attrOf(s, "host1", "health-hold"))
	}
	codes := map[string]bool{}
	for _, i := range s.ProblemDetails {
		if i.Host == "host1" {
			codes[i.Code] = true
		}
	}
	if !codes["host_health"] || !codes["host_health_hold"] {
		t.Fatalf("status problems about host1: %v", s.ProblemDetails)
	}
	c.expect(t, h1, 1, "still red", "host", "health", "clear", "host1")
	moved := map[string]string{"g1": vmHost(s, "g1"), "g4": vmHost(s, "g4")}

	// Back to normal: green, but held.
	if err := h1.BMC.SetSensor(ipmisim.SensorCPUTemp, ipmisim.CPUTempNormal); err != nil {
		t.Fatal(err)
	}
	waitAttr(t, c, "host1", "#health-ipmi", "green")
	dir := t.TempDir()
	if out, err := c.vmhaRetry(h1, "vm", "add", "g5", "--xml", testVMXML(t, dir, "g5"), "--prefer", "host1"); err != nil {
		t.Fatalf("vm add g5: %v: %s", err, out)
	}
	if s = waitRunning(t, c, "g5", ""); vmHost(s, "g5") == "host1" {
		t.Fatal("g5 started on host1 while it is held")
	}
	time.Sleep(3 * time.Second)
	sameHosts(t, mustStatus(t, c), moved, "nothing moves while host1 is held")

	// The operator clears the hold: host1 takes VMs again.
	c.expect(t, h1, 0, "health hold (red) cleared", "host", "health", "clear", "host1")
	if out, err := c.vmhaRetry(h1, "vm", "add", "g6", "--xml", testVMXML(t, dir, "g6"), "--prefer", "host1"); err != nil {
		t.Fatalf("vm add g6: %v: %s", err, out)
	}
	s = waitRunning(t, c, "g6", "host1")
	sameHosts(t, s, moved, "running VMs that cannot move live stay where they run")
	ch.verify(t)
	t.Logf("test took %s", time.Since(start).Round(time.Second))
}
