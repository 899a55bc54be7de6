package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/model"
)

// An action is one thing an operator can do from the console. Every action
// has two steps: GET shows what will happen (the cluster's own dry run
// where it has one, in words otherwise) and a confirmation naming it;
// only the confirmation's POST, with the session's CSRF token, does it.
type action struct {
	// Title is the button's words ("Migrate"), Verb the confirmation's.
	Title string
	// Params are the form fields the action takes, in order; Required
	// those it cannot go without.
	Params   []string
	Required []string
	// Plan says what the action will do, or why it cannot be done.
	Plan func(ctx context.Context, c *api.Client, st *api.Status, f url.Values) (plan, error)
	// Do does it and says what was done.
	Do func(ctx context.Context, c *api.Client, f url.Values) (string, error)
	// Back is the page to show afterwards.
	Back func(f url.Values) string
}

// plan is what the confirmation page shows.
type plan struct {
	// Summary is the confirmation button's sentence: what will happen.
	Summary string
	// Lines detail it (one move per line, ...).
	Lines []string
	// Warnings are consequences to read twice (restarts, VMs left).
	Warnings []string
	// Destructive marks actions that stop or restart guests.
	Destructive bool
}

// actionData is the confirmation page's.
type actionData struct {
	Name   string
	Action *action
	Fields [][2]string
	Plan   plan
	Error  string
	// ReadOnly: the session may not act; the page says so.
	ReadOnly bool
	Back     string
}

func vmBack(f url.Values) string   { return "/vms/" + url.PathEscape(f.Get("vm")) }
func hostBack(f url.Values) string { return "/hosts/" + url.PathEscape(f.Get("host")) }

// findVM is f's VM in st, or an error naming it.
func findVM(st *api.Status, f url.Values) (*api.VM, error) {
	if v := named(st.VMs, vmName, f.Get("vm")); v != nil {
		return v, nil
	}
	return nil, fmt.Errorf("there is no VM %q in the cluster", f.Get("vm"))
}

// findHost is f's host in st, or an error naming it.
func findHost(st *api.Status, f url.Values) (*api.Host, error) {
	if h := named(st.Hosts, hostName, f.Get("host")); h != nil {
		return h, nil
	}
	return nil, fmt.Errorf("there is no host %q in the cluster", f.Get("host"))
}

// movePlan is a migrate or relocate dry run's answer.
type movePlan struct {
	VM     string `json:"vm"`
	From   string `json:"from"`
	To     string `json:"to"`
	How    string `json:"how"`
	Reason string `json:"reason"`
}

// moveAction is migrate (live, the cluster picks a target when none is
// given) or relocate (cold, to a named host).
func moveAction(verb, path string, live bool) *action {
	a := &action{Title: verb, Params: []string{"vm", "to"}, Required: []string{"vm"}, Back: vmBack}
	if !live {
		a.Required = []string{"vm", "to"}
	}
	a.Plan = func(ctx context.Context, c *api.Client, _ *api.Status, f url.Values) (plan, error) {
		var mp movePlan
		body := map[string]any{"to": f.Get("to"), "dry_run": true}
		if err := c.Do(ctx, http.MethodPost, api.PathVMs+"/"+url.PathEscape(f.Get("vm"))+"/"+path, body, &mp, nil); err != nil {
			return plan{}, err
		}
		p := plan{Summary: fmt.Sprintf("%s %s from %s to %s", verb, mp.VM, mp.From, mp.To)}
		switch mp.How {
		case "live":
			p.Lines = append(p.Lines, "The guest keeps running while its memory is copied; it pauses only for the final switch-over.")
		default:
			p.Destructive = true
			p.Warnings = append(p.Warnings, fmt.Sprintf("%s will be STOPPED on %s and STARTED on %s: its guest restarts.", mp.VM, mp.From, mp.To))
		}
		if mp.Reason != "" {
			p.Lines = append(p.Lines, mp.Reason)
		}
		return p, nil
	}
	a.Do = func(ctx context.Context, c *api.Client, f url.Values) (string, error) {
		req := api.MigrateRequest{To: f.Get("to")}
		var out map[string]any
		if err := c.Do(ctx, http.MethodPost, api.PathVMs+"/"+url.PathEscape(f.Get("vm"))+"/"+path, req, &out, nil); err != nil {
			return "", err
		}
		to := f.Get("to")
		if to == "" {
			to = "the host the cluster picked"
		}
		return fmt.Sprintf("%s of %s to %s started: follow it on this page.", verb, f.Get("vm"), to), nil
	}
	return a
}

// stateAction sets a VM's target, as vmha vm start/stop/unmanage/manage.
func stateAction(title, state, explain string, destructive bool) *action {
	return &action{
		Title: title, Params: []string{"vm", "if"}, Required: []string{"vm"}, Back: vmBack,
		Plan: func(_ context.Context, _ *api.Client, st *api.Status, f url.Values) (plan, error) {
			v, err := findVM(st, f)
			if err != nil {
				return plan{}, err
			}
			// Compare-and-set: refused if someone changed the target
			// after this page was shown.
			cur := "-"
			if v.TargetSource == "operator" {
				cur = string(v.Target)
			}
			f.Set("if", cur)
			where := v.Host
			if where == "" {
				where = "no host"
			}
			p := plan{Summary: fmt.Sprintf("%s %s (now %s on %s, target %s)", title, v.Name, orDash(v.Actual), where, orDash(string(v.Target))), Destructive: destructive}
			p.Lines = append(p.Lines, explain)
			if destructive && v.Actual == "running" {
				p.Warnings = append(p.Warnings, fmt.Sprintf("%s is running on %s: its guest will be shut down.", v.Name, v.ActualHost))
			}
			return p, nil
		},
		Do: func(ctx context.Context, c *api.Client, f url.Values) (string, error) {
			req := api.VMStateRequest{State: state, If: f.Get("if")}
			var t api.VMTarget
			if err := c.Do(ctx, http.MethodPost, api.PathVMs+"/"+url.PathEscape(f.Get("vm"))+"/state", req, &t, nil); err != nil {
				return "", err
			}
			return fmt.Sprintf("%s: target is now %s.", t.VM, t.Target), nil
		},
	}
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// actions are the console's actions by name.
var actions = map[string]*action{
	"migrate":  moveAction("Migrate", "migrate", true),
	"relocate": moveAction("Relocate", "relocate", false),
	"start":    stateAction("Start", string(model.TargetStarted), "The cluster starts the VM where the rules place it and keeps it running (restarts it elsewhere if its host fails).", false),
	"stop":     stateAction("Stop", string(model.TargetStopped), "The cluster shuts the VM down and keeps it stopped until it is started again.", true),
	"unmanage": stateAction("Unmanage", string(model.TargetIgnored), "The cluster leaves the VM alone: it neither starts, stops, moves nor recovers it (vmha vm manage undoes this). Where it runs now, it keeps running.", false),
	"manage":   stateAction("Manage", "", "The cluster manages the VM again, as its rules say, from where it runs now.", false),
	"evacuate": {
		Title: "Evacuate", Params: []string{"host"}, Required: []string{"host"}, Back: hostBack,
		Plan: func(ctx context.Context, c *api.Client, _ *api.Status, f url.Values) (plan, error) {
			var ep api.EvacuationPlan
			if err := c.Do(ctx, http.MethodPost, api.PathHostAction+"/"+url.PathEscape(f.Get("host"))+"/evacuate", api.EvacuateRequest{DryRun: true}, &ep, nil); err != nil {
				return plan{}, err
			}
			p := plan{Summary: fmt.Sprintf("Drain %s: move its %d VMs away and accept no new ones until it is brought online", ep.Host, len(ep.Moves))}
			for _, m := range ep.Moves {
				switch {
				case m.Live:
					p.Lines = append(p.Lines, fmt.Sprintf("%s → %s (live)", m.VM, m.To))
				default:
					p.Warnings = append(p.Warnings, fmt.Sprintf("%s cannot move live (%s): it stays, listed as stuck", m.VM, m.Stuck))
				}
			}
			if ep.Shortfall != "" {
				p.Warnings = append(p.Warnings, "Refused: "+ep.Shortfall)
				return p, fmt.Errorf("the other hosts cannot take %s's VMs: %s", ep.Host, ep.Shortfall)
			}
			return p, nil
		},
		Do: func(ctx context.Context, c *api.Client, f url.Values) (string, error) {
			var ep api.EvacuationPlan
			if err := c.Do(ctx, http.MethodPost, api.PathHostAction+"/"+url.PathEscape(f.Get("host"))+"/evacuate", api.EvacuateRequest{}, &ep, nil); err != nil {
				return "", err
			}
			return fmt.Sprintf("Evacuation %s of %s started: %d VMs to move.", ep.ID, ep.Host, len(ep.Moves)), nil
		},
	},
	"online": {
		Title: "Bring online", Params: []string{"host", "evacuation"}, Required: []string{"host"}, Back: hostBack,
		Plan: func(_ context.Context, _ *api.Client, st *api.Status, f url.Values) (plan, error) {
			h, err := findHost(st, f)
			if err != nil {
				return plan{}, err
			}
			p := plan{Summary: fmt.Sprintf("Bring %s online: it takes VMs again", h.Name)}
			for _, e := range st.Evacuations {
				if e.Host == h.Name {
					f.Set("evacuation", e.ID)
					p.Lines = append(p.Lines, fmt.Sprintf("Ends evacuation %s (by %s, %d VMs still on the host).", e.ID, e.By, e.Left))
				}
			}
			p.Lines = append(p.Lines, "No VM moves back by itself: placement rules and the nightly rebalance decide where VMs go from now on.")
			return p, nil
		},
		Do: func(ctx context.Context, c *api.Client, f url.Values) (string, error) {
			if err := c.Do(ctx, http.MethodPost, api.PathHostAction+"/"+url.PathEscape(f.Get("host"))+"/online", api.HostOnline{EvacuationID: f.Get("evacuation")}, nil, nil); err != nil {
				return "", err
			}
			return f.Get("host") + " is online.", nil
		},
	},
	"fence-test": {
		Title: "Test fence devices", Params: []string{"host"}, Required: []string{"host"}, Back: hostBack,
		Plan: func(_ context.Context, _ *api.Client, st *api.Status, f url.Values) (plan, error) {
			h, err := findHost(st, f)
			if err != nil {
				return plan{}, err
			}
			p := plan{Summary: fmt.Sprintf("Ask %s's fence devices for their power status", h.Name)}
			p.Lines = append(p.Lines, "A status check only: nothing is powered off or cycled.")
			for _, d := range h.FenceDevices {
				p.Lines = append(p.Lines, fmt.Sprintf("level %d: %s (%s %s)", d.Level, d.Name, d.Type, d.Address))
			}
			if len(h.FenceDevices) == 0 {
				return p, fmt.Errorf("%s has no fence device to test", h.Name)
			}
			return p, nil
		},
		Do: func(ctx context.Context, c *api.Client, f url.Values) (string, error) {
			var res api.FenceTestResult
			if err := c.Do(ctx, http.MethodPost, api.PathFence+"/"+url.PathEscape(f.Get("host"))+"/test", api.FenceTest{}, &res, nil); err != nil {
				return "", err
			}
			return fmt.Sprintf("%s's fence devices answered: power %s, in %s.", res.Host, res.Check.Power, humanDuration(res.Check.Duration)), nil
		},
	},
	"rebalance": {
		Title: "Rebalance", Params: []string{"max_moves"}, Back: func(url.Values) string { return "/whatif" },
		Plan: func(ctx context.Context, c *api.Client, _ *api.Status, f url.Values) (plan, error) {
			var rb model.Rebalance
			if err := c.Do(ctx, http.MethodPost, api.PathRebalance, rebalanceRequest(f, true), &rb, nil); err != nil {
				return plan{}, err
			}
			p := plan{Summary: fmt.Sprintf("Rebalance: %d live migrations, cluster score %.1f → %.1f", len(rb.Moves), rb.Before, rb.Planned)}
			for _, m := range rb.Moves {
				p.Lines = append(p.Lines, fmt.Sprintf("step %d: %s %s → %s (gain %.1f)", m.Step, m.VM, m.From, m.To, m.Gain))
			}
			if len(rb.Moves) == 0 {
				return p, fmt.Errorf("nothing to do: the cluster is balanced (score %.1f)", rb.Before)
			}
			return p, nil
		},
		Do: func(ctx context.Context, c *api.Client, f url.Values) (string, error) {
			var rb model.Rebalance
			if err := c.Do(ctx, http.MethodPost, api.PathRebalance, rebalanceRequest(f, false), &rb, nil); err != nil {
				return "", err
			}
			return fmt.Sprintf("Rebalance %s started: %d moves.", rb.ID, len(rb.Moves)), nil
		},
	},
}

func rebalanceRequest(f url.Values, dry bool) api.RebalanceRequest {
	req := api.RebalanceRequest{DryRun: dry, Parallel: 1}
	if n, err := fmt.Sscan(f.Get("max_moves"), &req.MaxMoves); n != 1 || err != nil || req.MaxMoves < 0 {
		req.MaxMoves = 0
	}
	return req
}

// actionRoutes are GET /act/NAME (the plan and its confirmation) and
// POST /act/NAME (do it).
func (s *Server) actionRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /act/{action}", s.withSession(s.confirmAction))
	m.HandleFunc("POST /act/{action}", s.withSession(s.doAction))
}

// actionForm is the action's fields from f, checked.
func actionForm(a *action, f url.Values) (url.Values, error) {
	out := url.Values{}
	for _, p := range a.Params {
		v := strings.TrimSpace(f.Get(p))
		if len(v) > 256 || strings.ContainsAny(v, "\x00\r\n") {
			return nil, fmt.Errorf("%s: not a valid value", p)
		}
		if v != "" {
			out.Set(p, v)
		}
	}
	for _, p := range a.Required {
		if out.Get(p) == "" {
			return nil, fmt.Errorf("%s is required", p)
		}
	}
	return out, nil
}

func (s *Server) confirmAction(w http.ResponseWriter, r *http.Request, ss *session) {
	name := r.PathValue("action")
	a := actions[name]
	if a == nil {
		s.fail(w, r, ss, http.StatusNotFound, "There is no action "+name+".")
		return
	}
	p, sn := s.base(r, ss, a.Title, "")
	p.Live = false
	f, err := actionForm(a, r.URL.Query())
	if err != nil {
		s.fail(w, r, ss, http.StatusBadRequest, a.Title+": "+err.Error())
		return
	}
	d := actionData{Name: name, Action: a, ReadOnly: !ss.id.Operator(), Back: a.Back(f)}
	if sn.st == nil {
		d.Error = "The cluster's status could not be read: " + p.FetchError
	} else {
		ctx, cancel := ctxTimeout(r)
		defer cancel()
		d.Plan, err = a.Plan(ctx, s.be.API(ss.id), sn.st, f)
		if err != nil {
			d.Error = apiError(err)
		}
	}
	for _, k := range a.Params {
		if v := f.Get(k); v != "" {
			d.Fields = append(d.Fields, [2]string{k, v})
		}
	}
	p.Data = d
	s.render(w, r, http.StatusOK, "action", p)
}

func (s *Server) doAction(w http.ResponseWriter, r *http.Request, ss *session) {
	a := actions[r.PathValue("action")]
	if a == nil {
		http.Error(w, "no such action", http.StatusNotFound)
		return
	}
	if !s.checkForm(w, r, ss) {
		return
	}
	if !ss.id.Operator() {
		s.log.Warn().Str("principal", ss.id.Name).Str("action", r.PathValue("action")).Msg("web: refused an action to a read-only session")
		s.fail(w, r, ss, http.StatusForbidden, "Refused: "+ss.id.Name+"'s token is read-only; "+a.Title+" needs the operator role.")
		return
	}
	f, err := actionForm(a, r.PostForm)
	if err != nil {
		s.fail(w, r, ss, http.StatusBadRequest, a.Title+": "+err.Error())
		return
	}
	ctx, cancel := ctxTimeout(r)
	defer cancel()
	msg, err := a.Do(ctx, s.be.API(ss.id), f)
	if err != nil {
		ss.setFlash(a.Title+" refused: "+apiError(err), true)
	} else {
		ss.setFlash(msg, false)
		s.log.Info().Str("principal", ss.id.Name).Str("action", r.PathValue("action")).Str("vm", f.Get("vm")).Str("host", f.Get("host")).Msg("web: " + msg)
	}
	http.Redirect(w, r, a.Back(f), http.StatusSeeOther)
}
