package cluster

import (
	"strings"
	"testing"
	"time"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/cluster/twonode"
	"github.com/vmha/vmha/model"
)

// TestStatusTwoNode: quorum.two_node counts as covering a two-host
// cluster without a witness: armed, status says so and who wins a split
// (a notice); armed with a race that may power off both, a warning;
// inactive (fencing off, a third host, a witness), a critical problem
// that names what is missing.
func TestStatusTwoNode(t *testing.T) {
	tn := &twoNodeState{self: "h1", action: twonode.Idle, reason: "a raft leader exists: the coordinator decides"}
	st, ms := statusState("h1", "h2")
	st.Config.Fencing["h1"].Delay = 5 * time.Second
	status := func(st *model.State) *api.Status {
		voters := model.SortedKeys(st.Config.Hosts)
		return buildStatusAt(statusClock{now: statusNow, stale: staleAfter(2 * time.Second), twoNode: tn}, st, ms, "h1", "h1", 3, voters, nil, nil)
	}
	s := status(st)
	if len(s.ProblemDetails) != 0 || len(s.Notices) != 1 || s.Notices[0].Code != "two_node" ||
		!strings.Contains(s.Notices[0].Message, "two_node: the survivor of a split keeps the quorum by fencing the other first") ||
		!strings.Contains(s.Notices[0].Message, "h1 wins a split: fencing it waits fence.delay 5s, fencing h2 0s") {
		t.Fatalf("armed: problems %+v notices %+v", s.ProblemDetails, s.Notices)
	}

	tn.action, tn.reason = twonode.Fence, "gossip declared h2 failed"
	if s := status(st); !strings.Contains(s.Notices[0].Message, "now: gossip declared h2 failed") {
		t.Fatalf("a takeover under way is not shown: %+v", s.Notices)
	}

	st.Config.Fencing["h1"].Delay = 0
	if s := status(st); len(s.ProblemDetails) != 1 || s.ProblemDetails[0].Code != "two_node_race" || s.ProblemDetails[0].Severity != api.SeverityWarning ||
		!strings.Contains(s.Problems[0], "same fence delay") {
		t.Fatalf("equal delays: %+v", s.ProblemDetails)
	}

	st.Config.FencingOff = &model.FencingOff{By: "alice"}
	s = status(st)
	i := issueOf(s.ProblemDetails, "two_node_inactive")
	if i == nil || i.Severity != api.SeverityCritical || !strings.Contains(i.Message, "quorum.two_node is set on h1 but inactive: fencing is turned off (by alice)") {
		t.Fatalf("fencing off: %+v", s.ProblemDetails)
	}
	st.Config.FencingOff = nil

	st3, ms3 := statusState("h1", "h2", "h3")
	ms = ms3
	if i := issueOf(status(st3).ProblemDetails, "two_node_inactive"); i == nil || !strings.Contains(i.Message, "3 hosts registered (h1, h2, h3), two_node needs exactly two") {
		t.Fatalf("three hosts: %+v", i)
	}
	st.Config.Hosts["w"] = &model.Host{Name: "w", Witness: true}
	st.Status.Hosts["w"] = &model.HostStatus{State: model.HostAlive, SeenAlive: true}
	if i := issueOf(status(st).ProblemDetails, "two_node_inactive"); i == nil || !strings.Contains(i.Message, "witness (w)") {
		t.Fatalf("two_node with a witness: %+v", i)
	}

	// Off, the warning names both ways out.
	st2, _ := statusState("h1", "h2")
	if i := quorumRisk(st2, nil); i == nil || i.Code != "two_hosts_no_witness" || !strings.Contains(i.Message, "quorum.two_node: true") {
		t.Fatalf("two hosts, two_node off: %+v", i)
	}
}

func issueOf(is []api.Issue, code string) *api.Issue {
	for i := range is {
		if is[i].Code == code {
			return &is[i]
		}
	}
	return nil
}
