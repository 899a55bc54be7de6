package web

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/model"
)

// recoveriesData is the recovery timeline page's.
type recoveriesData struct {
	Recoveries []api.Recovery
	Error      string
}

func (s *Server) recoveriesPage(w http.ResponseWriter, r *http.Request, ss *session) {
	p, _ := s.base(r, ss, "Recoveries", "recoveries")
	var d recoveriesData
	ctx, cancel := ctxTimeout(r)
	defer cancel()
	d.Error = s.get(ctx, ss, api.PathRecoveries, &d.Recoveries)
	p.Data = d
	s.render(w, r, http.StatusOK, "recoveries", p)
}

// migrationsData is the migrations page's.
type migrationsData struct {
	Moves []api.Migration
	// Rebalance is the run under way (or last), nil when none.
	Rebalances []model.Rebalance
	Error      string
}

func (s *Server) migrationsPage(w http.ResponseWriter, r *http.Request, ss *session) {
	p, _ := s.base(r, ss, "Migrations", "migrations")
	var d migrationsData
	ctx, cancel := ctxTimeout(r)
	defer cancel()
	d.Error = s.get(ctx, ss, api.PathMigrations, &d.Moves)
	var rbs []model.Rebalance
	if s.get(ctx, ss, api.PathRebalance, &rbs) == "" {
		for i := range rbs {
			if !rbs[i].Done {
				d.Rebalances = append(d.Rebalances, rbs[i])
			}
		}
	}
	p.Data = d
	s.render(w, r, http.StatusOK, "migrations", p)
}

// whatIfData is the what-if page's.
type whatIfData struct {
	Fail, Standby string
	Hosts         []string
	Plan          *api.WhatIf
	Rebalance     *model.Rebalance
	Error         string
	RebalanceErr  string
}

func (s *Server) whatIfPage(w http.ResponseWriter, r *http.Request, ss *session) {
	p, sn := s.base(r, ss, "What if", "whatif")
	// A plan is read once; the page does not follow the cluster (the
	// operator is reading it).
	p.Live = false
	q := r.URL.Query()
	d := whatIfData{Fail: strings.TrimSpace(q.Get("fail")), Standby: strings.TrimSpace(q.Get("standby"))}
	if sn.st != nil {
		for _, h := range sn.st.Hosts {
			if !h.Witness {
				d.Hosts = append(d.Hosts, h.Name)
			}
		}
	}
	ctx, cancel := ctxTimeout(r)
	defer cancel()
	c := s.be.API(ss.id)
	if d.Fail != "" || d.Standby != "" {
		aq := url.Values{}
		if d.Fail != "" {
			aq.Set("fail", d.Fail)
		}
		if d.Standby != "" {
			aq.Set("standby", d.Standby)
		}
		var wi api.WhatIf
		if d.Error = s.get(ctx, ss, api.PathWhatIf+"?"+aq.Encode(), &wi); d.Error == "" {
			d.Plan = &wi
		}
	}
	if q.Get("rebalance") == "1" {
		var rb model.Rebalance
		if err := c.Do(ctx, http.MethodPost, api.PathRebalance, api.RebalanceRequest{DryRun: true, Parallel: 1}, &rb, nil); err != nil {
			d.RebalanceErr = apiError(err)
		} else {
			d.Rebalance = &rb
		}
	}
	p.Data = d
	s.render(w, r, http.StatusOK, "whatif", p)
}

func (s *Server) planRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /recoveries", s.withSession(s.recoveriesPage))
	m.HandleFunc("GET /migrations", s.withSession(s.migrationsPage))
	m.HandleFunc("GET /whatif", s.withSession(s.whatIfPage))
}
