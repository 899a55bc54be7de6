package cluster

import (
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/serf/serf"

	"github.com/vmha/vmha/clusterspec"
	"github.com/vmha/vmha/hypervisor"
	"github.com/vmha/vmha/model"
	"github.com/vmha/vmha/placement"
	"github.com/vmha/vmha/storage"
)

// The placement rules of a running cluster are a cluster.yaml (the same
// file `vmha plan` reads offline) kept in the replicated state: policy,
// host capacities, attributes, standby and maintenance, VM utilization,
// priorities, stickiness, and the constraints. Hosts and VMs themselves
// come from the cluster (registration, vmha vm add); the file only adds
// what placement needs to know about them.

// engineInput builds the placement engine's input from the replicated
// state, gossip and the cluster's rules. A VM that cannot move live and
// runs on a usable host is held where it is (stickiness INFINITY): the
// coordinator never stops and restarts a running VM to follow a score, so
// the plan must not count it elsewhere.
func engineInput(st *model.State, members map[string]serf.Member, now time.Time, sc storage.Config) (placement.Input, error) {
	in := placement.Input{Policy: placement.Policy{Strategy: placement.StrategyBalanced}, Now: now}
	specHosts := map[string]clusterspec.Host{}
	specVMs := map[string]placement.VMInfo{}
	if st.Config.Rules != "" {
		spec, err := clusterspec.Parse([]byte(st.Config.Rules))
		if err != nil {
			return in, err
		}
		base, err := spec.Input(nil)
		if err != nil {
			return in, err
		}
		in.Policy = base.Policy
		if in.Policy.Strategy == "" {
			in.Policy.Strategy = placement.StrategyDefault
		}
		for _, h := range spec.Hosts {
			specHosts[h.Name] = h
		}
		for _, v := range base.VMs {
			specVMs[v.Name] = v
		}
		known := func(vm, host string) bool {
			_, vok := st.Config.VMs[vm]
			h, hok := st.Config.Hosts[host]
			return vok && (host == "" || (hok && !h.Witness))
		}
		for _, l := range base.Locations {
			if known(l.VM, l.Host) {
				in.Locations = append(in.Locations, l)
			}
		}
		for _, l := range base.LocationRules {
			if known(l.VM, "") {
				in.LocationRules = append(in.LocationRules, l)
			}
		}
		for _, c := range base.Colocations {
			if known(c.VM, "") && known(c.With, "") {
				in.Colocations = append(in.Colocations, c)
			}
		}
	}
	in.LocationRules = append(in.LocationRules, storageRules(sc, st)...)
	cond := map[string]placement.HostCondition{}
	for _, name := range model.SortedKeys(st.Config.Hosts) {
		h := st.Config.Hosts[name]
		if h.Witness {
			continue
		}
		hi := placement.HostInfo{Name: name, Condition: hostCondition(st, name, members),
			Capacity: defaultCapacity(h), Attributes: map[string]string{}}
		if sh, ok := specHosts[name]; ok {
			if len(sh.Capacity) > 0 {
				hi.Capacity = sh.Capacity
			}
			hi.Standby, hi.Maintenance = sh.Standby, sh.Maintenance
		}
		hi.Attributes = hostAttributes(st, members, name, specHosts[name].Attributes)
		cond[name] = hi.Condition
		in.Hosts = append(in.Hosts, hi)
	}
	for _, name := range model.SortedKeys(st.Config.VMs) {
		vm := st.Config.VMs[name]
		vi, ok := specVMs[name]
		if !ok {
			vi = placement.VMInfo{Name: name}
		}
		if len(vi.Utilization) == 0 {
			vi.Utilization = map[string]int64{"memory": clampInt(vm.MemoryMiB)}
		}
		if p := st.Status.Placements[name]; p != nil {
			vi.Current = p.Host
		} else {
			vi.Current = adoptHost(st, name)
		}
		if _, ok := cond[vi.Current]; !ok {
			vi.Current = ""
		}
		if vi.Current != "" && cond[vi.Current] == placement.Usable && !vi.AllowMigrate {
			inf := placement.Infinity
			vi.Stickiness = &inf
		}
		if pin := st.Status.Pins[name]; pin != nil && pin.Active(now) {
			if _, ok := cond[pin.Host]; ok {
				in.Locations = append(in.Locations, placement.Location{VM: name, Host: pin.Host, Score: placement.Infinity})
			}
		}
		if vm.Prefer != "" {
			if _, ok := cond[vm.Prefer]; ok {
				in.Locations = append(in.Locations, placement.Location{VM: name, Host: vm.Prefer, Score: placement.PreferScore})
			}
		}
		in.VMs = append(in.VMs, vi)
	}
	return in, nil
}

// hostAttributes merges a host's attributes, later ones winning: the
// rules file's, the permanent ones (vmha host attr set), the transient ones
// of the host's current boot, and the live ones it gossips (pingd).
func hostAttributes(st *model.State, members map[string]serf.Member, host string, fromRules map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range fromRules {
		out[k] = v
	}
	for k, v := range st.Config.HostAttrs[host] {
		out[k] = v
	}
	m, seen := members[host]
	if ta := st.Status.TransientAttrs[host]; ta != nil && seen && ta.Boot == m.Tags[tagBoot] {
		for k, v := range ta.Attrs {
			out[k] = v
		}
	}
	if seen {
		for k, v := range m.Tags {
			if strings.HasPrefix(k, tagAttr) {
				out[strings.TrimPrefix(k, tagAttr)] = v
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

// placeByRules is place() for a cluster with rules: the engine's plan is
// followed for VMs that need a host, and for running VMs it wants
// elsewhere when they can move live (within the migration limit). A VM
// the engine wants stopped is stopped; a running VM that cannot move live
// stays, and says so in its reason.
func (c *Coordinator) placeByRules(st *model.State, members map[string]serf.Member) {
	in, err := engineInput(st, members, time.Now(), c.n.cfg.Storage.Config)
	if err != nil {
		c.log.Error().Err(err).Msg("placement rules do not apply to the cluster; nothing placed")
		return
	}
	t0 := time.Now()
	r, err := placement.Solve(in, placement.Options{Explain: []string{"*"}})
	c.n.metrics.placeSeconds.Observe(time.Since(t0).Seconds())
	if err != nil {
		c.log.Error().Err(err).Msg("placement refused the cluster's state")
		return
	}
	vmInfo := map[string]placement.VMInfo{}
	for _, v := range in.VMs {
		vmInfo[v.Name] = v
	}
	fl := c.flights(st)
	inFlight := map[string]int{}
	for _, p := range st.Status.Placements {
		if p.MigrateFrom != "" {
			inFlight[p.MigrateFrom]++
			inFlight[p.Host]++
		}
	}
	var commits []model.Placement
	for _, name := range model.SortedKeys(st.Config.VMs) {
		p := st.Status.Placements[name]
		cur := ""
		if p != nil {
			cur = p.Host
			if p.MigrateFrom != "" {
				continue
			}
		}
		if r.Blocked[name] != "" {
			continue
		}
		if e := st.Status.Evacuations[cur]; e != nil && !e.Done && e.Covers(name) {
			continue // the evacuation moves it, at its own pace
		}
		target := r.Placement[name]
		if target == cur {
			continue
		}
		reason := ""
		if ex := r.Explanations[name]; ex != nil {
			reason = ex.Reason
		}
		curCond := placement.Released
		for _, h := range in.Hosts {
			if h.Name == cur {
				curCond = h.Condition
			}
		}
		switch {
		case cur == "" || curCond == placement.Released:
			rid := ""
			if hs := st.Status.Hosts[cur]; hs != nil && hs.State == model.HostFenced {
				rid = hs.RecoveryID
			}
			commits = append(commits, model.Placement{VM: name, Host: target, Reason: reason, RecoveryID: rid})
		case curCond != placement.Usable:
			// Offline (left cleanly): the VM stays assigned to it.
		case target == "":
			commits = append(commits, model.Placement{VM: name, Host: "", Reason: "stopped: " + reason})
		case vmInfo[name].AllowMigrate && st.Config.Hosts[target] != nil && st.Config.Hosts[target].LibvirtURI != "" && observedRunning(st, cur, name):
			if lim := in.Policy.MigrationLimit; lim > 0 && (inFlight[cur] >= lim || inFlight[target] >= lim) {
				continue // the next pass, when a slot is free
			}
			if fl.full(target) != "" {
				continue
			}
			fl.add(target)
			inFlight[cur]++
			inFlight[target]++
			commits = append(commits, model.Placement{VM: name, Host: target, MigrateFrom: cur, MigrationID: newID("mig-"),
				Reason: "moved live by the placement rules: " + reason})
		}
	}
	if len(commits) == 0 {
		return
	}
	if err := c.n.propose(&Command{Op: OpPlace, Placements: commits}); err != nil {
		c.log.Error().Err(err).Msg("commit placements")
		return
	}
	for _, p := range commits {
		c.log.Info().Str("recovery_id", p.RecoveryID).Str("migration_id", p.MigrationID).Str("vm", p.VM).Str("host", p.Host).
			Str("from", p.MigrateFrom).Str("reason", p.Reason).Msg("placement committed (rules)")
		if p.Host != "" {
			c.nudge(st, p.Host)
		}
		if p.MigrateFrom != "" {
			c.nudge(st, p.MigrateFrom)
		}
	}
}

func observedRunning(st *model.State, host, vm string) bool {
	o := st.Status.Observed[host]
	return o != nil && o.VMs[vm].State == string(hypervisor.StateRunning)
}

// Explain is `vmha explain VM`: the engine's reasoning for one VM on the
// cluster as it is now.
func (c *Coordinator) Explain(vm string) (*placement.Explanation, error) {
	st := c.n.fsm.Copy()
	if st.Config.VMs[vm] == nil {
		return nil, &NotFoundError{Kind: "vm", Name: vm}
	}
	in, err := engineInput(st, c.n.members(), time.Now(), c.n.cfg.Storage.Config)
	if err != nil {
		return nil, err
	}
	r, err := placement.Solve(in, placement.Options{Explain: []string{vm}})
	if err != nil {
		return nil, err
	}
	ex := r.Explanations[vm]
	if ex == nil {
		return nil, fmt.Errorf("the engine gave no explanation for %s", vm)
	}
	return ex, nil
}
