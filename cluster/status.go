package cluster

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/cluster/decide"
	"github.com/vmha/vmha/cluster/twonode"
	"github.com/vmha/vmha/fencing"
	"github.com/vmha/vmha/model"
)

// fenceOptions turns the daemon config into fencing options.
func (n *Node) fenceOptions() fencing.Options {
	o := fencing.DefaultOptions()
	o.Timeout = n.cfg.Fencing.Timeout
	o.CallTimeout = n.cfg.Fencing.CallTimeout
	o.PollInterval = n.cfg.Fencing.PollInterval
	return o
}

// staleAfter is how old a host agent's last report may be before status
// stops taking it for what runs now: an agent reports on every pass (each
// agent.interval) when something changed, and re-sends an unchanged report
// every reportEvery, so three missed ones mean the agent is stuck or cut
// off from the leader.
func staleAfter(agentInterval time.Duration) time.Duration {
	return 3 * max(reportEvery, agentInterval)
}

// statusClock is what a status counts ages and staleness with.
type statusClock struct {
	now time.Time
	// stale is staleAfter of the agents' interval.
	stale time.Duration
	// twoNode is the answering host's quorum.two_node (nil: off), which
	// quorumRisk reports with the clock's other per-host facts.
	twoNode *twoNodeState
	// heard is when the leader last heard each host's report, committed
	// or not (heardReports); listening is when it became leader, from
	// when it could hear them (zero: not the leader).
	heard     map[string]time.Time
	listening time.Time
}

// reportAt is when host last reported: the committed report's time, or
// the time of a later unchanged report the leader heard.
func (c statusClock) reportAt(host string, o *model.Observation) time.Time {
	if t := c.heard[host]; t.After(o.At) {
		return t
	}
	return o.At
}

// reportOld reports whether host's last report is older than stale. A new
// leader counts from when it became leader: before that it heard nothing,
// and the committed report may be as old as the host's last change.
func (c statusClock) reportOld(host string, o *model.Observation) bool {
	at := c.reportAt(host, o)
	if c.listening.After(at) {
		at = c.listening
	}
	return c.now.Sub(at) > c.stale
}

// vmRunGrace is how long a VM placed on a host may be missing from that
// host's reports, or be reported stopped there, before status calls it a
// problem: the agent starts a VM within a pass, and reports within
// reportEvery.
const vmRunGrace = reportEvery

// Status is this node's view of the cluster, as `vmha status` shows it.
func (n *Node) Status() *api.Status {
	st := n.fsm.Copy()
	members := n.members()
	leader, _ := n.Leader()
	var voters []string
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			if s.Suffrage == raft.Voter {
				voters = append(voters, string(s.ID))
			}
		}
	}
	sort.Strings(voters)
	var checks map[string][]fencing.DeviceCheck
	var beats map[string]string
	clock := statusClock{now: time.Now(), stale: staleAfter(n.cfg.Agent.Interval), twoNode: n.twoNode.state(), heard: n.heard.snapshot()}
	if n.coord != nil && n.IsLeader() {
		checks = n.coord.Checks()
		beats = n.coord.Liveness()
		clock.listening = n.coord.leaderSince()
	}
	s := buildStatusAt(clock, st, members, n.cfg.NodeName, leader, n.raft.CurrentTerm(), voters, checks, n.compiledRules(st.Config.Rules))
	s.Security = n.security()
	addStorageLiveness(s, beats)
	for _, p := range n.diskProblems(members) {
		addIssue(s, api.Issue{Code: "data_dir_low", Severity: api.SeverityWarning, Message: p})
	}
	n.addDoctorIssue(s) // the last vmha doctor run's failures (doctor.go)
	if missing := n.waitingForAll(members); len(missing) > 0 {
		s.Quorum.WaitingForAll = missing
		msg := fmt.Sprintf("waiting for all hosts (quorum.wait_for_all) after a cold start: %s not seen yet; until every host is seen at once, nothing is fenced or placed. If a host is gone for good: vmha host remove HOST", strings.Join(missing, ", "))
		s.Quorum.Explanation = msg + "; " + s.Quorum.Explanation
		addIssue(s, api.Issue{Code: "waiting_for_all", Severity: api.SeverityCritical, Message: msg})
	}
	sortIssues(s)
	return s
}

// addIssue files i under the status's problems, or its notices (severity
// info).
func addIssue(s *api.Status, i api.Issue) {
	if i.Severity == api.SeverityInfo {
		s.Notices = append(s.Notices, i)
		return
	}
	s.ProblemDetails = append(s.ProblemDetails, i)
	s.Problems = append(s.Problems, i.Message)
}

// sortIssues puts the critical problems first (keeping the order they were
// found in otherwise) and makes Problems their messages again.
func sortIssues(s *api.Status) {
	rank := func(sev string) int {
		if sev == api.SeverityCritical {
			return 0
		}
		return 1
	}
	sort.SliceStable(s.ProblemDetails, func(i, j int) bool {
		return rank(s.ProblemDetails[i].Severity) < rank(s.ProblemDetails[j].Severity)
	})
	s.Problems = make([]string, 0, len(s.ProblemDetails))
	for _, p := range s.ProblemDetails {
		s.Problems = append(s.Problems, p.Message)
	}
}

func hostIssue(severity, code, host, msg string) api.Issue {
	return api.Issue{Code: code, Severity: severity, Host: host, Message: msg}
}

func vmIssue(severity, code, vm, msg string) api.Issue {
	return api.Issue{Code: code, Severity: severity, VM: vm, Message: msg}
}

// security is how this host authenticates, in plain words.
func (n *Node) security() api.Security {
	sec := api.Security{MutualTLS: n.tls != nil, GossipEncrypted: n.gossipEncrypted}
	sec.Insecure = !sec.MutualTLS || !sec.GossipEncrypted
	var missing []string
	if !sec.MutualTLS {
		missing = append(missing, "no mutual TLS (raft and the peer API are plain TCP: anyone who reaches them can act as an operator or a host)")
	}
	if !sec.GossipEncrypted {
		missing = append(missing, "gossip is not encrypted (anyone who reaches the gossip port can join)")
	}
	if sec.Insecure {
		sec.Explanation = fmt.Sprintf("INSECURE on %s: %s; vmha cluster init makes the certificates and the gossip key", n.cfg.BindAddr, strings.Join(missing, "; "))
	} else {
		sec.Explanation = "mutual TLS for raft and the peer API, encrypted gossip"
	}
	return sec
}

// addStorageLiveness tells, for each lost host, a dead host (its storage
// heartbeat stopped too) from an isolated one (it still writes: alive, cut
// off from the network, its VMs possibly still writing to their disks).
func addStorageLiveness(s *api.Status, beats map[string]string) {
	for i := range s.Hosts {
		h := &s.Hosts[i]
		h.StorageHeartbeat = beats[h.Name]
		if h.State != model.HostLost && h.State != model.HostFenceFailed {
			continue
		}
		switch beats[h.Name] {
		case "writing":
			addIssue(s, hostIssue(api.SeverityCritical, "host_isolated", h.Name, fmt.Sprintf("host %s is isolated, not dead: it still writes its storage heartbeat; its VMs may still be running and writing, so they are recovered only after it is fenced (vmha fence confirm is refused)", h.Name)))
		case "silent":
			addIssue(s, hostIssue(api.SeverityWarning, "host_dead", h.Name, fmt.Sprintf("host %s looks dead: its storage heartbeat stopped too", h.Name)))
		}
	}
}

// buildStatus is the pure part of Status, tested without a cluster.
func buildStatus(st *model.State, members decide.Members, self, leader string, term uint64, voters []string, checks map[string][]fencing.DeviceCheck, rules *decide.Rules) *api.Status {
	return buildStatusAt(statusClock{now: time.Now(), stale: staleAfter(0)}, st, members, self, leader, term, voters, checks, rules)
}

// buildStatusAt is buildStatus on clock c: ages and staleness count from
// c.now.
func buildStatusAt(c statusClock, st *model.State, members decide.Members, self, leader string, term uint64, voters []string, checks map[string][]fencing.DeviceCheck, rules *decide.Rules) *api.Status {
	out := &api.Status{Node: self, Leader: leader, Term: term, Hosts: []api.Host{}, VMs: []api.VM{}, Problems: []string{},
		ProblemDetails: []api.Issue{}, Notices: []api.Issue{}, At: c.now.UTC(), ReportStaleAfterSeconds: int64(c.stale / time.Second)}
	out.Quorum = quorum(voters, members, leader)
	if !out.Quorum.Quorate {
		addIssue(out, api.Issue{Code: "no_quorum", Severity: api.SeverityCritical, Message: out.Quorum.Explanation})
	}
	cm := st.Config.Maintenance
	if cm != nil {
		out.ClusterMaintenance = cm
		addIssue(out, api.Issue{Code: "cluster_maintenance", Severity: api.SeverityInfo, Message: fmt.Sprintf(
			"the cluster is in maintenance (by %s since %s%s): nothing is started, stopped, moved or fenced, and monitoring goes on",
			cm.By, cm.At.Format(time.DateTime), because(cm.Reason))})
	}
	if i := quorumRisk(st, c.twoNode); i != nil {
		addIssue(out, *i)
	}
	out.Evacuations = evacuationViews(st)
	if out.Evacuations == nil {
		out.Evacuations = []api.Evacuation{}
	}
	for _, e := range out.Evacuations {
		for _, s := range e.Stuck {
			addIssue(out, hostIssue(api.SeverityWarning, "evacuation_stuck", e.Host, fmt.Sprintf("evacuation of %s: %s (it stays; --on-stuck stop-restart or a deadline moves it by stopping it)", e.Host, s)))
		}
	}
	if off := st.Config.FencingOff; off != nil {
		out.FencingOff = off
		addIssue(out, api.Issue{Code: "fencing_off", Severity: api.SeverityWarning, Message: fmt.Sprintf("%s (turned off by %s at %s; vmha fence enable turns it on)", DoubleRunRisk, off.By, off.At.Format(time.DateTime))})
	}
	isVoter := map[string]bool{}
	for _, v := range voters {
		isVoter[v] = true
	}
	used := map[string]uint64{}
	vmsOn := map[string][]string{}
	for _, name := range model.SortedKeys(st.Config.VMs) {
		if p := st.Status.Placements[name]; p != nil && p.Host != "" {
			used[p.Host] += st.Config.VMs[name].MemoryMiB
			vmsOn[p.Host] = append(vmsOn[p.Host], name)
		}
	}
	for _, name := range model.SortedKeys(st.Config.Hosts) {
		h := st.Config.Hosts[name]
		hv := api.Host{Attributes: decide.HostAttributes(st, members, name, rules),
			Name: name, Member: memberStatus(members, name), State: model.HostAlive,
			Leader: name == leader, Voter: isVoter[name], APIAddr: h.APIAddr,
			MemoryMiB: h.MemoryMiB, CPUs: h.CPUs, UsedMiB: used[name], VMs: vmsOn[name],
		}
		if hv.VMs == nil {
			hv.VMs = []string{}
		}
		hv.FenceDevices = api.FenceDevicesOf(st.Config.Fencing[name])
		if t := st.Config.Fencing[name]; t != nil && len(t.Levels) > 0 {
			hv.FenceDev = t.Describe()
			hv.FenceCheck = hostCheck(checks[name])
		}
		if hs := st.Status.Hosts[name]; hs != nil {
			hv.State, hv.Reason, hv.Since = hs.State, hs.Reason, hs.Since
			hv.RecoveryID, hv.LostAt, hv.FencedAt = hs.RecoveryID, hs.LostAt, hs.FencedAt
		}
		hostDetails(out, c, st, rules, name, h, &hv)
		out.Hosts = append(out.Hosts, hv)
	}
	for _, name := range model.SortedKeys(st.Config.Expected) {
		e := st.Config.Expected[name]
		addIssue(out, hostIssue(api.SeverityWarning, "host_expected", name, fmt.Sprintf("host %s was announced by %s at %s and has not joined yet (start its vmhad with join: set)", name, e.By, e.At.Format(time.DateTime))))
	}
	for _, name := range model.SortedKeys(st.Config.VMs) {
		v := vmView(st, name, members)
		t := decide.TargetOf(st, rules, name)
		observeVM(&v, st, members, c)
		v.Failures = vmFailures(st, name, c.now)
		v.Admin = []api.AdminState{}
		if cm != nil {
			v.Admin = append(v.Admin, clusterAdmin(cm))
		}
		v.Target, v.TargetSource, v.TargetBy, v.TargetReason = t.Target, t.Source, t.By, t.Reason
		for _, i := range vmIssues(st, v, t, c.now) {
			addIssue(out, i)
		}
		out.VMs = append(out.VMs, v)
	}
	sortIssues(out)
	return out
}

// hostDetails adds to hv what is not its plain state: admin states, its
// agent's last report, and the problems and notices about it.
func hostDetails(out *api.Status, c statusClock, st *model.State, rules *decide.Rules, name string, h *model.Host, hv *api.Host) {
	hv.SeenAlive = seenAlive(st.Status.Hosts[name])
	for _, i := range fenceProblems(st, name) {
		addIssue(out, i)
	}
	if mt := st.Status.Maintenance[name]; mt != nil {
		hv.Maintenance = mt
	}
	var admin []api.Issue
	hv.Admin, admin = hostAdmin(st, name, rules, evacuationOf(out.Evacuations, name))
	for _, i := range admin {
		addIssue(out, i)
	}
	for _, i := range healthIssues(name, hv.Attributes) {
		addIssue(out, i)
	}
	if o := st.Status.Observed[name]; o != nil && !o.At.IsZero() && !h.Witness {
		at := c.reportAt(name, o)
		hv.ReportAt, hv.ReportAgeSeconds = at, ageSeconds(c.now, at)
		hv.ReportStale = c.reportOld(name, o)
		if hv.ReportStale && hv.State == model.HostAlive && hv.Member == "alive" && hv.Maintenance == nil {
			addIssue(out, hostIssue(api.SeverityWarning, "report_stale", name, fmt.Sprintf(
				"host %s's agent last reported at %s, more than %s ago: what status shows of its VMs may be out of date (its agent may be stuck, or the host cut off from the leader)",
				name, at.Format(time.DateTime), c.stale)))
		}
	}
	switch hv.State {
	case model.HostLost:
		addIssue(out, hostIssue(api.SeverityCritical, "host_lost", name, fmt.Sprintf("host %s is lost (%s); fencing it before its VMs (%s) restart elsewhere", name, hv.Reason, listOrNone(hv.VMs))))
	case model.HostFenceFailed:
		msg := fmt.Sprintf("host %s is lost and fencing failed: %s; its VMs (%s) will not be restarted until fencing succeeds (retrying)", name, trimErr(hv.Reason), listOrNone(hv.VMs))
		if h.Watchdog > 0 && st.Status.Hosts[name] != nil && !st.Status.Hosts[name].LostAt.IsZero() {
			msg += fmt.Sprintf(", or until its own watchdog (%s) has reset it: the host stops petting it once cut off from the quorum, so it counts as reset %s after it was lost", h.Watchdog, model.WatchdogWait(h.Watchdog, 0).Round(time.Second))
		}
		addIssue(out, hostIssue(api.SeverityCritical, "fence_failed", name, msg))
	case model.HostFenced:
		// Its VMs run elsewhere, but the cluster has one host fewer for
		// the next failure: an operator should know until it is back.
		at := ""
		if hs := st.Status.Hosts[name]; hs != nil && !hs.FencedAt.IsZero() {
			at = " at " + hs.FencedAt.Format(time.DateTime)
		}
		addIssue(out, hostIssue(api.SeverityWarning, "host_fenced", name, fmt.Sprintf(
			"host %s was fenced%s and has not rejoined: the cluster has one host fewer for the next failure; power it on (it rejoins and starts nothing until VMs are placed on it) or remove it (vmha host remove %s --yes)",
			name, at, name)))
	}
	if h.Witness {
		hv.Witness = true
		if hv.State != model.HostAlive {
			addIssue(out, hostIssue(api.SeverityWarning, "witness_unreachable", name, fmt.Sprintf("witness %s is unreachable: the cluster has one vote fewer", name)))
		}
	} else if hv.FenceDev == "" {
		addIssue(out, hostIssue(api.SeverityWarning, "no_fence_device", name, fmt.Sprintf("host %s has no fence device: if it fails, its VMs cannot be recovered", name)))
	} else if hv.FenceCheck != nil && !hv.FenceCheck.OK && hv.State == model.HostAlive {
		addIssue(out, hostIssue(api.SeverityWarning, "fence_check_failed", name, fmt.Sprintf("fence device check of host %s failed at %s (%s): no level can fence it now; if %s fails, its VMs (%s) cannot be recovered until a device answers",
			name, hv.FenceCheck.At.Format(time.TimeOnly), trimErr(hv.FenceCheck.Error), name, listOrNone(hv.VMs))))
	}
}

// quorumRisk is the warning for a cluster in which the loss of one host
// leaves the survivors without quorum, and so without anyone to fence or
// recover: two hosts without a witness. quorum.two_node on the answering
// host (tn, nil when off) covers it: then it says whether the mode is armed
// (and who wins a split) or why it is inactive.
func quorumRisk(st *model.State, tn *twoNodeState) *api.Issue {
	var hosts []string
	for _, name := range model.SortedKeys(st.Config.Hosts) {
		if st.Config.Hosts[name].Witness {
			if tn != nil {
				break // two_node with a witness: twonode.Check says so
			}
			return nil
		}
		hosts = append(hosts, name)
	}
	if tn != nil {
		return twoNodeIssue(st, tn)
	}
	if len(hosts) != 2 {
		return nil
	}
	return &api.Issue{Code: "two_hosts_no_witness", Severity: api.SeverityWarning, Message: fmt.Sprintf(
		"two hosts and no witness: losing either %s or %s leaves the other without quorum (1 of 2 votes, 2 needed), so nothing will be fenced or recovered; add a third vote: run vmhad --witness on any small machine, or set quorum.two_node: true on both hosts (fencing then decides a split)",
		hosts[0], hosts[1])}
}

// twoNodeIssue is quorum.two_node's line in status: armed (a notice, with
// the split's winner), armed with a race that may power off both (a
// warning), or inactive (critical: the cluster is then a two-host cluster
// without a witness).
func twoNodeIssue(st *model.State, tn *twoNodeState) *api.Issue {
	peer, problems := twonode.Check(st, tn.self)
	if len(problems) > 0 {
		return &api.Issue{Code: "two_node_inactive", Severity: api.SeverityCritical, Message: fmt.Sprintf(
			"quorum.two_node is set on %s but inactive: %s; until this is fixed, losing a host may leave the other without quorum, and nothing is fenced or recovered",
			tn.self, strings.Join(problems, "; "))}
	}
	winner, race := twonode.Race(st, tn.self, peer)
	msg := fmt.Sprintf("two_node: the survivor of a split keeps the quorum by fencing the other first (%s and %s; %s)", tn.self, peer, race)
	if tn.action != "" && tn.action != twonode.Idle {
		msg += "; now: " + tn.reason
	}
	if winner == "" {
		return &api.Issue{Code: "two_node_race", Severity: api.SeverityWarning, Message: msg}
	}
	return &api.Issue{Code: "two_node", Severity: api.SeverityInfo, Message: msg}
}

// evacuationOf is host's evacuation, or nil.
func evacuationOf(evs []api.Evacuation, host string) *api.Evacuation {
	for i := range evs {
		if evs[i].Host == host {
			return &evs[i]
		}
	}
	return nil
}

func clusterAdmin(cm *model.ClusterMaintenance) api.AdminState {
	return api.AdminState{State: api.AdminClusterMaintenance, Since: cm.At, By: cm.By, Reason: cm.Reason}
}

// hostAdmin are the states operators put host in, and the notices that
// say so: drained or draining (vmha evacuate), storage maintenance (vmha
// evacuate --storage), maintenance (vmha host maintenance), standby and
// maintenance in cluster.yaml, and the cluster's maintenance.
func hostAdmin(st *model.State, host string, rules *decide.Rules, ev *api.Evacuation) ([]api.AdminState, []api.Issue) {
	admin := []api.AdminState{}
	var notes []api.Issue
	if ev != nil {
		a := api.AdminState{Since: ev.At, By: ev.By, Done: ev.Done, Storage: ev.Storage}
		var msg string
		switch {
		case ev.Storage != "":
			a.State = api.AdminStorageMaintenance
			msg = fmt.Sprintf("host %s is in storage maintenance of %s (by %s since %s): its VMs on %s %s; vmha host online %s ends it",
				host, ev.Storage, ev.By, ev.At.Format(time.DateTime), ev.Storage, map[bool]string{true: "have moved away", false: fmt.Sprintf("are moving away (%d left, %d moving)", ev.Left, ev.Moving)}[ev.Done], host)
		case ev.Done:
			a.State = api.AdminDrained
			msg = fmt.Sprintf("host %s is drained (by %s since %s): nothing is placed on it; vmha host online %s ends it", host, ev.By, ev.At.Format(time.DateTime), host)
		default:
			a.State = api.AdminDraining
			msg = fmt.Sprintf("host %s is being drained (by %s since %s): %d VMs left, %d moving; nothing new is placed on it", host, ev.By, ev.At.Format(time.DateTime), ev.Left, ev.Moving)
		}
		admin = append(admin, a)
		notes = append(notes, hostIssue(api.SeverityInfo, "host_"+strings.ReplaceAll(a.State, "-", "_"), host, msg))
	}
	if mt := st.Status.Maintenance[host]; mt != nil {
		admin = append(admin, api.AdminState{State: api.AdminMaintenance, Since: mt.At, By: mt.By, Reason: mt.Reason})
		notes = append(notes, hostIssue(api.SeverityInfo, "host_maintenance", host, fmt.Sprintf(
			"host %s is in maintenance (by %s since %s%s): it is not fenced if it fails, its VMs are neither moved nor recovered, and nothing new starts there; vmha host maintenance %s --off ends it",
			host, mt.By, mt.At.Format(time.DateTime), map[bool]string{true: ": " + mt.Reason, false: ""}[mt.Reason != ""], host)))
	}
	if rules != nil && rules.Spec != nil {
		for _, h := range rules.Spec.Hosts {
			if h.Name != host {
				continue
			}
			if h.Standby {
				admin = append(admin, api.AdminState{State: api.AdminStandby, Reason: "cluster.yaml"})
				notes = append(notes, hostIssue(api.SeverityInfo, "host_standby", host, fmt.Sprintf("host %s is in standby (cluster.yaml): no VM is placed on it", host)))
			}
			if h.Maintenance {
				admin = append(admin, api.AdminState{State: api.AdminRulesMaintenance, Reason: "cluster.yaml"})
				notes = append(notes, hostIssue(api.SeverityInfo, "host_rules_maintenance", host, fmt.Sprintf("host %s is in maintenance in cluster.yaml: the placement engine leaves its VMs where they are and places nothing new there", host)))
			}
		}
	}
	if cm := st.Config.Maintenance; cm != nil {
		admin = append(admin, clusterAdmin(cm))
	}
	return admin, notes
}

func because(reason string) string {
	if reason == "" {
		return ""
	}
	return ": " + reason
}

// ageSeconds is how long before now t was, in whole seconds (never
// negative: a host's clock may run ahead of this one's).
func ageSeconds(now, t time.Time) *int64 {
	return new(max(int64(now.Sub(t)/time.Second), 0))
}

// observeVM fills in what the VM's host agent last reported of it: the
// source of a live migration, else its placed host, else any host that
// reports it (an unplaced or unmanaged VM, one found running elsewhere),
// one where it is active first.
func observeVM(v *api.VM, st *model.State, members decide.Members, c statusClock) {
	var cands []string
	if v.MigratingFrom != "" {
		cands = append(cands, v.MigratingFrom)
	}
	if v.Host != "" {
		cands = append(cands, v.Host)
	}
	host := ""
	var ob model.VMObserve
	for _, h := range cands {
		if o := st.Status.Observed[h]; o != nil {
			if x, ok := o.VMs[v.Name]; ok {
				host, ob = h, x
				break
			}
		}
	}
	if host == "" {
		for _, h := range model.SortedKeys(st.Status.Observed) {
			x, ok := st.Status.Observed[h].VMs[v.Name]
			if !ok {
				continue
			}
			if host == "" || (model.DomainState(x.State).Active() && !model.DomainState(ob.State).Active()) {
				host, ob = h, x
			}
		}
	}
	if host == "" {
		// Nobody reports it: the placed host's report still dates what
		// status knows.
		host = v.Host
	} else {
		v.Actual, v.ActualHost, v.ActualSince = ob.State, host, ob.Since
		if !ob.Since.IsZero() {
			v.ActualAgeSeconds = ageSeconds(c.now, ob.Since)
		}
	}
	if o := st.Status.Observed[host]; o != nil && !o.At.IsZero() {
		at := c.reportAt(host, o)
		v.ReportAt, v.ReportAgeSeconds = at, ageSeconds(c.now, at)
		v.ReportStale = reportStale(st, members, host, o, c)
	}
}

// reportStale reports whether host's report o no longer tells what runs
// there now: it is old, or from an earlier life of the host's vmhad, or the
// host is unreachable or lost.
func reportStale(st *model.State, members decide.Members, host string, o *model.Observation, c statusClock) bool {
	if c.reportOld(host, o) {
		return true
	}
	if hs := st.Status.Hosts[host]; hs != nil && hs.State != model.HostAlive {
		return true
	}
	m, known := members[host]
	return known && (m.Status == decide.MemberFailed || (o.Boot != "" && m.Tags[tagBoot] != "" && m.Tags[tagBoot] != o.Boot))
}

// vmFailures are vm's fail counts, by host.
func vmFailures(st *model.State, vm string, now time.Time) []api.VMFailure {
	out := []api.VMFailure{}
	byHost := st.Status.Failures[vm]
	for _, h := range model.SortedKeys(byHost) {
		f := byHost[h]
		if f == nil || f.Count == 0 {
			continue
		}
		vf := api.VMFailure{Host: h, Count: f.Count, Last: f.Last, Error: f.Error}
		if !f.Last.IsZero() {
			vf.LastAgeSeconds = *ageSeconds(now, f.Last)
		}
		out = append(out, vf)
	}
	return out
}

// vmIssues are the problems and notices of one VM: what its target asks
// against what its host reports.
func vmIssues(st *model.State, v api.VM, t decide.Target, now time.Time) []api.Issue {
	var out []api.Issue
	active := model.DomainState(v.Actual).Active()
	seen := "not reported by any host"
	if v.Actual != "" {
		seen = fmt.Sprintf("%s on %s", v.Actual, v.ActualHost)
	}
	by := ""
	switch t.Source {
	case "operator":
		by = fmt.Sprintf(", set by %s%s", t.By, because(t.Reason))
	case "rules":
		by = ", set in cluster.yaml"
	}
	switch {
	case t.Target == model.TargetIgnored:
		out = append(out, vmIssue(api.SeverityInfo, "vm_unmanaged", v.Name, fmt.Sprintf(
			"vm %s is unmanaged (target ignored%s): vmha neither starts, stops, moves nor recovers it; last seen %s", v.Name, by, seen)))
		return out
	case !t.Target.Runs():
		msg := fmt.Sprintf("vm %s is kept %s (target %s%s)", v.Name, t.Target, t.Target, by)
		if active {
			msg += fmt.Sprintf("; still %s on %s", v.Actual, v.ActualHost)
		}
		out = append(out, vmIssue(api.SeverityInfo, "vm_stopped", v.Name, msg))
		if active && !v.ReportStale && st.Config.Maintenance == nil && v.ActualAgeSeconds != nil && time.Duration(*v.ActualAgeSeconds)*time.Second > vmRunGrace {
			out = append(out, vmIssue(api.SeverityWarning, "vm_not_stopped", v.Name, fmt.Sprintf(
				"vm %s should be %s but has been %s on %s since %s", v.Name, t.Target, v.Actual, v.ActualHost, v.ActualSince.Format(time.DateTime))))
		}
	default:
		out = append(out, vmRunIssues(st, v, now)...)
	}
	if n := len(v.Failures); n > 0 && t.Target != model.TargetIgnored {
		var parts []string
		for _, f := range v.Failures {
			p := fmt.Sprintf("%d× on %s", f.Count, f.Host)
			if !f.Last.IsZero() {
				p += " (last at " + f.Last.Format(time.DateTime)
				if f.Error != "" {
					p += ": " + trimErr(f.Error)
				}
				p += ")"
			}
			parts = append(parts, p)
		}
		out = append(out, vmIssue(api.SeverityWarning, "vm_failures", v.Name, fmt.Sprintf(
			"vm %s failed %s; vmha vm cleanup %s clears the count once the cause is fixed", v.Name, strings.Join(parts, ", "), v.Name)))
	}
	return out
}

// vmRunIssues are the problems of a VM the cluster keeps running.
func vmRunIssues(st *model.State, v api.VM, now time.Time) []api.Issue {
	frozen := ""
	if st.Config.Maintenance != nil {
		frozen = " (the cluster is in maintenance: nothing is started)"
	}
	switch {
	case v.Host == "":
		return []api.Issue{vmIssue(api.SeverityCritical, "vm_not_placed", v.Name, fmt.Sprintf("vm %s is not placed: %s%s", v.Name, v.Reason, frozen))}
	case v.Error != "":
		return []api.Issue{vmIssue(api.SeverityCritical, "vm_error", v.Name, fmt.Sprintf("vm %s on %s: %s", v.Name, v.Host, v.Error))}
	case v.MigratingFrom != "" || v.ReportStale || v.ReportAt.IsZero():
		// Moving, or nothing current to compare with: the host's
		// problems (lost, stale reports) say why.
		return nil
	}
	if hs := st.Status.Hosts[v.Host]; hs != nil && hs.State != model.HostAlive {
		return nil
	}
	if model.DomainState(v.Actual).Active() && v.ActualHost == v.Host {
		return nil
	}
	p := st.Status.Placements[v.Name]
	if p == nil || now.Sub(p.Since) < vmRunGrace || !v.ReportAt.After(p.Since) {
		return nil
	}
	var msg string
	switch {
	case v.Actual == "" || v.ActualHost != v.Host:
		msg = fmt.Sprintf("vm %s should run on %s, but %s does not report it%s", v.Name, v.Host, v.Host, frozen)
	case now.Sub(v.ActualSince) < vmRunGrace:
		return nil
	default:
		msg = fmt.Sprintf("vm %s should run on %s, but %s reports it %s since %s%s", v.Name, v.Host, v.Host, v.Actual, v.ActualSince.Format(time.DateTime), frozen)
	}
	return []api.Issue{vmIssue(api.SeverityCritical, "vm_not_running", v.Name, msg)}
}

func (n *Node) vmView(st *model.State, name string) api.VM { return vmView(st, name, n.members()) }

// vmView is one VM as status shows it. Its state comes from its host's
// latest report, and only from one this host's current life made: a report
// from before the host's vmhad restarted (another boot id in gossip) or from
// a host gossip cannot reach says nothing about now.
func vmView(st *model.State, name string, members decide.Members) api.VM {
	vm := st.Config.VMs[name]
	v := api.VM{Name: name, Prefer: vm.Prefer, MemoryMiB: vm.MemoryMiB, VCPUs: vm.VCPUs, State: "pending", Reason: "waiting for placement", Failures: []api.VMFailure{}, Admin: []api.AdminState{}}
	if pin := st.Status.Pins[name]; pin != nil && pin.Active(time.Now()) {
		v.PinnedTo = pin.Host
	}
	p := st.Status.Placements[name]
	if p == nil {
		return v
	}
	v.Host, v.Reason, v.Generation, v.Since = p.Host, p.Reason, p.Generation, p.Since
	v.LastMove = moveView(p)
	if p.MigrateFrom != "" {
		v.MigratingFrom, v.MigrationID, v.State = p.MigrateFrom, p.MigrationID, "migrating"
		return v
	}
	if p.Host == "" {
		v.State = "stopped"
		return v
	}
	if hs := st.Status.Hosts[p.Host]; hs != nil && hs.State != model.HostAlive {
		v.State = "unknown (host " + string(hs.State) + ")"
		return v
	}
	o := st.Status.Observed[p.Host]
	if o == nil {
		return v
	}
	ob, ok := o.VMs[name]
	if !ok {
		return v
	}
	m, known := members[p.Host]
	switch {
	case known && o.Boot != "" && m.Tags[tagBoot] != "" && m.Tags[tagBoot] != o.Boot:
		v.State, v.Reason = "unknown", fmt.Sprintf("no report from %s since its vmhad restarted (last: %s)", p.Host, ob.State)
	case known && m.Status == decide.MemberFailed:
		v.State, v.Reason = "unknown", fmt.Sprintf("%s is unreachable in gossip (last report: %s at %s)", p.Host, ob.State, o.At.Format(time.TimeOnly))
	default:
		v.State, v.Since, v.Error = ob.State, ob.Since, ob.Error
	}
	return v
}

func memberStatus(members decide.Members, name string) string {
	m, ok := members[name]
	if !ok {
		return "unknown"
	}
	switch m.Status {
	case decide.MemberAlive:
		return "alive"
	case decide.MemberLeaving:
		return "leaving"
	case decide.MemberLeft:
		return "left"
	case decide.MemberFailed:
		return "failed"
	}
	return "unknown"
}

// quorum explains who decides, in plain words.
func quorum(voters []string, members decide.Members, leader string) api.Quorum {
	q := api.Quorum{Voters: voters, AliveVoters: []string{}}
	if q.Voters == nil {
		q.Voters = []string{}
	}
	for _, v := range voters {
		if m, ok := members[v]; ok && m.Status == decide.MemberAlive {
			q.AliveVoters = append(q.AliveVoters, v)
		}
	}
	q.Needed = len(voters)/2 + 1
	var missing []string
	alive := map[string]bool{}
	for _, v := range q.AliveVoters {
		alive[v] = true
	}
	for _, v := range voters {
		if !alive[v] {
			missing = append(missing, v)
		}
	}
	q.Quorate = len(voters) > 0 && len(q.AliveVoters) >= q.Needed && leader != ""
	switch {
	case len(voters) == 0:
		q.Explanation = "the cluster has not formed yet: waiting for bootstrap_expect hosts to join"
	case q.Quorate:
		q.Explanation = fmt.Sprintf("%d of %d voters alive, %d needed; %s decides", len(q.AliveVoters), len(voters), q.Needed, leader)
		if len(missing) > 0 {
			q.Explanation += "; missing: " + strings.Join(missing, ", ")
		}
	default:
		q.Explanation = fmt.Sprintf("no quorum: %d of %d voters reachable, %d needed (missing: %s); running VMs are kept and nothing new starts", len(q.AliveVoters), len(voters), q.Needed, listOrNone(missing))
	}
	return q
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}
