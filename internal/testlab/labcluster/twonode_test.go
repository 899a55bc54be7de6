package labcluster

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/internal/testlab/testenv"
	"github.com/vmha/vmha/model"
)

// twoNodeOptions is a two-host cluster without a witness in quorum.two_node
// mode. fence.delay is waited before fencing the host that sets it: host1's
// 6 s against host2's 2 s make host1 win a split by 4 s, and host2's 2 s
// leave both sides time to start their fence before the first one fires.
func twoNodeOptions(users bool) Options {
	return Options{Hosts: 2, Users: users, Extra: "quorum:\n  two_node: true\n",
		HostExtra: map[string]string{"host1": "fence:\n  delay: 6s\n", "host2": "fence:\n  delay: 2s\n"}}
}

// startedFencing reports whether host's log shows it started a two_node
// fence of peer.
func startedFencing(t *testing.T, h *Host, peer string) bool {
	t.Helper()
	b, err := os.ReadFile(h.Log)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "two_node: no quorum and the other host failed: fencing it") && strings.Contains(l, `"host":"`+peer+`"`) {
			return true
		}
	}
	return false
}

func hasIssue(issues []api.Issue, code string) *api.Issue {
	for i := range issues {
		if issues[i].Code == code {
			return &issues[i]
		}
	}
	return nil
}

// waitTwoVoters waits until host rejoined after its fence: alive, and both
// hosts raft voters again, with every VM running once.
func waitTwoVoters(t *testing.T, c *Cluster, host string, names []string) *api.Status {
	t.Helper()
	s, err := c.WaitFor(context.Background(), 40*time.Second, host+" back as a voter", func(s *api.Status) bool {
		if len(s.Quorum.Voters) != 2 || !s.Quorum.Quorate || hostOf(s, host).State != model.HostAlive || hostOf(s, host).Member != "alive" {
			return false
		}
		running := 0
		for _, v := range s.VMs {
			if v.State == "running" {
				running++
			}
		}
		return running == len(names)
	})
	if err != nil {
		t.Fatalf("%v (last status: voters %v, %s %+v)", err, s.Quorum.Voters, host, hostOf(s, host))
	}
	// The rejoined host follows the log again: it knows the leader.
	deadline := time.Now().Add(20 * time.Second)
	for {
		own, err := c.Host(host).Status(context.Background())
		if err == nil && own.Leader != "" && own.Leader != host && len(own.Quorum.Voters) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not follow the leader: %+v %v", host, own, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return s
}

// TestTwoNodeSurvivorFencesAndTakesOver: two hosts, no witness, two_node. A
// host crashes (kill -9: its VMs die with it); the survivor, without a raft
// leader (1 of 2 votes), fences it through its BMC, becomes the only voter,
// records the fence and restarts the VMs. The fenced host boots again
// (vmhad restarted) and is a voter again, starting nothing of its own.
func TestTwoNodeSurvivorFencesAndTakesOver(t *testing.T) {
	c := startClusterWith(t, twoNodeOptions(false))
	names := []string{"t1", "t2", "t3", "t4"}
	s := addVMs(t, c, names...)
	if i := hasIssue(s.Notices, "two_node"); i == nil || !strings.Contains(i.Message, "host1 wins a split") {
		t.Fatalf("status does not show two_node armed with host1 winning: notices %+v problems %v", s.Notices, s.Problems)
	}
	if hasIssue(s.ProblemDetails, "two_hosts_no_witness") != nil {
		t.Fatalf("two_node still warns about two hosts without a witness: %v", s.Problems)
	}
	ch := watchNeverTwice(t, c)
	victim := c.Host("host2")
	lost := hostOf(s, "host2").VMs
	t0 := time.Now()
	victim.Kill()
	s = waitRecovered(t, c, "host2", names)
	t.Logf("kill -9 to every VM running on the survivor: %v (VMs of host2: %v)", time.Since(t0).Round(100*time.Millisecond), lost)
	if ps, err := victim.BMC.PowerState(); err != nil || ps != "off" {
		t.Fatalf("BMC of host2 reports power %q (%v) after the two_node fence", ps, err)
	}
	if s.Leader != "host1" || !slices.Equal(s.Quorum.Voters, []string{"host1"}) {
		t.Fatalf("after the takeover: leader %q voters %v, want host1 alone", s.Leader, s.Quorum.Voters)
	}
	h := hostOf(s, "host2")
	for _, v := range s.VMs {
		if slices.Contains(lost, v.Name) && v.Since.Before(h.FencedAt) {
			t.Errorf("%s started at %v, before the fence at %v", v.Name, v.Since, h.FencedAt)
		}
	}
	// The confirmed fence was kept in the data directory until the
	// takeover was recorded, then dropped.
	saved := filepath.Join(c.Host("host1").Dir, "data", "two_node-takeover.json")
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, err := os.Stat(saved); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is still there after the takeover was recorded", saved)
		}
	}
	var hist []model.FenceRecord
	if err := c.Host("host1").Client().Do(context.Background(), "GET", api.PathFenceHistory, nil, &hist, nil); err != nil {
		t.Fatal(err)
	}
	if len(hist) == 0 || !hist[len(hist)-1].OK || hist[len(hist)-1].Host != "host2" || !strings.HasPrefix(hist[len(hist)-1].Requester, "two_node") {
		t.Fatalf("fence history %+v", hist)
	}

	// host2 boots again: it must start nothing from its old state, and
	// comes back as a voter.
	t1 := time.Now()
	if err := victim.Start(); err != nil {
		t.Fatal(err)
	}
	s = waitTwoVoters(t, c, "host2", names)
	t.Logf("host2 restart to voter again: %v", time.Since(t1).Round(100*time.Millisecond))
	if got := localActive(t, victim); len(got) != 0 {
		// Nothing is placed on it after the takeover; stickiness keeps
		// the VMs where they were recovered.
		for _, v := range s.VMs {
			if v.Host != "host2" && slices.Contains(got, v.Name) {
				t.Errorf("host2 runs %s, placed on %s", v.Name, v.Host)
			}
		}
	}
	ch.verify(t)
}

// TestTwoNodeSplitExactlyOneSurvives: the two hosts lose each other (a
// partition of gossip, raft and the API; the BMCs stay reachable, as on a
// management network). Both start to fence the other; fencing host1 waits
// its 6 s delay, fencing host2 2 s, so host1 powers host2 off first (during
// host2's wait) and is the only survivor:
// it takes over and restarts host2's VMs. After the heal, host2 boots and
// rejoins as a voter.
func TestTwoNodeSplitExactlyOneSurvives(t *testing.T) {
	if err := PartitionAvailable(); err != nil {
		testenv.Missing(t, err.Error())
	}
	c := startClusterWith(t, twoNodeOptions(true))
	names := []string{"s1", "s2", "s3", "s4"}
	addVMs(t, c, names...)
	ch := watchNeverTwice(t, c)
	t0 := time.Now()
	if err := c.Partition([]string{"host1"}, []string{"host2"}); err != nil {
		t.Fatal(err)
	}
	if !c.Host("host2").Exited(30 * time.Second) {
		t.Fatal("host2 was not powered off by host1's fence")
	}
	t.Logf("partition to host2 powered off: %v", time.Since(t0).Round(100*time.Millisecond))
	if !startedFencing(t, c.Host("host2"), "host1") || !startedFencing(t, c.Host("host1"), "host2") {
		t.Errorf("not a race: host1 fenced host2 %v, host2 fenced host1 %v", startedFencing(t, c.Host("host1"), "host2"), startedFencing(t, c.Host("host2"), "host1"))
	}
	if ps, err := c.Host("host1").BMC.PowerState(); err != nil || ps != "on" {
		t.Fatalf("BMC of host1 reports power %q (%v): the winner was fenced too", ps, err)
	}
	if !c.Host("host1").Running() {
		t.Fatal("host1's vmhad is gone: nobody survived the split")
	}
	s := waitRecovered(t, c, "host2", names)
	t.Logf("partition to every VM running on host1: %v", time.Since(t0).Round(100*time.Millisecond))
	if s.Leader != "host1" || !slices.Equal(s.Quorum.Voters, []string{"host1"}) {
		t.Fatalf("after the split: leader %q voters %v, want host1 alone", s.Leader, s.Quorum.Voters)
	}
	// host2's own fence of host1 never fired: it was off within host1's
	// delay. Give it the time it would have needed, then look again.
	time.Sleep(time.Until(t0.Add(8 * time.Second)))
	if ps, _ := c.Host("host1").BMC.PowerState(); ps != "on" || !c.Host("host1").Running() {
		t.Fatalf("host1 was powered off after winning (power %q)", ps)
	}
	if err := c.Heal(); err != nil {
		t.Fatal(err)
	}
	if err := c.Host("host2").Start(); err != nil {
		t.Fatal(err)
	}
	waitTwoVoters(t, c, "host2", names)
	ch.verify(t)
}
