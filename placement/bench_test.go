package placement

import (
	"fmt"
	"testing"
)

// benchInput builds a cluster of nh hosts and nv VMs spread over them, with
// a preferred host per VM (score 100), a ping rule, one host in standby
// and the balanced strategy: the shape of the crm_simulate figure.
// short makes capacity short: the hosts offer about 90% of the memory
// the VMs need, so about a tenth of them stay stopped.
func benchInput(nh, nv int, short bool) Input {
	in := Input{Policy: Policy{Strategy: StrategyBalanced, DefaultStickiness: 100}}
	perHost := int64(nv/nh+2) * 2048
	if short {
		perHost = int64(nv/nh) * 2048 * 7 / 10
	}
	for i := 0; i < nh; i++ {
		in.Hosts = append(in.Hosts, HostInfo{
			Name:       fmt.Sprintf("host%04d", i),
			Capacity:   map[string]int64{"memory": perHost, "cpu": perHost / 512},
			Attributes: map[string]string{"pingd": "100", "zone": fmt.Sprint(i % 3)},
		})
	}
	in.Hosts[0].Standby = true
	for i := 0; i < nv; i++ {
		name := fmt.Sprintf("vm%05d", i)
		in.VMs = append(in.VMs, VMInfo{
			Name:        name,
			Current:     in.Hosts[i%nh].Name,
			Utilization: map[string]int64{"memory": int64(1024 + 1024*(i%2)), "cpu": int64(1 + i%3)},
			Priority:    i % 3,
		})
		in.Locations = append(in.Locations, Location{VM: name, Host: in.Hosts[(i+1)%nh].Name, Score: 100})
		if i%10 == 0 {
			in.LocationRules = append(in.LocationRules, LocationRule{VM: name, Rule: Rule{Score: -Infinity,
				Expressions: []Expression{{Attribute: "pingd", Operation: "lte", Value: "0"}}}})
		}
	}
	return in
}

func benchSolve(b *testing.B, nh, nv int, short bool) {
	in := benchInput(nh, nv, short)
	r, err := Solve(in, Options{})
	if err != nil {
		b.Fatal(err)
	}
	stopped := 0
	for _, h := range r.Placement {
		if h == "" {
			stopped++
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Solve(in, Options{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(stopped), "stopped")
}

func BenchmarkSolve32x2000(b *testing.B)         { benchSolve(b, 32, 2000, false) }
func BenchmarkSolve32x2000Short(b *testing.B)    { benchSolve(b, 32, 2000, true) }
func BenchmarkSolve1000x50000(b *testing.B)      { benchSolve(b, 1000, 50000, false) }
func BenchmarkSolve1000x50000Short(b *testing.B) { benchSolve(b, 1000, 50000, true) }
