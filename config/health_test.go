package config

import (
	"strings"
	"testing"
	"time"
)

func TestHealthSection(t *testing.T) {
	d, err := Load(write(t, "node_name: a\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if p := d.Health.IPMI; p.Enabled || p.Interval != 30*time.Second || !p.SEL || !p.DefaultRules || len(p.Rules) != 0 {
		t.Fatalf("defaults: %+v", p)
	}
	bmc := "bmc:\n  address: 127.0.0.1\n  user: admin\n  password_file: /etc/vmha/bmc.pw\n"
	d, err = Load(write(t, "node_name: a\n"+bmc+`health:
  ipmi:
    enabled: true
    interval: 5s
    dampen: 0s
    rules:
      - sensor: "CPU*"
        above: 85
        level: red
      - event: "Correctable ECC*"
        type: Memory
        level: yellow
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	p := d.Health.IPMI
	if !p.Enabled || p.Interval != 5*time.Second || p.Dampen != 0 || len(p.Rules) != 2 || p.Rules[0].Above == nil || *p.Rules[0].Above != 85 || p.Rules[1].Type != "Memory" {
		t.Fatalf("%+v", p)
	}
	for _, tt := range []struct{ body, want string }{
		{"health:\n  ipmi:\n    enabled: true\n", "needs this host's bmc"},
		{bmc + "health:\n  ipmi:\n    enabled: true\n    interval: 10ms\n", "health.ipmi.interval"},
		{"health:\n  ipmi:\n    rules:\n      - sensor: x\n        level: orange\n", "health.ipmi.rules[0]: level"},
		{"health:\n  ipmi:\n    rules:\n      - level: red\n", "health.ipmi.rules[0]"},
		{"health:\n  ipmi:\n    every: 1h\n", "health.ipmi.every"},
	} {
		_, err := Load(write(t, "node_name: a\n"+tt.body), nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: %v, want an error naming %s", tt.body, err, tt.want)
		}
	}
}
