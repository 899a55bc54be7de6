package cluster

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/cluster/command"
	"github.com/vmha/vmha/cluster/decide"
	"github.com/vmha/vmha/cluster/statemachine"
	"github.com/vmha/vmha/clusterspec"
	"github.com/vmha/vmha/model"
	"github.com/vmha/vmha/placement"
)

// Rules as a workflow: every applied text is a version in the replicated
// state (Status.RulesHistory), a change may be a compare-and-set on the
// version it was based on, and a dry run answers what the change would do
// to the running cluster, computed here on the leader with the placement
// engine the pass uses (decide.EngineInput, placement.Solve), so that the
// preview and the cluster cannot disagree.

// maxRulesNote bounds the note kept with a version.
const maxRulesNote = 200

func (n *Node) handleGetRules(w http.ResponseWriter, _ *http.Request, _ []byte) {
	var r api.Rules
	n.fsm.Read(func(s *model.State) {
		r.YAML = s.Config.Rules
		if v, ok := s.Status.RulesVersionNow(); ok {
			r.Version, r.By, r.At = v.Version, v.By, v.At
		}
	})
	writeJSON(w, http.StatusOK, r)
}

// handleSetRules replaces the placement rules (or with dry_run, answers
// what replacing them would do, and changes nothing). The recorded author
// of the version is the authenticated principal.
func (n *Node) handleSetRules(w http.ResponseWriter, r *http.Request, body []byte) {
	var req api.Rules
	if err := decode(body, &req); err != nil {
		writeErr(w, http.StatusBadRequest, "", err)
		return
	}
	based, field, err := checkRulesRequest(&req)
	if err != nil {
		writeErr(w, http.StatusBadRequest, field, err)
		return
	}
	// Check first so that bad rules or a stale version never reach the
	// log; apply checks again, deterministically.
	st := n.fsm.Copy()
	if err := statemachine.CheckRulesVersion(st, based); err != nil {
		writeApplyErr(w, err)
		return
	}
	if req.YAML != "" {
		if _, err := checkRules(st, req.YAML); err != nil {
			writeApplyErr(w, err)
			return
		}
	}
	if req.DryRun {
		plan, err := planRulesChange(n.view(st, n.members()), req.YAML)
		if err != nil {
			writeApplyErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, plan)
		return
	}
	by := actor(r, "")
	if err := n.propose(&Command{Op: OpSetRules, Rules: &req.YAML, By: by, Why: req.Note, RulesVersion: based}); err != nil {
		writeApplyErr(w, err)
		return
	}
	prev, _ := st.Status.RulesVersionNow()
	out := api.RulesPlan{Version: prev.Version, Changed: req.YAML != st.Config.Rules,
		Summary: clusterspec.Summarize(st.Config.Rules, req.YAML), Actions: []api.RulesAction{}}
	n.fsm.Read(func(s *model.State) {
		if v, ok := s.Status.RulesVersionNow(); ok {
			out.Applied = v.Version
		}
	})
	n.log.Info().Str("by", by).Int("version", out.Applied).Int("bytes", len(req.YAML)).Str("summary", out.Summary).Msg("placement rules replaced")
	n.coord.poke()
	writeJSON(w, http.StatusOK, out)
}

// checkRulesRequest checks a rules change's options and returns the
// command's RulesVersion; the error names the field.
func checkRulesRequest(req *api.Rules) (int, string, error) {
	switch {
	case req.Version != 0:
		return 0, "version", errors.New("version is part of the answer; to change the rules only if they are still that version, send if_version")
	case req.By != "" || !req.At.IsZero():
		return 0, "by", errors.New("by and at are part of the answer: the cluster records who applied the rules and when")
	case len(req.Note) > maxRulesNote || !utf8.ValidString(req.Note):
		return 0, "note", fmt.Errorf("a note is at most %d bytes of UTF-8", maxRulesNote)
	case req.IfVersion == nil:
		return 0, "", nil
	case *req.IfVersion < 0:
		return 0, "if_version", fmt.Errorf("%d is not a version (versions count from 1; 0 means none recorded yet)", *req.IfVersion)
	case *req.IfVersion == 0:
		return command.RulesUnversioned, "", nil
	}
	return *req.IfVersion, "", nil
}

func (n *Node) handleRulesHistory(w http.ResponseWriter, _ *http.Request, _ []byte) {
	var out []api.RulesVersion
	n.fsm.Read(func(s *model.State) { out = rulesHistory(s, false) })
	writeJSON(w, http.StatusOK, out)
}

func (n *Node) handleRulesVersion(w http.ResponseWriter, r *http.Request, _ []byte) {
	v, err := strconv.Atoi(r.PathValue("version"))
	if err != nil || v < 1 {
		writeErr(w, http.StatusBadRequest, "version", fmt.Errorf("%q is not a version number", r.PathValue("version")))
		return
	}
	var out []api.RulesVersion
	n.fsm.Read(func(s *model.State) { out = rulesHistory(s, true) })
	for _, rv := range out {
		if rv.Version == v {
			writeJSON(w, http.StatusOK, rv)
			return
		}
	}
	what := "no versions are kept yet"
	if len(out) > 0 {
		what = fmt.Sprintf("the cluster keeps versions %d to %d", out[0].Version, out[len(out)-1].Version)
	}
	writeErr(w, http.StatusNotFound, "", fmt.Errorf("no rules version %d: %s (vmha rules history lists them)", v, what))
}

// rulesHistory lists the kept versions, oldest first, each summarized
// against the one before it (the oldest kept against nothing), with the
// texts when withText is set.
func rulesHistory(s *model.State, withText bool) []api.RulesVersion {
	out := make([]api.RulesVersion, 0, len(s.Status.RulesHistory))
	prev := ""
	for i, v := range s.Status.RulesHistory {
		rv := api.RulesVersion{Version: v.Version, By: v.By, At: v.At, Size: len(v.Rules), Note: v.Note,
			Summary: clusterspec.Summarize(prev, v.Rules), Current: i == len(s.Status.RulesHistory)-1}
		if withText {
			rv.YAML = v.Rules
		}
		out = append(out, rv)
		prev = v.Rules
	}
	return out
}

// planRulesChange is what replacing the rules of cur by text would do:
// the engine's actions under the new rules, each marked Pending when the
// rules in force want it as well. It is pure (cur is not changed).
func planRulesChange(cur *decide.View, text string) (*api.RulesPlan, error) {
	compiled, err := decide.CompileRules(text)
	if err != nil {
		return nil, &ValidationError{Field: "rules", Err: err}
	}
	st := cur.State.Clone()
	st.Config.Rules = text
	next := *cur
	next.State, next.Rules = st, compiled

	prev, _ := cur.State.Status.RulesVersionNow()
	p := &api.RulesPlan{Version: prev.Version, Changed: text != cur.State.Config.Rules,
		Summary: clusterspec.Summarize(cur.State.Config.Rules, text), Actions: []api.RulesAction{}}
	acts, blocked, err := engineActions(&next, nil)
	if err != nil {
		p.Notes = append(p.Notes, "the placement engine refuses the cluster under these rules, so the leader would place nothing: "+err.Error())
		return p, nil
	}
	pending := map[string]bool{}
	if old, _, err := engineActions(cur, nil); err == nil {
		for _, a := range old {
			pending[actionKey(a)] = true
		}
	}
	var explain []string
	for _, a := range acts {
		if !pending[actionKey(a)] {
			explain = append(explain, a.VM)
		}
	}
	reasons := map[string]string{}
	if len(explain) > 0 {
		_, _, _ = engineActions(&next, func(vm, reason string) { reasons[vm] = reason }, explain...)
	}
	for _, a := range acts {
		ra := api.RulesAction{VM: a.VM, Action: string(a.Action), From: a.From, To: a.To,
			Live: a.Action == placement.ActMigrate, Pending: pending[actionKey(a)], Reason: reasons[a.VM]}
		if !ra.Pending && ra.From != "" && (a.Action == placement.ActStop || a.Action == placement.ActMigrate || a.Action == placement.ActMove) {
			p.Disruptive = true
		}
		p.Actions = append(p.Actions, ra)
	}
	for _, vm := range model.SortedKeys(blocked) {
		p.Notes = append(p.Notes, fmt.Sprintf("vm %s waits: %s", vm, blocked[vm]))
	}
	return p, nil
}

// engineActions solves v's cluster as the leader's pass does and returns
// the engine's actions and the VMs it holds back; with explain, it also
// reports the engine's reason for each VM named.
func engineActions(v *decide.View, reason func(vm, why string), explain ...string) ([]placement.Action, map[string]string, error) {
	in, err := decide.EngineInput(v)
	if err != nil {
		return nil, nil, err
	}
	r, err := placement.Solve(in, placement.Options{Explain: explain})
	if err != nil {
		return nil, nil, err
	}
	if reason != nil {
		for _, vm := range explain {
			if ex := r.Explanations[vm]; ex != nil {
				reason(vm, explainReason(ex))
			}
		}
	}
	return r.Actions, r.Blocked, nil
}

func actionKey(a placement.Action) string {
	return string(a.Action) + "\x00" + a.VM + "\x00" + a.From + "\x00" + a.To
}

// explainReason is the engine's reason for ex's VM (for a VM no host can
// run, the engine names what rules each host out), with its notes.
func explainReason(ex *placement.Explanation) string {
	s := ex.Reason
	if len(ex.Notes) > 0 {
		s += "; " + strings.Join(ex.Notes, "; ")
	}
	return s
}
