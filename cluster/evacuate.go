package cluster

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/serf/serf"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/model"
	"github.com/vmha/vmha/placement"
	"github.com/vmha/vmha/storage"
)

// Evacuation policies for VMs that cannot move live.
const (
	OnStuckFail        = "fail"
	OnStuckStopRestart = "stop-restart"
)

// planEvacuation asks the placement engine where each VM on host goes when
// host runs nothing (the same rules, colocations, capacity and tie-breaks
// as every other decision), then says whether each move can be live.
func (c *Coordinator) planEvacuation(st *model.State, members map[string]serf.Member, host string, e *model.Evacuation) []api.EvacuationMove {
	var moves []api.EvacuationMove
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
	in, err := engineInput(st, members, time.Now(), c.n.cfg.Storage.Config)
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
	for _, vm := range vms {
		mv := api.EvacuationMove{VM: vm}
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
			case !observedRunning(st, host, vm):
				mv.Stuck = "not running, so it cannot move live"
			default:
				mv.Live = true
			}
		}
		moves = append(moves, mv)
	}
	return moves
}

// StartEvacuation is `vmha evacuate HOST`. With dryRun it only plans.
func (c *Coordinator) StartEvacuation(req api.EvacuateRequest, host, requester string) (api.EvacuationPlan, error) {
	plan := api.EvacuationPlan{Host: host, Moves: []api.EvacuationMove{}}
	if req.Parallel < 1 {
		return plan, &ValidationError{Field: "parallel", Err: fmt.Errorf("%d: at least one VM must move at a time", req.Parallel)}
	}
	if req.OnStuck == "" {
		req.OnStuck = OnStuckFail
	}
	if req.OnStuck != OnStuckFail && req.OnStuck != OnStuckStopRestart {
		return plan, &ValidationError{Field: "on_stuck", Err: fmt.Errorf("%q: want fail or stop-restart", req.OnStuck)}
	}
	st := c.n.fsm.Copy()
	members := c.n.members()
	h := st.Config.Hosts[host]
	switch {
	case h == nil:
		return plan, &NotFoundError{Kind: "host", Name: host}
	case h.Witness:
		return plan, &ValidationError{Field: "host", Err: fmt.Errorf("%s is a witness: it runs no VM", host)}
	case st.Status.Evacuations[host] != nil:
		return plan, &ConflictError{What: fmt.Sprintf("host %s is already being evacuated (by %s); vmha host online %s ends it", host, st.Status.Evacuations[host].By, host)}
	case !c.usable(st, members, host):
		return plan, &ConflictError{What: fmt.Sprintf("host %s is not alive: its VMs are recovered by fencing, not moved", host)}
	}
	e := &model.Evacuation{Host: host, Parallel: req.Parallel, OnStuck: req.OnStuck, By: requester, At: time.Now().UTC()}
	if req.Storage != "" {
		vms, err := c.storageVMs(st, host, req.Storage)
		if err != nil {
			return plan, err
		}
		e.Storage, e.VMs = req.Storage, vms
		// Plan as the evacuation will run: the file system unusable
		// for its VMs on this host, the host usable for the others.
		tmp := *e
		if st.Status.Evacuations == nil {
			st.Status.Evacuations = map[string]*model.Evacuation{}
		}
		st.Status.Evacuations[host] = &tmp
	}
	plan.Moves = append(plan.Moves, c.planEvacuation(st, members, host, e)...)
	var stuck []string
	for _, m := range plan.Moves {
		if m.Stuck != "" {
			stuck = append(stuck, m.VM+": "+m.Stuck)
		}
	}
	if req.DryRun {
		return plan, nil
	}
	if len(stuck) > 0 && req.OnStuck == OnStuckFail {
		return plan, &ConflictError{What: fmt.Sprintf("cannot evacuate %s live: %s. Nothing was moved; --on-stuck stop-restart shuts such VMs down and starts them elsewhere", host, strings.Join(stuck, "; "))}
	}
	if req.Deadline > 0 {
		e.Deadline = e.At.Add(req.Deadline)
	}
	if err := c.n.propose(&Command{Op: OpEvacuation, Evacuation: e}); err != nil {
		return plan, err
	}
	c.log.Warn().Str("host", host).Int("vms", len(plan.Moves)).Int("parallel", req.Parallel).Str("on_stuck", req.OnStuck).Str("by", requester).Msg("evacuation started")
	c.poke()
	return plan, nil
}

// HostOnline is `vmha host online HOST`: the host may take VMs again. No
// VM moves back by itself (only what the rules and stickiness allow).
func (c *Coordinator) HostOnline(host, requester string) error {
	if err := c.n.propose(&Command{Op: OpEvacuation, Name: host}); err != nil {
		return err
	}
	c.log.Info().Str("host", host).Str("by", requester).Msg("host back online")
	return nil
}

// evacuationStep moves the VMs of evacuating hosts, at most Parallel at
// once per host: live where it can, by stop-and-start where the policy (or
// a passed deadline) allows it.
func (c *Coordinator) evacuationStep(st *model.State, members map[string]serf.Member) {
	fl := c.flights(st)
	for _, host := range model.SortedKeys(st.Status.Evacuations) {
		e := st.Status.Evacuations[host]
		if e.Done || !c.usable(st, members, host) {
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
			_ = c.n.propose(&Command{Op: OpEvacuation, Evacuation: &done})
			c.log.Info().Str("host", host).Str("storage", e.Storage).Msg("evacuation done: no VM left on the host")
			continue
		}
		force := e.OnStuck == OnStuckStopRestart || (!e.Deadline.IsZero() && time.Now().After(e.Deadline))
		var commits []model.Placement
		stuck := map[string]string{}
		for _, mv := range c.planEvacuation(st, members, host, e) {
			if inFlight >= e.Parallel {
				break
			}
			if mv.To != "" && (mv.Live || force) {
				if why := fl.full(mv.To); why != "" {
					continue // waits for a slot; the next pass retries
				}
				fl.add(mv.To)
			}
			switch {
			case mv.To == "":
				stuck[mv.VM] = mv.Stuck
			case mv.Live:
				commits = append(commits, model.Placement{VM: mv.VM, Host: mv.To, MigrateFrom: host, MigrationID: newID("mig-"),
					Reason: fmt.Sprintf("evacuating %s (by %s): moved live", host, e.By)})
				inFlight++
			case force:
				commits = append(commits, model.Placement{VM: mv.VM, Host: mv.To, MigrateFrom: host, MigrationID: newID("mv-"), Cold: true,
					Reason: fmt.Sprintf("evacuating %s (by %s): %s; shut down there and started here", host, e.By, mv.Stuck)})
				inFlight++
			default:
				stuck[mv.VM] = mv.Stuck
			}
		}
		if len(commits) > 0 {
			if err := c.n.propose(&Command{Op: OpPlace, Placements: commits}); err != nil {
				c.log.Error().Err(err).Msg("commit evacuation moves")
				continue
			}
			for _, p := range commits {
				c.log.Info().Str("migration_id", p.MigrationID).Str("vm", p.VM).Str("from", host).Str("to", p.Host).Bool("cold", p.Cold).Msg("evacuation move committed")
				c.nudge(st, host)
			}
		}
		if !sameStuck(stuck, e.Stuck) {
			upd := *e
			upd.Stuck = stuck
			_ = c.n.propose(&Command{Op: OpEvacuation, Evacuation: &upd})
		}
	}
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

// evacuationViews lists the evacuations for the status, stuck VMs sorted.
func evacuationViews(st *model.State) []api.Evacuation {
	out := []api.Evacuation{}
	for _, h := range model.SortedKeys(st.Status.Evacuations) {
		e := st.Status.Evacuations[h]
		v := api.Evacuation{Host: h, Parallel: e.Parallel, OnStuck: e.OnStuck, By: e.By, At: e.At, Deadline: e.Deadline, Done: e.Done, Storage: e.Storage}
		for vm, why := range e.Stuck {
			v.Stuck = append(v.Stuck, vm+": "+why)
		}
		sort.Strings(v.Stuck)
		for vm, p := range st.Status.Placements {
			switch {
			case !e.Covers(vm):
			case p.MigrateFrom == h:
				v.Moving++
			case p.Host == h:
				v.Left++
			}
		}
		out = append(out, v)
	}
	return out
}

// storageVMs are the VMs placed on host whose disks are on the cluster file
// system fs (a storage-maintenance evacuation moves those).
func (c *Coordinator) storageVMs(st *model.State, host, fs string) ([]string, error) {
	var names []string
	for _, f := range c.n.cfg.Storage.Filesystems {
		names = append(names, f.Name)
	}
	if !slices.Contains(names, fs) {
		return nil, &ValidationError{Field: "storage", Err: fmt.Errorf("%q is not a cluster file system of the storage config (configured: %v)", fs, names)}
	}
	out := []string{}
	for _, vm := range model.SortedKeys(st.Config.VMs) {
		if p := st.Status.Placements[vm]; p == nil || (p.Host != host && p.MigrateFrom != host) {
			continue
		}
		if usesFS(c.n.cfg.Storage.Config, st.Config.VMs[vm], fs) {
			out = append(out, vm)
		}
	}
	return out, nil
}

func usesFS(cfg storage.Config, vm *model.VM, fs string) bool {
	rs, err := cfg.MapDisks(vm.Name, vm.Disks)
	return err == nil && slices.Contains(storage.Filesystems(rs), fs)
}
