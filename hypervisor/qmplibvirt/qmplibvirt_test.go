package qmplibvirt

import (
	"context"
	"strings"
	"testing"
	"time"
)

type fakePassthrough map[string]string

func (f fakePassthrough) QemuMonitorCommand(_ context.Context, _ string, cmd string) (string, error) {
	for k, v := range f {
		if strings.Contains(cmd, `"`+k+`"`) {
			return v, nil
		}
	}
	return `{"error":{"class":"CommandNotFound","desc":"no such command"}}`, nil
}

func TestMonitorRun(t *testing.T) {
	f := fakePassthrough{
		"query-status":     `{"return":{"running":false,"singlestep":false,"status":"guest-panicked"},"id":"libvirt-1"}`,
		"calc-dirty-rate":  `{"return":{}}`,
		"query-dirty-rate": `{"return":{"status":"measured","dirty-rate":42,"calc-time":1}}`,
	}
	m := New(context.Background(), f, "vm")
	st, err := QueryStatus(m)
	if err != nil || st.Running || !st.Panicked() {
		t.Fatalf("status %+v, %v: want guest-panicked", st, err)
	}
	dr, err := MeasureDirtyRate(context.Background(), m, time.Second)
	if err != nil || dr.MiBPerSec != 42 {
		t.Fatalf("dirty rate %+v, %v", dr, err)
	}
	if _, err := m.Run([]byte(`{"execute":"nope"}`)); err == nil || !strings.Contains(err.Error(), "CommandNotFound") {
		t.Errorf("error reply: %v", err)
	}
	if _, err := m.Events(context.Background()); err == nil {
		t.Error("events: want not supported")
	}
}

func TestPredictMigration(t *testing.T) {
	idle, _ := PredictMigration(1024, 0, 100, 300*time.Millisecond)
	if !idle.Converges || idle.Time < 10*time.Second || idle.Time > 11*time.Second || idle.Downtime != 0 {
		t.Errorf("idle 1 GiB at 100 MiB/s: %+v", idle)
	}
	busy, _ := PredictMigration(1024, 50, 100, 300*time.Millisecond)
	if !busy.Converges || busy.Time <= idle.Time || busy.Downtime > 300*time.Millisecond {
		t.Errorf("busy: %+v (idle %+v)", busy, idle)
	}
	never, _ := PredictMigration(1024, 150, 100, 300*time.Millisecond)
	if never.Converges {
		t.Errorf("dirtying faster than the link: %+v, want not converging", never)
	}
	if _, err := PredictMigration(1, 0, 0, time.Second); err == nil {
		t.Error("zero bandwidth: want an error")
	}
}
