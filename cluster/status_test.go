package cluster

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vmha/vmha/api"
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

// statusNow is the clock of the status tests.
var statusNow = time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)

// statusState is a healthy cluster of hosts: each fenceable, seen alive,
// and with a fresh report of no VMs.
func statusState(hosts ...string) (*model.State, decide.Members) {
	st := model.NewState()
	ms := decide.Members{}
	for _, h := range hosts {
		st.Config.Hosts[h] = &model.Host{Name: h, MemoryMiB: 4096}
		st.Config.Fencing[h] = &model.FenceTopology{Devices: []model.FenceDevice{{Name: "bmc@" + h, Type: "ipmi", Params: map[string]string{"address": "10.0.0.1"}}}, Levels: [][]string{{"bmc@" + h}}}
		st.Status.Hosts[h] = &model.HostStatus{State: model.HostAlive, SeenAlive: true}
		st.Status.Observed[h] = &model.Observation{Host: h, At: statusNow.Add(-5 * time.Second), VMs: map[string]model.VMObserve{}}
		ms[h] = decide.Member{Name: h, Status: decide.MemberAlive}
	}
	return st, ms
}

// addVM puts vm in st, placed on host (none: "") since placed ago, and
// observed by observer (none: "") in state since observed ago.
func addVM(st *model.State, vm, host string, placed time.Duration, observer, state string, observed time.Duration) {
	st.Config.VMs[vm] = &model.VM{Name: vm, MemoryMiB: 512}
	st.Status.Placements[vm] = &model.Placement{VM: vm, Host: host, Since: statusNow.Add(-placed), Reason: "test"}
	if observer != "" {
		st.Status.Observed[observer].VMs[vm] = model.VMObserve{State: state, Since: statusNow.Add(-observed)}
	}
}

func statusOf(t *testing.T, st *model.State, ms decide.Members, rulesText string) *api.Status {
	t.Helper()
	var rules *decide.Rules
	if rulesText != "" {
		var err error
		if rules, err = decide.CompileRules(rulesText); err != nil {
			t.Fatal(err)
		}
	}
	voters := model.SortedKeys(st.Config.Hosts)
	return buildStatusAt(statusClock{now: statusNow, stale: staleAfter(2 * time.Second)}, st, ms, voters[0], voters[0], 3, voters, nil, rules)
}

// codes are the codes of issues, by host or VM ("" for the cluster).
func codes(is []api.Issue) map[string][]string {
	out := map[string][]string{}
	for _, i := range is {
		k := i.Host + i.VM
		out[k] = append(out[k], i.Code)
	}
	return out
}

func TestStatusHostAdminStates(t *testing.T) {
	st, ms := statusState("h1", "h2", "h3", "h4", "h5")
	at := statusNow.Add(-time.Hour)
	st.Status.Evacuations = map[string]*model.Evacuation{
		"h1": {Host: "h1", By: "alice", At: at, Done: true},
		"h2": {Host: "h2", By: "alice", At: at},
		"h5": {Host: "h5", By: "carol", At: at, Storage: "vmstore", VMs: []string{}},
	}
	st.Status.Maintenance = map[string]*model.Maintenance{"h3": {By: "bob", At: at, Reason: "bios update"}}
	addVM(st, "vm2", "h2", time.Hour, "h2", "running", time.Hour)
	s := statusOf(t, st, ms, "hosts:\n  - {name: h4, standby: true}\n")

	want := map[string][]api.AdminState{
		"h1": {{State: api.AdminDrained, Since: at, By: "alice", Done: true}},
		"h2": {{State: api.AdminDraining, Since: at, By: "alice"}},
		"h3": {{State: api.AdminMaintenance, Since: at, By: "bob", Reason: "bios update"}},
		"h4": {{State: api.AdminStandby, Reason: "cluster.yaml"}},
		"h5": {{State: api.AdminStorageMaintenance, Since: at, By: "carol", Storage: "vmstore"}},
	}
	for _, h := range s.Hosts {
		if diff := diffOf(want[h.Name], h.Admin); diff != "" {
			t.Errorf("%s admin :\n%s", h.Name, diff)
		}
		if h.State != model.HostAlive {
			t.Errorf("%s: lifecycle state %s, want alive next to its admin state", h.Name, h.State)
		}
	}
	wantNotices := map[string][]string{"h1": {"host_drained"}, "h2": {"host_draining"}, "h3": {"host_maintenance"}, "h4": {"host_standby"}, "h5": {"host_storage_maintenance"}}
	if diff := diffOf(wantNotices, codes(s.Notices)); diff != "" {
		t.Errorf("notices :\n%s", diff)
	}
	if len(s.ProblemDetails) != 0 || len(s.Problems) != 0 {
		t.Errorf("deliberate states are problems: %+v", s.ProblemDetails)
	}
	for _, n := range s.Notices {
		if n.Severity != api.SeverityInfo {
			t.Errorf("notice %s has severity %s", n.Code, n.Severity)
		}
	}
	if !strings.Contains(s.Notices[1].Message, "host h2 is being drained (by alice since ") || !strings.Contains(s.Notices[1].Message, "1 VMs left, 0 moving") {
		t.Errorf("draining notice %q", s.Notices[1].Message)
	}
}

func TestStatusTargetAgainstActual(t *testing.T) {
	st, ms := statusState("h1", "h2", "h3")
	addVM(st, "run", "h1", 4*time.Hour, "h1", "running", 3*time.Hour+12*time.Minute)
	addVM(st, "down", "h1", 10*time.Minute, "h1", "shutoff", 5*time.Minute)
	addVM(st, "gone", "h1", 10*time.Minute, "", "", 0)
	addVM(st, "fresh", "h1", 5*time.Second, "", "", 0)
	addVM(st, "kept", "", time.Hour, "h2", "shutoff", 20*time.Second)
	addVM(st, "free", "", time.Hour, "h2", "running", time.Hour)
	addVM(st, "ruled", "", time.Hour, "", "", 0)
	addVM(st, "flaky", "h3", time.Hour, "h3", "running", time.Minute)
	st.Config.VMStates = map[string]*model.VMState{
		"kept": {Target: model.TargetStopped, By: "alice", At: statusNow, Reason: "license"},
		"free": {Target: model.TargetIgnored, By: "bob", At: statusNow},
	}
	st.Status.Failures = map[string]map[string]*model.Failure{"flaky": {"h2": {Count: 3, Last: statusNow.Add(-2 * time.Minute), Error: "boom"}}}
	s := statusOf(t, st, ms, "vms:\n  - {name: ruled, target-state: stopped}\n")

	type row struct {
		Target             model.Target
		Source, By, Actual string
		ActualHost         string
		Age                int64
		Stale              bool
	}
	got := map[string]row{}
	for _, v := range s.VMs {
		r := row{Target: v.Target, Source: v.TargetSource, By: v.TargetBy, Actual: v.Actual, ActualHost: v.ActualHost, Stale: v.ReportStale, Age: -1}
		if v.ActualAgeSeconds != nil {
			r.Age = *v.ActualAgeSeconds
		}
		got[v.Name] = r
	}
	want := map[string]row{
		"run":   {model.TargetStarted, "default", "", "running", "h1", 11520, false},
		"down":  {model.TargetStarted, "default", "", "shutoff", "h1", 300, false},
		"gone":  {model.TargetStarted, "default", "", "", "", -1, false},
		"fresh": {model.TargetStarted, "default", "", "", "", -1, false},
		"kept":  {model.TargetStopped, "operator", "alice", "shutoff", "h2", 20, false},
		"free":  {model.TargetIgnored, "operator", "bob", "running", "h2", 3600, false},
		"ruled": {model.TargetStopped, "rules", "", "", "", -1, false},
		"flaky": {model.TargetStarted, "default", "", "running", "h3", 60, false},
	}
	if diff := diffOf(want, got); diff != "" {
		t.Errorf("targets and actual states :\n%s", diff)
	}
	wantProblems := map[string][]string{"down": {"vm_not_running"}, "gone": {"vm_not_running"}, "flaky": {"vm_failures"}}
	if diff := diffOf(wantProblems, codes(s.ProblemDetails)); diff != "" {
		t.Errorf("problems :\n%s\n%q", diff, s.Problems)
	}
	wantNotices := map[string][]string{"kept": {"vm_stopped"}, "free": {"vm_unmanaged"}, "ruled": {"vm_stopped"}}
	if diff := diffOf(wantNotices, codes(s.Notices)); diff != "" {
		t.Errorf("notices :\n%s", diff)
	}
	joined := strings.Join(s.Problems, "\n")
	for _, w := range []string{
		"vm down should run on h1, but h1 reports it shutoff since 2026-12-05 11:55:00",
		"vm gone should run on h1, but h1 does not report it",
		"vm flaky failed 3× on h2 (last at 2026-12-05 11:58:00: boom)",
	} {
		if !strings.Contains(joined, w) {
			t.Errorf("problems lack %q:\n%s", w, joined)
		}
	}
	for _, p := range s.ProblemDetails {
		if want := map[string]string{"vm_not_running": api.SeverityCritical, "vm_failures": api.SeverityWarning}[p.Code]; p.Severity != want {
			t.Errorf("%s: severity %s, want %s", p.Code, p.Severity, want)
		}
	}
	flaky := s.VMs[slices.IndexFunc(s.VMs, func(v api.VM) bool { return v.Name == "flaky" })]
	if diff := diffOf([]api.VMFailure{{Host: "h2", Count: 3, Last: statusNow.Add(-2 * time.Minute), LastAgeSeconds: 120, Error: "boom"}}, flaky.Failures); diff != "" {
		t.Errorf("fail counts :\n%s", diff)
	}
}

func TestStatusStaleReports(t *testing.T) {
	st, ms := statusState("h1", "h2", "h3")
	st.Status.Observed["h2"].At = statusNow.Add(-2 * time.Minute)
	addVM(st, "old", "h2", time.Hour, "h2", "running", time.Hour)
	// h3's vmhad restarted since its last report.
	st.Status.Observed["h3"].Boot = "before"
	ms["h3"] = decide.Member{Name: "h3", Status: decide.MemberAlive, Tags: map[string]string{tagBoot: "after"}}
	addVM(st, "restarted", "h3", time.Hour, "h3", "shutoff", time.Hour)
	s := statusOf(t, st, ms, "")

	for _, v := range s.VMs {
		if !v.ReportStale || v.ReportAgeSeconds == nil {
			t.Errorf("%s: report not stale: %+v", v.Name, v)
		}
	}
	if *s.VMs[0].ReportAgeSeconds != 120 || s.VMs[0].Actual != "running" {
		t.Errorf("old: %+v", s.VMs[0])
	}
	if h := s.Hosts[1]; !h.ReportStale || h.ReportAgeSeconds == nil || *h.ReportAgeSeconds != 120 || s.Hosts[0].ReportStale {
		t.Errorf("host report ages: %+v %+v", s.Hosts[0], h)
	}
	// A stale report is a warning about the host, never a VM "not
	// running" on its word.
	if diff := diffOf(map[string][]string{"h2": {"report_stale"}}, codes(s.ProblemDetails)); diff != "" {
		t.Errorf("problems :\n%s\n%q", diff, s.Problems)
	}
	if s.ReportStaleAfterSeconds != 45 {
		t.Errorf("stale after %d s", s.ReportStaleAfterSeconds)
	}
}

func TestStatusTwoHostsWithoutWitness(t *testing.T) {
	st, ms := statusState("h1", "h2")
	s := statusOf(t, st, ms, "")
	if len(s.ProblemDetails) != 1 || s.ProblemDetails[0].Code != "two_hosts_no_witness" || s.ProblemDetails[0].Severity != api.SeverityWarning ||
		!strings.Contains(s.Problems[0], "losing either h1 or h2 leaves the other without quorum") || !strings.Contains(s.Problems[0], "vmhad --witness") {
		t.Fatalf("two hosts: %+v", s.ProblemDetails)
	}
	st.Config.Hosts["w"] = &model.Host{Name: "w", Witness: true}
	st.Status.Hosts["w"] = &model.HostStatus{State: model.HostAlive, SeenAlive: true}
	if s := statusOf(t, st, ms, ""); len(s.ProblemDetails) != 0 {
		t.Fatalf("two hosts and a witness: %+v", s.ProblemDetails)
	}
	st, ms = statusState("h1", "h2", "h3")
	if s := statusOf(t, st, ms, ""); len(s.ProblemDetails) != 0 {
		t.Fatalf("three hosts: %+v", s.ProblemDetails)
	}
}

func TestStatusClusterMaintenance(t *testing.T) {
	st, ms := statusState("h1", "h2", "h3")
	st.Config.Maintenance = &model.ClusterMaintenance{By: "alice", At: statusNow.Add(-time.Hour), Reason: "switch upgrade"}
	addVM(st, "vm1", "h1", time.Hour, "h1", "running", time.Hour)
	s := statusOf(t, st, ms, "")
	if s.ClusterMaintenance == nil || s.ClusterMaintenance.By != "alice" {
		t.Fatalf("cluster maintenance %+v", s.ClusterMaintenance)
	}
	if len(s.Notices) != 1 || s.Notices[0].Code != "cluster_maintenance" || !strings.Contains(s.Notices[0].Message, "nothing is started, stopped, moved or fenced") || len(s.ProblemDetails) != 0 {
		t.Fatalf("notices %+v, problems %+v", s.Notices, s.ProblemDetails)
	}
	for _, h := range s.Hosts {
		if len(h.Admin) != 1 || h.Admin[0].State != api.AdminClusterMaintenance || h.Admin[0].Reason != "switch upgrade" {
			t.Errorf("host %s admin %+v", h.Name, h.Admin)
		}
	}
	if v := s.VMs[0]; len(v.Admin) != 1 || v.Admin[0].State != api.AdminClusterMaintenance {
		t.Errorf("vm admin %+v", v.Admin)
	}
}

// TestStatusProblemsBySeverity: no quorum and a lost host are critical and
// come first; fencing off and a missing fence device are warnings; a VM
// stopped on purpose is a notice; Problems are the messages in that order.
func TestStatusProblemsBySeverity(t *testing.T) {
	st, _ := statusState("h1", "h2", "h3")
	delete(st.Config.Fencing, "h3")
	st.Config.FencingOff = &model.FencingOff{By: "alice", At: statusNow}
	st.Status.Hosts["h2"] = &model.HostStatus{State: model.HostLost, Reason: "gossip: failed", SeenAlive: true}
	addVM(st, "off", "", time.Hour, "", "", 0)
	st.Config.VMStates = map[string]*model.VMState{"off": {Target: model.TargetStopped, By: "alice", At: statusNow}}
	ms := members(map[string]decide.MemberStatus{"h1": decide.MemberAlive, "h2": decide.MemberFailed, "h3": decide.MemberFailed})
	s := buildStatusAt(statusClock{now: statusNow, stale: staleAfter(2 * time.Second)}, st, ms, "h1", "", 3, []string{"h1", "h2", "h3"}, nil, nil)
	var got []string
	for _, p := range s.ProblemDetails {
		got = append(got, p.Severity+" "+p.Code)
	}
	want := []string{"critical no_quorum", "critical host_lost", "warning fencing_off", "warning no_fence_device"}
	if diff := diffOf(want, got); diff != "" {
		t.Errorf("problems :\n%s", diff)
	}
	for i, p := range s.ProblemDetails {
		if s.Problems[i] != p.Message {
			t.Errorf("problems[%d] = %q, want %q", i, s.Problems[i], p.Message)
		}
	}
	if diff := diffOf(map[string][]string{"off": {"vm_stopped"}}, codes(s.Notices)); diff != "" {
		t.Errorf("notices :\n%s", diff)
	}
}

// TestStatusJSONShape: new lists are [] when empty, zero times are left
// out, and the existing fields stay.
func TestStatusJSONShape(t *testing.T) {
	st, ms := statusState("h1", "h2", "h3")
	addVM(st, "vm1", "h1", time.Hour, "h1", "running", time.Hour)
	s := statusOf(t, st, ms, "")
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	js := string(b)
	for _, w := range []string{`"problems":[]`, `"problem_details":[]`, `"notices":[]`, `"evacuations":[]`, `"admin":[]`, `"failures":[]`,
		`"target":"started"`, `"target_source":"default"`, `"actual":"running"`, `"actual_host":"h1"`, `"actual_age_seconds":3600`,
		`"report_age_seconds":5`, `"report_stale_after_seconds":45`, `"state":"running"`, `"since":`, `"at":"2026-12-05T12:00:00Z"`} {
		if !strings.Contains(js, w) {
			t.Errorf("status JSON lacks %s:\n%s", w, js)
		}
	}
	for _, no := range []string{`"cluster_maintenance"`, `null`, `"report_stale"`} {
		if strings.Contains(js, no) {
			t.Errorf("status JSON has %s:\n%s", no, js)
		}
	}
	// A VM no host reports: no actual state, no zero times.
	addVM(st, "vm2", "", time.Hour, "", "", 0)
	st.Config.VMStates = map[string]*model.VMState{"vm2": {Target: model.TargetStopped, By: "alice", At: statusNow}}
	s = statusOf(t, st, ms, "")
	b, err = json.Marshal(s.VMs[1])
	if err != nil {
		t.Fatal(err)
	}
	for _, no := range []string{`"actual"`, `"actual_since"`, `"report_at"`, `"actual_age_seconds"`, `0001-01-01`} {
		if strings.Contains(string(b), no) {
			t.Errorf("vm JSON has %s: %s", no, b)
		}
	}
}

// diffOf is "" when want and got are deeply equal, else both, for the
// failure message (go-cmp is not a dependency of the module).
func diffOf(want, got any) string {
	if reflect.DeepEqual(want, got) {
		return ""
	}
	return fmt.Sprintf("want %+v\n got %+v", want, got)
}

// A fenced host that has not rejoined is a warning: its VMs run elsewhere,
// but the cluster has one host fewer; once it is alive again, nothing.
func TestStatusFencedHostIsAWarning(t *testing.T) {
	st, ms := statusState("h1", "h2", "h3")
	st.Status.Hosts["h3"] = &model.HostStatus{State: model.HostFenced, SeenAlive: true, FencedAt: statusNow.Add(-time.Minute)}
	ms["h3"] = decide.Member{Name: "h3", Status: decide.MemberFailed}
	s := statusOf(t, st, ms, "")
	var got *api.Issue
	for i := range s.ProblemDetails {
		if s.ProblemDetails[i].Code == "host_fenced" {
			got = &s.ProblemDetails[i]
		}
	}
	if got == nil || got.Severity != api.SeverityWarning || got.Host != "h3" || !strings.Contains(got.Message, "one host fewer") || !strings.Contains(got.Message, statusNow.Add(-time.Minute).Format(time.DateTime)) {
		t.Fatalf("no host_fenced warning for h3: %+v", s.ProblemDetails)
	}
	st.Status.Hosts["h3"].State = model.HostAlive
	ms["h3"] = decide.Member{Name: "h3", Status: decide.MemberAlive}
	if diff := diffOf(map[string][]string{}, codes(statusOf(t, st, ms, "").ProblemDetails)); diff != "" {
		t.Errorf("back alive, problems remain:\n%s", diff)
	}
}
