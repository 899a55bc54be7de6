package decide_test

import (
	"flag"
	"fmt"
	"math/rand"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmha/vmha/cluster/command"
	"github.com/vmha/vmha/cluster/decide"
	"github.com/vmha/vmha/model"
)

var (
	schedules = flag.Int("schedules", 10000, "random fault schedules TestExplore runs")
	seedFlag  = flag.Int64("seed", 0, "first seed of TestExplore (0: from the clock; a failure prints the seed that replays it)")
)

// A schedule is a random cluster (3 to 5 hosts, some with a watchdog, 3 to
// 8 VMs) and a random sequence of faults and operator actions over about
// 20 virtual seconds: power cuts, daemon crashes and clean stops, restarts,
// isolations, splits, heals, BMCs that fail or hang and come back,
// maintenance, evacuations, rebalances, confirmations. Then every fault is
// repaired and the cluster is given time to settle. The invariants are
// checked on every tick (never two running copies, no recovery before a
// confirmed fence, every placement with a reason) and at the end (no VM
// lost: each runs exactly where it is placed).
func explore(seed int64, pass func(*decide.View, *decide.Memory) decide.Plan, verbose bool) *world {
	rng := rand.New(rand.NewSource(seed))
	w := newWorld(pass)
	w.verbose, w.rng = verbose, rng
	nh := 3 + rng.Intn(3)
	for i := 1; i <= nh; i++ {
		wd := time.Duration(0)
		if rng.Intn(3) == 0 {
			wd = 10 * time.Second
		}
		w.addHost(fmt.Sprintf("h%d", i), 8192, false, wd)
	}
	nv := 3 + rng.Intn(6)
	for i := 1; i <= nv; i++ {
		prefer := ""
		if rng.Intn(2) == 0 {
			prefer = fmt.Sprintf("h%d", 1+rng.Intn(nh))
		}
		w.addVM(fmt.Sprintf("vm%d", i), uint64(512*(1+rng.Intn(3))), prefer)
	}
	w.run(2 * time.Second)
	if rng.Intn(3) == 0 {
		w.randomRules(nh, nv)
	}
	events := 2 + rng.Intn(6)
	for e := 0; e < events; e++ {
		w.randomEvent()
		w.run(time.Duration(1+rng.Intn(8)) * 500 * time.Millisecond)
	}
	w.repair()
	w.run(45 * time.Second)
	w.checkSettled()
	return w
}

// randomRules installs a cluster.yaml: the balanced strategy, some VMs
// that may move live, and two VMs that must not share a host, so that the
// schedules also run the rules' live migrations and cold moves.
func (w *world) randomRules(nh, nv int) {
	var b strings.Builder
	b.WriteString("policy:\n  placement-strategy: balanced\nhosts:\n")
	for i := 1; i <= nh; i++ {
		fmt.Fprintf(&b, "  - name: h%d\n", i)
	}
	b.WriteString("vms:\n")
	for i := 1; i <= nv; i++ {
		fmt.Fprintf(&b, "  - name: vm%d\n", i)
		if w.rng.Intn(2) == 0 {
			b.WriteString("    allow-migrate: true\n")
		}
	}
	b.WriteString("constraints:\n  colocations:\n    - {vm: vm2, with: vm1, score: -INFINITY}\n")
	text := b.String()
	w.logf("> rules (random)")
	if err := w.operator(&command.Command{Op: command.OpSetRules, Rules: &text}); err != nil || (w.leader != "" && w.st.Config.Rules != text) {
		w.violate("the random rules were refused: %v", err)
	}
	w.run(3 * time.Second)
}

func (w *world) randomEvent() {
	rng := w.rng
	h := w.names[rng.Intn(len(w.names))]
	var words []string
	vm := fmt.Sprintf("vm%d", 1+rng.Intn(len(w.st.Config.VMs)))
	switch rng.Intn(18) {
	case 0, 1:
		words = []string{"kill", h}
	case 2:
		words = []string{"crash", h}
	case 3:
		words = []string{"stop", h}
	case 4:
		words = []string{"isolate", h}
	case 5:
		// a split in two
		var a, b []string
		for _, n := range w.names {
			if rng.Intn(2) == 0 {
				a = append(a, n)
			} else {
				b = append(b, n)
			}
		}
		if len(a) == 0 || len(b) == 0 {
			words = []string{"heal"}
		} else {
			words = []string{"split", strings.Join(a, ","), strings.Join(b, ",")}
		}
	case 6:
		words = []string{"heal"}
	case 7:
		words = []string{"bmc", h, []string{"fail", "hang", "ok"}[rng.Intn(3)]}
	case 8:
		words = []string{"poweron", h}
	case 9:
		words = []string{"start", h}
	case 10:
		words = []string{"maintenance", h, []string{"on", "off"}[rng.Intn(2)]}
	case 11:
		words = []string{"evacuate", h, "parallel=" + strconv.Itoa(1+rng.Intn(2))}
	case 12:
		words = []string{"rebalance"}
	case 13:
		if hs := w.st.Status.Hosts[h]; hs != nil && hs.State == model.HostLost && !w.hosts[h].power {
			// An operator confirms a host that is really down.
			words = []string{"confirm", h}
		} else {
			words = []string{"reboot", h}
		}
	case 14:
		words = []string{"vm-state", vm, []string{"started", "stopped", "disabled", "ignored", "clear"}[rng.Intn(5)]}
	case 15:
		words = []string{"break", vm, h}
	case 16:
		words = []string{"cluster-maintenance", []string{"on", "off"}[rng.Intn(2)]}
	case 17:
		// Someone shuts a VM down by hand (an unmanaged one stays so).
		words = []string{"virsh", h, "shutdown", vm}
	}
	w.logf("> %s", strings.Join(words, " "))
	if err := w.do(words); err != nil {
		w.violate("schedule step %v: %v", words, err)
	}
}

// repair ends every fault: one side again, every BMC working, every host
// powered with its daemon up, no maintenance, no evacuation.
func (w *world) repair() {
	w.logf("> repair")
	for _, n := range w.names {
		h := w.hosts[n]
		h.side, h.bmc = 0, "ok"
		clear(h.broken)
		if !h.power {
			w.powerOn(h)
		} else if !h.vmhad {
			h.vmhad, h.left = true, false
			h.boot++
			h.waitOver = false
		}
	}
	w.run(5 * time.Second)
	for _, n := range w.names {
		if w.st.Status.Maintenance[n] != nil {
			_ = w.do([]string{"maintenance", n, "off"})
		}
		if w.st.Status.Evacuations[n] != nil {
			_ = w.do([]string{"online", n})
		}
	}
	if w.st.Config.Maintenance != nil {
		_ = w.do([]string{"cluster-maintenance", "off"})
	}
	for _, vm := range model.SortedKeys(w.st.Config.VMStates) {
		_ = w.do([]string{"vm-state", vm, "clear"})
	}
	for _, vm := range model.SortedKeys(w.st.Status.Failures) {
		_ = w.do([]string{"cleanup", vm})
	}
}

// TestExplore runs thousands of random fault schedules against the pure
// pass and the invariants. A failure names the seed; -seed=N -schedules=1
// -v replays it with the whole log.
func TestExplore(t *testing.T) {
	n := *schedules
	if testing.Short() {
		n = 500
	}
	first := *seedFlag
	if first == 0 {
		first = time.Now().UnixNano()
	}
	t.Logf("seeds %d..%d", first, first+int64(n)-1)
	bad := exploreMany(first, n, decide.Pass)
	if len(bad) > 0 {
		w := explore(bad[0], decide.Pass, true)
		t.Fatalf("%d of %d schedules broke an invariant; first seed %d (replay: go test ./cluster/decide -run TestExplore -seed=%d -schedules=1):\n%s\n--- log ---\n%s",
			len(bad), n, bad[0], bad[0], strings.Join(w.violations, "\n"), strings.Join(w.lines, "\n"))
	}
	t.Logf("%d schedules, every invariant held", n)
	fmt.Fprintf(os.Stderr, "decide: explored %d random fault schedules, no invariant broken\n", n)
}

// exploreMany runs n schedules from seed first on every core and returns
// the seeds that broke an invariant.
func exploreMany(first int64, n int, pass func(*decide.View, *decide.Memory) decide.Plan) []int64 {
	var next atomic.Int64
	var mu sync.Mutex
	var bad []int64
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				if w := explore(first+i, pass, false); len(w.violations) > 0 {
					mu.Lock()
					bad = append(bad, first+i)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return bad
}

// TestExploreFindsPlantedBugs plants bugs in the decisions and requires
// the exploration to find each: an exploration that cannot fail proves
// nothing.
func TestExploreFindsPlantedBugs(t *testing.T) {
	bugs := map[string]func(*decide.View, *decide.Memory) decide.Plan{
		// The leader takes a lost host for fenced: it recovers the VMs
		// without waiting for the fence (a cut-off host still runs them).
		"recover before the fence": func(v *decide.View, m *decide.Memory) decide.Plan {
			for h, hs := range v.State.Status.Hosts {
				if hs.State == model.HostLost || hs.State == model.HostFenceFailed {
					hs.State = model.HostFenced
					delete(v.State.Status.Observed, h) // as a fence would
				}
			}
			return decide.Pass(v, m)
		},
		// The leader forgets a live move is a move: the target starts the
		// VM while the source still runs it.
		"a move without its source": func(v *decide.View, m *decide.Memory) decide.Plan {
			p := decide.Pass(v, m)
			for _, s := range p.Steps {
				if s.Command == nil {
					continue
				}
				for i := range s.Command.Placements {
					if s.Command.Placements[i].MigrateFrom != "" {
						s.Command.Placements[i].MigrateFrom = ""
						s.Command.Placements[i].Cold = false
					}
				}
			}
			return p
		},
		// The leader never probes: it trusts gossip alone and fences a
		// host that only its gossip lost... and forgets why it placed.
		"placements without a reason": func(v *decide.View, m *decide.Memory) decide.Plan {
			p := decide.Pass(v, m)
			for _, s := range p.Steps {
				if s.Command != nil {
					for i := range s.Command.Placements {
						s.Command.Placements[i].Reason = ""
					}
				}
			}
			return p
		},
	}
	for name, bug := range bugs {
		t.Run(name, func(t *testing.T) {
			first := time.Now().UnixNano()
			const n = 2000
			bad := exploreMany(first, n, bug)
			if len(bad) == 0 {
				t.Fatalf("%d schedules did not find the planted bug %q", n, name)
			}
			t.Logf("found in %d of %d schedules (first seed %d)", len(bad), n, bad[0])
		})
	}
}

// regressions are seeds that once broke an invariant, kept so that the
// fix stays a fix (the world and the schedule generator are deterministic
// for a seed; a change to either may need them found again).
var regressions = []struct {
	seed int64
	what string
}{
	// Two anti-affine VMs allowed to move live, balanced strategy, no
	// stickiness: each placement made the engine prefer the other, and
	// the VMs moved back and forth until the end (found in CI; fixed by
	// a default stickiness of 1 and moving only from a settled cluster).
	{1796475882483915265, "anti-affine VMs moved back and forth for ever"},
}

func TestExploreRegressions(t *testing.T) {
	for _, r := range regressions {
		if w := explore(r.seed, decide.Pass, true); len(w.violations) > 0 {
			t.Errorf("seed %d (%s) breaks again:\n%s", r.seed, r.what, strings.Join(w.violations, "\n"))
		}
	}
}
