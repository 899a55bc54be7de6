package migration

import (
	"context"
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
