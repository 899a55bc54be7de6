package cluster

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/cluster/decide"
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
	if n.coord != nil && n.IsLeader() {
		checks = n.coord.Checks()
		beats = n.coord.Liveness()
	}
	s := buildStatus(st, members, n.cfg.NodeName, leader, n.raft.CurrentTerm(), voters, checks, n.compiledRules(st.Config.Rules))
	s.Security = n.security()
	addStorageLiveness(s, beats)
	s.Problems = append(s.Problems, n.diskProblems(members)...)
	if missing := n.waitingForAll(members); len(missing) > 0 {
		s.Quorum.WaitingForAll = missing
		msg := fmt.Sprintf("waiting for all hosts (quorum.wait_for_all) after a cold start: %s not seen yet; until every host is seen at once, nothing is fenced or placed. If a host is gone for good: vmha host remove HOST", strings.Join(missing, ", "))
		s.Quorum.Explanation = msg + "; " + s.Quorum.Explanation
		s.Problems = append([]string{msg}, s.Problems...)
	}
	return s
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
			s.Problems = append(s.Problems, fmt.Sprintf("host %s is isolated, not dead: it still writes its storage heartbeat; its VMs may still be running and writing, so they are recovered only after it is fenced (vmha fence confirm is refused)", h.Name))
		case "silent":
			s.Problems = append(s.Problems, fmt.Sprintf("host %s looks dead: its storage heartbeat stopped too", h.Name))
		}
	}
}

// buildStatus is the pure part of Status, tested without a cluster.
func buildStatus(st *model.State, members decide.Members, self, leader string, term uint64, voters []string, checks map[string][]fencing.DeviceCheck, rules *decide.Rules) *api.Status {
	out := &api.Status{Node: self, Leader: leader, Term: term, Hosts: []api.Host{}, VMs: []api.VM{}, Problems: []string{}}
	out.Quorum = quorum(voters, members, leader)
	if !out.Quorum.Quorate {
		out.Problems = append(out.Problems, out.Quorum.Explanation)
	}
	out.Evacuations = evacuationViews(st)
	for _, e := range out.Evacuations {
		for _, s := range e.Stuck {
			out.Problems = append(out.Problems, fmt.Sprintf("evacuation of %s: %s (it stays; --on-stuck stop-restart or a deadline moves it by stopping it)", e.Host, s))
		}
	}
	if off := st.Config.FencingOff; off != nil {
		out.FencingOff = off
		out.Problems = append(out.Problems, fmt.Sprintf("%s (turned off by %s at %s; vmha fence enable turns it on)", DoubleRunRisk, off.By, off.At.Format(time.DateTime)))
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
		if t := st.Config.Fencing[name]; t != nil && len(t.Levels) > 0 {
			hv.FenceDev = t.Describe()
			hv.FenceCheck = hostCheck(checks[name])
		}
		if hs := st.Status.Hosts[name]; hs != nil {
			hv.State, hv.Reason, hv.Since = hs.State, hs.Reason, hs.Since
			hv.RecoveryID, hv.LostAt, hv.FencedAt = hs.RecoveryID, hs.LostAt, hs.FencedAt
		}
		hv.SeenAlive = seenAlive(st.Status.Hosts[name])
		out.Problems = append(out.Problems, fenceProblems(st, name)...)
		if mt := st.Status.Maintenance[name]; mt != nil {
			hv.Maintenance = mt
			out.Problems = append(out.Problems, fmt.Sprintf("host %s is in maintenance (by %s since %s%s): it is not fenced if it fails, its VMs are neither moved nor recovered, and nothing new starts there; vmha host maintenance %s --off ends it",
				name, mt.By, mt.At.Format(time.DateTime), map[bool]string{true: ": " + mt.Reason, false: ""}[mt.Reason != ""], name))
		}
		switch hv.State {
		case model.HostLost:
			out.Problems = append(out.Problems, fmt.Sprintf("host %s is lost (%s); fencing it before its VMs (%s) restart elsewhere", name, hv.Reason, listOrNone(hv.VMs)))
		case model.HostFenceFailed:
			msg := fmt.Sprintf("host %s is lost and fencing failed: %s; its VMs (%s) will not be restarted until fencing succeeds (retrying)", name, trimErr(hv.Reason), listOrNone(hv.VMs))
			if h.Watchdog > 0 && st.Status.Hosts[name] != nil && !st.Status.Hosts[name].LostAt.IsZero() {
				msg += fmt.Sprintf(", or until its own watchdog (%s) has reset it: the host stops petting it once cut off from the quorum, so it counts as reset %s after it was lost", h.Watchdog, model.WatchdogWait(h.Watchdog, 0).Round(time.Second))
			}
			out.Problems = append(out.Problems, msg)
		}
		if h.Witness {
			hv.Witness = true
			if hv.State != model.HostAlive {
				out.Problems = append(out.Problems, fmt.Sprintf("witness %s is unreachable: the cluster has one vote fewer", name))
			}
		} else if hv.FenceDev == "" {
			out.Problems = append(out.Problems, fmt.Sprintf("host %s has no fence device: if it fails, its VMs cannot be recovered", name))
		} else if hv.FenceCheck != nil && !hv.FenceCheck.OK && hv.State == model.HostAlive {
			out.Problems = append(out.Problems, fmt.Sprintf("fence device check of host %s failed at %s (%s): no level can fence it now; if %s fails, its VMs (%s) cannot be recovered until a device answers",
				name, hv.FenceCheck.At.Format(time.TimeOnly), trimErr(hv.FenceCheck.Error), name, listOrNone(hv.VMs)))
		}
		out.Hosts = append(out.Hosts, hv)
	}
	for _, name := range model.SortedKeys(st.Config.Expected) {
		e := st.Config.Expected[name]
		out.Problems = append(out.Problems, fmt.Sprintf("host %s was announced by %s at %s and has not joined yet (start its vmhad with join: set)", name, e.By, e.At.Format(time.DateTime)))
	}
	for _, name := range model.SortedKeys(st.Config.VMs) {
		v := vmView(st, name, members)
		if v.Host == "" {
			out.Problems = append(out.Problems, fmt.Sprintf("vm %s is not placed: %s", name, v.Reason))
		} else if v.Error != "" {
			out.Problems = append(out.Problems, fmt.Sprintf("vm %s on %s: %s", name, v.Host, v.Error))
		}
		out.VMs = append(out.VMs, v)
	}
	return out
}

func (n *Node) vmView(st *model.State, name string) api.VM { return vmView(st, name, n.members()) }

// vmView is one VM as status shows it. Its state comes from its host's
// latest report, and only from one this host's current life made: a report
// from before the host's vmhad restarted (another boot id in gossip) or from
// a host gossip cannot reach says nothing about now.
func vmView(st *model.State, name string, members decide.Members) api.VM {
	vm := st.Config.VMs[name]
	v := api.VM{Name: name, Prefer: vm.Prefer, MemoryMiB: vm.MemoryMiB, VCPUs: vm.VCPUs, State: "pending", Reason: "waiting for placement"}
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
