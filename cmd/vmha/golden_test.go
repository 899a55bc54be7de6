package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/model"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/golden/ from what the CLI prints")

// goldenAt is the clock of the golden answers.
var goldenAt = time.Date(2026, 12, 5, 3, 0, 0, 0, time.UTC)

// goldenDaemon serves one canned answer per read the golden outputs come
// from, as a three-host cluster with a failed host would give them.
func goldenDaemon(t *testing.T) string {
	t.Helper()
	at := func(m int) time.Time { return goldenAt.Add(time.Duration(m) * time.Minute) }
	status := api.Status{
		Node: "host1", Leader: "host1", Term: 4, At: at(0),
		Quorum: api.Quorum{Voters: []string{"host1", "host2", "host3"}, AliveVoters: []string{"host1", "host2"}, Needed: 2, Quorate: true, Explanation: "2 of 3 voters alive, 2 needed"},
		Hosts: []api.Host{
			{Name: "host1", Member: "alive", State: model.HostAlive, Since: at(-60), Leader: true, Voter: true, APIAddr: "10.0.0.1:7948", MemoryMiB: 65536, CPUs: 16, UsedMiB: 6144, VMs: []string{"db1", "web1"}, FenceDev: "ipmi"},
			{Name: "host2", Member: "alive", State: model.HostAlive, Since: at(-60), Voter: true, APIAddr: "10.0.0.2:7948", MemoryMiB: 65536, CPUs: 16, UsedMiB: 2048, VMs: []string{"web2"}, FenceDev: "ipmi"},
			{Name: "host3", Member: "failed", State: model.HostFenced, Reason: "fenced over ipmi", Since: at(-5), Voter: true, APIAddr: "10.0.0.3:7948", MemoryMiB: 65536, CPUs: 16, FenceDev: "ipmi"},
		},
		VMs: []api.VM{
			{Name: "db1", Host: "host1", State: "running", Since: at(-4), Prefer: "host3", MemoryMiB: 4096, VCPUs: 4, Reason: "restarted after host3 was fenced", Generation: 7},
			{Name: "web1", Host: "host1", State: "running", Since: at(-60), MemoryMiB: 2048, VCPUs: 2, Reason: "placed", Generation: 2},
			{Name: "web2", Host: "host2", State: "running", Since: at(-60), MemoryMiB: 2048, VCPUs: 2, Reason: "placed", Generation: 2, PinnedTo: "host2"},
		},
		Problems:       []string{"host3 is fenced: its VMs run elsewhere; vmha host online host3 once it is repaired"},
		ProblemDetails: []api.Issue{{Code: "host_fenced", Severity: api.SeverityWarning, Message: "host3 is fenced: its VMs run elsewhere; vmha host online host3 once it is repaired", Host: "host3"}},
		Security:       api.Security{MutualTLS: true, GossipEncrypted: true, Explanation: "mutual TLS and encrypted gossip"},
	}
	events := api.Events{Last: 3, Oldest: 1, Events: []model.Event{
		{Seq: 1, At: at(-6), Kind: "host", Object: "host3", Action: "lost", Principal: "cluster", Reason: "no gossip for 15s", Host: "host3", RecoveryID: "r1"},
		{Seq: 2, At: at(-5), Kind: "fence", Object: "host3", Action: "fence", Result: "ok", Principal: "cluster", Host: "host3", RecoveryID: "r1"},
		{Seq: 3, At: at(-4), Kind: "vm", Object: "db1", Action: "start", Result: "ok", Principal: "cluster", Host: "host1", RecoveryID: "r1"},
	}}
	failures := []api.Failure{
		{VM: "db1", Host: "host2", Count: 3, Last: at(-4), Error: "define: not enough memory", Threshold: 3, Banned: true, Expires: at(6)},
	}
	rules := []api.RulesVersion{
		{Version: 1, By: "admin", At: at(-120), Size: 120, Summary: "first version"},
		{Version: 2, By: "admin", At: at(-30), Size: 180, Summary: "+ anti-affinity web", Note: "spread the web servers", Current: true},
	}
	fences := []model.FenceRecord{
		{RecoveryID: "r1", Host: "host3", Level: 1, Device: "ipmi", Action: "off", Requester: "host1", Started: at(-5), Duration: 2500 * time.Millisecond, OK: true, Before: "on", After: "off"},
	}
	tokens := []api.Token{
		{ID: "3f2a9c01b7de", Owner: "alice", Role: "operator", Created: at(-600), Expires: at(-120), CreatedBy: "root (uid 0) on host1", Comment: "web console", Expired: true},
		{ID: "9b01c4d2e3f4", Owner: "auditor", Role: "readonly", Created: at(-60), Expires: at(43140), CreatedBy: "admin (operator certificate)"},
	}
	whatIf := api.WhatIf{Fail: []string{"host2"}, Standby: []string{},
		Actions:  []api.WhatIfAction{{VM: "web2", Action: "restart", From: "host2", To: "host1", How: "restart", Why: "restarted on host1 once host2 is fenced: the best score"}},
		Stranded: []api.WhatIfStranded{{VM: "db2", From: "host2", Why: "no host has 8192 MiB free"}},
		Hosts: []api.WhatIfHost{
			{Host: "host1", Condition: "usable", MemoryMiB: 65536, BeforeMiB: 6144, AfterMiB: 8192, VMsBefore: 2, VMsAfter: 3},
			{Host: "host2", Condition: "failed", MemoryMiB: 65536, BeforeMiB: 2048, VMsBefore: 1},
		}}
	fenceS, restartS, totalS := 2.5, 1.0, 3.5
	recoveries := []api.Recovery{{ID: "r1", Host: "host3", Reason: "no gossip for 15s", LostAt: at(-6), FencedAt: at(-6).Add(2500 * time.Millisecond), FencedBy: "device ipmi",
		VMs:     []api.RecoveredVM{{VM: "db1", Host: "host1", PlacedAt: at(-6).Add(2600 * time.Millisecond), RunningAt: at(-6).Add(3500 * time.Millisecond)}},
		Running: 1, FenceSeconds: &fenceS, RestartSeconds: &restartS, TotalSeconds: &totalS,
		Summary: "recovered 1/1 VMs from host3 in 3.5 s (fence 2.5 s, restart 1.0 s)"}}
	mux := http.NewServeMux()
	for path, v := range map[string]any{
		api.PathStatus: status, api.PathEvents: events, api.PathFailures: failures,
		api.PathRulesHistory: rules, api.PathFenceHistory: fences,
		api.PathWhatIf: whatIf, api.PathRecoveries: recoveries, api.PathTokens: tokens,
	} {
		mux.HandleFunc("GET "+path, func(w http.ResponseWriter, _ *http.Request) { _ = json.NewEncoder(w).Encode(v) })
	}
	return fakeDaemon(t, mux)
}

// TestGoldenJSON: the -o json documents of the main read commands, byte
// for byte, against testdata/golden/*.json: a change of the contract
// (README, "JSON output") shows as a diff here. go test -run TestGoldenJSON
// -update rewrites the files; review the diff, and bump jsonVersion when
// a field is renamed, removed or changes its type or meaning.
func TestGoldenJSON(t *testing.T) {
	sock := goldenDaemon(t)
	for _, c := range []struct {
		name string
		args []string
	}{
		{"status", []string{"status"}},
		{"vm-list", []string{"vm", "list"}},
		{"events", []string{"events"}},
		{"vm-failcount", []string{"vm", "failcount"}},
		{"rules-history", []string{"rules", "history"}},
		{"fence-history", []string{"fence", "history"}},
		{"token-list", []string{"token", "list"}},
		{"whatif", []string{"whatif", "--fail", "host2"}},
		{"recoveries", []string{"recoveries"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := runCLI(append([]string{"--socket", sock, "-o", "json"}, c.args...)...)
			if code != 0 {
				t.Fatalf("vmha %v -o json: exit %d\n%s", c.args, code, errOut)
			}
			golden := filepath.Join("testdata", "golden", c.name+".json")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (go test ./cmd/vmha -run TestGoldenJSON -update writes it)", err)
			}
			if !bytes.Equal([]byte(out), want) {
				var d bytes.Buffer
				writeUnified(&d, golden, "vmha "+strings.Join(c.args, " ")+" -o json", string(want), out, 3)
				t.Errorf("the output differs from %s (-update rewrites it):\n%s", golden, d.String())
			}
			// The contract: an object carries json_version first, an array
			// stays an array.
			var doc any
			if err := json.Unmarshal([]byte(out), &doc); err != nil {
				t.Fatal(err)
			}
			if obj, ok := doc.(map[string]any); ok && obj["json_version"] != float64(jsonVersion) {
				t.Errorf("the object has json_version %v, want %d", obj["json_version"], jsonVersion)
			}
		})
	}
}
