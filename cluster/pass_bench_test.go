package cluster

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vmha/vmha/cluster/decide"
	"github.com/vmha/vmha/cluster/statemachine"
	"github.com/vmha/vmha/config"
	"github.com/vmha/vmha/model"
)

// BenchmarkLeaderPass is one idle leader pass (nothing to decide) on a
// cluster of hosts × VMs, every host alive and every VM running where it
// is placed: the state copy, the view and decide.Pass.
//
//	go test -run '^$' -bench LeaderPass -benchmem ./cluster/
func BenchmarkLeaderPass(b *testing.B) {
	for _, sz := range []struct{ hosts, vms int }{{32, 2000}, {1000, 50000}} {
		f := bigState(sz.hosts, sz.vms)
		for name, hs := range f.state.Status.Hosts {
			hs.SeenAlive = true
			_ = name
		}
		n := &Node{cfg: &config.Daemon{NodeName: "h0000"}, fsm: f}
		members := decide.Members{}
		for name := range f.state.Config.Hosts {
			members[name] = decide.Member{Name: name, Status: decide.MemberAlive, Tags: map[string]string{tagBoot: "b"}}
		}
		b.Run(fmt.Sprintf("%dx%d", sz.hosts, sz.vms), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				mem := decide.Memory{}
				plan := decide.Pass(n.view(n.fsm.Copy(), members), &mem)
				if len(plan.Steps) != 0 {
					b.Fatalf("an idle pass decided:\n%s", plan)
				}
			}
		})
	}
}

// BenchmarkLeaderIdleTick is what the leader's loop costs on a tick when
// nothing changed since a pass that decided nothing: gossip's members,
// the memory and the fingerprints, compared with the last pass's
// (Coordinator.step skips the pass then).
//
//	go test -run '^$' -bench LeaderIdleTick -benchmem ./cluster/
func BenchmarkLeaderIdleTick(b *testing.B) {
	for _, sz := range []struct{ hosts, vms int }{{32, 2000}, {1000, 50000}} {
		f := bigState(sz.hosts, sz.vms)
		n := &Node{cfg: &config.Daemon{NodeName: "h0000"}, fsm: f}
		c := newCoordinator(n)
		members := decide.Members{}
		for name := range f.state.Config.Hosts {
			members[name] = decide.Member{Name: name, Status: decide.MemberAlive, Tags: map[string]string{tagBoot: "b", "attr.pingd": "100", "attr.rack": "r1"}}
		}
		key := func() passKey {
			return passKey{rev: n.fsm.Revision(), members: hashMembers(members), beats: hashBeats(c.storageBeats()), mem: hashMemory(c.memory())}
		}
		now := time.Now()
		c.last.remember(key(), true, now, time.Time{})
		b.Run(fmt.Sprintf("%dx%d", sz.hosts, sz.vms), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !c.last.skip(key(), now) {
					b.Fatal("an unchanged tick was not skipped")
				}
			}
		})
	}
}

// BenchmarkHostLoss is the leader's part of a host loss at hosts × VMs,
// from gossip's verdict to the commands, on a cluster where every other
// host is alive: "detect" is the pass that marks the host lost and fences
// it (its probe already unanswered), "recover" the pass after the fence
// that places the host's VMs elsewhere. Each is what a pass costs in
// Coordinator.step: the state copy, the view, decide.Until and
// decide.Pass (Pass applies its own commands to its copy, as every
// replica then applies them).
//
//	go test -run '^$' -bench HostLoss -benchmem ./cluster/
func BenchmarkHostLoss(b *testing.B) {
	for _, sz := range []struct{ hosts, vms int }{{32, 2000}, {1000, 50000}} {
		f := bigState(sz.hosts, sz.vms)
		for _, hs := range f.state.Status.Hosts {
			hs.SeenAlive = true
		}
		n := &Node{cfg: &config.Daemon{NodeName: "h0000"}, fsm: f}
		const victim = "h0005"
		members := decide.Members{}
		for name := range f.state.Config.Hosts {
			members[name] = decide.Member{Name: name, Status: decide.MemberAlive, Tags: map[string]string{tagBoot: "b"}}
		}
		members[victim] = decide.Member{Name: victim, Status: decide.MemberFailed, Tags: map[string]string{tagBoot: "b"}}
		now := time.Now()
		pass := func(b *testing.B, st *model.State) (decide.Plan, *model.State) {
			v := n.view(st, members)
			v.Now = now
			mem := decide.Memory{LeaderSince: now.Add(-time.Minute), Probes: map[string]decide.ProbeAnswer{victim: {At: now, OK: false}}}
			_ = decide.Until(v, &mem)
			return decide.Pass(v, &mem), v.State
		}
		detect := func(b *testing.B) *model.State {
			plan, after := pass(b, f.Copy())
			if !strings.Contains(plan.String(), "fence "+victim) || after.Status.Hosts[victim].State != model.HostLost {
				b.Fatalf("the pass did not mark %s lost and fence it:\n%s", victim, plan)
			}
			return after
		}
		b.Run(fmt.Sprintf("detect/%dx%d", sz.hosts, sz.vms), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				detect(b)
			}
		})
		fenced := detect(b)
		// The fence succeeded: the state every replica holds then.
		hs := fenced.Status.Hosts[victim]
		if err := statemachine.Apply(fenced, &Command{Op: OpHostState, HostState: &HostStateChange{Host: victim, State: model.HostFenced, Reason: "fenced", RecoveryID: hs.RecoveryID}}); err != nil {
			b.Fatal(err)
		}
		g := NewFSM()
		g.state = fenced
		b.Run(fmt.Sprintf("recover/%dx%d", sz.hosts, sz.vms), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, after := pass(b, g.Copy())
				for vm, p := range after.Status.Placements {
					if p.Host == victim {
						b.Fatalf("%s still placed on the fenced host", vm)
					}
				}
			}
		})
	}
}
