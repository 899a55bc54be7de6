package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/vmha/vmha/config"
	"github.com/vmha/vmha/internal/buildinfo"
	"github.com/vmha/vmha/internal/gossipkey"
	"github.com/vmha/vmha/pki"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "vmhad.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCheckConfig runs vmhad's own entry point as an operator would: a bad
// config must exit non-zero with a message that names the file and the
// field, and start nothing (--check-config never opens a hypervisor).
func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "bmc.password")
	if err := os.WriteFile(pw, []byte("s3cret-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := "node_name: host1\nbind_addr: 127.0.0.1\nhypervisor_uri: test:///default\ndata_dir: " + dir + "\n"
	tests := []struct {
		name string
		args func(p string) []string
		body string
		code int
		want []string
	}{
		{"valid", func(p string) []string { return []string{"--config", p, "--check-config"} }, good, 0, []string{"config ok: node host1"}},
		{"missing file", func(string) []string { return []string{"--config", filepath.Join(dir, "nope.yaml"), "--check-config"} }, good, 1, []string{"nope.yaml", "no such file"}},
		{"malformed", func(p string) []string { return []string{"--config", p, "--check-config"} }, "node_name: [x\n", 1, []string{"vmhad.yaml", "not valid YAML"}},
		{"bad field", func(p string) []string { return []string{"--config", p, "--check-config"} }, good + "ports: {api: -3}\n", 1, []string{"vmhad.yaml", "ports.api"}},
		{"bad flag", func(p string) []string { return []string{"--config", p, "--ports-api", "x"} }, good, 1, []string{"ports-api"}},
		{"stray argument", func(p string) []string { return []string{"--config", p, "extra"} }, good, 1, []string{"extra"}},
		{"unreadable bmc password", func(p string) []string { return []string{"--config", p} }, good + "bmc: {address: 127.0.0.1, user: u, password_file: " + filepath.Join(dir, "absent") + "}\n", 1, []string{"fence device bmc: password_file", "absent"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			code := run(tt.args(writeConfig(t, tt.body)), io.Discard, &stderr)
			if code != tt.code {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tt.code, stderr.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr %q does not contain %q", stderr.String(), w)
				}
			}
		})
	}
}

// TestBMCPasswordNeverPrinted: a config whose BMC is wrong in another way
// must not echo the password it read.
func TestBMCPasswordNeverPrinted(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "bmc.password")
	if err := os.WriteFile(pw, []byte("s3cret-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	body := "node_name: host1\nbind_addr: 127.0.0.1\nhypervisor_uri: test:///default\ndata_dir: " + dir +
		"\nbmc: {address: 127.0.0.1, user: u, password_file: " + pw + ", cipher_suite: 99}\n"
	var stderr bytes.Buffer
	if code := run([]string{"--config", writeConfig(t, body)}, io.Discard, &stderr); code == 0 {
		t.Fatalf("a bad cipher suite was accepted: %s", stderr.String())
	}
	if strings.Contains(stderr.String(), "s3cret-pw") {
		t.Fatalf("the BMC password leaked: %s", stderr.String())
	}
}

// checkLab is a directory with what a good host config names: a BMC
// password file, a gossip key and TLS files from the cluster CA, all with
// the right modes.
type checkLab struct {
	dir, pw, key, ca, cert, certKey string
}

func newCheckLab(t *testing.T) *checkLab {
	t.Helper()
	dir := t.TempDir()
	l := &checkLab{dir: dir, pw: filepath.Join(dir, "bmc.password"), key: filepath.Join(dir, "gossip.key")}
	if err := os.WriteFile(l.pw, []byte("s3cret-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := gossipkey.New()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(l.key, []byte(k+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tlsDir := filepath.Join(dir, "tls")
	if err := pki.InitCA(tlsDir, "t"); err != nil {
		t.Fatal(err)
	}
	l.ca = filepath.Join(tlsDir, pki.CACert)
	l.cert, l.certKey = l.issue(t, "host1", time.Now().Add(-time.Hour), time.Now().Add(pki.CertValidity), false)
	return l
}

// config is a valid host config over the lab's files, plus extra.
func (l *checkLab) config(t *testing.T, extra string) string {
	t.Helper()
	uri := "test:///default"
	if u, rest, ok := strings.Cut(extra, "hypervisor_uri: "); ok {
		uri, extra, _ = strings.Cut(rest, "\n")
		extra = u + extra
	}
	return writeConfig(t, "node_name: host1\nbind_addr: 127.0.0.1\nhypervisor_uri: "+uri+"\ndata_dir: "+filepath.Join(l.dir, "data")+
		"\nbmc: {address: 127.0.0.1, user: u, password_file: "+l.pw+"}"+
		"\ngossip: {encrypt_key_file: "+l.key+"}"+
		"\ntls: {ca_file: "+l.ca+", cert_file: "+l.cert+", key_file: "+l.certKey+"}\n"+extra)
}

// issue signs a certificate for name with the lab's CA (or, with
// otherCA, with a CA of another cluster), valid from notBefore to
// notAfter, and returns its certificate and key files.
func (l *checkLab) issue(t *testing.T, name string, notBefore, notAfter time.Time, otherCA bool) (string, string) {
	t.Helper()
	caDir := filepath.Dir(l.ca)
	if otherCA {
		caDir = filepath.Join(t.TempDir(), "other")
		if err := pki.InitCA(caDir, "other"); err != nil {
			t.Fatal(err)
		}
	}
	caPair, err := tls.LoadX509KeyPair(filepath.Join(caDir, pki.CACert), filepath.Join(caDir, pki.CAKey))
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caPair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name, Organization: []string{"vmha"}, OrganizationalUnit: []string{"host"}},
		NotBefore:    notBefore, NotAfter: notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:    []string{name},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caPair.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	crt, kf := filepath.Join(l.dir, name+".crt"), filepath.Join(l.dir, name+".key")
	if err := os.WriteFile(crt, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kf, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return crt, kf
}

func runVmhad(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var stderr bytes.Buffer
	code := run(args, io.Discard, &stderr)
	return code, stderr.String()
}

// TestCheckConfigFiles: --check-config checks the files the config names
// as a start does, and more; every refusal names the file.
func TestCheckConfigFiles(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name  string
		setup func(t *testing.T, l *checkLab) (extra string)
		code  int
		want  []string
	}{
		{"all good", func(*testing.T, *checkLab) string { return "" }, 0, []string{"config ok: node host1, hypervisor test:///default"}},
		{"password file readable by all", func(t *testing.T, l *checkLab) string {
			chmod(t, l.pw, 0o644)
			return ""
		}, 1, []string{"fence device bmc: password_file " + "{PW} has mode 0644: group and others must have no access (chmod 600 {PW})"}},
		{"password file writable by the group", func(t *testing.T, l *checkLab) string {
			chmod(t, l.pw, 0o620)
			return ""
		}, 1, []string{"{PW} has mode 0620"}},
		{"password file missing", func(t *testing.T, l *checkLab) string {
			mustRemove(t, l.pw)
			return ""
		}, 1, []string{"fence device bmc: password_file {PW}: no such file or directory"}},
		{"fence device password file readable by all", func(t *testing.T, l *checkLab) string {
			p := filepath.Join(l.dir, "pdu.password")
			if err := os.WriteFile(p, []byte("x\n"), 0o640); err != nil {
				t.Fatal(err)
			}
			return "fence: {devices: [{name: pdu, type: agent, params: {agent: fence_apc}, password_file: " + p + "}], levels: [[bmc], [pdu]]}\n"
		}, 1, []string{"fence device pdu: password_file {DIR}/pdu.password has mode 0640"}},
		{"gossip key file missing", func(t *testing.T, l *checkLab) string {
			mustRemove(t, l.key)
			return ""
		}, 1, []string{"gossip.encrypt_key_file {KEY}: no such file or directory"}},
		{"gossip key file readable by all", func(t *testing.T, l *checkLab) string {
			chmod(t, l.key, 0o644)
			return ""
		}, 1, []string{"gossip.encrypt_key_file {KEY} has mode 0644"}},
		{"gossip key not a key", func(t *testing.T, l *checkLab) string {
			if err := os.WriteFile(l.key, []byte("hunter2\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			return ""
		}, 1, []string{"gossip.encrypt_key_file {KEY}: not valid base64"}},
		{"seed gone once the keyring exists", func(t *testing.T, l *checkLab) string {
			mustRemove(t, l.key)
			writeKeyring(t, l, 0o600)
			return ""
		}, 0, []string{"vmhad: warning: gossip.encrypt_key_file {KEY}: no such file or directory (not used: the keyring", "config ok"}},
		{"keyring readable by all", func(t *testing.T, l *checkLab) string {
			writeKeyring(t, l, 0o644)
			return ""
		}, 1, []string{"gossip keyring {DIR}/data/serf.keyring has mode 0644"}},
		{"expired certificate", func(t *testing.T, l *checkLab) string {
			l.cert, l.certKey = l.issue(t, "host1", now.Add(-48*time.Hour), now.Add(-time.Hour), false)
			return ""
		}, 1, []string{`tls.cert_file {DIR}/host1.crt: the certificate "host1" expired on ` + now.Add(-time.Hour).UTC().Format("2006-01-02"), "vmha tls issue host1"}},
		{"certificate not valid yet", func(t *testing.T, l *checkLab) string {
			l.cert, l.certKey = l.issue(t, "host1", now.Add(time.Hour), now.Add(48*time.Hour), false)
			return ""
		}, 1, []string{`tls.cert_file {DIR}/host1.crt: the certificate "host1" is not valid before`}},
		{"certificate from another CA", func(t *testing.T, l *checkLab) string {
			l.cert, l.certKey = l.issue(t, "host1", now.Add(-time.Hour), now.Add(365*24*time.Hour), true)
			return ""
		}, 1, []string{"tls.cert_file {DIR}/host1.crt does not chain to the CA in tls.ca_file {CA}"}},
		{"certificate expiring soon is a warning", func(t *testing.T, l *checkLab) string {
			l.cert, l.certKey = l.issue(t, "host1", now.Add(-time.Hour), now.Add(10*24*time.Hour+time.Hour), false)
			return ""
		}, 0, []string{`vmhad: warning: tls.cert_file {DIR}/host1.crt: the certificate "host1" expires on`, "in 10 days", "config ok"}},
		{"unreachable hypervisor", func(*testing.T, *checkLab) string { return "hypervisor_uri: bogus:///nowhere\n" }, 1, []string{"hypervisor bogus:///nowhere"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newCheckLab(t)
			extra := tt.setup(t, l)
			code, out := runVmhad(t, "--config", l.config(t, extra), "--check-config")
			if code != tt.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tt.code, out)
			}
			r := strings.NewReplacer("{PW}", l.pw, "{KEY}", l.key, "{DIR}", l.dir, "{CA}", l.ca)
			for _, w := range tt.want {
				if w = r.Replace(w); !strings.Contains(out, w) {
					t.Errorf("stderr:\n%s\ndoes not contain %q", out, w)
				}
			}
			if strings.Contains(out, "s3cret-pw") {
				t.Fatalf("a secret leaked: %s", out)
			}
		})
	}
}

// TestCheckConfigListsEveryProblem: one run lists every problem, config
// errors and file errors together, not only the first.
func TestCheckConfigListsEveryProblem(t *testing.T) {
	l := newCheckLab(t)
	chmod(t, l.pw, 0o644)
	mustRemove(t, l.key)
	p := l.config(t, "log: {level: loud}\nfencing: {timeout: 20}\n")
	checkConfigFails(t, p, "vmhad: 4 problems:", `log.level: "loud"`, "fencing.timeout: 20 has no unit (write 20s or 20ms)", l.pw+" has mode 0644", "gossip.encrypt_key_file "+l.key+": no such file")
	// The config does not validate: the files it names are checked too,
	// not the hypervisor.
	p = l.config(t, "log: {level: loud}\nhypervisor_uri: bogus:///nowhere\n")
	checkConfigFails(t, p, "vmhad: 3 problems:", `log.level: "loud"`, l.pw+" has mode 0644", "gossip.encrypt_key_file "+l.key+": no such file")
	// A valid config: every file problem and the hypervisor.
	p = l.config(t, "hypervisor_uri: bogus:///nowhere\n")
	checkConfigFails(t, p, "vmhad: 3 problems:", l.pw+" has mode 0644", "gossip.encrypt_key_file "+l.key+": no such file", "hypervisor bogus:///nowhere")
}

// TestCheckConfigOffline: --offline skips the hypervisor and nothing else;
// it goes only with --check-config.
func TestCheckConfigOffline(t *testing.T) {
	l := newCheckLab(t)
	p := l.config(t, "hypervisor_uri: bogus:///nowhere\n")
	code, out := runVmhad(t, "--config", p, "--check-config", "--offline")
	if code != 0 || !strings.Contains(out, "config ok: node host1, hypervisor bogus:///nowhere (not checked: --offline)") {
		t.Fatalf("exit %d; stderr:\n%s", code, out)
	}
	chmod(t, l.pw, 0o644)
	code, out = runVmhad(t, "--config", p, "--check-config", "--offline")
	if code != 1 || !strings.Contains(out, l.pw+" has mode 0644") || strings.Contains(out, "hypervisor bogus") {
		t.Fatalf("exit %d; stderr:\n%s", code, out)
	}
	code, out = runVmhad(t, "--config", p, "--offline")
	if code != 1 || !strings.Contains(out, "--offline goes with --check-config only") {
		t.Fatalf("exit %d; stderr:\n%s", code, out)
	}
}

// TestStartRefusesWhatCheckRefuses: the daemon runs the same checks before
// it starts (one function), so it refuses what --check-config refuses,
// with the same words, before it opens anything else.
func TestStartRefusesWhatCheckRefuses(t *testing.T) {
	l := newCheckLab(t)
	chmod(t, l.key, 0o640)
	p := l.config(t, "")
	_, check := runVmhad(t, "--config", p, "--check-config")
	code, start := runVmhad(t, "--config", p)
	want := "gossip.encrypt_key_file " + l.key + " has mode 0640"
	if code != 1 || !strings.Contains(check, want) || !strings.Contains(start, want) {
		t.Fatalf("exit %d\ncheck: %s\nstart: %s", code, check, start)
	}
	if _, err := os.Stat(filepath.Join(l.dir, "data")); err == nil {
		t.Fatal("the refused start created its data directory")
	}
}

func chmod(t *testing.T, p string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func mustRemove(t *testing.T, p string) {
	t.Helper()
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
}

func writeKeyring(t *testing.T, l *checkLab, mode os.FileMode) {
	t.Helper()
	k, err := gossipkey.New()
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(l.dir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(data, "serf.keyring")
	if err := os.WriteFile(p, []byte(`["`+k+`"]`), 0o600); err != nil {
		t.Fatal(err)
	}
	chmod(t, p, mode)
	writeRaftStore(t, data)
}

// writeRaftStore makes data hold a raft store with one log entry: the
// data_dir of a member, which a start accepts (a keyring without one is
// refused: a member that lost its raft state).
func writeRaftStore(t *testing.T, data string) {
	t.Helper()
	s, err := raftboltdb.NewBoltStore(filepath.Join(data, "raft.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	if err := s.StoreLog(&raft.Log{Index: 1, Term: 1, Type: raft.LogNoop}); err != nil {
		t.Fatal(err)
	}
}

// checkConfigFails runs vmhad --check-config on p and wants exit 1 with every
// one of want in its output.
func checkConfigFails(t *testing.T, p string, want ...string) {
	t.Helper()
	code, out := runVmhad(t, "--config", p, "--check-config")
	if code != 1 {
		t.Fatalf("exit %d; stderr:\n%s", code, out)
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("stderr:\n%s\ndoes not contain %q", out, w)
		}
	}
}

// log.format console writes no colour codes where the log is not a
// terminal (journald, a file): they would land there as text.
func TestConsoleLogHasNoColourOffTerminal(t *testing.T) {
	var b bytes.Buffer
	cfg := &config.Daemon{NodeName: "h1"}
	cfg.Log.Level, cfg.Log.Format = "info", "console"
	log := newLogger(cfg, &b)
	log.Warn().Str("host", "h2").Msg("host lost")
	if strings.Contains(b.String(), "\x1b[") {
		t.Fatalf("colour codes in a non-terminal log: %q", b.String())
	}
	if !strings.Contains(b.String(), "host lost") || !strings.Contains(b.String(), "host=h2") {
		t.Fatalf("console log: %q", b.String())
	}
}

// TestVersion: vmhad --version prints the build info vmha version prints,
// without reading a config.
func TestVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"--version", "--config", "/nonexistent/vmhad.yaml"}, &stdout, &stderr); code != 0 {
		t.Fatalf("vmhad --version: exit %d\n%s", code, stderr.String())
	}
	if want := "vmhad " + buildinfo.Get().String() + "\n"; stdout.String() != want {
		t.Errorf("vmhad --version printed %q, want %q", stdout.String(), want)
	}
}
