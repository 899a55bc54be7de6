package cluster

import (
	"fmt"
	"testing"
	"time"

	"github.com/vmha/vmha/model"
)

// bigState is a cluster of hosts × vms with a placement and an observation
// per VM, the shape the coordinator copies on every pass.
func bigState(hosts, vms int) *FSM {
	f := NewFSM()
	s := f.state
	for h := range hosts {
		name := fmt.Sprintf("h%04d", h)
		s.Config.Hosts[name] = &model.Host{Name: name, APIAddr: "10.0.0.1:7946", MemoryMiB: 512 << 10, CPUs: 64}
		s.Status.Hosts[name] = &model.HostStatus{State: model.HostAlive, Since: time.Now()}
		s.Status.Observed[name] = &model.Observation{Host: name, At: time.Now(), VMs: map[string]model.VMObserve{}}
	}
	for v := range vms {
		name := fmt.Sprintf("vm%05d", v)
		host := fmt.Sprintf("h%04d", v%hosts)
		s.Config.VMs[name] = &model.VM{Name: name, XML: fmt.Sprintf(vmXML, name), MemoryMiB: 4096, VCPUs: 2}
		s.Status.Placements[name] = &model.Placement{VM: name, Host: host, Generation: uint64(v), Reason: "preferred host", Since: time.Now()}
		s.Status.Observed[host].VMs[name] = model.VMObserve{State: "running", Since: time.Now()}
	}
	return f
}

// BenchmarkFSMCopy: go test -run '^$' -bench FSMCopy -benchmem ./cluster/
func BenchmarkFSMCopy(b *testing.B) {
	for _, sz := range []struct{ hosts, vms int }{{32, 2000}, {1000, 50000}} {
		f := bigState(sz.hosts, sz.vms)
		b.Run(fmt.Sprintf("%dx%d", sz.hosts, sz.vms), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = f.Copy()
			}
		})
	}
}

// BenchmarkAgentSlice is what a host's agent copies per pass: its slice of
// the state (FSM.HostSlice: the 50 VMs placed on it at 1,000 × 50,000),
// where it copied the whole state before (BenchmarkFSMCopy).
//
//	go test -run '^$' -bench 'AgentSlice|FSMCopy' -benchmem ./cluster/
func BenchmarkAgentSlice(b *testing.B) {
	for _, sz := range []struct{ hosts, vms int }{{32, 2000}, {1000, 50000}} {
		f := bigState(sz.hosts, sz.vms)
		b.Run(fmt.Sprintf("%dx%d", sz.hosts, sz.vms), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if s := f.HostSlice("h0001", nil); len(s.Config.VMs) < sz.vms/sz.hosts || len(s.Config.VMs) > sz.vms/sz.hosts+1 {
					b.Fatalf("slice of %d VMs", len(s.Config.VMs))
				}
			}
		})
	}
}
