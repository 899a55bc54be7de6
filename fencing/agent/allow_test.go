package agent

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestCheckAgent(t *testing.T) {
	for _, tc := range []struct {
		agent string
		want  string // "" = accepted
	}{
		{"fence_ipmilan", ""},
		{"fence_idrac", ""},
		{"fence_ilo4", ""},
		{"fence_redfish", ""},
		{"fence_apc_snmp", ""},
		{"fence_raritan", ""},
		{"fence_virsh", ""},
		{"/usr/sbin/fence_ipmilan", `"fence_ipmilan" is a path`},
		{"/tmp/fence_x", `"fence_x" is a path`},
		{"../sbin/fence_apc", "is a path"},
		{"fence_legacy", `"fence_legacy" is not one of the fence agents vmha runs`},
		{"fence_scsi", "is not one of the fence agents"},
		{"fence_aws", "is not one of the fence agents"},
		{"sh", "is not one of the fence agents"},
		{"", "is not one of the fence agents"},
	} {
		err := CheckAgent(tc.agent)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%q: %v", tc.agent, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.agent, err, tc.want)
		}
	}
}

func TestCheckOption(t *testing.T) {
	for _, tc := range []struct {
		name, agent, key, value string
		want                    string // "" = accepted
	}{
		{"ip address", "fence_ipmilan", "ip", "10.0.0.11", ""},
		{"ipv6 address", "fence_ipmilan", "ip", "fd00::11", ""},
		{"host name", "fence_ipmilan", "ip", "bmc-h1.example.com", ""},
		{"port", "fence_ipmilan", "ipport", "623", ""},
		{"lanplus", "fence_ipmilan", "lanplus", "1", ""},
		{"cipher", "fence_ipmilan", "cipher", "3", ""},
		{"privlvl", "fence_ipmilan", "privlvl", "administrator", ""},
		{"power wait", "fence_ipmilan", "power_wait", "0", ""},
		{"power timeout fraction", "fence_ipmilan", "power_timeout", "2.5", ""},
		{"username", "fence_ipmilan", "username", "fence", ""},
		{"redfish uri", "fence_redfish", "redfish_uri", "/redfish/v1", ""},
		{"ssl flag", "fence_redfish", "ssl_insecure", "1", ""},
		{"apc switch", "fence_apc", "switch", "2", ""},
		{"apc secure", "fence_apc", "secure", "1", ""},
		{"snmp community", "fence_apc_snmp", "community", "private", ""},
		{"snmp version", "fence_apc_snmp", "snmp_version", "2c", ""},
		{"virsh plug", "fence_virsh", "plug", "lab-host1", ""},
		{"virsh missing as off", "fence_virsh", "missing_as_off", "1", ""},

		// Paths and commands, for any agent.
		{"ssh_path", "fence_virsh", "ssh_path", "/bin/sh -c 'id' --", "names a program the agent runs"},
		{"ipmitool_path", "fence_ipmilan", "ipmitool_path", "/tmp/x", "names a program the agent runs"},
		{"snmpget_path", "fence_apc_snmp", "snmpget_path", "/tmp/x", "names a program"},
		{"telnet_path", "fence_raritan", "telnet_path", "/tmp/x", "names a program"},
		{"gnutlscli_path", "fence_redfish", "gnutlscli_path", "/tmp/x", "names a program"},
		{"ssh_options", "fence_apc", "ssh_options", "-o ProxyCommand=id", "ProxyCommand runs a command"},
		{"identity_file", "fence_virsh", "identity_file", "/root/.ssh/id_rsa", "names a file"},
		{"debug_file", "fence_ipmilan", "debug_file", "/etc/shadow", "names a file"},
		{"passwd_script", "fence_ipmilan", "passwd_script", "/tmp/x", "names a script"},
		{"password_script", "fence_ipmilan", "password_script", "/tmp/x", "names a script"},
		{"sudo", "fence_virsh", "sudo", "1", "through sudo"},
		{"use_sudo", "fence_ipmilan", "use_sudo", "1", "through sudo"},
		{"sudo_path", "fence_ipmilan", "sudo_path", "/tmp/x", "names a program"},
		{"exec", "fence_apc", "exec", "id", "names a command"},
		{"command", "fence_apc", "command", "id", "names a command"},
		{"a _cmd option", "fence_apc", "power_cmd", "id", "names a command"},
		{"forbidden for an unknown agent too", "fence_whatever", "ssh_path", "/tmp/x", "names a program"},
		{"inline kg key", "fence_ipmilan", "hexadecimal_kg", "abc", "holds a secret"},
		{"inline snmp privacy password", "fence_apc_snmp", "snmp_priv_passwd", "abc", "holds a secret"},

		// Options the agent does not need.
		{"verbose", "fence_ipmilan", "verbose", "1", "is not an option vmha passes to fence_ipmilan"},
		{"an snmp option for ipmi", "fence_ipmilan", "community", "x", "is not an option vmha passes to fence_ipmilan"},
		{"cmd_prompt", "fence_apc", "cmd_prompt", "$", "is not an option vmha passes to fence_apc"},
		{"switch for wti", "fence_wti", "switch", "1", "is not an option vmha passes to fence_wti"},

		// Values that are not what the option holds.
		{"ip is a path", "fence_ipmilan", "ip", "/etc/passwd", "is not a host name or IP address"},
		{"ip is an option", "fence_ipmilan", "ip", "-oProxyCommand=id", "is not a host name or IP address"},
		{"ip with a command", "fence_ipmilan", "ip", "10.0.0.1;id", "is not a host name or IP address"},
		{"ip with a space", "fence_ipmilan", "ip", "10.0.0.1 -I lanplus", "is not a host name or IP address"},
		{"port not a number", "fence_ipmilan", "ipport", "623;id", "is not a port number"},
		{"port out of range", "fence_ipmilan", "ipport", "70000", "is not a port number"},
		{"number with a command", "fence_ipmilan", "power_wait", "$(id)", "is not a non-negative number"},
		{"word with a space", "fence_ipmilan", "lanplus", "1 -o x", "is not a single word"},
		{"username is an option", "fence_ipmilan", "username", "-E", "starts with '-'"},
		{"username with a quote", "fence_ipmilan", "username", "a'b", "shell metacharacter"},
		{"plug is a path", "fence_virsh", "plug", "/etc/shadow", "starts with '/'"},
		{"plug with backticks", "fence_virsh", "plug", "x`id`", "shell metacharacter"},
		{"community with a semicolon", "fence_apc_snmp", "community", "a;b", "shell metacharacter"},
		{"redfish uri not a path", "fence_redfish", "redfish_uri", "http://evil/", "is not a URL path"},
		{"redfish uri climbing", "fence_redfish", "redfish_uri", "/redfish/../../x", "is not a URL path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckOption(tc.agent, tc.key, tc.value)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("%s %s=%q: %v", tc.agent, tc.key, tc.value, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%s %s=%q: %v, want %q", tc.agent, tc.key, tc.value, err, tc.want)
			}
			if len(tc.value) > 3 && strings.Contains(err.Error(), tc.value) {
				t.Fatalf("the error repeats the value: %v", err)
			}
		})
	}
}

// TestAllowListMatchesMetadata: every option the allow-list passes to an
// agent is one that agent's own metadata (fence_x -o metadata) lists, and
// none of them is a path, a program or a file there.
func TestAllowListMatchesMetadata(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every listed agent once (about 20 s)")
	}
	param := regexp.MustCompile(`<parameter name="([^"]+)"`)
	ran := 0
	for _, a := range KnownAgents() {
		p := filepath.Join("/usr/sbin", a)
		if _, err := os.Stat(p); err != nil {
			continue
		}
		out, err := exec.Command(p, "-o", "metadata").Output()
		if err != nil {
			t.Errorf("%s -o metadata: %v", a, err)
			continue
		}
		ran++
		has := map[string]bool{}
		for _, m := range param.FindAllStringSubmatch(string(out), -1) {
			has[m[1]] = true
		}
		for _, o := range AllowedOptions(a) {
			if !has[o] {
				t.Errorf("%s: allowed option %s is not in its metadata", a, o)
			}
			if forbidden(o) != "" {
				t.Errorf("%s: allowed option %s is forbidden", a, o)
			}
		}
	}
	if ran == 0 {
		t.Skip("fence-agents is not installed (Debian package fence-agents)")
	}
	t.Logf("checked %d of %d agents against their metadata", ran, len(KnownAgents()))
}
