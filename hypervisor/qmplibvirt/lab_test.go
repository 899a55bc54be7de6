package qmplibvirt_test

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vmha/vmha/cluster/reconcile"
	"github.com/vmha/vmha/clusterspec"
	"github.com/vmha/vmha/hypervisor"
	"github.com/vmha/vmha/hypervisor/qmplibvirt"
	"github.com/vmha/vmha/internal/testlab/virtlab"
)

// TestGuestHealthRealQEMU runs one lab host (libvirtd, QEMU TCG) with two
// guests. "loop" panics one counter line after each boot, with a pvpanic
// device and <on_crash>preserve</on_crash>: the hypervisor layer must see
// it crashed, QMP (through libvirt's passthrough) must say guest-panicked,
// and the host's pure pass (reconcile.Decide with guest-monitor crash,
// guest-max-restarts 2) must restart it twice and then give up, leaving it
// stopped. "busy" keeps dirtying memory: the QMP adapter answers
// query-status and measures its dirty rate.
func TestGuestHealthRealQEMU(t *testing.T) {
	hosts := virtlab.NewHosts(t, 1)
	h := hosts[0]
	img, err := virtlab.EnsureCrashImage(virtlab.DefaultCacheDir)
	if err != nil {
		t.Fatalf("crash image: %v", err)
	}
	hv, err := hypervisor.OpenLibvirt(h.URI, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = hv.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for _, g := range []struct {
		name  string
		xml   string
		start bool
	}{
		{"busy", virtlab.CrashGuestXML("busy", img, 0, "destroy", true), true},
		{"loop", virtlab.CrashGuestXML("loop", img, 1, "preserve", false), true},
	} {
		if _, err := hv.Define(ctx, g.xml); err != nil {
			t.Fatal(err)
		}
		if err := hv.Start(ctx, g.name); err != nil {
			t.Fatal(err)
		}
	}

	// The QMP adapter on the live guest.
	t0 := time.Now()
	if err := virtlab.WaitCounter(h.SerialLog("busy"), 2, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	mon := qmplibvirt.New(ctx, hv, "busy")
	st, err := qmplibvirt.QueryStatus(mon)
	if err != nil || !st.Running || st.State != "running" {
		t.Fatalf("query-status of busy: %+v, %v", st, err)
	}
	dr, err := qmplibvirt.MeasureDirtyRate(ctx, mon, time.Second)
	if err != nil {
		t.Fatalf("dirty rate: %v", err)
	}
	pred, err := qmplibvirt.PredictMigration(128, float64(dr.MiBPerSec), 100, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("busy: query-status %s; dirty rate %d MiB/s over %s; predicted migration at 100 MiB/s: %s, downtime %s, converges %v (%s)",
		st.State, dr.MiBPerSec, dr.Period, pred.Time.Round(time.Millisecond), pred.Downtime.Round(time.Millisecond), pred.Converges, time.Since(t0).Round(time.Millisecond))
	if dr.MiBPerSec <= 0 {
		t.Errorf("busy rewrites 8 MiB in a loop, yet its dirty rate is %d MiB/s", dr.MiBPerSec)
	}

	faults, restarts, gaveUp, panickedSeen := crashLoop(ctx, t, hv)
	t.Logf("loop: %d crashes, %d restarts, gave up: %q (%s)", len(faults), restarts, gaveUp, time.Since(t0).Round(time.Millisecond))
	if !panickedSeen {
		t.Error("QMP query-status never said guest-panicked for the crashed guest")
	}
	if restarts != 2 || len(faults) != 3 || gaveUp == "" {
		t.Fatalf("want 3 crashes, 2 restarts, then given up; got %d crashes, %d restarts, %q", len(faults), restarts, gaveUp)
	}
}

// crashLoop plays the host's agent for guest "loop": it watches the domain,
// asks the pure pass, and carries out its restarts, until the pass gives up.
func crashLoop(ctx context.Context, t *testing.T, hv *hypervisor.Libvirt) (faults []time.Time, restarts int, gaveUp string, panickedSeen bool) {
	// The crash loop, run by the host's pure pass.
	policy := clusterspec.GuestPolicy{Monitor: clusterspec.GuestMonitorCrash, MaxRestarts: 2, Window: time.Hour}
	open := false
	deadline := time.Now().Add(60 * time.Second)
	for gaveUp == "" && time.Now().Before(deadline) {
		doms, err := hv.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var d hypervisor.Domain
		for _, x := range doms {
			if x.Name == "loop" {
				d = x
			}
		}
		if d.Crashed && !open {
			open = true
			faults = append(faults, time.Now())
			if s, err := qmplibvirt.QueryStatus(qmplibvirt.New(ctx, hv, "loop")); err == nil && s.Panicked() {
				panickedSeen = true
			} else {
				t.Logf("loop crashed; query-status: %+v %v", s, err)
			}
		}
		if d.State == hypervisor.StateRunning {
			open = false
		}
		in := reconcile.Input{Host: "h1", Synced: true, Now: time.Now(),
			Desired: map[string]reconcile.Desired{"loop": {Host: "h1"}, "busy": {Host: "h1"}},
			Domains: map[string]bool{"loop": d.State.Active(), "busy": true},
			Guests:  map[string]reconcile.Guest{}}
		if len(faults) > 0 {
			in.Guests["loop"] = reconcile.Guest{Policy: policy, Faults: faults, Failed: d.Crashed, Why: "guest crashed"}
		}
		plan := reconcile.Decide(in)
		for _, r := range plan.Restarts {
			if err := hv.Stop(ctx, r.VM, 0); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %s", r.VM, r.Reason)
		}
		for _, s := range plan.Starts {
			if err := hv.Start(ctx, s); err != nil {
				t.Fatal(err)
			}
			restarts++
			open = false
		}
		for _, g := range plan.GaveUp {
			gaveUp = g.Reason
		}
		time.Sleep(200 * time.Millisecond)
	}
	return faults, restarts, gaveUp, panickedSeen
}
