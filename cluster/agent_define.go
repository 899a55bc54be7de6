package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/vmha/vmha/cluster/reconcile"
	"github.com/vmha/vmha/hypervisor"
	"github.com/vmha/vmha/model"
)

// The agent's part in VM definitions (issue 14), apart from the reconcile
// loop in agent.go, which calls definitions once per pass, right after
// reconcile.Decide:
//
//   - vmha vm remove --keep-running: the leader asks the host that runs
//     the VM to release its domain before the VM leaves the cluster. A
//     released domain is no longer one this agent manages, so once the
//     cluster forgets the VM, reconcile.Decide leaves it alone (a domain
//     neither the cluster's nor managed is an operator's own). Until then
//     the pass neither adopts, stops, undefines nor starts it; the release
//     lapses after releaseFor if the VM was not removed after all.
//   - vmha vm update --restart: the agent of the host a VM runs on
//     restarts it cold, once per update: it stops the domain, and the next
//     pass starts it again (the stop's lifecycle event wakes it), defining
//     the replicated XML first as every start does. Which update each VM
//     was restarted for is kept in the data dir, so a vmhad restart never
//     restarts a VM twice for one update.
//
// A domain whose VM was updated without --restart keeps its definition
// until its next start: Agent.start defines the replicated XML before
// every start (hypervisor.Define redefines a domain that exists), so
// nothing more is needed for it here.

// releaseFor is how long a release holds when its VM is not removed.
const releaseFor = 2 * time.Minute

// agentDefs is an agent's memory for definitions: the released domains
// (until when) and, by VM, the update (its UpdatedAt) it was restarted or
// started for.
type agentDefs struct {
	mu        sync.Mutex
	released  map[string]time.Time
	restarted map[string]time.Time
	path      string
}

// agentDefsOf holds each Agent's agentDefs, kept out of the Agent struct
// while agent.go is being reworked (TODO: make it a field of Agent).
var agentDefsOf sync.Map // *Agent → *agentDefs

func (a *Agent) defs() *agentDefs {
	if d, ok := agentDefsOf.Load(a); ok {
		return d.(*agentDefs)
	}
	d := &agentDefs{released: map[string]time.Time{}, restarted: map[string]time.Time{}}
	if a.n != nil && a.n.cfg != nil && a.n.cfg.DataDir != "" {
		d.path = filepath.Join(a.n.cfg.DataDir, "agent-restarts.json")
		if b, err := os.ReadFile(d.path); err == nil {
			if err := json.Unmarshal(b, &d.restarted); err != nil {
				a.log.Warn().Err(err).Str("file", d.path).Msg("restarts file is corrupt; ignoring it")
				d.restarted = map[string]time.Time{}
			}
		} else if !errors.Is(err, os.ErrNotExist) {
			a.log.Warn().Err(err).Msg("read restarts file")
		}
	}
	v, _ := agentDefsOf.LoadOrStore(a, d)
	return v.(*agentDefs)
}

// save writes the restarts down; d.mu is held.
func (d *agentDefs) save() error {
	if d.path == "" {
		return nil
	}
	b, _ := json.Marshal(d.restarted)
	tmp := d.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, d.path)
}

// releaseDomain makes name a domain this agent does not manage (vmha vm
// remove --keep-running).
func (a *Agent) releaseDomain(name string) {
	d := a.defs()
	d.mu.Lock()
	d.released[name] = time.Now().Add(releaseFor)
	d.mu.Unlock()
	a.setManaged(name, false)
	a.log.Info().Str("vm", name).Msg("domain released: it keeps running when its VM leaves the cluster")
}

// definitions adjusts one pass's plan for released domains and carries out
// the restarts updates asked for (see the top of this file).
func (a *Agent) definitions(ctx context.Context, st *model.State, doms map[string]hypervisor.Domain, plan reconcile.Plan) reconcile.Plan {
	d := a.defs()
	now := time.Now()
	d.mu.Lock()
	released := map[string]bool{}
	for name, until := range d.released {
		if _, ours := st.Config.VMs[name]; !ours && !a.isManaged(name) {
			delete(d.released, name) // gone from the cluster: an operator's own domain now
			continue
		}
		if now.After(until) {
			delete(d.released, name) // not removed after all: managed again
			continue
		}
		released[name] = true
	}
	d.mu.Unlock()
	if len(released) > 0 {
		plan = withoutReleased(plan, released)
		for name := range released {
			a.setManaged(name, false) // also if a pass adopted it meanwhile
		}
	}
	if plan.Waiting != "" {
		return plan
	}
	todo, record := restartsDue(st, a.n.cfg.NodeName, doms, plan.Starts, released, d.restartedCopy())
	if len(record) > 0 || len(todo) > 0 {
		d.mu.Lock()
		for name, at := range record {
			d.restarted[name] = at
		}
		// Written down before the stop: a vmhad that dies after it does
		// not restart the VM again for this update.
		for _, name := range todo {
			d.restarted[name] = st.Config.VMs[name].UpdatedAt
		}
		for name := range d.restarted {
			if st.Config.VMs[name] == nil {
				delete(d.restarted, name)
			}
		}
		err := d.save()
		d.mu.Unlock()
		if err != nil {
			a.log.Error().Err(err).Msg("save restarts: no restart this pass")
			return plan
		}
	}
	for _, name := range todo {
		vm := st.Config.VMs[name]
		a.log.Info().Str("vm", name).Time("updated_at", vm.UpdatedAt).Str("updated_by", vm.UpdatedBy).Msg("restarting VM with its new definition (vmha vm update --restart)")
		if err := a.n.hv.Stop(ctx, name, a.n.cfg.Agent.StopTimeout); err != nil {
			a.setErr(name, err)
			a.log.Error().Err(err).Str("vm", name).Msg("stop for restart")
		}
		// The next pass starts it (the stop's event wakes the loop).
	}
	return plan
}

func (d *agentDefs) restartedCopy() map[string]time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return maps.Clone(d.restarted)
}

func (a *Agent) isManaged(name string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.managed[name]
}

// withoutReleased drops the released domains from every part of a plan.
func withoutReleased(p reconcile.Plan, released map[string]bool) reconcile.Plan {
	keep := func(names []string) []string {
		var out []string
		for _, n := range names {
			if !released[n] {
				out = append(out, n)
			}
		}
		return out
	}
	p.Adopt, p.Starts = keep(p.Adopt), keep(p.Starts)
	var stops []reconcile.Stop
	for _, s := range p.Stops {
		if !released[s.VM] {
			stops = append(stops, s)
		}
	}
	p.Stops = stops
	return p
}

// restartsDue is the pure part of the restarts: the VMs placed on host
// (not moving) whose update asked for a restart that this host has not
// done, and that run here now (todo: stop them); and the updates that need
// no restart here because the VM is not running here or starts anyway in
// this pass with the new definition (record).
func restartsDue(st *model.State, host string, doms map[string]hypervisor.Domain, starts []string, released map[string]bool, done map[string]time.Time) (todo []string, record map[string]time.Time) {
	record = map[string]time.Time{}
	starting := map[string]bool{}
	for _, n := range starts {
		starting[n] = true
	}
	for _, name := range model.SortedKeys(st.Config.VMs) {
		vm := st.Config.VMs[name]
		p := st.Status.Placements[name]
		if !vm.PendingRestart || p == nil || p.Host != host || p.MigrateFrom != "" || released[name] {
			continue
		}
		if at, ok := done[name]; ok && at.Equal(vm.UpdatedAt) {
			continue
		}
		dom, ok := doms[name]
		switch {
		case starting[name] || !ok || !dom.State.Active():
			record[name] = vm.UpdatedAt // its next start defines the new XML
		case vm.RestartRequested:
			todo = append(todo, name)
		}
	}
	return todo, record
}
