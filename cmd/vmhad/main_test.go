package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
			code := run(tt.args(writeConfig(t, tt.body)), &stderr)
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
	if code := run([]string{"--config", writeConfig(t, body)}, &stderr); code == 0 {
		t.Fatalf("a bad cipher suite was accepted: %s", stderr.String())
	}
	if strings.Contains(stderr.String(), "s3cret-pw") {
		t.Fatalf("the BMC password leaked: %s", stderr.String())
	}
}
