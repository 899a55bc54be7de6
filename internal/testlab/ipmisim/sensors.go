package ipmisim

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"time"
)

// The sensors a simulator started with Options.Sensors has (BMC 0x20,
// LUN 0), as go-ipmi and ipmitool read them.
const (
	// SensorCPUTemp is "CPU Temp", degrees C: upper non-critical 80,
	// critical 90, non-recoverable 100; it starts at 45.
	SensorCPUTemp = 1
	// SensorFan is "Fan 1", RPM in steps of 100: lower non-critical 1000,
	// critical 500, non-recoverable 200; it starts at 6000.
	SensorFan = 2
	// SensorPSURedundancy is "PSU Redundancy" (a power unit's redundancy
	// states): it starts fully redundant.
	SensorPSURedundancy = 3
)

// Values for SetSensor(SensorCPUTemp): normal, above upper non-critical,
// above upper critical.
const (
	CPUTempNormal   = 45
	CPUTempWarning  = 85
	CPUTempCritical = 95
)

// fullSDR is an IPMI full sensor record (type 01h) for a sensor of the
// BMC: thr are the raw thresholds UNR, UCR, UNC, LNR, LCR, LNC; the value
// is raw × m in unit (IPMI base unit code).
func fullSDR(num, sensorType, entity, readingType, caps byte, assertMask, deassertMask, readMask uint16, unit, m byte, thr [6]byte, nominal byte, name string) []byte {
	body := []byte{0x20, 0, num, entity, 1, 0x7f, caps, sensorType, readingType,
		byte(assertMask), byte(assertMask >> 8), byte(deassertMask), byte(deassertMask >> 8), byte(readMask), byte(readMask >> 8),
		0, unit, 0, 0, m, 0, 0, 0, 0, 0, 0, nominal, 0xff, 0, 0xff, 0}
	body = append(body, thr[:]...)
	body = append(body, 0, 0, 0, 0, 0, 0xc0|byte(len(name)))
	body = append(body, name...)
	return append([]byte{0, 0, 0x51, 0x01, byte(len(body))}, body...)
}

func sdrCommand(b []byte) string {
	var sb strings.Builder
	sb.WriteString("main_sdr_add 0x20")
	for _, x := range b {
		fmt.Fprintf(&sb, " 0x%02x", x)
	}
	return sb.String()
}

// sensorsEmu defines the sensors and the SEL (before mc_enable).
func sensorsEmu() string {
	lines := []string{
		"sel_enable 0x20 1000 0x0a",
		// Temperature (01h), threshold (01h), processor entity (03h).
		sdrCommand(fullSDR(SensorCPUTemp, 0x01, 0x03, 0x01, 0x68, 0x0a80, 0x7a80, 0x3838, 1, 1, [6]byte{100, 90, 80, 0, 0, 0}, CPUTempNormal, "CPU Temp")),
		// Fan (04h), threshold, fan device entity (1Dh), RPM (18) × 100.
		sdrCommand(fullSDR(SensorFan, 0x04, 0x1d, 0x01, 0x68, 0x7015, 0x0015, 0x0707, 18, 100, [6]byte{0, 0, 0, 2, 5, 10}, 60, "Fan 1")),
		// Power unit (09h), redundancy states (0Bh), power supply entity (0Ah).
		sdrCommand(fullSDR(SensorPSURedundancy, 0x09, 0x0a, 0x0b, 0x40, 0x0003, 0x0003, 0x0003, 0, 1, [6]byte{}, 0, "PSU Redundancy")),
		fmt.Sprintf("sensor_add 0x20 0 %d 0x01 0x01", SensorCPUTemp),
		fmt.Sprintf("sensor_set_threshold 0x20 0 %d settable 111000 100 90 80 0 0 0", SensorCPUTemp),
		fmt.Sprintf("sensor_set_value 0x20 0 %d %d 0", SensorCPUTemp, CPUTempNormal),
		fmt.Sprintf("sensor_add 0x20 0 %d 0x04 0x01", SensorFan),
		fmt.Sprintf("sensor_set_threshold 0x20 0 %d settable 000111 0 0 0 2 5 10", SensorFan),
		fmt.Sprintf("sensor_set_value 0x20 0 %d 60 0", SensorFan),
		fmt.Sprintf("sensor_add 0x20 0 %d 0x09 0x0b", SensorPSURedundancy),
		fmt.Sprintf("sensor_set_bit_clr_rest 0x20 0 %d 0 1 0", SensorPSURedundancy),
	}
	return strings.Join(lines, "\n") + "\n"
}

// simEmu is the emulator's start-up command file.
func (s *Sim) simEmu() string {
	if !s.opts.Sensors {
		return baseEmu
	}
	return strings.Replace(baseEmu, "mc_enable 0x20\n", sensorsEmu()+"mc_enable 0x20\n", 1)
}

// consoleConf opens the emulator console on loopback (Sensors only).
func (s *Sim) consoleConf() string {
	if !s.opts.Sensors {
		return ""
	}
	return fmt.Sprintf("\n  console %s %d\n", Host, s.consolePort)
}

// ConsolePort is the emulator console's TCP port on 127.0.0.1 (0 without
// Options.Sensors).
func (s *Sim) ConsolePort() int { return s.consolePort }

// Emulate runs one ipmi_sim emulator command (ipmi_sim_cmd(5)) through
// the console and returns its output.
func (s *Sim) Emulate(command string) (string, error) {
	if s.consolePort == 0 {
		return "", fmt.Errorf("ipmisim: no console (start with Options.Sensors)")
	}
	if strings.ContainsAny(command, "\r\n") {
		return "", fmt.Errorf("ipmisim: one command per call")
	}
	s.consoleMu.Lock()
	defer s.consoleMu.Unlock()
	c, err := net.DialTimeout("tcp", net.JoinHostPort(Host, fmt.Sprint(s.consolePort)), 5*time.Second)
	if err != nil {
		return "", fmt.Errorf("ipmisim: console: %w", err)
	}
	defer c.Close() //nolint:errcheck // a lab console
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	if _, err := readPrompt(r); err != nil {
		return "", fmt.Errorf("ipmisim: console: %w", err)
	}
	if _, err := c.Write([]byte(command + "\n")); err != nil {
		return "", fmt.Errorf("ipmisim: console: %w", err)
	}
	out, err := readPrompt(r)
	if err != nil {
		return "", fmt.Errorf("ipmisim: console: %w", err)
	}
	// The console echoes the command; what follows is its output.
	out = strings.TrimSpace(strings.ReplaceAll(out, "\r", ""))
	out = strings.TrimSpace(strings.TrimPrefix(out, command))
	if strings.Contains(out, "**") {
		return out, fmt.Errorf("ipmisim: %s: %s", command, out)
	}
	return out, nil
}

// readPrompt reads up to and including the console's "> " prompt.
func readPrompt(r *bufio.Reader) (string, error) {
	var sb strings.Builder
	for {
		b, err := r.ReadByte()
		if err != nil {
			return sb.String(), err
		}
		sb.WriteByte(b)
		if strings.HasSuffix(sb.String(), "> ") {
			return strings.TrimSuffix(sb.String(), "> "), nil
		}
	}
}

// SetSensor sets an analog sensor's raw value (for SensorCPUTemp, degrees
// C); crossing a threshold also logs a SEL event, as a real BMC does.
func (s *Sim) SetSensor(num, raw int) error {
	_, err := s.Emulate(fmt.Sprintf("sensor_set_value 0x20 0 %d %d 1", num, raw))
	return err
}

// SetRedundancyLost switches SensorPSURedundancy between "Redundancy
// Lost" (true) and "Fully Redundant".
func (s *Sim) SetRedundancyLost(lost bool) error {
	bit := 0
	if lost {
		bit = 1
	}
	_, err := s.Emulate(fmt.Sprintf("sensor_set_bit_clr_rest 0x20 0 %d %d 1 1", SensorPSURedundancy, bit))
	return err
}

// AddSEL adds a system event record (type 02h) asserted by sensor num of
// type sensorType with a sensor-specific event offset (reading type 6Fh):
// for memory (0Ch) offset 0 is a correctable ECC error, 1 an uncorrectable
// one.
func (s *Sim) AddSEL(sensorType, num, offset byte) error {
	_, err := s.Emulate(fmt.Sprintf("sel_add 0x20 0x02 0 0 0 0 0x20 0x00 0x04 0x%02x 0x%02x 0x6f 0x%02x 0xff 0xff", sensorType, num, offset&0x0f))
	return err
}

// freeTCPPort asks the kernel for a free TCP port on loopback.
func freeTCPPort() (int, error) {
	l, err := net.Listen("tcp4", net.JoinHostPort(Host, "0"))
	if err != nil {
		return 0, fmt.Errorf("ipmisim: pick a TCP port: %w", err)
	}
	defer l.Close() //nolint:errcheck // a probe socket
	return l.Addr().(*net.TCPAddr).Port, nil
}
