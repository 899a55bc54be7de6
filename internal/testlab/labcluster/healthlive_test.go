package labcluster

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/internal/testlab/ipmisim"
	"github.com/vmha/vmha/internal/testlab/virtlab"
	"github.com/vmha/vmha/model"
)

// TestHealthRedMovesGuestsLive is issue 18 part 3 (proactive HA) on real
// hypervisors: two hosts with real libvirtd and QEMU (TCG), each vmhad
// reading its own ipmi_sim BMC with sensors, and a witness. A counting
// guest g1 (allow-migrate, prefers host1) runs on host1 under
// node-health-strategy migrate-on-red. host1's CPU temperature goes
// critical at run time: #health-ipmi turns red and g1 moves LIVE to host2
// (its last move's outcome is live, its console keeps one boot), never
// running on two hosts. The temperature goes back: host1 is green but
// health-hold keeps g1 on host2, though it prefers host1, until vmha host
// health clear host1; then it moves back live, still the same boot.
func TestHealthRedMovesGuestsLive(t *testing.T) {
	virtlab.Need(t)
	start := time.Now()
	lab := virtlab.NewHosts(t, 2)
	img := virtlab.TestImage(t)
	const ipmi = "health:\n  ipmi:\n    enabled: true\n    interval: 1s\n    timeout: 10s\n    dampen: 1s\n"
	c := startClusterWith(t, Options{Witness: true, Hypervisors: []string{lab[0].URI, lab[1].URI}, BMCSensors: true,
		HostExtra: map[string]string{"host1": ipmi, "host2": ipmi}})
	twice := runningTwice(t, c)
	h1 := c.Host("host1")
	ctx := context.Background()
	dir := t.TempDir()
	xml := filepath.Join(dir, "g1.xml")
	if err := os.WriteFile(xml, []byte(virtlab.GuestXML("g1", img, 128)), 0o600); err != nil {
		t.Fatal(err)
	}
	c.expect(t, h1, 0, "vm g1 added", "vm", "add", "g1", "--xml", xml, "--prefer", "host1")
	rules := filepath.Join(dir, "cluster.yaml")
	if err := os.WriteFile(rules, []byte(`policy:
  node-health-strategy: migrate-on-red
vms:
  - name: g1
    allow-migrate: true
constraints:
  locations:
    - {vm: g1, host: host1, score: 100}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	c.expect(t, h1, 0, "placement rules from", "rules", "apply", rules, "--yes")
	waitRunning(t, c, "g1", "host1")
	if _, err := c.WaitFor(ctx, 30*time.Second, "#health-ipmi green on host1 and host2", func(s *api.Status) bool {
		return attrOf(s, "host1", "#health-ipmi") == "green" && attrOf(s, "host2", "#health-ipmi") == "green"
	}); err != nil {
		t.Fatal(err)
	}
	serial1, serial2 := lab[0].SerialLog("g1"), lab[1].SerialLog("g1")
	if err := virtlab.WaitCounter(serial1, 2, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	before, err := virtlab.ReadCounters(serial1)
	if err != nil {
		t.Fatal(err)
	}
	boot := before[0].Boot
	t.Logf("g1 counting on host1 (%s)", time.Since(start).Round(time.Millisecond))

	// Critical: red, and g1 leaves host1 live.
	hot := time.Now()
	if err := h1.BMC.SetSensor(ipmisim.SensorCPUTemp, ipmisim.CPUTempCritical); err != nil {
		t.Fatal(err)
	}
	waitAttr(t, c, "host1", "#health-ipmi", "red")
	red := time.Since(hot)
	s, err := c.WaitFor(ctx, 60*time.Second, "g1 moved to host2", func(s *api.Status) bool {
		for _, v := range s.VMs {
			if v.Name == "g1" {
				return v.Host == "host2" && v.MigratingFrom == "" && v.State == "running"
			}
		}
		return false
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("CPU critical -> #health-ipmi red in %s; g1 on host2 in %s", red.Round(time.Millisecond), time.Since(hot).Round(time.Millisecond))
	checkLiveMove(t, s, "g1", "host1", "host2")
	if attrOf(s, "host1", "health-hold") != "red" {
		t.Fatalf("health-hold = %q, want red", attrOf(s, "host1", "health-hold"))
	}
	if err := virtlab.WaitCounter(serial2, 1, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	checkBoot(t, boot, serial1, serial2)
	c.expect(t, h1, 1, "still red", "host", "health", "clear", "host1")

	// Normal again: green, but held; g1 stays on host2 though it prefers host1.
	if err := h1.BMC.SetSensor(ipmisim.SensorCPUTemp, ipmisim.CPUTempNormal); err != nil {
		t.Fatal(err)
	}
	waitAttr(t, c, "host1", "#health-ipmi", "green")
	ch := watchNeverTwice(t, c) // nothing migrates now: not even a paused copy
	time.Sleep(4 * time.Second)
	s = mustStatus(t, c)
	sameHosts(t, s, map[string]string{"g1": "host2"}, "host1 is held")
	if attrOf(s, "host1", "health-hold") != "red" {
		t.Fatalf("green host1: health-hold = %q, want red until cleared", attrOf(s, "host1", "health-hold"))
	}
	ch.verify(t)

	// The operator clears the hold: g1 goes back live to the host it prefers.
	cleared := time.Now()
	c.expect(t, h1, 0, "health hold (red) cleared", "host", "health", "clear", "host1")
	s, err = c.WaitFor(ctx, 60*time.Second, "g1 back on host1", func(s *api.Status) bool {
		for _, v := range s.VMs {
			if v.Name == "g1" {
				return v.Host == "host1" && v.MigratingFrom == "" && v.State == "running"
			}
		}
		return false
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("hold cleared -> g1 back on host1 in %s", time.Since(cleared).Round(time.Millisecond))
	checkLiveMove(t, s, "g1", "host2", "host1")
	if h := attrOf(s, "host1", "health-hold"); h != "" {
		t.Fatalf("after the clear, health-hold = %q", h)
	}
	last, _, err := virtlab.LastCounter(serial1)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		now, _, err := virtlab.LastCounter(serial1)
		if err != nil {
			t.Fatal(err)
		}
		if now.N > last.N && now.N > before[len(before)-1].N {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("g1 does not count on host1 after moving back: %+v", now)
		}
		time.Sleep(200 * time.Millisecond)
	}
	checkBoot(t, boot, serial1, serial2)
	if tw := twice(); len(tw) > 0 {
		t.Fatalf("a VM ran on two hosts: %v", tw[:min(5, len(tw))])
	}
	t.Logf("test took %s", time.Since(start).Round(time.Second))
}

// checkLiveMove fails unless status says vm's last move went live from
// one host to another.
func checkLiveMove(t *testing.T, s *api.Status, vm, from, to string) {
	t.Helper()
	for _, v := range s.VMs {
		if v.Name == vm {
			if m := v.LastMove; m == nil || m.Outcome != model.MoveLive || m.From != from || m.To != to {
				t.Fatalf("%s's last move: %+v, want live from %s to %s", vm, m, from, to)
			}
			return
		}
	}
	t.Fatalf("%s not in the status", vm)
}

// checkBoot fails unless every counter line on the consoles has boot's id.
func checkBoot(t *testing.T, boot string, serials ...string) {
	t.Helper()
	for _, path := range serials {
		cs, err := virtlab.ReadCounters(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, cn := range cs {
			if cn.Boot != boot {
				t.Fatalf("g1 rebooted: boot %s on %s, first %s", cn.Boot, path, boot)
			}
		}
	}
}
