package decide

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vmha/vmha/cluster/command"
	"github.com/vmha/vmha/model"
	"github.com/vmha/vmha/placement"
	"github.com/vmha/vmha/rebalance"
)

// Evacuation policies for VMs that cannot move live.
const (
	OnStuckFail        = "fail"
	OnStuckStopRestart = "stop-restart"
)

// Flights counts the moves under way against every migration limit, the
// one place they are kept: migration.max_per_target and
// migration.max_cluster from the host's config, and the rules'
// migration-limit (moves per host, in or out, as Pacemaker counts it).
// Evacuations, rebalancing and the rules together never exceed them.
type Flights struct {
	perTarget, cluster, perHost int
	into, touching              map[string]int
	total                       int
}

func (b *builder) flights(perHost int) *Flights {
	return CountFlights(b.v.State, b.v.Settings, perHost)
}

// CountFlights counts the moves under way in st.
func CountFlights(st *model.State, s Settings, perHost int) *Flights {
	f := &Flights{perTarget: s.MaxPerTarget, cluster: s.MaxCluster, perHost: perHost, into: map[string]int{}, touching: map[string]int{}}
	for _, p := range st.Status.Placements {
		if p.MigrateFrom != "" {
			f.into[p.Host]++
			f.touching[p.Host]++
			f.touching[p.MigrateFrom]++
			f.total++
		}
	}
	return f
}

// Full says why one more move from src into to must wait, or "".
func (f *Flights) Full(src, to string) string {
	switch {
	case f.cluster > 0 && f.total >= f.cluster:
		return fmt.Sprintf("%d moves under way in the cluster (migration.max_cluster)", f.total)
	case f.perTarget > 0 && f.into[to] >= f.perTarget:
		return fmt.Sprintf("%s already takes %d moves (migration.max_per_target)", to, f.into[to])
	case f.perHost > 0 && f.touching[to] >= f.perHost:
		return fmt.Sprintf("%s already has %d moves under way (the rules' migration-limit)", to, f.touching[to])
	case f.perHost > 0 && f.touching[src] >= f.perHost:
		return fmt.Sprintf("%s already has %d moves under way (the rules' migration-limit)", src, f.touching[src])
	}
	return ""
}

// Add counts one more move from src into to.
func (f *Flights) Add(src, to string) {
	f.into[to]++
	f.touching[to]++
	f.touching[src]++
	f.total++
}

// MigrationLimit is the rules' migration-limit (0 when the rules do not
// apply).
func (v *View) MigrationLimit() int {
	if r, err := v.rules(); err == nil {
		return r.Base.Policy.MigrationLimit
	}
	return 0
}

// endMovesOfFenced ends moves whose source was fenced: the VM is not on the
// source any more, so it is the target's (running there if the move
// completed, or started there by its agent).
func (b *builder) endMovesOfFenced() {
	st := b.v.State
	var ends []model.Placement
	for _, vm := range model.SortedKeys(st.Status.Placements) {
		p := st.Status.Placements[vm]
		if p.MigrateFrom == "" {
			continue
		}
		if hs := st.Status.Hosts[p.MigrateFrom]; hs != nil && hs.State == model.HostFenced {
			// Running on the target: the handover was done; else the
			// target starts it, which is a restart.
			rec := &model.MoveRecord{ID: p.MigrationID, From: p.MigrateFrom, To: p.Host, Outcome: model.MoveLive}
			if p.Cold || !ObservedRunning(st, p.Host, vm) {
				rec.Outcome, rec.Why = model.MoveRestart, fmt.Sprintf("source %s was fenced during the move", p.MigrateFrom)
				if p.Fallback != "" {
					rec.Why = p.Fallback + "; " + rec.Why
				}
			}
			ends = append(ends, model.Placement{VM: vm, Host: p.Host, RecoveryID: hs.RecoveryID, Moved: rec,
				Reason: fmt.Sprintf("source %s of live migration %s was fenced; the VM is %s's", p.MigrateFrom, p.MigrationID, p.Host)})
		}
	}
	b.commitPlacements(ends, "move ended: its source was fenced")
}

// Usable reports whether host may take a VM now: a registered, alive,
// non-witness host gossip reports alive.
func Usable(st *model.State, members Members, host string) bool {
	h := st.Config.Hosts[host]
	if h == nil || h.Witness {
		return false
	}
	if hostState(st, host) != model.HostAlive {
		return false
	}
	return members.Alive(host)
}

// usesFS reports whether vm has a disk on the cluster file system fs.
func usesFS(s Settings, vm *model.VM, fs string) bool {
	return s.Disks != nil && slices.Contains(s.Disks.Filesystems(vm), fs)
}

// CheckTarget says why to cannot take vm live from src, or nil.
func CheckTarget(v *View, vm *model.VM, src, to string) error {
	return checkTarget(v, vm, src, to, true)
}

// CheckColdTarget says why to cannot take vm shut down on src and started
// there (vmha relocate), or nil.
func CheckColdTarget(v *View, vm *model.VM, src, to string) error {
	return checkTarget(v, vm, src, to, false)
}

func checkTarget(v *View, vm *model.VM, src, to string, live bool) error {
	st := v.State
	h := st.Config.Hosts[to]
	switch {
	case h == nil:
		return &command.ValidationError{Field: "to", Err: fmt.Errorf("unknown host %q (known: %v)", to, model.SortedKeys(st.Config.Hosts))}
	case to == src:
		return &command.ValidationError{Field: "to", Err: fmt.Errorf("vm %s already runs on %s", vm.Name, to)}
	case h.Witness:
		return &command.ValidationError{Field: "to", Err: fmt.Errorf("%s is a witness: it runs no VM", to)}
	case !Usable(st, v.Members, to):
		return &command.ConflictError{What: fmt.Sprintf("host %s is not alive: it cannot take vm %s", to, vm.Name)}
	case live && h.LibvirtURI == "":
		return &command.ConflictError{What: fmt.Sprintf("host %s takes no live migration (its migration.libvirt_uri is not set)", to)}
	case st.Status.Evacuations[to] != nil && st.Status.Evacuations[to].Storage == "":
		return &command.ConflictError{What: fmt.Sprintf("host %s is being evacuated: vmha host online %s first", to, to)}
	case st.Status.Evacuations[to] != nil && usesFS(v.Settings, vm, st.Status.Evacuations[to].Storage):
		return &command.ConflictError{What: fmt.Sprintf("host %s has %s in maintenance, which holds vm %s's disks: vmha host online %s first", to, st.Status.Evacuations[to].Storage, vm.Name, to)}
	}
	if free := FreeMiB(st, to); free < vm.MemoryMiB {
		return &command.ConflictError{What: fmt.Sprintf("host %s has %d MiB free, vm %s needs %d MiB", to, free, vm.Name, vm.MemoryMiB)}
	}
	return nil
}

// PickTarget asks the placement engine where vm goes when it may not stay
// on src and may go only to hosts that take it live now (CheckTarget): the
// same rules, colocations, capacity and tie-breaks as every other decision.
// It returns the host and the engine's reason.
func PickTarget(v *View, vm *model.VM, src string) (string, string, error) {
	in, err := EngineInput(v)
	if err != nil {
		return "", "", err
	}
	for i := range in.VMs {
		if in.VMs[i].Name == vm.Name {
			// It is asked to leave: not pinned where it runs.
			in.VMs[i].Pinned = false
		}
	}
	var why []string
	for _, h := range in.Hosts {
		if h.Name == src {
			continue
		}
		if err := CheckTarget(v, vm, src, h.Name); err != nil {
			why = append(why, err.Error())
			in.Locations = append(in.Locations, placement.Location{VM: vm.Name, Host: h.Name, Score: -placement.Infinity})
		}
	}
	in.Locations = append(in.Locations, placement.Location{VM: vm.Name, Host: src, Score: -placement.Infinity})
	r, err := placement.Solve(in, placement.Options{Explain: []string{vm.Name}})
	if err != nil {
		return "", "", err
	}
	to := r.Placement[vm.Name]
	reason := ""
	if ex := r.Explanations[vm.Name]; ex != nil {
		reason = ex.Reason
	}
	if to == "" {
		msg := fmt.Sprintf("no other host can take vm %s live: %s", vm.Name, reason)
		if len(why) > 0 {
			msg += " (" + strings.Join(why, "; ") + ")"
		}
		return "", "", &command.ConflictError{What: msg + "; vmha explain " + vm.Name + " shows every host's verdict"}
	}
	return to, reason, nil
}

// FreeMiB is a host's memory minus that of the VMs placed on it or moving
// to it.
func FreeMiB(st *model.State, host string) uint64 {
	h := st.Config.Hosts[host]
	if h == nil {
		return 0
	}
	var used uint64
	for name, p := range st.Status.Placements {
		if p.Host == host {
			if v := st.Config.VMs[name]; v != nil {
				used += v.MemoryMiB
			}
		}
	}
	if used >= h.MemoryMiB {
		return 0
	}
	return h.MemoryMiB - used
}

// EvacuationMove is where one VM of an evacuated host goes: To, live or
// not, or Stuck (why it cannot move).
type EvacuationMove struct {
	VM    string
	To    string
	Live  bool
	Stuck string
}

// PlanEvacuation asks the placement engine where each VM on host goes when
// host runs nothing (the same rules, colocations, capacity and tie-breaks
// as every other decision), then says whether each move can be live.
func PlanEvacuation(v *View, host string, e *model.Evacuation) []EvacuationMove {
	st := v.State
	var vms []string
	for _, vm := range model.SortedKeys(st.Status.Placements) {
		p := st.Status.Placements[vm]
		if p.Host == host && p.MigrateFrom == "" && st.Config.VMs[vm] != nil && (e == nil || e.Covers(vm)) {
			vms = append(vms, vm)
		}
	}
	if len(vms) == 0 {
		return nil
	}
	in, err := EngineInput(v)
	var r *placement.Result
	if err == nil {
		for i := range in.Hosts {
			if in.Hosts[i].Name == host && (e == nil || e.Storage == "") {
				// Planned as if it had been released: its VMs need a
				// host, and it can take none of them.
				in.Hosts[i].Condition = placement.Released
			}
		}
		r, err = placement.Solve(in, placement.Options{Explain: vms})
	}
	var moves []EvacuationMove
	for _, vm := range vms {
		mv := EvacuationMove{VM: vm}
		switch {
		case err != nil:
			mv.Stuck = "placement cannot plan: " + err.Error()
		case r.Placement[vm] == "" || r.Placement[vm] == host:
			why := "no other host can take it"
			if ex := r.Explanations[vm]; ex != nil && ex.Reason != "" {
				why += ": " + ex.Reason
			}
			mv.Stuck = why
		default:
			mv.To = r.Placement[vm]
			switch {
			case st.Config.Hosts[mv.To].LibvirtURI == "":
				mv.Stuck = fmt.Sprintf("%s takes no live migration (migration.libvirt_uri unset)", mv.To)
			case !ObservedRunning(st, host, vm):
				mv.Stuck = "not running, so it cannot move live"
			default:
				mv.Live = true
			}
		}
		moves = append(moves, mv)
	}
	return moves
}

// evacuations moves the VMs of evacuating hosts, at most Parallel at once
// per host: live where it can, by stop-and-start where the policy (or a
// passed deadline) allows it.
func (b *builder) evacuations() {
	st := b.v.State
	fl := b.flights(b.v.MigrationLimit())
	for _, host := range model.SortedKeys(st.Status.Evacuations) {
		e := st.Status.Evacuations[host]
		if e.Done || !Usable(st, b.v.Members, host) {
			continue
		}
		inFlight, left := 0, 0
		for vm, p := range st.Status.Placements {
			switch {
			case !e.Covers(vm):
			case p.MigrateFrom == host:
				inFlight++
			case p.Host == host:
				left++
			}
		}
		if left == 0 && inFlight == 0 {
			done := *e
			done.Done, done.Stuck = true, nil
			done.MovedLive, done.Restarted = EvacuationCounts(st, e)
			counts := MoveCounts(done.MovedLive, done.Restarted)
			b.commit(&command.Command{Op: command.OpEvacuation, Evacuation: &done, IfEvacuation: e.ID, Why: "no VM is placed on it any more: " + counts},
				note(Info, "evacuation done: no VM left on the host", "host", host, "storage", e.Storage, "moved_live", done.MovedLive, "restarted", done.Restarted))
			continue
		}
		b.evacuationMoves(fl, host, e, inFlight)
	}
}

func (b *builder) evacuationMoves(fl *Flights, host string, e *model.Evacuation, inFlight int) {
	force := e.OnStuck == OnStuckStopRestart || (!e.Deadline.IsZero() && b.now().After(e.Deadline))
	var commits []model.Placement
	stuck := map[string]string{}
	for _, mv := range PlanEvacuation(b.v, host, e) {
		if inFlight >= e.Parallel {
			break
		}
		if mv.To != "" && (mv.Live || force) {
			if fl.Full(host, mv.To) != "" {
				continue // waits for a slot; the next pass retries
			}
			fl.Add(host, mv.To)
		}
		switch {
		case mv.To == "":
			stuck[mv.VM] = mv.Stuck
		case mv.Live:
			commits = append(commits, model.Placement{VM: mv.VM, Host: mv.To, MigrateFrom: host, MigrationID: b.v.NewID("mig-"),
				Reason: fmt.Sprintf("evacuating %s (by %s): moved live", host, e.By)})
			inFlight++
		case force:
			commits = append(commits, model.Placement{VM: mv.VM, Host: mv.To, MigrateFrom: host, MigrationID: b.v.NewID("mv-"), Cold: true,
				Reason: fmt.Sprintf("evacuating %s (by %s): %s; shut down there and started here", host, e.By, mv.Stuck)})
			inFlight++
		default:
			stuck[mv.VM] = mv.Stuck
		}
	}
	b.commitPlacements(commits, "evacuation move committed")
	if !sameStuck(stuck, e.Stuck) {
		upd := *e
		upd.Stuck = stuck
		b.commit(&command.Command{Op: command.OpEvacuation, Evacuation: &upd, IfEvacuation: e.ID}, nil)
	}
}

// EvacuationCounts counts the VMs whose last move took them off e's host
// since e began, by outcome.
func EvacuationCounts(st *model.State, e *model.Evacuation) (live, restarted int) {
	for vm, p := range st.Status.Placements {
		if m := p.Moved; m != nil && m.From == e.Host && e.Covers(vm) && m.Arrived() && !p.Since.Before(e.At) {
			if m.Outcome == model.MoveRestart {
				restarted++
			} else {
				live++
			}
		}
	}
	return live, restarted
}

func sameStuck(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// cpuRatioLimit is the vCPU overcommit a host is taken to allow when
// cluster.yaml gives no cpu capacity: Ganeti's default instance policy
// (vcpu-ratio 4). It only shapes the balance of vCPUs; memory is the hard
// limit.
const cpuRatioLimit = 4

// RebalanceInput is the engine's input made fit for rebalancing: VMs that
// cluster.yaml does not describe may move live (the rules say nothing
// against it), a VM that is not running or is moving is left where it is,
// and a host that takes no live migration takes no VM.
func RebalanceInput(v *View, in placement.Input) placement.Input {
	st := v.State
	described := map[string]bool{}
	hostCap := map[string]bool{}
	if r, err := v.rules(); err == nil && r.Spec != nil {
		for _, vm := range r.Spec.VMs {
			described[vm.Name] = true
		}
		for _, h := range r.Spec.Hosts {
			hostCap[h.Name] = len(h.Capacity) > 0
		}
	}
	for i := range in.Hosts {
		h := &in.Hosts[i]
		mh := st.Config.Hosts[h.Name]
		if mh != nil && mh.LibvirtURI == "" {
			h.Maintenance = true
		}
		if mh != nil && !hostCap[h.Name] {
			h.Capacity = map[string]int64{"memory": clampInt(mh.MemoryMiB), "cpu": int64(mh.CPUs) * cpuRatioLimit}
		}
	}
	for i := range in.VMs {
		vi := &in.VMs[i]
		mv := st.Config.VMs[vi.Name]
		if !described[vi.Name] {
			vi.AllowMigrate, vi.Stickiness, vi.Pinned = true, nil, false
			if mv != nil {
				vi.Utilization = map[string]int64{"memory": clampInt(mv.MemoryMiB), "cpu": int64(mv.VCPUs)}
			}
		}
		p := st.Status.Placements[vi.Name]
		if p == nil || p.MigrateFrom != "" || !ObservedRunning(st, p.Host, vi.Name) {
			vi.Unmanaged = true
		}
	}
	return in
}

// RebalanceRequest is what a rebalance is asked to do.
type RebalanceRequest struct {
	MaxMoves int
	MinGain  float64
	Parallel int
}

// PlanRebalance is the plan of vmha rebalance on the cluster as it is.
func PlanRebalance(v *View, req RebalanceRequest, by string) (*model.Rebalance, error) {
	in, err := EngineInput(v)
	if err != nil {
		return nil, err
	}
	in = RebalanceInput(v, in)
	res, err := rebalance.Plan(in, rebalance.Options{MaxMoves: req.MaxMoves, MinGain: req.MinGain})
	if err != nil {
		return nil, &command.ValidationError{Field: "rebalance", Err: err}
	}
	r := &model.Rebalance{ID: v.NewID("rb-"), By: by, At: v.Now.UTC(), Before: res.Before, Planned: res.After,
		MaxMoves: req.MaxMoves, MinGain: req.MinGain, Parallel: req.Parallel, Skipped: res.Skipped, Moves: []model.RebalanceMove{}}
	for _, m := range res.Moves {
		r.Moves = append(r.Moves, model.RebalanceMove{VM: m.VM, From: m.From, To: m.To, Gain: m.Gain, Step: m.Step, State: model.MovePlanned})
	}
	return r, nil
}

// EndIfBalanced ends, before it starts, a run that has no move.
func EndIfBalanced(r *model.Rebalance) {
	if len(r.Moves) == 0 {
		r.Done, r.EndedAt, r.After, r.Note = true, r.At, r.Before, "already balanced: no move gains enough"
	}
}

// ScheduleBy names the nightly schedule as a requester.
const ScheduleBy = "schedule (rebalance.window)"

// rebalance records how moves ended, starts the next ones, ends the run
// when every move ended, and starts the nightly run in its window.
func (b *builder) rebalance() {
	st := b.v.State
	cur := st.Status.ActiveRebalance()
	if cur == nil {
		b.scheduledRebalance()
		return
	}
	cur = cloneRebalance(cur)
	changed, moving, lowest := settleMoves(st, cur)
	fl := b.flights(b.v.MigrationLimit())
	var commits []model.Placement
	for i := range cur.Moves {
		m := &cur.Moves[i]
		if m.State != model.MovePlanned || m.Step != lowest || moving >= cur.Parallel {
			continue
		}
		if earlierMoving(cur, m.Step) {
			break // a step starts when the previous one ended
		}
		p, vm := st.Status.Placements[m.VM], st.Config.VMs[m.VM]
		if vm == nil || p == nil || p.Host != m.From || p.MigrateFrom != "" || !ObservedRunning(st, m.From, m.VM) {
			m.State, m.Reason, changed = model.MoveSkipped, "the VM is no longer running on "+m.From, true
			continue
		}
		if err := CheckTarget(b.v, vm, m.From, m.To); err != nil {
			m.State, m.Reason, changed = model.MoveSkipped, err.Error(), true
			continue
		}
		if fl.Full(m.From, m.To) != "" {
			continue // next pass
		}
		fl.Add(m.From, m.To)
		m.State, m.MigrationID, changed = model.MoveMoving, b.v.NewID("mig-"), true
		moving++
		commits = append(commits, model.Placement{VM: m.VM, Host: m.To, MigrateFrom: m.From, MigrationID: m.MigrationID,
			Reason: fmt.Sprintf("rebalance %s (by %s): moved live, score gain %.4f", cur.ID, cur.By, m.Gain)})
	}
	if len(commits) > 0 {
		if !b.commit(&command.Command{Op: command.OpPlace, Placements: commits}, nil) {
			return
		}
		for _, p := range commits {
			b.log(note(Info, "rebalance move committed", "rebalance_id", cur.ID, "migration_id", p.MigrationID, "vm", p.VM, "from", p.MigrateFrom, "host", p.Host))
			b.nudge(p.MigrateFrom)
		}
	}
	ended := true
	for _, m := range cur.Moves {
		ended = ended && m.Terminal()
	}
	if ended {
		cur.Done, cur.EndedAt, changed = true, b.now().UTC(), true
		cur.MovedLive, cur.Restarted = 0, 0
		for _, m := range cur.Moves {
			switch {
			case m.State != model.MoveDone:
			case m.Outcome == model.MoveRestart:
				cur.Restarted++
			default:
				cur.MovedLive++
			}
		}
		counts := MoveCounts(cur.MovedLive, cur.Restarted)
		if cur.Note == "" {
			cur.Note = counts
		} else if !strings.Contains(cur.Note, counts) {
			cur.Note += "; " + counts
		}
		if in, err := EngineInput(b.v); err == nil {
			in = RebalanceInput(b.v, in)
			where := map[string]string{}
			for _, v := range in.VMs {
				where[v.Name] = v.Current
			}
			cur.After = rebalance.Score(in, where)
		}
	}
	if !changed {
		return
	}
	var n *Note
	if cur.Done {
		n = note(Info, "rebalance ended", "rebalance_id", cur.ID, "score_before", cur.Before, "score_after", cur.After, "moved_live", cur.MovedLive, "restarted", cur.Restarted)
	}
	b.commit(&command.Command{Op: command.OpRebalance, Rebalance: cur}, n)
}

// settleMoves records how the moves under way ended, and returns whether
// any did, how many still move, and the lowest step still planned.
func settleMoves(st *model.State, cur *model.Rebalance) (changed bool, moving, lowest int) {
	lowest = -1
	for i := range cur.Moves {
		m := &cur.Moves[i]
		if m.State == model.MoveMoving {
			p := st.Status.Placements[m.VM]
			switch {
			case p == nil:
				m.State, m.Reason = model.MoveSkipped, "the VM was removed"
			case SameMove(p.MigrationID, m.MigrationID) && p.MigrateFrom != "":
				moving++ // live, or its cold fallback
				continue
			case p.Host == m.To:
				m.State, m.Reason, m.Outcome = model.MoveDone, p.Reason, model.MoveLive
				if p.Moved != nil && SameMove(p.Moved.ID, m.MigrationID) && p.Moved.Arrived() {
					m.Outcome = p.Moved.Outcome
				}
			default:
				m.State, m.Reason = model.MoveFailed, p.Reason
			}
			changed = true
		}
		if m.State == model.MovePlanned && (lowest < 0 || m.Step < lowest) {
			lowest = m.Step
		}
	}
	return changed, moving, lowest
}

func cloneRebalance(r *model.Rebalance) *model.Rebalance {
	cp := *r
	cp.Moves = append([]model.RebalanceMove(nil), r.Moves...)
	return &cp
}

func earlierMoving(r *model.Rebalance, step int) bool {
	for _, m := range r.Moves {
		if m.Step < step && m.State == model.MoveMoving {
			return true
		}
	}
	return false
}

// scheduledRebalance starts the nightly run once per window.
func (b *builder) scheduledRebalance() {
	w := b.v.Settings.Window
	if w == nil {
		return
	}
	opened, in := WindowOpened(b.now(), w.Start, w.End)
	if !in {
		return
	}
	for _, r := range b.v.State.Status.Rebalances {
		if r.By == ScheduleBy && !r.At.Before(opened) {
			return // this window's run happened
		}
	}
	r, err := PlanRebalance(b.v, RebalanceRequest{MaxMoves: w.MaxMoves, MinGain: w.MinGain, Parallel: max(w.Parallel, 1)}, ScheduleBy)
	if err != nil {
		b.log(standing(Warn, "scheduled rebalance", "error", err.Error()))
		return
	}
	EndIfBalanced(r)
	b.commit(&command.Command{Op: command.OpRebalance, Rebalance: r},
		note(Info, "rebalance started", "rebalance_id", r.ID, "by", ScheduleBy, "moves", len(r.Moves), "score_before", r.Before, "score_planned", r.Planned))
}

// WindowOpened reports whether now is inside the daily window [start, end)
// (minutes after local midnight; end < start crosses midnight) and when
// the current window opened.
func WindowOpened(now time.Time, start, end int) (time.Time, bool) {
	mid := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, now.Location())
	minute := now.Hour()*60 + now.Minute()
	at := func(day time.Time, m int) time.Time { return day.Add(time.Duration(m) * time.Minute) }
	if start < end {
		return at(mid, start), minute >= start && minute < end
	}
	switch {
	case minute >= start:
		return at(mid, start), true
	case minute < end:
		return at(mid.AddDate(0, 0, -1), start), true
	}
	return time.Time{}, false
}

// MoveReport is how a move ended, as the source's agent reports it.
type MoveReport struct {
	// Outcome is migrated, aborted, refused or failed.
	Outcome string
	// RunningOn is where the VM was found running afterwards ("" nowhere).
	RunningOn string
	Reason    string
	Downtime  time.Duration
}

// RestartSuffix ends the migration ID of a cold fallback: the live move
// mig-x that failed without a known end goes on as mig-x/restart.
const RestartSuffix = "/restart"

// SameMove reports whether the move named id is the move orig, or the cold
// fallback that took it over.
func SameMove(id, orig string) bool {
	return orig != "" && (id == orig || id == orig+RestartSuffix)
}

// MoveEnd is the placement that ends the move p (placed on its target,
// MigrateFrom its source) as the source reports it, with how it ended
// (Moved):
//   - the VM still runs on the source: it stays there (aborted, refused
//     or failed);
//   - it runs on the target: moved live;
//   - a cold move's source stopped it and reported it inactive: the
//     target's to start (restart);
//   - a live move that left it running nowhere, or that cannot say where
//     (a refusal before the job, a result that could not be verified):
//     never the target's to start yet, since the source may still run it.
//     The move goes on as a cold one (p.MigrationID + RestartSuffix): the
//     source's agent stops the VM, confirms it inactive and reports it, and
//     only that report (or the source's fence) places it on the target.
func MoveEnd(p *model.Placement, r MoveReport) (model.Placement, error) {
	end := model.Placement{VM: p.VM}
	rec := &model.MoveRecord{ID: p.MigrationID, From: p.MigrateFrom, To: p.Host, Outcome: r.Outcome, Why: r.Reason}
	switch r.RunningOn {
	case p.MigrateFrom:
		end.Host = p.MigrateFrom
		what := "live migration"
		if p.Cold {
			what = "stop for a move"
		}
		end.Reason = fmt.Sprintf("%s to %s %s: %s; the VM stays on %s", what, p.Host, r.Outcome, r.Reason, p.MigrateFrom)
	case p.Host:
		end.Host = p.Host
		rec.Outcome, rec.Why = model.MoveLive, ""
		end.Reason = fmt.Sprintf("moved live from %s (%s, downtime %s)", p.MigrateFrom, p.MigrationID, r.Downtime)
		if p.Cold {
			// Running on the target after a stop on the source: whatever
			// started it there, the guest was restarted.
			rec.Outcome, rec.Why = model.MoveRestart, restartWhy(p)
			end.Reason = fmt.Sprintf("restarted on %s after it was shut down on %s (%s)", p.Host, p.MigrateFrom, p.MigrationID)
		}
	case "":
		if p.Cold {
			end.Host = p.Host
			rec.Outcome, rec.Why = model.MoveRestart, restartWhy(p)
			end.Reason = fmt.Sprintf("shut down on %s and started on %s (%s)", p.MigrateFrom, p.Host, p.MigrationID)
			if p.Fallback != "" {
				end.Reason += ": " + p.Fallback
			}
			break
		}
		why := fmt.Sprintf("live migration %s: %s", r.Outcome, r.Reason)
		return model.Placement{VM: p.VM, Host: p.Host, MigrateFrom: p.MigrateFrom, MigrationID: p.MigrationID + RestartSuffix, Cold: true,
			RecoveryID: p.RecoveryID, Fallback: why,
			Reason: fmt.Sprintf("%s, and %s cannot say the VM is stopped: %s stops it (confirmed inactive) before %s starts it", why, p.MigrateFrom, p.MigrateFrom, p.Host)}, nil
	default:
		return end, &command.ValidationError{Field: "running_on", Err: fmt.Errorf("%q is neither the source %s nor the target %s", r.RunningOn, p.MigrateFrom, p.Host)}
	}
	end.Moved = rec
	return end, nil
}

// restartWhy says why the cold move p was not live.
func restartWhy(p *model.Placement) string {
	if p.Fallback != "" {
		return p.Fallback
	}
	return "planned as a stop and start (it cannot move live)"
}

// MoveCounts counts moves by outcome: "3 moved live, 1 restarted".
func MoveCounts(live, restarted int) string {
	return fmt.Sprintf("%d moved live, %d restarted", live, restarted)
}
