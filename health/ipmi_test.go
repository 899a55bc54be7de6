package health

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vmha/vmha/internal/secret"
	"github.com/vmha/vmha/internal/testlab/ipmisim"
	"github.com/vmha/vmha/internal/testlab/testenv"
)

// TestIPMIReaderAgainstIPMISim reads a real BMC emulator (OpenIPMI's
// ipmi_sim over IPMI 2.0) while its sensors and event log change at run
// time, and evaluates the default rules on what it read.
func TestIPMIReaderAgainstIPMISim(t *testing.T) {
	testenv.NeedCommand(t, ipmisim.Command)
	const pw = "sensor-secret-pw"
	sim, err := ipmisim.Start(ipmisim.Options{Dir: t.TempDir(), Password: pw, Sensors: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Stop() //nolint:errcheck
	r := &IPMI{Address: "127.0.0.1", Port: sim.Port(), User: ipmisim.DefaultUser, Password: secret.New(pw), Timeout: time.Second}
	read := func() (Readings, Result) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		rd, err := r.Read(ctx)
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		return rd, Evaluate(rd, nil, false)
	}

	rd, res := read()
	byName := map[string]Sensor{}
	for _, s := range rd.Sensors {
		byName[s.Name] = s
	}
	if s := byName["CPU Temp"]; !s.Threshold || s.Value != 45 || s.Status != "ok" || s.Type != "Temperature" {
		t.Fatalf("CPU Temp = %+v", s)
	}
	if s := byName["Fan 1"]; !s.Threshold || s.Value != 6000 || s.Status != "ok" {
		t.Fatalf("Fan 1 = %+v", s)
	}
	if s := byName["PSU Redundancy"]; s.Threshold || len(s.States) != 1 || s.States[0] != "Fully Redundant" {
		t.Fatalf("PSU Redundancy = %+v", s)
	}
	if res.Level != Green || len(res.Reasons) != 0 {
		t.Fatalf("healthy BMC: %+v", res)
	}

	if err := sim.SetSensor(ipmisim.SensorCPUTemp, ipmisim.CPUTempWarning); err != nil {
		t.Fatal(err)
	}
	if _, res = read(); res.Level != Yellow || !strings.Contains(strings.Join(res.Reasons, ";"), "CPU Temp 85 degrees C, above upper non-critical 80") {
		t.Fatalf("CPU at 85: %+v", res)
	}
	if err := sim.SetSensor(ipmisim.SensorCPUTemp, ipmisim.CPUTempCritical); err != nil {
		t.Fatal(err)
	}
	if _, res = read(); res.Level != Red || !strings.Contains(res.Reasons[0], "CPU Temp 95 degrees C, above upper critical 90") {
		t.Fatalf("CPU at 95: %+v", res)
	}
	if err := sim.SetSensor(ipmisim.SensorCPUTemp, ipmisim.CPUTempNormal); err != nil {
		t.Fatal(err)
	}
	if err := sim.SetRedundancyLost(true); err != nil {
		t.Fatal(err)
	}
	// The threshold events the excursion logged in the SEL do not count:
	// the sensor itself says the temperature is back.
	if _, res = read(); res.Level != Yellow || len(res.Reasons) != 1 || !strings.Contains(res.Reasons[0], "Redundancy Lost") {
		t.Fatalf("PSU redundancy lost: %+v", res)
	}
	if err := sim.SetRedundancyLost(false); err != nil {
		t.Fatal(err)
	}
	if err := sim.AddSEL(0x0c, 4, 1); err != nil { // memory: uncorrectable ECC
		t.Fatal(err)
	}
	rd, res = read()
	if res.Level != Red || len(res.Reasons) != 1 || !strings.Contains(res.Reasons[0], "Uncorrectable ECC") {
		t.Fatalf("uncorrectable ECC in the SEL: %+v (events %+v)", res, rd.Events)
	}

	// A wrong password fails without showing any password.
	bad := &IPMI{Address: "127.0.0.1", Port: sim.Port(), User: ipmisim.DefaultUser, Password: secret.New("wrong-secret-pw"), Timeout: 300 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := bad.Read(ctx); err == nil || strings.Contains(err.Error(), "wrong-secret-pw") || strings.Contains(err.Error(), pw) {
		t.Fatalf("wrong password: %v", err)
	}
}
