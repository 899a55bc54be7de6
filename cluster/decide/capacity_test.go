package decide_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/vmha/vmha/cluster/command"
	"github.com/vmha/vmha/cluster/decide"
	"github.com/vmha/vmha/cluster/statemachine"
	"github.com/vmha/vmha/model"
)

// capacityView is hosts (name → MiB) all alive, with VMs (name → host,
// MiB each as given), and the evacuations started (host → ID).
func capacityView(t *testing.T, hosts map[string]uint64, vms map[string]string, mib map[string]uint64, evacuating ...string) *decide.View {
	t.Helper()
	st := model.NewState()
	members := decide.Members{}
	var cmds []*command.Command
	for _, h := range model.SortedKeys(hosts) {
		cmds = append(cmds, &command.Command{Op: command.OpRegisterHost, Host: &model.Host{Name: h, MemoryMiB: hosts[h], LibvirtURI: "qemu+tcp://" + h + "/system"}})
		members[h] = decide.Member{Name: h, Status: decide.MemberAlive}
	}
	cmds = append(cmds, &command.Command{Op: command.OpHostSeen, Names: model.SortedKeys(hosts)})
	for _, vm := range model.SortedKeys(vms) {
		cmds = append(cmds, &command.Command{Op: command.OpAddVM, VM: &model.VM{Name: vm, MemoryMiB: mib[vm]}},
			&command.Command{Op: command.OpPlace, Placements: []model.Placement{{VM: vm, Host: vms[vm], Reason: "test"}}})
	}
	for i, h := range evacuating {
		cmds = append(cmds, &command.Command{Op: command.OpEvacuation, Evacuation: &model.Evacuation{ID: fmt.Sprintf("ev-%d", i), Host: h, Parallel: 1, By: "op"}})
	}
	for _, c := range cmds {
		if err := statemachine.Apply(st, c); err != nil {
			t.Fatal(err)
		}
	}
	return &decide.View{Now: time.Now(), State: st, Apply: statemachine.Apply, NewID: func(p string) string { return p + "1" }, Members: members}
}

func TestEvacuationShortfall(t *testing.T) {
	gib := uint64(1024)
	for _, tc := range []struct {
		name       string
		hosts      map[string]uint64
		vms        map[string]string
		mib        map[string]uint64
		evacuating []string
		host       string
		down       []string // hosts gossip sees failed
		want       string
	}{
		{"fits", map[string]uint64{"h1": 8 * gib, "h2": 8 * gib}, map[string]string{"a": "h1", "b": "h1"}, map[string]uint64{"a": 2 * gib, "b": 2 * gib}, nil, "h1", nil, ""},
		{"not enough memory", map[string]uint64{"h1": 8 * gib, "h2": 4 * gib, "h3": 4 * gib},
			map[string]string{"a": "h1", "b": "h1", "c": "h1", "d": "h1", "x": "h2"}, map[string]uint64{"a": 2 * gib, "b": 2 * gib, "c": 2 * gib, "d": 2 * gib, "x": 2 * gib}, nil, "h1", nil,
			"h1's 4 VM(s) need 8 GiB; the other usable hosts (h2, h3) have 6 GiB free"},
		{"the last usable host", map[string]uint64{"h1": 8 * gib, "h2": 8 * gib}, map[string]string{"a": "h1"}, map[string]uint64{"a": 1536}, nil, "h1", []string{"h2"},
			"h1 is the last usable host: no other host is alive, out of maintenance and not evacuated, so h1's 1 VM(s) (1.5 GiB) would have nowhere to go"},
		{"every host evacuated", map[string]uint64{"h1": 8 * gib, "h2": 8 * gib}, nil, nil, []string{"h2"}, "h1", nil,
			"h1 is the last usable host: no other host is alive, out of maintenance and not evacuated, so h1's 0 VM(s) (0 GiB) would have nowhere to go"},
		{"a second evacuation counts the first one's VMs", map[string]uint64{"h1": 8 * gib, "h2": 8 * gib, "h3": 8 * gib},
			map[string]string{"a": "h2", "b": "h2", "c": "h3"}, map[string]uint64{"a": 2 * gib, "b": 2 * gib, "c": 5 * gib}, []string{"h2"}, "h3", nil,
			"h3's 1 VM(s) need 5 GiB, and with the evacuation of h2's 2 VM(s) (4 GiB) under way, 3 VM(s) need 9 GiB; the other usable hosts (h1) have 8 GiB free"},
		{"a second evacuation that fits", map[string]uint64{"h1": 16 * gib, "h2": 8 * gib, "h3": 8 * gib},
			map[string]string{"a": "h2", "b": "h2", "c": "h3"}, map[string]uint64{"a": 2 * gib, "b": 2 * gib, "c": 5 * gib}, []string{"h2"}, "h3", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := capacityView(t, tc.hosts, tc.vms, tc.mib, tc.evacuating...)
			for _, h := range tc.down {
				v.Members[h] = decide.Member{Name: h, Status: decide.MemberFailed}
			}
			got := decide.EvacuationShortfall(v, tc.host, &model.Evacuation{Host: tc.host})
			if got != tc.want {
				t.Errorf("shortfall:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}
