package cluster

import (
	"fmt"
	"testing"
	"time"

	"github.com/vmha/vmha/cluster/decide"
	"github.com/vmha/vmha/config"
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
