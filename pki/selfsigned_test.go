package pki

import (
	"crypto/tls"
	"net"
	"os"
	"strings"
	"testing"
)

func TestSelfSignedIsKept(t *testing.T) {
	dir := t.TempDir()
	crt, key, err := SelfSigned(dir, "web", []net.IP{net.ParseIP("10.0.0.5")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(key)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key %s: %v %v, want mode 0600", key, fi.Mode(), err)
	}
	fp, err := Fingerprint(crt)
	if err != nil || len(strings.Split(fp, ":")) != 32 {
		t.Fatalf("fingerprint %q %v", fp, err)
	}
	// A second call keeps the certificate (a browser's exception holds).
	if _, _, err := SelfSigned(dir, "web", nil, nil); err != nil {
		t.Fatal(err)
	}
	if fp2, _ := Fingerprint(crt); fp2 != fp {
		t.Fatalf("certificate made anew: %s then %s", fp, fp2)
	}
	pair, err := tls.LoadX509KeyPair(crt, key)
	if err != nil {
		t.Fatal(err)
	}
	if pair.Leaf == nil {
		t.Skip("no parsed leaf")
	}
	if err := pair.Leaf.VerifyHostname("10.0.0.5"); err != nil {
		t.Fatal(err)
	}
}
