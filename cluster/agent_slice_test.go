package cluster

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vmha/vmha/cluster/reconcile"
	"github.com/vmha/vmha/config"
	"github.com/vmha/vmha/hypervisor"
	"github.com/vmha/vmha/model"
)

// The agent reads only its host's slice of the state (issue 17). On random
// states, hypervisors and agent memories, its pure pass decides on the
// slice exactly what it decides on the whole state, and so do the
// restarts after vm update --restart and the generation floor.
func TestAgentSliceDecidesAsTheWholeState(t *testing.T) {
	for seed := range uint64(200) {
		r := rand.New(rand.NewPCG(seed, 17))
		f := NewFSM()
		s := f.state
		hosts := []string{"h1", "h2", "h3", "h4"}
		for _, h := range hosts {
			s.Config.Hosts[h] = &model.Host{Name: h}
		}
		for i := range 80 {
			name := fmt.Sprintf("vm%02d", i)
			s.Config.VMs[name] = &model.VM{Name: name, XML: xmlFor(name), PendingRestart: r.IntN(5) == 0}
			switch r.IntN(6) {
			case 0: // no placement
			case 1:
				s.Status.Placements[name] = &model.Placement{VM: name, Generation: uint64(r.IntN(9))} // stopped
			default:
				p := &model.Placement{VM: name, Host: hosts[r.IntN(4)], Generation: uint64(r.IntN(9))}
				if r.IntN(5) == 0 {
					p.MigrateFrom = hosts[r.IntN(4)]
				}
				s.Status.Placements[name] = p
			}
			if r.IntN(10) == 0 {
				s.Config.VMStates = map[string]*model.VMState{name: {Target: model.TargetIgnored}}
			}
		}
		n := &Node{cfg: &config.Daemon{NodeName: "h1", DataDir: t.TempDir()}, fsm: f, log: zerolog.Nop()}
		a := newAgent(n)
		doms := map[string]hypervisor.Domain{}
		for i := range 80 {
			name := fmt.Sprintf("vm%02d", i)
			switch r.IntN(8) {
			case 0:
				doms[name] = hypervisor.Domain{Name: name, State: hypervisor.StateRunning}
			case 1:
				doms[name] = hypervisor.Domain{Name: name, State: hypervisor.StateShutoff}
			case 2:
				a.managed[name] = true
			case 3:
				a.errs[name] = "boom"
				a.fails[name] = &startFailure{count: 1, first: time.Unix(1, 0), last: time.Unix(2, 0)}
			case 4:
				a.gens.seen[name] = uint64(r.IntN(9))
			}
		}
		doms["foreign"] = hypervisor.Domain{Name: "foreign", State: hypervisor.StateRunning}

		whole, slice := f.Copy(), f.HostSlice("h1", a.known(doms))
		in1, in2 := a.input(whole, doms, true), a.input(slice, doms, true)
		in1.Now, in2.Now = time.Time{}, time.Time{}
		if !reflect.DeepEqual(in1, in2) {
			t.Fatalf("seed %d: the agent's input differs on its slice:\nwhole %+v\nslice %+v", seed, in1, in2)
		}
		p1, p2 := reconcile.Decide(in1), reconcile.Decide(in2)
		if !reflect.DeepEqual(p1, p2) {
			t.Fatalf("seed %d: the pass decides otherwise on the slice", seed)
		}
		r1, _ := restartsDue(whole, "h1", doms, p1.Starts, nil, nil)
		r2, _ := restartsDue(slice, "h1", doms, p2.Starts, nil, nil)
		if !reflect.DeepEqual(r1, r2) {
			t.Fatalf("seed %d: restarts due %v on the whole state, %v on the slice", seed, r1, r2)
		}
		g1, g2 := &generations{seen: maps.Clone(a.gens.seen)}, &generations{seen: maps.Clone(a.gens.seen)}
		g1.note(whole, "h1", true)
		g2.note(slice, "h1", true)
		if !reflect.DeepEqual(g1.seen, g2.seen) {
			t.Fatalf("seed %d: generation floors %v on the whole state, %v on the slice", seed, g1.seen, g2.seen)
		}
	}
}
