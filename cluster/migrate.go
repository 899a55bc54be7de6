package cluster

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/cluster/decide"
	"github.com/vmha/vmha/migration"
	"github.com/vmha/vmha/model"
)

// A live migration travels through the log like every decision:
//
//  1. The leader commits the VM's placement on the target with MigrateFrom
//     set to the source (StartMigration). The target's agent does not start
//     the VM; the planner does not move it.
//  2. The source's agent sees it and runs the libvirt migration, then
//     reports the outcome and where the VM really runs (MigrationResult).
//  3. The leader commits the end (decide.MoveEnd): on the target when it
//     runs there (outcome live), back on the source when it still runs
//     there (aborted, refused or failed). A report that cannot say where
//     the VM runs (running_on "") never hands it to the target at once: the
//     move goes on as a cold one (ID + "/restart"), the source stops the VM
//     and confirms it inactive, and only that report places it on the
//     target, which starts it (outcome restart). If the source is lost
//     mid-move, the end waits for its fence; a lost target makes the
//     source's migration fail, and the VM, still on the source, goes back
//     to it.
//
// The placement that ends a move records how (model.Placement.Moved);
// vmha migrate --wait reads it from the status (api.VM.LastMove).

// StartMigration is `vmha migrate VM [--to HOST]`.
func (c *Coordinator) StartMigration(vm string, req api.MigrateRequest, requester string) (model.Placement, error) {
	to := req.To
	if req.PinTTL < 0 {
		return model.Placement{}, &ValidationError{Field: "pin_ttl", Err: fmt.Errorf("%s: want a positive duration, or 0 for a pin that never expires", req.PinTTL)}
	}
	if req.PinTTL > 0 && !req.Pin {
		return model.Placement{}, &ValidationError{Field: "pin_ttl", Err: errors.New("a pin lifetime without a pin: add pin (vmha migrate --pin --ttl D)")}
	}
	st := c.n.fsm.Copy()
	plan, err := decide.PlanMigration(c.n.view(st, c.n.members()), vm, to, requester, newID("mig-"))
	if err != nil || req.DryRun {
		// A dry run answers what the same checks decided, and commits
		// nothing.
		return plan.Placement, err
	}
	np := plan.Placement
	to, src := np.Host, np.MigrateFrom
	if err := c.n.propose(&Command{Op: OpPlace, Placements: []model.Placement{np}, By: requester}); err != nil {
		return model.Placement{}, err
	}
	c.log.Info().Str("migration_id", np.MigrationID).Str("vm", vm).Str("from", src).Str("to", to).Str("requested_by", requester).Msg("live migration committed")
	if req.Pin {
		pin := &model.Pin{VM: vm, Host: to, By: requester, At: time.Now().UTC()}
		if req.PinTTL > 0 {
			pin.Expires = pin.At.Add(req.PinTTL)
		}
		if err := c.n.propose(&Command{Op: OpPin, Pin: pin}); err != nil {
			return np, fmt.Errorf("the move to %s is under way, but the pin was not recorded: %w", to, err)
		}
		ev := c.log.Info().Str("migration_id", np.MigrationID).Str("vm", vm).Str("host", to)
		if !pin.Expires.IsZero() {
			ev = ev.Time("expires", pin.Expires)
		}
		ev.Msg("pin set")
	}
	c.nudge(st, src)
	return np, nil
}

// nudge asks host's agent to reconcile now (the timer would anyway).
func (c *Coordinator) nudge(st *model.State, host string) {
	if h := st.Config.Hosts[host]; h != nil {
		c.nudgeAddr(host, h.APIAddr)
	}
}

// nudgeAddr nudges host's agent at its API address. A nudge only shortens
// the wait: the agent's timer reconciles anyway, so an error is not worth
// more than a debug line.
func (c *Coordinator) nudgeAddr(host, addr string) {
	if addr == "" {
		return
	}
	term := c.n.raft.CurrentTerm()
	go func() {
		if err := c.n.peers.do(context.Background(), addr, 2*time.Second, "POST", api.PathNudge, api.Nudge{Term: term}, nil, nil); err != nil {
			c.log.Debug().Err(err).Str("host", host).Msg("nudge agent")
		}
	}()
}

// MigrationResult records the end of a move the source's agent reports.
func (c *Coordinator) MigrationResult(r api.MigrationResult) error {
	st := c.n.fsm.Copy()
	p := st.Status.Placements[r.VM]
	if p == nil || p.MigrationID != r.MigrationID || p.MigrateFrom == "" {
		// Already ended (a retried report, or the source was fenced).
		return nil
	}
	end, err := decide.MoveEnd(p, decide.MoveReport{Outcome: r.Outcome, RunningOn: r.RunningOn, Reason: r.Reason, Downtime: r.Downtime})
	if err != nil {
		return err
	}
	cmd := &Command{Op: OpPlace, Placements: []model.Placement{end}}
	if err := c.n.propose(cmd); err != nil {
		return err
	}
	c.n.metrics.countMoveEnds(cmd, map[string]time.Time{r.VM: p.Since}, time.Now())
	if end.MigrateFrom != "" {
		// A cold fallback: the source stops the VM before the target
		// may start it.
		c.log.Warn().Str("migration_id", p.MigrationID).Str("vm", r.VM).Str("outcome", r.Outcome).Str("reason", r.Reason).
			Str("fallback_id", end.MigrationID).Str("from", end.MigrateFrom).Str("to", end.Host).
			Msg("live migration ended without saying where the VM runs: the source stops it, then the target starts it")
		c.nudge(st, end.MigrateFrom)
		return nil
	}
	ev := c.log.Info()
	if end.Moved == nil || end.Moved.Outcome != model.MoveLive {
		ev = c.log.Warn()
	}
	outcome := r.Outcome
	if end.Moved != nil {
		outcome = end.Moved.Outcome
	}
	ev.Str("migration_id", p.MigrationID).Str("vm", r.VM).Str("outcome", outcome).Str("reported", r.Outcome).Str("running_on", r.RunningOn).Str("host", end.Host).Str("reason", r.Reason).Msg("move ended")
	if end.Host != "" {
		c.nudge(st, end.Host)
	}
	return nil
}

// moveView is how the move that placed p ended, for the status.
func moveView(p *model.Placement) *model.MoveRecord {
	if p == nil || p.Moved == nil {
		return nil
	}
	cp := *p.Moved
	return &cp
}

// migrate runs, on the source's agent, the live migration the committed
// placement asks for, and reports its end to the leader until it is taken.
func (a *Agent) migrate(ctx context.Context, p model.Placement, target *model.Host) {
	log := a.log.With().Str("migration_id", p.MigrationID).Str("vm", p.VM).Str("to", target.Name).Logger()
	mc := a.n.cfg.Migration
	// Migrate adds vm, source and target to each of its lines itself.
	m := &migration.Migrator{Log: a.log.With().Str("migration_id", p.MigrationID).Logger(), Hooks: a.migrationHooks(a.n.fsm.Copy())}
	src := migration.Endpoint{Host: a.n.cfg.NodeName, URI: a.n.cfg.HypervisorURI}
	dst := migration.Endpoint{Host: target.Name, URI: target.LibvirtURI, MigrationURI: target.MigrationURI}
	opts := migration.Options{Timeout: mc.Timeout, BandwidthMiBps: mc.BandwidthMiBps, MaxDowntime: mc.MaxDowntime, AutoConverge: mc.AutoConverge}
	last := time.Now()
	res, err := m.Migrate(ctx, p.VM, src, dst, opts, func(pr migration.Progress) {
		a.noteJob(p, target.Name, pr, "")
		if time.Since(last) > 2*time.Second {
			last = time.Now()
			log.Info().Str("progress", pr.String()).Msg("migrating")
		}
	})
	if ctx.Err() != nil {
		return // the daemon stops; the next start runs it again
	}
	rep := api.MigrationResult{VM: p.VM, MigrationID: p.MigrationID, Outcome: string(res.Outcome), RunningOn: res.RunningOn, Reason: res.Reason, Downtime: res.Job.Downtime, Wall: res.Wall}
	if err != nil && errors.Is(err, migration.ErrOnTarget) {
		rep.RunningOn = target.Name
	}
	a.noteJob(p, target.Name, migration.Progress{VM: p.VM, Phase: migration.PhaseDone, Elapsed: res.Wall}, rep.Outcome)
	log.Info().Str("outcome", rep.Outcome).Str("running_on", rep.RunningOn).Dur("wall", res.Wall).Dur("downtime", res.Job.Downtime).Msg("live migration done")
	a.reportMove(ctx, rep)
}

// coldMove is the source's half of a stop-and-start move: shut the VM down
// (gracefully, then destroy), make sure it is no longer active here, and
// report it stopped so that the leader hands it to the target.
func (a *Agent) coldMove(ctx context.Context, p model.Placement) {
	log := a.log.With().Str("migration_id", p.MigrationID).Str("vm", p.VM).Str("to", p.Host).Logger()
	start := time.Now()
	err := a.n.hv.Stop(ctx, p.VM, a.n.cfg.Agent.StopTimeout)
	a.n.metrics.agentStops.WithLabelValues(result(err)).Inc()
	rep := api.MigrationResult{VM: p.VM, MigrationID: p.MigrationID, Outcome: "stopped", RunningOn: ""}
	doms, lerr := a.listDomains(ctx)
	switch {
	case err != nil || lerr != nil:
		// Not confirmed stopped: the VM stays ours; the move ends back here.
		rep.Outcome, rep.RunningOn, rep.Reason = "failed", a.n.cfg.NodeName, fmt.Sprintf("stop failed: %v %v", err, lerr)
	case doms[p.VM].State.Active():
		rep.Outcome, rep.RunningOn, rep.Reason = "failed", a.n.cfg.NodeName, "still active after the stop"
	default:
		if vm := a.n.fsm.Copy().Config.VMs[p.VM]; vm != nil {
			a.deactivateLVs(ctx, vm)
		}
	}
	rep.Wall = time.Since(start)
	if ctx.Err() != nil {
		return
	}
	log.Info().Str("outcome", rep.Outcome).Dur("wall", rep.Wall).Msg("stopped for a move")
	a.reportMove(ctx, rep)
}

// reportMove tells the leader how a move ended, until it is taken.
func (a *Agent) reportMove(ctx context.Context, rep api.MigrationResult) {
	for ctx.Err() == nil {
		err := a.n.forwardWrite(ctx, "POST", api.PathMigrationResult, rep, nil)
		if err == nil {
			return
		}
		a.log.Warn().Err(err).Str("vm", rep.VM).Str("migration_id", rep.MigrationID).Msg("report move result; retrying")
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// jobKeep is how long an ended job stays listed, so that a CLI polling
// for progress sees how it ended.
const jobKeep = 10 * time.Minute

// noteJob records a migration's latest statistics (outcome set: it ended)
// for GET /v1/hosts/{host}/migrations.
func (a *Agent) noteJob(p model.Placement, to string, pr migration.Progress, outcome string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	for id, j := range a.jobs {
		if j.Outcome != "" && now.Sub(j.Updated) > jobKeep {
			delete(a.jobs, id)
		}
	}
	j := a.jobs[p.MigrationID]
	if j == nil {
		j = &api.MigrationJob{VM: p.VM, MigrationID: p.MigrationID, From: a.n.cfg.NodeName, To: to}
		a.jobs[p.MigrationID] = j
	}
	j.Phase, j.Updated, j.Outcome = string(pr.Phase), now, outcome
	if outcome != "" {
		if outcome == string(migration.Migrated) {
			j.Percent = 100
		}
		return // keep the last statistics of the run
	}
	j.Percent, j.DataTotal, j.DataRemaining = pr.Percent(), pr.DataTotal, pr.DataRemaining
	j.Throughput, j.DirtyRate, j.ExpectedDowntime = pr.Throughput, pr.DirtyRate, pr.ExpectedDowntime
	j.Iteration, j.Elapsed, j.Text = pr.Iteration, pr.Elapsed, pr.String()
}

// Jobs lists this host's migration jobs, oldest first.
func (a *Agent) Jobs() []api.MigrationJob {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]api.MigrationJob, 0, len(a.jobs))
	for _, j := range a.jobs {
		out = append(out, *j)
	}
	sort.Slice(out, func(i, k int) bool {
		if !out[i].Updated.Equal(out[k].Updated) {
			return out[i].Updated.Before(out[k].Updated)
		}
		return out[i].MigrationID < out[k].MigrationID
	})
	return out
}
