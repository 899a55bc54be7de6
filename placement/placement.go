// Package placement decides where VMs run. It is pure: it takes a snapshot
// and returns decisions with the reasons for them, and never touches the
// world. The foundation engine places only VMs that need a host (new VMs and
// the VMs of fenced hosts): the preferred host when it can take the VM, else
// the usable host with the most free memory. The full Pacemaker-compatible
// engine replaces the scoring later behind the same Plan function.
package placement

import (
	"fmt"
	"sort"
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

// Snapshot is the planner's whole input.
type Snapshot struct {
	Hosts []Host
	VMs   []VM
}

// Verdict is one host's answer for one VM.
type Verdict struct {
	Host    string `json:"host"`
	OK      bool   `json:"ok"`
	Reason  string `json:"reason"`
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

// Plan decides a host for every VM in the snapshot. VMs on usable, lost or
// offline hosts stay where they are; the others are placed in name order
// so that the same snapshot always yields the same plan.
func Plan(s Snapshot) []Decision {
	hosts := make(map[string]Host, len(s.Hosts))
	used := make(map[string]uint64, len(s.Hosts))
	for _, h := range s.Hosts {
		hosts[h.Name] = h
	}
	vms := append([]VM(nil), s.VMs...)
	sort.Slice(vms, func(i, j int) bool { return vms[i].Name < vms[j].Name })

	out := make([]Decision, 0, len(vms))
	var toPlace []VM
	for _, vm := range vms {
		h, ok := hosts[vm.Current]
		if !ok || vm.Current == "" || h.Condition == Released {
			toPlace = append(toPlace, vm)
			continue
		}
		// A VM stays on its host and counts against its capacity.
		used[h.Name] += vm.MemoryMiB
		d := Decision{VM: vm.Name, Host: h.Name}
		switch h.Condition {
		case Usable:
			d.Reason = "stays on " + h.Name
		case Offline:
			d.Reason = h.Name + " left the cluster; the VM stays assigned to it"
		case Lost:
			d.Blocked = true
			d.Reason = "waiting for " + h.Name + " to be fenced before recovery"
		}
		out = append(out, d)
	}
	for _, vm := range toPlace {
		d := place(vm, s.Hosts, used)
		if d.Host != "" {
			used[d.Host] += vm.MemoryMiB
		}
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].VM < out[j].VM })
	return out
}

// place picks a host for one VM: filters say which hosts can take it, then
// the preferred host wins, then the most free memory, then the name.
func place(vm VM, hosts []Host, used map[string]uint64) Decision {
	d := Decision{VM: vm.Name}
	var best *Verdict
	for _, h := range hosts {
		v := Verdict{Host: h.Name}
		if h.MemoryMiB > used[h.Name] {
			v.FreeMiB = h.MemoryMiB - used[h.Name]
		}
		switch {
		case h.Condition != Usable:
			v.Reason = "host is " + h.Condition.String()
		case v.FreeMiB < vm.MemoryMiB:
			v.Reason = fmt.Sprintf("insufficient memory: %d MiB free, %d MiB needed", v.FreeMiB, vm.MemoryMiB)
		default:
			v.OK = true
			v.Reason = fmt.Sprintf("%d MiB free", v.FreeMiB)
			if h.Name == vm.Prefer {
				v.Reason += ", preferred host"
			}
		}
		d.Verdicts = append(d.Verdicts, v)
	}
	sort.Slice(d.Verdicts, func(i, j int) bool { return d.Verdicts[i].Host < d.Verdicts[j].Host })
	for i := range d.Verdicts {
		v := &d.Verdicts[i]
		if !v.OK {
			continue
		}
		if best == nil || better(*v, *best, vm.Prefer) {
			best = v
		}
	}
	if best == nil {
		d.Reason = "no host can run it"
		d.Changed = vm.Current != ""
		return d
	}
	d.Host = best.Host
	d.Changed = d.Host != vm.Current
	if best.Host == vm.Prefer {
		d.Reason = "preferred host " + best.Host
	} else {
		d.Reason = fmt.Sprintf("most free memory on %s (%d MiB)", best.Host, best.FreeMiB)
	}
	return d
}

func better(a, b Verdict, prefer string) bool {
	if (a.Host == prefer) != (b.Host == prefer) {
		return a.Host == prefer
	}
	if a.FreeMiB != b.FreeMiB {
		return a.FreeMiB > b.FreeMiB
	}
	return a.Host < b.Host
}
