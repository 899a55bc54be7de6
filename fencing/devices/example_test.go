package devices_test

import (
	"context"
	"fmt"
	"time"

	"github.com/vmha/vmha/fencing"
	"github.com/vmha/vmha/fencing/devices"
	"github.com/vmha/vmha/fencing/spec"
)

// Build a spec once (all or nothing), then run a lost host's topology from
// another host and record every step.
func Example() {
	s := spec.Spec{
		Devices: []spec.Device{
			{Name: "bmc-h1", Type: spec.TypeIPMI, Params: map[string]string{"address": "10.0.0.11", "user": "admin"}, PasswordFile: "/etc/vmha/bmc-h1.pw"},
		},
		Hosts: []spec.Host{{Name: "h1", Levels: [][]string{{"bmc-h1"}}}},
	}
	set, err := devices.Build(s)
	if err != nil {
		fmt.Println(err) // names every bad device, host, level or password source
		return
	}
	defer set.Close() //nolint:errcheck // example

	exec, err := fencing.ChooseExecutor("h1", []string{"h1", "h2"})
	if err != nil {
		return // nobody else may fence h1: recovery stays blocked
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := set.Topologies["h1"].Run(ctx, fencing.RunOptions{Executor: exec, Fence: fencing.DefaultOptions()})
	for _, st := range rep.Steps() {
		fmt.Println(st.Level, st.Device, st.Action, st.OK, st.Error, st.Duration)
	}
	if err != nil || !rep.Fenced {
		return // recovery stays blocked; err lists every level's failure
	}
}
