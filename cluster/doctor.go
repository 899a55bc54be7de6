package cluster

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/doctor"
	"github.com/vmha/vmha/fencing"
	"github.com/vmha/vmha/model"
)

// vmha doctor: the leader asks every host for its own facts (GET
// /v1/local/doctor: clock, version, cluster-wide settings, gossip keys,
// certificates, its dials to the other hosts' live-migration endpoints,
// its storage check) and queries every fence device's status itself,
// all at once and each bounded; package doctor judges the lot. A host
// that does not answer is a fail for that host, never a hang.

const (
	// doctorBudget bounds a whole run: under the route's requestBudget,
	// so the answer always gets out.
	doctorBudget = 20 * time.Second
	// doctorAskTimeout bounds one host's answer: its dials (DialTimeout
	// each, in parallel) and its storage check (doctorStorageTimeout).
	doctorAskTimeout     = 15 * time.Second
	doctorStorageTimeout = 10 * time.Second
)

// doctorRoutes registers the doctor's routes (one line in Handler).
func (n *Node) doctorRoutes(add func(string, http.HandlerFunc, []Role)) {
	add("GET "+api.PathLocalDoctor, n.handleLocalDoctor, []Role{RoleHost, RoleOperator})
	// Operators only: a run queries every fence device and makes every
	// host dial the others.
	add("GET "+api.PathDoctor, n.leaderRead(n.handleDoctor), []Role{RoleOperator})
}

// doctorState is a node's memory of its doctor runs. It lives beside the
// Node (doctorStates) rather than in it, so that the doctor stays in this
// file.
type doctorState struct {
	// sem lets one run at a time go; others wait for their turn.
	sem  chan struct{}
	mu   sync.Mutex
	last *api.DoctorReport
}

var doctorStates sync.Map // *Node -> *doctorState

func (n *Node) doctorMem() *doctorState {
	if v, ok := doctorStates.Load(n); ok {
		return v.(*doctorState)
	}
	v, _ := doctorStates.LoadOrStore(n, &doctorState{sem: make(chan struct{}, 1)})
	return v.(*doctorState)
}

// lastDoctor is the last run's report, or nil.
func (d *doctorState) lastDoctor() *api.DoctorReport {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.last
}

func (n *Node) handleLocalDoctor(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), doctorAskTimeout)
	defer cancel()
	writeJSON(w, http.StatusOK, n.doctorFacts(ctx))
}

func (n *Node) handleDoctor(w http.ResponseWriter, r *http.Request, _ []byte) {
	ctx, cancel := context.WithTimeout(r.Context(), doctorBudget)
	defer cancel()
	rep, err := n.RunDoctor(ctx, false)
	if err != nil {
		writeErr(w, http.StatusServiceUnavailable, "", err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

// doctorFacts is this host's answer: what it reads about itself and its
// dials to the other hosts' live-migration endpoints, in parallel with
// its storage check.
func (n *Node) doctorFacts(ctx context.Context) api.DoctorFacts {
	start := time.Now()
	f := api.DoctorFacts{Host: n.cfg.NodeName, Version: doctor.BuildVersion(), Witness: n.cfg.Witness,
		TLS: n.tls != nil, GossipEncrypted: n.gossipEncrypted}
	f.Settings, f.SettingsHash = doctor.Settings(n.cfg)
	if n.gossipEncrypted {
		keys, err := doctor.ReadKeyring(filepath.Join(n.cfg.DataDir, "serf.keyring"))
		if err != nil {
			f.GossipError = err.Error()
		}
		f.GossipKeys = keys
	}
	if n.tls != nil {
		f.Certs = doctor.ReadCerts(n.cfg.TLS)
	}
	type target struct{ host, what, uri string }
	var targets []target
	if !n.cfg.Witness {
		n.fsm.Read(func(s *model.State) {
			for _, name := range model.SortedKeys(s.Config.Hosts) {
				h := s.Config.Hosts[name]
				if name == n.cfg.NodeName || h.Witness {
					continue
				}
				if h.LibvirtURI != "" {
					targets = append(targets, target{name, "libvirt", h.LibvirtURI})
				}
				if h.MigrationURI != "" {
					targets = append(targets, target{name, "migration", h.MigrationURI})
				}
			}
		})
	}
	f.Reach = make([]api.DoctorReach, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Go(func() { f.Reach[i] = doctor.Dial(ctx, t.host, t.what, t.uri, doctor.DialTimeout) })
	}
	if n.storageOn() && !n.cfg.Witness {
		wg.Go(func() {
			sctx, cancel := context.WithTimeout(ctx, doctorStorageTimeout)
			defer cancel()
			sc := n.CheckStorage(sctx)
			f.Storage = &sc
		})
	}
	wg.Wait()
	f.Time = time.Now()
	f.Took = f.Time.Sub(start)
	return f
}

// askDoctor gets host's facts: this host's own directly, another's over
// the peer API. A host answers only for itself.
func (n *Node) askDoctor(ctx context.Context, host, addr string) doctor.Answer {
	a := doctor.Answer{Sent: time.Now()}
	if host == n.cfg.NodeName {
		f := n.doctorFacts(ctx)
		a.Facts, a.Received = &f, time.Now()
		return a
	}
	if addr == "" {
		a.Err, a.Received = "it has no API address yet", time.Now()
		return a
	}
	var f api.DoctorFacts
	err := n.peers.do(ctx, addr, doctorAskTimeout, http.MethodGet, api.PathLocalDoctor, nil, &f, nil)
	a.Received = time.Now()
	switch {
	case err != nil:
		a.Err = fmt.Sprintf("ask %s at %s: %v", host, addr, err)
	case f.Host != host:
		a.Err = fmt.Sprintf("%s at %s answered as %q", host, addr, f.Host)
	default:
		a.Facts = &f
	}
	return a
}

// RunDoctor runs every check from every host and keeps the report for
// the metrics and vmha status. Only the leader queries fence devices (a
// follower answering without a leader says so). The nightly run leaves
// alone the devices of a host never seen alive, as the periodic device
// check does: its devices are only a peer's word until then.
func (n *Node) RunDoctor(ctx context.Context, nightly bool) (*api.DoctorReport, error) {
	d := n.doctorMem()
	select {
	case d.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("another vmha doctor run is under way: %w", ctx.Err())
	}
	defer func() { <-d.sem }()
	start := time.Now()
	leader := n.IsLeader() && n.coord != nil
	in := doctor.Input{Asker: n.cfg.NodeName, Answers: map[string]doctor.Answer{}, Fence: map[string][]fencing.DeviceCheck{},
		FenceSkipped: map[string]string{}, ClockWarn: n.cfg.Doctor.Warn(), ClockFail: n.cfg.Doctor.Fail()}
	addrs := map[string]string{}
	seen := map[string]bool{}
	n.fsm.Read(func(s *model.State) {
		for _, name := range model.SortedKeys(s.Config.Hosts) {
			h := s.Config.Hosts[name]
			ft := s.Config.Fencing[name]
			in.Hosts = append(in.Hosts, doctor.Host{Name: name, Witness: h.Witness, Fencing: ft != nil && len(ft.Levels) > 0,
				LibvirtURI: h.LibvirtURI, MigrationURI: h.MigrationURI})
			addrs[name] = h.APIAddr
			seen[name] = seenAlive(s.Status.Hosts[name])
		}
		if s.Config.FencingOff != nil {
			in.FencingOff = s.Config.FencingOff.By
		}
	})
	var mu sync.Mutex
	var wg sync.WaitGroup
	if n.gossipEncrypted && n.serf != nil {
		// The keys in every member's memory, as vmha gossip keys lists
		// them (bounded by serf's query timeout; it ends early once all
		// answered).
		wg.Go(func() {
			gk, err := n.GossipKeys()
			mu.Lock()
			defer mu.Unlock()
			in.LiveKeys = gk
			if err != nil && gk == nil {
				in.LiveKeysErr = err.Error()
			}
		})
	}
	for _, h := range in.Hosts {
		wg.Go(func() {
			a := n.askDoctor(ctx, h.Name, addrs[h.Name])
			mu.Lock()
			in.Answers[h.Name] = a
			mu.Unlock()
		})
		switch {
		case h.Witness || !h.Fencing:
		case !leader:
			in.FenceSkipped[h.Name] = "this host is not the leader (no leader now): only the leader queries fence devices"
		case nightly && !seen[h.Name]:
			in.FenceSkipped[h.Name] = "the host was never seen alive since it registered: the scheduled run leaves its devices alone"
		default:
			wg.Go(func() {
				checks := n.coord.CheckDevices(ctx, h.Name)
				mu.Lock()
				in.Fence[h.Name] = checks
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	in.Now = time.Now()
	checks := doctor.Evaluate(in)
	rep := &api.DoctorReport{Leader: n.cfg.NodeName, At: start.UTC(), Duration: time.Since(start), Nightly: nightly, Checks: checks}
	rep.OK, rep.Warn, rep.Fail = doctor.Count(checks)
	d.mu.Lock()
	d.last = rep
	d.mu.Unlock()
	ev := n.log.Info()
	if rep.Fail > 0 {
		ev = n.log.Warn().Strs("failed", failedChecks(rep, 20))
	}
	ev.Bool("nightly", nightly).Int("ok", rep.OK).Int("warn", rep.Warn).Int("fail", rep.Fail).Dur("took", rep.Duration).Msg("vmha doctor ran")
	return rep, nil
}

// failedChecks names at most max failed lines as "check on host".
func failedChecks(rep *api.DoctorReport, maxN int) []string {
	var out []string
	for _, c := range rep.Checks {
		if c.Status != api.DoctorFail {
			continue
		}
		s := c.Check + " on " + c.Host
		if len(out) > 0 && out[len(out)-1] == s {
			continue
		}
		if len(out) == maxN {
			out = append(out, "…")
			break
		}
		out = append(out, s)
	}
	return out
}

// doctorLoop runs the doctor every doctor.interval while this host leads
// (doctor.interval 0: never).
func (n *Node) doctorLoop(ctx context.Context) {
	iv := n.cfg.Doctor.Interval
	if iv <= 0 {
		return
	}
	n.whileLeading(ctx, iv, func(ctx context.Context) {
		rctx, cancel := context.WithTimeout(ctx, doctorBudget)
		defer cancel()
		_, _ = n.RunDoctor(rctx, true)
	})
}

// addDoctorIssue is vmha status's line about the last doctor run on this
// host (the leader), when it found failures.
func (n *Node) addDoctorIssue(s *api.Status) {
	rep := n.doctorMem().lastDoctor()
	if rep == nil || rep.Fail == 0 {
		return
	}
	addIssue(s, api.Issue{Code: "doctor_failed", Severity: api.SeverityWarning,
		Message: fmt.Sprintf("vmha doctor at %s found %d failure(s): %s; run vmha doctor for what to do",
			rep.At.Format(time.RFC3339), rep.Fail, strings.Join(failedChecks(rep, 5), ", "))})
}

// doctorCollector is the last doctor run in the metrics.
type doctorCollector struct{ n *Node }

var (
	descDoctorChecks  = prometheus.NewDesc("vmha_doctor_checks", "Lines of the last vmha doctor run on this host (as leader: scheduled or asked), by check and status (ok, warn, fail).", []string{"check", "status"}, nil)
	descDoctorLastRun = prometheus.NewDesc("vmha_doctor_last_run_timestamp_seconds", "When the last vmha doctor run on this host started (Unix time).", nil, nil)
	descDoctorSeconds = prometheus.NewDesc("vmha_doctor_last_run_duration_seconds", "How long the last vmha doctor run on this host took.", nil, nil)
)

func (c *doctorCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descDoctorChecks
	ch <- descDoctorLastRun
	ch <- descDoctorSeconds
}

func (c *doctorCollector) Collect(ch chan<- prometheus.Metric) {
	rep := c.n.doctorMem().lastDoctor()
	if rep == nil {
		return
	}
	// Every status of every check that ran, zeros included, so that a
	// fail that clears shows as 0 rather than vanishing.
	counts := map[string]map[string]float64{}
	for _, chk := range rep.Checks {
		if counts[chk.Check] == nil {
			counts[chk.Check] = map[string]float64{api.DoctorOK: 0, api.DoctorWarn: 0, api.DoctorFail: 0}
		}
		counts[chk.Check][chk.Status]++
	}
	for check, byStatus := range counts {
		for status, v := range byStatus {
			ch <- prometheus.MustNewConstMetric(descDoctorChecks, prometheus.GaugeValue, v, check, status)
		}
	}
	ch <- prometheus.MustNewConstMetric(descDoctorLastRun, prometheus.GaugeValue, float64(rep.At.UnixNano())/1e9)
	ch <- prometheus.MustNewConstMetric(descDoctorSeconds, prometheus.GaugeValue, rep.Duration.Seconds())
}
