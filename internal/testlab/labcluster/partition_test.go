package labcluster

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/hypervisor"
	"github.com/vmha/vmha/internal/testlab/testenv"
	"github.com/vmha/vmha/model"
	"github.com/vmha/vmha/sharedfs"
)

// startPartitionable starts a cluster whose hosts run as users of their own,
// so that Partition can cut them apart.
func startPartitionable(t *testing.T) *Cluster {
	t.Helper()
	if err := PartitionAvailable(); err != nil {
		testenv.Missing(t, err.Error())
	}
	return startClusterWith(t, Options{Users: true})
}

func others(c *Cluster, name string) []string {
	var out []string
	for _, h := range c.Hosts {
		if h.Name != name {
			out = append(out, h.Name)
		}
	}
	return out
}

// localActive lists the VMs a host's own hypervisor runs (asked over its
// unix socket, which a network partition does not cut).
func localActive(t *testing.T, h *Host) []string {
	t.Helper()
	var doms []hypervisor.Domain
	if err := h.Client().Do(context.Background(), "GET", api.PathLocalDomains, nil, &doms, nil); err != nil {
		t.Fatalf("domains of %s: %v", h.Name, err)
	}
	var out []string
	for _, d := range doms {
		if d.State.Active() {
			out = append(out, d.Name)
		}
	}
	slices.Sort(out)
	return out
}

// waitBackUnmoved waits until a host that was cut off (and never fenced)
// is back with every VM running, and checks that none of its VMs (lost)
// moved: without a fence they must not.
func waitBackUnmoved(t *testing.T, c *Cluster, host string, names, lost []string) {
	t.Helper()
	after, err := c.WaitFor(context.Background(), 40*time.Second, "the host back and every VM running", func(s *api.Status) bool {
		if hostOf(s, host).State != model.HostAlive || s.Leader == "" {
			return false
		}
		for _, v := range s.VMs {
			if v.State != "running" {
				return false
			}
		}
		return len(s.VMs) == len(names)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range after.VMs {
		if slices.Contains(lost, v.Name) && v.Host != host {
			t.Errorf("%s moved to %s although %s was never fenced", v.Name, v.Host, host)
		}
	}
}

// TestPartitionedFollowerIsFencedBeforeRecovery: a host cut off from the
// others (but not dead) is fenced by the majority before its VMs start
// elsewhere; at no sample does a VM run on two hosts.
func TestPartitionedFollowerIsFencedBeforeRecovery(t *testing.T) {
	c := startPartitionable(t)
	names := []string{"p1", "p2", "p3", "p4", "p5", "p6"}
	s := addVMs(t, c, names...)
	ch := watchNeverTwice(t, c)
	vh, _ := victimWithVMs(t, s, false)
	if err := c.Partition([]string{vh.Name}, others(c, vh.Name)); err != nil {
		t.Fatal(err)
	}
	waitRecovered(t, c, vh.Name, names)
	if c.Host(vh.Name).Running() {
		t.Fatalf("%s still runs after the majority fenced it", vh.Name)
	}
	ch.verify(t)
}

// TestPartitionWithDeadBMCFreezes: when the cut-off host cannot be fenced,
// nothing is recovered, the cut-off host keeps running its VMs (freeze), and
// after the partition heals the host is back with its VMs, none moved.
func TestPartitionWithDeadBMCFreezes(t *testing.T) {
	c := startPartitionable(t)
	names := []string{"q1", "q2", "q3", "q4", "q5", "q6"}
	s := addVMs(t, c, names...)
	ch := watchNeverTwice(t, c)
	vh, lost := victimWithVMs(t, s, false)
	victim := c.Host(vh.Name)
	slices.Sort(lost)
	if err := victim.BMC.Pause(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = victim.BMC.Resume() })
	if err := c.Partition([]string{vh.Name}, others(c, vh.Name)); err != nil {
		t.Fatal(err)
	}
	majority := c.Host(others(c, vh.Name)[0])
	// Asked of the majority: the cut-off host knows no leader and answers
	// with its own view, in which it is alive (c.WaitFor asks the first
	// running host, which may be it).
	if _, err := c.WaitForOn(context.Background(), majority, 40*time.Second, "fence failure of the cut-off host", func(s *api.Status) bool {
		return s.Leader != "" && s.Leader != vh.Name && hostOf(s, vh.Name).State == model.HostFenceFailed
	}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(4 * time.Second)
	for time.Now().Before(deadline) {
		if got := localActive(t, victim); !slices.Equal(got, lost) {
			t.Fatalf("the cut-off host runs %v, want its own VMs %v (freeze)", got, lost)
		}
		for _, h := range c.Hosts {
			if h == victim {
				continue
			}
			for _, vm := range localActive(t, h) {
				if slices.Contains(lost, vm) {
					t.Fatalf("%s started on %s although %s was never fenced", vm, h.Name, vh.Name)
				}
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	if err := c.Heal(); err != nil {
		t.Fatal(err)
	}
	waitBackUnmoved(t, c, vh.Name, names, lost)
	ch.verify(t)
}

// TestPartitionedLeader: the leader is cut off. The majority elects a new
// leader, which fences the old one before recovering its VMs; the old leader
// cannot commit, so it starts nothing.
func TestPartitionedLeader(t *testing.T) {
	c := startPartitionable(t)
	names := []string{"l1", "l2", "l3", "l4", "l5", "l6"}
	s := addVMs(t, c, names...)
	ch := watchNeverTwice(t, c)
	vh, _ := victimWithVMs(t, s, true)
	if err := c.Partition([]string{vh.Name}, others(c, vh.Name)); err != nil {
		t.Fatal(err)
	}
	s = waitRecovered(t, c, vh.Name, names)
	if s.Leader == vh.Name || s.Leader == "" {
		t.Fatalf("leader after the cut: %q", s.Leader)
	}
	ch.verify(t)
}

// TestTwoHostsAndWitness: two hypervisor hosts and a witness. The witness
// never runs a VM; when a host dies, the survivor and the witness are a
// quorum, fence it and recover its VMs.
func TestTwoHostsAndWitness(t *testing.T) {
	c := startClusterWith(t, Options{Witness: true})
	names := []string{"w1", "w2", "w3", "w4"}
	s := addVMs(t, c, names...)
	ch := watchNeverTwice(t, c)
	w := hostOf(s, "witness")
	if !w.Witness || len(w.VMs) != 0 || w.FenceDev != "" {
		t.Fatalf("witness view %+v", w)
	}
	for _, p := range s.Problems {
		if strings.Contains(p, "witness") {
			t.Fatalf("a healthy witness is reported as a problem: %q", p)
		}
	}
	out, err := c.vmha(c.Host("witness"), "host", "list")
	if err != nil || !strings.Contains(string(out), "witness") {
		t.Fatalf("host list: %v %s", err, out)
	}
	// The host with VMs that is not the leader (the witness may lead).
	var victim string
	for _, h := range s.Hosts {
		if !h.Witness && len(h.VMs) > 0 && h.Name != s.Leader {
			victim = h.Name
		}
	}
	if victim == "" {
		// Both hypervisor hosts hold VMs and one leads: take the other.
		for _, h := range s.Hosts {
			if !h.Witness && h.Name != s.Leader {
				victim = h.Name
			}
		}
	}
	c.Host(victim).Kill()
	s = waitRecovered(t, c, victim, names)
	for _, v := range s.VMs {
		if v.Host == "witness" {
			t.Fatalf("%s placed on the witness", v.Name)
		}
	}
	ch.verify(t)
}

// TestNoQuorumPolicyStop: a host cut off from the quorum, that the majority
// cannot fence, stops its own VMs after quorum.stop_after
// (no-quorum-policy stop); the majority still does not recover them without
// a fence. When the partition heals, the VMs start again where they are
// placed.
func TestNoQuorumPolicyStop(t *testing.T) {
	if err := PartitionAvailable(); err != nil {
		testenv.Missing(t, err.Error())
	}
	c := startClusterWith(t, Options{Users: true, Extra: "quorum: {no_quorum_policy: stop, stop_after: 3s}\n"})
	names := []string{"n1", "n2", "n3", "n4", "n5", "n6"}
	s := addVMs(t, c, names...)
	ch := watchNeverTwice(t, c)
	vh, lost := victimWithVMs(t, s, false)
	victim := c.Host(vh.Name)
	if err := victim.BMC.Pause(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = victim.BMC.Resume() })
	if err := c.Partition([]string{vh.Name}, others(c, vh.Name)); err != nil {
		t.Fatal(err)
	}
	cut := time.Now()
	for len(localActive(t, victim)) > 0 {
		if time.Since(cut) > 20*time.Second {
			t.Fatalf("the cut-off host still runs %v 20 s after losing the quorum", localActive(t, victim))
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("cut-off host stopped its VMs %.1f s after the partition", time.Since(cut).Seconds())
	for _, h := range c.Hosts {
		if h == victim {
			continue
		}
		for _, vm := range localActive(t, h) {
			if slices.Contains(lost, vm) {
				t.Fatalf("%s started on %s without a fence of %s", vm, h.Name, vh.Name)
			}
		}
	}
	if err := c.Heal(); err != nil {
		t.Fatal(err)
	}
	waitBackUnmoved(t, c, vh.Name, names, lost)
	ch.verify(t)
}

// TestNonVotersAndVoteHandOver: with raft.max_voters 3, a fourth host
// follows the log as a non-voter; when a voter is killed and fenced, its
// vote goes to the non-voter, so the cluster keeps three votes.
func TestNonVotersAndVoteHandOver(t *testing.T) {
	c := startClusterWith(t, Options{Hosts: 4, Extra: "raft: {max_voters: 3}\n"})
	names := []string{"v1", "v2", "v3", "v4"}
	s := addVMs(t, c, names...)
	voters := func(s *api.Status) (v, nv []string) {
		for _, h := range s.Hosts {
			if h.Voter {
				v = append(v, h.Name)
			} else {
				nv = append(nv, h.Name)
			}
		}
		return v, nv
	}
	v, nv := voters(s)
	if len(v) != 3 || len(nv) != 1 || len(s.Quorum.Voters) != 3 || s.Quorum.Needed != 2 {
		t.Fatalf("voters %v, non-voters %v, quorum %+v", v, nv, s.Quorum)
	}
	var victim string
	for _, h := range s.Hosts {
		if h.Voter && h.Name != s.Leader {
			victim = h.Name
			break
		}
	}
	c.Host(victim).Kill()
	waitRecovered(t, c, victim, names)
	s, err := c.WaitFor(context.Background(), 20*time.Second, "the non-voter promoted", func(s *api.Status) bool {
		v, _ := voters(s)
		return len(v) == 3 && !slices.Contains(v, victim) && slices.Contains(v, nv[0])
	})
	if err != nil {
		t.Fatal(err)
	}
	if !s.Quorum.Quorate {
		t.Fatalf("not quorate after the hand-over: %+v", s.Quorum)
	}
}

// TestHostAttributesAndPing: each host pings a target and publishes pingd
// through gossip; a host whose target stops answering drops to pingd 0 after
// the dampen interval, and a rule "-INFINITY where pingd lte 0" keeps new
// VMs off it. Attributes set with vmha host attr set show in the status,
// and a transient one goes away when the host's vmhad restarts.
func TestHostAttributesAndPing(t *testing.T) {
	if err := PartitionAvailable(); err != nil {
		testenv.Missing(t, err.Error())
	}
	// Each host pings its own loopback alias, so that one host's target can
	// be cut off alone (an iptables rule on that address).
	c := startClusterWith(t, Options{Extra: "ping: {targets: [127.0.0.7], interval: 300ms, timeout: 300ms, dampen: 1s}\n"})
	s, err := c.WaitFor(context.Background(), 20*time.Second, "pingd published", func(s *api.Status) bool {
		for _, h := range s.Hosts {
			if h.Attributes["pingd"] != "100" {
				return false
			}
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	via := c.Host(s.Leader)
	c.expect(t, via, 0, "zone=b (permanent)", "host", "attr", "set", "host2", "zone", "b")
	c.expect(t, via, 0, "rack=r7 (transient", "host", "attr", "set", "host3", "rack", "r7", "--transient")
	c.expect(t, via, 1, `unknown host "host9"`, "host", "attr", "set", "host9", "zone", "a")
	c.expect(t, via, 1, "attribute name", "host", "attr", "set", "host2", "9lives", "x")
	c.expect(t, via, 2, "want HOST KEY VALUE", "host", "attr", "set", "host2", "zone")
	st := mustStatus(t, c)
	if hostOf(st, "host2").Attributes["zone"] != "b" || hostOf(st, "host3").Attributes["rack"] != "r7" {
		t.Fatalf("attributes not shown: %+v %+v", hostOf(st, "host2").Attributes, hostOf(st, "host3").Attributes)
	}
	// The ping target stops answering (an iptables drop in the cluster's
	// own chain): after the dampen interval every host publishes pingd 0.
	if err := c.Heal(); err != nil { // makes the cluster's chain
		t.Fatal(err)
	}
	if err := iptables("-A", c.chain, "-d", "127.0.0.7", "-p", "icmp", "-j", "DROP"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitFor(context.Background(), 20*time.Second, "pingd 0 after the dampen", func(s *api.Status) bool {
		for _, h := range s.Hosts {
			if h.Attributes["pingd"] != "0" {
				return false
			}
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	// The rule bans every host now: a new VM stays stopped, and explain
	// says why.
	dir := t.TempDir()
	rules := filepath.Join(dir, "cluster.yaml")
	_ = os.WriteFile(rules, []byte("hosts: []\nvms: []\n"), 0o600)
	xml := filepath.Join(dir, "p1.xml")
	_ = os.WriteFile(xml, []byte("<domain type='test'><name>p1</name><memory unit='MiB'>256</memory><os><type>hvm</type></os></domain>"), 0o600)
	c.expect(t, via, 0, "vm p1 added", "vm", "add", "p1", "--xml", xml)
	_ = os.WriteFile(rules, []byte(`vms: [{name: p1}]
hosts: []
constraints:
  locations:
    - vm: p1
      rule: {score: -INFINITY, boolean-op: or, expressions: [{attribute: pingd, operation: lte, value: "0"}, {attribute: pingd, operation: not_defined}]}
`), 0o600)
	// The preview names the stop the rule causes; without a terminal the
	// apply needs --yes.
	c.expect(t, via, 2, "stop p1 on ", "rules", "apply", rules)
	c.expect(t, via, 0, "placement rules from", "rules", "apply", rules, "--yes")
	if _, err := c.WaitFor(context.Background(), 20*time.Second, "p1 stopped by the ping rule", func(s *api.Status) bool {
		for _, v := range s.VMs {
			if v.Name == "p1" {
				return v.Host == ""
			}
		}
		return false
	}); err != nil {
		t.Fatal(err)
	}
	c.expect(t, via, 0, "pingd", "explain", "p1")
	// The target answers again: pingd returns and p1 starts.
	if err := c.Heal(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitFor(context.Background(), 20*time.Second, "p1 running once pingd is back", func(s *api.Status) bool {
		for _, v := range s.VMs {
			if v.Name == "p1" {
				return v.Host != "" && v.State == "running"
			}
		}
		return false
	}); err != nil {
		t.Fatal(err)
	}
	// A transient attribute goes away when its host's vmhad restarts.
	c.Host("host3").Stop()
	if err := c.Host("host3").Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitFor(context.Background(), 30*time.Second, "host3 back without its transient attribute", func(s *api.Status) bool {
		h := hostOf(s, "host3")
		return h.Member == "alive" && h.Attributes["rack"] == "" && h.Attributes["pingd"] == "100"
	}); err != nil {
		t.Fatal(err)
	}
	// (A host that just restarted answers from its own copy until it
	// knows the leader: wait for the leader's view.)
	if _, err := c.WaitFor(context.Background(), 10*time.Second, "the permanent attribute kept", func(s *api.Status) bool {
		return s.Leader != "" && hostOf(s, "host2").Attributes["zone"] == "b"
	}); err != nil {
		t.Fatal(err)
	}
}

// TestSharedStorage: with a cluster file system configured, a VM's disks
// must be on it; a VM runs only on hosts where the file system is ready
// (host3's mount table lacks it); vmha explain shows the storage rule; and
// a host cut off from the others that still writes its storage heartbeat
// cannot be "confirmed down" by an operator. The kernel here cannot mount
// GFS2 or run DLM: the file system is a shared directory named in per-host
// mount table files, and the lock manager a process called dlm_controld.
func TestSharedStorage(t *testing.T) {
	if err := PartitionAvailable(); err != nil {
		testenv.Missing(t, err.Error())
	}
	shared, mounts := sharedStorageLab(t)
	c := startClusterWith(t, Options{Users: true, HostExtra: mounts})
	s, err := c.WaitFor(context.Background(), 30*time.Second, "storage readiness published", func(s *api.Status) bool {
		return hostOf(s, "host1").Attributes["storage.vmstore"] == "ready" &&
			hostOf(s, "host2").Attributes["storage.vmstore"] == "ready" &&
			hostOf(s, "host3").Attributes["storage.vmstore"] == "not-ready"
	})
	if err != nil {
		t.Fatal(err)
	}
	via := c.Host(s.Leader)
	dir := t.TempDir()
	vmXML := func(name, disk string) string {
		p := filepath.Join(dir, name+".xml")
		_ = os.WriteFile(p, []byte("<domain type='test'><name>"+name+"</name><memory unit='MiB'>256</memory><os><type>hvm</type></os>"+
			"<devices><disk type='file' device='disk'><source file='"+disk+"'/><target dev='vda'/></disk></devices></domain>"), 0o600)
		return p
	}
	c.expect(t, via, 1, "/elsewhere/x.img", "vm", "add", "x1", "--xml", vmXML("x1", "/elsewhere/x.img"))
	for _, n := range []string{"s1", "s2", "s3", "s4"} { // s5 comes later
		c.expect(t, via, 0, "vm "+n+" added", "vm", "add", n, "--xml", vmXML(n, shared+"/"+n+".img"), "--prefer", "host3")
	}
	s, err = c.WaitFor(context.Background(), 30*time.Second, "the VMs running where the storage is ready", func(s *api.Status) bool {
		n := 0
		for _, v := range s.VMs {
			if v.State == "running" {
				n++
			}
		}
		return n == 4
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range s.VMs {
		if v.Host == "host3" {
			t.Fatalf("%s runs on host3, where its storage is not ready (it prefers host3)", v.Name)
		}
	}
	c.expect(t, via, 0, "storage.vmstore ne ready", "explain", "s1")
	storageCommands(t, c)
	// Storage maintenance on one of the two ready hosts (the leader when
	// it is one of them, so that the other, a follower, ends up with the
	// VMs for the partition below): only the VMs on vmstore leave, none
	// that uses it is placed there, and the command says when it may be
	// taken down.
	maint, other := "host1", "host2"
	if s.Leader == "host2" {
		maint, other = "host2", "host1"
	}
	c.expect(t, via, 1, `"nope" is not a cluster file system`, "evacuate", maint, "--storage", "nope")
	c.expect(t, via, 0, "no VM uses vmstore any more", "evacuate", maint, "--storage", "vmstore", "--on-stuck", "stop-restart")
	c.expect(t, via, 0, "vm s5 added", "vm", "add", "s5", "--xml", vmXML("s5", shared+"/s5.img"), "--prefer", maint)
	s, err = c.WaitFor(context.Background(), 60*time.Second, "every VM running on "+other, func(s *api.Status) bool {
		for _, v := range s.VMs {
			if v.Name != "x1" && (v.Host != other || v.State != "running") {
				return false
			}
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	c.expect(t, via, 0, maint+" is online", "host", "online", maint)
	isolatedNotDead(t, c, via, s)
}

// sharedStorageLab prepares TestSharedStorage's stand-ins: a shared
// directory as the cluster file system (with a heartbeat folder every
// host's user may write), a process called dlm_controld, and per-host
// storage settings naming mount table files (host3's lacks the file
// system).
func sharedStorageLab(t *testing.T) (shared string, mounts map[string]string) {
	base := t.TempDir()
	shared = filepath.Join(base, "vmstore")
	if err := os.MkdirAll(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(shared, 0o777)
	_ = traversable(shared)
	// On a real cluster every vmhad runs as root; here each host has a
	// user of its own, so the shared heartbeat folder must take them all.
	hb := filepath.Join(shared, sharedfs.HeartbeatDir)
	if err := os.Mkdir(hb, 0o777); err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(hb, 0o777)
	// A stand-in for DLM's daemon: any process whose name is dlm_controld.
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	dlm := filepath.Join(base, "dlm_controld")
	if b, err := os.ReadFile(sleep); err != nil || os.WriteFile(dlm, b, 0o755) != nil {
		t.Fatalf("copy sleep: %v", err)
	}
	lm := exec.Command(dlm, "600")
	if err := lm.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lm.Process.Kill(); _ = lm.Wait() })
	mounts = map[string]string{}
	for _, h := range []string{"host1", "host2", "host3"} {
		body := "proc /proc proc rw 0 0\n"
		if h != "host3" {
			body += "/dev/mapper/san-vmstore " + shared + " gfs2 rw,relatime 0 0\n"
		}
		p := filepath.Join(base, h+".mounts")
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		mounts[h] = "storage:\n  mounts_file: " + p + "\n  interval: 500ms\n  filesystems: [{name: vmstore, type: gfs2, device: /dev/mapper/san-vmstore, mount_point: " + shared + "}]\n"
	}
	return shared, mounts
}

// storageCommands: vmha storage check and init on the hosts.
func storageCommands(t *testing.T, c *Cluster) {
	// vmha storage check on host3 says why it is not ready (and that the
	// device cannot be read here); on host1 the file system is ready.
	c.expect(t, c.Host("host3"), 1, "not mounted", "storage", "check")
	out := c.expect(t, c.Host("host1"), 1, "vmstore", "storage", "check", "-o", "json")
	if !strings.Contains(out, `"ready": true`) || !strings.Contains(out, `"format_ok": false`) {
		t.Fatalf("storage check on host1: %s", out)
	}
	// vmha storage init refuses, and formats nothing: an unknown file
	// system; no --yes (it says what it would run); too few journals; a
	// file system that other hosts have mounted.
	c.expect(t, c.Host("host3"), 1, `"nope" is not in this host's storage.filesystems`, "storage", "init", "nope", "--yes")
	c.expect(t, c.Host("host3"), 1, "mkfs.gfs2", "storage", "init", "vmstore")
	c.expect(t, c.Host("host3"), 1, "fewer than the cluster's 3 hosts", "storage", "init", "vmstore", "--yes", "--journals", "2")
	c.expect(t, c.Host("host3"), 1, "mounted and in use on host1, host2", "storage", "init", "vmstore", "--yes")
}

// isolatedNotDead cuts off a host that runs VMs and whose BMC is dead: it
// still writes its heartbeat, so an operator cannot confirm it down, and
// the status tells it isolated, not dead.
func isolatedNotDead(t *testing.T, c *Cluster, via *Host, s *api.Status) {
	// Cut off a host that runs VMs and whose BMC is dead: it still
	// writes its heartbeat, so an operator cannot confirm it down.
	var victim string
	for _, h := range s.Hosts {
		if h.Name != s.Leader && len(h.VMs) > 0 {
			victim = h.Name
		}
	}
	if victim == "" {
		t.Skip("the leader runs every VM") // cannot happen with host3 excluded and two hosts ready
	}
	if err := c.Host(victim).BMC.Pause(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Host(victim).BMC.Resume() })
	if err := c.Partition([]string{victim}, others(c, victim)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitFor(context.Background(), 40*time.Second, "fence failure of the cut-off host", func(s *api.Status) bool {
		return s.Node != victim && hostOf(s, victim).State == model.HostFenceFailed
	}); err != nil {
		t.Fatal(err)
	}
	c.expect(t, via, 1, "still writes its storage heartbeat", "fence", "confirm", victim, "--yes")
	// The status tells an isolated host from a dead one. Asked of a
	// majority host: the cut-off one, once it knows no leader, answers
	// with its own view, and c.Status may keep picking it.
	maj := c.Host(others(c, victim)[0])
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		s, err := maj.Status(ctx)
		cancel()
		if err == nil && hostOf(s, victim).StorageHeartbeat == "writing" && hasProblem(s, "host "+victim+" is isolated, not dead") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not show %s isolated, not dead: %v %+v", maj.Name, victim, err, s)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
