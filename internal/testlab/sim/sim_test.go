package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	_ "net/http/pprof" // SIM_PPROF=ADDR serves profiles of a running simulation
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/vmha/vmha/cluster"
	"github.com/vmha/vmha/config"
	"github.com/vmha/vmha/model"
)

// TestSimulatedClusterSmall: 3 real voters and 40 simulated hosts running
// 1,000 VMs. One host loses its power; the cluster must detect it through
// gossip, fence it through the fence agent, and start its VMs elsewhere,
// with no VM ever active on two hypervisors at any sample.
func TestSimulatedClusterSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a simulated cluster (about 20 s)")
	}
	dir := t.TempDir()
	if d := os.Getenv("SIM_DIR"); d != "" {
		dir = d // keep the logs for a look afterwards
	}
	// The benchmarks' timers, not vmhad's defaults. With the defaults
	// (suspicion ×3 since issue 17) no healthy host was fenced in 53 runs
	// (86 host failures) beside one or two busy loops per core, but with
	// other jobs' load on top (load average 8-13 on two cores) 2 runs of
	// 11 did: a stall of the whole process longer than the suspicion
	// timeout (about 1 s at 43 members) cannot be refuted in time, and a
	// false fence fails this test (docs/scale.md, "Failure detection
	// under load").
	c, err := Start(Options{Dir: dir, Hosts: 40, VMs: 1000, Logf: t.Logf, Gossip: benchGossip})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	victim := "sim0007"
	f, err := c.FailHost(victim, 45*time.Second)
	if f != nil {
		t.Logf("failure: %s", f)
	}
	if err != nil {
		t.Fatal(err)
	}
	if f.VMs == 0 {
		t.Fatalf("%s ran no VM: nothing was recovered", victim)
	}
	if !f.Lost.Before(f.Fenced) || f.Fenced.After(f.Recovered) {
		t.Errorf("order: lost %v, fenced %v, recovered %v; want lost < fenced <= recovered", f.Lost, f.Fenced, f.Recovered)
	}
	fences := c.Fences()
	if fences[victim] != 1 || len(fences) != 1 {
		t.Errorf("fence script powered off %v, want only %s once", fences, victim)
	}
	if f.OthersLost != 0 {
		t.Errorf("%d other hosts were marked lost", f.OthersLost)
	}
	var rec *model.FenceRecord
	c.replica.fsm.Read(func(s *model.State) {
		for i := range s.Status.FenceHistory {
			if r := s.Status.FenceHistory[i]; r.Host == victim && r.OK && strings.Contains(r.Device, "fence_vmhasim plug "+victim) {
				rec = &r
			}
		}
	})
	if rec == nil {
		t.Errorf("no successful fence of %s by its fence_vmhasim device in the fence history", victim)
	}
	if err := c.waitFor(30*time.Second, "every VM running where it is placed", c.settled); err != nil {
		t.Error(err)
	}
	bad, samples := c.Violations()
	if samples < 10 {
		t.Errorf("only %d never-twice samples were taken", samples)
	}
	if len(bad) > 0 {
		t.Errorf("VMs active on two hosts:\n%s", strings.Join(bad, "\n"))
	}
	t.Logf("%d never-twice samples, none with a VM on two hosts", samples)

	// The checker itself: a VM started behind the cluster's back on a
	// second host must be seen.
	t.Run("checker catches a double start", func(t *testing.T) {
		ctx := context.Background()
		a, b := c.Host("sim0001"), c.Host("sim0002")
		vms := a.HV.Active()
		if len(vms) == 0 {
			t.Fatal("sim0001 runs nothing")
		}
		xml := vmXML(vms[0], 1024)
		_, before := c.Violations()
		if _, err := b.HV.Define(ctx, xml); err != nil {
			t.Fatal(err)
		}
		if err := b.HV.Start(ctx, vms[0]); err != nil {
			t.Fatal(err)
		}
		// Sample at once: under load, sim0002's agent may stop the
		// stray copy before the checker's next tick.
		c.sampleOnce()
		err := c.waitFor(30*time.Second, "the checker to see the double start", func() bool {
			bad, n := c.Violations()
			return len(bad) > 0 && n > before
		})
		if err != nil {
			t.Fatal(err)
		}
		bad, _ := c.Violations()
		if !strings.Contains(bad[0], vms[0]) {
			t.Fatalf("violation %q does not name %s", bad[0], vms[0])
		}
	})
}

// BenchmarkHostFailure measures one host failure end to end at two sizes:
// detection (kill → lost committed), fencing (lost → fenced committed),
// recovery (fenced → every VM of the host running elsewhere), the total,
// and the live heap one more real host daemon costs with the full state.
//
//	go test -run '^$' -bench HostFailure -benchtime 1x -timeout 60m ./internal/testlab/sim/
//
// SIM_GOSSIP=PROBE,TIMEOUT,GOSSIP,MULT overrides the gossip timers,
// SIM_VERBOSE=1 prints progress, SIM_PPROF=ADDR serves pprof.
func BenchmarkHostFailure(b *testing.B) {
	for _, size := range []struct{ hosts, vms int }{{100, 5000}, {1000, 50000}} {
		b.Run(fmt.Sprintf("%dx%d", size.hosts, size.vms), func(b *testing.B) {
			benchFailure(b, size.hosts, size.vms)
		})
	}
}

// benchGossip are the benchmarks' failure-detector timers: vmhad's
// defaults (200ms/100ms/100ms/x3) assume one daemon per machine; hundreds of
// memberlist instances sharing two busy cores cannot refute suspicions in
// time and declare healthy hosts dead (docs/scale.md). Zero: vmhad's
// defaults.
var benchGossip = config.Gossip{ProbeInterval: time.Second, ProbeTimeout: 500 * time.Millisecond, GossipInterval: 200 * time.Millisecond, SuspicionMult: 2}

func benchFailure(b *testing.B, hosts, vms int) {
	if addr := os.Getenv("SIM_PPROF"); addr != "" {
		srv := &http.Server{Addr: addr, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.ListenAndServe() }()
		defer func() { _ = srv.Close() }()
	}
	logf := b.Logf
	if os.Getenv("SIM_VERBOSE") != "" {
		logf = func(format string, args ...any) {
			fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05.000 ")+format+"\n", args...)
		}
	}
	// One process holds a thousand daemons' garbage; each real daemon
	// collects its own small heap. A higher GOGC keeps the collector from
	// taking the CPU the simulated daemons need.
	defer debug.SetGCPercent(debug.SetGCPercent(200))
	t0 := time.Now()
	o := Options{Dir: b.TempDir(), Hosts: hosts, VMs: vms, Logf: logf, SampleEvery: 250 * time.Millisecond, Gossip: benchGossip}
	if hosts >= 500 {
		// 1,000 instances with 1-2 s probes saturate two cores and never
		// converge (docs/scale.md); 5 s probes do.
		o.Gossip = config.Gossip{ProbeInterval: 5 * time.Second, ProbeTimeout: 2500 * time.Millisecond, GossipInterval: time.Second, SuspicionMult: 2}
	}
	if g := os.Getenv("SIM_GOSSIP"); g != "" {
		// PROBE,TIMEOUT,GOSSIP,MULT, e.g. 200ms,100ms,100ms,2
		var err error
		if o.Gossip, err = parseGossip(g); err != nil {
			b.Fatal(err)
		}
	}
	logf("gossip timers: probe %v, timeout %v, gossip %v, suspicion x%d", o.Gossip.ProbeInterval, o.Gossip.ProbeTimeout, o.Gossip.GossipInterval, o.Gossip.SuspicionMult)
	c, err := Start(o)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	logf("cluster up in %v", time.Since(t0).Round(time.Millisecond))
	mem, err := c.MeasureDaemon()
	if err != nil {
		b.Fatal(err)
	}
	logf("one more daemon: %.1f MB live heap, caught up in %v (bootstrapped a raft cluster of its own: %v); process heap %.0f MB, RSS %.0f MB",
		float64(mem.DaemonHeap)/1e6, mem.CatchUp.Round(time.Millisecond), mem.Bootstrapped, float64(mem.ProcessHeap)/1e6, float64(mem.ProcessRSS)/1e6)
	var detect, fence, recovery, total time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		victim := c.HostNames()[(i*7+3)%hosts]
		f, err := c.FailHost(victim, 10*time.Minute)
		if f != nil {
			logf("failure %d: %s", i+1, f)
		}
		if err != nil {
			b.Fatal(err)
		}
		if f.OthersLost > 0 {
			b.Errorf("%d hosts other than %s were marked lost", f.OthersLost, victim)
		}
		detect += f.Detect()
		fence += f.FenceTime()
		recovery += f.Recover()
		total += f.Total()
	}
	b.StopTimer()
	if bad, n := c.Violations(); len(bad) > 0 {
		b.Errorf("VMs active on two hosts (%d samples):\n%s", n, strings.Join(bad, "\n"))
	}
	n := float64(b.N)
	b.ReportMetric(detect.Seconds()/n, "detect-s")
	b.ReportMetric(fence.Seconds()/n, "fence-s")
	b.ReportMetric(recovery.Seconds()/n, "recover-s")
	b.ReportMetric(total.Seconds()/n, "total-s")
	b.ReportMetric(float64(mem.DaemonHeap)/1e6, "heap-MB/daemon")
	b.ReportMetric(float64(mem.ProcessHeap)/1e6, "process-heap-MB")
	b.ReportMetric(float64(mem.ProcessRSS)/1e6, "process-rss-MB")
}

// BenchmarkStateCopy measures cluster.FSM.Copy (a JSON round trip of the
// whole state), which the coordinator runs five times per pass, every agent
// once or twice per reconcile, and POST /v1/vms once per added VM, on the
// seed state of each size (every host registered, every VM placed).
//
//	go test -run '^$' -bench StateCopy -benchtime 5x ./internal/testlab/sim/
func BenchmarkStateCopy(b *testing.B) {
	for _, size := range []struct{ hosts, vms int }{{100, 5000}, {1000, 50000}} {
		b.Run(fmt.Sprintf("%dx%d", size.hosts, size.vms), func(b *testing.B) {
			o := Options{Dir: b.TempDir(), Hosts: size.hosts, VMs: size.vms}
			if err := o.defaults(); err != nil {
				b.Fatal(err)
			}
			c := &Cluster{opts: o, byName: map[string]*Host{}}
			c.addHosts()
			if err := c.writeFenceScript(); err != nil {
				b.Fatal(err)
			}
			t0 := time.Now()
			f, _, err := c.seedState()
			if err != nil {
				b.Fatal(err)
			}
			b.Logf("seed built in %v", time.Since(t0).Round(time.Millisecond))
			snap, err := f.Snapshot()
			if err != nil {
				b.Fatal(err)
			}
			var sink bytesSink
			_ = snap.Persist(&sink)
			// The state as one daemon holds it: a fresh FSM restored
			// from the snapshot, alone on the heap.
			raw, _ := json.Marshal(f.Copy())
			before := HeapInuse()
			held := cluster.NewFSM()
			if err := held.Restore(io.NopCloser(bytes.NewReader(raw))); err != nil {
				b.Fatal(err)
			}
			heldMB := (float64(HeapInuse()) - float64(before)) / 1e6
			runtime.KeepAlive(held)
			runtime.KeepAlive(raw) // alive on both sides of the measure
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				_ = f.Copy()
			}
			b.ReportMetric(float64(sink.n)/1e6, "state-MB")
			b.ReportMetric(heldMB, "fsm-heap-MB")
		})
	}
}

// bytesSink counts a snapshot's bytes.
type bytesSink struct{ n int }

func (s *bytesSink) Write(p []byte) (int, error) { s.n += len(p); return len(p), nil }
func (s *bytesSink) ID() string                  { return "count" }
func (s *bytesSink) Cancel() error               { return nil }
func (s *bytesSink) Close() error                { return nil }
