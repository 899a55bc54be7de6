package migration

import (
	"context"
	"fmt"
	"os/exec"
	"testing"
	"time"

	"github.com/vmha/vmha/internal/testlab/virtlab"
)

// Benchmarks against the real lab (two libvirtd, QEMU TCG, 128 MiB guests).
// One operation is one migration, seconds long, so run them with a fixed
// count, e.g.:
//
//	go test -run '^$' -bench 'Migrate|Evacuate' -benchtime 6x ./migration/

// BenchmarkMigrate bounces one guest between the two hosts, alternately with
// this package (vmha) and with a plain `virsh migrate` of the same flags and
// migration URI, so the difference is vmha's orchestration: three
// connections, the safety check, hooks, progress sampling on a second
// connection, and verification on both hosts afterwards.
func BenchmarkMigrate(b *testing.B) {
	hosts := virtlab.NewHosts(b, 2)
	img := virtlab.TestImage(b)
	const vm = "bench1"
	virtlab.StartGuest(b, hosts[0], img, vm)
	cur := 0 // index of the host the guest is on
	hop := func() (from, to *virtlab.Host) {
		from, to = hosts[cur], hosts[1-cur]
		cur = 1 - cur
		return from, to
	}

	b.Run("vmha", func(b *testing.B) {
		m := &Migrator{}
		var downtime, overhead time.Duration
		for i := 0; i < b.N; i++ {
			from, to := hop()
			res, err := m.Migrate(context.Background(), vm, endpoint(from), endpoint(to), Options{Timeout: 2 * time.Minute}, nil)
			if err != nil {
				b.Fatal(err)
			}
			downtime += res.Job.Downtime
			overhead += res.Wall - res.JobWall
		}
		b.ReportMetric(float64(downtime.Milliseconds())/float64(b.N), "downtime-ms")
		b.ReportMetric(float64(overhead.Milliseconds())/float64(b.N), "around-call-ms")
	})
	b.Run("virsh", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			from, to := hop()
			out, err := exec.Command("virsh", "-c", from.URI, "migrate", "--live", "--p2p", "--persistent",
				"--undefinesource", vm, to.URI, "tcp://127.0.0.1").CombinedOutput()
			if err != nil {
				b.Fatalf("virsh migrate %s -> %s: %v: %s", from.Name, to.Name, err, out)
			}
		}
	})
}

// BenchmarkEvacuate moves four guests with Parallel 2 between the hosts per
// operation, and before each run one more guest alone, so the report
// compares the evacuation's wall time with the ideal ceil(4/2) = 2 single
// migrations (ratio 1.0 is perfect scaling; on 2 cores the TCG guests and
// both QEMU streams compete for CPU, so expect more).
func BenchmarkEvacuate(b *testing.B) {
	hosts := virtlab.NewHosts(b, 2)
	img := virtlab.TestImage(b)
	const n, parallel = 4, 2
	vms := []string{"solo"}
	for i := 1; i <= n; i++ {
		vms = append(vms, fmt.Sprintf("evac%d", i))
	}
	for _, vm := range vms {
		if err := virtlab.DefineAndStart(hosts[0], img, vm, 128); err != nil {
			b.Fatal(err)
		}
	}
	for _, vm := range vms {
		if err := virtlab.WaitCounter(hosts[0].SerialLog(vm), 1, 3*time.Minute); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	cur := 0
	var single, evac time.Duration
	m := &Migrator{}
	for i := 0; i < b.N; i++ {
		from, to := hosts[cur], hosts[1-cur]
		cur = 1 - cur
		b.StopTimer()
		res, err := m.Migrate(context.Background(), "solo", endpoint(from), endpoint(to), Options{Timeout: 2 * time.Minute}, nil)
		if err != nil {
			b.Fatal(err)
		}
		single += res.Wall
		b.StartTimer()
		var mvs []Move
		for _, vm := range vms[1:] {
			mvs = append(mvs, Move{VM: vm, Source: endpoint(from), Target: endpoint(to), Options: Options{Timeout: 2 * time.Minute}})
		}
		rep, err := (&Executor{Migrate: m.Migrate, Parallel: parallel}).Run(context.Background(), mvs)
		if err != nil {
			b.Fatal(err)
		}
		evac += rep.Wall
	}
	ideal := float64(single) / float64(b.N) * float64((n+parallel-1)/parallel)
	b.ReportMetric(float64(single.Milliseconds())/float64(b.N), "single-ms")
	b.ReportMetric(float64(evac.Milliseconds())/float64(b.N), "evacuate-ms")
	b.ReportMetric(float64(evac)/float64(b.N)/ideal, "x-ideal")
}
