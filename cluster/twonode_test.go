package cluster

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/rs/zerolog"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/cluster/twonode"
	"github.com/vmha/vmha/config"
	"github.com/vmha/vmha/fencing"
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

// TestTwoNodeSavedTakeover: a confirmed fence saved before a restart is
// taken up only while this host's raft log is where it was at the
// confirmation (no leader was elected with this host since); otherwise,
// or when the file is corrupt, it is dropped and nothing is taken over.
func TestTwoNodeSavedTakeover(t *testing.T) {
	dir := t.TempDir()
	rc := raft.DefaultConfig()
	rc.LocalID = "h1"
	rc.LogOutput, rc.LogLevel = io.Discard, "ERROR"
	store := raft.NewInmemStore()
	_, trans := raft.NewInmemTransport("h1")
	r, err := raft.NewRaft(rc, NewFSM(), store, store, raft.NewInmemSnapshotStore(), trans)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Shutdown().Error() }()
	n := &Node{cfg: &config.Daemon{NodeName: "h1", DataDir: dir}, log: zerolog.Nop(), raft: newRaftRef(r)}
	conf := twonode.Confirmed{Peer: "h2", Boot: "b2", At: statusNow}
	rep := fencing.Report{Host: "h2", Action: fencing.ActionOff, Fenced: true, Level: 1}

	tn := newTwoNode(n)
	if tn.confirmed != nil {
		t.Fatal("a confirmed fence without a file")
	}
	if err := tn.save(conf, rep, "rcv-1", r.LastIndex()); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, takeoverName)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("saved file: %v %v", fi, err)
	}
	tn = newTwoNode(n)
	if tn.confirmed == nil || *tn.confirmed != conf || tn.rid != "rcv-1" || !tn.report.Fenced || tn.report.Host != "h2" {
		t.Fatalf("taken up: %+v %q %+v", tn.confirmed, tn.rid, tn.report)
	}
	tn.done()
	if _, err := os.Stat(filepath.Join(dir, takeoverName)); !os.IsNotExist(err) {
		t.Fatalf("done leaves the file: %v", err)
	}

	// A log that moved on since: a leader was elected with this host.
	if err := tn.save(conf, rep, "rcv-1", r.LastIndex()+3); err != nil {
		t.Fatal(err)
	}
	if tn = newTwoNode(n); tn.confirmed != nil {
		t.Fatal("a stale saved takeover was taken up")
	}
	if _, err := os.Stat(filepath.Join(dir, takeoverName)); !os.IsNotExist(err) {
		t.Fatalf("a stale file is kept: %v", err)
	}

	if err := os.WriteFile(filepath.Join(dir, takeoverName), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if tn = newTwoNode(n); tn.confirmed != nil {
		t.Fatal("a corrupt saved takeover was taken up")
	}
}

// TestTwoNodeRecord: once the survivor leads alone, the takeover is
// written to the log: the peer lost with the boot id it had when it was
// fenced, every fence step in the history, the peer fenced; the decision
// is then done, and the peer counts as back only with another boot id.
func TestTwoNodeRecord(t *testing.T) {
	n := newMemNode(t, &config.Daemon{NodeName: "h1", Admission: "open"})
	tn := newTwoNode(n)
	at := time.Now()
	rep := fencing.Report{Host: "h2", Action: fencing.ActionOff, Fenced: true, Level: 1, Started: at, Duration: time.Second,
		Levels: []fencing.LevelResult{{Level: 1, OK: true, Steps: []fencing.StepResult{{Level: 1, Device: "bmc@h2", Action: fencing.StepOff, OK: true, Started: at}}}}}
	tn.confirmed = &twonode.Confirmed{Peer: "h2", Boot: "boot-7", At: at}
	tn.report, tn.rid, tn.claimed = rep, "rcv-7", "h2"
	n.coord.claim("h2")

	tn.pass(t.Context())
	st := n.fsm.Copy()
	hs := st.Status.Hosts["h2"]
	if hs == nil || hs.State != model.HostFenced || hs.LostBoot != "boot-7" || hs.RecoveryID != "rcv-7" || !strings.Contains(hs.Reason, "two_node survivor h1") {
		t.Fatalf("h2 after the record: %+v", hs)
	}
	hist := st.Status.FenceHistory
	if len(hist) != 1 || hist[0].Device != "bmc@h2" || !hist[0].OK || hist[0].Requester != "two_node: h1" || hist[0].RecoveryID != "rcv-7" {
		t.Fatalf("fence history %+v", hist)
	}
	if !tn.confirmed.Recorded {
		t.Fatal("not marked recorded")
	}
	tn.pass(t.Context())
	if tn.confirmed != nil || tn.claimed != "" || tn.verdict.Action != twonode.Done {
		t.Fatalf("after done: %+v %q %s", tn.confirmed, tn.claimed, tn.verdict.Action)
	}
	if !n.coord.claim("h2") {
		t.Fatal("the coordinator's claim on h2 was not released")
	}
}
