package cluster

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/cluster/decide"
	"github.com/vmha/vmha/model"
)

// The planning questions a console asks before acting, and what the
// cluster did and does (docs/whatif.md): thin handlers around decide's
// WhatIf and Recoveries, and the moves under way with their sources'
// progress. Every one is a read: nothing here proposes anything.

// whatIfRoutes are the routes of this file, added by Handler.
func (n *Node) whatIfRoutes(add func(string, http.HandlerFunc, []Role), read []Role) {
	add("GET "+api.PathWhatIf, n.leaderRead(n.handleWhatIf), read)
	add("GET "+api.PathRecoveries, n.leaderRead(n.handleRecoveries), read)
	add("GET "+api.PathMigrations, n.leaderRead(n.handleMigrations), read)
}

// WhatIfQuery is a parsed GET /v1/whatif.
type WhatIfQuery struct {
	Fail, Standby []string
}

// ParseWhatIfQuery reads ?fail=H1,H2&standby=H3 (each also repeatable).
// Names are checked for shape here; whether they are hosts, by
// decide.WhatIf.
func ParseWhatIfQuery(q url.Values) (WhatIfQuery, error) {
	var out WhatIfQuery
	for k := range q {
		switch k {
		case "fail", "standby", "local":
		default:
			return out, &ValidationError{Field: k, Err: fmt.Errorf("unknown parameter %q: fail=HOST[,HOST...] and standby=HOST[,HOST...]", k)}
		}
	}
	list := func(field string) ([]string, error) {
		var names []string
		for _, v := range q[field] {
			for _, h := range strings.Split(v, ",") {
				h = strings.TrimSpace(h)
				if h == "" {
					return nil, &ValidationError{Field: field, Err: fmt.Errorf("an empty host name in %q", v)}
				}
				if err := model.ValidateName("host", h); err != nil {
					return nil, &ValidationError{Field: field, Err: err}
				}
				if !contains(names, h) {
					names = append(names, h)
				}
			}
		}
		return names, nil
	}
	var err error
	if out.Fail, err = list("fail"); err != nil {
		return out, err
	}
	if out.Standby, err = list("standby"); err != nil {
		return out, err
	}
	if len(out.Fail) == 0 && len(out.Standby) == 0 {
		return out, &ValidationError{Field: "fail", Err: fmt.Errorf("what if what? give fail=HOST[,HOST...] and/or standby=HOST[,HOST...]")}
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (n *Node) handleWhatIf(w http.ResponseWriter, r *http.Request, _ []byte) {
	q, err := ParseWhatIfQuery(r.URL.Query())
	if err != nil {
		writeApplyErr(w, err)
		return
	}
	plan, err := decide.WhatIf(n.view(n.fsm.Copy(), n.members()), q.Fail, q.Standby)
	if err != nil {
		writeApplyErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, whatIfAnswer(plan))
}

// whatIfAnswer is decide's plan in the API's words.
func whatIfAnswer(p *decide.WhatIfPlan) api.WhatIf {
	out := api.WhatIf{Fail: nonNil(p.Fail), Standby: nonNil(p.Standby), Actions: []api.WhatIfAction{}, Stranded: []api.WhatIfStranded{}, Hosts: []api.WhatIfHost{}}
	for _, a := range p.Actions {
		out.Actions = append(out.Actions, api.WhatIfAction{VM: a.VM, Action: a.Action, From: a.From, To: a.To, How: a.How, Why: a.Why, Step: a.Step})
	}
	for _, s := range p.Stranded {
		out.Stranded = append(out.Stranded, api.WhatIfStranded{VM: s.VM, From: s.From, Why: s.Why})
	}
	for _, h := range p.Hosts {
		out.Hosts = append(out.Hosts, api.WhatIfHost{Host: h.Host, Condition: h.Condition, MemoryMiB: h.MemoryMiB, BeforeMiB: h.BeforeMiB, AfterMiB: h.AfterMiB,
			VMsBefore: h.VMsBefore, VMsAfter: h.VMsAfter, Overcommits: h.Overcommits})
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// dryRunOf is the answer of a migrate or relocate dry run that would
// commit p.
func dryRunOf(p model.Placement) api.MoveDryRun {
	how := decide.HowLive
	if p.Cold {
		how = decide.HowRestart
	}
	return api.MoveDryRun{VM: p.VM, From: p.MigrateFrom, To: p.Host, How: how, Reason: p.Reason}
}

// parseRecoveriesLimit reads ?limit=N (1..api.MaxRecoveries; default the
// maximum).
func parseRecoveriesLimit(q url.Values) (int, error) {
	for k := range q {
		if k != "limit" && k != "local" {
			return 0, &ValidationError{Field: k, Err: fmt.Errorf("unknown parameter %q: limit=N", k)}
		}
	}
	s := q.Get("limit")
	if s == "" {
		return api.MaxRecoveries, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v <= 0 {
		return 0, &ValidationError{Field: "limit", Err: fmt.Errorf("%q is not a positive number", s)}
	}
	return min(v, api.MaxRecoveries), nil
}

func (n *Node) handleRecoveries(w http.ResponseWriter, r *http.Request, _ []byte) {
	limit, err := parseRecoveriesLimit(r.URL.Query())
	if err != nil {
		writeApplyErr(w, err)
		return
	}
	var rs []decide.Recovery
	n.fsm.Read(func(s *model.State) { rs = decide.Recoveries(s.Status.Events, s, limit) })
	writeJSON(w, http.StatusOK, recoveriesAnswer(rs))
}

// recoveriesAnswer is decide's timelines in the API's words.
func recoveriesAnswer(rs []decide.Recovery) []api.Recovery {
	out := make([]api.Recovery, 0, len(rs))
	secs := func(known bool, d time.Duration) *float64 {
		if !known {
			return nil
		}
		s := d.Seconds()
		return &s
	}
	for _, r := range rs {
		ar := api.Recovery{ID: r.ID, Host: r.Host, Reason: r.Reason, LostAt: r.LostAt, FencedAt: r.FencedAt, FencedBy: r.FencedBy,
			FenceFailedAt: r.FenceFailedAt, FenceError: r.FenceError, VMs: []api.RecoveredVM{}, Running: r.Running,
			FenceSeconds: secs(r.Phases.HasFence, r.Phases.Fence), RestartSeconds: secs(r.Phases.HasRestart, r.Phases.Restart),
			TotalSeconds: secs(r.Phases.HasRestart, r.Phases.Total), Summary: r.Summary}
		for _, v := range r.VMs {
			ar.VMs = append(ar.VMs, api.RecoveredVM{VM: v.VM, Host: v.Host, PlacedAt: v.PlacedAt, RunningAt: v.RunningAt, Stranded: v.Stranded})
		}
		out = append(out, ar)
	}
	return out
}

// migrationsAsk bounds the wait for one source's progress.
const migrationsAsk = 2 * time.Second

func (n *Node) handleMigrations(w http.ResponseWriter, r *http.Request, _ []byte) {
	var moves []api.Migration
	addrs := map[string]string{}
	n.fsm.Read(func(s *model.State) {
		for _, vm := range model.SortedKeys(s.Status.Placements) {
			p := s.Status.Placements[vm]
			if p.MigrateFrom == "" {
				continue
			}
			m := api.Migration{VM: vm, MigrationID: p.MigrationID, From: p.MigrateFrom, To: p.Host, How: decide.HowLive, Since: p.Since, Reason: p.Reason}
			if p.Cold {
				m.How = decide.HowRestart
				m.Note = "a stop-and-start move: " + p.MigrateFrom + " shuts the VM down, then " + p.Host + " starts it (no transfer to follow)"
			} else if h := s.Config.Hosts[p.MigrateFrom]; h != nil {
				addrs[p.MigrateFrom] = h.APIAddr
			}
			moves = append(moves, m)
		}
	})
	jobs := n.sourceJobs(r.Context(), addrs)
	for i := range moves {
		m := &moves[i]
		if m.How != decide.HowLive {
			continue
		}
		js := jobs[m.From]
		if js.err != "" {
			m.Note = js.err
			continue
		}
		for k := range js.jobs {
			if js.jobs[k].MigrationID == m.MigrationID {
				j := js.jobs[k]
				m.Progress = &j
			}
		}
		if m.Progress == nil {
			m.Note = m.From + " reports no job for this move yet"
		}
	}
	if moves == nil {
		moves = []api.Migration{}
	}
	sort.Slice(moves, func(i, k int) bool { return moves[i].VM < moves[k].VM })
	writeJSON(w, http.StatusOK, moves)
}

// sourceAnswer is one source host's jobs, or why there are none (err).
type sourceAnswer struct {
	jobs []api.MigrationJob
	err  string
}

// sourceJobs asks every source host (host → API address) for its
// migration jobs at once, each for at most migrationsAsk. A host that
// does not answer gives its reason instead.
func (n *Node) sourceJobs(ctx context.Context, addrs map[string]string) map[string]sourceAnswer {
	out := map[string]sourceAnswer{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	set := func(host string, a sourceAnswer) {
		mu.Lock()
		out[host] = a
		mu.Unlock()
	}
	for host, addr := range addrs {
		switch {
		case host == n.cfg.NodeName && n.agent != nil:
			set(host, sourceAnswer{jobs: n.agent.Jobs()})
			continue
		case addr == "":
			set(host, sourceAnswer{err: host + " has no API address: progress unknown"})
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var jobs []api.MigrationJob
			err := n.peers.do(ctx, addr, migrationsAsk, http.MethodGet, api.PathLocalMigrations, nil, &jobs, nil)
			a := sourceAnswer{jobs: jobs}
			if err != nil {
				a = sourceAnswer{err: fmt.Sprintf("%s did not answer for its progress: %v", host, err)}
			}
			set(host, a)
		}()
	}
	wg.Wait()
	return out
}
