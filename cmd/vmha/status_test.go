package main

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/model"
)

func statusDaemon(t *testing.T, s api.Status) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+api.PathStatus, func(w http.ResponseWriter, _ *http.Request) { _ = json.NewEncoder(w).Encode(s) })
	return fakeDaemon(t, mux)
}

func quorate() api.Quorum {
	return api.Quorum{Voters: []string{"h1", "h2", "h3"}, AliveVoters: []string{"h1", "h2", "h3"}, Needed: 2, Quorate: true, Explanation: "3 of 3 voters alive, 2 needed; h1 decides"}
}

func issue(sev, code, msg string) api.Issue {
	return api.Issue{Severity: sev, Code: code, Message: msg}
}

func TestStatusCheckExitCodes(t *testing.T) {
	running := []api.VM{{Name: "web1", Host: "h1", State: "running", Actual: "running", Target: model.TargetStarted}, {Name: "web2", Host: "h2", Actual: "shutoff", Target: model.TargetStopped}}
	ok := api.Status{Leader: "h1", Quorum: quorate(), Hosts: []api.Host{{Name: "h1"}, {Name: "h2"}, {Name: "h3"}}, VMs: running,
		Notices: []api.Issue{issue(api.SeverityInfo, "vm_stopped", "vm web2 is kept stopped")}}
	warn := ok
	warn.ProblemDetails = []api.Issue{issue(api.SeverityWarning, "no_fence_device", "host h3 has no fence device | really")}
	crit := ok
	crit.Quorum = api.Quorum{Voters: []string{"h1", "h2", "h3"}, AliveVoters: []string{"h1"}, Needed: 2, Explanation: "no quorum: 1 of 3 voters reachable"}
	crit.ProblemDetails = []api.Issue{issue(api.SeverityCritical, "no_quorum", crit.Quorum.Explanation), warn.ProblemDetails[0]}
	tests := []struct {
		name string
		sock string
		code int
		want string
	}{
		{"ok", statusDaemon(t, ok), 0, "VMHA OK - 3 of 3 voters alive, leader h1; 3 hosts, 2 VMs, 1 running; 1 notice | hosts=3 vms=2 running=1 critical=0 warning=0 notices=1\n"},
		{"warning", statusDaemon(t, warn), 1, "VMHA WARNING - 1 problem: host h3 has no fence device / really | hosts=3 vms=2 running=1 critical=0 warning=1 notices=1\n"},
		{"critical", statusDaemon(t, crit), 2, "VMHA CRITICAL - 2 problems: (1) no quorum: 1 of 3 voters reachable (2) host h3 has no fence device / really | hosts=3 vms=2 running=1 critical=1 warning=1 notices=1\n"},
		{"unknown", filepath.Join(t.TempDir(), "none.sock"), 3, "VMHA UNKNOWN - cannot reach the cluster: cannot reach vmhad"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCLI("--socket", tt.sock, "status", "--check")
			if code != tt.code || !strings.HasPrefix(out, tt.want) || errOut != "" || strings.Count(out, "\n") != 1 {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d and %q", code, out, errOut, tt.code, tt.want)
			}
		})
	}
	// Plain status: exit 2 without quorum, after printing it all.
	code, out, errOut := runCLI("--socket", tests[2].sock, "status")
	if code != 2 || !strings.Contains(out, "Problems:") || !strings.Contains(errOut, "vmha: no quorum: 1 of 3 voters reachable") {
		t.Fatalf("status without quorum: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if code, _, _ := runCLI("--socket", tests[2].sock, "status", "-o", "json"); code != 2 {
		t.Fatalf("status -o json without quorum: exit %d", code)
	}
	if code, _, errOut := runCLI("--socket", tests[1].sock, "status"); code != 0 || errOut != "" {
		t.Fatalf("status with a warning: exit %d, stderr %q", code, errOut)
	}
	for _, args := range [][]string{{"--check", "--watch"}, {"--interval", "1s"}, {"--watch", "--interval", "0s"}, {"--check", "-o", "json"}} {
		if code, _, errOut := runCLI(append([]string{"--socket", tests[0].sock, "status"}, args...)...); code != 2 || !strings.Contains(errOut, "vmha: --") {
			t.Errorf("status %v: exit %d, stderr %q; want a usage error", args, code, errOut)
		}
	}
}

func TestStatusText(t *testing.T) {
	at := time.Now().Add(-time.Hour)
	age := func(s int64) *int64 { return &s }
	s := api.Status{Leader: "h1", Term: 4, Quorum: quorate(),
		ClusterMaintenance: &model.ClusterMaintenance{By: "carol", At: at, Reason: "switch upgrade"},
		Hosts: []api.Host{
			{Name: "h1", Member: "alive", State: model.HostAlive, Leader: true, Voter: true, Admin: []api.AdminState{{State: api.AdminDrained, Since: at, By: "alice", Done: true}, {State: api.AdminClusterMaintenance}}},
			{Name: "h2", Member: "alive", State: model.HostAlive, Voter: true, ReportStale: true, ReportAgeSeconds: age(45), Admin: []api.AdminState{{State: api.AdminMaintenance, Since: at, By: "bob", Reason: "bios"}}},
			{Name: "h3", Member: "alive", State: model.HostAlive, Voter: true, Admin: []api.AdminState{{State: api.AdminStandby}, {State: api.AdminStorageMaintenance, Storage: "vmstore", Since: at, By: "dan"}}},
		},
		VMs: []api.VM{
			{Name: "run", Host: "h3", Target: model.TargetStarted, TargetSource: "default", Actual: "running", ActualHost: "h3", ActualAgeSeconds: age(3*3600 + 12*60)},
			{Name: "stale", Host: "h2", Target: model.TargetStarted, TargetSource: "default", Actual: "running", ActualHost: "h2", ActualAgeSeconds: age(7200), ReportStale: true, ReportAgeSeconds: age(45)},
			{Name: "kept", Target: model.TargetStopped, TargetSource: "operator", TargetBy: "alice", Actual: "shutoff", ActualHost: "h3", ActualAgeSeconds: age(20)},
			{Name: "free", Target: model.TargetIgnored, TargetSource: "rules", Actual: "running", ActualHost: "h3", ActualAgeSeconds: age(60)},
			{Name: "flaky", Host: "h3", Target: model.TargetStarted, TargetSource: "default", Actual: "running", ActualHost: "h3", ActualAgeSeconds: age(5),
				Failures: []api.VMFailure{{Host: "h2", Count: 3, Last: at, LastAgeSeconds: 120, Error: "boom"}}, Admin: []api.AdminState{{State: api.AdminClusterMaintenance}}},
		},
		ProblemDetails: []api.Issue{issue(api.SeverityCritical, "vm_not_running", "vm x should run"), issue(api.SeverityWarning, "vm_failures", "vm flaky failed 3×")},
		Notices:        []api.Issue{issue(api.SeverityInfo, "host_drained", "host h1 is drained")},
	}
	code, out, _ := runCLI("--socket", statusDaemon(t, s), "status")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	hm := at.Local().Format("15:04")
	if at.Local().Day() != time.Now().Day() {
		hm = at.Local().Format("2006-01-02 15:04")
	}
	for _, w := range []string{
		"CLUSTER IN MAINTENANCE since " + hm + " by carol (switch upgrade): nothing is started, stopped, moved or fenced\n",
		"drained since " + hm + " by alice, cluster maintenance",
		"alive, last report 45s ago",
		"maintenance since " + hm + " by bob (bios)",
		"standby (cluster.yaml), storage maintenance of vmstore since " + hm + " by dan",
		"TARGET", "ACTUAL",
		"running 3h12m",
		"running? last report 45s ago",
		"stopped (by alice)",
		"shut off 20s on h3",
		"unmanaged (cluster.yaml)",
		"started [cluster maintenance]",
		"failed 3× on h2, last 2m ago: boom",
		"Problems:\n  CRITICAL  vm x should run\n  WARNING   vm flaky failed 3×\n",
		"Notices:\n  - host h1 is drained\n",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("status lacks %q:\n%s", w, out)
		}
	}
}

// TestStatusWatch: off a terminal, --watch prints a block when the status
// changes, not when only its clock moves, and ends without an error when
// its context does (Ctrl-C).
func TestStatusWatch(t *testing.T) {
	one := api.Status{Leader: "h1", Quorum: quorate(), At: time.Now(), VMs: []api.VM{{Name: "web1", Host: "h1", Actual: "running", Target: model.TargetStarted}}}
	same := one
	same.At = one.At.Add(time.Second)
	two := one
	two.VMs = []api.VM{{Name: "web1", Host: "h2", Actual: "running", Target: model.TargetStarted}}
	for _, output := range []string{"text", "json"} {
		t.Run(output, func(t *testing.T) {
			g, out := followGlobals(t, output, map[string][]any{api.PathStatus: {one, same, two}})
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			if err := watchStatus(ctx, g, 20*time.Millisecond, false); err != nil {
				t.Fatal(err)
			}
			text := out.String()
			if output == "text" {
				if n := strings.Count(text, "--- "); n != 2 || strings.Count(text, "Leader: h1") != 2 || strings.Contains(text, "\033[") {
					t.Fatalf("%d blocks, want 2:\n%s", n, text)
				}
				return
			}
			dec := json.NewDecoder(strings.NewReader(text))
			var hosts []string
			for dec.More() {
				var s api.Status
				if err := dec.Decode(&s); err != nil {
					t.Fatal(err)
				}
				hosts = append(hosts, s.VMs[0].Host)
			}
			if strings.Join(hosts, ",") != "h1,h2" {
				t.Fatalf("json blocks for hosts %v, want h1,h2:\n%s", hosts, text)
			}
		})
	}
	// On a terminal, every read redraws the screen.
	g, out := followGlobals(t, "text", map[string][]any{api.PathStatus: {one}})
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := watchStatus(ctx, g, 20*time.Millisecond, true); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), "\033[H\033[2J"); n < 2 {
		t.Fatalf("%d redraws on a terminal", n)
	}
}
