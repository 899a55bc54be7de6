package cluster

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/cluster/decide"
	"github.com/vmha/vmha/model"
	"github.com/vmha/vmha/storage"
)

// Evacuation policies for VMs that cannot move live.
const (
	OnStuckFail        = decide.OnStuckFail
	OnStuckStopRestart = decide.OnStuckStopRestart
)

// planEvacuation is decide.PlanEvacuation as the API shows it.
func planEvacuation(v *decide.View, host string, e *model.Evacuation) []api.EvacuationMove {
	var out []api.EvacuationMove
	for _, m := range decide.PlanEvacuation(v, host, e) {
		out = append(out, api.EvacuationMove{VM: m.VM, To: m.To, Live: m.Live, Stuck: m.Stuck})
	}
	return out
}

// evacuationStarts serializes the starts' capacity check and commit on the
// leader: two evacuations asked at once are each checked against the other
// (the state machine's compare-and-set covers only one host). One lock per
// process is enough: only the leader's coordinator starts evacuations.
var evacuationStarts sync.Mutex

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
	evacuationStarts.Lock()
	defer evacuationStarts.Unlock()
	st := c.n.fsm.Copy()
	dv := c.n.view(st, c.n.members())
	h := st.Config.Hosts[host]
	switch {
	case h == nil:
		return plan, &NotFoundError{Kind: "host", Name: host}
	case h.Witness:
		return plan, &ValidationError{Field: "host", Err: fmt.Errorf("%s is a witness: it runs no VM", host)}
	case st.Status.Evacuations[host] != nil:
		cur := st.Status.Evacuations[host]
		return plan, &ConflictError{What: fmt.Sprintf("host %s is already being evacuated (%s, by %s); vmha host online %s ends it", host, cur.ID, cur.By, host)}
	case !decide.Usable(st, dv.Members, host):
		return plan, &ConflictError{What: fmt.Sprintf("host %s is not alive: its VMs are recovered by fencing, not moved", host)}
	}
	e := &model.Evacuation{ID: newID("ev-"), Host: host, Parallel: req.Parallel, OnStuck: req.OnStuck, By: requester, At: time.Now().UTC()}
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
	plan.Moves = append(plan.Moves, planEvacuation(dv, host, e)...)
	var stuck, nowhere []string
	for _, m := range plan.Moves {
		if m.Stuck != "" {
			stuck = append(stuck, m.VM+": "+m.Stuck)
		}
		if m.To == "" {
			nowhere = append(nowhere, m.VM)
		}
	}
	plan.Shortfall = decide.EvacuationShortfall(dv, host, e)
	if plan.Shortfall == "" && len(nowhere) > 0 {
		plan.Shortfall = fmt.Sprintf("no other usable host can take %s", strings.Join(nowhere, ", "))
	}
	if req.DryRun {
		return plan, nil
	}
	if plan.Shortfall != "" && !req.Force {
		return plan, &ConflictError{What: fmt.Sprintf("evacuating %s would leave VMs with nowhere to go: %s. Refused, nothing was changed; --force evacuates anyway (the VMs that do not fit stay on %s, listed as stuck)", host, plan.Shortfall, host)}
	}
	// Forced, the VMs that fit nowhere stay stuck; those that could go,
	// but not live, still need stop-restart.
	forcedNowhere := req.Force && len(stuck) == len(nowhere)
	if len(stuck) > 0 && req.OnStuck == OnStuckFail && !forcedNowhere {
		return plan, &ConflictError{What: fmt.Sprintf("cannot evacuate %s live: %s. Nothing was moved; --on-stuck stop-restart shuts such VMs down and starts them elsewhere", host, strings.Join(stuck, "; "))}
	}
	if req.Deadline > 0 {
		e.Deadline = e.At.Add(req.Deadline)
	}
	// A start: refused by the state machine if another one got in first.
	if err := c.n.propose(&Command{Op: OpEvacuation, Evacuation: e, By: requester}); err != nil {
		return plan, err
	}
	plan.ID = e.ID
	ev := c.log.Warn().Str("evacuation_id", e.ID).Str("host", host).Int("vms", len(plan.Moves)).Int("parallel", req.Parallel).Str("on_stuck", req.OnStuck).Str("by", requester)
	if plan.Shortfall != "" {
		ev = ev.Bool("force", true).Str("shortfall", plan.Shortfall)
	}
	ev.Msg("evacuation started")
	c.poke()
	return plan, nil
}

// HostOnline is `vmha host online HOST`: the host may take VMs again. No
// VM moves back by itself (only what the rules and stickiness allow). It
// ends the evacuation named id, or ("") the one under way now; either
// way the end names the evacuation it ends, so that it cannot end one
// started after the operator looked.
func (c *Coordinator) HostOnline(host, id, requester string) error {
	st := c.n.fsm.Copy()
	if st.Config.Hosts[host] == nil {
		return &NotFoundError{Kind: "host", Name: host}
	}
	cur := st.Status.Evacuations[host]
	switch {
	case cur == nil && id != "":
		return &ConflictError{What: fmt.Sprintf("host %s's evacuation %s has ended: no evacuation of %s is under way", host, id, host)}
	case cur == nil:
		return &ConflictError{What: fmt.Sprintf("host %s is not being evacuated", host)}
	case id == "":
		id = cur.ID
	}
	if err := c.n.propose(&Command{Op: OpEvacuation, Name: host, IfEvacuation: id, By: requester}); err != nil {
		return err
	}
	c.log.Info().Str("host", host).Str("evacuation_id", id).Str("by", requester).Msg("host back online")
	return nil
}

// evacuationViews lists the evacuations for the status, stuck VMs sorted.
func evacuationViews(st *model.State) []api.Evacuation {
	out := []api.Evacuation{}
	for _, h := range model.SortedKeys(st.Status.Evacuations) {
		e := st.Status.Evacuations[h]
		v := api.Evacuation{Host: h, Parallel: e.Parallel, OnStuck: e.OnStuck, By: e.By, At: e.At, Deadline: e.Deadline, Done: e.Done, Storage: e.Storage, ID: e.ID}
		v.MovedLive, v.Restarted = e.MovedLive, e.Restarted
		if !e.Done {
			v.MovedLive, v.Restarted = decide.EvacuationCounts(st, e)
		}
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
