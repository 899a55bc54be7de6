package main

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmha/vmha/config"
)

// TestClusterInit: one command makes what a secure cluster needs, with
// keys 0600, a role in every certificate, settings vmhad accepts, and it
// never overwrites a cluster.
func TestClusterInit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "c")
	code, out, errOut := runCLI("cluster", "init", "--dir", dir, "--host", "kvm1=10.0.0.1", "--host", "kvm2=10.0.0.2", "--operator", "alice")
	if code != 0 {
		t.Fatalf("cluster init: %d %s %s", code, out, errOut)
	}
	roles := map[string]string{
		filepath.Join(dir, "hosts", "kvm1", "host.crt"): "host",
		filepath.Join(dir, "hosts", "kvm2", "host.crt"): "host",
		filepath.Join(dir, "operators", "alice.crt"):    "operator",
	}
	for p, role := range roles {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		blk, _ := pem.Decode(b)
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Subject.OrganizationalUnit) != 1 || c.Subject.OrganizationalUnit[0] != role {
			t.Errorf("%s: role %v, want %s", p, c.Subject.OrganizationalUnit, role)
		}
	}
	_ = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if strings.HasSuffix(p, ".key") && fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %o, want 600", p, fi.Mode().Perm())
		}
		if fi.IsDir() && fi.Mode().Perm() != 0o700 {
			t.Errorf("directory %s has mode %o, want 700", p, fi.Mode().Perm())
		}
		return nil
	})
	// The host's settings are a valid vmhad.yaml once the files are where
	// it says (here: rewritten to the test's folder).
	hd := filepath.Join(dir, "hosts", "kvm1")
	snip, err := os.ReadFile(filepath.Join(hd, "vmhad-security.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(t.TempDir(), "vmhad.yaml")
	cfg := strings.ReplaceAll(string(snip), "/etc/vmha/", hd+"/") + "data_dir: " + t.TempDir() + "\n"
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := config.Load(cfgPath, nil)
	if err != nil {
		t.Fatalf("the generated settings do not load: %v\n%s", err, cfg)
	}
	if d.BindAddr != "10.0.0.1" || !d.TLS.Enabled() || d.Gossip.EncryptKeyFile == "" {
		t.Fatalf("settings: bind %s tls %v gossip %q", d.BindAddr, d.TLS.Enabled(), d.Gossip.EncryptKeyFile)
	}
	if _, err := d.TLS.Config(); err != nil {
		t.Fatalf("the host's TLS files do not load: %v", err)
	}
	// Never over an existing cluster, and bad hosts are usage errors.
	if code, _, errOut := runCLI("cluster", "init", "--dir", dir, "--host", "kvm3=10.0.0.3"); code != 1 || !strings.Contains(errOut, "already holds a cluster CA") {
		t.Fatalf("second init: %d %s", code, errOut)
	}
	for _, bad := range [][]string{
		{"--host", "kvm1"},
		{"--host", "kvm1=not-an-ip"},
		{"--host", "kvm1=10.0.0.1", "--host", "kvm1=10.0.0.2"},
		{"--host", "admin=10.0.0.1"},
		{},
	} {
		args := append([]string{"cluster", "init", "--dir", filepath.Join(t.TempDir(), "x")}, bad...)
		if code, _, errOut := runCLI(args...); code != 2 {
			t.Errorf("%v: exit %d (%s), want 2", bad, code, errOut)
		}
	}
}
