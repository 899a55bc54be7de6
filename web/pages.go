package web

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/model"
	"github.com/vmha/vmha/placement"
)

// perPage is the rows of a paged table: at 50,000 VMs a page renders a
// hundred of them, not all.
const perPage = 100

// pager is a paged table's position.
type pager struct {
	Page, Pages, Total, From, To int
	// Prev and Next are the links to the neighbouring pages ("" none).
	Prev, Next string
}

// paginate cuts n rows into pages; param names the page's query parameter.
func paginate(r *http.Request, param string, n int) pager {
	pages := max(1, (n+perPage-1)/perPage)
	p := min(intParam(r, param, 1), pages)
	pg := pager{Page: p, Pages: pages, Total: n, From: (p - 1) * perPage, To: min(n, p*perPage)}
	link := func(to int) string {
		q := r.URL.Query()
		q.Set(param, strconv.Itoa(to))
		return r.URL.Path + "?" + q.Encode()
	}
	if p > 1 {
		pg.Prev = link(p - 1)
	}
	if p < pages {
		pg.Next = link(p + 1)
	}
	return pg
}

// hostRow is one host of a table.
type hostRow struct {
	*api.Host
	VMCount   int
	VCPUs     uint
	Health    string // ok, warn, bad: the row's colour
	StateText string
	Admin     string
	Fence     string
	FenceOK   bool
}

// vmRow is one VM of a table.
type vmRow struct {
	*api.VM
	// Mismatch: the VM is not what its target says (down, or elsewhere).
	Mismatch bool
	Where    string
}

// overviewData is the overview page's.
type overviewData struct {
	St       *api.Status
	Hosts    []hostRow
	HostPage pager
	VMs      []vmRow
	VMPage   pager
	// Query and Show are the VM table's filter (Show: all or problems).
	Query, Show string
	// Counts for the summary line.
	HostsUp, HostsDown, VMsRunning, VMsDown, VMsTotal int
	Critical, Warnings                                int
}

func hostRowOf(h *api.Host, vcpus uint) hostRow {
	row := hostRow{Host: h, VMCount: len(h.VMs), VCPUs: vcpus, Health: "ok"}
	row.StateText = string(h.State)
	if h.Member != "" && h.Member != "alive" {
		row.StateText += " (gossip: " + h.Member + ")"
	}
	switch h.State {
	case model.HostAlive:
		if h.Member != "alive" || h.ReportStale {
			row.Health = "warn"
		}
	default:
		row.Health = "bad"
	}
	var admin []string
	for _, a := range h.Admin {
		admin = append(admin, a.State)
	}
	row.Admin = strings.Join(admin, ", ")
	if len(admin) > 0 && row.Health == "ok" {
		row.Health = "admin"
	}
	switch fc := h.FenceCheck; {
	case len(h.FenceDevices) == 0:
		row.Fence = "no fence device"
	case fc == nil:
		row.Fence, row.FenceOK = "not checked yet", true
	case fc.OK:
		row.Fence, row.FenceOK = "ok (power "+fc.Power+")", true
	default:
		row.Fence = "failing: " + fc.Error
	}
	return row
}

// mismatch reports whether v is not what its target says.
func mismatch(v *api.VM) bool {
	switch v.Target {
	case model.TargetStopped, model.TargetDisabled:
		return v.Actual == "running"
	case model.TargetIgnored:
		return false
	}
	return v.Actual != "running" || (v.ActualHost != "" && v.ActualHost != v.Host) || v.ReportStale
}

func vmRowOf(v *api.VM) vmRow {
	row := vmRow{VM: v, Mismatch: mismatch(v), Where: v.ActualHost}
	if row.Where == "" {
		row.Where = "—"
	}
	return row
}

func (s *Server) overview(w http.ResponseWriter, r *http.Request, ss *session) {
	p, sn := s.base(r, ss, "Overview", "overview")
	if sn.st == nil {
		s.render(w, r, http.StatusServiceUnavailable, "overview", p)
		return
	}
	st := sn.st
	d := overviewData{St: st, Query: strings.TrimSpace(r.URL.Query().Get("q")), Show: r.URL.Query().Get("show")}
	vcpus := map[string]uint{}
	for i := range st.VMs {
		v := &st.VMs[i]
		vcpus[v.Host] += v.VCPUs
		d.VMsTotal++
		if v.Actual == "running" {
			d.VMsRunning++
		} else if v.Target == "" || v.Target == model.TargetStarted {
			d.VMsDown++
		}
	}
	for i := range st.Hosts {
		if st.Hosts[i].State == model.HostAlive {
			d.HostsUp++
		} else {
			d.HostsDown++
		}
	}
	for _, pd := range st.ProblemDetails {
		if pd.Severity == api.SeverityCritical {
			d.Critical++
		} else {
			d.Warnings++
		}
	}
	d.HostPage = paginate(r, "hp", len(st.Hosts))
	for i := d.HostPage.From; i < d.HostPage.To; i++ {
		h := &st.Hosts[i]
		d.Hosts = append(d.Hosts, hostRowOf(h, vcpus[h.Name]))
	}
	// The VM table: all, or only those not as their target says, by a
	// name or host filter.
	var pick []int
	q := strings.ToLower(d.Query)
	for i := range st.VMs {
		v := &st.VMs[i]
		if d.Show == "problems" && !mismatch(v) {
			continue
		}
		if q != "" && !strings.Contains(strings.ToLower(v.Name), q) && !strings.Contains(strings.ToLower(v.Host), q) {
			continue
		}
		pick = append(pick, i)
	}
	d.VMPage = paginate(r, "vp", len(pick))
	for _, i := range pick[d.VMPage.From:d.VMPage.To] {
		d.VMs = append(d.VMs, vmRowOf(&st.VMs[i]))
	}
	p.Data = d
	s.render(w, r, http.StatusOK, "overview", p)
}

// hostData is the host page's.
type hostData struct {
	St     *api.Status
	Host   hostRow
	VMs    []vmRow
	Attrs  [][2]string
	Events []model.Event
	Evac   *api.Evacuation
	Error  string
}

// named is the element of xs called want, or nil.
func named[T any](xs []T, name func(*T) string, want string) *T {
	for i := range xs {
		if name(&xs[i]) == want {
			return &xs[i]
		}
	}
	return nil
}

func hostName(h *api.Host) string { return h.Name }
func vmName(v *api.VM) string     { return v.Name }

// objectPage starts the page of one host or VM: the frame, the status, and
// the object by the path's name, or the answer when there is none (503
// without a status, 404 without the object).
func objectPage[T any](s *Server, w http.ResponseWriter, r *http.Request, ss *session, kind, param string, list func(*api.Status) []T, name func(*T) string) (*page, *api.Status, *T) {
	want := r.PathValue(param)
	p, sn := s.base(r, ss, kind+" "+want, "")
	if sn.st == nil {
		s.render(w, r, http.StatusServiceUnavailable, "error", p)
		return nil, nil, nil
	}
	obj := named(list(sn.st), name, want)
	if obj == nil {
		s.fail(w, r, ss, http.StatusNotFound, "There is no "+strings.ToLower(kind)+" "+want+" in the cluster.")
		return nil, nil, nil
	}
	return p, sn.st, obj
}

func (s *Server) hostPage(w http.ResponseWriter, r *http.Request, ss *session) {
	p, st, h := objectPage(s, w, r, ss, "Host", "host", func(st *api.Status) []api.Host { return st.Hosts }, hostName)
	if h == nil {
		return
	}
	name := h.Name
	d := hostData{St: st}
	var vcpus uint
	for j := range st.VMs {
		v := &st.VMs[j]
		if v.Host == name || v.ActualHost == name || v.MigratingFrom == name {
			d.VMs = append(d.VMs, vmRowOf(v))
			if v.Host == name {
				vcpus += v.VCPUs
			}
		}
	}
	d.Host = hostRowOf(h, vcpus)
	for k, v := range h.Attributes {
		d.Attrs = append(d.Attrs, [2]string{k, v})
	}
	slices.SortFunc(d.Attrs, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	for j := range st.Evacuations {
		if st.Evacuations[j].Host == name {
			d.Evac = &st.Evacuations[j]
		}
	}
	ctx, cancel := ctxTimeout(r)
	defer cancel()
	var ev api.Events
	if e := s.get(ctx, ss, api.PathEvents+"?host="+url.QueryEscape(name)+"&limit=50", &ev); e != "" {
		d.Error = "events: " + e
	}
	d.Events = newestFirst(ev.Events)
	p.Data = d
	s.render(w, r, http.StatusOK, "host", p)
}

// newestFirst reverses the API's oldest-first events.
func newestFirst(es []model.Event) []model.Event {
	slices.Reverse(es)
	return es
}

// vmData is the VM page's.
type vmData struct {
	St      *api.Status
	VM      vmRow
	Explain *placement.Explanation
	Events  []model.Event
	Hosts   []string
	Errors  []string
}

func (s *Server) vmPage(w http.ResponseWriter, r *http.Request, ss *session) {
	p, st, v := objectPage(s, w, r, ss, "VM", "vm", func(st *api.Status) []api.VM { return st.VMs }, vmName)
	if v == nil {
		return
	}
	name := v.Name
	d := vmData{St: st, VM: vmRowOf(v)}
	for j := range st.Hosts {
		if st.Hosts[j].Name != d.VM.Host && st.Hosts[j].State == model.HostAlive {
			d.Hosts = append(d.Hosts, st.Hosts[j].Name)
		}
	}
	ctx, cancel := ctxTimeout(r)
	defer cancel()
	var ex placement.Explanation
	if e := s.get(ctx, ss, api.PathExplain+"/"+url.PathEscape(name), &ex); e != "" {
		d.Errors = append(d.Errors, "explanation: "+e)
	} else {
		d.Explain = &ex
	}
	var ev api.Events
	if e := s.get(ctx, ss, api.PathEvents+"?vm="+url.QueryEscape(name)+"&limit=50", &ev); e != "" {
		d.Errors = append(d.Errors, "events: "+e)
	}
	d.Events = newestFirst(ev.Events)
	p.Data = d
	s.render(w, r, http.StatusOK, "vm", p)
}

// eventsData is the events page's.
type eventsData struct {
	Events []model.Event
	// The filter, as the form shows it.
	VM, Host, Kind, Since string
	Kinds                 []string
	Last                  uint64
	Error                 string
}

func (s *Server) eventsPage(w http.ResponseWriter, r *http.Request, ss *session) {
	p, _ := s.base(r, ss, "Events", "events")
	q := r.URL.Query()
	d := eventsData{VM: q.Get("vm"), Host: q.Get("host"), Kind: q.Get("kind"), Since: q.Get("since"),
		Kinds: []string{model.EventVM, model.EventHost, model.EventCluster, model.EventRules, model.EventFence, model.EventRebalance}}
	aq := url.Values{}
	for k, v := range map[string]string{"vm": d.VM, "host": d.Host, "kind": d.Kind, "since": d.Since} {
		if v = strings.TrimSpace(v); v != "" {
			aq.Set(k, v)
		}
	}
	aq.Set("limit", "200")
	ctx, cancel := ctxTimeout(r)
	defer cancel()
	var ev api.Events
	d.Error = s.get(ctx, ss, api.PathEvents+"?"+aq.Encode(), &ev)
	d.Events, d.Last = newestFirst(ev.Events), ev.Last
	p.Data = d
	s.render(w, r, http.StatusOK, "events", p)
}

// pageRoutes are the pages besides the overview.
func (s *Server) pageRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /hosts/{host}", s.withSession(s.hostPage))
	m.HandleFunc("GET /vms/{vm}", s.withSession(s.vmPage))
	m.HandleFunc("GET /events", s.withSession(s.eventsPage))
	s.planRoutes(m)
}
