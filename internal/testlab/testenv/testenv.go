// Package testenv lets tests that need a real part (a binary, a daemon, a
// kernel feature) skip locally when it is missing and fail in CI, where the
// test command installs every part.
package testenv

import (
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
