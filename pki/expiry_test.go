package pki

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestNotAfter reads the expiry of the CA and of a host certificate as
// InitCA and Issue make them, and fails on a file without a certificate.
func TestNotAfter(t *testing.T) {
	dir := t.TempDir()
	if err := InitCA(dir, "c1"); err != nil {
		t.Fatal(err)
	}
	cert, _, err := Issue(dir, "host1", RoleHost, nil, []string{"host1"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, tt := range []struct {
		path string
		want time.Duration
	}{{filepath.Join(dir, CACert), CAValidity}, {cert, CertValidity}} {
		got, err := NotAfter(tt.path)
		if err != nil {
			t.Fatal(err)
		}
		if d := got.Sub(now.Add(tt.want)); d < -time.Hour || d > time.Hour {
			t.Errorf("%s: NotAfter %s, want about %s", tt.path, got, now.Add(tt.want))
		}
	}
	bad := filepath.Join(dir, "empty.crt")
	if err := os.WriteFile(bad, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NotAfter(bad); err == nil {
		t.Fatal("a file without a certificate has an expiry")
	}
	if _, err := NotAfter(filepath.Join(dir, "absent.crt")); err == nil {
		t.Fatal("a missing file has an expiry")
	}
}
