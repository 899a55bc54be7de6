package health

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

func f(v float64) *float64 { return &v }

func TestEvaluate(t *testing.T) {
	temp := func(v float64, status string, limit float64) Sensor {
		return Sensor{Name: "CPU Temp", Type: "Temperature", Threshold: true, Value: v, Unit: "degrees C", Status: status, Limit: limit}
	}
	psu := func(state string) Sensor {
		return Sensor{Name: "PSU Redundancy", Type: "Power Unit", States: []string{state}}
	}
	cases := []struct {
		name    string
		r       Readings
		rules   []Rule
		noDef   bool
		want    Level
		reasons []string
	}{
		{name: "nothing read", want: Green},
		{name: "all ok", r: Readings{Sensors: []Sensor{temp(45, "ok", 0), psu("Fully Redundant")}}, want: Green},
		{name: "upper non-critical is yellow", r: Readings{Sensors: []Sensor{temp(85, "unc", 80)}}, want: Yellow,
			reasons: []string{"yellow: CPU Temp 85 degrees C, above upper non-critical 80"}},
		{name: "upper critical is red", r: Readings{Sensors: []Sensor{temp(95, "ucr", 90)}}, want: Red,
			reasons: []string{"red: CPU Temp 95 degrees C, above upper critical 90"}},
		{name: "lower non-recoverable fan is red", r: Readings{Sensors: []Sensor{{Name: "Fan 1", Type: "Fan", Threshold: true, Value: 100, Unit: "RPM", Status: "lnr", Limit: 200}}}, want: Red,
			reasons: []string{"red: Fan 1 100 RPM, below lower non-recoverable 200"}},
		{name: "redundancy lost is yellow", r: Readings{Sensors: []Sensor{psu("Redundancy Lost")}}, want: Yellow,
			reasons: []string{"yellow: PSU Redundancy (Power Unit): Redundancy Lost"}},
		{name: "uncorrectable ECC in the SEL is red", r: Readings{Events: []Event{{ID: 7, SensorType: "Memory", Sensor: 4, Event: "Uncorrectable ECC / other uncorrectable memory error"}}}, want: Red,
			reasons: []string{"red: SEL #7 Memory sensor 4: Uncorrectable ECC / other uncorrectable memory error"}},
		{name: "threshold history in the SEL does not count", r: Readings{Events: []Event{{ID: 2, SensorType: "Temperature", Event: "Upper Critical - going high"}}}, want: Green},
		{name: "red first, then yellow", r: Readings{Sensors: []Sensor{psu("Redundancy Lost"), temp(95, "ucr", 90)}}, want: Red,
			reasons: []string{"red: CPU Temp 95 degrees C, above upper critical 90", "yellow: PSU Redundancy (Power Unit): Redundancy Lost"}},
		{name: "a configured rule comes first: green silences", r: Readings{Sensors: []Sensor{psu("Redundancy Lost")}},
			rules: []Rule{{Sensor: "PSU*", Level: "green"}}, want: Green},
		{name: "a configured threshold of our own", r: Readings{Sensors: []Sensor{temp(75, "ok", 0)}},
			rules: []Rule{{Type: "temperature", Above: f(70), Level: "red"}}, want: Red,
			reasons: []string{"red: CPU Temp 75 degrees C"}},
		{name: "below", r: Readings{Sensors: []Sensor{{Name: "Fan 2", Type: "Fan", Threshold: true, Value: 900, Status: "ok"}}},
			rules: []Rule{{Sensor: "fan*", Below: f(1000), Level: "yellow"}}, want: Yellow},
		{name: "without defaults nothing else counts", r: Readings{Sensors: []Sensor{temp(95, "ucr", 90)}}, noDef: true, want: Green},
		{name: "an event rule with a type", r: Readings{Events: []Event{{ID: 3, SensorType: "Processor", Event: "IERR"}, {ID: 4, SensorType: "Memory", Event: "IERR"}}},
			rules: []Rule{{Event: "IERR", Type: "Memory", Level: "yellow"}}, want: Red},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for i, r := range c.rules {
				if err := r.Validate("rule"); err != nil {
					t.Fatalf("rule %d: %v", i, err)
				}
			}
			got := Evaluate(c.r, c.rules, c.noDef)
			if got.Level != c.want {
				t.Fatalf("level %s, want %s (%v)", got.Level, c.want, got.Reasons)
			}
			if c.reasons != nil && strings.Join(got.Reasons, "|") != strings.Join(c.reasons, "|") {
				t.Fatalf("reasons %q, want %q", got.Reasons, c.reasons)
			}
		})
	}
}

func TestRuleValidate(t *testing.T) {
	bad := []struct {
		r    Rule
		want string
	}{
		{Rule{Sensor: "x", Level: "orange"}, "level"},
		{Rule{Level: "red"}, "matches everything"},
		{Rule{Event: "IERR", Sensor: "x", Level: "red"}, "either event"},
		{Rule{Status: []string{"hot"}, Level: "red"}, "status"},
	}
	for _, b := range bad {
		if err := b.r.Validate("health.ipmi.rules[0]"); err == nil || !strings.Contains(err.Error(), b.want) || !strings.Contains(err.Error(), "health.ipmi.rules[0]") {
			t.Errorf("%+v: %v, want %q", b.r, err, b.want)
		}
	}
	for i, r := range DefaultRules {
		if err := r.Validate("default"); err != nil {
			t.Errorf("default rule %d: %v", i, err)
		}
	}
}

type fakeReader struct {
	mu sync.Mutex
	r  Readings
}

func (f *fakeReader) Read(context.Context) (Readings, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.r, nil
}

func (f *fakeReader) set(r Readings) {
	f.mu.Lock()
	f.r = r
	f.mu.Unlock()
}

// TestIPMIMonitorPublishes: the first level at once, a change only after
// it held for the dampen interval.
func TestIPMIMonitorPublishes(t *testing.T) {
	fr := &fakeReader{}
	got := make(chan Level, 10)
	m := &IPMIMonitor{Reader: fr, Interval: 10 * time.Millisecond, Dampen: 50 * time.Millisecond,
		Publish: func(l Level, _ []string) { got <- l }}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go m.Run(ctx) //nolint:errcheck
	if l := <-got; l != Green {
		t.Fatalf("first %s", l)
	}
	start := time.Now()
	fr.set(Readings{Sensors: []Sensor{{Name: "CPU Temp", Threshold: true, Value: 95, Status: "ucr", Limit: 90}}})
	if l := <-got; l != Red || time.Since(start) < 50*time.Millisecond {
		t.Fatalf("then %s after %s", l, time.Since(start))
	}
}
