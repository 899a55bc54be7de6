package decide_test

import (
	"fmt"
	"math/rand"
	"sort"
	"strings"
	"time"

	"github.com/vmha/vmha/cluster/command"
	"github.com/vmha/vmha/cluster/decide"
	"github.com/vmha/vmha/cluster/reconcile"
	"github.com/vmha/vmha/cluster/statemachine"
	"github.com/vmha/vmha/model"
)

// The world is a model of a vmha cluster around the pure pass: the raft log
// (statemachine.Apply on one committed state, written only by a leader on
// a side that holds the majority), gossip (a host's status as the leader's
// side sees it, failed a detection delay after it went quiet), the hosts'
// agents (reconcile.Decide, the agents' own function), live migrations,
// BMCs that work, fail or hang, watchdogs, and the truth: which domains run
// on which powered host. Time is virtual; one tick is one leader pass.

const (
	tick        = 250 * time.Millisecond
	detectDelay = time.Second     // gossip declares a quiet host failed
	electDelay  = 2 * time.Second // a new leader after the old one is gone
	mergeDelay  = 2 * time.Second // gossip calls a returned host failed a while longer
	moveTime    = time.Second     // a live (or cold) move takes this long
	fenceTime   = 100 * time.Millisecond
	hangTime    = 30 * time.Second // a hung BMC's call times out
)

type simHost struct {
	name  string
	power bool // powered on
	vmhad bool // the daemon runs (gossips, answers, reconciles)
	boot  int  // the daemon's life
	side  int  // network side: hosts on the same side reach each other
	left  bool // stopped cleanly (gossip: left)
	seen  bool // gossip has seen it alive once
	bmc   string
	beat  bool // still writes its storage heartbeat when cut off
	quiet time.Time
	// declared: gossip declared it failed; back is when it became
	// reachable again (gossip merges only mergeDelay later, while its
	// API already answers: the leader's probe is the second opinion).
	declared bool
	back     time.Time
	noQuor   time.Time // since when it reaches no leader (zero: it does)
	domains  map[string]bool
	managed  map[string]bool
	witness  bool
	wd       time.Duration
	attrs    map[string]string // live attributes it gossips (#health-ipmi)
	// refuse: its live moves are refused before the job and report the
	// VM's place unknown (as a failed connection to the target does),
	// while the VM keeps running here.
	refuse bool
	// reconciled is the world version this agent last reconciled at.
	reconciled uint64
	// waitOver: this daemon's wait_for_all ended (vmhad keeps it per
	// process: a new life waits again).
	waitOver bool
	// broken are the VMs whose start fails on this host; fails the
	// agent's run of failures per VM (its backoff and its report).
	broken map[string]bool
	fails  map[string]*simFail
}

type simFail struct {
	count       int
	first, last time.Time
}

func (h *simHost) up() bool { return h.power && h.vmhad }

type fenceJob struct {
	host, rid, action, leader string
	done                      time.Time
	ok                        bool
	why                       string
}

// world is one simulated cluster.
type world struct {
	start, now time.Time
	st         *model.State
	hosts      map[string]*simHost
	names      []string
	leader     string
	leaderGone time.Time
	mem        decide.Memory
	jobs       map[string]*fenceJob
	moving     map[string]time.Time // migration id → when its source began it
	seq        int
	settings   decide.Settings
	// pass is the decision under test (decide.Pass, or a planted bug).
	pass func(*decide.View, *decide.Memory) decide.Plan
	// lines is the scenario's log; violations the broken invariants.
	lines      []string
	violations []string
	verbose    bool
	rng        *rand.Rand
	// version counts the changes of the log and the world; a pass on a
	// quiet cluster that changed nothing since an empty plan is skipped
	// (the harness's shortcut: vmhad passes every 250 ms regardless).
	version, passed uint64
	idle            bool
	// standing are the standing notes the last pass logged: a note that
	// holds pass after pass is logged once, as vmhad's runner does.
	standing map[string]bool
	rules    *decide.Rules
	// held is a pass planned by "pass hold", committed by "pass commit".
	held *decide.Plan
}

func newWorld(pass func(*decide.View, *decide.Memory) decide.Plan) *world {
	t0 := time.Date(2026, 12, 5, 3, 0, 0, 0, time.UTC)
	return &world{
		start: t0, now: t0, st: model.NewState(), hosts: map[string]*simHost{}, jobs: map[string]*fenceJob{}, moving: map[string]time.Time{},
		settings: decide.Settings{FenceRetry: 5 * time.Second, AgentInterval: time.Second, UnseenGrace: 15 * time.Second},
		pass:     pass, verbose: true,
	}
}

func (w *world) logf(format string, a ...any) {
	if !w.verbose {
		return
	}
	w.lines = append(w.lines, fmt.Sprintf("%7.2f %s", w.now.Sub(w.start).Seconds(), fmt.Sprintf(format, a...)))
}

func (w *world) violate(format string, a ...any) {
	msg := fmt.Sprintf("%.2fs: ", w.now.Sub(w.start).Seconds()) + fmt.Sprintf(format, a...)
	w.violations = append(w.violations, msg)
	w.logf("VIOLATION %s", fmt.Sprintf(format, a...))
}

// apply commits c to the log (it must come from a leader).
func (w *world) apply(c *command.Command) error {
	c.At, c.Term = w.now, 1
	var before map[string]prior
	if c.Op == command.OpPlace {
		before = w.prior(c.Placements)
	}
	if err := statemachine.Apply(w.st, c); err != nil {
		return err
	}
	w.version++
	if c.Op == command.OpPlace {
		w.checkPlacements(before, c.Placements)
	}
	return nil
}

func (w *world) mustApply(c *command.Command) {
	if err := w.apply(c); err != nil {
		panic(fmt.Sprintf("setup %s: %v", c.Op, err))
	}
}

// addHost registers a host (powered, its daemon up).
func (w *world) addHost(name string, mem uint64, witness bool, wd time.Duration) {
	h := &simHost{name: name, power: true, vmhad: true, boot: 1, bmc: "ok", domains: map[string]bool{}, managed: map[string]bool{}, witness: witness, wd: wd,
		broken: map[string]bool{}, fails: map[string]*simFail{}}
	w.hosts[name] = h
	w.names = append(w.names, name)
	sort.Strings(w.names)
	mh := &model.Host{Name: name, APIAddr: name + ":7001", MemoryMiB: mem, CPUs: 8, Witness: witness, Watchdog: wd,
		LibvirtURI: "qemu+tcp://" + name + "/system"}
	// Fence devices are the runner's business: the world's BMCs stand
	// in for them.
	w.mustApply(&command.Command{Op: command.OpRegisterHost, Host: mh})
}

func (w *world) addVM(name string, mem uint64, prefer string) {
	w.mustApply(&command.Command{Op: command.OpAddVM, VM: &model.VM{Name: name, MemoryMiB: mem, VCPUs: 1, Prefer: prefer,
		XML: "<domain type='kvm'><name>" + name + "</name></domain>"}})
}

func (w *world) newID(prefix string) string {
	w.seq++
	return fmt.Sprintf("%s%d", prefix, w.seq)
}

// reach reports whether a and b are up and on the same side.
func (w *world) reach(a, b string) bool {
	ha, hb := w.hosts[a], w.hosts[b]
	return ha != nil && hb != nil && ha.up() && hb.up() && ha.side == hb.side
}

// majoritySide is the side with more than half of all hosts up on it, or -1.
func (w *world) majoritySide() int {
	count := map[int]int{}
	for _, h := range w.hosts {
		if h.up() {
			count[h.side]++
		}
	}
	for side, n := range count {
		if 2*n > len(w.hosts) {
			return side
		}
	}
	return -1
}

// elect keeps or replaces the leader: it must be up on the majority side;
// a new one is elected electDelay after the old one went.
func (w *world) elect() {
	maj := w.majoritySide()
	if w.leader != "" {
		if h := w.hosts[w.leader]; h.up() && h.side == maj {
			return
		}
		w.logf("leader %s steps down", w.leader)
		w.leader, w.leaderGone = "", w.now
		w.version++
		w.jobs = map[string]*fenceJob{} // a deposed leader's fences stop
	}
	if maj < 0 || w.now.Sub(w.leaderGone) < electDelay {
		return
	}
	for _, n := range w.names {
		if h := w.hosts[n]; h.up() && h.side == maj {
			w.leader = n
			w.version++
			w.mem = decide.Memory{LeaderSince: w.now, Fencing: map[string]bool{}, FailedAt: map[string]time.Time{}, Probes: map[string]decide.ProbeAnswer{}, WaitOver: w.hosts[n].waitOver}
			w.logf("leader %s", n)
			return
		}
	}
}

// members is gossip as the leader sees it.
func (w *world) members() decide.Members {
	out := decide.Members{}
	for _, n := range w.names {
		h := w.hosts[n]
		m := decide.Member{Name: n, Tags: map[string]string{decide.TagBoot: fmt.Sprintf("%s-b%d", n, h.boot)}}
		for k, v := range h.attrs {
			m.Tags[decide.TagAttr+k] = v
		}
		switch {
		case w.reach(w.leader, n) && h.declared:
			m.Status = decide.MemberFailed // gossip has not merged it back yet
		case w.reach(w.leader, n):
			m.Status = decide.MemberAlive
		case h.left:
			m.Status = decide.MemberLeft
		case !h.seen:
			continue
		case w.now.Sub(h.quiet) < detectDelay:
			m.Status = decide.MemberAlive // not noticed yet
		default:
			m.Status = decide.MemberFailed
		}
		out[n] = m
	}
	return out
}

// gossip follows what gossip says of h as the leader's side sees it:
// failed detectDelay after it went quiet, alive again mergeDelay after it
// is back.
func (w *world) gossip(h *simHost) {
	r := w.leader != "" && w.reach(w.leader, h.name)
	switch {
	case !r && h.quiet.IsZero():
		h.quiet = w.now
	case !r && h.seen && !h.left && w.now.Sub(h.quiet) >= detectDelay:
		h.declared = true
	case r && !h.quiet.IsZero():
		h.quiet, h.back, h.seen = time.Time{}, w.now, true
	case r:
		h.seen = true
		if h.declared && w.now.Sub(h.back) >= mergeDelay {
			h.declared = false
			w.version++
		}
	}
}

// step runs one tick: fences finish, a leader is elected, it passes, the
// agents reconcile, and the invariants are checked.
func (w *world) step() {
	w.now = w.now.Add(tick)
	for _, n := range w.names {
		w.gossip(w.hosts[n])
	}
	w.finishFences()
	w.elect()
	if w.leader != "" && !w.quiet() {
		w.leaderPass()
	}
	w.agents()
	w.watchdogs()
	w.checkTwice()
}

// quiet reports whether the last pass decided nothing and nothing changed
// since, on a cluster where no decision depends on the clock: every host
// up on one side and alive, no fence, move, evacuation, rebalance, pin or
// maintenance.
func (w *world) quiet() bool {
	if !w.idle || w.passed != w.version || len(w.jobs) > 0 || w.settings.WaitForAll && !w.mem.WaitOver {
		return false
	}
	st := w.st.Status
	if len(st.Evacuations) > 0 || len(st.Pins) > 0 || len(st.Maintenance) > 0 || st.ActiveRebalance() != nil ||
		len(st.Failures) > 0 || w.st.Config.Maintenance != nil {
		return false
	}
	for _, n := range w.names {
		h := w.hosts[n]
		if !h.up() || h.side != w.hosts[w.leader].side {
			return false
		}
		if hs := st.Hosts[n]; hs == nil || hs.State != model.HostAlive || !hs.SeenAlive {
			return false
		}
	}
	for _, p := range st.Placements {
		if p.MigrateFrom != "" {
			return false
		}
	}
	return true
}

func (w *world) run(d time.Duration) {
	for end := w.now.Add(d); w.now.Before(end); {
		w.step()
	}
}

func (w *world) leaderPass() {
	v := &decide.View{Now: w.now, Self: w.leader, Term: 1, State: w.st.Clone(), Apply: statemachine.Apply,
		Members: w.members(), Beats: map[string]decide.Beat{}, Settings: w.settings, NewID: w.newID}
	for _, n := range w.names {
		if h := w.hosts[n]; h.power && h.beat {
			v.Beats[n] = decide.Beat{Writing: true, FS: "gfs0"}
		}
	}
	mem := w.mem
	w.passed = w.version
	plan := w.pass(v, &mem)
	standing := map[string]bool{}
	defer func() { w.standing = standing }()
	w.idle = len(plan.Steps) == 0
	if plan.WaitOver {
		w.mem.WaitOver = true
		w.hosts[w.leader].waitOver = true
	}
	for _, s := range plan.Steps {
		switch s.Kind {
		case decide.Commit:
			if err := w.apply(s.Command); err != nil {
				w.logf("commit refused: %v", err)
				return
			}
			w.logf("%s", s)
		case decide.Fence:
			w.logf("%s", s)
			w.startFence(s.Host, s.RecoveryID, s.Action)
		case decide.Probe:
			w.mem.Probes[s.Host] = decide.ProbeAnswer{At: w.now, OK: w.reach(w.leader, s.Host)}
		case decide.Log:
			if s.Note.Level != decide.Error && s.Note.Level != decide.Warn {
				continue
			}
			if s.Note.Standing {
				standing[s.String()] = true
				if w.standing[s.String()] {
					continue // logged on an earlier pass, and still so
				}
			}
			w.logf("%s", s)
		}
	}
}

func (w *world) startFence(host, rid, action string) {
	if w.mem.Fencing[host] {
		return
	}
	h := w.hosts[host]
	j := &fenceJob{host: host, rid: rid, action: action, leader: w.leader, done: w.now.Add(fenceTime), ok: true}
	switch h.bmc {
	case "fail":
		j.ok, j.why = false, "BMC does not answer"
	case "hang":
		j.ok, j.why, j.done = false, "BMC call timed out", w.now.Add(hangTime)
	}
	w.jobs[host] = j
	w.mem.Fencing[host] = true
}

// finishFences ends the fences whose time has come, as the runner's fence
// does: power off (on again for a reboot), then fenced or fence-failed.
func (w *world) finishFences() {
	for _, host := range model.SortedKeys(w.jobs) {
		j := w.jobs[host]
		if w.now.Before(j.done) {
			continue
		}
		delete(w.jobs, host)
		delete(w.mem.Fencing, host)
		if j.leader != w.leader {
			continue
		}
		if w.st.Config.FencingOff != nil {
			w.logf("fence %s skipped: fencing is off", host)
			_ = w.apply(&command.Command{Op: command.OpHostState, HostState: &command.HostStateChange{Host: host, State: model.HostFenced, Reason: "NOT fenced: fencing is off", RecoveryID: j.rid, Unfenced: true}})
			continue
		}
		if !j.ok {
			w.logf("fence %s failed: %s", host, j.why)
			w.mem.FailedAt[host] = w.now
			_ = w.apply(&command.Command{Op: command.OpHostState, HostState: &command.HostStateChange{Host: host, State: model.HostFenceFailed, Reason: j.why, RecoveryID: j.rid}})
			continue
		}
		h := w.hosts[host]
		w.powerOff(h)
		if j.action == decide.ActionReboot {
			w.powerOn(h)
		}
		w.logf("fence %s done (%s)", host, orDefault(j.action))
		_ = w.apply(&command.Command{Op: command.OpFenceRecord, Fence: &model.FenceRecord{RecoveryID: j.rid, Host: host, Level: 1, Device: "bmc-" + host, Action: "off", Started: w.now, OK: true}})
		_ = w.apply(&command.Command{Op: command.OpHostState, HostState: &command.HostStateChange{Host: host, State: model.HostFenced, Reason: "fenced (off) at level 1", RecoveryID: j.rid}})
	}
}

func orDefault(a string) string {
	if a == "" {
		return "off"
	}
	return a
}

func (w *world) powerOff(h *simHost) {
	w.version++
	h.power, h.vmhad = false, false
	h.domains = map[string]bool{}
}

func (w *world) powerOn(h *simHost) {
	w.version++
	h.power, h.vmhad, h.left = true, true, false
	h.boot++
	h.waitOver = false
	h.noQuor = time.Time{}
}

// agents: every host that reaches the leader reconciles (reconcile.Decide
// on the committed state, confirmed before each start) and reports what
// it runs; the source of a live move runs it. A host that reaches no
// leader is not synced and changes nothing.
func (w *world) agents() {
	for _, n := range w.names {
		h := w.hosts[n]
		if !h.up() || h.witness {
			continue
		}
		synced := w.leader != "" && w.reach(w.leader, n)
		if !synced {
			if h.noQuor.IsZero() {
				h.noQuor = w.now
			}
			continue
		}
		h.noQuor = time.Time{}
		if h.reconciled == w.version {
			continue // nothing changed since: the same input, the same (empty) plan
		}
		busy := w.moves(h)
		busy = w.reconcile(h) || busy
		w.observe(h)
		h.reconciled = w.version
		if busy {
			h.reconciled = 0 // a move runs: reconcile again next tick
		}
	}
}

// reconcile is one pass of h's agent: reconcile.Decide on the committed
// state, each start confirmed against it.
func (w *world) reconcile(h *simHost) (again bool) {
	n := h.name
	in := reconcile.Input{Host: n, Synced: true, Desired: map[string]reconcile.Desired{}, Domains: map[string]bool{}, Managed: h.managed,
		NotBefore: map[string]time.Time{}, Now: w.now}
	for vm, p := range w.st.Status.Placements {
		if p.Host == n || p.MigrateFrom == n || h.domains[vm] {
			in.Desired[vm] = w.desired(p, vm)
		}
	}
	for vm, active := range h.domains {
		in.Domains[vm] = active
	}
	for vm, f := range h.fails {
		if d, ok := in.Desired[vm]; !ok || d.Host != n {
			delete(h.fails, vm) // placed elsewhere: a new run when it comes back
			continue
		}
		in.NotBefore[vm] = f.last.Add(reconcile.Backoff(f.count))
	}
	plan := reconcile.Decide(in)
	again = len(plan.Deferred) > 0 // a backoff runs: look again next tick
	for _, vm := range plan.Adopt {
		h.managed[vm] = true
	}
	for _, s := range plan.Stops {
		if h.domains[s.VM] {
			w.logf("%s stops %s (%s)", n, s.VM, s.Reason)
		}
		delete(h.domains, s.VM)
		if s.Undefine {
			delete(h.managed, s.VM)
		}
	}
	for _, vm := range plan.Starts {
		p, ours := w.st.Status.Placements[vm]
		d := reconcile.Desired{}
		if ours {
			d = w.desired(p, vm)
		}
		if reconcile.Confirm(n, vm, d, ours && w.st.Config.VMs[vm] != nil) != nil {
			continue
		}
		if h.broken[vm] {
			f := h.fails[vm]
			if f == nil {
				f = &simFail{first: w.now}
				h.fails[vm] = f
			}
			f.count++
			f.last = w.now
			h.managed[vm] = true
			w.logf("%s fails to start %s (%d in a row)", n, vm, f.count)
			again = true
			continue
		}
		delete(h.fails, vm)
		h.domains[vm], h.managed[vm] = true, true
		w.logf("%s starts %s", n, vm)
	}
	return again
}

// desired is p as vm's agent reads it, held when the VM is unmanaged or the
// cluster in maintenance (as the agent's heldVMs).
func (w *world) desired(p *model.Placement, vm string) reconcile.Desired {
	if w.rules == nil || w.rules.Text != w.st.Config.Rules {
		w.rules, _ = decide.CompileRules(w.st.Config.Rules)
	}
	hold := w.st.Config.Maintenance != nil || decide.TargetOf(w.st, w.rules, vm).Target == model.TargetIgnored
	return reconcile.Desired{Host: p.Host, MigrateFrom: p.MigrateFrom, Hold: hold}
}

// moves runs the live (or cold) moves h is the source of, as its agent
// does, and reports their end to the leader.
func (w *world) moves(h *simHost) (busy bool) {
	for _, vm := range model.SortedKeys(w.st.Status.Placements) {
		p := w.st.Status.Placements[vm]
		if p.MigrateFrom != h.name {
			continue
		}
		began, ok := w.moving[p.MigrationID]
		if !ok {
			w.moving[p.MigrationID] = w.now
			busy = true // the move runs: look again next tick
			continue
		}
		if w.now.Sub(began) < moveTime && w.reach(h.name, p.Host) {
			busy = true
			continue
		}
		delete(w.moving, p.MigrationID)
		rep := decide.MoveReport{Outcome: "migrated"}
		switch {
		case p.Cold:
			delete(h.domains, vm)
			rep.RunningOn = ""
		case !h.domains[vm]:
			rep.Outcome, rep.Reason = "failed", "not running on the source"
		case h.refuse:
			rep.Outcome, rep.Reason = "refused", "connect to target "+p.Host+": connection refused"
		case w.reach(h.name, p.Host):
			delete(h.domains, vm)
			delete(h.managed, vm)
			t := w.hosts[p.Host]
			t.domains[vm], t.managed[vm] = true, true
			rep.RunningOn = p.Host
		default:
			rep.Outcome, rep.RunningOn, rep.Reason = "failed", h.name, "target unreachable"
		}
		end, err := decide.MoveEnd(p, rep)
		if err != nil {
			w.violate("move end of %s: %v", vm, err)
			continue
		}
		if err := w.apply(&command.Command{Op: command.OpPlace, Placements: []model.Placement{end}}); err == nil {
			w.logf("%s moved %s: %s", h.name, vm, end.Reason)
			if end.MigrateFrom == h.name {
				busy = true // a cold fallback: this agent runs it next
			}
		}
	}
	return busy
}

// observe reports h's domains when they changed (OpObserve).
func (w *world) observe(h *simHost) {
	boot := fmt.Sprintf("%s-b%d", h.name, h.boot)
	if old := w.st.Status.Observed[h.name]; old != nil && old.Boot == boot && len(old.VMs) == len(h.domains)+len(h.failing()) {
		same := true
		for vm, active := range h.domains {
			if o, ok := old.VMs[vm]; !ok || (o.State == string(model.DomainRunning)) != active || !o.FailedAt.Equal(h.failedAt(vm)) {
				same = false
				break
			}
		}
		for _, vm := range h.failing() {
			if o, ok := old.VMs[vm]; !ok || !o.FailedAt.Equal(h.failedAt(vm)) {
				same = false
			}
		}
		if same {
			return
		}
	}
	o := &model.Observation{Host: h.name, At: w.now, Boot: fmt.Sprintf("%s-b%d", h.name, h.boot), VMs: map[string]model.VMObserve{}}
	for vm, active := range h.domains {
		s := model.DomainShutoff
		if active {
			s = model.DomainRunning
		}
		o.VMs[vm] = model.VMObserve{State: string(s), FailedAt: h.failedAt(vm)}
	}
	for _, vm := range h.failing() {
		f := h.fails[vm]
		o.VMs[vm] = model.VMObserve{State: "failed", Since: f.first, Error: "start failed", FailedAt: f.last}
	}
	_ = w.apply(&command.Command{Op: command.OpObserve, Observation: o})
}

// failing are the VMs that failed to start on h and have no domain there.
func (h *simHost) failing() []string {
	var out []string
	for _, vm := range model.SortedKeys(h.fails) {
		if _, ok := h.domains[vm]; !ok {
			out = append(out, vm)
		}
	}
	return out
}

func (h *simHost) failedAt(vm string) time.Time {
	if f := h.fails[vm]; f != nil && !h.domains[vm] {
		return f.last
	}
	return time.Time{}
}

// watchdogs reset hosts with a watchdog that reached no leader for longer
// than its timeout: the device stops being petted and fires.
func (w *world) watchdogs() {
	for _, n := range w.names {
		h := w.hosts[n]
		if h.wd <= 0 || !h.up() || h.noQuor.IsZero() || w.now.Sub(h.noQuor) < h.wd {
			continue
		}
		w.logf("%s reset by its watchdog", n)
		w.powerOff(h)
		w.powerOn(h)
	}
}

// checkTwice is never-twice on the truth: no VM active on two powered
// hosts at once.
func (w *world) checkTwice() {
	where := map[string][]string{}
	for _, n := range w.names {
		h := w.hosts[n]
		if !h.power {
			continue
		}
		for vm, active := range h.domains {
			if active {
				where[vm] = append(where[vm], n)
			}
		}
	}
	for _, vm := range model.SortedKeys(where) {
		if len(where[vm]) > 1 && w.st.Config.FencingOff == nil {
			w.violate("never twice: %s runs on %s", vm, strings.Join(where[vm], " and "))
		}
	}
}

// prior is what a placement replaces: the VM's placement and its host's
// state before the command.
type prior struct {
	p     *model.Placement
	state model.HostState
}

func (w *world) prior(ps []model.Placement) map[string]prior {
	out := map[string]prior{}
	for _, p := range ps {
		if old := w.st.Status.Placements[p.VM]; old != nil {
			cp := *old
			pr := prior{p: &cp, state: model.HostAlive}
			if hs := w.st.Status.Hosts[old.Host]; hs != nil {
				pr.state = hs.State
			}
			out[p.VM] = pr
		}
	}
	return out
}

// checkPlacements: every placement says why; no VM is placed away from a
// host that is lost and not yet fenced, nor started elsewhere (not by a
// move) while it runs on a powered host.
func (w *world) checkPlacements(before map[string]prior, ps []model.Placement) {
	for _, p := range ps {
		if p.Reason == "" {
			w.violate("placement of %s on %q has no reason", p.VM, p.Host)
		}
		pr, ok := before[p.VM]
		if !ok || pr.p.Host == p.Host || p.Host == "" || p.MigrateFrom != "" || pr.p.MigrateFrom != "" {
			continue
		}
		if pr.state == model.HostLost || pr.state == model.HostFenceFailed {
			w.violate("%s recovered from %s before its fence confirmed (%s)", p.VM, pr.p.Host, pr.state)
		}
		if h := w.hosts[pr.p.Host]; h != nil && h.power && h.domains[p.VM] && w.st.Config.FencingOff == nil {
			w.violate("%s placed on %s while it still runs on %s", p.VM, p.Host, pr.p.Host)
		}
	}
	for _, p := range ps {
		// A move that ends on its target: its source must not run the VM
		// any more (moved live, or stopped and confirmed), or the target
		// would start a second copy.
		pr, ok := before[p.VM]
		if !ok || pr.p.MigrateFrom == "" || p.MigrateFrom != "" || p.Host != pr.p.Host {
			continue
		}
		if hs := w.st.Status.Hosts[pr.p.MigrateFrom]; hs != nil && hs.State == model.HostFenced {
			continue
		}
		if h := w.hosts[pr.p.MigrateFrom]; h != nil && h.power && h.domains[p.VM] && w.st.Config.FencingOff == nil {
			w.violate("%s's move ended on %s while its source %s still runs it", p.VM, p.Host, pr.p.MigrateFrom)
		}
	}
}

// heldPass plans a leader's pass now and holds its commits (hold), or
// commits what was held (commit), as a pass in flight does when an
// operator's command lands between its plan and its commits.
func (w *world) heldPass(what string) error {
	switch what {
	case "hold":
		v := &decide.View{Now: w.now, Self: w.leader, Term: 1, State: w.st.Clone(), Apply: statemachine.Apply,
			Members: w.members(), Beats: map[string]decide.Beat{}, Settings: w.settings, NewID: w.newID}
		mem := w.mem
		plan := w.pass(v, &mem)
		w.held = &plan
		w.logf("pass held: %d steps", len(plan.Steps))
	case "commit":
		if w.held == nil {
			return fmt.Errorf("no pass held")
		}
		for _, s := range w.held.Steps {
			if s.Kind != decide.Commit {
				continue
			}
			if err := w.apply(s.Command); err != nil {
				w.logf("commit refused: %v", err)
				break
			}
			w.logf("%s", s)
		}
		w.held = nil
	default:
		return fmt.Errorf("pass hold or pass commit, not %q", what)
	}
	return nil
}

// running says where each VM runs (truth), for assertions.
func (w *world) running(vm string) []string {
	var out []string
	for _, n := range w.names {
		if h := w.hosts[n]; h.power && h.domains[vm] {
			out = append(out, n)
		}
	}
	return out
}

// settled checks no VM is lost: once every host is back and every BMC
// works, every VM that should run runs exactly where it is placed.
func (w *world) checkSettled() {
	rules, _ := decide.CompileRules(w.st.Config.Rules)
	for _, vm := range model.SortedKeys(w.st.Config.VMs) {
		p := w.st.Status.Placements[vm]
		on := w.running(vm)
		switch t := decide.TargetOf(w.st, rules, vm).Target; {
		case t == model.TargetIgnored:
			continue // vmha leaves it as it is
		case !t.Runs():
			if len(on) > 0 {
				w.violate("%s is to be %s but runs on %v after the cluster settled", vm, t, on)
			}
			continue
		}
		switch {
		case p == nil || p.Host == "":
			w.violate("lost: %s has no host after the cluster settled", vm)
		case len(on) != 1 || on[0] != p.Host:
			w.violate("lost: %s is placed on %s but runs on %v after the cluster settled", vm, p.Host, on)
		}
	}
}
