package clusterspec

import (
	"strings"
	"testing"
	"time"
)

func TestGuestPolicy(t *testing.T) {
	src := `hosts: [{name: h1}]
vms:
  - name: db
    guest-monitor: heartbeat
    guest-heartbeat-timeout: 30s
    guest-max-restarts: 5
    guest-restart-window: 2h
  - name: slow
    guest-monitor: heartbeat
    guest-heartbeat-timeout: 5m
    guest-heartbeat-startup: 3m
  - name: web
`
	s, err := Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.GuestOf("db"), (GuestPolicy{Monitor: "heartbeat", HeartbeatTimeout: 30 * time.Second, HeartbeatStartup: DefaultGuestHeartbeatStartup, MaxRestarts: 5, Window: 2 * time.Hour}); got != want {
		t.Errorf("db: %+v, want %+v", got, want)
	}
	// The startup grace is never shorter than the timeout.
	if got := s.GuestOf("slow"); got.HeartbeatStartup != 5*time.Minute {
		t.Errorf("slow: startup %s, want the 5m timeout", got.HeartbeatStartup)
	}
	if got, want := s.GuestOf("web"), (GuestPolicy{Monitor: "off", HeartbeatTimeout: DefaultGuestHeartbeatTimeout, HeartbeatStartup: DefaultGuestHeartbeatStartup, MaxRestarts: DefaultGuestMaxRestarts, Window: DefaultGuestRestartWindow}); got != want {
		t.Errorf("web: %+v, want %+v", got, want)
	}
	for _, bad := range []string{"guest-monitor: always", "guest-max-restarts: -1", "guest-heartbeat-timeout: 1s"} {
		_, err := Parse([]byte("hosts: [{name: h1}]\nvms:\n  - name: db\n    " + bad + "\n"))
		if err == nil || !strings.Contains(err.Error(), "guest-") {
			t.Errorf("%s: error %v, want one naming the key", bad, err)
		}
	}
}
