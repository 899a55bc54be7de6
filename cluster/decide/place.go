package decide

import (
	"strings"

	"github.com/vmha/vmha/cluster/command"
	"github.com/vmha/vmha/clusterspec"
	"github.com/vmha/vmha/model"
	"github.com/vmha/vmha/placement"
)

// The placement rules of a running cluster are a cluster.yaml (the same
// file `vmha plan` reads offline) kept in the replicated state: policy,
// host capacities, attributes, standby and maintenance, VM utilization,
// priorities, stickiness, and the constraints. Hosts and VMs themselves
// come from the cluster (registration, vmha vm add); the file only adds
// what placement needs to know about them.

// Rules are a cluster.yaml compiled once (the runner keeps them until the
// text changes).
type Rules struct {
	Text  string
	Spec  *clusterspec.Spec
	Base  placement.Input
	hosts map[string]clusterspec.Host
	vms   map[string]placement.VMInfo
}

// CompileRules parses and checks a cluster.yaml's placement rules.
func CompileRules(text string) (*Rules, error) {
	r := &Rules{Text: text, hosts: map[string]clusterspec.Host{}, vms: map[string]placement.VMInfo{}}
	if text == "" {
		r.Base.Policy = placement.Policy{Strategy: placement.StrategyBalanced}
		return r, nil
	}
	spec, err := clusterspec.Parse([]byte(text))
	if err != nil {
		return nil, err
	}
	base, err := spec.Input(nil)
	if err != nil {
		return nil, err
	}
	if base.Policy.Strategy == "" {
		// Pacemaker's default strategy ignores capacity. vmha plan keeps
		// that meaning (it is compared with crm_simulate); the running
		// cluster never puts more on a host than it holds, so here an
		// unset strategy is "utilization": capacity is a hard limit, and
		// the scores decide as under the default one.
		base.Policy.Strategy = placement.StrategyUtilization
	}
	if spec.Policy.DefaultStickiness == nil {
		// A VM that may move live stays where it runs unless moving
		// gains something: without any stickiness, two placements of
		// equal score can each make the engine prefer the other, and the
		// VMs move back and forth for ever (the exploration found a pair
		// of anti-affine VMs doing so). Pacemaker's pcs gives new
		// clusters the same default (resource-stickiness=1).
		base.Policy.DefaultStickiness = 1
	}
	r.Spec, r.Base = spec, base
	for _, h := range spec.Hosts {
		r.hosts[h.Name] = h
	}
	for _, v := range base.VMs {
		r.vms[v.Name] = v
	}
	return r, nil
}

// rules are the view's compiled rules, compiled now if the runner gave
// none (or stale ones).
func (v *View) rules() (*Rules, error) {
	if v.Rules != nil && v.Rules.Text == v.State.Config.Rules {
		return v.Rules, nil
	}
	r, err := CompileRules(v.State.Config.Rules)
	if err == nil {
		v.Rules = r
	}
	return r, err
}

// EngineInput builds the placement engine's input from the replicated
// state, gossip and the cluster's rules. A VM that cannot move live and
// runs on a usable host is held where it is (stickiness INFINITY): the
// leader never stops and restarts a running VM to follow a score, so the
// plan must not count it elsewhere.
func EngineInput(v *View) (placement.Input, error) {
	st := v.State
	rules, err := v.rules()
	if err != nil {
		return placement.Input{Policy: placement.Policy{Strategy: placement.StrategyBalanced}, Now: v.Now}, err
	}
	in := placement.Input{Policy: rules.Base.Policy, Now: v.Now}
	known := func(vm, host string) bool {
		_, vok := st.Config.VMs[vm]
		h, hok := st.Config.Hosts[host]
		return vok && (host == "" || (hok && !h.Witness))
	}
	for _, l := range rules.Base.Locations {
		if known(l.VM, l.Host) {
			in.Locations = append(in.Locations, l)
		}
	}
	for _, l := range rules.Base.LocationRules {
		if known(l.VM, "") {
			in.LocationRules = append(in.LocationRules, l)
		}
	}
	for _, c := range rules.Base.Colocations {
		if known(c.VM, "") && known(c.With, "") {
			in.Colocations = append(in.Colocations, c)
		}
	}
	in.LocationRules = append(in.LocationRules, storageRules(v)...)
	cond := map[string]placement.HostCondition{}
	for _, name := range model.SortedKeys(st.Config.Hosts) {
		h := st.Config.Hosts[name]
		if h.Witness {
			continue
		}
		hi := placement.HostInfo{Name: name, Condition: HostCondition(st, name, v.Members), Capacity: defaultCapacity(h)}
		sh, described := rules.hosts[name]
		if described {
			if len(sh.Capacity) > 0 {
				hi.Capacity = sh.Capacity
			}
			hi.Standby, hi.Maintenance = sh.Standby, sh.Maintenance
		}
		hi.Attributes = hostAttributes(st, v.Members, name, sh.Attributes)
		cond[name] = hi.Condition
		in.Hosts = append(in.Hosts, hi)
	}
	for _, name := range model.SortedKeys(st.Config.VMs) {
		vi, locs := vmInput(v, rules, cond, name)
		in.VMs = append(in.VMs, vi)
		in.Locations = append(in.Locations, locs...)
	}
	if rules.Spec != nil {
		// node-health-strategy: the hosts' #health-* attributes as
		// location scores (docs/health.md).
		rules.Spec.Policy.Health().Apply(&in)
	}
	return in, nil
}

// vmInput is one VM as the engine sees it, and the locations its pin and
// preferred host add.
func vmInput(v *View, rules *Rules, cond map[string]placement.HostCondition, name string) (placement.VMInfo, []placement.Location) {
	st := v.State
	vm := st.Config.VMs[name]
	vi, ok := rules.vms[name]
	if !ok {
		vi = placement.VMInfo{Name: name}
	}
	applyLifecycle(v, rules, &vi)
	if len(vi.Utilization) == 0 {
		vi.Utilization = map[string]int64{"memory": clampInt(vm.MemoryMiB)}
	}
	vi.Current = currentHost(st, name)
	if _, ok := cond[vi.Current]; !ok {
		vi.Current = ""
	}
	if vi.Current != "" && cond[vi.Current] == placement.Usable && !vi.AllowMigrate {
		inf := placement.Infinity
		vi.Stickiness = &inf
		// Without rules (cluster.yaml or storage readiness) nothing stops
		// or moves a running VM, not even a host found fuller than its
		// registered memory (VMs adopted where they ran): it keeps what it
		// runs, counted.
		// A VM kept off its host by its fail count is not held there.
		// Nor is one an operator wants stopped.
		vi.Pinned = rules.Spec == nil && v.Settings.Disks == nil && !bannedOn(vi, vi.Current, v.Now) && vi.Target != placement.Stopped
	}
	var locs []placement.Location
	if pin := st.Status.Pins[name]; pin != nil && pin.Active(v.Now) {
		if _, ok := cond[pin.Host]; ok {
			locs = append(locs, placement.Location{VM: name, Host: pin.Host, Score: placement.Infinity})
		}
	}
	if vm.Prefer != "" {
		if _, ok := cond[vm.Prefer]; ok {
			locs = append(locs, placement.Location{VM: name, Host: vm.Prefer, Score: placement.PreferScore})
		}
	}
	return vi, locs
}

// currentHost is where a VM is placed, or (not yet placed) where an agent
// reports it active.
func currentHost(st *model.State, vm string) string {
	if p := st.Status.Placements[vm]; p != nil {
		return p.Host
	}
	// Not yet placed: adopt it where it already runs, so that adding a
	// VM that runs somewhere keeps it there.
	return activeOn(st, vm)
}

// HostAttributes are host's attributes as placement sees them (see
// hostAttributes), with the rules' ones from rules (nil: none).
func HostAttributes(st *model.State, members Members, host string, rules *Rules) map[string]string {
	var fromRules map[string]string
	if rules != nil {
		fromRules = rules.hosts[host].Attributes
	}
	return hostAttributes(st, members, host, fromRules)
}

// hostAttributes merges a host's attributes, later ones winning: the
// rules file's, the permanent ones (vmha host attr set), the transient ones
// of the host's current boot, and the live ones it gossips (pingd).
func hostAttributes(st *model.State, members Members, host string, fromRules map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range fromRules {
		out[k] = v
	}
	for k, v := range st.Config.HostAttrs[host] {
		out[k] = v
	}
	m, seen := members[host]
	if ta := st.Status.TransientAttrs[host]; ta != nil && seen && ta.Boot == m.Tags[TagBoot] {
		for k, v := range ta.Attrs {
			out[k] = v
		}
	}
	if seen {
		for k, v := range m.Tags {
			if strings.HasPrefix(k, TagAttr) {
				out[strings.TrimPrefix(k, TagAttr)] = v
			}
		}
	}
	return out
}

// defaultCapacity is a host's capacity when cluster.yaml gives none: its
// memory only. vCPUs are overcommitted on most clusters (eight vCPUs of
// guests per core is common), so counting them as a hard limit would
// leave VMs stopped that run fine; an operator who wants a vCPU limit
// states it as utilization (cpu) in cluster.yaml.
func defaultCapacity(h *model.Host) map[string]int64 {
	return map[string]int64{"memory": clampInt(h.MemoryMiB)}
}

func clampInt(m uint64) int64 {
	const maxV = 1 << 50
	if m > maxV {
		return maxV
	}
	return int64(m)
}

// storageRules turns each VM's storage into placement rules: a VM may run
// only where every cluster file system holding its disks is ready, which
// vmha explain shows as the rule "storage.NAME ne ready or storage.NAME
// not_defined" at -INFINITY.
func storageRules(v *View) []placement.LocationRule {
	if v.Settings.Disks == nil {
		return nil
	}
	st := v.State
	var out []placement.LocationRule
	for _, name := range model.SortedKeys(st.Config.VMs) {
		for _, fs := range v.Settings.Disks.Filesystems(st.Config.VMs[name]) {
			for _, h := range model.SortedKeys(st.Status.Evacuations) {
				if st.Status.Evacuations[h].Storage == fs {
					// In maintenance on h: its VMs leave and none comes.
					out = append(out, placement.LocationRule{VM: name, Rule: placement.Rule{Score: -placement.Infinity,
						Expressions: []placement.Expression{{Attribute: "#uname", Operation: "eq", Value: h, Type: "string"}}}})
				}
			}
			attr := StorageAttrPrefix + fs
			out = append(out, placement.LocationRule{VM: name, Rule: placement.Rule{
				Score: -placement.Infinity, BoolOp: "or",
				Expressions: []placement.Expression{
					{Attribute: attr, Operation: "ne", Value: "ready", Type: "string"},
					{Attribute: attr, Operation: "not_defined"},
				},
			}})
		}
	}
	return out
}

// activeOn is a host whose agent reports vm active ("" none). A fenced
// host's reports are forgotten when it is fenced, so this never waits on a
// host that is powered off.
func activeOn(st *model.State, vm string) string {
	for _, h := range model.SortedKeys(st.Status.Observed) {
		if o := st.Status.Observed[h].VMs[vm]; model.DomainState(o.State).Active() {
			return h
		}
	}
	return ""
}

// HostCondition is what placement may do with a host.
func HostCondition(st *model.State, name string, members Members) placement.HostCondition {
	switch hostState(st, name) {
	case model.HostLost, model.HostFenceFailed:
		return placement.Lost
	case model.HostFenced:
		return placement.Released
	}
	if st.Status.Maintenance[name] != nil {
		// Daemon maintenance: its VMs stay, nothing new goes there.
		return placement.Offline
	}
	if e := st.Status.Evacuations[name]; e != nil && e.Storage == "" {
		// Draining: its VMs are moved by the evacuation, and nothing
		// new goes there (vmha host online ends it).
		return placement.Offline
	}
	if members.Alive(name) {
		return placement.Usable
	}
	return placement.Offline
}

// ObservedRunning reports whether host's agent reports vm running.
func ObservedRunning(st *model.State, host, vm string) bool {
	o := st.Status.Observed[host]
	return o != nil && o.VMs[vm].State == string(model.DomainRunning)
}

// place commits a host for every VM that needs one, and carries out what
// the rules want of the others (placeByRules).
func (b *builder) place() {
	st := b.v.State
	if st.Config.Rules == "" && !b.v.Settings.Storage && b.v.Settings.Disks == nil && len(st.Status.Pins) == 0 &&
		len(st.Config.VMStates) == 0 && len(st.Status.Failures) == 0 && !b.needsHost() {
		// Without rules, pins or storage, a VM on a host that is
		// usable, offline or lost stays where it is (stickiness
		// INFINITY, kept, or blocked): only VMs without a host, or on a
		// released or unknown host, are placed. None here: an idle pass
		// skips the solve.
		return
	}
	b.placeByRules()
}

// needsHost reports whether some VM has no host, or one that is released
// (fenced) or no longer a host that runs VMs.
func (b *builder) needsHost() bool {
	st := b.v.State
	for name := range st.Config.VMs {
		cur := currentHost(st, name)
		h := st.Config.Hosts[cur]
		if cur == "" || h == nil || h.Witness || hostState(st, cur) == model.HostFenced {
			return true
		}
	}
	return false
}

// recoveryOf is the recovery a VM on host belongs to when it is placed
// anew: the host's, if it was fenced.
func (b *builder) recoveryOf(host string) string {
	if hs := b.v.State.Status.Hosts[host]; hs != nil && hs.State == model.HostFenced {
		return hs.RecoveryID
	}
	return ""
}

func (b *builder) commitPlacements(ps []model.Placement, msg string) {
	if len(ps) == 0 {
		return
	}
	if !b.commit(&command.Command{Op: command.OpPlace, Placements: ps}, nil) {
		return
	}
	for _, p := range ps {
		l := Info
		if p.Host == "" {
			l = Warn
		}
		b.log(note(l, msg, "recovery_id", p.RecoveryID, "migration_id", p.MigrationID, "vm", p.VM, "host", p.Host, "from", p.MigrateFrom, "reason", p.Reason))
	}
	for _, p := range ps {
		b.nudge(p.Host)
		b.nudge(p.MigrateFrom)
	}
}

// placeByRules carries out the engine's own actions (Result.Actions, what
// vmha plan shows), in step order, where the cluster can:
//   - a start or a recovery is committed once no other host reports the VM
//     active;
//   - a stop is committed;
//   - a migration is committed as a live move when the target takes live
//     migrations, the VM runs, and the migration limits leave room;
//   - a move of a running VM that cannot move live (the engine holds such
//     VMs with stickiness INFINITY, so only a hard reason moves them:
//     capacity, a priority, a -INFINITY rule) is committed as a cold move:
//     shut down on its host, then started on the target;
//   - a VM on a host that left cleanly stays assigned to it.
//
// Whatever arrives on a host must fit there counting what has not left yet
// (VMs still moving away, or stopping): the engine counts the end state,
// the hosts live through the steps. What does not fit waits for a pass
// that sees the room.
func (b *builder) placeByRules() {
	in, err := EngineInput(b.v)
	if err != nil {
		b.log(standing(Error, "placement rules do not apply to the cluster; nothing placed", "error", err.Error()))
		return
	}
	// The engine explains only the VMs whose placement changes: an idle
	// pass (nothing to do) pays for the solve, not for 50,000
	// explanations.
	r, err := placement.Solve(in, placement.Options{})
	if err != nil {
		b.log(standing(Error, "placement refused the cluster's state", "error", err.Error()))
		return
	}
	conds := map[string]placement.HostCondition{}
	for _, h := range in.Hosts {
		conds[h.Name] = h.Condition
	}
	b.leaveForbidden(in, r)
	todo := append(b.doable(in, r, conds), b.homeless(in, r, conds)...)
	if len(todo) == 0 {
		return
	}
	names := make([]string, len(todo))
	for i, a := range todo {
		names[i] = a.VM
	}
	why := map[string]string{}
	if rx, err := placement.Solve(in, placement.Options{Explain: names}); err == nil {
		for _, n := range names {
			if ex := rx.Explanations[n]; ex != nil {
				why[n] = ex.Reason
			}
		}
	}
	var commits []model.Placement
	for _, a := range todo {
		switch a.Action {
		case placement.ActMigrate:
			commits = append(commits, model.Placement{VM: a.VM, Host: a.To, MigrateFrom: a.From, MigrationID: b.v.NewID("mig-"),
				Reason: "moved live by the placement rules: " + why[a.VM]})
		case placement.ActStop:
			if c, known := conds[a.From]; a.From != "" && (!known || c == placement.Released) {
				// Its host was fenced and no host can take it now.
				commits = append(commits, model.Placement{VM: a.VM, Host: "", Reason: why[a.VM], RecoveryID: b.recoveryOf(a.From)})
				continue
			}
			commits = append(commits, model.Placement{VM: a.VM, Host: "", Reason: "stopped: " + why[a.VM]})
		case placement.ActMove:
			if c, known := conds[a.From]; a.From != "" && known && c == placement.Usable {
				commits = append(commits, model.Placement{VM: a.VM, Host: a.To, MigrateFrom: a.From, MigrationID: b.v.NewID("mv-"), Cold: true,
					Reason: "moved by the placement rules (it cannot move live: shut down there, started here): " + why[a.VM]})
				continue
			}
			fallthrough
		default:
			commits = append(commits, model.Placement{VM: a.VM, Host: a.To, Reason: why[a.VM], RecoveryID: b.recoveryOf(currentHost(b.v.State, a.VM))})
		}
	}
	b.commitPlacements(commits, "placement committed (rules)")
}

// homeless are the VMs of fenced (or removed) hosts the engine finds no
// host for: their placement says so (no host, and why), instead of naming
// a host that is off. They are written as stops from their old host.
func (b *builder) homeless(in placement.Input, r *placement.Result, conds map[string]placement.HostCondition) []placement.Action {
	st := b.v.State
	var out []placement.Action
	for _, v := range in.VMs {
		p := st.Status.Placements[v.Name]
		if p == nil || p.Host == "" || p.MigrateFrom != "" || r.Placement[v.Name] != "" || r.Blocked[v.Name] != "" {
			continue
		}
		if c, known := conds[p.Host]; !known || c == placement.Released {
			out = append(out, placement.Action{VM: v.Name, Action: placement.ActStop, From: p.Host})
		}
	}
	return out
}

// doable are the engine's actions the cluster carries out this pass.
func (b *builder) doable(in placement.Input, r *placement.Result, conds map[string]placement.HostCondition) []placement.Action {
	st := b.v.State
	fl := b.flights(in.Policy.MigrationLimit)
	room := newRoom(st, in)
	// The rules move VMs only from a settled cluster: a plan made while
	// moves are under way counts them where they go, not where they are,
	// and two such plans can send VMs back and forth for ever (the
	// exploration found a pair of anti-affine VMs doing so). Starts,
	// recoveries and stops do not wait.
	settled := true
	for _, p := range st.Status.Placements {
		if p.MigrateFrom != "" {
			settled = false
			break
		}
	}
	var todo []placement.Action
	planned := map[string]bool{}
	for _, a := range r.Actions {
		a = restartIfFailed(st, a, conds)
		moves := a.Action == placement.ActMigrate || (a.Action == placement.ActMove && conds[a.From] == placement.Usable)
		if moves && !settled {
			continue
		}
		if planned[a.VM] || !b.mayAct(a, r, conds) {
			// (A VM planned already: the engine broke a cycle into a
			// stop now and a start later; the start waits for a pass
			// that sees the stop.)
			continue
		}
		if a.To != "" && !room.fits(a.To, a.VM) {
			continue // waits until what leaves the host has left
		}
		if moves {
			if fl.Full(a.From, a.To) != "" {
				continue // the next pass, when a slot is free
			}
			fl.Add(a.From, a.To)
		}
		if a.To != "" {
			room.add(a.To, a.VM)
		}
		todo = append(todo, a)
		planned[a.VM] = true
	}
	return todo
}

// mayAct says whether the cluster carries out action a now, apart from
// room and migration limits.
func (b *builder) mayAct(a placement.Action, r *placement.Result, conds map[string]placement.HostCondition) bool {
	st := b.v.State
	if p := st.Status.Placements[a.VM]; p != nil && p.MigrateFrom != "" {
		return false // moving: its end is decided by the move
	}
	if r.Blocked[a.VM] != "" {
		return false
	}
	if e := st.Status.Evacuations[a.From]; a.From != "" && e != nil && !e.Done && e.Covers(a.VM) {
		return false // the evacuation moves it, at its own pace
	}
	switch a.Action {
	case placement.ActStart, placement.ActRecover:
		// Still reported active somewhere: it starts once that host
		// reports it stopped.
		return activeOn(st, a.VM) == ""
	case placement.ActStop:
		return conds[a.From] == placement.Usable
	case placement.ActMigrate:
		h := st.Config.Hosts[a.To]
		return h != nil && h.LibvirtURI != "" && ObservedRunning(st, a.From, a.VM)
	case placement.ActMove:
		c, known := conds[a.From]
		if c == placement.Usable && activeOn(st, a.VM) == "" && failedOn(st, a.VM, a.From) {
			return true // failed there, runs nowhere: restarted elsewhere
		}
		return !known || c == placement.Released || (c == placement.Usable && ObservedRunning(st, a.From, a.VM))
	}
	return false
}

// room is what each host holds while actions run: every VM placed on it,
// moving away from it or arriving this pass, by utilization key.
type room struct {
	enforce bool
	cap     map[string]map[string]int64
	used    map[string]map[string]int64
	util    map[string]map[string]int64
}

func newRoom(st *model.State, in placement.Input) *room {
	rm := &room{enforce: in.Policy.Strategy != placement.StrategyDefault,
		cap: map[string]map[string]int64{}, used: map[string]map[string]int64{}, util: map[string]map[string]int64{}}
	for _, h := range in.Hosts {
		rm.cap[h.Name] = h.Capacity
		rm.used[h.Name] = map[string]int64{}
	}
	for _, v := range in.VMs {
		rm.util[v.Name] = v.Utilization
		if v.Current != "" {
			rm.add(v.Current, v.Name)
		}
		if p := st.Status.Placements[v.Name]; p != nil && p.MigrateFrom != "" {
			rm.add(p.MigrateFrom, v.Name) // still there until the move ends
		}
	}
	return rm
}

func (rm *room) add(host, vm string) {
	u := rm.used[host]
	if u == nil {
		return
	}
	for k, v := range rm.util[vm] {
		u[k] += v
	}
}

// fits reports whether vm fits on host now. Under the default strategy
// capacity is not a limit (Pacemaker's meaning).
func (rm *room) fits(host, vm string) bool {
	if !rm.enforce {
		return true
	}
	for k, v := range rm.util[vm] {
		if c, ok := rm.cap[host][k]; ok && rm.used[host][k]+v > c {
			return false
		}
	}
	return true
}
