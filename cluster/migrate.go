package cluster

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/serf/serf"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/hypervisor"
	"github.com/vmha/vmha/migration"
	"github.com/vmha/vmha/model"
	"github.com/vmha/vmha/placement"
)

// A live migration travels through the log like every decision:
//
//  1. The leader commits the VM's placement on the target with MigrateFrom
//     set to the source (StartMigration). The target's agent does not start
//     the VM; the planner does not move it.
//  2. The source's agent sees it and runs the libvirt migration, then
//     reports the outcome and where the VM really runs (MigrationResult).
//  3. The leader commits the end: on the target when it runs there (or runs
//     nowhere: then it is the target's to start), back on the source when it
//     still runs there. If the source is lost mid-move, the end waits for its
//     fence; a lost target makes the source's migration fail, and the VM,
//     still on the source, goes back to it.

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
	members := c.n.members()
	v := st.Config.VMs[vm]
	if v == nil {
		return model.Placement{}, &NotFoundError{Kind: "vm", Name: vm}
	}
	p := st.Status.Placements[vm]
	if p == nil || p.Host == "" {
		return model.Placement{}, &ConflictError{What: fmt.Sprintf("vm %s is not placed on any host", vm)}
	}
	if p.MigrateFrom != "" {
		return model.Placement{}, &ConflictError{What: fmt.Sprintf("vm %s is already moving from %s to %s (%s)", vm, p.MigrateFrom, p.Host, p.MigrationID)}
	}
	src := p.Host
	if !c.usable(st, members, src) {
		return model.Placement{}, &ConflictError{What: fmt.Sprintf("vm %s is on %s, which is not an alive host: it cannot be moved live", vm, src)}
	}
	if o := st.Status.Observed[src]; o == nil || o.VMs[vm].State != string(hypervisor.StateRunning) {
		return model.Placement{}, &ConflictError{What: fmt.Sprintf("vm %s is not reported running on %s: only a running VM moves live", vm, src)}
	}
	picked := ""
	if to == "" {
		var err error
		if to, picked, err = c.pickTarget(st, members, v, src); err != nil {
			return model.Placement{}, err
		}
	}
	if err := c.checkTarget(st, members, v, src, to); err != nil {
		return model.Placement{}, err
	}
	if why := c.flights(st).full(to); why != "" {
		return model.Placement{}, &ConflictError{What: fmt.Sprintf("vm %s cannot move to %s now: %s; try again when one ended", vm, to, why)}
	}
	reason := fmt.Sprintf("live migration from %s requested by %s", src, requester)
	if picked != "" {
		reason += "; target chosen by placement: " + picked
	}
	np := model.Placement{VM: vm, Host: to, MigrateFrom: src, MigrationID: newID("mig-"), Reason: reason}
	if err := c.n.propose(&Command{Op: OpPlace, Placements: []model.Placement{np}}); err != nil {
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

func (c *Coordinator) usable(st *model.State, members map[string]serf.Member, host string) bool {
	h := st.Config.Hosts[host]
	if h == nil || h.Witness {
		return false
	}
	if hs := st.Status.Hosts[host]; hs != nil && hs.State != model.HostAlive {
		return false
	}
	m, ok := members[host]
	return ok && m.Status == serf.StatusAlive
}

// checkTarget says why to cannot take vm live from src, or nil.
func (c *Coordinator) checkTarget(st *model.State, members map[string]serf.Member, v *model.VM, src, to string) error {
	h := st.Config.Hosts[to]
	switch {
	case h == nil:
		return &ValidationError{Field: "to", Err: fmt.Errorf("unknown host %q (known: %v)", to, model.SortedKeys(st.Config.Hosts))}
	case to == src:
		return &ValidationError{Field: "to", Err: fmt.Errorf("vm %s already runs on %s", v.Name, to)}
	case h.Witness:
		return &ValidationError{Field: "to", Err: fmt.Errorf("%s is a witness: it runs no VM", to)}
	case !c.usable(st, members, to):
		return &ConflictError{What: fmt.Sprintf("host %s is not alive: it cannot take vm %s", to, v.Name)}
	case h.LibvirtURI == "":
		return &ConflictError{What: fmt.Sprintf("host %s takes no live migration (its migration.libvirt_uri is not set)", to)}
	case st.Status.Evacuations[to] != nil && st.Status.Evacuations[to].Storage == "":
		return &ConflictError{What: fmt.Sprintf("host %s is being evacuated: vmha host online %s first", to, to)}
	case st.Status.Evacuations[to] != nil && usesFS(c.n.cfg.Storage.Config, v, st.Status.Evacuations[to].Storage):
		return &ConflictError{What: fmt.Sprintf("host %s has %s in maintenance, which holds vm %s's disks: vmha host online %s first", to, st.Status.Evacuations[to].Storage, v.Name, to)}
	}
	if free := freeMiB(st, to); free < v.MemoryMiB {
		return &ConflictError{What: fmt.Sprintf("host %s has %d MiB free, vm %s needs %d MiB", to, free, v.Name, v.MemoryMiB)}
	}
	return nil
}

// pickTarget asks the placement engine where vm goes when it may not stay
// on src and may go only to hosts that take it live now (checkTarget): the
// same rules, colocations, capacity and tie-breaks as every other decision.
// It returns the host and the engine's reason.
func (c *Coordinator) pickTarget(st *model.State, members map[string]serf.Member, v *model.VM, src string) (string, string, error) {
	in, err := engineInput(st, members, time.Now(), c.n.cfg.Storage.Config)
	if err != nil {
		return "", "", err
	}
	var why []string
	for _, h := range in.Hosts {
		if h.Name == src {
			continue
		}
		if err := c.checkTarget(st, members, v, src, h.Name); err != nil {
			why = append(why, err.Error())
			in.Locations = append(in.Locations, placement.Location{VM: v.Name, Host: h.Name, Score: -placement.Infinity})
		}
	}
	in.Locations = append(in.Locations, placement.Location{VM: v.Name, Host: src, Score: -placement.Infinity})
	r, err := placement.Solve(in, placement.Options{Explain: []string{v.Name}})
	if err != nil {
		return "", "", err
	}
	to := r.Placement[v.Name]
	reason := ""
	if ex := r.Explanations[v.Name]; ex != nil {
		reason = ex.Reason
	}
	if to == "" {
		msg := fmt.Sprintf("no other host can take vm %s live: %s", v.Name, reason)
		if len(why) > 0 {
			msg += " (" + strings.Join(why, "; ") + ")"
		}
		return "", "", &ConflictError{What: msg + "; vmha explain " + v.Name + " shows every host's verdict"}
	}
	return to, reason, nil
}

// freeMiB is a host's memory minus that of the VMs placed on it or moving
// to it.
func freeMiB(st *model.State, host string) uint64 {
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

// nudge asks host's agent to reconcile now (the timer would anyway).
func (c *Coordinator) nudge(st *model.State, host string) {
	h := st.Config.Hosts[host]
	if h == nil || h.APIAddr == "" {
		return
	}
	term := c.n.raft.CurrentTerm()
	go func() {
		if err := c.n.peers.do(context.Background(), h.APIAddr, 2*time.Second, "POST", api.PathNudge, api.Nudge{Term: term}, nil, nil); err != nil {
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
	end := model.Placement{VM: r.VM}
	switch r.RunningOn {
	case p.MigrateFrom:
		end.Host = p.MigrateFrom
		end.Reason = fmt.Sprintf("live migration to %s %s: %s; the VM stays on %s", p.Host, r.Outcome, r.Reason, p.MigrateFrom)
	case p.Host:
		end.Host = p.Host
		end.Reason = fmt.Sprintf("moved live from %s (%s, downtime %s)", p.MigrateFrom, p.MigrationID, r.Downtime)
	case "":
		if p.Cold {
			end.Host = p.Host
			end.Reason = fmt.Sprintf("shut down on %s and started on %s (%s)", p.MigrateFrom, p.Host, p.MigrationID)
			break
		}
		// The VM runs nowhere (the job failed after the source let go):
		// it is the target's to start, like any VM placed there; if the
		// target is lost, the usual fence-then-recover applies.
		end.Host = p.Host
		end.Reason = fmt.Sprintf("live migration from %s %s and left the VM stopped: %s; starting it on %s", p.MigrateFrom, r.Outcome, r.Reason, p.Host)
	default:
		return &ValidationError{Field: "running_on", Err: fmt.Errorf("%q is neither the source %s nor the target %s", r.RunningOn, p.MigrateFrom, p.Host)}
	}
	if err := c.n.propose(&Command{Op: OpPlace, Placements: []model.Placement{end}}); err != nil {
		return err
	}
	ev := c.log.Info()
	if end.Host != p.Host {
		ev = c.log.Warn()
	}
	ev.Str("migration_id", p.MigrationID).Str("vm", r.VM).Str("outcome", r.Outcome).Str("running_on", r.RunningOn).Str("reason", r.Reason).Msg("live migration ended")
	return nil
}

// migrationStep ends moves whose source was fenced: the VM is not on the
// source any more, so it is the target's (running there if the move
// completed, or started there by its agent).
func (c *Coordinator) migrationStep(st *model.State) {
	var ends []model.Placement
	for _, vm := range model.SortedKeys(st.Status.Placements) {
		p := st.Status.Placements[vm]
		if p.MigrateFrom == "" {
			continue
		}
		if hs := st.Status.Hosts[p.MigrateFrom]; hs != nil && hs.State == model.HostFenced {
			ends = append(ends, model.Placement{VM: vm, Host: p.Host, RecoveryID: hs.RecoveryID,
				Reason: fmt.Sprintf("source %s of live migration %s was fenced; the VM is %s's", p.MigrateFrom, p.MigrationID, p.Host)})
		}
	}
	if len(ends) == 0 {
		return
	}
	if err := c.n.propose(&Command{Op: OpPlace, Placements: ends}); err != nil {
		c.log.Error().Err(err).Msg("end migrations of a fenced source")
	}
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
		if err := a.n.forwardWrite(ctx, "POST", api.PathMigrationResult, rep, nil); err == nil {
			return
		} else {
			a.log.Warn().Err(err).Str("vm", rep.VM).Str("migration_id", rep.MigrationID).Msg("report move result; retrying")
		}
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

// flights counts the moves under way against the migration caps
// (migration.max_per_target, migration.max_cluster), so that evacuations,
// rebalancing and the rules together never exceed them.
type flights struct {
	perTarget, cluster int
	into               map[string]int
	total              int
}

func (c *Coordinator) flights(st *model.State) *flights {
	f := &flights{perTarget: c.n.cfg.Migration.MaxPerTarget, cluster: c.n.cfg.Migration.MaxCluster, into: map[string]int{}}
	for _, p := range st.Status.Placements {
		if p.MigrateFrom != "" {
			f.into[p.Host]++
			f.total++
		}
	}
	return f
}

// full says why one more move into to must wait, or "".
func (f *flights) full(to string) string {
	switch {
	case f.cluster > 0 && f.total >= f.cluster:
		return fmt.Sprintf("%d moves under way in the cluster (migration.max_cluster)", f.total)
	case f.perTarget > 0 && f.into[to] >= f.perTarget:
		return fmt.Sprintf("%s already takes %d moves (migration.max_per_target)", to, f.into[to])
	}
	return ""
}

func (f *flights) add(to string) {
	f.into[to]++
	f.total++
}
