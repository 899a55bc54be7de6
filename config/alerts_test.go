package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestAlerts(t *testing.T) {
	dir := t.TempDir()
	agent := filepath.Join(dir, "alert_smtp.sh")
	_ = os.WriteFile(agent, []byte("#!/bin/sh\n"), 0o755)
	plain := filepath.Join(dir, "notexec.sh")
	_ = os.WriteFile(plain, []byte("#!/bin/sh\n"), 0o644)
	token := filepath.Join(dir, "token")
	_ = os.WriteFile(token, []byte("s3cret\n"), 0o600)

	good := "node_name: a\nalerts:\n" +
		"  - {name: mail, path: " + agent + ", recipient: ops@example.com, kinds: [node, fencing], env: {cluster_name: prod}}\n" +
		"  - {name: hook, webhook: 'https://alerts.example.com/vmha', token_file: " + token + ", timeout: 5s}\n"
	d, err := Load(write(t, good), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Alerts) != 2 || d.Alerts[0].Env["cluster_name"] != "prod" || d.Alerts[1].Timeout != 5*time.Second || d.Alerts[0].Kinds[1] != "fencing" {
		t.Fatalf("alerts %+v", d.Alerts)
	}
	for _, tt := range []struct{ name, body, want string }{
		{"both", "  - {name: x, path: " + agent + ", webhook: 'https://a/b'}\n", "give either path"},
		{"neither", "  - {name: x}\n", "give either path"},
		{"relative", "  - {name: x, path: alert.sh}\n", "not an absolute path"},
		{"missing", "  - {name: x, path: /nonexistent/alert.sh}\n", "alerts[0].path"},
		{"not executable", "  - {name: x, path: " + plain + "}\n", "not an executable"},
		{"bad kind", "  - {name: x, path: " + agent + ", kinds: [nodes]}\n", "alerts[0].kinds"},
		{"bad url", "  - {name: x, webhook: 'ftp://a/b'}\n", "alerts[0].webhook"},
		{"credentials in url", "  - {name: x, webhook: 'https://u:p@a/b'}\n", "without credentials"},
		{"token over http", "  - {name: x, webhook: 'http://a/b', token_file: " + token + "}\n", "only over https"},
		{"twice", "  - {name: x, path: " + agent + "}\n  - {name: x, path: " + agent + "}\n", "used twice"},
		{"bad env", "  - {name: x, path: " + agent + ", env: {'a-b': 'x'}}\n", "environment variable name"},
		{"unknown key", "  - {name: x, path: " + agent + ", recipents: a}\n", "recipents"},
		{"retries for an agent", "  - {name: x, path: " + agent + ", retries: 2}\n", "for a webhook"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(write(t, "node_name: a\nalerts:\n"+tt.body), nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}
