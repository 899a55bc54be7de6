package health

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/types"

	"github.com/vmha/vmha/internal/secret"
)

// Reader reads a BMC's sensors and event log. Tests feed readings through
// their own Reader; IPMI reads a real BMC.
type Reader interface {
	Read(ctx context.Context) (Readings, error)
}

// IPMI reads the host's own BMC over IPMI 2.0 (lanplus) with go-ipmi:
// every full and compact sensor record's reading, and the SEL's
// assertions. The password never appears in errors.
type IPMI struct {
	Address  string
	Port     int
	User     string
	Password secret.String
	// Interface is lanplus (default) or lan.
	Interface   string
	CipherSuite int
	// NoSEL skips the event log.
	NoSEL bool
	// Timeout bounds one exchange (default 2 s).
	Timeout time.Duration
}

// maxSEL bounds how many SEL entries one read takes (a full SEL holds a
// few thousand; the newest are the ones that matter, but IPMI lists them
// oldest first, so this is a guard against a looping BMC).
const maxSEL = 4096

// Read connects, reads and closes.
func (p *IPMI) Read(ctx context.Context) (Readings, error) {
	var out Readings
	c, err := client.NewClient(p.Address, p.Port, p.User, p.Password.Reveal())
	if err != nil {
		return out, p.wrap("connect", err)
	}
	iface := client.InterfaceLanplus
	if p.Interface == "lan" {
		iface = client.InterfaceLan
	}
	to := p.Timeout
	if to <= 0 {
		to = 2 * time.Second
	}
	c.WithInterface(iface).WithTimeout(to).WithRetry(1)
	if iface == client.InterfaceLanplus {
		cs := p.CipherSuite
		if cs == 0 {
			cs = 3
		}
		c.WithCipherSuiteID(types.CipherSuiteID(cs))
	}
	if err := c.Connect(ctx); err != nil {
		cctx, cancel := context.WithCancel(context.Background())
		cancel()
		_ = c.Close(cctx)
		return out, p.wrap("connect", err)
	}
	defer c.Close(ctx) //nolint:errcheck // best effort
	sensors, err := c.GetSensors(ctx)
	if err != nil {
		return out, p.wrap("read sensors", err)
	}
	for _, s := range sensors {
		if r, ok := sensorReading(s); ok {
			out.Sensors = append(out.Sensors, r)
		}
	}
	if p.NoSEL {
		return out, nil
	}
	info, err := c.GetSELInfo(ctx)
	if err != nil {
		return out, p.wrap("read SEL info", err)
	}
	if info.Entries == 0 {
		return out, nil
	}
	n := 0
	for res := range c.GetSELEntriesStream(ctx, 0) {
		if res.Err != nil {
			return out, p.wrap("read SEL", res.Err)
		}
		if e, ok := selEvent(res.Ok); ok {
			out.Events = append(out.Events, e)
		}
		if n++; n >= maxSEL {
			break
		}
	}
	return out, nil
}

func (p *IPMI) wrap(op string, err error) error {
	msg := err.Error()
	if pw := p.Password.Reveal(); pw != "" {
		msg = strings.ReplaceAll(msg, pw, "[redacted]")
	}
	return fmt.Errorf("ipmi %s %s:%d: %s", op, p.Address, p.Port, msg)
}

// sensorReading converts a go-ipmi sensor; sensors without a valid reading
// are left out.
func sensorReading(s *types.Sensor) (Sensor, bool) {
	if s == nil || s.NotPresent || s.ScanningDisabled || !s.IsReadingValid() {
		return Sensor{}, false
	}
	r := Sensor{Name: strings.TrimSpace(s.Name), Type: s.SensorType.String(), Number: s.Number}
	if s.IsThreshold() {
		r.Threshold, r.Value, r.Status = true, s.Value, string(s.Threshold.ThresholdStatus)
		r.Unit = s.SensorUnit.String()
		switch s.Threshold.ThresholdStatus {
		case types.SensorThresholdStatus_LNC:
			r.Limit = s.Threshold.LNC
		case types.SensorThresholdStatus_LCR:
			r.Limit = s.Threshold.LCR
		case types.SensorThresholdStatus_LNR:
			r.Limit = s.Threshold.LNR
		case types.SensorThresholdStatus_UNC:
			r.Limit = s.Threshold.UNC
		case types.SensorThresholdStatus_UCR:
			r.Limit = s.Threshold.UCR
		case types.SensorThresholdStatus_UNR:
			r.Limit = s.Threshold.UNR
		}
		return r, true
	}
	for _, st := range s.DiscreteActiveEventsString() {
		if st != "" && st != "N/A" {
			r.States = append(r.States, st)
		}
	}
	return r, true
}

// selEvent converts a standard SEL record's assertion.
func selEvent(s *types.SEL) (Event, bool) {
	if s == nil || s.Standard == nil {
		return Event{}, false
	}
	st := s.Standard
	if st.EventDir == types.EventDirDeassertion {
		return Event{}, false
	}
	offset := st.EventData.EventData1 & 0x0f
	ev := st.EventReadingType.EventForOffset(st.SensorType, offset)
	name := ""
	if ev != nil {
		name = ev.EventName
	}
	if name == "" {
		return Event{}, false
	}
	return Event{ID: s.RecordID, SensorType: st.SensorType.String(), Sensor: uint8(st.SensorNumber), Event: name}, true
}

// levelValue maps a level to the Damper's int.
func levelValue(l Level) int { return l.rank() }

var levelOf = [...]Level{Green, Yellow, Red}

// IPMIMonitor reads the BMC every Interval, evaluates the rules, and
// publishes the level once it has held for Dampen (the first at once);
// reasons are published with the level, and again when they change.
type IPMIMonitor struct {
	Reader     Reader
	Rules      []Rule
	NoDefaults bool
	Interval   time.Duration
	Timeout    time.Duration
	Dampen     time.Duration
	// Publish receives each level to publish and its reasons.
	Publish func(Level, []string)
	// OnError hears each failed read (the last level stays published).
	OnError func(error)
}

// Run reads and publishes until ctx ends.
func (m *IPMIMonitor) Run(ctx context.Context) error {
	if m.Reader == nil || m.Publish == nil || m.Interval <= 0 {
		return errors.New("health: the IPMI monitor needs a reader, a publisher and an interval")
	}
	d := Damper{Dampen: m.Dampen}
	lastReasons := "\x00"
	for {
		rctx, cancel := ctx, context.CancelFunc(func() {})
		if m.Timeout > 0 {
			rctx, cancel = context.WithTimeout(ctx, m.Timeout)
		}
		r, err := m.Reader.Read(rctx)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			if m.OnError != nil {
				m.OnError(err)
			}
		} else {
			res := Evaluate(r, m.Rules, m.NoDefaults)
			pub, v := d.Observe(levelValue(res.Level), time.Now())
			joined := strings.Join(res.Reasons, "; ")
			if pub || (v == levelValue(res.Level) && joined != lastReasons) {
				lastReasons = joined
				m.Publish(levelOf[v], res.Reasons)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(m.Interval):
		}
	}
}
