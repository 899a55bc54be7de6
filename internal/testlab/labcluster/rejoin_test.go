package labcluster

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/internal/testlab/virtlab"
	"github.com/vmha/vmha/model"
)

// addVMsOn adds VMs that prefer host (through the CLI) and waits until they
// run there.
func addVMsOn(t *testing.T, c *Cluster, host string, names ...string) {
	t.Helper()
	dir := t.TempDir()
	for _, name := range names {
		p := testVMXML(t, dir, name)
		if out, err := c.vmhaRetry(leaderHost(t, c), "vm", "add", name, "--xml", p, "--prefer", host); err != nil {
			t.Fatalf("vm add %s: %v: %s", name, err, out)
		}
	}
	if _, err := c.WaitFor(context.Background(), 30*time.Second, "VMs running on "+host, func(s *api.Status) bool {
		n := 0
		for _, v := range s.VMs {
			if v.State == "running" && v.Host == host {
				n++
			}
		}
		return n == len(names)
	}); err != nil {
		t.Fatal(err)
	}
}

// churn commits n log entries through the leader: placement rules that give
// host a thousand attributes (changed each time), so that every entry costs
// its state machine a rules check when applied. A host that rejoins replays
// every one of them before it reaches what came after: minutes of a busy
// cluster's log in a few seconds. The rules are cleared at the end.
func churn(t *testing.T, c *Cluster, host string, n int) {
	t.Helper()
	ctx := context.Background()
	post := func(yaml string) {
		var err error
		for try := 0; try < 50; try++ {
			via := c.Alive()[try%len(c.Alive())]
			if err = via.Client().Do(ctx, http.MethodPost, api.PathRules, api.Rules{YAML: yaml}, nil, nil); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("churn: %v", err)
	}
	for i := range n {
		var b strings.Builder
		fmt.Fprintf(&b, "hosts:\n- name: %s\n  attributes:\n", host)
		for k := range 1000 {
			fmt.Fprintf(&b, "    churn%d: \"%d\"\n", k, i)
		}
		b.WriteString("vms: []\n")
		post(b.String())
	}
	post("")
}

// TestRejoinNeverStartsStalePlacement reproduces issue 19: a fenced host
// that comes back replays a long log; while its state machine is still in
// the past, the VMs it ran before the fence are placed on it there. Its
// agent must start nothing from that replay: the VMs run on the survivors.
// Three fence/rejoin cycles of the same host, the second after a
// maintenance restart, as in the acceptance run that found it.
func TestRejoinNeverStartsStalePlacement(t *testing.T) {
	c := startCluster(t)
	s := mustStatus(t, c)
	var victim *Host
	for _, h := range c.Hosts {
		if h.Name != s.Leader {
			victim = h
			break
		}
	}
	ch := watchNeverTwice(t, c)
	var vms []string
	for cycle := 1; cycle <= 3; cycle++ {
		if cycle == 2 {
			// The maintenance restart of the sequence.
			maintenanceRestart(t, c, victim, 0)
		}
		// New VMs on the victim each cycle (the earlier ones stay on the
		// survivors: the test driver cannot migrate them back); the log
		// grows while they run there.
		now := []string{fmt.Sprintf("db%d", cycle), fmt.Sprintf("web%d", cycle)}
		addVMsOn(t, c, victim.Name, now...)
		vms = append(vms, now...)
		churn(t, c, victim.Name, 300)
		victim.Kill()
		waitRecovered(t, c, victim.Name, vms)
		if err := victim.Start(); err != nil {
			t.Fatal(err)
		}
		waitMember(t, c, victim.Name)
		// The window of the bug: the agent's first passes while its state
		// machine replays the log.
		time.Sleep(5 * time.Second)
		ch.mu.Lock()
		twice := len(ch.twice)
		ch.mu.Unlock()
		t.Logf("cycle %d: %d double-run samples", cycle, twice)
		if twice > 0 {
			break
		}
	}
	ch.verify(t)
}

// waitMember waits until host's vmhad answers on its socket and the
// leader sees it alive in gossip and in the cluster state.
func waitMember(t *testing.T, c *Cluster, host string) {
	t.Helper()
	h := c.Host(host)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := h.Status(context.Background()); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("%s does not answer: %v", host, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := c.WaitFor(context.Background(), 60*time.Second, host+" back", func(s *api.Status) bool {
		h := hostOf(s, host)
		return h.Member == "alive" && h.State == model.HostAlive
	}); err != nil {
		t.Fatal(err)
	}
}

// TestRejoinRealGuestsNeverTwice runs the sequence of issue 19 on three real
// libvirtd hosts with QEMU (TCG) guests. A fence is a power cut: the BMC
// kills the host's vmhad, its libvirtd and every QEMU process. A sampler
// reads the QEMU processes themselves (not libvirt, not vmha) every 100 ms
// and records any guest alive on two hosts.
func TestRejoinRealGuestsNeverTwice(t *testing.T) {
	lab := virtlab.NewHosts(t, 3)
	img := virtlab.TestImage(t)
	power, on, uris := map[string]string{}, map[string]func() error{}, []string{}
	byName := map[string]*virtlab.Host{}
	for i, h := range lab {
		name := fmt.Sprintf("host%d", i+1)
		power[name], on[name], byName[name] = h.PowerCutCommand(), h.PowerOn, h
		uris = append(uris, h.URI)
	}
	c := startClusterWith(t, Options{Hypervisors: uris, PowerOff: power, PowerOn: on})
	s := mustStatus(t, c)
	var victim *Host
	for _, h := range c.Hosts {
		if h.Name != s.Leader {
			victim = h
			break
		}
	}

	stop := qemuTwice(byName)

	dir := t.TempDir()
	var vms []string
	for cycle := 1; cycle <= 2; cycle++ {
		if cycle == 2 {
			// The maintenance restart of the sequence.
			maintenanceRestart(t, c, victim, 0)
		}
		now := []string{fmt.Sprintf("db%d", cycle), fmt.Sprintf("web%d", cycle)}
		addGuestsOn(t, c, dir, img, now, victim.Name)
		vms = append(vms, now...)
		churn(t, c, victim.Name, 300)
		victim.Kill()
		waitRecovered(t, c, victim.Name, vms)
		// The fence was a power cut: nothing runs on the victim any more.
		if g := byName[victim.Name].RunningGuests(); len(g) > 0 {
			t.Fatalf("after the fence, QEMU still runs %v on %s", g, victim.Name)
		}
		if err := victim.Start(); err != nil {
			t.Fatal(err)
		}
		waitMember(t, c, victim.Name)
		time.Sleep(5 * time.Second)
	}
	samples, twice := stop()
	if samples < 50 {
		t.Fatalf("the QEMU sampler took only %d samples", samples)
	}
	if len(twice) > 0 {
		t.Fatalf("never-twice violated over %d samples: %v", samples, twice[:min(10, len(twice))])
	}
	t.Logf("%d QEMU samples over %d guests, none on two hosts", samples, len(vms))
}

// qemuTwice reads the QEMU processes of the hosts every 100 ms and records
// any guest alive on two hosts; stop ends it and returns how many samples
// it took and what it found.
func qemuTwice(byName map[string]*virtlab.Host) (stop func() (samples int, twice []string)) {
	var mu sync.Mutex
	var twice []string
	samples := 0
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-quit:
				return
			case <-time.After(100 * time.Millisecond):
			}
			where := map[string][]string{}
			for name, h := range byName {
				for _, g := range h.RunningGuests() {
					where[g] = append(where[g], name)
				}
			}
			mu.Lock()
			samples++
			for g, hs := range where {
				if len(hs) > 1 {
					twice = append(twice, fmt.Sprintf("%s: QEMU on %v", g, hs))
				}
			}
			mu.Unlock()
		}
	}()
	return func() (int, []string) {
		close(quit)
		<-done
		mu.Lock()
		defer mu.Unlock()
		return samples, twice
	}
}

// addGuestsOn adds guests (their XML written to dir) preferring host, and
// waits until they run there.
func addGuestsOn(t *testing.T, c *Cluster, dir string, img virtlab.Image, guests []string, host string) {
	t.Helper()
	for _, name := range guests {
		p := filepath.Join(dir, name+".xml")
		if err := os.WriteFile(p, []byte(virtlab.GuestXML(name, img, 128)), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := c.vmha(leaderHost(t, c), "vm", "add", name, "--xml", p, "--prefer", host); err != nil {
			t.Fatalf("vm add %s: %v: %s", name, err, out)
		}
	}
	if _, err := c.WaitFor(context.Background(), 90*time.Second, "guests running on "+host, func(s *api.Status) bool {
		n := 0
		for _, v := range s.VMs {
			if slices.Contains(guests, v.Name) && v.Host == host && v.State == "running" {
				n++
			}
		}
		return n == len(guests)
	}); err != nil {
		t.Fatal(err)
	}
}
