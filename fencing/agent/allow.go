package agent

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/vmha/vmha/fencing"
)

// The allow-list. A fence agent runs as root on the leader, and many of the
// options of Debian's fence-agents name a program the agent runs
// (ssh_path, ipmitool_path, snmpget_path, passwd_script), a file it reads or
// writes (identity_file, debug_file), or options for ssh (ssh_options, where
// ProxyCommand runs anything) or sudo. Fence configuration is code: by
// default only the agents below are run, each with only the options it needs
// to reach its device and log in to it, and each value must look like what
// the option holds (a host name, a port, a number, a word, a name). Anything
// else needs the device's allow_unsafe, which only an operator can set
// (vmha fence devices set --allow-unsafe; see docs/fencing.md).

// kind is what an option's value must look like.
type kind int

const (
	kindHost    kind = iota // a host name or IP address
	kindPort                // a port number
	kindNumber              // seconds, a count
	kindWord                // a flag or an enumerated value
	kindName                // a user, plug, outlet or community name
	kindURLPath             // a path on the device's web server
)

func (k kind) check(v string) error {
	switch k {
	case kindHost:
		return fencing.CheckHost(v)
	case kindPort:
		return fencing.CheckPort(v)
	case kindNumber:
		return fencing.CheckNumber(v)
	case kindWord:
		return fencing.CheckWord(v)
	case kindName:
		return fencing.CheckName(v)
	case kindURLPath:
		return fencing.CheckURLPath(v)
	}
	return fmt.Errorf("has an unknown kind")
}

// common are the options of fencing.py that every listed agent takes:
// where the device is, who logs in, which plug, and how long to wait.
var common = map[string]kind{
	"ip": kindHost, "ipaddr": kindHost, "ipport": kindPort,
	"username": kindName, "login": kindName,
	"plug": kindName, "port": kindName, // "port" is fencing.py's old name of plug
	"power_wait": kindNumber, "power_timeout": kindNumber, "login_timeout": kindNumber,
	"shell_timeout": kindNumber, "delay": kindNumber, "retry_on": kindNumber,
	"stonith_status_sleep": kindNumber, "disable_timeout": kindWord,
}

// families group agents by how they reach their device.
var families = map[string]map[string]kind{
	// IPMI through ipmitool (ipmitool_path, sudo and hexadecimal_kg, a
	// secret, are left out).
	"ipmi": {"lanplus": kindWord, "cipher": kindNumber, "privlvl": kindWord, "auth": kindWord,
		"method": kindWord, "target": kindWord, "ipmitool_timeout": kindNumber, "port_as_ip": kindWord},
	// Redfish over HTTPS.
	"redfish": {"ssl": kindWord, "ssl_secure": kindWord, "ssl_insecure": kindWord,
		"redfish_uri": kindURLPath, "systems_uri": kindURLPath, "port_as_ip": kindWord},
	// HP iLO's RIBCL over HTTPS.
	"ribcl": {"ssl": kindWord, "ssl_secure": kindWord, "ssl_insecure": kindWord, "notls": kindWord,
		"ribcl": kindWord, "ribcl_version": kindWord, "port_as_ip": kindWord},
	// Cisco UCS manager over HTTPS.
	"ucs": {"ssl": kindWord, "ssl_secure": kindWord, "ssl_insecure": kindWord, "notls": kindWord,
		"suborg": kindURLPath, "missing_as_off": kindWord},
	// A device's command line over ssh or telnet (ssh_path, telnet_path,
	// ssh_options, identity_file and sudo are left out; ssh runs with the
	// leader's defaults).
	"console": {"secure": kindWord, "ssh": kindWord, "inet4_only": kindWord, "inet6_only": kindWord},
	// Telnet only.
	"telnet": {},
	// SNMP through net-snmp's tools (their *_path, snmp_priv_passwd and
	// snmp_priv_passwd_script are left out).
	"snmp": {"community": kindName, "snmp_version": kindWord, "snmp_auth_prot": kindWord,
		"snmp_sec_level": kindWord, "snmp_priv_prot": kindWord},
}

// byFamily is the known list: management boards (IPMI, Redfish, iLO,
// iDRAC, IMM, blade chassis), switched PDUs, and fence_virsh for labs whose
// hosts are domains of a management hypervisor. Every option allowed for
// an agent is one its metadata lists (TestAllowListMatchesMetadata).
var byFamily = map[string][]string{
	"ipmi":    {"fence_ipmilan", "fence_ipmilanplus", "fence_idrac", "fence_ilo3", "fence_ilo4", "fence_ilo5", "fence_imm"},
	"redfish": {"fence_redfish"},
	"ribcl":   {"fence_ilo", "fence_ilo2"},
	"ucs":     {"fence_cisco_ucs"},
	"console": {"fence_apc", "fence_wti", "fence_drac5", "fence_ilo_ssh", "fence_ilo3_ssh", "fence_ilo4_ssh", "fence_ilo5_ssh",
		"fence_ilo_mp", "fence_ilo_moonshot", "fence_bladecenter", "fence_hpblade", "fence_raritan_px3", "fence_rsa", "fence_rsb",
		"fence_virsh"},
	"telnet": {"fence_raritan", "fence_cdu"},
	"snmp": {"fence_apc_snmp", "fence_eaton_snmp", "fence_ibmblade", "fence_intelmodular", "fence_ifmib", "fence_tripplite_snmp",
		"fence_emerson", "fence_ipdu", "fence_lindypdu"},
}

// agentFamily maps each agent of the known list to its family.
var agentFamily = func() map[string]string {
	out := map[string]string{}
	for fam, agents := range byFamily {
		for _, a := range agents {
			out[a] = fam
		}
	}
	return out
}()

// extra are options only some agents of a family take.
var extra = map[string]map[string]kind{
	"fence_apc":         {"switch": kindNumber},
	"fence_cdu":         {"switch": kindNumber},
	"fence_lindypdu":    {"switch": kindNumber},
	"fence_drac5":       {"drac_version": kindWord},
	"fence_ilo_ssh":     {"method": kindWord},
	"fence_ilo3_ssh":    {"method": kindWord},
	"fence_ilo4_ssh":    {"method": kindWord},
	"fence_ilo5_ssh":    {"method": kindWord},
	"fence_bladecenter": {"missing_as_off": kindWord},
	"fence_hpblade":     {"missing_as_off": kindWord},
	"fence_virsh":       {"missing_as_off": kindWord},
}

// KnownAgents lists the agents run without allow_unsafe, sorted.
func KnownAgents() []string {
	out := make([]string, 0, len(agentFamily))
	for a := range agentFamily {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// AllowedOptions lists the options agent may be given without
// allow_unsafe, sorted (nil for an agent outside the known list).
func AllowedOptions(agent string) []string {
	opts := allowed(agent)
	if opts == nil {
		return nil
	}
	out := make([]string, 0, len(opts))
	for k := range opts {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func allowed(agent string) map[string]kind {
	fam, ok := agentFamily[agent]
	if !ok {
		return nil
	}
	out := map[string]kind{}
	for k, v := range common {
		out[k] = v
	}
	for k, v := range families[fam] {
		out[k] = v
	}
	for k, v := range extra[agent] {
		out[k] = v
	}
	return out
}

// CheckAgent refuses an agent outside the known list, and any agent given
// as a path: a path names a program on the leader's disk, not a fence
// agent of Debian's fence-agents.
func CheckAgent(agent string) error {
	switch {
	case strings.ContainsRune(agent, '/'):
		return fmt.Errorf("%q is a path: a path runs whatever program is there, as root; name an agent of the known list instead", filepath.Base(agent))
	case agentFamily[agent] == "":
		return fmt.Errorf("%q is not one of the fence agents vmha runs (%s)", agent, strings.Join(KnownAgents(), ", "))
	}
	return nil
}

// forbidden says why an option is refused whatever the agent: it names a
// program, a script, a file or options for another program, or it holds a
// secret that has no place in the parameters (which status and logs show).
// "" means the option is not one of these.
func forbidden(key string) string {
	switch {
	case strings.HasSuffix(key, "_path"):
		return "it names a program the agent runs (as root, on the leader)"
	case strings.HasSuffix(key, "_script"):
		return "it names a script the agent runs (as root, on the leader) to get a password"
	case key == "ssh_options":
		return "it passes options to ssh, and an ssh option such as ProxyCommand runs a command"
	case strings.HasSuffix(key, "_file"):
		return "it names a file the agent reads or writes as root on the leader"
	case key == "sudo" || strings.HasPrefix(key, "sudo_") || key == "use_sudo":
		return "it makes the agent run its commands through sudo"
	case key == "exec" || key == "command" || key == "cmd" || strings.HasSuffix(key, "_cmd") || strings.HasSuffix(key, "_command"):
		return "it names a command to run"
	case key == "snmp_priv_passwd" || key == "hexadecimal_kg":
		return "it holds a secret, and parameters are shown in status and logs: vmha carries one password per device, from password_file or password_env"
	}
	return ""
}

// CheckOption refuses an option (key=value) for agent: one that names a
// path or a command (for any agent), one the agent does not need to reach
// and log in to its device (for an agent of the known list), or a value
// that is not what the option holds. An agent outside the known list is
// refused by CheckAgent; its options are only checked against the forbidden
// names here.
func CheckOption(agent, key, value string) error {
	if why := forbidden(key); why != "" {
		return fmt.Errorf("refused: %s", why)
	}
	opts := allowed(agent)
	if opts == nil {
		return nil
	}
	k, ok := opts[key]
	if !ok {
		return fmt.Errorf("is not an option vmha passes to %s (allowed: %s)", agent, strings.Join(AllowedOptions(agent), ", "))
	}
	if err := k.check(value); err != nil {
		return fmt.Errorf("value %w", err)
	}
	return nil
}
