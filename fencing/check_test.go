package fencing

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestTopologyCheck(t *testing.T) {
	j := &journal{}
	bmc := &topoDev{name: "ipmi h1", j: j, on: true, statusErr: errors.New("no answer")}
	a := &topoDev{name: "pdu-a", j: j, on: true}
	b := &topoDev{name: "pdu-b", j: j, on: false}
	topo := Topology{Host: "h1", Levels: []Level{{Devices: []Device{bmc}}, {Devices: []Device{a, b}}}}
	checks := topo.Check(context.Background(), time.Second)
	if len(checks) != 3 {
		t.Fatalf("checks %+v", checks)
	}
	if c := checks[0]; c.OK || c.Level != 1 || c.Host != "h1" || c.State != PowerUnknown || !strings.Contains(c.Error, "status of ipmi h1: no answer") {
		t.Fatalf("check 1 %+v", c)
	}
	if c := checks[1]; !c.OK || c.Level != 2 || c.Device != "pdu-a" || c.State != PowerOn {
		t.Fatalf("check 2 %+v", c)
	}
	if c := checks[2]; !c.OK || c.Device != "pdu-b" || c.State != PowerOff {
		t.Fatalf("check 3 %+v", c)
	}
	if !Fenceable(checks) {
		t.Fatal("level 2 works: fenceable")
	}
	if calls := j.list(); len(calls) != 0 {
		t.Fatalf("a check sent power commands: %q", calls)
	}
	a.mu.Lock()
	a.statusErr = errors.New("outlet unreachable")
	a.mu.Unlock()
	if Fenceable(topo.Check(context.Background(), time.Second)) {
		t.Fatal("no level fully works: not fenceable")
	}
	if Fenceable(nil) {
		t.Fatal("no checks: not fenceable")
	}
}

func TestCheckHungDevice(t *testing.T) {
	f := &fakeDevice{on: true, hangStatus: true, release: make(chan struct{})}
	defer close(f.release)
	start := time.Now()
	c := Check(context.Background(), f, 50*time.Millisecond)
	if c.OK || !strings.Contains(c.Error, "no answer within 50ms") {
		t.Fatalf("check %+v", c)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("took %s", took)
	}
	u := Check(context.Background(), &fakeDevice{unknown: true}, time.Second)
	if u.OK || !strings.Contains(u.Error, "no definite power state") {
		t.Fatalf("unknown state check %+v", u)
	}
}
