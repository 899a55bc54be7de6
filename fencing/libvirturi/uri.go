// Package libvirturi is the allow-list of the management hypervisor URIs
// that libvirt fence devices (fencing/libvirt) connect to. It is apart from
// fencing/libvirt, which links libvirt's C library through cgo, so that
// validating a fence configuration (fencing/spec, config, the vmha CLI)
// does not load libvirt and its ~60 shared libraries: that alone costs the
// CLI tens of milliseconds at every start.
package libvirturi

import (
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/vmha/vmha/fencing"
)

// The allow-list of management hypervisor URIs. libvirt's client runs as
// root in the leader's vmhad, and several of its URI forms run programs or
// open local resources: the ext transport runs the program named by
// command=, the ssh transports run ssh (or libssh) with root's keys and
// config and take the remote program (netcat=), the key file (keyfile=) and
// known_hosts from the URI, the unix transport (and any URI without a
// host) reaches the leader's own hypervisor through its local socket, and
// pkipath= or test:///FILE read files on the leader. By default only
// network transports that authenticate the far end (tls) or leave it to the
// remote daemon (tcp) are used, with a host; anything else needs the
// device's allow_unsafe, which only an operator can set (vmha fence devices
// set --allow-unsafe; see docs/fencing.md).

// drivers are the hypervisor drivers vmha fences through.
var drivers = map[string]bool{"qemu": true, "xen": true, "libxl": true, "test": true}

// refusedTransports say why a transport is refused.
var refusedTransports = map[string]string{
	"ext":     "the ext transport runs the program named by command= on the leader",
	"ssh":     "the ssh transport runs ssh as root on the leader, with root's keys and ssh config, taking the remote program, key file and known_hosts from the URI",
	"libssh":  "the libssh transport logs in with root's ssh keys from the leader, taking the key file and known_hosts from the URI",
	"libssh2": "the libssh2 transport logs in with root's ssh keys from the leader, taking the key file and known_hosts from the URI",
	"unix":    "the unix transport opens a local socket on the leader (its own hypervisor, or the socket= path)",
}

// queryParams are the URI parameters vmha accepts; refusedParams say why
// others are refused.
var queryParams = map[string]bool{"name": true, "mode": true, "tls_priority": true}

var refusedParams = map[string]string{
	"command":            "it names a program libvirt runs on the leader",
	"socket":             "it names a local socket on the leader (or on the remote host)",
	"netcat":             "it names the program run on the remote end of an ssh tunnel",
	"keyfile":            "it names a key file on the leader",
	"pkipath":            "it names a directory of certificates and keys on the leader",
	"known_hosts":        "it names a file on the leader",
	"known_hosts_verify": "it changes how ssh host keys are checked",
	"sshauth":            "it changes how ssh logs in",
	"no_verify":          "it turns off the check of the far end's certificate",
	"no_tty":             "it changes how ssh asks for credentials",
	"proxy":              "it chooses the program run on the remote end of an ssh tunnel",
}

// pathRE is compiled on first use: its bounded repeat compiles to ~1,400
// allocations, which every start of the CLI would pay otherwise.
var pathRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^/[A-Za-z0-9_./-]{0,127}$`) })

// Check refuses a management hypervisor URI that makes libvirt run a
// program, use the leader's ssh identity, reach a local socket or read a
// file on the leader. Every refusal says which part of the URI and why;
// the error never repeats the URI's user info.
func Check(uri string) error {
	u, err := url.Parse(strings.TrimSpace(uri))
	if err != nil || u.Scheme == "" || u.Opaque != "" {
		return fmt.Errorf("uri is not a libvirt URI such as qemu+tls://host/system")
	}
	driver, transport, _ := strings.Cut(u.Scheme, "+")
	var errs []string
	if !drivers[driver] {
		errs = append(errs, fmt.Sprintf("driver %q is not one vmha fences through (%s)", driver, keys(drivers)))
	}
	if why, ok := refusedTransports[transport]; ok {
		errs = append(errs, fmt.Sprintf("transport +%s is refused: %s", transport, why))
	} else if transport != "" && transport != "tls" && transport != "tcp" {
		errs = append(errs, fmt.Sprintf("transport +%s is not one vmha uses (tls or tcp)", transport))
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			errs = append(errs, "the URI holds a password: use SASL credentials or TLS certificates instead")
		} else if err := fencing.CheckName(u.User.Username()); err != nil {
			errs = append(errs, fmt.Sprintf("user name %v", err))
		}
	}
	switch {
	case driver == "test":
		// The test driver is in-process: test:///default is a built-in
		// hypervisor, anything else a file it reads on the leader.
		if u.Host != "" || transport != "" || u.Path != "/default" {
			errs = append(errs, "only test:///default is accepted for the test driver: test:///FILE reads a file on the leader, and a host or transport reaches another daemon")
		}
	case u.Host == "":
		errs = append(errs, "the URI names no host: libvirt would reach the leader's own hypervisor through its local socket, which is not the host being fenced")
	default:
		if err := fencing.CheckHost(u.Hostname()); err != nil {
			errs = append(errs, fmt.Sprintf("host %v", err))
		}
		if p := u.Port(); p != "" {
			if err := fencing.CheckPort(p); err != nil {
				errs = append(errs, fmt.Sprintf("port %v", err))
			}
		}
		if u.Path != "" && !pathRE().MatchString(u.Path) {
			errs = append(errs, "path is not a libvirt URI path such as /system")
		}
	}
	if u.Fragment != "" {
		errs = append(errs, "the URI has a fragment (#...), which libvirt URIs do not")
	}
	q, qerr := url.ParseQuery(u.RawQuery)
	if qerr != nil {
		errs = append(errs, "the query (?...) does not parse")
	}
	for _, k := range sortedKeys(q) {
		switch why, refused := refusedParams[k]; {
		case refused:
			errs = append(errs, fmt.Sprintf("parameter %s= is refused: %s", k, why))
		case !queryParams[k]:
			errs = append(errs, fmt.Sprintf("parameter %s= is not one vmha passes (%s)", k, keys(queryParams)))
		case k != "name":
			// name= is the URI the remote daemon opens, on its side.
			for _, v := range q[k] {
				if strings.ContainsAny(v, "/\\") {
					errs = append(errs, fmt.Sprintf("parameter %s= holds a path", k))
				}
			}
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("uri: %s", strings.Join(errs, "; "))
}

func keys(m map[string]bool) string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

func sortedKeys(q url.Values) []string {
	out := make([]string, 0, len(q))
	for k := range q {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
