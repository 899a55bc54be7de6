// Package spec describes a fencing configuration (devices and, per host,
// the ordered levels of devices that fence it) and validates it; package
// fencing/devices opens it into fencing.Topology values with real devices:
// IPMI BMCs, libvirt management hypervisors and external fence agents.
// Validation is here, apart from the device drivers, because config and
// the vmha CLI validate specs but never open a device: this package must
// not link them (the libvirt driver is cgo, and loading libvirt's shared
// libraries alone slows every start of the CLI by tens of milliseconds).
//
// Validation comes first and is complete: every problem is reported, each
// naming the device or host and the item, and nothing is opened when there
// is one. A spec never holds a secret: passwords are named by a file or an
// environment variable and read only when a device is opened; no error
// carries their value.
//
// In YAML (the field names of the json/yaml/mapstructure tags):
//
//	devices:
//	  - name: bmc-h1
//	    type: ipmi
//	    params: {address: 10.0.0.11, user: admin, cipher_suite: "3"}
//	    password_file: /etc/vmha/bmc-h1.pw
//	  - name: pdu-a
//	    type: agent
//	    params: {agent: fence_apc_snmp, ip: 10.0.1.1, host_map: "h1:3;h2:4"}
//	    password_env: VMHA_PDU_PW
//	  - name: pdu-b
//	    type: agent
//	    params: {agent: fence_apc_snmp, ip: 10.0.1.2, host_map: "h1:3;h2:4"}
//	    password_env: VMHA_PDU_PW
//	  - name: lab
//	    type: libvirt
//	    params: {uri: "qemu+ssh://root@mgmt/system", host_map: "h3:lab-node-3"}
//	hosts:
//	  - name: h1
//	    levels: [[bmc-h1], [pdu-a, pdu-b]]
//	    delay: 5s          # only on one host of a two-host cluster
//	  - name: h3
//	    levels: [[lab]]
//	    action: reboot
//	    random_delay: 3s
package spec

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vmha/vmha/fencing"
	"github.com/vmha/vmha/fencing/agent"
	"github.com/vmha/vmha/fencing/libvirturi"
	"github.com/vmha/vmha/internal/secret"
)

// Device types.
const (
	TypeIPMI    = "ipmi"
	TypeLibvirt = "libvirt"
	TypeAgent   = "agent"
)

// Device describes one fence device.
//
// Params by type:
//
//	ipmi:    address (required), port, user (required), interface (lanplus|lan),
//	         cipher_suite; a password source is required.
//	libvirt: uri (required), host_map ("h1:dom1;h2:dom2"; without it a host's
//	         domain has the host's name); no password (ssh keys, SASL).
//	agent:   agent (required, e.g. fence_apc), host_map (sets the agent's plug
//	         per target host); every other param is passed to the agent as
//	         key=value (ip, username, lanplus, cipher, ipport, ...).
//
// Fence configuration runs as root on the leader, so the params are
// allow-listed (fencing/agent.CheckAgent and CheckOption,
// fencing/libvirturi.Check, and the value checks of package fencing): an
// agent of the known list with only the options it needs to reach and log
// in to its device, a libvirt URI over tls or tcp to a named host. AllowUnsafe lifts that, and
// only an operator's command may set it.
type Device struct {
	Name         string            `json:"name" yaml:"name" mapstructure:"name"`
	Type         string            `json:"type" yaml:"type" mapstructure:"type"`
	Params       map[string]string `json:"params,omitempty" yaml:"params,omitempty" mapstructure:"params"`
	PasswordFile string            `json:"password_file,omitempty" yaml:"password_file,omitempty" mapstructure:"password_file"`
	PasswordEnv  string            `json:"password_env,omitempty" yaml:"password_env,omitempty" mapstructure:"password_env"`
	// Timeout bounds each single device call (0: the device type's default).
	Timeout time.Duration `json:"timeout,omitempty" yaml:"timeout,omitempty" mapstructure:"timeout"`
	// AllowUnsafe lifts the allow-lists (see Validate) for this device: an
	// agent outside the known list or given as a path, options that name a
	// program or a file, libvirt URIs that run a program, use ssh or reach
	// a local socket. Fence configuration runs as root on the leader, so
	// only an operator may set it (vmha fence devices set --allow-unsafe):
	// ValidateUntrusted refuses it in a topology that came from a host.
	AllowUnsafe bool `json:"allow_unsafe,omitempty" yaml:"allow_unsafe,omitempty" mapstructure:"allow_unsafe"`
	// Secret is a password already read (see Resolve), e.g. loaded from the
	// replicated state on a host that has no password file. It is used when
	// neither PasswordFile nor PasswordEnv is set. It prints and marshals
	// as [redacted] and is never read from or written to a config file.
	Secret secret.String `json:"-" yaml:"-" mapstructure:"-"`
}

// Resolve returns a copy of d whose Secret holds the password read from
// its file or environment variable, with those sources cleared: the form to
// replicate (through secret.String.Store) so that any host can open the
// device. A device without a password source is returned unchanged.
func (d Device) Resolve() (Device, error) {
	if d.PasswordFile == "" && d.PasswordEnv == "" {
		return d, nil
	}
	pw, err := d.Password()
	if err != nil {
		return Device{}, err
	}
	d.Secret, d.PasswordFile, d.PasswordEnv = pw, "", ""
	return d, nil
}

// Host describes how one host is fenced.
type Host struct {
	Name string `json:"name" yaml:"name" mapstructure:"name"`
	// Levels are tried in order; each is a list of device names that must
	// all succeed.
	Levels [][]string `json:"levels" yaml:"levels" mapstructure:"levels"`
	// Action is "off" (default) or "reboot".
	Action      string        `json:"action,omitempty" yaml:"action,omitempty" mapstructure:"action"`
	Delay       time.Duration `json:"delay,omitempty" yaml:"delay,omitempty" mapstructure:"delay"`
	RandomDelay time.Duration `json:"random_delay,omitempty" yaml:"random_delay,omitempty" mapstructure:"random_delay"`
}

// Spec is the fencing configuration of a cluster.
type Spec struct {
	Devices []Device `json:"devices" yaml:"devices" mapstructure:"devices"`
	Hosts   []Host   `json:"hosts" yaml:"hosts" mapstructure:"hosts"`
}

var (
	nameRE  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:@-]*$`)
	envRE   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	paramRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
)

// Params each type accepts (agent accepts any, see Device).
var typeParams = map[string]map[string]bool{
	TypeIPMI:    {"address": true, "port": true, "user": true, "interface": true, "cipher_suite": true},
	TypeLibvirt: {"uri": true, "host_map": true},
}

// required params per type.
var requiredParams = map[string][]string{
	TypeIPMI:    {"address", "user"},
	TypeLibvirt: {"uri"},
	TypeAgent:   {"agent"},
}

// Validate checks the device without reading any file or opening any
// connection. The error names the device and the item.
func (d Device) Validate() error {
	p := &deviceProblems{name: d.Name}
	if strings.TrimSpace(d.Name) == "" {
		p.name = "(unnamed)"
		p.errs = append(p.errs, errors.New("fence device: name is empty"))
	} else if !nameRE.MatchString(d.Name) {
		p.errs = append(p.errs, fmt.Errorf("fence device %q: name may hold letters, digits and _ . : @ -", d.Name))
	}
	switch d.Type {
	case TypeIPMI, TypeLibvirt, TypeAgent:
	case "":
		p.bad("type is empty (want %s, %s or %s)", TypeIPMI, TypeLibvirt, TypeAgent)
	default:
		p.bad("unknown type %q (want %s, %s or %s)", d.Type, TypeIPMI, TypeLibvirt, TypeAgent)
	}
	p.checkParams(d)
	if d.Type == TypeIPMI {
		p.checkIPMIParams(d)
	}
	p.checkPassword(d)
	if d.Timeout < 0 {
		p.bad("timeout %s is negative", d.Timeout)
	}
	if !d.AllowUnsafe {
		if refused := d.unsafe(); len(refused) > 0 {
			for _, r := range refused {
				p.bad("%s", r)
			}
			p.bad("%s", optIn)
		}
	}
	return errors.Join(p.errs...)
}

// deviceProblems collects what Device.Validate finds, each naming the
// device.
type deviceProblems struct {
	name string
	errs []error
}

func (p *deviceProblems) bad(format string, a ...any) {
	p.errs = append(p.errs, fmt.Errorf("fence device %s: "+format, append([]any{p.name}, a...)...))
}

// checkParams checks param names (no inline password, only the type's
// own), the required ones and the host map.
func (p *deviceProblems) checkParams(d Device) {
	keys := make([]string, 0, len(d.Params))
	for k := range d.Params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch {
		case k == "password" || k == "passwd":
			// Never accept a secret inline: the spec is printed, logged and
			// replicated.
			p.bad("param %s is not allowed: use password_file or password_env", k)
		case !paramRE.MatchString(k):
			p.bad("param name %q is not lower-case letters, digits and _", k)
		case d.Type == TypeAgent:
		case typeParams[d.Type] != nil && !typeParams[d.Type][k]:
			p.bad("unknown param %s for type %s (known: %s)", k, d.Type, known(d.Type))
		}
	}
	for _, k := range requiredParams[d.Type] {
		if strings.TrimSpace(d.Params[k]) == "" {
			p.bad("param %s is required for type %s", k, d.Type)
		}
	}
	if hm, ok := d.Params["host_map"]; ok {
		if _, err := fencing.ParseHostMap(hm); err != nil {
			p.bad("param host_map: %v", err)
		}
	}
}

// checkIPMIParams checks the values of an IPMI device's params.
func (p *deviceProblems) checkIPMIParams(d Device) {
	for _, k := range []string{"port", "cipher_suite"} {
		if v, ok := d.Params[k]; ok {
			if _, err := strconv.Atoi(v); err != nil {
				p.bad("param %s %q is not a number", k, v)
			}
		}
	}
	// The pure-Go IPMI client runs nothing, but its values still name a
	// host and a user, never a path or an option. Empty is "not set" (a
	// required one is reported as such); port 0 is the default.
	for _, k := range []string{"address", "user", "interface"} {
		if v := d.Params[k]; v != "" {
			if err := ipmiChecks[k](v); err != nil {
				p.bad("param %s: value %v", k, err)
			}
		}
	}
}

// checkPassword checks the password source: at most one, a valid variable
// name, required for IPMI, refused for libvirt.
func (p *deviceProblems) checkPassword(d Device) {
	if d.PasswordFile != "" && d.PasswordEnv != "" {
		p.bad("password_file and password_env are both set: choose one")
	}
	if d.PasswordEnv != "" && !envRE.MatchString(d.PasswordEnv) {
		p.bad("password_env %q is not an environment variable name", d.PasswordEnv)
	}
	switch d.Type {
	case TypeIPMI:
		if d.PasswordFile == "" && d.PasswordEnv == "" && d.Secret.IsZero() {
			p.bad("a password source is required for type ipmi: set password_file or password_env")
		}
	case TypeLibvirt:
		if d.PasswordFile != "" || d.PasswordEnv != "" || !d.Secret.IsZero() {
			p.bad("type libvirt takes no password (the URI's transport authenticates: ssh keys, SASL)")
		}
	}
}

var ipmiChecks = map[string]func(string) error{"address": fencing.CheckHost, "user": fencing.CheckName, "interface": fencing.CheckWord}

// optIn ends the refusals of the allow-lists.
const optIn = "refused by the allow-list (docs/fencing.md, \"Fence configuration is code\"): an operator who trusts this device sets allow_unsafe: true on it with vmha fence devices set HOST --file SPEC --allow-unsafe"

// unsafe lists what the allow-lists refuse in d, each naming the param and
// why: an agent outside the known list, an option that names a program or
// a file or that the agent does not need, a libvirt URI that runs a
// program, uses ssh or reaches a local socket, a value that is not what
// its param holds. It never repeats a value.
func (d Device) unsafe() []string {
	var out []string
	add := func(format string, a ...any) { out = append(out, fmt.Sprintf(format, a...)) }
	keys := make([]string, 0, len(d.Params))
	for k := range d.Params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	hostMap := func(check func(string) error) {
		hm, err := fencing.ParseHostMap(d.Params["host_map"])
		if err != nil {
			return // reported by Validate
		}
		for _, h := range sortedKeys(hm) {
			if err := check(hm[h]); err != nil {
				add("param host_map: the port of host %s %v", h, err)
			}
		}
	}
	switch d.Type {
	case TypeAgent:
		ag := d.Params["agent"]
		if ag != "" {
			if err := agent.CheckAgent(ag); err != nil {
				add("param agent: %v", err)
			}
		}
		for _, k := range keys {
			if k == "agent" || k == "host_map" || k == "password" || k == "passwd" {
				continue
			}
			if err := agent.CheckOption(ag, k, d.Params[k]); err != nil {
				add("param %s: %v", k, err)
			}
		}
		if _, ok := d.Params["host_map"]; ok {
			hostMap(fencing.CheckName)
		}
	case TypeLibvirt:
		if uri := d.Params["uri"]; strings.TrimSpace(uri) != "" {
			if err := libvirturi.Check(uri); err != nil {
				add("param %v", err)
			}
		}
		if _, ok := d.Params["host_map"]; ok {
			hostMap(fencing.CheckName)
		}
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func known(typ string) string {
	var ks []string
	for k := range typeParams[typ] {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, ", ")
}

// ValidateUntrusted is Validate for a spec that did not come from an
// operator's own command (a host's registration, the topology in its
// vmhad.yaml): allow_unsafe is refused on every device that sets it, and the
// allow-lists apply to all of them.
func (s Spec) ValidateUntrusted() error {
	var errs []error
	cp := s
	cp.Devices = make([]Device, len(s.Devices))
	for i, d := range s.Devices {
		if d.AllowUnsafe {
			errs = append(errs, fmt.Errorf("fence device %s: allow_unsafe is honoured only when an operator sets the device with vmha fence devices set HOST --file SPEC --allow-unsafe, never in a host's own configuration or registration", d.Name))
			d.AllowUnsafe = false
		}
		cp.Devices[i] = d
	}
	if err := cp.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Validate checks the whole spec without touching any device or file:
// every device, every host, and that every level names known devices.
// A device's allow_unsafe is honoured: see ValidateUntrusted.
func (s Spec) Validate() error {
	var errs []error
	devs := map[string]Device{}
	for _, d := range s.Devices {
		if err := d.Validate(); err != nil {
			errs = append(errs, err)
		}
		if d.Name == "" {
			continue
		}
		if _, dup := devs[d.Name]; dup {
			errs = append(errs, fmt.Errorf("fence device %s: defined twice", d.Name))
		}
		devs[d.Name] = d
	}
	hosts := map[string]bool{}
	usedBy := map[string][]string{} // device → hosts whose levels name it
	for _, h := range s.Hosts {
		for _, lvl := range h.Levels {
			for _, dn := range lvl {
				if u := usedBy[dn]; len(u) == 0 || u[len(u)-1] != h.Name {
					usedBy[dn] = append(u, h.Name)
				}
			}
		}
		name := h.Name
		if strings.TrimSpace(name) == "" {
			errs = append(errs, errors.New("fence host: name is empty"))
			name = "(unnamed)"
		} else if hosts[name] {
			errs = append(errs, fmt.Errorf("fence host %s: defined twice", name))
		}
		hosts[name] = true
		errs = append(errs, validateHost(h, name, devs)...)
	}
	// A device that is not told which port belongs to which host controls
	// one power feed (an IPMI BMC always does): used for two hosts, the
	// fence of one would switch off the other, or confirm the wrong one.
	for _, d := range s.Devices {
		u := usedBy[d.Name]
		if _, hasMap := d.Params["host_map"]; len(u) > 1 && !hasMap && d.Type != TypeLibvirt {
			errs = append(errs, fmt.Errorf("fence device %s: used by hosts %s but controls a single power feed (give it a host_map, or one device per host)", d.Name, strings.Join(u, ", ")))
		}
	}
	return errors.Join(errs...)
}

// validateHost checks host h (called name in messages): its levels against
// the devices devs, its action and its delays.
func validateHost(h Host, name string, devs map[string]Device) []error {
	var errs []error
	if len(h.Levels) == 0 {
		errs = append(errs, fmt.Errorf("fence host %s: no level (a host needs at least one fence device)", name))
	}
	for i, lvl := range h.Levels {
		errs = append(errs, validateLevel(lvl, i+1, name, devs)...)
	}
	if _, err := fencing.ParseAction(h.Action); err != nil {
		errs = append(errs, fmt.Errorf("fence host %s: %w", name, err))
	}
	if h.Delay < 0 || h.Delay > fencing.MaxStaticDelay {
		errs = append(errs, fmt.Errorf("fence host %s: delay %s is outside 0-%s", name, h.Delay, fencing.MaxStaticDelay))
	}
	if h.RandomDelay < 0 || h.RandomDelay > fencing.MaxRandomDelay {
		errs = append(errs, fmt.Errorf("fence host %s: random_delay %s is outside 0-%s", name, h.RandomDelay, fencing.MaxRandomDelay))
	}
	return errs
}

// validateLevel checks level n of host name: at least one device, each
// known, named once and, with a host map, mapping the host.
func validateLevel(lvl []string, n int, name string, devs map[string]Device) []error {
	var errs []error
	if len(lvl) == 0 {
		errs = append(errs, fmt.Errorf("fence host %s: level %d names no device", name, n))
	}
	seen := map[string]bool{}
	for _, dn := range lvl {
		d, ok := devs[dn]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("fence host %s: level %d names unknown device %q", name, n, dn))
		case seen[dn]:
			errs = append(errs, fmt.Errorf("fence host %s: level %d names device %s twice", name, n, dn))
		default:
			if err := d.MapsHost(name); err != nil {
				errs = append(errs, fmt.Errorf("fence host %s: level %d: %w", name, n, err))
			}
		}
		seen[dn] = true
	}
	return errs
}

// MapsHost checks that a device with a host_map knows host: a device that
// serves several hosts must say which port (domain, plug) is which, or it
// would switch off the wrong one. A device without a host_map (or with one
// that does not parse, which Validate reports) passes.
func (d Device) MapsHost(host string) error {
	hm, ok := d.Params["host_map"]
	if !ok {
		return nil
	}
	m, err := fencing.ParseHostMap(hm)
	if err != nil {
		return nil // reported with the device
	}
	if _, ok := m[host]; !ok {
		return fmt.Errorf("device %s: host_map has no entry for host %s", d.Name, host)
	}
	return nil
}

// Password reads the device's password from its file or environment
// variable, or returns Secret when neither is set (empty if none).
// Errors name the file or variable, never the value.
func (d Device) Password() (secret.String, error) {
	switch {
	case d.PasswordFile != "":
		pw, err := PasswordFromFile(d.PasswordFile)
		if err != nil {
			return secret.String{}, fmt.Errorf("fence device %s: password_file: %w", d.Name, err)
		}
		return pw, nil
	case d.PasswordEnv != "":
		v, ok := os.LookupEnv(d.PasswordEnv)
		if !ok {
			return secret.String{}, fmt.Errorf("fence device %s: password_env: environment variable %s is not set", d.Name, d.PasswordEnv)
		}
		if v == "" {
			return secret.String{}, fmt.Errorf("fence device %s: password_env: environment variable %s is empty", d.Name, d.PasswordEnv)
		}
		return secret.New(v), nil
	}
	return d.Secret, nil
}

// PasswordFromFile reads a password from path, dropping one trailing
// newline. The file must be a regular file not readable by group or others
// (mode 0600 or 0400). Errors name the file, never its contents. It is
// secret.FromFile, which the CLI shares without linking the device code.
func PasswordFromFile(path string) (secret.String, error) { return secret.FromFile(path) }
