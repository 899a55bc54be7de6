package devices_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	lv "libvirt.org/go/libvirt"

	"github.com/vmha/vmha/fencing"
	"github.com/vmha/vmha/fencing/devices"
	"github.com/vmha/vmha/fencing/spec"
	"github.com/vmha/vmha/internal/testlab/ipmisim"
	"github.com/vmha/vmha/internal/testlab/testenv"
)

const secretPw = "Spec-Pw-58ad"

func pwFile(t *testing.T, mode os.FileMode) string {
	return testenv.SecretFile(t, secretPw, mode)
}

func fakeAgent(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fence_fake")
	if err := os.WriteFile(p, []byte("#!/bin/sh\ncat >/dev/null\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func validSpec(t *testing.T) spec.Spec {
	return spec.Spec{
		Devices: []spec.Device{
			{Name: "bmc-h1", Type: "ipmi", Params: map[string]string{"address": "10.0.0.11", "user": "admin", "cipher_suite": "3"}, PasswordFile: pwFile(t, 0o600)},
			{Name: "bmc-h2", Type: "ipmi", Params: map[string]string{"address": "10.0.0.12", "user": "admin", "interface": "lan", "port": "6230"}, PasswordEnv: "VMHA_TEST_BMC_PW"},
			// A test script at a path is not a listed agent: an operator's
			// allow_unsafe runs it.
			{Name: "pdu-a", Type: "agent", Params: map[string]string{"agent": fakeAgent(t), "ip": "10.0.1.1", "host_map": "h1:3;h2:4"}, AllowUnsafe: true},
			{Name: "pdu-b", Type: "agent", Params: map[string]string{"agent": fakeAgent(t), "ip": "10.0.1.2", "host_map": "h1:3;h2:4"}, AllowUnsafe: true},
			{Name: "mgmt", Type: "libvirt", Params: map[string]string{"uri": "test:///default", "host_map": "h1:lab-h1,h2:lab-h2"}},
		},
		Hosts: []spec.Host{
			{Name: "h1", Levels: [][]string{{"bmc-h1"}, {"pdu-a", "pdu-b"}}, Delay: 5 * time.Second},
			{Name: "h2", Levels: [][]string{{"bmc-h2"}, {"mgmt"}}, Action: "reboot", RandomDelay: 3 * time.Second},
		},
	}
}

func TestBuildValid(t *testing.T) {
	t.Setenv("VMHA_TEST_BMC_PW", secretPw)
	s := validSpec(t)
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	set, err := devices.Build(s)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	defer func() { _ = set.Close() }()
	if fmt.Sprint(set.Hosts()) != "[h1 h2]" {
		t.Fatalf("hosts %v", set.Hosts())
	}
	names := func(h string) string {
		var lv []string
		for _, l := range set.Topologies[h].Levels {
			var ds []string
			for _, d := range l.Devices {
				ds = append(ds, d.Name())
			}
			lv = append(lv, strings.Join(ds, " + "))
		}
		return strings.Join(lv, " | ")
	}
	if got := names("h1"); got != "ipmi 10.0.0.11:623 | agent fence_fake 10.0.1.1 plug 3 + agent fence_fake 10.0.1.2 plug 3" {
		t.Fatalf("h1: %s", got)
	}
	if got := names("h2"); got != "ipmi 10.0.0.12:6230 | libvirt test:///default domain lab-h2" {
		t.Fatalf("h2: %s", got)
	}
	h1, h2 := set.Topologies["h1"], set.Topologies["h2"]
	if h1.Action != fencing.ActionOff || h1.Delay != 5*time.Second || h2.Action != fencing.ActionReboot || h2.RandomDelay != 3*time.Second {
		t.Fatalf("policy h1 %+v h2 %+v", h1, h2)
	}
	for _, out := range []string{fmt.Sprintf("%v %+v %#v", s, s, s), fmt.Sprintf("%v %+v %#v", set.Topologies, set.Topologies, set.Topologies)} {
		if strings.Contains(out, secretPw) {
			t.Fatalf("a secret prints: %s", out)
		}
	}
}

func TestBadInput(t *testing.T) {
	t.Setenv("VMHA_TEST_BMC_PW", secretPw)
	unreadable := filepath.Join(t.TempDir(), "missing.pw")
	for _, tc := range []struct {
		name   string
		change func(*spec.Spec)
		want   string
		static bool // found by Validate, not only by Build
	}{
		{"unknown device type", func(s *spec.Spec) { s.Devices[0].Type = "drac" }, `fence device bmc-h1: unknown type "drac"`, true},
		{"level names no device", func(s *spec.Spec) { s.Hosts[0].Levels = append(s.Hosts[0].Levels, nil) }, "fence host h1: level 3 names no device", true},
		{"level names an unknown device", func(s *spec.Spec) { s.Hosts[1].Levels[1] = []string{"pdu-z"} }, `fence host h2: level 2 names unknown device "pdu-z"`, true},
		{"host with no level", func(s *spec.Spec) { s.Hosts = append(s.Hosts, spec.Host{Name: "h3"}) }, "fence host h3: no level", true},
		{"password file missing", func(s *spec.Spec) { s.Devices[0].PasswordFile = unreadable }, "fence device bmc-h1: password_file: open " + unreadable + ": no such file", false},
		{"password file world readable", func(s *spec.Spec) { s.Devices[0].PasswordFile = pwFile(t, 0o644) }, "has mode 0644", false},
		{"password env unset", func(s *spec.Spec) { s.Devices[1].PasswordEnv = "VMHA_TEST_UNSET_X" }, "fence device bmc-h2: password_env: environment variable VMHA_TEST_UNSET_X is not set", false},
		{"ipmi without password", func(s *spec.Spec) { s.Devices[0].PasswordFile = "" }, "fence device bmc-h1: a password source is required", true},
		{"inline password", func(s *spec.Spec) { s.Devices[2].Params["password"] = secretPw }, "fence device pdu-a: param password is not allowed", true},
		{"unknown ipmi param", func(s *spec.Spec) { s.Devices[0].Params["addr"] = "x" }, "fence device bmc-h1: unknown param addr for type ipmi (known: address, cipher_suite, interface, port, user)", true},
		{"missing required param", func(s *spec.Spec) { delete(s.Devices[4].Params, "uri") }, "fence device mgmt: param uri is required for type libvirt", true},
		{"host missing from host_map", func(s *spec.Spec) { s.Devices[2].Params["host_map"] = "h2:4" }, "fence host h1: level 2: device pdu-a: host_map has no entry for host h1", true},
		{"bad action", func(s *spec.Spec) { s.Hosts[0].Action = "halt" }, `fence host h1: fence action "halt"`, true},
		{"delay too long", func(s *spec.Spec) { s.Hosts[0].Delay = time.Hour }, "fence host h1: delay 1h0m0s is outside", true},
		{"duplicate device", func(s *spec.Spec) { s.Devices = append(s.Devices, s.Devices[0]) }, "fence device bmc-h1: defined twice", true},
		{"duplicate host", func(s *spec.Spec) { s.Hosts = append(s.Hosts, s.Hosts[0]) }, "fence host h1: defined twice", true},
		{"bad port", func(s *spec.Spec) { s.Devices[1].Params["port"] = "70000" }, "fence device bmc-h2: ipmi: port 70000 is out of range", false},
		{"agent not installed", func(s *spec.Spec) { s.Devices[2].Params["agent"] = "fence_nonexistent_x" }, "fence device pdu-a: fence agent: fence_nonexistent_x not found", false},
		{"both password sources", func(s *spec.Spec) { s.Devices[1].PasswordFile = "/x" }, "password_file and password_env are both set", true},
		{"one BMC for two hosts", func(s *spec.Spec) { s.Hosts[1].Levels[0] = []string{"bmc-h1"} }, "fence device bmc-h1: used by hosts h1, h2 but controls a single power feed", true},
		{"libvirt with password", func(s *spec.Spec) { s.Devices[4].PasswordEnv = "X" }, "type libvirt takes no password", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := validSpec(t)
			tc.change(&s)
			verr := s.Validate()
			if tc.static != (verr != nil) {
				t.Fatalf("Validate = %v, want an error: %v", verr, tc.static)
			}
			set, err := devices.Build(s)
			if err == nil {
				_ = set.Close()
				t.Fatalf("Build succeeded, want %q", tc.want)
			}
			if set != nil {
				t.Fatal("Build returned a set with an error: nothing may be applied")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q\nwant %q", err, tc.want)
			}
			if strings.Contains(err.Error(), secretPw) || strings.Contains(fmt.Sprintf("%+v %#v", err, err), secretPw) {
				t.Fatalf("error leaks the password: %v", err)
			}
		})
	}
}

// TestLevelFallbackRealParts builds a host whose level 1 is a real BMC
// (ipmi_sim) that ignores power off and whose level 2 is the host's domain
// on a libvirt management hypervisor (test:///default): the run fails
// level 1, fences through level 2, and reports both.
func TestLevelFallbackRealParts(t *testing.T) {
	testenv.NeedCommand(t, "ipmi_sim")
	sim, err := ipmisim.Start(ipmisim.Options{Dir: t.TempDir(), User: "admin", Password: secretPw, IgnorePowerOff: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Stop() })

	obs, err := lv.NewConnect("test:///default")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _, _ = obs.Close() }()
	dom, err := obs.DomainDefineXML(`<domain type='test'><name>spec-lab-h1</name><memory unit='MiB'>128</memory><os><type>hvm</type></os></domain>`)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = dom.Destroy(); _ = dom.Undefine(); dom.Free() }()
	if err := dom.Create(); err != nil {
		t.Fatal(err)
	}

	t.Setenv("VMHA_TEST_SIM_PW", secretPw)
	s := spec.Spec{
		Devices: []spec.Device{
			{Name: "bmc", Type: "ipmi", Params: map[string]string{"address": ipmisim.Host, "port": strconv.Itoa(sim.Port()), "user": "admin"}, PasswordEnv: "VMHA_TEST_SIM_PW", Timeout: 2 * time.Second},
			{Name: "mgmt", Type: "libvirt", Params: map[string]string{"uri": "test:///default", "host_map": "h1:spec-lab-h1"}},
		},
		Hosts: []spec.Host{{Name: "h1", Levels: [][]string{{"bmc"}, {"mgmt"}}}},
	}
	set, err := devices.Build(s)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = set.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rep, err := set.Topologies["h1"].Run(ctx, fencing.RunOptions{Fence: fencing.Options{
		Timeout: time.Second, CallTimeout: time.Second, PollInterval: 50 * time.Millisecond, Retries: 1, Backoff: 10 * time.Millisecond,
	}})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !rep.Fenced || rep.Level != 2 {
		t.Fatalf("report %+v", rep)
	}
	steps := rep.Steps()
	if len(steps) != 2 || steps[0].OK || !errors.Is(steps[0].Err, fencing.ErrStillOn) || !steps[1].OK {
		t.Fatalf("steps %+v", steps)
	}
	t.Logf("level 1: %s", steps[0].Error)
	if st, _, err := dom.GetState(); err != nil || st != lv.DOMAIN_SHUTOFF {
		t.Fatalf("domain state %v, %v", st, err)
	}
	if p, _ := sim.PowerState(); p != "on" {
		t.Fatalf("sim power %q", p)
	}
}

// TestOpenResolved: a device resolved for replication (spec.Device.Resolve)
// opens without its password file.
func TestOpenResolved(t *testing.T) {
	d := spec.Device{Name: "bmc", Type: "ipmi", Params: map[string]string{"address": "10.0.0.1", "user": "admin"}, PasswordFile: pwFile(t, 0o600)}
	r, err := d.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(d.PasswordFile); err != nil {
		t.Fatal(err)
	}
	if _, err := devices.Open(r, "h1"); err != nil {
		t.Fatal(err)
	}
}
