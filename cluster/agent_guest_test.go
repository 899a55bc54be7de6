package cluster

import (
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vmha/vmha/clusterspec"
	"github.com/vmha/vmha/hypervisor"
	"github.com/vmha/vmha/model"
)

// A guest crash restarted by the agent is one failure: the domain no
// longer needs destroying once destroyed (it is not restarted again when it
// runs), a crash event of it read late is not a new failure, the next crash
// is, and a cleared fail count is a fresh budget only once the leader had
// counted the last failure. (The lab test TestGuestHealthThroughTheAgent
// found the first two: a restarted guest destroyed again in a loop.)
func TestGuestRestartBookkeeping(t *testing.T) {
	a := &Agent{log: zerolog.Nop()}
	pol := clusterspec.GuestPolicy{Monitor: clusterspec.GuestMonitorCrash, MaxRestarts: 2, Window: time.Hour}
	t0 := time.Now()
	crash := func(at time.Time) {
		a.guestEvent(hypervisor.Event{Domain: "g", State: hypervisor.StateShutoff, Detail: "crashed", Time: at})
	}
	crash(t0)
	crash(t0.Add(time.Millisecond)) // <on_crash>destroy</on_crash> sends two
	g := a.guests["g"]
	if len(g.faults) != 1 || !g.failed || !g.open {
		t.Fatalf("after one crash: %d faults, failed %v, open %v", len(g.faults), g.failed, g.open)
	}
	time.Sleep(5 * time.Millisecond)
	a.guestDestroyed("g", true)
	crash(t0.Add(2 * time.Millisecond)) // sent before the restart, read after it
	if len(g.faults) != 1 || g.failed {
		t.Fatalf("a late event of the handled crash: %d faults, failed %v", len(g.faults), g.failed)
	}
	a.guestRunning("g", pol, time.Now(), false)
	if g.open || g.failed {
		t.Fatalf("running again after the restart: open %v, failed %v", g.open, g.failed)
	}
	crash(time.Now().Add(time.Millisecond))
	if len(g.faults) != 2 || !g.failed {
		t.Fatalf("the next crash: %d faults, failed %v", len(g.faults), g.failed)
	}

	guestCleanup(g, nil) // not counted by the leader yet: kept
	if len(g.faults) != 2 {
		t.Fatal("faults forgotten before the leader counted them")
	}
	guestCleanup(g, &model.Failure{Count: 2, Last: g.faults[1]})
	guestCleanup(g, nil) // vmha vm cleanup
	if len(g.faults) != 0 || g.gaveUp != "" {
		t.Fatalf("after the cleanup: %d faults, gave up %q", len(g.faults), g.gaveUp)
	}
}

// A guest in heartbeat mode that has not answered since it started is
// booting: it gets guest-heartbeat-startup, and only after its first
// answer does guest-heartbeat-timeout count, from its last answer.
func TestGuestHeartbeatStartupGrace(t *testing.T) {
	a := &Agent{log: zerolog.Nop()}
	pol := clusterspec.GuestPolicy{Monitor: clusterspec.GuestMonitorHeartbeat, HeartbeatTimeout: 10 * time.Second, HeartbeatStartup: time.Minute, MaxRestarts: 3, Window: time.Hour}
	t0 := time.Now()
	hung := func() bool { g := a.guests["g"]; return g != nil && g.open && g.failed }
	a.guestRunning("g", pol, t0, true)
	a.guests["g"].pinging = false
	if a.guestRunning("g", pol, t0.Add(30*time.Second), true); hung() {
		t.Fatal("a guest silent for 30 s since its start counted as hung: its startup grace is a minute")
	}
	a.guests["g"].pinging = false
	a.guests["g"].lastOK = t0.Add(40 * time.Second) // its agent is up
	if a.guestRunning("g", pol, t0.Add(45*time.Second), true); hung() {
		t.Fatal("hung 5 s after an answer")
	}
	a.guests["g"].pinging = false
	if a.guestRunning("g", pol, t0.Add(51*time.Second), true); !hung() {
		t.Fatal("silent 11 s after its last answer, with a 10 s timeout, yet not hung")
	}
	if why := a.guests["g"]; why == nil || len(why.faults) != 1 {
		t.Fatalf("faults: %+v", why)
	}
	// Never answered at all: hung once the grace is over.
	b := &Agent{log: zerolog.Nop()}
	b.guestRunning("h", pol, t0, true)
	b.guests["h"].pinging = false
	if b.guestRunning("h", pol, t0.Add(61*time.Second), true); !b.guests["h"].open || !b.guests["h"].failed {
		t.Fatal("silent since its start, past the grace, yet not hung")
	}
}
