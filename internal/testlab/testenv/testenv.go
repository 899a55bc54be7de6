// Package testenv lets tests that need a real part (a binary, a daemon, a
// kernel feature) skip locally when it is missing and fail in CI, where the
// test command installs every part.
package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// InCI reports whether the tests run under CI (CI=true).
func InCI() bool { return os.Getenv("CI") == "true" }

// Missing skips the test with reason, or fails it under CI.
func Missing(t testing.TB, reason string) {
	t.Helper()
	if InCI() {
		t.Fatalf("required part missing in CI: %s", reason)
	}
	t.Skipf("skipping: %s (the test command installs it: make test)", reason)
}

// NeedCommand returns the path of a command, or skips/fails if absent.
func NeedCommand(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, name+" not found in PATH")
	}
	return p
}

// Testdata reads testdata/name of the calling package's directory (the
// tools' captured output that parser tests replay), failing the test if it
// cannot.
func Testdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FreePorts are n loopback ports free for both TCP and UDP now (serf uses
// both), distinct from one another: each is held until all are found.
func FreePorts(n int) ([]int, error) {
	var out []int
	var hold []interface{ Close() error }
	defer func() {
		for _, l := range hold {
			_ = l.Close()
		}
	}()
	for tries := 0; len(out) < n; tries++ {
		if tries > 20*n {
			return nil, fmt.Errorf("no %d free loopback ports for TCP and UDP", n)
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		p := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			_ = l.Close()
			continue
		}
		hold = append(hold, l, u)
		out = append(out, p)
	}
	return out, nil
}

// FreePort is one such port, or fails the test.
func FreePort(t testing.TB) int {
	t.Helper()
	ps, err := FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	return ps[0]
}

// SecretFile writes secret and a newline into a new file of mode mode (a
// password file, as fence devices read them) and returns its path.
func SecretFile(t testing.TB, secret string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(secret+"\n"), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // below the umask too
		t.Fatal(err)
	}
	return p
}
