package config

import (
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

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("/nonexistent/vmhad.yaml", nil)
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/vmhad.yaml") || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("error = %v", err)
	}
}

func TestSampleConfigLoads(t *testing.T) {
	d, err := Load("../configs/vmhad.yaml", nil)
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
	for _, h := range []string{"host1", "host2", "host3"} {
		if _, _, err := pki.Issue(tlsDir, h, nil, nil); err != nil {
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
