package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/vmha/vmha/api"
)

// vmha whatif and vmha recoveries print the plan and the timelines for
// people; bad flags are usage errors that never reach vmhad.
func TestWhatIfText(t *testing.T) {
	sock := goldenDaemon(t)
	for _, c := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"whatif", "--fail", "host2"}, 0, []string{"If host2 failed now:", "web2: restarted on host1 (from host2, once it is fenced)", "db2 (on host2): no host has 8192 MiB free", "host2  failed"}},
		{[]string{"whatif"}, 2, []string{"--fail HOST and/or --standby HOST"}},
		{[]string{"recoveries"}, 0, []string{"r1 host3: recovered 1/1 VMs from host3 in 3.5 s (fence 2.5 s, restart 1.0 s)", "db1: placed on host1 at 2026-12-05 02:54:02.600Z, running at 2026-12-05 02:54:03.500Z"}},
	} {
		code, out, errOut := runCLI(append([]string{"--socket", sock}, c.args...)...)
		if code != c.code {
			t.Errorf("vmha %v: exit %d, want %d\n%s%s", c.args, code, c.code, out, errOut)
		}
		for _, w := range c.want {
			if !strings.Contains(out+errOut, w) {
				t.Errorf("vmha %v: no %q in\n%s%s", c.args, w, out, errOut)
			}
		}
	}
}

// --dry-run asks the same call with dry_run and prints its answer.
func TestMoveDryRunFlags(t *testing.T) {
	var got []api.MigrateRequest
	mux := http.NewServeMux()
	for _, call := range []string{"migrate", "relocate"} {
		mux.HandleFunc("POST "+api.PathVMs+"/{name}/"+call, func(w http.ResponseWriter, r *http.Request) {
			var req api.MigrateRequest
			b, _ := io.ReadAll(r.Body)
			_ = json.Unmarshal(b, &req)
			got = append(got, req)
			how := "live"
			if call == "relocate" {
				how = "restart"
			}
			_ = json.NewEncoder(w).Encode(api.MoveDryRun{VM: r.PathValue("name"), From: "host1", To: "host2", How: how, Reason: "requested"})
		})
	}
	sock := fakeDaemon(t, mux)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"migrate", "web1", "--dry-run"}, "dry run: web1 would move from host1 to host2 (moved live), nothing done"},
		{[]string{"relocate", "web1", "--to", "host2", "--dry-run"}, "(shut down there and started on the target)"},
		{[]string{"migrate", "web1", "--dry-run", "-o", "json"}, `"how": "live"`},
	} {
		code, out, errOut := runCLI(append([]string{"--socket", sock}, c.args...)...)
		if code != 0 || !strings.Contains(out, c.want) {
			t.Errorf("vmha %v: exit %d %q %q, want %q", c.args, code, out, errOut, c.want)
		}
	}
	if len(got) != 3 || !got[0].DryRun || !got[1].DryRun || got[1].To != "host2" {
		t.Fatalf("requests %+v", got)
	}
	if code, _, errOut := runCLI("--socket", sock, "migrate", "web1", "--dry-run", "--wait"); code != 2 || !strings.Contains(errOut, "--dry-run moves nothing") {
		t.Fatalf("--dry-run --wait: exit %d %s", code, errOut)
	}
}
