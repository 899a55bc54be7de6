package cluster

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/cluster/decide"
	"github.com/vmha/vmha/model"
)

// The API of the VM lifecycle (vmha vm start/stop/set/unmanage/manage,
// cleanup, failcount, relocate), the event log (vmha events) and cluster
// maintenance. Every write is proposed with the authenticated principal
// (Command.By), which the event log records.

// SetVMState sets (or with state "" clears) vm's target.
func (c *Coordinator) SetVMState(vm string, req api.VMStateRequest, by string) (*api.VMTarget, error) {
	cmd := &Command{Op: OpVMState, Name: vm, By: by, IfTarget: model.Target(req.If)}
	if req.If != "" && req.If != "-" {
		if _, err := model.ParseTarget(req.If); err != nil {
			return nil, &ValidationError{Field: "if", Err: err}
		}
	}
	if req.State != "" {
		t, err := model.ParseTarget(req.State)
		if err != nil {
			return nil, &ValidationError{Field: "state", Err: err}
		}
		cmd.VMState = &model.VMState{Target: t, By: by, At: time.Now().UTC(), Reason: strings.TrimSpace(req.Reason)}
	}
	if err := c.n.propose(cmd); err != nil {
		return nil, err
	}
	var out *api.VMTarget
	c.n.fsm.Read(func(s *model.State) {
		t := decide.TargetOf(s, c.n.compiledRules(s.Config.Rules), vm)
		out = &api.VMTarget{VM: vm, Target: t.Target, Source: t.Source, By: t.By, Reason: t.Reason}
	})
	c.log.Info().Str("vm", vm).Str("target", string(out.Target)).Str("source", out.Source).Str("by", by).Msg("vm target set")
	return out, nil
}

// Cleanup clears vm's fail counts (on host only, when set).
func (c *Coordinator) Cleanup(vm, host, by string) error {
	if host != "" {
		if err := model.ValidateName("host", host); err != nil {
			return &ValidationError{Field: "host", Err: err}
		}
	}
	if err := c.n.propose(&Command{Op: OpFailures, Names: []string{vm}, Name: host, By: by}); err != nil {
		return err
	}
	c.log.Info().Str("vm", vm).Str("host", host).Str("by", by).Msg("fail counts cleared")
	return nil
}

// SetClusterMaintenance puts the whole cluster in maintenance, or ends it.
func (c *Coordinator) SetClusterMaintenance(on bool, reason, by string) error {
	cmd := &Command{Op: OpClusterMaintenance, By: by}
	if on {
		cmd.ClusterMaintenance = &model.ClusterMaintenance{By: by, At: time.Now().UTC(), Reason: strings.TrimSpace(reason)}
	}
	if err := c.n.propose(cmd); err != nil {
		return err
	}
	c.log.Warn().Bool("maintenance", on).Str("by", by).Str("reason", reason).Msg("cluster maintenance")
	return nil
}

// Relocate moves vm cold to host to: shut down where it runs, then started
// there (vmha relocate; Proxmox's relocate, Pacemaker's move of a VM that
// cannot migrate live). The decision is decide.PlanRelocate's.
// With dryRun it answers the planned move and commits nothing.
func (c *Coordinator) Relocate(vm, to, by string, dryRun bool) (*model.Placement, error) {
	st := c.n.fsm.Copy()
	move, err := decide.PlanRelocate(c.n.view(st, c.n.members()), vm, to, by, newID("mv-"))
	if err != nil {
		return nil, err
	}
	if dryRun {
		return &move, nil
	}
	if err := c.n.propose(&Command{Op: OpPlace, By: by, Placements: []model.Placement{move}}); err != nil {
		return nil, err
	}
	c.nudge(st, move.MigrateFrom)
	c.log.Info().Str("vm", vm).Str("from", move.MigrateFrom).Str("to", to).Str("migration_id", move.MigrationID).Str("by", by).Msg("relocation committed")
	return &move, nil
}

// Failures lists the fail counts (of vm only, when set).
func (n *Node) failures(s *model.State, vm string, now time.Time) []api.Failure {
	out := []api.Failure{}
	rules := n.compiledRules(s.Config.Rules)
	for _, name := range model.SortedKeys(s.Status.Failures) {
		if vm != "" && name != vm {
			continue
		}
		threshold, timeout := decide.FailurePolicyOf(rules, name)
		for _, h := range model.SortedKeys(s.Status.Failures[name]) {
			f := s.Status.Failures[name][h]
			af := api.Failure{VM: name, Host: h, Count: f.Count, Last: f.Last, Error: f.Error, Threshold: threshold}
			if timeout > 0 {
				af.Expires = f.Last.Add(timeout)
			}
			af.Banned = threshold > 0 && f.Count >= threshold && (timeout == 0 || now.Before(af.Expires))
			out = append(out, af)
		}
	}
	return out
}

func (n *Node) handleFailures(w http.ResponseWriter, r *http.Request, _ []byte) {
	vm := r.URL.Query().Get("vm")
	var out []api.Failure
	var known bool
	n.fsm.Read(func(s *model.State) {
		_, known = s.Config.VMs[vm]
		out = n.failures(s, vm, time.Now())
	})
	if vm != "" && !known {
		writeErr(w, http.StatusNotFound, "", &NotFoundError{Kind: "vm", Name: vm})
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// EventQuery is a parsed GET /v1/events: each set field narrows the log.
type EventQuery struct {
	Since    time.Time
	After    uint64
	VM, Host string
	Recovery string
	Kind     string
	Limit    int
}

// maxEventsAnswer bounds one answer; a client follows with ?after=.
const maxEventsAnswer = 5000

// ParseEventQuery reads ?since=D|RFC3339&after=SEQ&vm=&host=&recovery=&kind=&limit=N.
func ParseEventQuery(q map[string][]string, now time.Time) (EventQuery, error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return strings.TrimSpace(v[0])
		}
		return ""
	}
	eq := EventQuery{VM: get("vm"), Host: get("host"), Recovery: get("recovery"), Kind: get("kind"), Limit: maxEventsAnswer}
	if s := get("since"); s != "" {
		if d, err := time.ParseDuration(s); err == nil && d >= 0 {
			eq.Since = now.Add(-d)
		} else if t, err := time.Parse(time.RFC3339, s); err == nil {
			eq.Since = t
		} else {
			return eq, &ValidationError{Field: "since", Err: fmt.Errorf("%q is neither a duration (90m) nor a time (2026-12-05T03:00:00Z)", s)}
		}
	}
	if s := get("after"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return eq, &ValidationError{Field: "after", Err: fmt.Errorf("%q is not an event number", s)}
		}
		eq.After = v
	}
	if s := get("limit"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v <= 0 {
			return eq, &ValidationError{Field: "limit", Err: fmt.Errorf("%q is not a positive number", s)}
		}
		eq.Limit = min(v, maxEventsAnswer)
	}
	switch eq.Kind {
	case "", model.EventVM, model.EventHost, model.EventCluster, model.EventRules, model.EventFence, model.EventRebalance:
	default:
		return eq, &ValidationError{Field: "kind", Err: fmt.Errorf("unknown kind %q: vm, host, cluster, rules, fence or rebalance", eq.Kind)}
	}
	return eq, nil
}

// Match reports whether e is one the query asks for.
func (q EventQuery) Match(e *model.Event) bool {
	switch {
	case e.Seq <= q.After, !q.Since.IsZero() && e.At.Before(q.Since):
		return false
	case q.VM != "" && (e.Kind != model.EventVM || e.Object != q.VM):
		return false
	case q.Host != "" && e.Object != q.Host && e.Host != q.Host:
		return false
	case q.Recovery != "" && e.RecoveryID != q.Recovery:
		return false
	case q.Kind != "" && e.Kind != q.Kind:
		return false
	}
	return true
}

// Select is the query's answer on log: the last Limit matching events.
func (q EventQuery) Select(log []model.Event, last uint64) api.Events {
	out := api.Events{Events: []model.Event{}, Last: last}
	if len(log) > 0 {
		out.Oldest = log[0].Seq
	}
	for i := range log {
		if q.Match(&log[i]) {
			out.Events = append(out.Events, log[i])
		}
	}
	if n := len(out.Events); n > q.Limit {
		out.Events = out.Events[n-q.Limit:]
	}
	return out
}

func (n *Node) handleEvents(w http.ResponseWriter, r *http.Request, _ []byte) {
	q, err := ParseEventQuery(r.URL.Query(), time.Now())
	if err != nil {
		writeApplyErr(w, err)
		return
	}
	var out api.Events
	n.fsm.Read(func(s *model.State) { out = q.Select(s.Status.Events, s.Status.EventSeq) })
	writeJSON(w, http.StatusOK, out)
}

// lifecycleRoutes are the routes of this file, added by Handler.
func (n *Node) lifecycleRoutes(add func(string, http.HandlerFunc, []Role), read, op []Role) {
	add("GET "+api.PathEvents, n.leaderRead(n.handleEvents), read)
	add("GET "+api.PathFailures, n.leaderRead(n.handleFailures), read)
	add("POST "+api.PathVMs+"/{name}/state", n.leaderWrite(jsonCall(func(r *http.Request, req api.VMStateRequest) (any, error) {
		return n.coord.SetVMState(r.PathValue("name"), req, actor(r, req.RequestedBy))
	})), op)
	add("POST "+api.PathVMs+"/{name}/cleanup", n.leaderWrite(jsonCall(func(r *http.Request, req api.Cleanup) (any, error) {
		return nil, n.coord.Cleanup(r.PathValue("name"), req.Host, actor(r, req.RequestedBy))
	})), op)
	add("POST "+api.PathVMs+"/{name}/relocate", n.leaderWrite(jsonCall(func(r *http.Request, req api.MigrateRequest) (any, error) {
		if req.To == "" {
			return nil, &ValidationError{Field: "to", Err: errors.New("relocate needs a target host")}
		}
		p, err := n.coord.Relocate(r.PathValue("name"), req.To, actor(r, req.RequestedBy), req.DryRun)
		if err != nil || !req.DryRun {
			return nilIfErr(p, err)
		}
		return dryRunOf(*p), nil
	})), op)
	add("POST "+api.PathAlertTest, n.leaderWrite(jsonCall(n.handleAlertTest)), op)
	add("POST "+api.PathClusterMaintenance, n.leaderWrite(jsonCall(func(r *http.Request, req api.HostOp) (any, error) {
		return nil, n.coord.SetClusterMaintenance(req.On, req.Reason, actor(r, req.RequestedBy))
	})), op)
}
