package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmha/vmha/api"
)

const (
	web1XML    = "<domain type='kvm'>\n  <name>web1</name>\n  <memory unit='MiB'>512</memory>\n  <vcpu>1</vcpu>\n</domain>\n"
	web1Bigger = "<domain type='kvm'>\n  <name>web1</name>\n  <memory unit='MiB'>1024</memory>\n  <vcpu>1</vcpu>\n</domain>\n"
)

// vmDaemon is a fake vmhad for the vm commands: web1 runs on host2 (db1
// is stopped); it records the writes it gets.
type vmDaemon struct {
	mu      sync.Mutex
	updates []api.UpdateVM
	removes []string // body of each DELETE
	adds    []api.AddVM
}

func (d *vmDaemon) start(t *testing.T) string {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+api.PathVMs+"/{name}", func(w http.ResponseWriter, r *http.Request) {
		v := api.VMDefinition{Name: r.PathValue("name"), MemoryMiB: 512, VCPUs: 1, Disks: []string{}, XML: web1XML, PlacedOn: "host2", State: "running",
			Observed: []api.VMObserved{{Host: "host2", State: "running", Since: time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)}}}
		if v.Name == "db1" {
			v.PlacedOn, v.State, v.Observed = "", "stopped", []api.VMObserved{}
		}
		_ = json.NewEncoder(w).Encode(v)
	})
	mux.HandleFunc("POST "+api.PathVMs+"/{name}"+api.PathVMUpdateSuffix, func(w http.ResponseWriter, r *http.Request) {
		var req api.UpdateVM
		_ = json.NewDecoder(r.Body).Decode(&req)
		d.mu.Lock()
		d.updates = append(d.updates, req)
		d.mu.Unlock()
		msg := "definition of web1 replaced"
		if req.DryRun {
			msg = "dry run: the new definition is valid; nothing changed"
		}
		_ = json.NewEncoder(w).Encode(api.VMUpdateResult{VM: "web1", Changed: true, DryRun: req.DryRun, Message: msg})
	})
	mux.HandleFunc("DELETE "+api.PathVMs+"/{name}", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		d.mu.Lock()
		d.removes = append(d.removes, string(b))
		d.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET "+api.PathVMs+"/{name}"+api.PathVMDomainSuffix, func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(api.DomainDiff{VM: "web1", Host: "host2", State: "running",
			Diff: "--- web1 (replicated)\n+++ web1 on host2 (running, libvirt)\n@@ -2,1 +2,1 @@\n-  <memory unit=\"KiB\">1048576</memory>\n+  <memory unit=\"KiB\">524288</memory>\n"})
	})
	mux.HandleFunc("GET "+api.PathHostAction+"/{host}/domains/{domain}"+api.PathDomainXMLSuffix, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("inactive") != "1" {
			t.Errorf("adoption read the running XML, not the persistent definition")
		}
		_ = json.NewEncoder(w).Encode(api.DomainXML{Host: r.PathValue("host"), Domain: r.PathValue("domain"), State: "running", XML: web1XML})
	})
	mux.HandleFunc("POST "+api.PathVMs, func(w http.ResponseWriter, r *http.Request) {
		var req api.AddVM
		_ = json.NewDecoder(r.Body).Decode(&req)
		d.mu.Lock()
		d.adds = append(d.adds, req)
		d.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(api.VM{Name: req.Name, Host: req.AdoptFrom, MemoryMiB: 512, VCPUs: 1})
	})
	return fakeDaemon(t, mux)
}

func writeXML(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestVMConfirmation: without a terminal, removing a running VM and
// updating a definition are refused without --yes (exit 2, naming --yes),
// and change nothing; with --yes they go ahead. Tests run without a
// terminal on stdin.
func TestVMConfirmation(t *testing.T) {
	d := &vmDaemon{}
	sock := d.start(t)
	bigger := writeXML(t, "web1.xml", web1Bigger)
	for _, tc := range []struct {
		name    string
		args    []string
		code    int
		want    string
		updates int // real (not dry-run) updates posted
		removes int
	}{
		{"remove running without --yes", []string{"vm", "remove", "web1"}, 2, "vm web1 runs on host2: removing it stops it there and undefines it. Add --yes", 0, 0},
		{"keep-running without --yes", []string{"vm", "remove", "web1", "--keep-running"}, 2, "it keeps running there, but vmha no longer restarts, moves or recovers it. Add --yes", 0, 0},
		{"remove stopped", []string{"vm", "remove", "db1"}, 0, "vm db1 removed", 0, 1},
		{"remove running with --yes", []string{"vm", "remove", "web1", "--yes"}, 0, "vm web1 removed", 0, 1},
		{"update without --yes", []string{"vm", "update", "web1", "--xml", bigger}, 2, "It keeps running on host2 with the previous definition until its next start. Add --yes", 0, 0},
		{"update --restart without --yes", []string{"vm", "update", "web1", "--xml", bigger, "--restart"}, 2, "It is shut down on host2 and started again there with the new definition. Add --yes", 0, 0},
		{"update both modes", []string{"vm", "update", "web1", "--xml", bigger, "--restart", "--at-next-start"}, 2, "exclude each other", 0, 0},
		{"update dry run", []string{"vm", "update", "web1", "--xml", bigger, "--dry-run"}, 0, "dry run", 0, 0},
		{"update with --yes", []string{"vm", "update", "web1", "--xml", bigger, "--yes"}, 0, "definition of web1 replaced", 1, 0},
		{"update name mismatch", []string{"vm", "update", "web1", "--xml", writeXML(t, "db1.xml", strings.ReplaceAll(web1Bigger, "web1", "db1"))}, 1, `domain <name> is "db1", but the VM is called "web1"`, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d.mu.Lock()
			d.updates, d.removes = nil, nil
			d.mu.Unlock()
			code, out, errOut := runCLI(append(tc.args, "--socket", sock)...)
			if code != tc.code || !strings.Contains(out+errOut, tc.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d and %q", code, out, errOut, tc.code, tc.want)
			}
			d.mu.Lock()
			defer d.mu.Unlock()
			posted := 0
			for _, u := range d.updates {
				if !u.DryRun {
					posted++
				}
			}
			if posted != tc.updates || len(d.removes) != tc.removes {
				t.Errorf("%d updates and %d removes reached the daemon, want %d and %d", posted, len(d.removes), tc.updates, tc.removes)
			}
		})
	}
	d.removes = nil
	if code, _, errOut := runCLI("vm", "remove", "web1", "--keep-running", "--yes", "--socket", sock); code != 0 || len(d.removes) != 1 || !strings.Contains(d.removes[0], `"keep_running":true`) {
		t.Errorf("remove --keep-running --yes: exit %d %s, bodies %q", code, errOut, d.removes)
	}
}

// TestVMUpdateDiffOutput: vm update shows the unified diff from the
// replicated XML to the file before anything else.
func TestVMUpdateDiffOutput(t *testing.T) {
	d := &vmDaemon{}
	sock := d.start(t)
	bigger := writeXML(t, "web1.xml", web1Bigger)
	code, out, errOut := runCLI("vm", "update", "web1", "--xml", bigger, "--dry-run", "--socket", sock)
	want := `--- web1 (replicated)
+++ ` + bigger + `
@@ -1,5 +1,5 @@
 <domain type='kvm'>
   <name>web1</name>
-  <memory unit='MiB'>512</memory>
+  <memory unit='MiB'>1024</memory>
   <vcpu>1</vcpu>
 </domain>
dry run: the new definition is valid; nothing changed
`
	if code != 0 || out != want {
		t.Errorf("exit %d, stderr %q, stdout:\n%s\nwant:\n%s", code, errOut, out, want)
	}
	if len(d.updates) != 1 || !d.updates[0].DryRun || d.updates[0].XML != web1Bigger {
		t.Errorf("posted %+v, want one dry run with the file's XML", d.updates)
	}
	same := writeXML(t, "same.xml", web1XML)
	if code, out, _ := runCLI("vm", "update", "web1", "--xml", same, "--socket", sock); code != 0 || !strings.Contains(out, "nothing to change") {
		t.Errorf("same XML: exit %d %q", code, out)
	}
}

// TestVMShowDiffAdopt: vm show --xml prints the replicated XML as is, vm
// diff prints the host's diff, and vm add --from-libvirt reads the
// domain's persistent definition from its host and adopts it there.
func TestVMShowDiffAdopt(t *testing.T) {
	d := &vmDaemon{}
	sock := d.start(t)
	if code, out, errOut := runCLI("vm", "show", "web1", "--xml", "--socket", sock); code != 0 || out != web1XML {
		t.Errorf("show --xml: exit %d %q %q", code, out, errOut)
	}
	if code, out, _ := runCLI("vm", "show", "web1", "--socket", sock); code != 0 || !strings.Contains(out, "placed on:  host2") || !strings.Contains(out, "observed:   host2 running since 2026-12-05T09:00:00Z") {
		t.Errorf("show: exit %d:\n%s", code, out)
	}
	if code, out, _ := runCLI("vm", "show", "web1", "-o", "json", "--socket", sock); code != 0 || !strings.Contains(out, `"placed_on": "host2"`) {
		t.Errorf("show -o json: exit %d:\n%s", code, out)
	}
	code, out, _ := runCLI("vm", "diff", "web1", "--socket", sock)
	if code != 0 || !strings.HasPrefix(out, "--- web1 (replicated)\n+++ web1 on host2 (running, libvirt)\n@@ -2,1 +2,1 @@\n-") {
		t.Errorf("diff: exit %d:\n%s", code, out)
	}
	if code, out, errOut := runCLI("vm", "add", "--from-libvirt", "host2:web1", "--socket", sock); code != 0 || out != "vm web1 adopted on host2, where its domain runs (512 MiB, 1 vCPU)\n" {
		t.Errorf("add --from-libvirt: exit %d %q %q", code, out, errOut)
	}
	if len(d.adds) != 1 || d.adds[0].AdoptFrom != "host2" || d.adds[0].XML != web1XML || d.adds[0].Name != "web1" {
		t.Errorf("posted %+v", d.adds)
	}
	for _, bad := range [][]string{{"vm", "add", "--from-libvirt", "host2"}, {"vm", "add", "other", "--from-libvirt", "host2:web1"}, {"vm", "add", "web1"}, {"vm", "add", "a", "b"}, {"vm", "add", "--from-libvirt", "host2:web1", "--xml", "x.xml"}} {
		if code, _, _ := runCLI(append(bad, "--socket", sock)...); code != 2 {
			t.Errorf("%v: exit %d, want 2", bad, code)
		}
	}
}
