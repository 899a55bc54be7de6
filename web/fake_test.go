package web

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/model"
	"github.com/vmha/vmha/placement"
)

// fakeCluster is a cluster's API in memory: a status, an event log, and a
// record of the calls made and by whom. It stands in where no real
// cluster can (unit tests, the 1,000 × 50,000 benchmark); the lab's
// browser test drives the real one.
type fakeCluster struct {
	mu     sync.Mutex
	st     *api.Status
	events []model.Event
	tokens map[string]Identity // token → identity
	calls  []string            // "METHOD path by NAME"
}

const (
	opToken = "vmha_op0000000001_secret-operator"
	roToken = "vmha_ro0000000002_secret-readonly"
)

func newFakeCluster(hosts, vms int) *fakeCluster {
	st := &api.Status{Node: "host1", Leader: "host1", Term: 3, At: time.Now(),
		Quorum: api.Quorum{Quorate: true, Needed: 2, Explanation: "3 of 3 voters alive (2 needed)"}}
	for i := 1; i <= hosts; i++ {
		st.Hosts = append(st.Hosts, api.Host{Name: fmt.Sprintf("host%d", i), Member: "alive", State: model.HostAlive, Leader: i == 1, Voter: i <= 5,
			MemoryMiB: 262144, CPUs: 64, FenceDevices: []api.FenceDeviceInfo{{Name: "bmc", Type: "ipmi", Level: 1, Address: "10.0.0.1", Port: 623}},
			FenceCheck: &api.FenceCheck{OK: true, Power: "on"}, Attributes: map[string]string{"rack": "r1"}})
	}
	for i := 1; i <= vms; i++ {
		h := &st.Hosts[(i-1)%hosts]
		v := api.VM{Name: fmt.Sprintf("vm%05d", i), Host: h.Name, State: "running", Actual: "running", ActualHost: h.Name,
			MemoryMiB: 2048, VCPUs: 2, Target: model.TargetStarted, TargetSource: "default", Generation: uint64(i)}
		h.VMs = append(h.VMs, v.Name)
		h.UsedMiB += v.MemoryMiB
		st.VMs = append(st.VMs, v)
	}
	return &fakeCluster{st: st, tokens: map[string]Identity{
		opToken: {Name: "alice", Role: RoleOperator, TokenID: "op0000000001"},
		roToken: {Name: "bob", Role: RoleReadOnly, TokenID: "ro0000000002"},
	}, events: []model.Event{{Seq: 1, At: time.Now(), Kind: model.EventHost, Object: "host1", Action: "joined", Principal: model.PrincipalCluster}}}
}

// backend is the fake as the console's Backend.
type fakeBackend struct{ c *fakeCluster }

func (b fakeBackend) Self() string { return "host1" }

func (b fakeBackend) Login(token string) (Identity, error) {
	b.c.mu.Lock()
	defer b.c.mu.Unlock()
	if id, ok := b.c.tokens[token]; ok {
		return id, nil
	}
	return Identity{}, ErrBadToken
}

func (b fakeBackend) Check(tokenID string) (Identity, bool) {
	b.c.mu.Lock()
	defer b.c.mu.Unlock()
	for _, id := range b.c.tokens {
		if id.TokenID == tokenID {
			return id, true
		}
	}
	return Identity{}, false
}

func (b fakeBackend) API(id Identity) *api.Client {
	return api.NewHandlerClient(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.c.serve(w, r, id)
	}), "fake")
}

func (c *fakeCluster) revoke(token string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.tokens, token)
}

func (c *fakeCluster) callList() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.calls...)
}

func writeJSONTest(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// serve answers the API calls the console makes. Writes need the
// operator role, as the real API's do.
func (c *fakeCluster) serve(w http.ResponseWriter, r *http.Request, id Identity) {
	body, _ := io.ReadAll(r.Body)
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.Method != http.MethodGet {
		c.calls = append(c.calls, r.Method+" "+r.URL.Path+" by "+id.Name+" "+string(body))
		if id.Role != RoleOperator {
			writeJSONTest(w, http.StatusForbidden, api.Error{Error: id.Name + " may not " + r.Method + " " + r.URL.Path + " (needs the operator role)"})
			return
		}
	}
	p := r.URL.Path
	switch {
	case p == api.PathStatus:
		st := *c.st
		st.At = time.Now()
		writeJSONTest(w, http.StatusOK, &st)
	case p == api.PathEvents:
		writeJSONTest(w, http.StatusOK, api.Events{Events: append([]model.Event(nil), c.events...), Last: uint64(len(c.events))})
	case strings.HasPrefix(p, api.PathExplain+"/"):
		vm := strings.TrimPrefix(p, api.PathExplain+"/")
		writeJSONTest(w, http.StatusOK, placement.Explanation{VM: vm, Host: "host1", Reason: "highest score", Hosts: []placement.HostExplanation{{Host: "host1", Eligible: true, Score: 100, Terms: []placement.Term{{Source: "prefer", Score: 100}}}}})
	case strings.HasSuffix(p, "/migrate") && r.Method == http.MethodPost:
		var req map[string]any
		_ = json.Unmarshal(body, &req)
		vm := strings.TrimSuffix(strings.TrimPrefix(p, api.PathVMs+"/"), "/migrate")
		to, _ := req["to"].(string)
		if to == "" {
			to = "host2"
		}
		if dry, _ := req["dry_run"].(bool); dry {
			writeJSONTest(w, http.StatusOK, movePlan{VM: vm, From: "host1", To: to, How: "live"})
			return
		}
		writeJSONTest(w, http.StatusAccepted, map[string]string{"vm": vm, "to": to})
	case p == api.PathRecoveries:
		f := 0.4
		writeJSONTest(w, http.StatusOK, []api.Recovery{{ID: "r1", Host: "host2", LostAt: time.Now().Add(-time.Minute), FencedAt: time.Now().Add(-59 * time.Second), FenceSeconds: &f,
			VMs: []api.RecoveredVM{{VM: "vm00002", Host: "host1", RunningAt: time.Now().Add(-58 * time.Second)}}, Running: 1, Summary: "recovered 1/1 VMs from host2 in 2.0 s (fence 0.4 s, restart 1.6 s)"}})
	case p == api.PathMigrations:
		writeJSONTest(w, http.StatusOK, []api.Migration{{VM: "vm00003", From: "host3", To: "host1", How: "live",
			Progress: &api.MigrationJob{Phase: "pre-copy", Percent: 42, DataTotal: 2 << 30, DataRemaining: 1 << 30, Throughput: 100 << 20, ExpectedDowntime: 30 * time.Millisecond}}})
	case p == api.PathRebalance && r.Method == http.MethodGet:
		writeJSONTest(w, http.StatusOK, []model.Rebalance{})
	case p == api.PathRebalance:
		writeJSONTest(w, http.StatusOK, model.Rebalance{Before: 10, Planned: 8, Moves: []model.RebalanceMove{{VM: "vm00004", From: "host1", To: "host3", Gain: 2, Step: 1}}})
	case p == api.PathWhatIf:
		fail := r.URL.Query().Get("fail")
		if fail == "nohost" {
			writeJSONTest(w, http.StatusBadRequest, api.Error{Error: `fail: unknown host "nohost"`, Field: "fail"})
			return
		}
		writeJSONTest(w, http.StatusOK, api.WhatIf{Fail: []string{fail}, Actions: []api.WhatIfAction{{VM: "vm00001", Action: "restart", From: fail, To: "host2", How: "restart", Why: "best score", Step: 1}},
			Hosts: []api.WhatIfHost{{Host: "host2", Condition: "usable", MemoryMiB: 8192, BeforeMiB: 2048, AfterMiB: 4096, VMsBefore: 1, VMsAfter: 2}}})
	case strings.HasSuffix(p, "/state") && r.Method == http.MethodPost:
		var req api.VMStateRequest
		_ = json.Unmarshal(body, &req)
		writeJSONTest(w, http.StatusOK, api.VMTarget{VM: strings.TrimSuffix(strings.TrimPrefix(p, api.PathVMs+"/"), "/state"), Target: model.Target(req.State), Source: "operator"})
	default:
		writeJSONTest(w, http.StatusNotFound, api.Error{Error: "no API call " + r.Method + " " + p})
	}
}
