package decide_test

import (
	"fmt"
	"maps"
	"math/rand"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmha/vmha/cluster/decide"
	"github.com/vmha/vmha/model"
)

// untilChecker wraps decide.Pass: after every pass that decided nothing it
// runs the pass again on the same view and memory at times between the
// pass and until's answer (the last nanosecond before it among them), and
// records a violation when one of them decides something. That is the
// promise a runner relies on to skip passes (decide.Until).
func untilChecker(until func(*decide.View, *decide.Memory) time.Time, record func(string)) func(*decide.View, *decide.Memory) decide.Plan {
	return func(v *decide.View, mem *decide.Memory) decide.Plan {
		st0, mem0 := v.State.Clone(), cloneMemory(*mem)
		u := until(v, mem)
		plan := decide.Pass(v, mem)
		if !plan.Idle() {
			return plan
		}
		horizon := u
		if horizon.IsZero() {
			horizon = v.Now.Add(2 * time.Hour)
		}
		span := horizon.Sub(v.Now)
		rng := rand.New(rand.NewSource(v.Now.UnixNano()))
		for _, at := range []time.Time{v.Now.Add(time.Duration(rng.Int63n(int64(span)))), v.Now.Add(span / 2), horizon.Add(-time.Nanosecond)} {
			v2 := *v
			v2.Now, v2.State = at, st0.Clone()
			m2 := cloneMemory(mem0)
			if p := decide.Pass(&v2, &m2); !p.Idle() {
				record(fmt.Sprintf("idle at %s, until %s, but at %s the pass decides:\n%s", v.Now.Format(time.StampMilli), u.Format(time.StampMilli), at.Format(time.StampMilli), p))
				break
			}
		}
		return plan
	}
}

func cloneMemory(m decide.Memory) decide.Memory {
	m.Fencing, m.FailedAt, m.Probes = maps.Clone(m.Fencing), maps.Clone(m.FailedAt), maps.Clone(m.Probes)
	return m
}

// untilViolations runs n random fault schedules with the checker and
// returns the first violations found.
func untilViolations(first int64, n int, until func(*decide.View, *decide.Memory) time.Time) []string {
	var mu sync.Mutex
	var found []string
	record := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		if len(found) < 3 {
			found = append(found, s)
		}
	}
	exploreMany(first, n, untilChecker(until, record))
	return found
}

// A pass that decided nothing decides nothing until decide.Until, as long
// as nothing but the clock changes: checked on random fault schedules
// (fences that fail and are retried, hosts that never show up, watchdogs,
// probes of hosts gossip declared failed, evacuations, rebalances).
func TestUntilHolds(t *testing.T) {
	n := 300
	if testing.Short() {
		n = 100
	}
	first := time.Now().UnixNano()
	if bad := untilViolations(first, n, decide.Until); len(bad) > 0 {
		t.Fatalf("seeds %d..%d: decide.Until promised too much:\n%s", first, first+int64(n)-1, strings.Join(bad, "\n---\n"))
	}
}

// The check can fail: an Until that forgets one clock condition is caught.
func TestUntilCheckFindsPlantedBugs(t *testing.T) {
	bugs := map[string]struct {
		schedules int
		until     func(*decide.View, *decide.Memory) time.Time
	}{
		"forgets probes' freshness": {100, func(v *decide.View, m *decide.Memory) time.Time {
			mm := cloneMemory(*m)
			mm.Probes = nil
			return decide.Until(v, &mm)
		}},
		"forgets the fence retry": {100, func(v *decide.View, m *decide.Memory) time.Time {
			mm := cloneMemory(*m)
			mm.FailedAt = nil
			return decide.Until(v, &mm)
		}},
		"forgets watchdogs": {300, func(v *decide.View, m *decide.Memory) time.Time {
			v2 := *v
			v2.State = v.State.Clone()
			for _, h := range v2.State.Config.Hosts {
				h.Watchdog = 0
			}
			return decide.Until(&v2, m)
		}},
	}
	for name, bug := range bugs {
		t.Run(name, func(t *testing.T) {
			// Fixed seeds: the same schedules every run.
			if bad := untilViolations(1, bug.schedules, bug.until); len(bad) == 0 {
				t.Fatalf("%d schedules did not catch an Until that %s", bug.schedules, name)
			}
		})
	}
}

// The conditions the schedules rarely reach, one by one.
func TestUntilConditions(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 30, 0, time.UTC)
	st := model.NewState()
	st.Config.Hosts["h1"] = &model.Host{Name: "h1"}
	st.Status.Pins = map[string]*model.Pin{"vm1": {Host: "h1", Expires: now.Add(time.Hour)}, "vm2": {Host: "h1"}}
	st.Status.Failures = map[string]map[string]*model.Failure{"vm1": {"h1": {Count: 1, Last: now.Add(-time.Minute)}}}
	st.Status.Evacuations = map[string]*model.Evacuation{"h1": {Host: "h1", Deadline: now.Add(30 * time.Minute)}}
	members := decide.Members{"h1": {Name: "h1", Status: decide.MemberAlive}}
	v := &decide.View{Now: now, State: st, Members: members}
	// The failure expires first (10 min default timeout, 1 min ago).
	if got, want := decide.Until(v, &decide.Memory{}), now.Add(9*time.Minute); !got.Equal(want) {
		t.Errorf("failure: until %s, want %s", got, want)
	}
	delete(st.Status.Failures, "vm1")
	if got, want := decide.Until(v, &decide.Memory{}), now.Add(30*time.Minute+time.Nanosecond); !got.Equal(want) {
		t.Errorf("evacuation deadline: until %s, want %s", got, want)
	}
	st.Status.Evacuations = nil
	if got, want := decide.Until(v, &decide.Memory{}), now.Add(time.Hour); !got.Equal(want) {
		t.Errorf("pin: until %s, want %s", got, want)
	}
	v.Settings.Window = &decide.Window{Start: 60, End: 120}
	if got, want := decide.Until(v, &decide.Memory{}), now.Truncate(time.Minute).Add(time.Minute); !got.Equal(want) {
		t.Errorf("window: until %s, want the next minute %s", got, want)
	}
	v.Settings.Window, st.Status.Pins = nil, nil
	if got := decide.Until(v, &decide.Memory{}); !got.IsZero() {
		t.Errorf("nothing pending: until %s, want none", got)
	}
	// Past deadlines are not pending.
	st.Status.Pins = map[string]*model.Pin{"vm1": {Host: "h1", Expires: now.Add(-time.Second)}}
	if got := decide.Until(v, &decide.Memory{}); !got.IsZero() {
		t.Errorf("an expired pin: until %s, want none", got)
	}
}
