package twonode

import (
	"strings"
	"testing"
	"time"

	"github.com/vmha/vmha/cluster/decide"
	"github.com/vmha/vmha/model"
)

var t0 = time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)

// state is a two-host cluster, host1 and host2, each with a BMC; host1's
// fence delay is delay1.
func state(delay1 time.Duration) *model.State {
	st := model.NewState()
	for _, h := range []string{"host1", "host2"} {
		st.Config.Hosts[h] = &model.Host{Name: h, APIAddr: h + ":7948"}
		st.Config.Fencing[h] = &model.FenceTopology{Devices: []model.FenceDevice{{Name: "bmc"}}, Levels: [][]string{{"bmc"}}}
		st.Status.Hosts[h] = &model.HostStatus{State: model.HostAlive, SeenAlive: true}
	}
	st.Config.Fencing["host1"].Delay = delay1
	return st
}

func members(peer decide.MemberStatus) decide.Members {
	return decide.Members{
		"host1": {Name: "host1", Status: decide.MemberAlive, Tags: map[string]string{decide.TagBoot: "b1"}},
		"host2": {Name: "host2", Status: peer, Tags: map[string]string{decide.TagBoot: "b2"}},
	}
}

// split is host1's view two seconds into a split: host2 failed in gossip,
// no raft leader since t0, both hosts voters.
func split() Input {
	return Input{
		Now: t0.Add(2 * time.Second), Self: "host1", State: state(5 * time.Second), Members: members(decide.MemberFailed),
		Voters: []string{"host1", "host2"}, LeaderlessSince: t0,
		Probe:    &decide.ProbeAnswer{At: t0.Add(1500 * time.Millisecond), OK: false},
		Settings: Settings{Leaderless: time.Second, FenceRetry: 5 * time.Second},
	}
}

func TestDecide(t *testing.T) {
	confirmed := &Confirmed{Peer: "host2", Boot: "b2", At: t0.Add(time.Second)}
	tests := []struct {
		name   string
		change func(*Input)
		want   Action
		reason string // a part of the reason
	}{
		{"split: fence the peer", func(*Input) {}, Fence, "fencing it"},
		{"a leader exists", func(in *Input) { in.Leader = "host2" }, Idle, "coordinator decides"},
		{"this host leads", func(in *Input) { in.SelfLeader, in.Leader = true, "host1" }, Idle, "coordinator decides"},
		{"peer alive in gossip", func(in *Input) { in.Members = members(decide.MemberAlive) }, Idle, "not failed"},
		{"peer left gracefully", func(in *Input) { in.Members = members(decide.MemberLeft) }, Idle, "not failed"},
		{"peer never seen since start", func(in *Input) { delete(in.Members, "host2") }, Idle, "not seen"},
		{"leaderless too briefly", func(in *Input) { in.LeaderlessSince = in.Now.Add(-500 * time.Millisecond) }, Idle, "less than"},
		{"no probe yet", func(in *Input) { in.Probe = nil }, Probe, "asking its API"},
		{"stale probe", func(in *Input) { in.Probe.At = in.Now.Add(-2 * time.Second) }, Probe, "asking its API"},
		{"peer's API answers", func(in *Input) { in.Probe.OK = true }, Idle, "answers its API"},
		{"a fence runs", func(in *Input) { in.Fencing = true }, Idle, "fencing host2"},
		{"failed fence, before the retry", func(in *Input) { in.FailedAt = in.Now.Add(-time.Second) }, Idle, "retrying"},
		{"failed fence, retry due", func(in *Input) { in.FailedAt = in.Now.Add(-6 * time.Second) }, Fence, "fencing it"},
		{"three voters", func(in *Input) { in.Voters = []string{"host1", "host2", "host3"} }, Idle, "raft voters are"},
		{"this host no voter", func(in *Input) { in.Voters = []string{"host2", "host9"} }, Idle, "raft voters are"},
		{"fencing off", func(in *Input) { in.State.Config.FencingOff = &model.FencingOff{By: "alice"} }, Idle, "fencing is turned off"},
		{"peer without fence topology", func(in *Input) { delete(in.State.Config.Fencing, "host2") }, Idle, "no fence topology registered for host2"},
		{"a witness", func(in *Input) { in.State.Config.Hosts["w"] = &model.Host{Name: "w", Witness: true} }, Idle, "witness"},
		{"cluster maintenance", func(in *Input) { in.State.Config.Maintenance = &model.ClusterMaintenance{By: "alice"} }, Idle, "cluster is in maintenance"},
		{"peer in maintenance", func(in *Input) { in.State.Status.Maintenance = map[string]*model.Maintenance{"host2": {}} }, Idle, "host2 is in maintenance"},
		{"three hosts", func(in *Input) { in.State.Config.Hosts["host3"] = &model.Host{Name: "host3"} }, Idle, "needs exactly two"},

		// After a confirmed fence: take over, wait to lead, record, done.
		{"confirmed: take over", func(in *Input) { in.Confirmed = confirmed }, TakeOver, "only raft voter"},
		{"confirmed, then a leader elected", func(in *Input) { in.Confirmed, in.Leader = confirmed, "host2" }, Forget, "called off"},
		{"confirmed, then elected with the peer's vote", func(in *Input) {
			in.Confirmed, in.SelfLeader, in.Leader = confirmed, true, "host1"
		}, Forget, "called off"},
		{"confirmed, alone, not elected yet", func(in *Input) { in.Confirmed, in.Voters = confirmed, []string{"host1"} }, Idle, "waiting to be elected"},
		{"confirmed, leading alone", func(in *Input) {
			in.Confirmed, in.Voters, in.SelfLeader, in.Leader = confirmed, []string{"host1"}, true, "host1"
		}, Record, "recording"},
		{"recorded", func(in *Input) {
			c := *confirmed
			c.Recorded = true
			in.Confirmed, in.Voters, in.SelfLeader, in.Leader = &c, []string{"host1"}, true, "host1"
		}, Done, "recovers its VMs"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := split()
			tc.change(&in)
			v := Decide(in)
			if v.Action != tc.want || !strings.Contains(v.Reason, tc.reason) {
				t.Fatalf("Decide = %s (%q), want %s with %q", v.Action, v.Reason, tc.want, tc.reason)
			}
			if v.Action != Idle && v.Peer != "host2" {
				t.Fatalf("peer %q, want host2", v.Peer)
			}
		})
	}
}

// TestNeverTakeOverWithoutConfirmedFence: whatever the rest of the input,
// Decide answers TakeOver or Record only with a fence this host confirmed,
// and Fence only while no leader is known.
func TestNeverTakeOverWithoutConfirmedFence(t *testing.T) {
	statuses := []decide.MemberStatus{decide.MemberNone, decide.MemberAlive, decide.MemberLeaving, decide.MemberLeft, decide.MemberFailed}
	voterSets := [][]string{nil, {"host1"}, {"host2"}, {"host1", "host2"}, {"host1", "host2", "host3"}}
	for _, ms := range statuses {
		for _, voters := range voterSets {
			for _, leader := range []string{"", "host1", "host2"} {
				for _, probe := range []*decide.ProbeAnswer{nil, {At: t0.Add(1500 * time.Millisecond)}, {At: t0.Add(1500 * time.Millisecond), OK: true}} {
					for _, fencing := range []bool{false, true} {
						in := split()
						in.Members, in.Voters, in.Leader, in.SelfLeader, in.Probe, in.Fencing = members(ms), voters, leader, leader == "host1", probe, fencing
						v := Decide(in)
						if v.Action == TakeOver || v.Action == Record || v.Action == Done {
							t.Fatalf("%s without a confirmed fence: %+v from %+v", v.Action, v, in)
						}
						if v.Action == Fence && (leader != "" || ms != decide.MemberFailed || fencing || probe == nil || probe.OK || len(voters) != 2) {
							t.Fatalf("fence decided with leader %q, peer %s, fencing %v, probe %+v, voters %v", leader, ms, fencing, probe, voters)
						}
					}
				}
			}
		}
	}
}

// TestConfirmedFenceNeverBesideALeader: with a confirmed fence, Decide
// takes over only while no leader is known, and records the peer fenced
// only as the leader of a configuration without the peer; a leader elected
// with the peer calls the takeover off.
func TestConfirmedFenceNeverBesideALeader(t *testing.T) {
	voterSets := [][]string{nil, {"host1"}, {"host2"}, {"host1", "host2"}}
	for _, voters := range voterSets {
		for _, leader := range []string{"", "host1", "host2"} {
			in := split()
			in.Confirmed = &Confirmed{Peer: "host2", Boot: "b2", At: t0}
			in.Voters, in.Leader, in.SelfLeader = voters, leader, leader == "host1"
			v := Decide(in)
			switch v.Action {
			case TakeOver:
				if leader != "" {
					t.Fatalf("take-over beside leader %s (voters %v)", leader, voters)
				}
			case Record:
				if leader != "host1" || contains(voters, "host2") {
					t.Fatalf("record with leader %q voters %v", leader, voters)
				}
			case Forget:
				if leader == "" {
					t.Fatalf("forget without a leader (voters %v)", voters)
				}
			}
		}
	}
}

func TestCheck(t *testing.T) {
	st := state(0)
	peer, problems := Check(st, "host1")
	if peer != "host2" || problems != nil {
		t.Fatalf("Check = %q %v", peer, problems)
	}
	st.Config.FencingOff = &model.FencingOff{By: "alice"}
	delete(st.Config.Fencing, "host1")
	st.Config.Hosts["witness"] = &model.Host{Name: "witness", Witness: true}
	_, problems = Check(st, "host1")
	want := []string{
		"the cluster has a witness (witness): two_node is for two hosts without one; turn one of them off",
		"fencing is turned off (by alice): two_node needs fencing as its tie-breaker; vmha fence enable",
		"no fence topology registered for host1 (bmc or fence.devices in its vmhad.yaml, accepted with vmha fence devices accept if pending)",
	}
	if got, w := strings.Join(problems, "\n"), strings.Join(want, "\n"); got != w {
		t.Fatalf("problems:\n%s\nwant:\n%s", got, w)
	}
	if _, problems := Check(state(0), "host7"); len(problems) != 1 || !strings.Contains(problems[0], "not one of the registered hosts") {
		t.Fatalf("a stranger: %v", problems)
	}
	one := state(0)
	delete(one.Config.Hosts, "host2")
	if _, problems := Check(one, "host1"); len(problems) != 1 || !strings.Contains(problems[0], "1 host(s) registered (host1)") {
		t.Fatalf("one host: %v", problems)
	}
}

func TestRace(t *testing.T) {
	tests := []struct {
		name           string
		d1, d2, r1, r2 time.Duration
		winner, says   string
	}{
		{"host1 delayed wins", 5 * time.Second, 0, 0, 0, "host1", "host1 wins a split: fencing it waits fence.delay 5s, fencing host2 0s"},
		{"host2 delayed wins", 0, 3 * time.Second, 0, 0, "host2", "host2 wins a split"},
		{"equal delays", time.Second, time.Second, 0, 0, "", "same fence delay"},
		{"random delay", 5 * time.Second, 0, 0, 2 * time.Second, "", "random"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := state(tc.d1)
			st.Config.Fencing["host2"].Delay = tc.d2
			st.Config.Fencing["host1"].RandomDelay, st.Config.Fencing["host2"].RandomDelay = tc.r1, tc.r2
			for _, order := range [][2]string{{"host1", "host2"}, {"host2", "host1"}} {
				w, says := Race(st, order[0], order[1])
				if w != tc.winner || !strings.Contains(says, tc.says) {
					t.Fatalf("Race(%s, %s) = %q %q, want %q with %q", order[0], order[1], w, says, tc.winner, tc.says)
				}
			}
		})
	}
}
