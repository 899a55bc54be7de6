package doctor

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vmha/vmha/internal/buildinfo"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/config"
	"github.com/vmha/vmha/internal/gossipkey"
	"github.com/vmha/vmha/pki"
)

// This file is the answering host's side: the facts it reads about itself
// (settings, version, keyring, certificates) and the dials it makes to the
// other hosts' live-migration endpoints.

// DialTimeout bounds one reachability dial.
const DialTimeout = 2 * time.Second

// BuildVersion is this binary's version: the stamped version and the VCS
// revision it was built from (as vmha version prints them).
func BuildVersion() string {
	bi := buildinfo.Get()
	v := bi.Version
	rev := bi.Revision
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev != "" {
		v += " " + rev
	}
	if bi.Modified {
		v += " (modified)"
	}
	return v
}

// Settings are the values of the settings the leader applies for the
// whole cluster (alerts, migration caps, the rebalance window, admission,
// quorum, fencing timers, storage, the doctor itself), by config key, and
// a hash over them. Alerts are summed up by name and a hash of their
// definition: never a token or a webhook URL.
func Settings(d *config.Daemon) (map[string]string, string) {
	dur := func(t time.Duration) string { return t.String() }
	m := map[string]string{
		"admission":                d.Admission,
		"bootstrap_expect":         strconv.Itoa(d.BootstrapExpect),
		"cluster_name":             d.ClusterName,
		"quorum.no_quorum_policy":  d.Quorum.NoQuorumPolicy,
		"quorum.stop_after":        dur(d.Quorum.StopAfter),
		"quorum.wait_for_all":      strconv.FormatBool(d.Quorum.WaitForAll),
		"raft.max_voters":          strconv.Itoa(d.Raft.MaxVoters),
		"migration.max_per_target": strconv.Itoa(d.Migration.MaxPerTarget),
		"migration.max_cluster":    strconv.Itoa(d.Migration.MaxCluster),
		"rebalance.window":         d.Rebalance.Window,
		"rebalance.max_moves":      strconv.Itoa(d.Rebalance.MaxMoves),
		"rebalance.min_gain":       strconv.FormatFloat(d.Rebalance.MinGain, 'g', -1, 64),
		"rebalance.parallel":       strconv.Itoa(d.Rebalance.Parallel),
		"fencing.timeout":          dur(d.Fencing.Timeout),
		"fencing.call_timeout":     dur(d.Fencing.CallTimeout),
		"fencing.poll_interval":    dur(d.Fencing.PollInterval),
		"fencing.retry_interval":   dur(d.Fencing.RetryInterval),
		"fencing.check_interval":   dur(d.Fencing.CheckInterval),
		"doctor.interval":          dur(d.Doctor.Interval),
		"doctor.clock_warn":        dur(d.Doctor.Warn()),
		"doctor.clock_fail":        dur(d.Doctor.Fail()),
		"storage":                  shortHash(d.Storage.Config),
		"alerts":                   alertsSummary(d.Alerts),
	}
	return m, HashSettings(m)
}

func alertsSummary(as []config.Alert) string {
	if len(as) == 0 {
		return "none"
	}
	names := make([]string, len(as))
	for i, a := range as {
		names[i] = a.Name
	}
	return strings.Join(names, ",") + " " + shortHash(as)
}

func shortHash(v any) string {
	b, _ := json.Marshal(v)
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:6])
}

// HashSettings hashes settings in key order.
func HashSettings(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%s=%s\n", k, m[k])
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// ReadKeyring reads the gossip keyring serf keeps in the data directory (a
// JSON list of base64 keys, the primary first: serf writes it after every
// change) and returns the keys' fingerprints, never the keys.
func ReadKeyring(file string) ([]string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var keys []string
	if err := json.Unmarshal(b, &keys); err != nil || len(keys) == 0 {
		return nil, fmt.Errorf("%s: not a JSON list of keys", file)
	}
	out := make([]string, 0, len(keys))
	for i, k := range keys {
		raw, err := gossipkey.Decode(k)
		if err != nil {
			return nil, fmt.Errorf("%s: key %d: %w", file, i+1, err)
		}
		out = append(out, gossipkey.Fingerprint(raw))
	}
	return out, nil
}

// ReadCerts reads this host's certificate and the CA certificates of f.
func ReadCerts(f pki.Files) []api.DoctorCert {
	var out []api.DoctorCert
	for _, c := range []struct{ kind, file string }{{"cert", f.Cert}, {"ca", f.CA}} {
		if c.file == "" {
			continue
		}
		certs, err := readPEMCerts(c.file)
		if err != nil {
			out = append(out, api.DoctorCert{Kind: c.kind, File: c.file, Error: err.Error()})
			continue
		}
		if c.kind == "cert" {
			certs = certs[:1] // the leaf; intermediates follow it
		}
		for _, x := range certs {
			out = append(out, api.DoctorCert{Kind: c.kind, File: c.file, Subject: x.Subject.CommonName, NotAfter: x.NotAfter.UTC()})
		}
	}
	return out
}

func readPEMCerts(file string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for rest := b; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no PEM certificate", file)
	}
	return out, nil
}

// Default ports of libvirt's remote transports and the start of QEMU's
// migration port range (qemu.conf migration_port_min).
const (
	libvirtTCPPort    = 16509
	libvirtTLSPort    = 16514
	sshPort           = 22
	migrationPortBase = 49152
)

// LibvirtDialAddr is the host:port a libvirt URI's remote transport
// connects to: qemu+tcp 16509, qemu+tls (or no transport) 16514, +ssh and
// +libssh(2) 22, or the URI's own port. A URI without a remote host
// (qemu:///system, +unix, test:///) reaches no other host: an error.
func LibvirtDialAddr(uri string) (string, error) {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme == "" {
		return "", fmt.Errorf("%q is not a libvirt URI", uri)
	}
	_, transport, _ := strings.Cut(u.Scheme, "+")
	if u.Hostname() == "" || transport == "unix" || transport == "ext" {
		return "", fmt.Errorf("%q names no remote host: other hosts' libvirtd cannot reach it", uri)
	}
	port := u.Port()
	if port == "" {
		switch transport {
		case "tcp":
			port = strconv.Itoa(libvirtTCPPort)
		case "", "tls":
			port = strconv.Itoa(libvirtTLSPort)
		case "ssh", "libssh", "libssh2":
			port = strconv.Itoa(sshPort)
		default:
			return "", fmt.Errorf("%q: unknown libvirt transport %q", uri, transport)
		}
	}
	return net.JoinHostPort(u.Hostname(), port), nil
}

// MigrationDialAddr is the host:port to dial for a migration address
// (tcp://ADDR[:PORT]): its own port, or the first of QEMU's default
// migration range. Nothing listens there outside a migration, so a
// refused connection counts as reachable (see Dial).
func MigrationDialAddr(addr string) (string, error) {
	rest, ok := strings.CutPrefix(addr, "tcp://")
	if !ok || rest == "" {
		return "", fmt.Errorf("%q: want tcp://ADDR", addr)
	}
	rest = strings.TrimSuffix(rest, "/")
	if h, p, err := net.SplitHostPort(rest); err == nil {
		return net.JoinHostPort(h, p), nil
	}
	return net.JoinHostPort(strings.Trim(rest, "[]"), strconv.Itoa(migrationPortBase)), nil
}

// Dial checks that this host reaches host's endpoint (what: libvirt or
// migration) within timeout. A libvirt endpoint must accept the
// connection; a migration address must answer at all (a refusal means
// the address is up and not filtered; the port opens during a
// migration), while silence (a timeout) or no route is a failure.
func Dial(ctx context.Context, host, what, target string, timeout time.Duration) api.DoctorReach {
	r := api.DoctorReach{Host: host, What: what, Target: target}
	var addr string
	var err error
	if what == "migration" {
		addr, err = MigrationDialAddr(target)
	} else {
		addr, err = LibvirtDialAddr(target)
	}
	if err != nil {
		r.Error = err.Error()
		return r
	}
	r.Dialed = addr
	start := time.Now()
	d := net.Dialer{Timeout: timeout}
	c, err := d.DialContext(ctx, "tcp", addr)
	r.Took = time.Since(start)
	switch {
	case err == nil:
		_ = c.Close()
		r.OK = true
	case what == "migration" && errors.Is(err, syscall.ECONNREFUSED):
		r.OK = true
	default:
		r.Error = fmt.Sprintf("dial %s: %v", addr, err)
	}
	return r
}
