package spec_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/vmha/vmha/fencing"
	"github.com/vmha/vmha/fencing/agent"
	"github.com/vmha/vmha/fencing/spec"
)

// TestAllowLists: the devices of the attack (an agent option that runs a
// shell, a libvirt URI that runs a program) and their relatives are refused
// with the device, the param and the reason named; an operator's
// allow_unsafe lifts the allow-lists (not the rules that keep secrets out of
// params), and a spec from a host may not carry allow_unsafe at all.
func TestAllowLists(t *testing.T) {
	ipmi := func(p map[string]string) spec.Device {
		return spec.Device{Name: "d", Type: spec.TypeIPMI, Params: p, PasswordEnv: "VMHA_X"}
	}
	ag := func(kv ...string) spec.Device {
		d := spec.Device{Name: "pdu", Type: spec.TypeAgent, Params: map[string]string{}}
		for i := 0; i+1 < len(kv); i += 2 {
			d.Params[kv[i]] = kv[i+1]
		}
		return d
	}
	virt := func(uri string) spec.Device {
		return spec.Device{Name: "mgmt", Type: spec.TypeLibvirt, Params: map[string]string{"uri": uri}}
	}
	for _, tc := range []struct {
		name string
		dev  spec.Device
		want []string // nil: valid; else every string must be in the error
		// unsafeOK: with allow_unsafe the device is valid.
		unsafeOK bool
	}{
		{"listed agent, usual options", ag("agent", "fence_ipmilan", "ip", "10.0.0.11", "ipport", "623", "username", "admin", "lanplus", "1", "cipher", "3", "power_wait", "0"), nil, true},
		{"virsh with its plug map", ag("agent", "fence_virsh", "ip", "mgmt", "username", "root", "host_map", "h1:lab-h1;h2:lab-h2"), nil, true},
		{"apc snmp", ag("agent", "fence_apc_snmp", "ip", "10.0.1.1", "community", "private", "snmp_version", "2c", "plug", "3"), nil, true},
		{"libvirt over tls", virt("qemu+tls://mgmt/system"), nil, true},
		{"libvirt test driver", virt("test:///default"), nil, true},
		{"ipmi", ipmi(map[string]string{"address": "10.0.0.11", "user": "admin", "port": "623"}), nil, true},

		{"the attack: fence_virsh ssh_path", ag("agent", "fence_virsh", "ip", "10.9.9.9", "ssh_path", "/bin/sh -c 'touch /tmp/pwned' --"),
			[]string{"fence device pdu: param ssh_path: refused: it names a program the agent runs", "allow_unsafe: true"}, true},
		{"the attack: libvirt ext", virt("qemu+ext:///system?command=/tmp/x.sh"),
			[]string{"fence device mgmt: param uri: transport +ext is refused", "parameter command= is refused", "allow_unsafe: true"}, true},
		{"libvirt ssh", virt("qemu+ssh://root@mgmt/system"), []string{"fence device mgmt: param uri: transport +ssh is refused"}, true},
		{"libvirt local socket", virt("qemu:///system"), []string{"fence device mgmt: param uri: the URI names no host"}, true},
		{"agent as a path", ag("agent", "/tmp/fence_x"), []string{`fence device pdu: param agent: "fence_x" is a path`}, true},
		{"agent outside the list", ag("agent", "fence_legacy"), []string{`fence device pdu: param agent: "fence_legacy" is not one of the fence agents`}, true},
		{"ssh options", ag("agent", "fence_apc", "ip", "pdu", "ssh_options", "-oProxyCommand=id"), []string{"fence device pdu: param ssh_options: refused"}, true},
		{"identity file", ag("agent", "fence_apc", "ip", "pdu", "identity_file", "/root/.ssh/id_rsa"), []string{"fence device pdu: param identity_file: refused"}, true},
		{"sudo", ag("agent", "fence_virsh", "ip", "mgmt", "use_sudo", "1", "sudo_path", "/tmp/s"), []string{"fence device pdu: param sudo_path: refused", "fence device pdu: param use_sudo: refused"}, true},
		{"ip is a path", ag("agent", "fence_ipmilan", "ip", "/etc/shadow"), []string{"fence device pdu: param ip: value is not a host name"}, true},
		{"ip with shell", ag("agent", "fence_ipmilan", "ip", "x;id"), []string{"fence device pdu: param ip: value is not a host name"}, true},
		{"option the agent does not need", ag("agent", "fence_ipmilan", "ip", "bmc", "verbose", "1"), []string{"fence device pdu: param verbose: is not an option vmha passes to fence_ipmilan"}, true},
		{"plug of the host map is a path", ag("agent", "fence_virsh", "ip", "mgmt", "host_map", "h1:/etc/shadow"), []string{"fence device pdu: param host_map: the port of host h1 starts with '/'"}, true},
		{"ipmi address is an option", ipmi(map[string]string{"address": "-oX", "user": "admin"}), []string{"fence device d: param address: value is not a host name"}, false},
		{"inline password stays refused", ag("agent", "fence_ipmilan", "ip", "bmc", "password", "x"), []string{"param password is not allowed"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkValidate(t, tc.dev, tc.want)
			u := tc.dev
			u.AllowUnsafe = true
			if err := u.Validate(); (err == nil) != tc.unsafeOK {
				t.Errorf("with allow_unsafe: %v, want valid: %v", err, tc.unsafeOK)
			}
			// From a host, allow_unsafe itself is refused.
			if u.Type == spec.TypeAgent || u.Type == spec.TypeLibvirt {
				if _, ok := u.Params["host_map"]; !ok {
					checkUntrustedRefusesUnsafe(t, u)
				}
			}
		})
	}
}

// checkValidate checks that dev is valid (want nil) or refused with an
// error that holds every string of want.
func checkValidate(t *testing.T, dev spec.Device, want []string) {
	t.Helper()
	err := dev.Validate()
	if want == nil {
		if err != nil {
			t.Fatalf("Validate: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("Validate accepted %+v", dev)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
}

// checkUntrustedRefusesUnsafe checks that a spec from a host may not use
// device u, which has allow_unsafe set.
func checkUntrustedRefusesUnsafe(t *testing.T, u spec.Device) {
	t.Helper()
	sp := spec.Spec{Devices: []spec.Device{u}, Hosts: []spec.Host{{Name: "h1", Levels: [][]string{{u.Name}}}}}
	err := sp.ValidateUntrusted()
	if err == nil || !strings.Contains(err.Error(), "fence device "+u.Name+": allow_unsafe is honoured only when an operator sets the device") {
		t.Errorf("ValidateUntrusted: %v", err)
	}
}

// forbiddenKey is the fuzz property's own list of option names that name
// a program, a script, a file, options for ssh, sudo, or a command. It is
// written apart from fencing/agent on purpose.
func forbiddenKey(k string) bool {
	for _, s := range []string{"_path", "_script", "_file", "_cmd", "_command"} {
		if strings.HasSuffix(k, s) {
			return true
		}
	}
	switch k {
	case "ssh_options", "identity_file", "exec", "command", "cmd", "sudo", "use_sudo":
		return true
	}
	return strings.HasPrefix(k, "sudo")
}

// FuzzDeviceValidate: Validate never panics, and a device without
// allow_unsafe that it accepts holds nothing the allow-lists forbid: an
// agent of the known list by name, no option naming a path or a command, no
// host or number value that starts with '/' or '-' or holds a shell
// metacharacter, a libvirt URI without ext, ssh or unix transports, without
// command=, socket=, netcat=, keyfile=, pkipath= or known_hosts=, and with a
// host (or test:///default).
func FuzzDeviceValidate(f *testing.F) {
	f.Add("agent", "agent=fence_virsh\nip=10.0.0.1\nssh_path=/bin/sh -c 'id' --", false)
	f.Add("agent", "agent=fence_ipmilan\nip=10.0.0.1\nipport=623\nusername=admin\nlanplus=1", false)
	f.Add("agent", "agent=/tmp/fence_x\nip=/etc/passwd", false)
	f.Add("agent", "agent=fence_apc\nip=pdu\nssh_options=-oProxyCommand=id\nidentity_file=/root/.ssh/id_rsa", true)
	f.Add("agent", "agent=fence_virsh\nip=mgmt\nhost_map=h1:a;h2:/x", false)
	f.Add("libvirt", "uri=qemu+ext:///system?command=/tmp/x.sh", false)
	f.Add("libvirt", "uri=qemu+ssh://root@mgmt/system?keyfile=/k&netcat=/n", false)
	f.Add("libvirt", "uri=qemu+tls://mgmt/system", false)
	f.Add("libvirt", "uri=test:///default", false)
	f.Add("libvirt", "uri=QEMU+EXT:///x?Command=/y", false)
	f.Add("ipmi", "address=10.0.0.1\nuser=admin\nport=623", false)
	f.Fuzz(func(t *testing.T, typ, params string, allowUnsafe bool) {
		d := spec.Device{Name: "fz", Type: typ, Params: map[string]string{}, PasswordEnv: "VMHA_FUZZ", AllowUnsafe: allowUnsafe}
		if typ == spec.TypeLibvirt {
			d.PasswordEnv = ""
		}
		for _, line := range strings.Split(params, "\n") {
			k, v, _ := strings.Cut(line, "=")
			d.Params[k] = v
		}
		err := d.Validate()
		if err != nil || allowUnsafe {
			return
		}
		switch typ {
		case spec.TypeAgent:
			checkAcceptedAgent(t, d)
		case spec.TypeIPMI:
			for _, k := range []string{"address", "user"} {
				if v := d.Params[k]; strings.HasPrefix(v, "/") || strings.HasPrefix(v, "-") || strings.ContainsAny(v, " \t\n;|&$`'\"\\<>(){}*?") {
					t.Fatalf("accepted %s=%q", k, v)
				}
			}
		case spec.TypeLibvirt:
			checkAcceptedLibvirt(t, d.Params["uri"])
		}
	})
}

// checkAcceptedAgent is FuzzDeviceValidate's property of an accepted agent
// device: a known agent by name, no forbidden option, no value or plug that
// could be a path, an option or shell.
func checkAcceptedAgent(t *testing.T, d spec.Device) {
	a := d.Params["agent"]
	known := false
	for _, k := range agent.KnownAgents() {
		known = known || k == a
	}
	if !known || strings.Contains(a, "/") {
		t.Fatalf("accepted agent %q", a)
	}
	for k, v := range d.Params {
		if forbiddenKey(k) {
			t.Fatalf("accepted option %s", k)
		}
		switch k {
		case "ip", "ipaddr", "ipport", "plug", "port", "username", "login", "power_wait", "power_timeout", "cipher", "lanplus":
			if strings.HasPrefix(v, "/") || strings.HasPrefix(v, "-") || strings.ContainsAny(v, " \t\n;|&$`'\"\\<>(){}*?") {
				t.Fatalf("accepted %s=%q", k, v)
			}
		}
	}
	if hm, ok := d.Params["host_map"]; ok {
		m, _ := fencing.ParseHostMap(hm)
		for _, p := range m {
			if strings.HasPrefix(p, "/") || strings.HasPrefix(p, "-") || strings.ContainsAny(p, "`$'\"\\|&<>(){}") {
				t.Fatalf("accepted plug %q", p)
			}
		}
	}
}

// checkAcceptedLibvirt is FuzzDeviceValidate's property of an accepted
// libvirt URI: no transport or parameter that runs a program or reads a
// local file, and a host (or test:///default).
func checkAcceptedLibvirt(t *testing.T, raw string) {
	u, perr := url.Parse(strings.TrimSpace(raw))
	if perr != nil {
		t.Fatalf("accepted a URI that does not parse: %q", raw)
	}
	scheme := strings.ToLower(u.Scheme)
	for _, tr := range []string{"+ext", "+ssh", "+libssh", "+libssh2", "+unix"} {
		if strings.HasSuffix(scheme, tr) {
			t.Fatalf("accepted transport %s: %q", tr, raw)
		}
	}
	for k := range u.Query() {
		switch strings.ToLower(k) {
		case "command", "socket", "netcat", "keyfile", "pkipath", "known_hosts", "no_verify":
			t.Fatalf("accepted %s=: %q", k, raw)
		}
	}
	if u.Host == "" && raw != "test:///default" && strings.TrimSpace(raw) != "test:///default" {
		t.Fatalf("accepted a URI with no host: %q", raw)
	}
	if strings.HasPrefix(u.Hostname(), "-") {
		t.Fatalf("accepted host %q", u.Hostname())
	}
}
