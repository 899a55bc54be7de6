// Package placement decides where VMs run. It is pure: it takes a snapshot
// and returns decisions with the reasons for them, and never touches the
// world. Solve is the Pacemaker-compatible engine (see docs/placement.md);
// Plan is the coordinator's entry point over the foundation's snapshot.
package placement

import (
	"fmt"
	"sort"
	"strings"
)

// HostCondition is what the coordinator knows about a host.
type HostCondition int

// Host conditions.
const (
	// Usable hosts are alive members in good standing: VMs may start there.
	Usable HostCondition = iota
	// Lost hosts failed but are not fenced yet: their VMs stay assigned to
	// them, because starting them elsewhere could run them twice.
	Lost
	// Released hosts were fenced (or removed): their VMs need a new host.
	Released
	// Offline hosts left the cluster cleanly; their VMs are kept where they
	// are, and nothing new starts there.
	Offline
)

func (c HostCondition) String() string {
	switch c {
	case Usable:
		return "usable"
	case Lost:
		return "lost"
	case Released:
		return "released"
	case Offline:
		return "offline"
	}
	return fmt.Sprintf("condition(%d)", int(c))
}

// Host is one candidate host.
type Host struct {
	Name      string
	Condition HostCondition
	MemoryMiB uint64
}

// VM is one VM to account for or place.
type VM struct {
	Name      string
	MemoryMiB uint64
	Prefer    string
	// Current is the host the VM is assigned to now ("" if none).
	Current string
}

// Snapshot is the coordinator's input: what the replicated state holds
// today (hosts with memory, VMs with a preferred host).
type Snapshot struct {
	Hosts []Host
	VMs   []VM
}

// Verdict is one host's answer for one VM.
type Verdict struct {
	Host   string `json:"host"`
	OK     bool   `json:"ok"`
	Reason string `json:"reason"`
	// FreeMiB is the host's free memory once the plan is carried out.
	FreeMiB uint64 `json:"free_mib"`
}

// Decision is the outcome for one VM.
type Decision struct {
	VM string `json:"vm"`
	// Host is where the VM should run; "" means it stays unplaced.
	Host string `json:"host"`
	// Changed is true when Host differs from the VM's current host.
	Changed bool `json:"changed"`
	// Blocked is true when the VM must wait (its host is lost, not fenced).
	Blocked bool   `json:"blocked"`
	Reason  string `json:"reason"`
	// Verdicts explains, per host, why it could or could not take the VM.
	Verdicts []Verdict `json:"verdicts,omitempty"`
}

// PreferScore is the location score a VM's preferred host gets.
const PreferScore Score = 100

// Plan decides a host for every VM in the snapshot with the engine
// (Solve): memory is a utilization key under the balanced strategy, a
// preferred host is a location of PreferScore, and VMs on usable, lost or
// offline hosts stay where they are (those of lost hosts are blocked until
// the fence). The others (new VMs, VMs of fenced or unknown hosts) are
// placed: the preferred host when it can take them, else the most free
// memory, then the fewest VMs, then the name.
func Plan(s Snapshot) []Decision {
	in, known, vms, explain := planInput(s)
	r, err := Solve(in, Options{Explain: explain})
	if err != nil {
		// The snapshot is built from validated state; should it still be
		// refused, keep everything where it is rather than guess.
		out := make([]Decision, 0, len(in.VMs))
		for _, v := range in.VMs {
			out = append(out, Decision{VM: v.Name, Host: v.Current, Reason: "placement refused the snapshot: " + err.Error()})
		}
		return out
	}
	free := map[string]int64{}
	for _, h := range in.Hosts {
		free[h.Name] = h.Capacity["memory"]
	}
	for _, v := range in.VMs {
		if h := r.Placement[v.Name]; h != "" {
			free[h] -= v.Utilization["memory"]
		}
	}
	byName := map[string]VM{}
	for _, vm := range vms {
		byName[vm.Name] = vm
	}
	out := make([]Decision, 0, len(in.VMs))
	for _, v := range in.VMs {
		vm := byName[v.Name]
		out = append(out, planDecision(v, vm, r, known[vm.Current], free))
	}
	return out
}

// planInput is the engine's input for Plan: hosts and VMs deduplicated by
// name (the first wins), VMs by name, the condition of each host, and the
// VMs whose placement Plan explains (all but those that stay put).
func planInput(s Snapshot) (in Input, known map[string]HostCondition, vms []VM, explain []string) {
	in = Input{Policy: Policy{Strategy: StrategyBalanced}}
	known = map[string]HostCondition{}
	for _, h := range s.Hosts {
		if _, dup := known[h.Name]; dup || h.Name == "" {
			continue
		}
		known[h.Name] = h.Condition
		in.Hosts = append(in.Hosts, HostInfo{Name: h.Name, Condition: h.Condition, Capacity: map[string]int64{"memory": clampMiB(h.MemoryMiB)}})
	}
	vms = append([]VM(nil), s.VMs...)
	sort.SliceStable(vms, func(i, j int) bool { return vms[i].Name < vms[j].Name })
	seen := map[string]bool{}
	for _, vm := range vms {
		if seen[vm.Name] || vm.Name == "" {
			continue
		}
		seen[vm.Name] = true
		v := VMInfo{Name: vm.Name, Current: vm.Current, Utilization: map[string]int64{"memory": clampMiB(vm.MemoryMiB)}}
		c, ok := known[vm.Current]
		if !ok {
			v.Current = "" // a host no longer configured: place the VM anew
		}
		if ok && c == Usable {
			v.pinned = true
		} else {
			explain = append(explain, vm.Name)
		}
		if _, ok := known[vm.Prefer]; ok && vm.Prefer != "" {
			in.Locations = append(in.Locations, Location{VM: vm.Name, Host: vm.Prefer, Score: PreferScore})
		}
		in.VMs = append(in.VMs, v)
	}
	return in, known, vms, explain
}

// planDecision is Plan's answer for VM v (vm as given in the snapshot, c
// the condition of the host it ran on) from the engine's result r; free is
// each host's memory left after the plan.
func planDecision(v VMInfo, vm VM, r *Result, c HostCondition, free map[string]int64) Decision {
	d := Decision{VM: v.Name, Host: r.Placement[v.Name]}
	d.Changed = d.Host != vm.Current
	switch {
	case r.Blocked[v.Name] != "":
		d.Blocked = true
		d.Reason = r.Blocked[v.Name]
	case v.pinned:
		d.Reason = "stays on " + d.Host
	case v.Current != "" && c == Offline:
		d.Reason = v.Current + " left the cluster; the VM stays assigned to it"
	default:
		ex := r.Explanations[v.Name]
		d.Reason = ex.Reason
		if d.Host != "" && d.Host == vm.Prefer {
			d.Reason = "preferred host " + d.Host + ": " + d.Reason
		}
		for _, he := range ex.Hosts {
			vd := Verdict{Host: he.Host, OK: he.Eligible, FreeMiB: uint64(max(free[he.Host], 0))}
			if len(he.Filters) > 0 {
				vd.Reason = strings.Join(he.Filters, "; ")
			} else {
				vd.Reason = "score " + he.Score.String()
			}
			d.Verdicts = append(d.Verdicts, vd)
		}
	}
	return d
}

func clampMiB(m uint64) int64 {
	const maxMiB = 1 << 50
	if m > maxMiB {
		return maxMiB
	}
	return int64(m)
}
