package placement

import (
	"strings"
	"testing"

	"pgregory.net/rapid"
)

func TestPlan(t *testing.T) {
	hosts := []Host{
		{Name: "h1", Condition: Usable, MemoryMiB: 4096},
		{Name: "h2", Condition: Usable, MemoryMiB: 8192},
		{Name: "h3", Condition: Released, MemoryMiB: 16384},
	}
	tests := []struct {
		name       string
		hosts      []Host
		vms        []VM
		want       map[string]string
		wantReason map[string]string
	}{
		{"new VM goes to preferred host", hosts,
			[]VM{{Name: "a", MemoryMiB: 512, Prefer: "h1"}},
			map[string]string{"a": "h1"}, map[string]string{"a": "preferred"}},
		{"new VM without preference goes to most free memory", hosts,
			[]VM{{Name: "a", MemoryMiB: 512}},
			map[string]string{"a": "h2"}, map[string]string{"a": "more free capacity"}},
		{"VM of fenced host recovers on preferred survivor", hosts,
			[]VM{{Name: "a", MemoryMiB: 512, Prefer: "h1", Current: "h3"}},
			map[string]string{"a": "h1"}, nil},
		{"preferred host that is released is skipped", hosts,
			[]VM{{Name: "a", MemoryMiB: 512, Prefer: "h3", Current: "h3"}},
			map[string]string{"a": "h2"}, nil},
		{"preferred host without room is skipped", hosts,
			[]VM{{Name: "big", MemoryMiB: 4000, Current: "h1"}, {Name: "b", MemoryMiB: 512, Prefer: "h1"}},
			map[string]string{"big": "h1", "b": "h2"}, nil},
		{"VM of a lost host waits", []Host{{Name: "h1", Condition: Lost, MemoryMiB: 1024}, {Name: "h2", Condition: Usable, MemoryMiB: 1024}},
			[]VM{{Name: "a", MemoryMiB: 512, Current: "h1"}},
			map[string]string{"a": "h1"}, map[string]string{"a": "waiting for h1 to be fenced"}},
		{"nothing fits", []Host{{Name: "h1", Condition: Usable, MemoryMiB: 256}},
			[]VM{{Name: "a", MemoryMiB: 512}},
			map[string]string{"a": ""}, map[string]string{"a": "no host"}},
		{"free memory accounts for earlier placements", []Host{{Name: "h1", Condition: Usable, MemoryMiB: 1024}, {Name: "h2", Condition: Usable, MemoryMiB: 1000}},
			[]VM{{Name: "a", MemoryMiB: 100}, {Name: "b", MemoryMiB: 100}},
			map[string]string{"a": "h1", "b": "h2"}, nil},
		{"tie breaks on name", []Host{{Name: "h2", Condition: Usable, MemoryMiB: 1024}, {Name: "h1", Condition: Usable, MemoryMiB: 1024}},
			[]VM{{Name: "a", MemoryMiB: 100}},
			map[string]string{"a": "h1"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Plan(Snapshot{Hosts: tt.hosts, VMs: tt.vms})
			if len(got) != len(tt.vms) {
				t.Fatalf("got %d decisions for %d VMs", len(got), len(tt.vms))
			}
			for _, d := range got {
				if d.Host != tt.want[d.VM] {
					t.Errorf("%s: host %q, want %q (%s)", d.VM, d.Host, tt.want[d.VM], d.Reason)
				}
				if r, ok := tt.wantReason[d.VM]; ok && !strings.Contains(d.Reason, r) {
					t.Errorf("%s: reason %q, want containing %q", d.VM, d.Reason, r)
				}
			}
		})
	}
}

func TestPlanExplainsEveryHost(t *testing.T) {
	d := Plan(Snapshot{
		Hosts: []Host{{Name: "h1", Condition: Lost, MemoryMiB: 1024}, {Name: "h2", Condition: Usable, MemoryMiB: 100}, {Name: "h3", Condition: Usable, MemoryMiB: 1024}},
		VMs:   []VM{{Name: "a", MemoryMiB: 512}},
	})[0]
	want := map[string]string{"h1": "host is lost (not fenced yet)", "h2": "insufficient capacity: memory 100 free, 512 needed", "h3": "score 0"}
	if len(d.Verdicts) != 3 {
		t.Fatalf("verdicts %+v", d.Verdicts)
	}
	for _, v := range d.Verdicts {
		if v.Reason != want[v.Host] {
			t.Errorf("%s: %q, want %q", v.Host, v.Reason, want[v.Host])
		}
	}
}

// genSnapshot draws a random cluster: hosts in any condition, VMs assigned
// anywhere or nowhere.
func genSnapshot(t *rapid.T) Snapshot {
	nh := rapid.IntRange(1, 6).Draw(t, "hosts")
	var s Snapshot
	names := []string{""}
	for i := 0; i < nh; i++ {
		name := string(rune('a'+i)) + "host"
		names = append(names, name)
		s.Hosts = append(s.Hosts, Host{
			Name:      name,
			Condition: HostCondition(rapid.IntRange(0, 3).Draw(t, "cond")),
			MemoryMiB: uint64(rapid.IntRange(0, 8192).Draw(t, "mem")),
		})
	}
	nv := rapid.IntRange(0, 12).Draw(t, "vms")
	for i := 0; i < nv; i++ {
		s.VMs = append(s.VMs, VM{
			Name:      "vm" + string(rune('a'+i)),
			MemoryMiB: uint64(rapid.IntRange(1, 4096).Draw(t, "vmmem")),
			Prefer:    rapid.SampledFrom(names).Draw(t, "prefer"),
			Current:   rapid.SampledFrom(names).Draw(t, "current"),
		})
	}
	return s
}

func TestPlanProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := genSnapshot(t)
		cond := map[string]HostCondition{}
		for _, h := range s.Hosts {
			cond[h.Name] = h.Condition
		}
		cur := map[string]VM{}
		for _, vm := range s.VMs {
			cur[vm.Name] = vm
		}
		plan := Plan(s)
		if len(plan) != len(s.VMs) {
			t.Fatalf("one decision per VM: %d for %d", len(plan), len(s.VMs))
		}
		newLoad := map[string]uint64{}
		seen := map[string]bool{}
		for _, d := range plan {
			if seen[d.VM] {
				t.Fatalf("%s decided twice", d.VM)
			}
			seen[d.VM] = true
			vm := cur[d.VM]
			checkDecision(t, d, vm, cond)
			if d.Changed && d.Host != "" {
				newLoad[d.Host] += vm.MemoryMiB
			}
		}
		checkNoOvercommit(t, s, newLoad)
		// Planning the planned state changes nothing.
		next := s
		next.VMs = nil
		for _, d := range plan {
			vm := cur[d.VM]
			vm.Current = d.Host
			next.VMs = append(next.VMs, vm)
		}
		for _, d := range Plan(next) {
			if d.Changed && d.Host != "" {
				t.Fatalf("replanning moved %s to %s", d.VM, d.Host)
			}
		}
	})
}

// checkDecision checks Plan's decision d for vm against the conditions of
// the hosts.
func checkDecision(t *rapid.T, d Decision, vm VM, cond map[string]HostCondition) {
	c, known := cond[vm.Current]
	// Fence before recover: a VM of a lost host never moves.
	if known && c == Lost && d.Host != vm.Current {
		t.Fatalf("%s moved off lost host %s to %q", d.VM, vm.Current, d.Host)
	}
	// A VM on a usable host never moves (no surprise moves).
	if known && c == Usable && d.Host != vm.Current {
		t.Fatalf("%s moved off usable host %s", d.VM, vm.Current)
	}
	if d.Changed && d.Host != "" && cond[d.Host] != Usable {
		t.Fatalf("%s placed on %s which is %v", d.VM, d.Host, cond[d.Host])
	}
	if d.Changed != (d.Host != vm.Current) {
		t.Fatalf("%s: Changed=%v but %q -> %q", d.VM, d.Changed, vm.Current, d.Host)
	}
}

// checkNoOvercommit checks that new placements (newLoad, by host) never
// overcommit memory, counting what stays.
func checkNoOvercommit(t *rapid.T, s Snapshot, newLoad map[string]uint64) {
	capacity := map[string]uint64{}
	for _, h := range s.Hosts {
		capacity[h.Name] = h.MemoryMiB
	}
	for h, load := range newLoad {
		for _, vm := range s.VMs {
			if vm.Current == h {
				load += vm.MemoryMiB
			}
		}
		if load > capacity[h] {
			t.Fatalf("%s overcommitted: %d > %d", h, load, capacity[h])
		}
	}
}

func BenchmarkPlanRecovery(b *testing.B) {
	var s Snapshot
	for i := 0; i < 32; i++ {
		s.Hosts = append(s.Hosts, Host{Name: "h" + string(rune('A'+i)), MemoryMiB: 1 << 20})
	}
	s.Hosts[0].Condition = Released
	for i := 0; i < 2000; i++ {
		s.VMs = append(s.VMs, VM{Name: "vm" + string(rune('A'+i%26)) + string(rune('A'+i/26%26)) + string(rune('A'+i/676)), MemoryMiB: 512, Current: s.Hosts[i%32].Name})
	}
	b.ReportAllocs()
	for b.Loop() {
		Plan(s)
	}
}
