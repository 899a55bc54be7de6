package pki

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func files(dir, name string) Files {
	return Files{CA: filepath.Join(dir, CACert), Cert: filepath.Join(dir, name+".crt"), Key: filepath.Join(dir, name+".key")}
}

// handshake runs one mutual-TLS handshake over a loopback pipe and returns
// the name each side saw, or the first error.
func handshake(t *testing.T, server, client *tls.Config) (seenByServer, seenByClient string, err error) {
	t.Helper()
	// Loopback TCP, not net.Pipe: a TLS 1.3 server writes its session
	// tickets after the handshake, which a synchronous pipe would block.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	type res struct {
		name string
		err  error
	}
	done := make(chan res, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			done <- res{err: err}
			return
		}
		defer c.Close()
		srv := tls.Server(c, server)
		_ = srv.SetDeadline(time.Now().Add(5 * time.Second))
		err = srv.Handshake()
		cs := srv.ConnectionState()
		done <- res{PeerName(&cs), err}
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cli := tls.Client(c, client)
	_ = cli.SetDeadline(time.Now().Add(5 * time.Second))
	cerr := cli.Handshake()
	if cerr == nil {
		// The server verifies the client's certificate only after the
		// client's side is done: read once to learn the verdict.
		_, rerr := cli.Read(make([]byte, 1))
		if rerr != nil && !errors.Is(rerr, io.EOF) && !isTimeout(rerr) {
			cerr = rerr
		}
	}
	c.Close()
	r := <-done
	if cerr != nil {
		return "", "", cerr
	}
	if r.err != nil {
		return "", "", r.err
	}
	cs := cli.ConnectionState()
	return r.name, PeerName(&cs), nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	if err := InitCA(dir, "c1"); err != nil {
		t.Fatal(err)
	}
	if err := InitCA(dir, "c1"); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second init: %v", err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, CAKey)); fi.Mode().Perm() != 0o600 {
		t.Fatalf("ca.key mode %v", fi.Mode())
	}
	for _, n := range []string{"host1", "host2"} {
		if _, _, err := Issue(dir, n, RoleHost, []net.IP{net.ParseIP("127.0.0.1")}, nil); err != nil {
			t.Fatal(err)
		}
	}
	h1, err := files(dir, "host1").Config()
	if err != nil {
		t.Fatal(err)
	}
	h2, err := files(dir, "host2").Config()
	if err != nil {
		t.Fatal(err)
	}
	s, c, err := handshake(t, h1, h2)
	if err != nil || s != "host2" || c != "host1" {
		t.Fatalf("same CA: server saw %q, client saw %q, err %v", s, c, err)
	}
	// A certificate of another CA is refused, in either direction.
	other := t.TempDir()
	_ = InitCA(other, "c2")
	_, _, _ = Issue(other, "host1", RoleHost, nil, nil)
	stranger, err := files(other, "host1").Config()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := handshake(t, h1, stranger); err == nil {
		t.Fatal("a server accepted a client of another CA")
	}
	if _, _, err := handshake(t, stranger, h2); err == nil {
		t.Fatal("a client accepted a server of another CA")
	}
	// A client without a certificate is refused.
	noCert := h2.Clone()
	noCert.Certificates = nil
	if _, _, err := handshake(t, h1, noCert); err == nil {
		t.Fatal("a client without a certificate was accepted")
	}
}

func TestConfigErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	_ = InitCA(dir, "c")
	_, key, _ := Issue(dir, "h", RoleHost, nil, nil)
	if _, err := (Files{CA: filepath.Join(dir, CACert)}).Config(); err == nil || !strings.Contains(err.Error(), "must all be set") {
		t.Fatalf("partial: %v", err)
	}
	f := files(dir, "h")
	f.CA = filepath.Join(dir, "nope.crt")
	if _, err := f.Config(); err == nil || !strings.Contains(err.Error(), "nope.crt") {
		t.Fatalf("missing CA: %v", err)
	}
	_ = os.Chmod(key, 0o644)
	if _, err := files(dir, "h").Config(); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("readable key: %v", err)
	}
	b, _ := os.ReadFile(key)
	if _, err := files(dir, "h").Config(); err != nil && strings.Contains(err.Error(), string(b[40:60])) {
		t.Fatal("an error shows the key")
	}
}
