package reconcile

import (
	"reflect"
	"testing"
	"time"

	"github.com/vmha/vmha/clusterspec"
)

// TestGuestRestartWindow: guest-max-restarts 3 in 1h. Three crashes within
// the hour are restarted; the fourth is not; once the first ages out of the
// window, a new crash is restarted again. Off never restarts.
func TestGuestRestartWindow(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	pol := clusterspec.GuestPolicy{Monitor: clusterspec.GuestMonitorCrash, MaxRestarts: 3, Window: time.Hour}
	at := func(mins ...int) []time.Time {
		var out []time.Time
		for _, m := range mins {
			out = append(out, t0.Add(time.Duration(m)*time.Minute))
		}
		return out
	}
	for _, c := range []struct {
		name   string
		pol    clusterspec.GuestPolicy
		faults []time.Time
		now    time.Time
		want   bool
	}{
		{"first crash", pol, at(0), t0, true},
		{"third crash in the hour", pol, at(0, 5, 10), t0.Add(10 * time.Minute), true},
		{"fourth crash in the hour: given up", pol, at(0, 5, 10, 15), t0.Add(15 * time.Minute), false},
		{"the first aged out of the window", pol, at(0, 5, 10, 61), t0.Add(61 * time.Minute), true},
		{"monitor off", clusterspec.GuestPolicy{Monitor: "off", MaxRestarts: 3, Window: time.Hour}, at(0), t0, false},
		{"max 0: never restarted", clusterspec.GuestPolicy{Monitor: "crash", MaxRestarts: 0, Window: time.Hour}, at(0), t0, false},
	} {
		got, why := GuestRestart(Guest{Policy: c.pol, Faults: c.faults, Why: "guest crashed"}, c.now)
		if got != c.want {
			t.Errorf("%s: restart %v (%s), want %v", c.name, got, why, c.want)
		}
	}
}

// TestDecideGuests: a crashed guest placed here is destroyed and started
// again; one over its limit is given up (a running one is stopped); a
// guest shut off by its crash starts through the ordinary start; a VM
// placed elsewhere is not the guest monitor's business.
func TestDecideGuests(t *testing.T) {
	now := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	pol := clusterspec.GuestPolicy{Monitor: clusterspec.GuestMonitorCrash, MaxRestarts: 1, Window: time.Hour}
	one := []time.Time{now}
	two := []time.Time{now.Add(-time.Minute), now}
	in := Input{Host: "h1", Synced: true, Now: now,
		Desired: map[string]Desired{"crashed": {Host: "h1"}, "loop": {Host: "h1"}, "reset": {Host: "h1"}, "off": {Host: "h1"}, "away": {Host: "h2"}},
		Domains: map[string]bool{"crashed": false, "loop": false, "reset": true, "off": false},
		Managed: map[string]bool{"crashed": true, "loop": true, "reset": true, "off": true},
		Guests: map[string]Guest{
			"crashed": {Policy: pol, Faults: one, Failed: true, Why: "guest crashed"},
			"loop":    {Policy: pol, Faults: two, Failed: true, Why: "guest crashed"},
			"reset":   {Policy: pol, Faults: two, Why: "watchdog fired"},
			"off":     {Policy: pol, Faults: one, Why: "guest crashed"},
		}}
	p := Decide(in)
	if want := []string{"crashed", "off"}; !reflect.DeepEqual(p.Starts, want) {
		t.Errorf("starts %v, want %v", p.Starts, want)
	}
	if len(p.Restarts) != 1 || p.Restarts[0].VM != "crashed" {
		t.Errorf("restarts %+v, want crashed", p.Restarts)
	}
	if len(p.GaveUp) != 2 || p.GaveUp[0].VM != "loop" || p.GaveUp[0].Active || p.GaveUp[1].VM != "reset" || !p.GaveUp[1].Active {
		t.Errorf("gave up %+v, want loop (inactive) and reset (active)", p.GaveUp)
	}
}
