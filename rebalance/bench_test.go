package rebalance

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/vmha/vmha/placement"
)

// benchInput builds a cluster of nh hosts of three sizes, filled to about
// 60% by nv VMs of common flavours, placed with a bias toward the first
// hosts so that there is something to balance. With pins, one VM in 50
// gets a location constraint, so the engine's scores are part of the cost.
func benchInput(nh, nv int, pins bool) placement.Input {
	r := rand.New(rand.NewPCG(uint64(nh), uint64(nv)))
	in := placement.Input{Policy: placement.Policy{Strategy: placement.StrategyUtilization}}
	flavours := [][2]int64{{1024, 1}, {2048, 1}, {4096, 2}, {8192, 2}, {8192, 4}, {16384, 4}, {32768, 8}}
	var avg [2]float64
	for _, f := range flavours {
		avg[0] += float64(f[0]) / float64(len(flavours))
		avg[1] += float64(f[1]) / float64(len(flavours))
	}
	// Host sizes half, once and twice the base; the base makes the whole
	// cluster about 60% full.
	mult := []float64{0.5, 1, 2}
	perHost := float64(nv) / float64(nh) / 0.6 / (3.5 / 3)
	free := make([][2]int64, nh)
	for i := 0; i < nh; i++ {
		x := mult[r.IntN(len(mult))]
		c := [2]int64{int64(x * perHost * avg[0]), int64(x * perHost * avg[1])}
		in.Hosts = append(in.Hosts, placement.HostInfo{Name: fmt.Sprintf("h%04d", i), Capacity: map[string]int64{"memory": c[0], "cpu": c[1]}})
		free[i] = c
	}
	for i := 0; i < nv; i++ {
		f := flavours[r.IntN(len(flavours))]
		h := -1
		for try := 0; try < 50 && h < 0; try++ {
			x := r.Float64()
			if c := int(x * x * float64(nh)); free[c][0] >= f[0] && free[c][1] >= f[1] {
				h = c
			}
		}
		for c := 0; c < nh && h < 0; c++ {
			if free[c][0] >= f[0] && free[c][1] >= f[1] {
				h = c
			}
		}
		if h < 0 {
			continue
		}
		free[h][0] -= f[0]
		free[h][1] -= f[1]
		in.VMs = append(in.VMs, placement.VMInfo{
			Name: fmt.Sprintf("vm%05d", i), Current: in.Hosts[h].Name, AllowMigrate: true,
			Utilization: map[string]int64{"memory": f[0], "cpu": f[1]},
		})
		if pins && i%50 == 0 {
			in.Locations = append(in.Locations, placement.Location{VM: in.VMs[len(in.VMs)-1].Name, Host: in.Hosts[h].Name, Score: 100})
		}
	}
	return in
}

func BenchmarkPlan(b *testing.B) {
	for _, c := range []struct {
		hosts, vms int
		pins       bool
	}{{32, 2000, false}, {32, 2000, true}, {1000, 50000, false}, {1000, 50000, true}} {
		in := benchInput(c.hosts, c.vms, c.pins)
		b.Run(fmt.Sprintf("hosts=%d/vms=%d/pins=%v/maxmoves=100", c.hosts, len(in.VMs), c.pins), func(b *testing.B) {
			var res *Result
			for b.Loop() {
				var err error
				res, err = Plan(in, Options{MaxMoves: 100, MinGain: 1e-6})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(res.Moves)), "moves")
			b.ReportMetric(res.Before, "before")
			b.ReportMetric(res.After, "after")
		})
	}
}

// BenchmarkConverge plans without a move cap, to convergence (MinGain
// 1e-6), on the clusters of benchInput without pins: the cost of a whole
// nightly run on a large cluster.
func BenchmarkConverge(b *testing.B) {
	for _, c := range []struct{ hosts, vms int }{{100, 5000}, {1000, 50000}} {
		in := benchInput(c.hosts, c.vms, false)
		b.Run(fmt.Sprintf("hosts=%d/vms=%d", c.hosts, len(in.VMs)), func(b *testing.B) {
			b.ReportAllocs()
			var res *Result
			for b.Loop() {
				var err error
				res, err = Plan(in, Options{MinGain: 1e-6})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(res.Moves)), "moves")
			b.ReportMetric(res.Before, "before")
			b.ReportMetric(res.After, "after")
			b.ReportMetric(float64(res.Moves[len(res.Moves)-1].Step), "steps")
		})
	}
}
