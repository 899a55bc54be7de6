package model

import (
	"strings"
	"testing"
)

func TestCheckFits(t *testing.T) {
	hosts := func(hs ...*Host) map[string]*Host {
		m := map[string]*Host{}
		for _, h := range hs {
			m[h.Name] = h
		}
		return m
	}
	big := &Host{Name: "big", MemoryMiB: 65536, CPUs: 16}
	wide := &Host{Name: "wide", MemoryMiB: 8192, CPUs: 64}
	small := &Host{Name: "small", MemoryMiB: 4096, CPUs: 4}
	witness := &Host{Name: "witness", MemoryMiB: 1 << 20, CPUs: 256, Witness: true}
	vm := func(mem uint64, cpus uint) DomainInfo { return DomainInfo{Name: "vm1", MemoryMiB: mem, VCPUs: cpus} }

	tests := []struct {
		name  string
		vm    DomainInfo
		hosts map[string]*Host
		want  []string // substrings of the error; none: fits
	}{
		{"fits the largest", vm(65536, 16), hosts(small, big), nil},
		{"fits a small host", vm(1024, 1), hosts(small, big), nil},
		{"no hosts", vm(1<<30, 1000), hosts(), nil},
		{"only a witness", vm(1<<30, 1000), hosts(witness), nil},
		{"capacity not reported", vm(1<<30, 2), hosts(small, &Host{Name: "new", CPUs: 8}), nil},
		{"memory too big", vm(65537, 2), hosts(small, big),
			[]string{"vm vm1 needs 65537 MiB and 2 vCPUs", "more memory than the largest host, big, has (65536 MiB)"}},
		{"vcpus too many", vm(1024, 65), hosts(small, big, wide),
			[]string{"65 vCPUs", "more vCPUs than the host with the most CPUs, wide, has (64 CPUs)"}},
		{"both too big, one largest host", vm(70000, 17), hosts(small, big),
			[]string{"more than the largest host, big, has (65536 MiB, 16 CPUs)"}},
		{"both too big, two largest hosts", vm(70000, 65), hosts(big, wide),
			[]string{"the host with the most memory, big, has 65536 MiB", "the host with the most CPUs, wide, has 64 CPUs"}},
		{"no host has both", vm(16384, 32), hosts(big, wide, small),
			[]string{"no host has both", "big, has 65536 MiB and 16 CPUs", "wide, has 8192 MiB and 64 CPUs"}},
		{"a witness does not count", vm(1<<19, 2), hosts(big, witness),
			[]string{"largest host, big"}},
		{"ties name the first host", vm(1<<20, 1), hosts(&Host{Name: "h2", MemoryMiB: 100, CPUs: 1}, &Host{Name: "h1", MemoryMiB: 100, CPUs: 1}),
			[]string{"largest host, h1, has (100 MiB)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckFits(tt.vm, tt.hosts)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("CheckFits = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("CheckFits = nil, want an error containing %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}
