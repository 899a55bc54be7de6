package main

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmha/vmha/api"
)

// fakeDaemon serves canned answers on a unix socket, so that the CLI's
// parsing, output and exit codes are tested without a cluster (the cluster
// tests in internal/testlab/labcluster run the same CLI against real vmhad).
func fakeDaemon(t *testing.T, h http.Handler) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "vmhad.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return sock
}

func runCLI(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func TestExitCodes(t *testing.T) {
	var posted int
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+api.PathStatus, func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(api.Status{Node: "host1", Leader: "host1", Term: 3,
			Quorum: api.Quorum{Quorate: true, Explanation: "3 of 3 voters alive"},
			VMs:    []api.VM{{Name: "web1", Host: "host2", State: "running"}}})
	})
	mux.HandleFunc("POST "+api.PathVMs, func(w http.ResponseWriter, _ *http.Request) {
		posted++
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(api.Error{Error: `prefer: unknown host "host9"`, Field: "prefer"})
	})
	// vm remove reads the VM first (does it run?), then deletes it.
	mux.HandleFunc("GET "+api.PathVMs+"/{name}", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(api.VMDefinition{Name: r.PathValue("name"), State: "stopped"})
	})
	mux.HandleFunc("DELETE "+api.PathVMs+"/{name}", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(api.Error{Error: "this host is not the leader and no leader is known"})
	})
	sock := fakeDaemon(t, mux)
	dir := t.TempDir()
	good := filepath.Join(dir, "web2.xml")
	if err := os.WriteFile(good, []byte("<domain type='kvm'><name>web2</name><memory unit='MiB'>512</memory></domain>"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.xml")
	if err := os.WriteFile(bad, []byte("<domain type='kvm'><name>web2"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"status text", []string{"status"}, 0, "web1"},
		{"status json", []string{"status", "-o", "json"}, 0, `"leader": "host1"`},
		{"vm list json", []string{"vm", "list", "-o", "json"}, 0, `"name": "web1"`},
		{"bad output", []string{"status", "-o", "yaml"}, 2, `--output "yaml"`},
		{"unknown flag", []string{"status", "--bogus"}, 2, "bogus"},
		{"extra argument", []string{"status", "now"}, 2, "got 1 argument"},
		{"unknown command", []string{"nosuch"}, 2, `unknown command "nosuch" for "vmha"`},
		{"unknown subcommand", []string{"vm", "halt", "web1"}, 2, `unknown command "halt" for "vmha vm" (its commands: `},
		{"unknown nested subcommand", []string{"host", "attr", "frob"}, 2, `unknown command "frob" for "vmha host attr"`},
		{"misspelt command", []string{"statsu"}, 2, "did you mean status?"},
		{"group without arguments", []string{"vm"}, 0, "Available Commands"},
		{"version", []string{"version"}, 0, "vmha "},
		{"version json", []string{"version", "-o", "json"}, 0, `"go": "go1.`},
		{"add without xml", []string{"vm", "add", "web2"}, 2, "--xml is required"},
		{"xml does not parse", []string{"vm", "add", "web2", "--xml", bad}, 1, bad + ": domain XML does not parse"},
		{"xml name differs", []string{"vm", "add", "web3", "--xml", good}, 1, `domain <name> is "web2"`},
		{"refused by the cluster", []string{"vm", "add", "web2", "--xml", good, "--prefer", "host9"}, 1, `unknown host "host9"`},
		{"no leader", []string{"vm", "remove", "web1"}, 3, "no leader"},
		{"no daemon", []string{"--socket", filepath.Join(dir, "none.sock"), "status"}, 3, "cannot reach vmhad"},
		{"ttl without pin", []string{"migrate", "web1", "--ttl", "1h"}, 2, "--ttl needs --pin"},
		{"negative ttl", []string{"migrate", "web1", "--pin", "--ttl", "-1h"}, 2, "--ttl -1h0m0s"},
		{"pins clear without a VM", []string{"pins", "clear"}, 2, "or --all"},
		{"pins clear both", []string{"pins", "clear", "web1", "--all"}, 2, "or --all"},
		{"rebalance parallel", []string{"rebalance", "--parallel", "0"}, 2, "--parallel 0"},
		{"rebalance max moves", []string{"rebalance", "--max-moves", "-1"}, 2, "--max-moves -1"},
		{"rebalance min gain", []string{"rebalance", "--min-gain", "-0.5"}, 2, "--min-gain -0.5"},
		{"storage init without a name", []string{"storage", "init"}, 2, "FILESYSTEM"},
		{"storage init journals", []string{"storage", "init", "vmstore", "--journals", "-2"}, 2, "--journals -2"},
		{"host remove without yes", []string{"host", "remove", "host2"}, 2, "--yes"},
		{"host maintenance without a host", []string{"host", "maintenance"}, 2, "HOST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"--socket", sock}, tt.args...)
			code, out, errOut := runCLI(args...)
			if code != tt.code || !strings.Contains(out+errOut, tt.want) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d and %q", code, out, errOut, tt.code, tt.want)
			}
		})
	}
	// Input that fails locally never reaches the daemon.
	if posted != 1 {
		t.Fatalf("the daemon got %d add requests, want 1 (only the well-formed one)", posted)
	}
}

func TestHelpListsCommands(t *testing.T) {
	code, out, _ := runCLI("--help")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, c := range []string{"status", "host", "vm", "fence", "migrate", "evacuate", "rebalance", "pins", "storage", "Exit codes"} {
		if !strings.Contains(out, c) {
			t.Errorf("--help does not mention %q:\n%s", c, out)
		}
	}
}
