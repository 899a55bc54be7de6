package decide_test

import (
	"fmt"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/vmha/vmha/cluster/command"
	"github.com/vmha/vmha/cluster/decide"
	"github.com/vmha/vmha/cluster/statemachine"
	"github.com/vmha/vmha/model"
)

// TestPlacementProperties: on any cluster without rules, one pass
//   - never moves a VM off a lost host (fence before recover),
//   - never moves a VM off a usable host (no surprise moves),
//   - places only on usable hosts, without overcommitting memory,
//   - and a second pass on the result places nothing more.
func TestPlacementProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := genCluster(t)
		checkPassOn(t, c)
	})
}

// genned is a random cluster for TestPlacementProperties.
type genned struct {
	now      time.Time
	st       *model.State
	members  decide.Members
	cond     map[string]string
	capacity map[string]uint64
}

// genCluster draws a cluster: hosts alive, lost, fenced or gone, VMs
// placed anywhere or nowhere (also more than a host holds).
func genCluster(t *rapid.T) genned {
	now := time.Date(2026, 12, 5, 3, 0, 0, 0, time.UTC)
	st := model.NewState()
	must := func(c *command.Command) {
		c.At = now
		if err := statemachine.Apply(st, c); err != nil {
			t.Fatalf("%s: %v", c.Op, err)
		}
	}
	nh := rapid.IntRange(1, 5).Draw(t, "hosts")
	conds := []string{"alive", "lost", "fenced", "left"}
	members := decide.Members{}
	cond := map[string]string{}
	capacity := map[string]uint64{}
	var names []string
	for i := 1; i <= nh; i++ {
		h := fmt.Sprintf("h%d", i)
		names = append(names, h)
		capacity[h] = uint64(rapid.IntRange(1, 8).Draw(t, "mem")) * 1024
		must(&command.Command{Op: command.OpRegisterHost, Host: &model.Host{Name: h, MemoryMiB: capacity[h]}})
		must(&command.Command{Op: command.OpHostSeen, Names: []string{h}})
		c := rapid.SampledFrom(conds).Draw(t, "cond")
		cond[h] = c
		status := decide.MemberAlive
		switch c {
		case "lost":
			must(&command.Command{Op: command.OpHostState, HostState: &command.HostStateChange{Host: h, State: model.HostLost, RecoveryID: "rcv-" + h}})
			status = decide.MemberFailed
		case "fenced":
			must(&command.Command{Op: command.OpHostState, HostState: &command.HostStateChange{Host: h, State: model.HostLost, RecoveryID: "rcv-" + h}})
			must(&command.Command{Op: command.OpHostState, HostState: &command.HostStateChange{Host: h, State: model.HostFenced, RecoveryID: "rcv-" + h}})
			status = decide.MemberFailed
		case "left":
			status = decide.MemberLeft
		}
		members[h] = decide.Member{Name: h, Status: status}
	}
	nv := rapid.IntRange(0, 10).Draw(t, "vms")
	var place []model.Placement
	for i := 1; i <= nv; i++ {
		vm := fmt.Sprintf("vm%d", i)
		prefer := rapid.SampledFrom(append([]string{""}, names...)).Draw(t, "prefer")
		must(&command.Command{Op: command.OpAddVM, VM: &model.VM{Name: vm, MemoryMiB: uint64(rapid.IntRange(1, 4).Draw(t, "vmem")) * 512, Prefer: prefer}})
		if cur := rapid.SampledFrom(append([]string{""}, names...)).Draw(t, "current"); cur != "" {
			place = append(place, model.Placement{VM: vm, Host: cur, Reason: "given"})
		}
	}
	if len(place) > 0 {
		must(&command.Command{Op: command.OpPlace, Placements: place})
	}
	return genned{now: now, st: st, members: members, cond: cond, capacity: capacity}
}

// checkPassOn runs the pass on c and checks the properties.
func checkPassOn(t *rapid.T, c genned) {
	now, members, cond, capacity := c.now, c.members, c.cond, c.capacity
	before := c.st.Clone()
	fencing := map[string]bool{}
	for h, c := range cond {
		fencing[h] = c == "lost" // a fence runs: the pass starts none
	}
	pass := func(s *model.State) decide.Plan {
		v := &decide.View{Now: now, Self: "leader", State: s, Apply: statemachine.Apply, Members: members,
			Settings: decide.Settings{UnseenGrace: time.Minute}, NewID: func(p string) string { return p + "x" }}
		return decide.Pass(v, &decide.Memory{LeaderSince: now, Fencing: fencing})
	}
	after := before.Clone()
	pass(after)
	used := map[string]uint64{}
	for vm, p := range after.Status.Placements {
		old := before.Status.Placements[vm]
		cur := ""
		if old != nil {
			cur = old.Host
		}
		switch {
		case cur != "" && cond[cur] == "lost" && p.Host != cur:
			t.Fatalf("%s moved off lost host %s to %q before its fence", vm, cur, p.Host)
		case cur != "" && cond[cur] == "alive" && p.Host != cur:
			t.Fatalf("%s moved off usable host %s to %q", vm, cur, p.Host)
		case p.Host != cur && p.Host != "" && cond[p.Host] != "alive":
			t.Fatalf("%s placed on %s, which is %s", vm, p.Host, cond[p.Host])
		}
		if p.Host != cur && p.Host != "" {
			used[p.Host] += after.Config.VMs[vm].MemoryMiB
		}
	}
	for h, load := range used {
		for vm, p := range before.Status.Placements {
			if p.Host == h {
				load += before.Config.VMs[vm].MemoryMiB
			}
		}
		if load > capacity[h] {
			t.Fatalf("%s overcommitted by the pass: %d MiB of %d", h, load, capacity[h])
		}
	}
	for _, s := range pass(after.Clone()).Steps {
		if s.Kind == decide.Commit && s.Command.Op == command.OpPlace {
			t.Fatalf("a second pass placed again: %s", s)
		}
	}
}
