package pacemaker

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/vmha/vmha/internal/testlab/testenv"
	"github.com/vmha/vmha/placement"
)

// benchCluster is the crm_simulate figure: hosts × VMs, each VM
// preferring one host (100), balanced, one host in standby.
func benchCluster(nh, nv int) placement.Input {
	in := placement.Input{Policy: placement.Policy{Strategy: placement.StrategyBalanced, DefaultStickiness: 100}}
	for i := 0; i < nh; i++ {
		in.Hosts = append(in.Hosts, placement.HostInfo{Name: fmt.Sprintf("host%03d", i),
			Capacity: map[string]int64{"memory": int64(nv/nh+2) * 2048, "cpu": int64(nv/nh+2) * 4}})
	}
	in.Hosts[0].Standby = true
	for i := 0; i < nv; i++ {
		name := fmt.Sprintf("vm%05d", i)
		in.VMs = append(in.VMs, placement.VMInfo{Name: name, Current: in.Hosts[i%nh].Name,
			Utilization: map[string]int64{"memory": 1024, "cpu": 2}})
		in.Locations = append(in.Locations, placement.Location{VM: name, Host: in.Hosts[(i+1)%nh].Name, Score: 100})
	}
	return in
}

// BenchmarkCrmSimulateRatio runs crm_simulate and vmha's engine on the
// same generated CIB and reports both times and their ratio. The size is
// VMHA_BENCH_HOSTS × VMHA_BENCH_VMS (default 8 × 200, since crm_simulate
// needs seconds to minutes on the 32 × 2000).
func BenchmarkCrmSimulateRatio(b *testing.B) {
	path := testenv.NeedCommand(b, "crm_simulate")
	nh, nv := envInt("VMHA_BENCH_HOSTS", 8), envInt("VMHA_BENCH_VMS", 200)
	in := benchCluster(nh, nv)
	cib := WriteCIB(&in)
	var pcmk, vmha time.Duration
	for b.Loop() {
		t0 := time.Now()
		if _, err := Simulate(context.Background(), path, cib); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		back, _, err := ReadCIB(cib, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		if _, err := placement.Solve(back, placement.Options{Scores: true}); err != nil {
			b.Fatal(err)
		}
		pcmk += t1.Sub(t0)
		vmha += time.Since(t1)
	}
	b.ReportMetric(float64(pcmk.Milliseconds())/float64(b.N), "crm_simulate-ms/op")
	b.ReportMetric(float64(vmha.Microseconds())/1000/float64(b.N), "vmha-ms/op")
	b.ReportMetric(float64(pcmk)/float64(vmha), "ratio")
}

func envInt(k string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(k)); err == nil && v > 0 {
		return v
	}
	return def
}
