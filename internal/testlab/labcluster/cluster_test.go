package labcluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/serf"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/hypervisor"
	"github.com/vmha/vmha/internal/gossipkey"
	"github.com/vmha/vmha/internal/testlab/ipmisim"
	"github.com/vmha/vmha/internal/testlab/testenv"
	"github.com/vmha/vmha/model"
	"github.com/vmha/vmha/pki"
)

// binDir holds vmhad and vmha built once for all cluster tests.
var binDir string

func TestMain(m *testing.M) {
	code := func() int {
		dir, err := os.MkdirTemp("", "vmha-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		out, err := exec.Command("go", "build", "-o", dir+"/", "github.com/vmha/vmha/cmd/vmhad", "github.com/vmha/vmha/cmd/vmha").CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "build vmhad: %v\n%s", err, out)
			return 1
		}
		binDir = dir
		// Hosts may run as users of their own (partition tests).
		if err := traversable(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

// startCluster starts 3 hosts with BMCs and waits until they formed a
// cluster with every fence device registered.
func startCluster(t *testing.T) *Cluster {
	t.Helper()
	return startClusterWith(t, Options{})
}

func startClusterWith(t *testing.T, o Options) *Cluster {
	t.Helper()
	if err := ipmisim.Available(); err != nil {
		testenv.Missing(t, "ipmi_sim: "+err.Error())
	}
	o.Dir, o.VMHAD = t.TempDir(), filepath.Join(binDir, "vmhad")
	c, err := Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("VMHA_KEEP_LOGS") != "" {
			keepLogs(t, c)
		}
		c.Close()
	})
	_, err = c.WaitFor(context.Background(), 40*time.Second, "3 registered hosts and a leader", func(s *api.Status) bool {
		if s.Leader == "" || len(s.Hosts) != len(c.Hosts) {
			return false
		}
		for _, h := range s.Hosts {
			if (h.FenceDev == "" && !h.Witness) || h.Member != "alive" {
				return false
			}
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// testVMXML writes a test-driver domain named name in dir and returns its
// path.
func testVMXML(t *testing.T, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name+".xml")
	xml := fmt.Sprintf("<domain type='test'><name>%s</name><memory unit='MiB'>256</memory><vcpu>1</vcpu><os><type>hvm</type></os></domain>", name)
	if err := os.WriteFile(p, []byte(xml), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// addVMs adds n VMs through the CLI, preferring hosts round-robin, and
// waits until all run.
func addVMs(t *testing.T, c *Cluster, names ...string) *api.Status {
	t.Helper()
	dir := t.TempDir()
	for i, name := range names {
		p := testVMXML(t, dir, name)
		if out, err := c.vmhaRetry(c.Hosts[i%len(c.Hosts)], "vm", "add", name, "--xml", p, "--prefer", c.Hosts[i%len(c.Hosts)].Name); err != nil {
			t.Fatalf("vm add %s: %v: %s", name, err, out)
		}
	}
	s, err := c.WaitFor(context.Background(), 30*time.Second, "all VMs running", func(s *api.Status) bool {
		if len(s.VMs) != len(names) {
			return false
		}
		for _, v := range s.VMs {
			if v.State != "running" {
				return false
			}
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// vmhaRetry runs vmha through h, again for up to 30 s while the cluster
// has no leader (exit 3: an election under load, right after the start).
func (c *Cluster) vmhaRetry(h *Host, args ...string) ([]byte, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := c.vmha(h, args...)
		var ee *exec.ExitError
		if err == nil || !errors.As(err, &ee) || ee.ExitCode() != 3 || time.Now().After(deadline) {
			return out, err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (c *Cluster) vmha(h *Host, args ...string) ([]byte, error) {
	return exec.Command(filepath.Join(binDir, "vmha"), append([]string{"--socket", h.Socket}, args...)...).CombinedOutput()
}

// checker samples every running host's hypervisor directly and records any
// moment where a VM is active on two hosts (invariant 1, never twice).
type checker struct {
	c       *Cluster
	mu      sync.Mutex
	twice   []string
	samples int
	stop    chan struct{}
	done    chan struct{}
}

func watchNeverTwice(t *testing.T, c *Cluster) *checker {
	ch := &checker{c: c, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(ch.done)
		for {
			select {
			case <-ch.stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			ch.sample()
		}
	}()
	t.Cleanup(ch.finish)
	return ch
}

func (ch *checker) sample() {
	where := map[string][]string{}
	for _, h := range ch.c.Alive() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		var doms []hypervisor.Domain
		err := h.Client().Do(ctx, "GET", api.PathLocalDomains, nil, &doms, nil)
		cancel()
		if err != nil {
			continue // the host may be dying
		}
		for _, d := range doms {
			if d.State.Active() {
				where[d.Name] = append(where[d.Name], h.Name)
			}
		}
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	ch.samples++
	for vm, hosts := range where {
		if len(hosts) > 1 {
			ch.twice = append(ch.twice, fmt.Sprintf("%s active on %v", vm, hosts))
		}
	}
}

func (ch *checker) finish() {
	select {
	case <-ch.stop:
	default:
		close(ch.stop)
	}
	<-ch.done
}

// verify stops sampling and fails the test if any VM ran twice.
func (ch *checker) verify(t *testing.T) {
	t.Helper()
	ch.finish()
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.samples < 10 {
		t.Fatalf("the never-twice checker took only %d samples", ch.samples)
	}
	if len(ch.twice) > 0 {
		t.Fatalf("never-twice violated: %v", ch.twice)
	}
}

func hostOf(s *api.Status, name string) api.Host {
	for _, h := range s.Hosts {
		if h.Name == name {
			return h
		}
	}
	return api.Host{}
}

// waitRecovered waits until every VM runs on a host other than victim and
// checks that each runs on exactly one survivor.
func waitRecovered(t *testing.T, c *Cluster, victim string, vms []string) *api.Status {
	t.Helper()
	s, err := c.WaitFor(context.Background(), 60*time.Second, "recovery from "+victim, func(s *api.Status) bool {
		if hostOf(s, victim).State != model.HostFenced {
			return false
		}
		for _, v := range s.VMs {
			if v.State != "running" || v.Host == victim {
				return false
			}
		}
		return len(s.VMs) == len(vms)
	})
	if err != nil {
		t.Fatal(err)
	}
	// Exactly one survivor runs each VM, as their hypervisors say.
	count := map[string]int{}
	for _, h := range c.Alive() {
		var doms []hypervisor.Domain
		if err := h.Client().Do(context.Background(), "GET", api.PathLocalDomains, nil, &doms, nil); err != nil {
			t.Fatal(err)
		}
		for _, d := range doms {
			if d.State.Active() {
				count[d.Name]++
			}
		}
	}
	for _, vm := range vms {
		if count[vm] != 1 {
			t.Fatalf("%s active on %d hosts, want 1", vm, count[vm])
		}
	}
	return s
}

func victimWithVMs(t *testing.T, s *api.Status, leader bool) (*api.Host, []string) {
	t.Helper()
	for i := range s.Hosts {
		h := &s.Hosts[i]
		if h.Leader == leader && len(h.VMs) > 0 {
			return h, h.VMs
		}
	}
	t.Fatalf("no host (leader=%v) runs VMs: %+v", leader, s.Hosts)
	return nil, nil
}

// followersLeaveClusterGauges: the cluster's gauges come from the leader
// only, so that sum() over every host counts the cluster once.
func followersLeaveClusterGauges(t *testing.T, c *Cluster, leader *Host) {
	t.Helper()
	for _, h := range c.Alive() {
		if h == leader {
			continue
		}
		m, err := h.Metrics()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(m, "\nvmha_hosts{") || strings.Contains(m, "\nvmha_host_state{") || !strings.Contains(m, "vmha_is_leader 0\n") {
			t.Fatalf("follower %s exports the cluster's gauges:\n%s", h.Name, m)
		}
	}
}

func TestKillHostFencesAndRecovers(t *testing.T) {
	c := startCluster(t)
	names := []string{"a1", "a2", "a3", "a4", "a5", "a6"}
	s := addVMs(t, c, names...)
	// The lab runs without TLS or a gossip key: it says so, loudly.
	if !s.Security.Insecure || !strings.Contains(s.Security.Explanation, "INSECURE") {
		t.Fatalf("a cluster without TLS reports %+v", s.Security)
	}
	if out, err := c.vmha(c.Hosts[0], "status"); err != nil || !strings.HasPrefix(string(out), "WARNING: INSECURE") {
		t.Fatalf("vmha status of an insecure cluster does not start with a warning: %v %s", err, out)
	}
	ch := watchNeverTwice(t, c)
	vh, _ := victimWithVMs(t, s, false)
	victim := c.Host(vh.Name)
	victim.Kill()
	s = waitRecovered(t, c, vh.Name, names)
	ch.verify(t)
	if ps, err := victim.BMC.PowerState(); err != nil || ps != "off" {
		t.Fatalf("BMC of %s reports power %q (%v) after the fence", vh.Name, ps, err)
	}
	h := hostOf(s, vh.Name)
	if h.LostAt.IsZero() || h.FencedAt.Before(h.LostAt) {
		t.Fatalf("timeline: lost %v fenced %v", h.LostAt, h.FencedAt)
	}
	// Fence before recover: every recovered VM started after the fence.
	for _, v := range s.VMs {
		if slices.Contains(vh.VMs, v.Name) && v.Since.Before(h.FencedAt) {
			t.Errorf("%s started at %v, before the fence at %v", v.Name, v.Since, h.FencedAt)
		}
	}
	var hist []model.FenceRecord
	if err := c.Alive()[0].Client().Do(context.Background(), "GET", api.PathFenceHistory, nil, &hist, nil); err != nil {
		t.Fatal(err)
	}
	if len(hist) == 0 || !hist[len(hist)-1].OK || hist[len(hist)-1].Host != vh.Name {
		t.Fatalf("fence history %+v", hist)
	}
	// The leader's metrics count the fence and every recovered VM.
	var leader *Host
	for _, h := range c.Alive() {
		if h.Name == s.Leader {
			leader = h
		}
	}
	if leader == nil {
		t.Fatalf("leader %q is not a running host", s.Leader)
	}
	want := []string{
		`vmha_fence_total{action="off",result="success"} 1`,
		fmt.Sprintf("vmha_vm_recoveries_total %d", len(vh.VMs)),
		`vmha_hosts{state="fenced"} 1`,
		`vmha_is_leader 1`,
		`vmha_quorate 1`,
		`vmha_members{status="failed"} 1`,
		fmt.Sprintf(`vmha_host_state{host=%q,state="fenced"} 1`, vh.Name),
		`vmha_migrations_total{outcome="live"} 0`,
	}
	var metrics string
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, err := leader.Metrics()
		if err != nil {
			t.Fatal(err)
		}
		metrics = m
		missing := ""
		for _, w := range want {
			if !strings.Contains(m, w+"\n") {
				missing = w
			}
		}
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("leader metrics lack %q:\n%s", missing, m)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if strings.Contains(metrics, BMCPassword) {
		t.Fatal("metrics show the BMC password")
	}
	followersLeaveClusterGauges(t, c, leader)
	// The status never shows the BMC password.
	for _, h := range c.Alive() {
		out, err := c.vmha(h, "status", "-o", "json")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(out), BMCPassword) {
			t.Fatal("status shows the BMC password")
		}
	}
}

func TestKillLeaderNewLeaderRecovers(t *testing.T) {
	c := startCluster(t)
	names := []string{"b1", "b2", "b3", "b4", "b5", "b6"}
	s := addVMs(t, c, names...)
	ch := watchNeverTwice(t, c)
	vh, _ := victimWithVMs(t, s, true)
	c.Host(vh.Name).Kill()
	s = waitRecovered(t, c, vh.Name, names)
	ch.verify(t)
	if s.Leader == vh.Name || s.Leader == "" {
		t.Fatalf("leader after the kill: %q", s.Leader)
	}
}

func TestSilentBMCBlocksRecovery(t *testing.T) {
	c := startCluster(t)
	names := []string{"c1", "c2", "c3"}
	s := addVMs(t, c, names...)
	ch := watchNeverTwice(t, c)
	vh, lost := victimWithVMs(t, s, false)
	victim := c.Host(vh.Name)
	if err := victim.BMC.Pause(); err != nil {
		t.Fatal(err)
	}
	victim.Kill()
	s, err := c.WaitFor(context.Background(), 40*time.Second, "fence failure reported", func(s *api.Status) bool {
		return hostOf(s, vh.Name).State == model.HostFenceFailed
	})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range s.Problems {
		if strings.Contains(p, vh.Name) && strings.Contains(p, "fencing failed") && strings.Contains(p, "will not be restarted") {
			found = true
		}
	}
	if !found {
		t.Fatalf("status does not say why recovery is blocked: %q", s.Problems)
	}
	out, _ := c.vmha(c.Alive()[0], "status")
	if !strings.Contains(string(out), "fencing failed") {
		t.Fatalf("vmha status text does not explain the blocked recovery:\n%s", out)
	}
	// Hold for a while: none of the victim's VMs may start anywhere.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		s, err := c.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range s.VMs {
			if slices.Contains(lost, v.Name) && v.Host != vh.Name {
				t.Fatalf("%s moved to %s although %s was never fenced", v.Name, v.Host, vh.Name)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, h := range c.Alive() {
		var doms []hypervisor.Domain
		if err := h.Client().Do(context.Background(), "GET", api.PathLocalDomains, nil, &doms, nil); err != nil {
			t.Fatal(err)
		}
		for _, d := range doms {
			if slices.Contains(lost, d.Name) && d.State.Active() {
				t.Fatalf("%s runs on %s without a fence", d.Name, h.Name)
			}
		}
	}
	// The BMC answers again: the retry fences the host and recovery runs.
	if err := victim.BMC.Resume(); err != nil {
		t.Fatal(err)
	}
	waitRecovered(t, c, vh.Name, names)
	ch.verify(t)
}

func TestFullRestartKeepsConfigAndPlacements(t *testing.T) {
	c := startCluster(t)
	names := []string{"d1", "d2", "d3", "d4"}
	before := addVMs(t, c, names...)
	for _, h := range c.Hosts {
		h.Stop()
	}
	for _, h := range c.Hosts {
		if err := h.Start(); err != nil {
			t.Fatal(err)
		}
	}
	after, err := c.WaitFor(context.Background(), 60*time.Second, "all VMs running after a full restart", func(s *api.Status) bool {
		if s.Leader == "" || len(s.VMs) != len(names) {
			return false
		}
		for _, v := range s.VMs {
			if v.State != "running" {
				return false
			}
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range after.VMs {
		b := before.VMs[i]
		if v.Name != b.Name || v.Host != b.Host || v.Prefer != b.Prefer || v.MemoryMiB != b.MemoryMiB {
			t.Errorf("after restart %+v, before %+v", v, b)
		}
	}
	for _, h := range after.Hosts {
		if h.State != model.HostAlive {
			t.Errorf("%s is %s after a clean restart (no host may be fenced)", h.Name, h.State)
		}
	}
	var hist []model.FenceRecord
	if err := c.Hosts[0].Client().Do(context.Background(), "GET", api.PathFenceHistory, nil, &hist, nil); err != nil {
		t.Fatal(err)
	}
	if len(hist) != 0 {
		t.Fatalf("a clean restart fenced hosts: %+v", hist)
	}
}

func TestBadInputChangesNothing(t *testing.T) {
	c := startCluster(t)
	addVMs(t, c, "e1")
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.xml")
	_ = os.WriteFile(bad, []byte("<domain type='test'><name>e2</name>"), 0o600)
	good := filepath.Join(dir, "e2.xml")
	_ = os.WriteFile(good, []byte("<domain type='test'><name>e2</name><memory>1024</memory></domain>"), 0o600)
	h := c.Hosts[0]
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"vm", "add", "e2", "--xml", bad}, 1, bad + ": domain XML does not parse"},
		{[]string{"vm", "add", "e2", "--xml", filepath.Join(dir, "missing.xml")}, 1, "missing.xml"},
		{[]string{"vm", "add", "e2", "--xml", good, "--prefer", "host9"}, 1, `prefer: unknown host "host9"`},
		{[]string{"vm", "add", "e1", "--xml", good}, 1, `domain <name> is "e2"`},
		{[]string{"vm", "remove", "nope"}, 1, `unknown vm "nope"`},
		{[]string{"vm", "add", "e2"}, 2, "--xml is required"},
		{[]string{"status", "-o", "yaml"}, 2, "--output"},
		{[]string{"--socket", filepath.Join(dir, "none.sock"), "status"}, 3, "cannot reach vmhad"},
	}
	before, err := c.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		out, err := c.vmha(h, tt.args...)
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		if code != tt.code || !strings.Contains(string(out), tt.want) {
			t.Errorf("vmha %v: exit %d, output %q; want exit %d and %q", tt.args, code, out, tt.code, tt.want)
		}
	}
	after, err := c.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(after.VMs) != len(before.VMs) || after.VMs[0].Generation != before.VMs[0].Generation {
		t.Fatalf("bad input changed the VMs: %+v -> %+v", before.VMs, after.VMs)
	}
	// JSON read commands give JSON.
	out, err := c.vmha(h, "host", "list", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var hosts []api.Host
	if err := json.Unmarshal(out, &hosts); err != nil || len(hosts) != 3 {
		t.Fatalf("host list -o json: %v %s", err, out)
	}
}

// TestOperatorFencing drives vmha fence as an operator would: test a
// device, refuse what is unsafe or unconfirmed, fence a host by hand (its
// VMs recover), and confirm by hand a host whose BMC is dead.
func TestOperatorFencing(t *testing.T) {
	c := startCluster(t)
	names := []string{"f1", "f2", "f3", "f4", "f5", "f6"}
	s := addVMs(t, c, names...)
	ch := watchNeverTwice(t, c)
	leader := s.Leader
	via := c.Host(leader) // the leader is never fenced here
	// Every device is checked by the leader and shows in fence devices.
	if _, err := c.WaitFor(context.Background(), 20*time.Second, "every fence device checked", func(s *api.Status) bool {
		for _, h := range s.Hosts {
			if h.FenceCheck == nil || !h.FenceCheck.OK || h.FenceCheck.Power != "on" {
				return false
			}
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	c.expect(t, via, 0, "power on", "fence", "test", leader)
	c.expect(t, via, 2, "add --yes", "fence", "test", leader, "--power-cycle")
	c.expect(t, via, 1, "never power-cycles itself", "fence", "test", leader, "--power-cycle", "--yes")
	c.expect(t, via, 1, `unknown host "host9"`, "fence", "test", "host9")
	c.expect(t, via, 2, "want off or reboot", "fence", leader, "--action", "explode", "--yes")
	c.expect(t, via, 1, "never fences itself", "fence", leader, "--yes")

	// A manual fence of a host with VMs: refused without --yes, then done.
	vh, lost := victimWithVMs(t, s, false)
	victim := c.Host(vh.Name)
	c.expect(t, via, 2, "Add --yes", "fence", vh.Name)
	if st := hostOf(mustStatus(t, c), vh.Name).State; st != model.HostAlive {
		t.Fatalf("an unconfirmed fence changed %s to %s", vh.Name, st)
	}
	c.expect(t, via, 0, vh.Name+" fenced (off)", "fence", vh.Name, "--yes")
	if !victim.Exited(10 * time.Second) {
		t.Fatalf("%s's vmhad still runs after its BMC powered it off", vh.Name)
	}
	s = waitRecovered(t, c, vh.Name, names)
	for _, v := range s.VMs {
		if slices.Contains(lost, v.Name) && v.Host == vh.Name {
			t.Fatalf("%s still on the fenced host", v.Name)
		}
	}
	hist := c.expect(t, via, 0, "off", "fence", "history", "-o", "json")
	var recs []model.FenceRecord
	if err := json.Unmarshal([]byte(hist), &recs); err != nil {
		t.Fatal(err)
	}
	last := recs[len(recs)-1]
	if last.Host != vh.Name || !last.OK || !strings.Contains(last.Requester, "@") {
		t.Fatalf("history does not record the operator's fence: %+v", last)
	}
	// Power it on again: it rejoins and may take VMs again (a quorum of
	// three is needed for what follows).
	if err := victim.BMC.SetPowerState(true); err != nil {
		t.Fatal(err)
	}
	if err := victim.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitFor(context.Background(), 30*time.Second, vh.Name+" back", func(s *api.Status) bool {
		h := hostOf(s, vh.Name)
		return h.State == model.HostAlive && h.Member == "alive"
	}); err != nil {
		t.Fatal(err)
	}

	// The other follower's BMC dies, then the host: recovery is blocked
	// until the operator confirms the host down.
	var second *Host
	for _, h := range c.Alive() {
		if h.Name != leader {
			second = h
		}
	}
	if second == nil {
		t.Fatal("no second follower")
	}
	if err := second.BMC.Pause(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = second.BMC.Resume() }()
	if _, err := c.WaitFor(context.Background(), 20*time.Second, "the dead BMC shows as a problem", func(s *api.Status) bool {
		for _, p := range s.Problems {
			if strings.Contains(p, "fence device check of host "+second.Name+" failed") {
				return true
			}
		}
		return false
	}); err != nil {
		t.Fatal(err)
	}
	c.expect(t, via, 1, "alive in gossip", "fence", "confirm", second.Name, "--yes")
	second.Kill()
	if _, err := c.WaitFor(context.Background(), 40*time.Second, "fence failure of "+second.Name, func(s *api.Status) bool {
		return hostOf(s, second.Name).State == model.HostFenceFailed
	}); err != nil {
		t.Fatal(err)
	}
	c.expect(t, via, 2, "Add --yes", "fence", "confirm", second.Name)
	c.expect(t, via, 0, "confirmed down", "fence", "confirm", second.Name, "--yes")
	s = waitRecovered(t, c, second.Name, names)
	if got := len(s.VMs); got != len(names) {
		t.Fatalf("%d VMs after two recoveries, want %d", got, len(names))
	}
	ch.verify(t)
}

// expect runs vmha through host via and checks its exit code and that its
// output contains want; it returns the output.
func (c *Cluster) expect(t *testing.T, via *Host, code int, want string, args ...string) string {
	t.Helper()
	out, err := c.vmha(via, args...)
	got := 0
	if ee, ok := err.(*exec.ExitError); ok {
		got = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("vmha %v: %v", args, err)
	}
	if got != code || !strings.Contains(string(out), want) {
		t.Fatalf("vmha %v: exit %d, output %q; want exit %d and %q", args, got, out, code, want)
	}
	return string(out)
}

func mustStatus(t *testing.T, c *Cluster) *api.Status {
	t.Helper()
	s, err := c.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestGossipEncryptionAndRotation: a cluster with an encrypted keyring forms,
// rotates its key without downtime, keeps the rotated key across a restart,
// and a host with the old key cannot join.
func TestGossipEncryptionAndRotation(t *testing.T) {
	k1, _ := gossipkey.New()
	c := startClusterWith(t, Options{GossipKey: k1})
	addVMs(t, c, "g1", "g2")
	h := c.Hosts[0]
	dir := t.TempDir()
	k2, _ := gossipkey.New()
	f1, f2 := filepath.Join(dir, "k1"), filepath.Join(dir, "k2")
	_ = os.WriteFile(f1, []byte(k1), 0o600)
	_ = os.WriteFile(f2, []byte(k2), 0o600)
	b1, _ := gossipkey.Decode(k1)
	b2, _ := gossipkey.Decode(k2)
	fp1, fp2 := gossipkey.Fingerprint(b1), gossipkey.Fingerprint(b2)
	keys := func() api.GossipKeys {
		t.Helper()
		out, err := c.vmha(h, "gossip", "keys", "-o", "json")
		if err != nil {
			t.Fatalf("gossip keys: %v: %s", err, out)
		}
		if strings.Contains(string(out), k1) || strings.Contains(string(out), k2) {
			t.Fatal("the key listing shows a key")
		}
		var v api.GossipKeys
		if err := json.Unmarshal(out, &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := keys(); len(v.Keys) != 1 || v.Keys[0].Fingerprint != fp1 || v.Keys[0].Members != 3 || v.Keys[0].Primary != 3 {
		t.Fatalf("initial keyring %+v", v)
	}
	for _, step := range [][]string{{"install", f2}, {"use", f2}, {"remove", f1}} {
		if out, err := c.vmha(h, append([]string{"gossip", "keys"}, step...)...); err != nil {
			t.Fatalf("gossip keys %v: %v: %s", step, err, out)
		}
	}
	if v := keys(); len(v.Keys) != 1 || v.Keys[0].Fingerprint != fp2 || v.Keys[0].Members != 3 || v.Keys[0].Primary != 3 {
		t.Fatalf("keyring after rotation %+v (want only %s, not %s)", v, fp2, fp1)
	}
	// A bad key is refused before it is sent.
	bad := filepath.Join(dir, "bad")
	_ = os.WriteFile(bad, []byte("c2hvcnQ="), 0o600)
	if out, err := c.vmha(h, "gossip", "keys", "install", bad); err == nil || !strings.Contains(string(out), "decodes to 5 bytes") {
		t.Fatalf("bad key: %v %s", err, out)
	}
	// The rotated keyring survives a restart, although the seed file
	// still holds the old key.
	c.Hosts[2].Stop()
	if err := c.Hosts[2].Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitFor(context.Background(), 30*time.Second, "host3 back with the new key", func(s *api.Status) bool {
		return hostOf(s, "host3").Member == "alive" && s.Leader != ""
	}); err != nil {
		t.Fatal(err)
	}
	// An intruder with the old key is not let in.
	sc := serf.DefaultConfig()
	sc.NodeName = "intruder"
	sc.MemberlistConfig = memberlist.DefaultLANConfig()
	sc.MemberlistConfig.Name = "intruder"
	sc.MemberlistConfig.BindAddr, sc.MemberlistConfig.BindPort = "127.0.0.1", 0
	sc.MemberlistConfig.Keyring, _ = memberlist.NewKeyring(nil, b1)
	sc.MemberlistConfig.LogOutput, sc.LogOutput = io.Discard, io.Discard
	in, err := serf.Create(sc)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = in.Shutdown() }()
	if n, err := in.Join([]string{h.SerfAddr}, true); err == nil && n > 0 {
		t.Fatalf("a host with the retired key joined (%d contacted)", n)
	}
	time.Sleep(time.Second)
	for _, hh := range mustStatus(t, c).Hosts {
		if hh.Name == "intruder" {
			t.Fatal("the intruder shows as a host")
		}
	}
	if v := keys(); v.Members != 3 {
		t.Fatalf("%d gossip members, want 3", v.Members)
	}
}

// TestSecondLevelFencesWhenTheBMCIsDead: level 1 (the BMC) does not answer,
// level 2 (a second device driven by the real fence_ipmilan agent) fences
// the host, and its VMs are recovered; the history shows both levels.
func TestSecondLevelFencesWhenTheBMCIsDead(t *testing.T) {
	testenv.NeedCommand(t, "fence_ipmilan")
	c := startClusterWith(t, Options{PDU: true})
	names := []string{"h1", "h2", "h3", "h4"}
	s := addVMs(t, c, names...)
	ch := watchNeverTwice(t, c)
	vh, _ := victimWithVMs(t, s, false)
	victim := c.Host(vh.Name)
	if !strings.Contains(vh.FenceDev, "L2: pdu@"+vh.Name+" (fence_ipmilan 127.0.0.1)") {
		t.Fatalf("fence topology of %s: %q", vh.Name, vh.FenceDev)
	}
	if err := victim.BMC.Pause(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = victim.BMC.Resume() })
	victim.Kill()
	waitRecovered(t, c, vh.Name, names)
	ch.verify(t)
	if ps, err := victim.PDU.PowerState(); err != nil || ps != "off" {
		t.Fatalf("level-2 device reports power %q (%v)", ps, err)
	}
	var hist []model.FenceRecord
	if err := c.Alive()[0].Client().Do(context.Background(), "GET", api.PathFenceHistory, nil, &hist, nil); err != nil {
		t.Fatal(err)
	}
	var l1Failed, l2OK bool
	for _, r := range hist {
		if r.Host != vh.Name {
			continue
		}
		l1Failed = l1Failed || (r.Level == 1 && !r.OK && r.Error != "")
		l2OK = l2OK || (r.Level == 2 && r.OK && strings.Contains(r.Device, "fence_ipmilan"))
	}
	if !l1Failed || !l2OK {
		t.Fatalf("history lacks the failed level 1 or the level-2 success: %+v", hist)
	}
	for _, r := range hist {
		if strings.Contains(r.Error+r.Device, BMCPassword) {
			t.Fatal("the history shows the password")
		}
	}
}

// TestFencingPolicy: a VM with disks is refused while a host cannot be
// fenced; an operator may turn fencing off only with the acknowledgement,
// the status then shows the risk, and a lost host's VMs are recovered
// without a fence (recorded as skipped). Fencing on again restores it all.
func TestFencingPolicy(t *testing.T) {
	c := startCluster(t)
	names := []string{"s1", "s2", "s3"}
	s := addVMs(t, c, names...)
	via := c.Host(s.Leader)
	vh, _ := victimWithVMs(t, s, false)
	victim := c.Host(vh.Name)
	if err := victim.BMC.Pause(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = victim.BMC.Resume() })
	if _, err := c.WaitFor(context.Background(), 20*time.Second, "the dead BMC checked", func(s *api.Status) bool {
		h := hostOf(s, vh.Name)
		return h.FenceCheck != nil && !h.FenceCheck.OK
	}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	disky := filepath.Join(dir, "s4.xml")
	_ = os.WriteFile(disky, []byte(`<domain type='test'><name>s4</name><memory unit='MiB'>256</memory><os><type>hvm</type></os>
<devices><disk type='file' device='disk'><source file='/shared/s4.img'/><target dev='vda'/></disk></devices></domain>`), 0o600)
	c.expect(t, via, 1, "no fence level of "+vh.Name+" answered", "vm", "add", "s4", "--xml", disky)
	c.expect(t, via, 2, "--acknowledge-double-run-risk", "fence", "disable")
	c.expect(t, via, 0, "fencing is OFF", "fence", "disable", "--acknowledge-double-run-risk")
	st := mustStatus(t, c)
	if st.FencingOff == nil || !strings.Contains(strings.Join(st.Problems, "\n"), "runs twice") {
		t.Fatalf("status does not show the risk: %+v %q", st.FencingOff, st.Problems)
	}
	c.expect(t, via, 0, "vm s4 added", "vm", "add", "s4", "--xml", disky)
	names = append(names, "s4")
	ch := watchNeverTwice(t, c)
	// With fencing off, the lost host's VMs are recovered although its
	// BMC is dead, and the history says it was not fenced.
	victim.Kill()
	waitRecovered(t, c, vh.Name, names)
	ch.verify(t)
	var hist []model.FenceRecord
	if err := via.Client().Do(context.Background(), "GET", api.PathFenceHistory, nil, &hist, nil); err != nil {
		t.Fatal(err)
	}
	if len(hist) == 0 || hist[len(hist)-1].Action != "skipped" || !strings.Contains(hist[len(hist)-1].Error, "turned off by") {
		t.Fatalf("history does not record the skipped fence: %+v", hist)
	}
	c.expect(t, via, 0, "fencing is on", "fence", "enable")
	if st := mustStatus(t, c); st.FencingOff != nil {
		t.Fatal("fencing still off after enable")
	}
}

// TestMutualTLSCluster: raft and the peer API over mutual TLS. The cluster
// recovers a killed host as usual; the peer port refuses plain HTTP and
// certificates of another CA; an operator's certificate drives vmha from
// afar but cannot make peer calls; remote access needs a certificate.
func TestMutualTLSCluster(t *testing.T) {
	c := startClusterWith(t, Options{TLS: true})
	names := []string{"t1", "t2", "t3", "t4"}
	s := addVMs(t, c, names...)
	ch := watchNeverTwice(t, c)
	api1 := c.Hosts[0].APIAddr
	if resp, err := (&http.Client{Timeout: 3 * time.Second}).Get("http://" + api1 + api.PathStatus); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("the peer port answered plain HTTP")
		}
	}
	crt, key, err := pki.Issue(c.CADir(), "alice", pki.RoleOperator, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(c.CADir(), pki.CACert)
	remote := []string{"--addr", api1, "--tls-ca", ca, "--tls-cert", crt, "--tls-key", key}
	out, err := exec.Command(filepath.Join(binDir, "vmha"), append(remote, "status", "-o", "json")...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"leader"`) {
		t.Fatalf("remote status with an operator certificate: %v %s", err, out)
	}
	out, err = exec.Command(filepath.Join(binDir, "vmha"), "--addr", api1, "status").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "needs --tls-ca") {
		t.Fatalf("remote status without a certificate: %v %s", err, out)
	}
	// The operator's certificate is not a host's: peer calls are refused.
	files := pki.Files{CA: ca, Cert: crt, Key: key}
	tc, err := files.Config()
	if err != nil {
		t.Fatal(err)
	}
	err = api.NewTCPClient(api1, 3*time.Second, tc).Do(context.Background(), "POST", api.PathNudge, api.Nudge{Term: 1}, nil, nil)
	var se *api.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusForbidden || !strings.Contains(se.Error(), "needs the host role") {
		t.Fatalf("peer call with an operator certificate: %v", err)
	}
	// A certificate of another CA does not get through the handshake.
	other := t.TempDir()
	_ = pki.InitCA(other, "other")
	ocrt, okey, _ := pki.Issue(other, "host1", pki.RoleHost, nil, nil)
	otc, err := pki.Files{CA: filepath.Join(other, pki.CACert), Cert: ocrt, Key: okey}.Config()
	if err != nil {
		t.Fatal(err)
	}
	if err := api.NewTCPClient(api1, 3*time.Second, otc).Do(context.Background(), "GET", api.PathStatus, nil, nil, nil); err == nil {
		t.Fatal("a certificate of another CA was accepted")
	}
	// And the cluster does its job over TLS.
	vh, _ := victimWithVMs(t, s, false)
	c.Host(vh.Name).Kill()
	waitRecovered(t, c, vh.Name, names)
	ch.verify(t)
}

// TestPlacementRules: rules applied to the running cluster steer a
// recovery (a VM banned from one host by a rule lands on the other
// survivor), vmha explain shows why, and bad rules are refused naming the
// item, with nothing changed.
func TestPlacementRules(t *testing.T) {
	c := startCluster(t)
	s := addVMs(t, c, "r1", "r2", "r3")
	via := c.Host(s.Leader)
	// The victim: a non-leader host running a VM. The rules want that VM
	// on the leader (score 1000) but ban it from zone a, the leader's
	// zone: -INFINITY wins, so it must recover on the third host, not
	// where the location alone (or the default) would put it.
	vh, lost := victimWithVMs(t, s, false)
	vm := lost[0]
	third := ""
	for _, h := range s.Hosts {
		if h.Name != vh.Name && h.Name != s.Leader {
			third = h.Name
		}
	}
	dir := t.TempDir()
	rules := filepath.Join(dir, "cluster.yaml")
	_ = os.WriteFile(rules, []byte(fmt.Sprintf(`policy: {placement-strategy: balanced}
hosts:
  - {name: %s, attributes: {zone: a}}
vms:
  - {name: %s, priority: 10}
constraints:
  locations:
    - {vm: %s, host: %s, score: 1000}
    - vm: %s
      rule: {score: -INFINITY, expressions: [{attribute: zone, operation: eq, value: a}]}
`, s.Leader, vm, vm, s.Leader, vm)), 0o600)
	bad := filepath.Join(dir, "bad.yaml")
	_ = os.WriteFile(bad, []byte("hosts: [{name: host9}]\nvms: []\n"), 0o600)
	c.expect(t, via, 1, `host "host9" is not a host of this cluster`, "rules", "apply", bad)
	c.expect(t, via, 0, "no placement rules", "rules", "show")
	c.expect(t, via, 0, "placement rules from", "rules", "apply", rules)
	c.expect(t, via, 0, "zone: a", "rules", "show")
	out := c.expect(t, via, 0, s.Leader, "explain", vm, "-o", "json")
	if !strings.Contains(out, "-1000000") { // -INFINITY, a number in JSON
		t.Fatalf("explain does not show the ban: %s", out)
	}
	c.Host(vh.Name).Kill()
	s = waitRecovered(t, c, vh.Name, []string{"r1", "r2", "r3"})
	for _, v := range s.VMs {
		if v.Name == vm && v.Host != third {
			t.Fatalf("%s recovered on %s; the rule bans %s, so it belongs on %s", vm, v.Host, s.Leader, third)
		}
	}
}

// TestEvacuateStopRestart: the lab's test-driver hosts cannot move VMs
// live, so an evacuation is refused by default with nothing moved, and
// with --on-stuck stop-restart moves every VM away one at a time (never
// more in flight, never a VM active twice); the drained host takes no new
// VM until vmha host online, and nothing moves back.
func TestEvacuateStopRestart(t *testing.T) {
	c := startCluster(t)
	names := []string{"e1", "e2", "e3", "e4", "e5", "e6"}
	s := addVMs(t, c, names...)
	ch := watchNeverTwice(t, c)
	vh, onIt := victimWithVMs(t, s, false)
	via := c.Host(s.Leader)
	c.expect(t, via, 0, "dry run", "evacuate", vh.Name, "--dry-run")
	c.expect(t, via, 1, "cannot evacuate "+vh.Name+" live", "evacuate", vh.Name)
	c.expect(t, via, 2, "--on-stuck", "evacuate", vh.Name, "--on-stuck", "maybe")
	c.expect(t, via, 1, `unknown host "host9"`, "evacuate", "host9")
	if st := mustStatus(t, c); len(st.Evacuations) != 0 || len(hostOf(st, vh.Name).VMs) != len(onIt) {
		t.Fatalf("a refused evacuation changed things: %+v", st.Evacuations)
	}
	// Sample the moves in flight while the evacuation runs.
	stop := make(chan struct{})
	maxMoving := make(chan int, 1)
	go func() {
		most := 0
		for {
			select {
			case <-stop:
				maxMoving <- most
				return
			case <-time.After(50 * time.Millisecond):
			}
			if st, err := c.Status(context.Background()); err == nil {
				n := 0
				for _, v := range st.VMs {
					if v.MigratingFrom == vh.Name {
						n++
					}
				}
				most = max(most, n)
			}
		}
	}()
	c.expect(t, via, 0, vh.Name+" evacuated", "evacuate", vh.Name, "--on-stuck", "stop-restart", "--parallel", "1")
	close(stop)
	if most := <-maxMoving; most != 1 {
		t.Fatalf("%d moves in flight at once with --parallel 1 (want exactly 1 observed)", most)
	}
	st := mustStatus(t, c)
	for _, v := range st.VMs {
		if v.Host == vh.Name || v.State != "running" {
			t.Fatalf("after the evacuation: %+v", v)
		}
	}
	c.expect(t, via, 1, "already being evacuated", "evacuate", vh.Name, "--on-stuck", "stop-restart")
	// A new VM does not go to the drained host.
	dir := t.TempDir()
	p := filepath.Join(dir, "e7.xml")
	_ = os.WriteFile(p, []byte("<domain type='test'><name>e7</name><memory unit='MiB'>256</memory><os><type>hvm</type></os></domain>"), 0o600)
	c.expect(t, via, 0, "vm e7 added", "vm", "add", "e7", "--xml", p, "--prefer", vh.Name)
	st, err := c.WaitFor(context.Background(), 20*time.Second, "e7 running", func(s *api.Status) bool {
		for _, v := range s.VMs {
			if v.Name == "e7" {
				return v.State == "running"
			}
		}
		return false
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range st.VMs {
		if v.Name == "e7" && v.Host == vh.Name {
			t.Fatal("a new VM was placed on the drained host")
		}
	}
	c.expect(t, via, 0, "online", "host", "online", vh.Name)
	time.Sleep(2 * time.Second)
	for _, v := range mustStatus(t, c).VMs {
		if v.Host == vh.Name {
			t.Fatalf("%s moved back to %s by itself", v.Name, vh.Name)
		}
	}
	ch.verify(t)
}

// keepLogs saves every host's whole log under $VMHA_ARTIFACTS/logs/<test>
// and prints each log's last lines without the retry chatter of raft and
// serf (one line per peer per second while cut off), which would otherwise
// fill the tail and hide what the coordinator decided.
func keepLogs(t *testing.T, c *Cluster) {
	dir := filepath.Join(artifactRoot(), "logs", strings.ReplaceAll(t.Name(), "/", "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Logf("keeping logs: %v", err)
	}
	for _, h := range c.Hosts {
		b, _ := os.ReadFile(h.Log)
		_ = os.WriteFile(filepath.Join(dir, h.Name+".log"), b, 0o644)
		var lines []string
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if !chatter(l) {
				lines = append(lines, l)
			}
		}
		if len(lines) > 60 {
			lines = lines[len(lines)-60:]
		}
		t.Logf("--- %s log tail (whole log: %s)\n%s", h.Name, filepath.Join(dir, h.Name+".log"), strings.Join(lines, "\n"))
	}
}

// chatter is a log line that repeats while peers are unreachable.
func chatter(line string) bool {
	for _, s := range []string{"failed to make requestVote RPC", "Election timeout reached", "attempting reconnect", "failed to heartbeat", "failed to appendEntries", "failed to contact"} {
		if strings.Contains(line, s) {
			return true
		}
	}
	return false
}
