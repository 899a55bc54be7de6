package cluster

import (
	"fmt"
	"time"

	"github.com/hashicorp/serf/serf"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/clusterspec"
	"github.com/vmha/vmha/config"
	"github.com/vmha/vmha/model"
	"github.com/vmha/vmha/placement"
	"github.com/vmha/vmha/rebalance"
)

// A rebalance travels through the log like an evacuation: the leader plans
// it with the pure rebalance package on the engine's input, commits the
// plan (OpRebalance), and then, pass after pass, commits each move as a
// live migration once the earlier steps ended and a slot is free
// (migration caps and the run's parallelism), and records how each ended.
// A new leader picks the run up where the log says it stands.

// cpuRatioLimit is the vCPU overcommit a host is taken to allow when
// cluster.yaml gives no cpu capacity: Ganeti's default instance policy
// (vcpu-ratio 4). It only shapes the balance of vCPUs; memory is the hard
// limit.
const cpuRatioLimit = 4

// rebalanceInput is the engine's input made fit for rebalancing: VMs that
// cluster.yaml does not describe may move live (the rules say nothing
// against it), a VM that is not running or is moving is left where it is,
// and a host that takes no live migration takes no VM.
func rebalanceInput(st *model.State, members map[string]serf.Member, in placement.Input) placement.Input {
	described := map[string]bool{}
	hostCap := map[string]bool{}
	if st.Config.Rules != "" {
		if spec, err := clusterspec.Parse([]byte(st.Config.Rules)); err == nil {
			for _, v := range spec.VMs {
				described[v.Name] = true
			}
			for _, h := range spec.Hosts {
				hostCap[h.Name] = len(h.Capacity) > 0
			}
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
		v := &in.VMs[i]
		mv := st.Config.VMs[v.Name]
		if !described[v.Name] {
			v.AllowMigrate, v.Stickiness = true, nil
			if mv != nil {
				v.Utilization = map[string]int64{"memory": clampInt(mv.MemoryMiB), "cpu": int64(mv.VCPUs)}
			}
		}
		p := st.Status.Placements[v.Name]
		if p == nil || p.MigrateFrom != "" || !observedRunning(st, p.Host, v.Name) {
			v.Unmanaged = true
		}
	}
	return in
}

// planRebalance is the plan of vmha rebalance on the cluster as it is.
func (c *Coordinator) planRebalance(st *model.State, members map[string]serf.Member, req api.RebalanceRequest, by string) (*model.Rebalance, error) {
	in, err := engineInput(st, members, time.Now(), c.n.cfg.Storage.Config)
	if err != nil {
		return nil, err
	}
	in = rebalanceInput(st, members, in)
	t0 := time.Now()
	res, err := rebalance.Plan(in, rebalance.Options{MaxMoves: req.MaxMoves, MinGain: req.MinGain})
	c.n.metrics.placeSeconds.Observe(time.Since(t0).Seconds())
	if err != nil {
		return nil, &ValidationError{Field: "rebalance", Err: err}
	}
	r := &model.Rebalance{ID: newID("rb-"), By: by, At: time.Now().UTC(), Before: res.Before, Planned: res.After,
		MaxMoves: req.MaxMoves, MinGain: req.MinGain, Parallel: req.Parallel, Skipped: res.Skipped, Moves: []model.RebalanceMove{}}
	for _, m := range res.Moves {
		r.Moves = append(r.Moves, model.RebalanceMove{VM: m.VM, From: m.From, To: m.To, Gain: m.Gain, Step: m.Step, State: model.MovePlanned})
	}
	return r, nil
}

// StartRebalance is vmha rebalance: the plan, committed and run unless it
// is a dry run.
func (c *Coordinator) StartRebalance(req api.RebalanceRequest, by string) (*model.Rebalance, error) {
	switch {
	case req.MaxMoves < 0:
		return nil, &ValidationError{Field: "max_moves", Err: fmt.Errorf("%d: want 0 (no cap) or more", req.MaxMoves)}
	case req.MinGain < 0 || req.MinGain != req.MinGain:
		return nil, &ValidationError{Field: "min_gain", Err: fmt.Errorf("%v: want a number >= 0", req.MinGain)}
	case req.Parallel < 1:
		return nil, &ValidationError{Field: "parallel", Err: fmt.Errorf("%d: at least one move must run at a time", req.Parallel)}
	}
	st := c.n.fsm.Copy()
	if cur := st.Status.ActiveRebalance(); cur != nil {
		return nil, &ConflictError{What: fmt.Sprintf("rebalance %s (by %s) is under way; vmha rebalance cancel ends it", cur.ID, cur.By)}
	}
	r, err := c.planRebalance(st, c.n.members(), req, by)
	if err != nil || req.DryRun {
		return r, err
	}
	if len(r.Moves) == 0 {
		r.Done, r.EndedAt, r.After, r.Note = true, r.At, r.Before, "already balanced: no move gains enough"
	}
	if err := c.n.propose(&Command{Op: OpRebalance, Rebalance: r}); err != nil {
		return nil, err
	}
	c.log.Info().Str("rebalance_id", r.ID).Str("by", by).Int("moves", len(r.Moves)).Float64("score_before", r.Before).Float64("score_planned", r.Planned).Msg("rebalance started")
	c.poke()
	return r, nil
}

// CancelRebalance ends the run under way: moves under way finish, the
// others are skipped.
func (c *Coordinator) CancelRebalance(by string) (*model.Rebalance, error) {
	st := c.n.fsm.Copy()
	cur := st.Status.ActiveRebalance()
	if cur == nil {
		return nil, &ConflictError{What: "no rebalance is under way"}
	}
	for i := range cur.Moves {
		if cur.Moves[i].State == model.MovePlanned {
			cur.Moves[i].State, cur.Moves[i].Reason = model.MoveSkipped, "cancelled by "+by
		}
	}
	cur.Note = "cancelled by " + by
	if err := c.n.propose(&Command{Op: OpRebalance, Rebalance: cur}); err != nil {
		return nil, err
	}
	c.log.Warn().Str("rebalance_id", cur.ID).Str("by", by).Msg("rebalance cancelled")
	return cur, nil
}

// rebalanceStep records how moves ended, starts the next ones, ends the
// run when every move ended, and starts the nightly run in its window.
func (c *Coordinator) rebalanceStep(st *model.State, members map[string]serf.Member) {
	cur := st.Status.ActiveRebalance()
	if cur == nil {
		c.scheduledRebalance(st)
		return
	}
	changed := false
	fl := c.flights(st)
	moving, lowest := 0, -1
	for i := range cur.Moves {
		m := &cur.Moves[i]
		if m.State == model.MoveMoving {
			p := st.Status.Placements[m.VM]
			switch {
			case p == nil:
				m.State, m.Reason = model.MoveSkipped, "the VM was removed"
			case p.MigrationID == m.MigrationID && p.MigrateFrom != "":
				moving++
				continue
			case p.Host == m.To:
				m.State, m.Reason = model.MoveDone, p.Reason
			default:
				m.State, m.Reason = model.MoveFailed, p.Reason
			}
			changed = true
		}
		if m.State == model.MovePlanned && (lowest < 0 || m.Step < lowest) {
			lowest = m.Step
		}
	}
	var commits []model.Placement
	for i := range cur.Moves {
		m := &cur.Moves[i]
		if m.State != model.MovePlanned || m.Step != lowest || moving >= cur.Parallel {
			continue
		}
		if earlierMoving(cur, m.Step) {
			break // a step starts when the previous one ended
		}
		p, v := st.Status.Placements[m.VM], st.Config.VMs[m.VM]
		if v == nil || p == nil || p.Host != m.From || p.MigrateFrom != "" || !observedRunning(st, m.From, m.VM) {
			m.State, m.Reason, changed = model.MoveSkipped, "the VM is no longer running on "+m.From, true
			continue
		}
		if err := c.checkTarget(st, members, v, m.From, m.To); err != nil {
			m.State, m.Reason, changed = model.MoveSkipped, err.Error(), true
			continue
		}
		if fl.full(m.To) != "" {
			continue // next pass
		}
		fl.add(m.To)
		m.State, m.MigrationID, changed = model.MoveMoving, newID("mig-"), true
		moving++
		commits = append(commits, model.Placement{VM: m.VM, Host: m.To, MigrateFrom: m.From, MigrationID: m.MigrationID,
			Reason: fmt.Sprintf("rebalance %s (by %s): moved live, score gain %.4f", cur.ID, cur.By, m.Gain)})
	}
	if len(commits) > 0 {
		if err := c.n.propose(&Command{Op: OpPlace, Placements: commits}); err != nil {
			c.log.Error().Err(err).Msg("commit rebalance moves")
			return
		}
		for _, p := range commits {
			c.log.Info().Str("rebalance_id", cur.ID).Str("migration_id", p.MigrationID).Str("vm", p.VM).Str("from", p.MigrateFrom).Str("to", p.Host).Msg("rebalance move committed")
			c.nudge(st, p.MigrateFrom)
		}
	}
	ended := true
	for _, m := range cur.Moves {
		ended = ended && m.Terminal()
	}
	if ended {
		cur.Done, cur.EndedAt, changed = true, time.Now().UTC(), true
		if in, err := engineInput(st, members, time.Now(), c.n.cfg.Storage.Config); err == nil {
			in = rebalanceInput(st, members, in)
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
	if err := c.n.propose(&Command{Op: OpRebalance, Rebalance: cur}); err != nil {
		c.log.Error().Err(err).Msg("record rebalance progress")
		return
	}
	if cur.Done {
		c.log.Info().Str("rebalance_id", cur.ID).Float64("score_before", cur.Before).Float64("score_after", cur.After).Msg("rebalance ended")
	}
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
func (c *Coordinator) scheduledRebalance(st *model.State) {
	sc := c.n.cfg.Rebalance
	if sc.Window == "" {
		return
	}
	start, end, err := config.ParseWindow(sc.Window)
	if err != nil {
		return // refused at start-up
	}
	now := time.Now()
	opened, in := windowOpened(now, start, end)
	if !in {
		return
	}
	for _, r := range st.Status.Rebalances {
		if r.By == scheduleBy && !r.At.Before(opened) {
			return // this window's run happened
		}
	}
	if _, err := c.StartRebalance(api.RebalanceRequest{MaxMoves: sc.MaxMoves, MinGain: sc.MinGain, Parallel: sc.Parallel}, scheduleBy); err != nil {
		c.log.Warn().Err(err).Msg("scheduled rebalance")
	}
}

// scheduleBy names the nightly schedule as a requester.
const scheduleBy = "schedule (rebalance.window)"

// windowOpened reports whether now is inside the daily window [start, end)
// (minutes after local midnight; end < start crosses midnight) and when
// the current window opened.
func windowOpened(now time.Time, start, end int) (time.Time, bool) {
	mid := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, now.Location())
	min := now.Hour()*60 + now.Minute()
	at := func(day time.Time, m int) time.Time { return day.Add(time.Duration(m) * time.Minute) }
	if start < end {
		return at(mid, start), min >= start && min < end
	}
	switch {
	case min >= start:
		return at(mid, start), true
	case min < end:
		return at(mid.AddDate(0, 0, -1), start), true
	}
	return time.Time{}, false
}
