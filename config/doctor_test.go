package config

import (
	"strings"
	"testing"
	"time"
)

func TestDoctorSection(t *testing.T) {
	d, err := Load(write(t, "node_name: a\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.Doctor.Interval != 0 || d.Doctor.Warn() != 500*time.Millisecond || d.Doctor.Fail() != 5*time.Second {
		t.Fatalf("defaults: %+v", d.Doctor)
	}
	d, err = Load(write(t, "node_name: a\ndoctor:\n  interval: 24h\n  clock_warn: 200ms\n  clock_fail: 2s\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.Doctor.Interval != 24*time.Hour || d.Doctor.Warn() != 200*time.Millisecond || d.Doctor.Fail() != 2*time.Second {
		t.Fatalf("%+v", d.Doctor)
	}
	for _, tt := range []struct{ body, want string }{
		{"doctor:\n  interval: 10s\n", "doctor.interval"},
		{"doctor:\n  interval: 24\n", "doctor.interval"},
		{"doctor:\n  clock_warn: 6s\n", "doctor.clock_fail"},
		{"doctor:\n  clock_warn: -1s\n", "doctor.clock_warn"},
		{"doctor:\n  every: 1h\n", "doctor.every"},
	} {
		_, err := Load(write(t, "node_name: a\n"+tt.body), nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: %v, want an error naming %s", tt.body, err, tt.want)
		}
	}
}

func TestWebConfig(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"web:\n  addr: nonsense\n", "web.addr"},
		{"web:\n  addr: 127.0.0.1:99999\n", "web.addr"},
		{"web:\n  addr: 127.0.0.1:8443\n  cert_file: /x.crt\n", "web.cert_file and web.key_file"},
		{"web:\n  session_idle: 10s\n", "web.session_idle"},
		{"web:\n  session_idle: 2h\n  session_max: 1h\n", "web.session_max"},
	} {
		if _, err := Load(write(t, "node_name: a\n"+tc.yaml), nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one naming %s", tc.yaml, err, tc.want)
		}
	}
	d, err := Load(write(t, "node_name: a\nweb:\n  addr: 127.0.0.1:8443\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.Web.Addr != "127.0.0.1:8443" || d.Web.SessionIdle != 30*time.Minute || d.Web.SessionMax != 12*time.Hour {
		t.Fatalf("web: %+v", d.Web)
	}
}
