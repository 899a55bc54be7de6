package cluster

import (
	"strings"
	"testing"
	"time"

	"github.com/vmha/vmha/cluster/decide"
	"github.com/vmha/vmha/config"
	"github.com/vmha/vmha/model"
	"github.com/vmha/vmha/placement"
)

func members(status map[string]decide.MemberStatus) decide.Members {
	out := decide.Members{}
	for n, s := range status {
		out[n] = decide.Member{Name: n, Status: s}
	}
	return out
}

func TestQuorumExplains(t *testing.T) {
	voters := []string{"h1", "h2", "h3"}
	q := quorum(voters, members(map[string]decide.MemberStatus{"h1": decide.MemberAlive, "h2": decide.MemberAlive, "h3": decide.MemberFailed}), "h1")
	if !q.Quorate || q.Needed != 2 || !strings.Contains(q.Explanation, "2 of 3 voters alive, 2 needed; h1 decides; missing: h3") {
		t.Fatalf("%+v", q)
	}
	q = quorum(voters, members(map[string]decide.MemberStatus{"h1": decide.MemberAlive}), "")
	if q.Quorate || !strings.Contains(q.Explanation, "no quorum: 1 of 3 voters reachable, 2 needed (missing: h2, h3)") {
		t.Fatalf("%+v", q)
	}
	if q := quorum(nil, nil, ""); q.Quorate || !strings.Contains(q.Explanation, "not formed") {
		t.Fatalf("%+v", q)
	}
}

func TestBuildStatusExplainsBlockedRecovery(t *testing.T) {
	f := baseFSM(t)
	applyAll(t, f,
		&Command{Op: OpPlace, Placements: []model.Placement{{VM: "vm1", Host: "h2"}}},
		&Command{Op: OpHostState, At: time.Now(), HostState: &HostStateChange{Host: "h2", State: model.HostLost}},
		&Command{Op: OpHostState, At: time.Now(), HostState: &HostStateChange{Host: "h2", State: model.HostFenceFailed, Reason: "fence via ipmi 127.0.0.1:623: no answer"}},
	)
	s := buildStatus(f.Copy(), members(map[string]decide.MemberStatus{"h1": decide.MemberAlive, "h2": decide.MemberFailed}), "h1", "h1", 2, []string{"h1", "h2"}, nil, nil)
	joined := strings.Join(s.Problems, "\n")
	for _, want := range []string{
		"host h2 is lost and fencing failed: fence via ipmi 127.0.0.1:623: no answer; its VMs (vm1) will not be restarted until fencing succeeds",
		"host h1 has no fence device",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("problems %q lack %q", joined, want)
		}
	}
	if s.VMs[0].State != "unknown (host fence-failed)" {
		t.Errorf("vm state %q", s.VMs[0].State)
	}
	if s.Hosts[1].Member != "failed" || s.Hosts[1].FenceDev != "bmc@h2 (ipmi 127.0.0.1:623)" {
		t.Errorf("host view %+v", s.Hosts[1])
	}
}

func TestSnapshotConditions(t *testing.T) {
	f := baseFSM(t)
	applyAll(t, f,
		&Command{Op: OpRegisterHost, Host: &model.Host{Name: "h3"}},
		&Command{Op: OpRegisterHost, Host: &model.Host{Name: "h4"}},
		&Command{Op: OpHostState, HostState: &HostStateChange{Host: "h2", State: model.HostLost}},
		&Command{Op: OpHostState, HostState: &HostStateChange{Host: "h3", State: model.HostLost}},
		&Command{Op: OpHostState, HostState: &HostStateChange{Host: "h3", State: model.HostFenced}},
		&Command{Op: OpObserve, Observation: &model.Observation{Host: "h4", VMs: map[string]model.VMObserve{"vm1": {State: "running"}}}},
	)
	st := f.Copy()
	in, err := decide.EngineInput(&decide.View{State: st, Members: members(map[string]decide.MemberStatus{"h1": decide.MemberAlive, "h2": decide.MemberFailed, "h3": decide.MemberFailed, "h4": decide.MemberLeft})})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]placement.HostCondition{"h1": placement.Usable, "h2": placement.Lost, "h3": placement.Released, "h4": placement.Offline}
	for _, h := range in.Hosts {
		if h.Condition != want[h.Name] {
			t.Errorf("%s: %v, want %v", h.Name, h.Condition, want[h.Name])
		}
	}
	// An unplaced VM observed running somewhere is adopted there.
	if in.VMs[0].Current != "h4" {
		t.Errorf("vm1 current %q, want adopted on h4", in.VMs[0].Current)
	}
}

// TestStatusWritesNothing: a status read under wait_for_all neither appends
// a barrier nor proposes (it used to do both through waitForAll).
func TestStatusWritesNothing(t *testing.T) {
	cfg := &config.Daemon{NodeName: "h1", Admission: "open"}
	cfg.Quorum.WaitForAll = true
	n := newMemNode(t, cfg)
	defer func() { _ = n.raft.Shutdown().Error() }()
	before := n.raft.LastIndex()
	s := n.Status()
	if after := n.raft.LastIndex(); after != before {
		t.Fatalf("vmha status wrote the log: index %d → %d", before, after)
	}
	if strings.Join(s.Quorum.WaitingForAll, ",") != "h1,h2" {
		t.Fatalf("waiting for %v, want h1,h2 (no gossip here)", s.Quorum.WaitingForAll)
	}
}

func TestWaitForAllVerdict(t *testing.T) {
	st := baseFSM(t).Copy() // h1, h2
	alive := func(boot string) decide.Member {
		return decide.Member{Status: decide.MemberAlive, Tags: map[string]string{tagBoot: boot}}
	}
	if m, _, over := decide.WaitVerdict(st, decide.Members{"h1": alive("a")}, "h1"); over != "" || strings.Join(m, ",") != "h2" {
		t.Fatalf("one host alive: missing %v, over %q", m, over)
	}
	m, boots, over := decide.WaitVerdict(st, decide.Members{"h1": alive("a"), "h2": alive("b")}, "h1")
	if over != "all" || len(m) != 0 || boots["h2"] != "b" {
		t.Fatalf("all alive: %v %v %q", m, boots, over)
	}
	// h2 still runs the boot recorded when the cluster was last whole: the
	// cluster formed and was not cold started, h1 merely restarted.
	st.Status.Formed = map[string]string{"h1": "old", "h2": "b", "h3": "c"}
	if _, _, over := decide.WaitVerdict(st, decide.Members{"h1": alive("new"), "h2": alive("b")}, "h1"); over != "all" {
		t.Fatalf("over %q", over)
	}
	st.Config.Expected = map[string]*model.Expected{"h3": {}}
	if _, _, over := decide.WaitVerdict(st, decide.Members{"h1": alive("new"), "h2": alive("b")}, "h1"); over != "h2" {
		t.Fatalf("formed and not cold started: over %q, want h2", over)
	}
	if _, _, over := decide.WaitVerdict(st, decide.Members{"h1": alive("new"), "h2": alive("rebooted")}, "h1"); over != "" {
		t.Fatalf("a cold start: over %q, want still waiting", over)
	}
}
