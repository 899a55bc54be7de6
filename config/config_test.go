package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/vmha/vmha/pki"
)

func write(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "vmhad.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadDefaultsFileEnvFlags(t *testing.T) {
	p := write(t, `
node_name: host1
ports: {serf: 8000, raft: 8001, api: 8002}
join: ["127.0.0.1:9000"]
data_dir: /tmp/x
bmc:
  address: 127.0.0.1
  port: 9623
  user: admin
  password_file: /etc/vmha/bmc.pass
gossip:
  probe_interval: 300ms
`)
	t.Setenv("VMHA_HYPERVISOR_URI", "test:///default")
	t.Setenv("VMHA_BMC_USER", "root")
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	Flags(fs)
	if err := fs.Parse([]string{"--ports-api", "8100", "--log-level", "debug"}); err != nil {
		t.Fatal(err)
	}
	d, err := Load(p, fs)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"node", d.NodeName, "host1"},
		{"serf port from file", d.Ports.Serf, 8000},
		{"api port from flag", d.Ports.API, 8100},
		{"uri from env", d.HypervisorURI, "test:///default"},
		{"bmc user from env", d.BMC.User, "root"},
		{"duration from file", d.Gossip.ProbeInterval, 300 * time.Millisecond},
		{"duration default", d.Gossip.ProbeTimeout, 100 * time.Millisecond},
		// docs/scale.md, "Failure detection under load": ×2 left a healthy
		// host 0.65 s at 40 hosts to refute a suspicion.
		{"suspicion default", d.Gossip.SuspicionMult, 3},
		{"advertise defaults to bind", d.AdvertiseAddr, "127.0.0.1"},
		{"log level flag", d.Log.Level, "debug"},
		{"cipher default", d.BMC.CipherSuite, 3},
		{"join", strings.Join(d.Join, ","), "127.0.0.1:9000"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestLoadErrorsNameTheProblem(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"malformed yaml", "node_name: [a\n", "not valid YAML"},
		{"unknown field", "node_name: a\nbogus: 1\n", `unknown field "bogus"`},
		{"bad port", "node_name: a\nports: {serf: 70000}\n", "ports.serf: 70000"},
		{"duplicate port", "node_name: a\nports: {serf: 8000, raft: 8000}\n", "ports.raft: port 8000 is already used by ports.serf"},
		{"bad duration", "node_name: a\ngossip: {probe_interval: soon}\n", "probe_interval"},
		{"negative duration", "node_name: a\nfencing: {timeout: -1s}\n", "fencing.timeout"},
		{"bad join", "node_name: a\njoin: [nowhere]\n", "join[0]"},
		{"bad node name", "node_name: 'a b'\n", "node_name"},
		{"bad bind", "node_name: a\nbind_addr: localhost\n", "bind_addr"},
		{"bmc without user", "node_name: a\nbmc: {address: 10.0.0.1, password_file: /x}\n", "bmc.user"},
		{"bmc bad interface", "node_name: a\nbmc: {address: 10.0.0.1, user: u, password_file: /x, interface: serial}\n", "bmc.interface"},
		{"bad log level", "node_name: a\nlog: {level: loud}\n", "log.level"},
		{"probe timeout too long", "node_name: a\ngossip: {probe_timeout: 1s}\n", "gossip.probe_timeout"},
		{"bad uri", "node_name: a\nhypervisor_uri: qemu\n", "hypervisor_uri"},
		{"fence: unknown device type", "node_name: a\nfence: {devices: [{name: p, type: pdu}], levels: [[p]]}\n", "type"},
		{"fence: level names no device", "node_name: a\nfence: {devices: [{name: p, type: agent, params: {agent: fence_apc}}], levels: [[p, q]]}\n", "q"},
		{"fence: device in no level", "node_name: a\nfence: {devices: [{name: p, type: agent, params: {agent: fence_apc}}]}\n", "level"},
		{"fence: mistyped device key", "node_name: a\nfence: {devices: [{name: p, type: agent, passwd_file: /x}], levels: [[p]]}\n", "passwd_file"},
		{"fence: agent option runs a program", "node_name: a\nfence: {devices: [{name: p, type: agent, params: {agent: fence_virsh, ip: mgmt, ssh_path: /bin/sh}}], levels: [[p]]}\n", "fence device p: param ssh_path: refused"},
		{"fence: libvirt ext transport", "node_name: a\nfence: {devices: [{name: v, type: libvirt, params: {uri: 'qemu+ext:///system?command=/tmp/x'}}], levels: [[v]]}\n", "fence device v: param uri: transport +ext is refused"},
		{"fence: allow_unsafe in vmhad.yaml", "node_name: a\nfence: {devices: [{name: v, type: libvirt, allow_unsafe: true, params: {uri: 'qemu+ssh://mgmt/system'}}], levels: [[v]]}\n", "fence device v: allow_unsafe is honoured only when an operator sets the device"},
		{"fence: bad action", "node_name: a\nbmc: {address: 10.0.0.1, user: u, password_file: /x}\nfence: {action: explode}\n", "explode"},
		{"fence: delay too long", "node_name: a\nbmc: {address: 10.0.0.1, user: u, password_file: /x}\nfence: {delay: 1h}\n", "delay"},
		{"bad metrics addr", "node_name: a\nmetrics_addr: localhost\n", "metrics_addr"},
		{"negative migration cap", "node_name: a\nmigration: {max_per_target: -1}\n", "migration.max_per_target"},
		{"rebalance window", "node_name: a\nrebalance: {window: 'tonight'}\n", "rebalance.window"},
		{"rebalance empty window", "node_name: a\nrebalance: {window: '02:00-02:00'}\n", "empty"},
		{"rebalance bad hour", "node_name: a\nrebalance: {window: '25:00-02:00'}\n", "rebalance.window"},
		{"rebalance negative gain", "node_name: a\nrebalance: {min_gain: -0.1}\n", "rebalance.min_gain"},
		{"rebalance parallel", "node_name: a\nrebalance: {parallel: 0}\n", "rebalance.parallel"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := write(t, tt.body)
			_, err := Load(p, nil)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), p) {
				t.Fatalf("error %q should name %q and the file", err, tt.want)
			}
		})
	}
}

// TestStrictDecoding: a value that would be a silent guess is refused, and
// the error names the file, the field and, for the environment, the
// variable. Today's review found fencing: {timeout: 20} meaning 20 ns and
// bootstrap_expect: true bootstrapping a host alone.
func TestStrictDecoding(t *testing.T) {
	tests := []struct {
		name, body string
		env        map[string]string
		want       string
	}{
		{"bare number duration", "fencing: {timeout: 20}\n", nil, "fencing.timeout: 20 has no unit (write 20s or 20ms)"},
		{"bare zero duration", "fence: {delay: 0}\n", nil, "fence.delay: 0 has no unit (write 0s or 0ms)"},
		{"float duration", "gossip: {probe_interval: 0.5}\n", nil, "gossip.probe_interval: 0.5 has no unit (write 0.5s or 0.5ms)"},
		{"quoted bare number duration", "agent: {interval: '2'}\n", nil, "agent.interval: 2 has no unit (write 2s or 2ms)"},
		{"not a duration", "raft: {leader_lease: soon}\n", nil, `raft.leader_lease: "soon" is not a duration (write e.g. 20s, 500ms or 2m)`},
		{"bool duration", "ping: {dampen: true}\n", nil, "ping.dampen: true, want a duration with a unit (20s, 500ms, 2m)"},
		{"fence device timeout without unit", "fence: {devices: [{name: p, type: agent, timeout: 5, params: {agent: fence_apc}}], levels: [[p]]}\n", nil, "fence.devices[0].timeout: 5 has no unit (write 5s or 5ms)"},
		{"bool into int", "bootstrap_expect: true\n", nil, "bootstrap_expect: true is not a number, want a whole number"},
		{"float into int", "bootstrap_expect: 2.5\n", nil, "bootstrap_expect: 2.5 is a decimal number, want a whole number"},
		{"whole float into int", "raft: {max_voters: 3.0}\n", nil, "raft.max_voters: 3.0 is a decimal number, want a whole number"},
		{"text into int", "ports: {api: x}\n", nil, `ports.api: "x" is not a whole number`},
		{"negative into unsigned", "migration: {bandwidth_mibps: -1}\n", nil, "migration.bandwidth_mibps: -1 is negative, want 0 or more"},
		{"number into bool", "witness: 1\n", nil, "witness: 1 is not true or false"},
		{"number into text", "cluster_name: 123\n", nil, `cluster_name: 123 is a number, want text (quote it: "123")`},
		{"bool into text", "log: {level: true}\n", nil, `log.level: true is a boolean, want text (quote it: "true")`},
		{"list into text", "data_dir: [/a, /b]\n", nil, "data_dir: a list, want text"},
		{"value for a section", "fencing: 20\n", nil, "fencing: 20, want a map (key: value)"},
		{"float into device param", "fence: {devices: [{name: p, type: agent, params: {agent: fence_apc, x: 1.5}}], levels: [[p]]}\n", nil, `fence.devices[0].params[x]: 1.5 is a number, want text (quote it: "1.5")`},
		{"unknown key in a list item", "storage: {filesystems: [{name: a, type: gfs2, device: /dev/x, mount_point: /m, bogus: 1}]}\n", nil, `storage.filesystems[0]: unknown field "bogus"`},
		{"env bare number duration", "", map[string]string{"VMHA_FENCING_TIMEOUT": "20"}, "fencing.timeout (environment VMHA_FENCING_TIMEOUT): 20 has no unit (write 20s or 20ms)"},
		{"env float duration", "", map[string]string{"VMHA_AGENT_INTERVAL": "1.5"}, "agent.interval (environment VMHA_AGENT_INTERVAL): 1.5 has no unit (write 1.5s or 1.5ms)"},
		{"env bool into int", "", map[string]string{"VMHA_BOOTSTRAP_EXPECT": "true"}, `bootstrap_expect (environment VMHA_BOOTSTRAP_EXPECT): "true" is not a whole number`},
		{"env float into int", "", map[string]string{"VMHA_PORTS_API": "7948.5"}, `ports.api (environment VMHA_PORTS_API): "7948.5" is not a whole number`},
		{"env bad bool", "", map[string]string{"VMHA_WITNESS": "maybe"}, `witness (environment VMHA_WITNESS): "maybe" is not true or false`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			p := write(t, "node_name: a\n"+tt.body)
			d, err := Load(p, nil)
			if err == nil {
				t.Fatalf("accepted: %+v", d)
			}
			if !strings.Contains(err.Error(), "config "+p+": "+tt.want) {
				t.Fatalf("error %q\nshould name the file and say %q", err, tt.want)
			}
		})
	}
}

// TestFlagAndEnvValuesNameTheirSource: a wrong value from a flag or the
// environment names the flag or variable beside the field.
func TestFlagAndEnvValuesNameTheirSource(t *testing.T) {
	t.Setenv("VMHA_LOG_LEVEL", "loud")
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	Flags(fs)
	if err := fs.Parse([]string{"--bootstrap-expect", "0"}); err != nil {
		t.Fatal(err)
	}
	p := write(t, "node_name: a\n")
	_, err := Load(p, fs)
	for _, w := range []string{
		"config " + p + ": bootstrap_expect (flag --bootstrap-expect): 0, must be at least 1",
		"config " + p + `: log.level (environment VMHA_LOG_LEVEL): "loud", want debug, info, warn or error`,
	} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v\ndoes not say %q", err, w)
		}
	}
}

// TestStrictDecodingAccepts: what the strict rules must still take: units
// from the file and the environment, text from the environment for every
// type, lists from the environment, numbers and booleans as fence device
// params (passed on as text), a whole number for a decimal.
func TestStrictDecodingAccepts(t *testing.T) {
	t.Setenv("VMHA_FENCING_TIMEOUT", "15s")
	t.Setenv("VMHA_BOOTSTRAP_EXPECT", "5")
	t.Setenv("VMHA_WITNESS", "false")
	t.Setenv("VMHA_JOIN", "127.0.0.1:9000,127.0.0.2:9000")
	t.Setenv("VMHA_REBALANCE_MIN_GAIN", "0.5")
	p := write(t, `node_name: a
fence:
  devices: [{name: p, type: agent, timeout: 4s, params: {agent: fence_apc, ipport: 161, secure: true}}]
  levels: [[p]]
rebalance: {max_moves: 3}
migration: {bandwidth_mibps: 100}
`)
	d, err := Load(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"env duration", d.Fencing.Timeout, 15 * time.Second},
		{"env int", d.BootstrapExpect, 5},
		{"env bool", d.Witness, false},
		{"env list", strings.Join(d.Join, " "), "127.0.0.1:9000 127.0.0.2:9000"},
		{"env float", d.Rebalance.MinGain, 0.5},
		{"device timeout", d.Fence.Devices[0].Timeout, 4 * time.Second},
		{"number param", d.Fence.Devices[0].Params["ipport"], "161"},
		{"bool param", d.Fence.Devices[0].Params["secure"], "true"},
		{"uint", d.Migration.BandwidthMiBps, uint64(100)},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}

// TestLoadListsEveryProblem: one run shows every wrong field, not only the
// first, and a field that failed to decode is not reported twice.
func TestLoadListsEveryProblem(t *testing.T) {
	p := write(t, "node_name: a\nbootstrap_expect: true\nfencing: {timeout: 20}\nagent: {interval: 1}\nlog: {level: loud}\nports: {serf: 70000}\nbogus: 1\n")
	_, err := Load(p, nil)
	if err == nil || !strings.Contains(err.Error(), `unknown field "bogus"`) {
		t.Fatalf("unknown keys come first: %v", err)
	}
	p = write(t, "node_name: a\nbootstrap_expect: true\nfencing: {timeout: 20}\nagent: {interval: 1}\nlog: {level: loud}\nports: {serf: 70000}\n")
	_, err = Load(p, nil)
	var probs Problems
	if !errors.As(err, &probs) {
		t.Fatalf("error %v (%T) is not a list of problems", err, err)
	}
	want := []string{
		"bootstrap_expect: true is not a number",
		"fencing.timeout: 20 has no unit",
		"agent.interval: 1 has no unit",
		"ports.serf: 70000 is not a port",
		`log.level: "loud"`,
	}
	if len(probs) != len(want) {
		t.Fatalf("%d problems, want %d:\n%v", len(probs), len(want), err)
	}
	for _, w := range want {
		n := 0
		for _, pr := range probs {
			if strings.Contains(pr.Error(), w) {
				n++
				if !strings.HasPrefix(pr.Error(), "config "+p+": ") {
					t.Errorf("%q does not name the file", pr)
				}
			}
		}
		if n != 1 {
			t.Errorf("%q reported %d times in:\n%v", w, n, err)
		}
	}
}

// TestLoadForCheckKeepsTheConfig: --check-config gets the config as far as
// it decoded, to check the files it names; Load never returns a config with
// an error.
func TestLoadForCheckKeepsTheConfig(t *testing.T) {
	d, err := LoadForCheck(write(t, "node_name: a\nlog: {level: loud}\nbmc: {address: 10.0.0.1, user: u, password_file: /x}\n"), nil)
	if err == nil || d == nil || d.BMC.PasswordFile != "/x" {
		t.Fatalf("d = %v, err = %v", d, err)
	}
	if d, err := Load(write(t, "node_name: a\nlog: {level: loud}\n"), nil); err == nil || d != nil {
		t.Fatalf("Load returned a config with an error: %v, %v", d, err)
	}
	d, err = LoadForCheck(write(t, "node_name: a\nfencing: {timeout: 20}\ngossip: {encrypt_key_file: /k}\n"), nil)
	if err == nil || d == nil || d.Gossip.EncryptKeyFile != "/k" {
		t.Fatalf("d = %v, err = %v", d, err)
	}
	if d, err := Load(write(t, "node_name: a\nfencing: {timeout: 20}\n"), nil); err == nil || d != nil {
		t.Fatalf("Load returned a config with an error: %v, %v", d, err)
	}
	if d, err := LoadForCheck(write(t, "node_name: a\nbogus: 1\n"), nil); err == nil || d != nil {
		t.Fatalf("a config with unknown keys came back: %v, %v", d, err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("/nonexistent/vmhad.yaml", nil)
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/vmhad.yaml") || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("error = %v", err)
	}
}

func TestSampleConfigLoads(t *testing.T) {
	tlsDir := t.TempDir()
	if err := pki.InitCA(tlsDir, "t"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := pki.Issue(tlsDir, "host1", pki.RoleHost, nil, nil); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("../configs/vmhad.yaml")
	if err != nil {
		t.Fatal(err)
	}
	d, err := Load(write(t, strings.ReplaceAll(string(b), "/etc/vmha/tls/", tlsDir+"/")), nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.BMC.Address == "" {
		t.Fatal("the sample should show a BMC")
	}
}

// TestClusterSamplesLoad: the three-host and two-hosts-plus-witness samples
// are valid configs (their TLS files made for the test).
func TestClusterSamplesLoad(t *testing.T) {
	tlsDir := t.TempDir()
	if err := pki.InitCA(tlsDir, "t"); err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"host1", "host2", "host3", "witness"} {
		if _, _, err := pki.Issue(tlsDir, h, pki.RoleHost, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	paths, _ := filepath.Glob("../configs/*/*.yaml")
	if len(paths) < 6 {
		t.Fatalf("only %d sample cluster configs", len(paths))
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		body := strings.ReplaceAll(string(b), "/etc/vmha/tls/", tlsDir+"/")
		d, err := Load(write(t, body), nil)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if strings.Contains(p, "witness.yaml") != d.Witness {
			t.Errorf("%s: witness %v", p, d.Witness)
		}
	}
}

func FuzzLoad(f *testing.F) {
	f.Add("node_name: a\nports: {serf: 1, raft: 2, api: 3}\n")
	f.Add("bmc: {address: x}\n")
	f.Add("node_name: a\nfencing: {timeout: 20}\nbootstrap_expect: true\n")
	f.Add("node_name: a\nfence: {devices: [{name: p, type: agent, timeout: 1.5, params: {agent: x, n: 1}}], levels: [p]}\n")
	f.Fuzz(func(t *testing.T, body string) {
		p := filepath.Join(t.TempDir(), "f.yaml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		d, err := Load(p, nil)
		if err != nil {
			return
		}
		if err := d.Validate(); err != nil {
			t.Fatalf("Load accepted a config Validate rejects: %v", err)
		}
	})
}

// TestSecureByDefault: a daemon the network can reach needs mutual TLS and
// gossip encryption, or an explicit insecure: true; loopback (the demo, the
// labs) runs without.
func TestSecureByDefault(t *testing.T) {
	tlsDir := t.TempDir()
	if err := pki.InitCA(tlsDir, "t"); err != nil {
		t.Fatal(err)
	}
	crt, key, err := pki.Issue(tlsDir, "host1", pki.RoleHost, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	tlsBlock := fmt.Sprintf("tls: {ca_file: %s, cert_file: %s, key_file: %s}\n", filepath.Join(tlsDir, pki.CACert), crt, key)
	gossip := "gossip: {encrypt_key_file: /etc/vmha/gossip.key}\n"
	base := "node_name: host1\ndata_dir: /tmp/x\n"
	for _, tc := range []struct {
		name, body string
		want       string // "" = loads
	}{
		{"loopback without anything", base + "bind_addr: 127.0.0.1\n", ""},
		{"network without anything", base + "bind_addr: 192.0.2.1\n", "mutual TLS (tls: ca_file, cert_file, key_file) and gossip encryption (gossip.encrypt_key_file) are not configured"},
		{"all interfaces without anything", base + "bind_addr: 0.0.0.0\nadvertise_addr: 192.0.2.1\n", "bind_addr: 0.0.0.0 is reachable from the network"},
		{"loopback advertising a network address", base + "bind_addr: 127.0.0.1\nadvertise_addr: 192.0.2.1\n", "reachable from the network"},
		{"network with TLS only", base + "bind_addr: 192.0.2.1\n" + tlsBlock, "gossip encryption (gossip.encrypt_key_file) is not configured"},
		{"network with gossip only", base + "bind_addr: 192.0.2.1\n" + gossip, "mutual TLS (tls: ca_file, cert_file, key_file) is not configured"},
		{"network secured", base + "bind_addr: 192.0.2.1\n" + tlsBlock + gossip, ""},
		{"network insecure on purpose", base + "bind_addr: 192.0.2.1\ninsecure: true\n", ""},
	} {
		_, err := Load(write(t, tc.body), nil)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "vmha cluster init")):
			t.Errorf("%s: %v, want an error containing %q and the way out", tc.name, err, tc.want)
		}
	}
}

// TestDaemonSocketIsNotTheCLIs: VMHA_SOCKET, exported for vmha, does not
// move the daemon's socket; VMHAD_SOCKET does. Admission is auto by default.
func TestDaemonSocketIsNotTheCLIs(t *testing.T) {
	p := write(t, "node_name: host1\ndata_dir: /tmp/x\n")
	t.Setenv("VMHA_SOCKET", "/tmp/the-cli-s.sock")
	d, err := Load(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.Socket != "/run/vmha/vmhad.sock" {
		t.Fatalf("VMHA_SOCKET moved the daemon's socket to %s", d.Socket)
	}
	if d.Admission != "auto" {
		t.Fatalf("admission %q by default, want auto", d.Admission)
	}
	t.Setenv("VMHAD_SOCKET", "/tmp/daemon.sock")
	if d, err = Load(p, nil); err != nil || d.Socket != "/tmp/daemon.sock" {
		t.Fatalf("VMHAD_SOCKET: %v %v", d, err)
	}
}

func TestParseFence(t *testing.T) {
	sp, err := ParseFence("h1", []byte(`action: reboot
delay: 5s
devices:
  - name: pdu
    type: agent
    params: {agent: fence_apc_snmp, ip: 10.0.0.50, plug: "3"}
    password_env: VMHA_PDU_PW
  - name: mgmt
    type: libvirt
    allow_unsafe: true
    params: {uri: "qemu+ssh://root@mgmt/system", host_map: "h1:lab-h1"}
levels: [[pdu], [mgmt]]
`))
	if err != nil {
		t.Fatal(err)
	}
	h := sp.Hosts[0]
	if h.Name != "h1" || h.Action != "reboot" || h.Delay != 5*time.Second || len(h.Levels) != 2 || len(sp.Devices) != 2 || !sp.Devices[1].AllowUnsafe || sp.Devices[1].Params["host_map"] != "h1:lab-h1" {
		t.Fatalf("spec %+v", sp)
	}
	for _, tc := range []struct{ name, body, want string }{
		{"unknown key", "devices: [{name: p, type: agent, params: {agent: fence_apc}}]\nlevels: [[p]]\nbmc: {address: x}\n", `unknown field "bmc.address"`},
		{"mistyped device key", "devices: [{name: p, type: agent, params: {agent: fence_apc}, passwd_file: /x}]\nlevels: [[p]]\n", "passwd_file"},
		{"no device", "levels: [[p]]\n", "devices: none"},
		{"refused option", "devices: [{name: p, type: agent, params: {agent: fence_apc, ip: pdu, ssh_options: '-oProxyCommand=id'}}]\nlevels: [[p]]\n", "fence device p: param ssh_options: refused"},
		{"not yaml", "devices: [", "not valid YAML"},
	} {
		if _, err := ParseFence("h1", []byte(tc.body)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

// TestTwoNodeValidation: quorum.two_node is refused where it cannot be
// safe (no fence device for this host, a witness, another cluster size),
// with an error naming the field and what is missing, and accepted on a
// fenceable host of a two-host cluster.
func TestTwoNodeValidation(t *testing.T) {
	const bmc = "bmc: {address: 10.0.0.1, user: u, password_file: /x}\n"
	tests := []struct {
		name, body string
		want       []string // parts of the error; none: valid
	}{
		{"two hosts with a BMC", "node_name: a\nbootstrap_expect: 2\nquorum: {two_node: true}\n" + bmc, nil},
		{"fence devices instead of a bmc", "node_name: a\nbootstrap_expect: 2\nquorum: {two_node: true}\nfence: {devices: [{name: p, type: agent, params: {agent: fence_apc_snmp, ip: 10.0.0.9, plug: '3'}}], levels: [[p]]}\n", nil},
		{"off by default", "node_name: a\nbootstrap_expect: 2\n", nil},
		{"no fencing", "node_name: a\nbootstrap_expect: 2\nquorum: {two_node: true}\n",
			[]string{"quorum.two_node: needs this host's fence devices (bmc, or fence.devices and fence.levels)", "two_node without fencing is refused"}},
		{"three hosts", "node_name: a\nquorum: {two_node: true}\n" + bmc, []string{"quorum.two_node: bootstrap_expect is 3", "exactly two hosts"}},
		{"on a witness", "node_name: w\nbootstrap_expect: 2\nwitness: true\nquorum: {two_node: true}\n",
			[]string{"quorum.two_node: true on a witness", "quorum.two_node: needs this host's fence devices"}},
		{"one voter", "node_name: a\nbootstrap_expect: 2\nraft: {max_voters: 1}\nquorum: {two_node: true}\n" + bmc, []string{"quorum.two_node: raft.max_voters is 1"}},
		{"not a bool", "node_name: a\nbootstrap_expect: 2\nquorum: {two_node: 1}\n" + bmc, []string{"quorum.two_node"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := write(t, tt.body)
			d, err := Load(p, nil)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if strings.Contains(tt.body, "two_node: true") != d.Quorum.TwoNode {
					t.Fatalf("two_node = %v", d.Quorum.TwoNode)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) || !strings.Contains(err.Error(), p) {
					t.Fatalf("error %q should name %q and the file", err, w)
				}
			}
		})
	}
}
