package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/model"
)

// completions runs vmha __complete ARGS... (what the shell scripts of vmha
// completion call at Tab) and returns the names offered, without their
// descriptions, and the directive line.
func completions(t *testing.T, args ...string) (names []string, directive string) {
	t.Helper()
	code, out, errOut := runCLI(append([]string{"__complete"}, args...)...)
	if code != 0 {
		t.Fatalf("__complete %q: exit %d, stderr %q", args, code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for _, l := range lines[:len(lines)-1] {
		name, _, _ := strings.Cut(l, "\t")
		names = append(names, name)
	}
	return names, lines[len(lines)-1]
}

func TestCompletionNames(t *testing.T) {
	var reads int
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+api.PathStatus, func(w http.ResponseWriter, _ *http.Request) {
		reads++
		_ = json.NewEncoder(w).Encode(api.Status{Node: "host1", Leader: "host1",
			Hosts: []api.Host{{Name: "host1", State: model.HostAlive, Leader: true}, {Name: "host2", State: model.HostAlive}, {Name: "quorum1", Witness: true}},
			VMs:   []api.VM{{Name: "web1", Host: "host1", State: "running"}, {Name: "web2", Host: "host2", State: "running"}, {Name: "db1"}}})
	})
	sock := fakeDaemon(t, mux)
	hosts := []string{"host1", "host2", "quorum1"}
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"vm stop", []string{"vm", "stop", ""}, []string{"web1", "web2", "db1"}},
		{"vm stop with a prefix", []string{"vm", "stop", "we"}, []string{"web1", "web2"}},
		{"vm stop takes one VM", []string{"vm", "stop", "web1", ""}, nil},
		{"vm show", []string{"vm", "show", "d"}, []string{"db1"}},
		{"migrate", []string{"migrate", ""}, []string{"web1", "web2", "db1"}},
		{"migrate --to leaves out the witness", []string{"migrate", "web1", "--to", ""}, []string{"host1", "host2"}},
		{"relocate --to", []string{"relocate", "web1", "--to", "host"}, []string{"host1", "host2"}},
		{"pins clear, VMs not yet given", []string{"pins", "clear", "web1", ""}, []string{"web2", "db1"}},
		{"events --vm", []string{"events", "--vm", ""}, []string{"web1", "web2", "db1"}},
		{"events --host", []string{"events", "--host", ""}, hosts},
		{"evacuate", []string{"evacuate", ""}, hosts},
		{"host maintenance", []string{"host", "maintenance", "host"}, []string{"host1", "host2"}},
		{"host attr set, the host only", []string{"host", "attr", "set", "host1", ""}, nil},
		{"fence test", []string{"fence", "test", ""}, hosts},
		{"fence confirm", []string{"fence", "confirm", "q"}, []string{"quorum1"}},
		{"rules location add: VM then host", []string{"rules", "location", "add", "web1", ""}, []string{"host1", "host2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, directive := completions(t, append([]string{"--socket", sock}, tt.args...)...)
			if !slices.Equal(got, tt.want) {
				t.Errorf("names %q, want %q", got, tt.want)
			}
			if directive != ":4" {
				t.Errorf("directive %q, want :4 (no file names)", directive)
			}
		})
	}
	// vmha fence '' offers its subcommands and the hosts.
	got, _ := completions(t, "--socket", sock, "fence", "")
	for _, w := range []string{"confirm", "test", "host1", "quorum1"} {
		if !slices.Contains(got, w) {
			t.Errorf("vmha fence <Tab> offers %q, missing %q", got, w)
		}
	}
	// The socket from the environment, as an operator's shell has it.
	t.Setenv("VMHA_SOCKET", sock)
	before := reads
	if got, _ := completions(t, "vm", "start", "web"); !slices.Equal(got, []string{"web1", "web2"}) {
		t.Errorf("with VMHA_SOCKET: %q", got)
	}
	if reads != before+1 {
		t.Errorf("%d status reads for one completion", reads-before)
	}
}

func TestCompletionWithoutDaemon(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	start := time.Now()
	got, directive := completions(t, "--socket", sock, "vm", "stop", "")
	if len(got) != 0 || directive != ":4" {
		t.Fatalf("no vmhad: got %q %s, want nothing and :4", got, directive)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("completion without vmhad took %s", d)
	}
}

// TestCompletionTables checks that every command and flag the completion
// tables name exists, so that a renamed command fails here instead of
// silently losing its completion.
func TestCompletionTables(t *testing.T) {
	root := newRoot(&globals{out: os.Stdout})
	find := func(path string) *cobra.Command {
		c, rest, err := root.Find(strings.Fields(path))
		if err != nil || len(rest) != 0 || c.CommandPath() != "vmha "+path {
			t.Errorf("completion table names %q, which is no command", path)
			return nil
		}
		return c
	}
	for path := range argCompletions {
		if c := find(path); c != nil && c.ValidArgsFunction == nil {
			t.Errorf("%q has no ValidArgsFunction", path)
		}
	}
	for path, flags := range flagCompletions {
		c := find(path)
		if c == nil {
			continue
		}
		for f := range flags {
			if c.Flags().Lookup(f) == nil {
				t.Errorf("completion table names --%s of %q, which it lacks", f, path)
			} else if _, ok := c.GetFlagCompletionFunc(f); !ok {
				t.Errorf("%q --%s has no completion", path, f)
			}
		}
	}
}

func TestGenMan(t *testing.T) {
	dir := t.TempDir()
	code, _, errOut := runCLI("gen-man", "--source", "vmha 1.2.3", dir)
	if code != 0 {
		t.Fatalf("gen-man: exit %d: %s", code, errOut)
	}
	for _, f := range []string{"vmha.1", "vmha-vm-stop.1", "vmha-fence-confirm.1", "vmha-completion-bash.1"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "vmha 1.2.3") {
			t.Errorf("%s lacks the --source footer", f)
		}
	}
	// Hidden commands have no page.
	if _, err := os.Stat(filepath.Join(dir, "vmha-gen-man.1")); err == nil {
		t.Error("the hidden gen-man command has a man page")
	}
	// vmha completion --help says what it completes and where the
	// scripts go.
	if code, out, _ := runCLI("completion", "--help"); code != 0 || !strings.Contains(out, "complete the cluster's names") || !strings.Contains(out, "/usr/share/bash-completion/completions/vmha") {
		t.Errorf("vmha completion --help (exit %d):\n%s", code, out)
	}
	// The command is hidden from help and completion.
	if _, out, _ := runCLI("--help"); strings.Contains(out, "gen-man") {
		t.Error("vmha --help lists gen-man")
	}
}

// TestCompletionFileSystems: vmha storage init and evacuate --storage
// complete the file systems configured on the local vmhad (its storage
// check), and offer nothing where it has none (409).
func TestCompletionFileSystems(t *testing.T) {
	var noStorage atomic.Bool
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+api.PathLocalStorage, func(w http.ResponseWriter, _ *http.Request) {
		if noStorage.Load() {
			w.WriteHeader(http.StatusConflict)
			_ = json.NewEncoder(w).Encode(api.Error{Error: "no shared storage is configured on this host (storage: in vmhad.yaml)"})
			return
		}
		_ = json.NewEncoder(w).Encode(api.StorageCheck{Host: "host1", Hosts: 3, FileSystems: []api.StorageFS{
			{Name: "vmstore", Ready: true, FormatOK: true},
			{Name: "isos", Ready: false, Reasons: []string{"not mounted"}, FormatOK: true},
			{Name: "vmstore2", Ready: true, FormatOK: false, FormatError: "2 journals for 3 hosts"},
		}})
	})
	sock := fakeDaemon(t, mux)
	for _, tt := range []struct {
		name string
		args []string
		want []string
	}{
		{"storage init", []string{"storage", "init", ""}, []string{"vmstore", "isos", "vmstore2"}},
		{"storage init with a prefix", []string{"storage", "init", "vm"}, []string{"vmstore", "vmstore2"}},
		{"storage init takes one", []string{"storage", "init", "vmstore", ""}, nil},
		{"evacuate --storage", []string{"evacuate", "host1", "--storage", "i"}, []string{"isos"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, directive := completions(t, append([]string{"--socket", sock}, tt.args...)...)
			if !slices.Equal(got, tt.want) {
				t.Errorf("names %q, want %q", got, tt.want)
			}
			if directive != ":4" {
				t.Errorf("directive %q, want :4 (no file names)", directive)
			}
		})
	}
	// The descriptions say whether each is ready.
	_, out, _ := runCLI("--socket", sock, "__complete", "storage", "init", "")
	for _, w := range []string{"vmstore\tready\n", "isos\tnot ready\n", "vmstore2\tready, wrongly formatted\n"} {
		if !strings.Contains(out, w) {
			t.Errorf("no %q in\n%s", w, out)
		}
	}
	noStorage.Store(true)
	if got, _ := completions(t, "--socket", sock, "storage", "init", ""); len(got) != 0 {
		t.Errorf("without storage: %q, want nothing", got)
	}
}
