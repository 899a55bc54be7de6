package health

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Level is a host's health as Pacemaker's node-health attributes say it.
type Level string

// The levels, best first.
const (
	Green  Level = "green"
	Yellow Level = "yellow"
	Red    Level = "red"
)

// rank orders the levels: a higher rank is worse.
func (l Level) rank() int {
	switch l {
	case Yellow:
		return 1
	case Red:
		return 2
	}
	return 0
}

// Worse reports whether l is worse than o.
func (l Level) Worse(o Level) bool { return l.rank() > o.rank() }

// ParseLevel reads green, yellow or red.
func ParseLevel(s string) (Level, error) {
	switch l := Level(strings.ToLower(strings.TrimSpace(s))); l {
	case Green, Yellow, Red:
		return l, nil
	}
	return "", fmt.Errorf("health level %q: want green, yellow or red", s)
}

// Sensor is one BMC sensor's reading.
type Sensor struct {
	Name   string
	Type   string // "Temperature", "Fan", "Power Unit", ... (IPMI's sensor type names)
	Number uint8
	// Threshold sensors have a value and a threshold status: ok, lnc,
	// lcr, lnr, unc, ucr, unr (lower/upper non-critical, critical,
	// non-recoverable), as the BMC compares them.
	Threshold bool
	Value     float64
	Unit      string
	Status    string
	// Limit is the threshold the status names (0 if none).
	Limit float64
	// States are a discrete sensor's asserted states ("Redundancy Lost").
	States []string
}

// Event is one assertion in the BMC's system event log (SEL).
type Event struct {
	ID         uint16
	SensorType string
	Sensor     uint8
	Event      string // "Uncorrectable ECC", ...
}

// Readings are what one read of the BMC returned.
type Readings struct {
	Sensors []Sensor
	Events  []Event
}

// Rule maps readings to a level. A sensor rule names any of Sensor
// (glob on the name), Type (glob on the sensor type), Status (threshold
// statuses), Above/Below (the value), State (glob on an asserted discrete
// state); an event rule names Event (glob on a SEL event's name) and
// optionally Type. Every field given must match. The first rule that
// matches a reading decides its level (green silences it).
type Rule struct {
	Sensor string   `mapstructure:"sensor"`
	Type   string   `mapstructure:"type"`
	Status []string `mapstructure:"status"`
	Above  *float64 `mapstructure:"above"`
	Below  *float64 `mapstructure:"below"`
	State  string   `mapstructure:"state"`
	Event  string   `mapstructure:"event"`
	Level  string   `mapstructure:"level"`
}

// DefaultRules are the built-in rules, after the configured ones: the
// BMC's critical and non-recoverable thresholds are red, its non-critical
// ones yellow; lost or degraded redundancy and a failed power supply are
// yellow; uncorrectable memory errors, processor errors and thermal trips
// are red, correctable-error logging limits yellow, whether a sensor
// shows them now or the SEL recorded them.
var DefaultRules = []Rule{
	{Status: []string{"lcr", "lnr", "ucr", "unr"}, Level: string(Red)},
	{Status: []string{"lnc", "unc"}, Level: string(Yellow)},
	{State: "Redundancy Lost", Level: string(Yellow)},
	{State: "Redundancy Degraded*", Level: string(Yellow)},
	{State: "Non-redundant*", Level: string(Yellow)},
	{Type: "Power Supply", State: "*Failure detected*", Level: string(Yellow)},
	{State: "Uncorrectable ECC*", Level: string(Red)},
	{State: "IERR", Level: string(Red)},
	{State: "Thermal Trip", Level: string(Red)},
	{Event: "Uncorrectable ECC*", Level: string(Red)},
	{Event: "IERR", Level: string(Red)},
	{Event: "Thermal Trip", Level: string(Red)},
	{Event: "Correctable ECC*logging limit reached*", Level: string(Yellow)},
}

// Validate checks one rule; where names it in errors.
func (r Rule) Validate(where string) error {
	if _, err := ParseLevel(r.Level); err != nil {
		return fmt.Errorf("%s: level: %w", where, err)
	}
	sensorSide := r.Sensor != "" || len(r.Status) > 0 || r.Above != nil || r.Below != nil || r.State != ""
	if r.Event != "" && sensorSide {
		return fmt.Errorf("%s: give either event (a SEL rule) or sensor fields (sensor, status, above, below, state), not both", where)
	}
	if r.Event == "" && !sensorSide && r.Type == "" {
		return fmt.Errorf("%s: matches everything: give sensor, type, status, above, below, state or event", where)
	}
	for _, s := range r.Status {
		if !slices.Contains([]string{"ok", "lnc", "lcr", "lnr", "unc", "ucr", "unr"}, s) {
			return fmt.Errorf("%s: status %q: want ok, lnc, lcr, lnr, unc, ucr or unr", where, s)
		}
	}
	return nil
}

// glob matches s against pattern, case-insensitively: '*' stands for
// any run of characters (slashes too: "Uncorrectable ECC / other ..."),
// '?' for one; an empty pattern matches everything.
func glob(pattern, s string) bool {
	if pattern == "" {
		return true
	}
	p, v := []rune(strings.ToLower(pattern)), []rune(strings.ToLower(s))
	pi, vi, star, mark := 0, 0, -1, 0
	for vi < len(v) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == v[vi]):
			pi++
			vi++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, vi
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			vi = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// matchSensor reports whether r matches s, and what it matched.
func (r Rule) matchSensor(s Sensor) (bool, string) {
	if r.Event != "" || !glob(r.Sensor, s.Name) || !glob(r.Type, s.Type) {
		return false, ""
	}
	if (len(r.Status) > 0 || r.Above != nil || r.Below != nil) && !s.Threshold {
		return false, ""
	}
	if len(r.Status) > 0 && !slices.Contains(r.Status, s.Status) {
		return false, ""
	}
	if r.Above != nil && s.Value <= *r.Above {
		return false, ""
	}
	if r.Below != nil && s.Value >= *r.Below {
		return false, ""
	}
	if r.State != "" {
		for _, st := range s.States {
			if glob(r.State, st) {
				return true, st
			}
		}
		return false, ""
	}
	return true, ""
}

// Result is a host's health and why.
type Result struct {
	Level   Level
	Reasons []string
}

// Evaluate turns readings into a health: the worst level any reading gets
// from the first rule that matches it (rules, then DefaultRules unless
// noDefaults), with one reason per reading that is not green. Rules must
// have been validated. It is a pure function.
func Evaluate(r Readings, rules []Rule, noDefaults bool) Result {
	all := rules
	if !noDefaults {
		all = append(slices.Clip(rules), DefaultRules...)
	}
	res := Result{Level: Green}
	add := func(l Level, reason string) {
		if l == Green {
			return
		}
		if l.Worse(res.Level) {
			res.Level = l
		}
		res.Reasons = append(res.Reasons, string(l)+": "+reason)
	}
	for _, s := range r.Sensors {
		for _, rule := range all {
			if rule.Event != "" {
				continue
			}
			ok, state := rule.matchSensor(s)
			if !ok {
				continue
			}
			l, _ := ParseLevel(rule.Level)
			add(l, describeSensor(s, state))
			break
		}
	}
	for _, e := range r.Events {
		for _, rule := range all {
			if rule.Event == "" || !glob(rule.Event, e.Event) || !glob(rule.Type, e.SensorType) {
				continue
			}
			l, _ := ParseLevel(rule.Level)
			add(l, fmt.Sprintf("SEL #%d %s sensor %d: %s", e.ID, e.SensorType, e.Sensor, e.Event))
			break
		}
	}
	// Red reasons first, then yellow, each in reading order.
	slices.SortStableFunc(res.Reasons, func(a, b string) int {
		ra, rb := strings.HasPrefix(a, "red"), strings.HasPrefix(b, "red")
		switch {
		case ra && !rb:
			return -1
		case rb && !ra:
			return 1
		}
		return 0
	})
	return res
}

var statusWords = map[string]string{
	"lnc": "below lower non-critical", "lcr": "below lower critical", "lnr": "below lower non-recoverable",
	"unc": "above upper non-critical", "ucr": "above upper critical", "unr": "above upper non-recoverable",
}

func describeSensor(s Sensor, state string) string {
	if state != "" {
		return fmt.Sprintf("%s (%s): %s", s.Name, s.Type, state)
	}
	if !s.Threshold {
		return fmt.Sprintf("%s (%s)", s.Name, s.Type)
	}
	v := strconv.FormatFloat(s.Value, 'f', -1, 64)
	if s.Unit != "" {
		v += " " + s.Unit
	}
	if w, ok := statusWords[s.Status]; ok {
		return fmt.Sprintf("%s %s, %s %s", s.Name, v, w, strconv.FormatFloat(s.Limit, 'f', -1, 64))
	}
	return fmt.Sprintf("%s %s", s.Name, v)
}
