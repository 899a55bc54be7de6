package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/cluster/decide"
	"github.com/vmha/vmha/internal/buildinfo"
	"github.com/vmha/vmha/model"
	"github.com/vmha/vmha/pki"
)

// Metrics are vmhad's Prometheus metrics. Event counters and histograms are
// updated where the events happen; gauges that describe the cluster are read
// from the node's state at scrape time, so they cannot drift from it.
type Metrics struct {
	reg *prometheus.Registry

	fences        *prometheus.CounterVec
	fenceSeconds  *prometheus.HistogramVec
	recoveries    prometheus.Counter
	recoverySecs  prometheus.Histogram
	placeSeconds  prometheus.Histogram
	passSeconds   prometheus.Histogram
	passesSkipped prometheus.Counter
	deviceChecks  *prometheus.CounterVec
	agentStarts   *prometheus.CounterVec
	agentStops    *prometheus.CounterVec
	leaderChanges prometheus.Counter
	alerts        *prometheus.CounterVec

	fenceTests    *prometheus.CounterVec
	migrations    *prometheus.CounterVec
	migrationSecs *prometheus.HistogramVec
}

func newMetrics(n *Node) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		fences: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vmha_fence_total", Help: "Fence attempts run by this host as leader, by action and result.",
		}, []string{"action", "result"}),
		fenceSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "vmha_fence_duration_seconds", Help: "Time from the start of a fence to the device confirming it.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2, 5, 10, 30, 60},
		}, []string{"result"}),
		recoveries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vmha_vm_recoveries_total", Help: "VMs of a fenced host reported running on a new host (seen by the leader).",
		}),
		recoverySecs: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "vmha_vm_recovery_seconds", Help: "Time from a host being marked lost to one of its VMs running elsewhere.",
			Buckets: []float64{.5, 1, 2, 3, 5, 10, 20, 30, 60, 120},
		}),
		placeSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "vmha_placement_duration_seconds", Help: "Time one placement plan took on the leader.",
			Buckets: prometheus.ExponentialBuckets(1e-5, 4, 10),
		}),
		passSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "vmha_leader_pass_seconds", Help: "Time one pass of the leader's decisions (decide.Pass, placement included) took.",
			Buckets: prometheus.ExponentialBuckets(1e-5, 4, 10),
		}),
		passesSkipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vmha_leader_passes_skipped_total", Help: "Leader passes skipped because nothing they read had changed since a pass that decided nothing (decide.Until).",
		}),
		deviceChecks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vmha_fence_device_checks_total", Help: "Periodic fence device status checks, by host and result.",
		}, []string{"host", "result"}),
		agentStarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vmha_agent_vm_starts_total", Help: "VM starts by this host's agent, by result.",
		}, []string{"result"}),
		agentStops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vmha_agent_vm_stops_total", Help: "VM stops by this host's agent (placed elsewhere or removed), by result.",
		}, []string{"result"}),
		leaderChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vmha_leadership_acquired_total", Help: "Times this host became the raft leader.",
		}),
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vmha_alerts_total", Help: "Alerts this host handed to an alert target as leader, by target and result.",
		}, []string{"alert", "result"}),
	}
	m.fenceTests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vmha_fence_tests_total", Help: "vmha fence test --power-cycle runs by this host as leader, by result (not counted in vmha_fence_total).",
	}, []string{"result"})
	m.migrations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vmha_migrations_total", Help: "Moves of a VM whose end this host committed as leader, by outcome: live, restart (arrived), aborted, refused, failed (stayed on the source).",
	}, []string{"outcome"})
	m.migrationSecs = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "vmha_migration_duration_seconds", Help: "Time from a move's commit (or its cold fallback's) to the commit of its end, by outcome.",
		Buckets: []float64{1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800},
	}, []string{"outcome"})
	for _, o := range moveOutcomes {
		m.migrations.WithLabelValues(o)
	}
	for _, r := range []string{"success", "failure"} {
		m.fenceTests.WithLabelValues(r)
	}
	m.reg.MustRegister(m.fenceTests, m.migrations, m.migrationSecs, buildInfo())
	m.reg.MustRegister(m.fences, m.fenceSeconds, m.recoveries, m.recoverySecs, m.placeSeconds, m.passSeconds, m.passesSkipped,
		m.deviceChecks, m.agentStarts, m.agentStops, m.leaderChanges, m.alerts,
		&stateCollector{n: n}, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.reg.MustRegister(&doctorCollector{n: n}) // vmha doctor's last run (doctor.go)
	return m
}

func result(err error) string {
	if err != nil {
		return "failure"
	}
	return "success"
}

// Handler serves the metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// ServeMetrics serves /metrics on addr until ctx is done.
func (n *Node) ServeMetrics(ctx context.Context, addr string) error {
	addr = MetricsListenAddr(addr)
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics_addr %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", budgeted(requestBudget, n.metrics.Handler()))
	// Bounded as the API is (newServer), with a cap for a scraper or two.
	srv := newServer(mux)
	l = newLimitListener(l, "metrics "+addr, func() int { return metricsConnCap }, n.log)
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// MetricsListenAddr is where metrics_addr listens: ":PORT" means loopback,
// not every interface (the metrics are unauthenticated; name an address to
// serve them to the network).
func MetricsListenAddr(addr string) string {
	if host, port, err := net.SplitHostPort(addr); err == nil && host == "" {
		return net.JoinHostPort("127.0.0.1", port)
	}
	return addr
}

// moveOutcomes are the values of vmha_migrations_total's outcome label.
var moveOutcomes = []string{model.MoveLive, model.MoveRestart, "aborted", "refused", "failed"}

// fenceTestKey marks the context of a fence run by vmha fence test
// --power-cycle: it is counted as a test, not as a fence.
type fenceTestKey struct{}

// withFenceTest marks ctx as a fence test's.
func withFenceTest(ctx context.Context) context.Context {
	return context.WithValue(ctx, fenceTestKey{}, true)
}

// countFence counts one fence run: a real one in vmha_fence_total and
// vmha_fence_duration_seconds, a power-cycle test in vmha_fence_tests_total
// only, so that an operator's test never looks like a host failure.
func (m *Metrics) countFence(ctx context.Context, action string, err error, took time.Duration) {
	if test, _ := ctx.Value(fenceTestKey{}).(bool); test {
		m.fenceTests.WithLabelValues(result(err)).Inc()
		return
	}
	m.fences.WithLabelValues(action, result(err)).Inc()
	m.fenceSeconds.WithLabelValues(result(err)).Observe(took.Seconds())
}

// moveStarts is when each move that cmd ends was committed (model.Placement
// Since of the placement in flight); read before cmd commits.
func (n *Node) moveStarts(cmd *Command) map[string]time.Time {
	out := map[string]time.Time{}
	if cmd == nil || cmd.Op != OpPlace {
		return out
	}
	n.fsm.Read(func(s *model.State) {
		for _, p := range cmd.Placements {
			if cur := s.Status.Placements[p.VM]; p.Moved != nil && cur != nil && cur.MigrateFrom != "" {
				out[p.VM] = cur.Since
			}
		}
	})
	return out
}

// countMoveEnds counts the moves that the committed cmd ended (placements
// with Moved), with their durations from starts (moveStarts).
func (m *Metrics) countMoveEnds(cmd *Command, starts map[string]time.Time, now time.Time) {
	if cmd == nil || cmd.Op != OpPlace {
		return
	}
	for _, p := range cmd.Placements {
		if p.Moved == nil || p.MigrateFrom != "" {
			continue
		}
		o := p.Moved.Outcome
		m.migrations.WithLabelValues(o).Inc()
		if t, ok := starts[p.VM]; ok && !t.IsZero() {
			m.migrationSecs.WithLabelValues(o).Observe(max(0, now.Sub(t).Seconds()))
		}
	}
}

// buildInfo is vmha_build_info: always 1, with the version (make build's
// stamp, the module version, or "(devel)"), the VCS revision and the Go
// version, as vmha version and vmhad --version print them.
func buildInfo() prometheus.Collector {
	bi := buildinfo.Get()
	version, revision := bi.Version, bi.Revision
	if revision == "" {
		revision = "unknown"
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "vmha_build_info",
		Help:        "Always 1; the labels say which vmhad this is: version, VCS revision, Go version.",
		ConstLabels: prometheus.Labels{"version": version, "revision": revision, "goversion": bi.Go},
	})
	g.Set(1)
	return g
}

// stateCollector reports the cluster at scrape time.
//
// Two kinds of gauges: this host's own view (vmha_members, vmha_is_leader,
// vmha_quorate, raft, TLS expiry, data_dir space), exported by every host;
// and the cluster's state (vmha_hosts, vmha_vms*, vmha_quorum_*, the
// per-host vmha_host_* and per-VM vmha_vm_* gauges), exported only by the
// raft leader: a follower leaves those series out, so sum() over all hosts
// counts the cluster once, and the series keep their labels when the
// leader changes (no leader label to break a graph). During a leader
// change they may be absent for a scrape or two, or, for a scrape, come
// from two hosts: max without(instance) (...) is the exact form.
type stateCollector struct{ n *Node }

var (
	descMembers  = prometheus.NewDesc("vmha_members", "Gossip members by status.", []string{"status"}, nil)
	descLeader   = prometheus.NewDesc("vmha_is_leader", "1 if this host is the raft leader.", nil, nil)
	descQuorate  = prometheus.NewDesc("vmha_quorate", "1 if this host sees a quorum of voters alive and a leader.", nil, nil)
	descTerm     = prometheus.NewDesc("vmha_raft_term", "Current raft term.", nil, nil)
	descApplied  = prometheus.NewDesc("vmha_raft_applied_index", "Last log index applied to the state.", nil, nil)
	descHosts    = prometheus.NewDesc("vmha_hosts", "Configured hosts by lifecycle state (alive, lost, fence-failed, fenced); leader only.", []string{"state"}, nil)
	descVMs      = prometheus.NewDesc("vmha_vms", "Managed VMs by whether they are placed on a host; leader only.", []string{"placed"}, nil)
	descDevice   = prometheus.NewDesc("vmha_fence_device_up", "1 if the host's fence device answered its last check (leader only).", []string{"host"}, nil)
	descInsecure = prometheus.NewDesc("vmha_insecure", "1 if this host runs without mutual TLS or without encrypted gossip (anyone who reaches its ports can act in the cluster).", nil, nil)
)

var descDiskFree = prometheus.NewDesc("vmha_data_dir_free_bytes", "Bytes free for vmhad (statfs f_bavail) on the file system of data_dir; vmha status warns below the larger of 1 GiB and 5 %.", nil, nil)

// The leader's cluster-wide, per-host and per-VM gauges, and this host's
// certificates.
var (
	descVMStates = prometheus.NewDesc("vmha_vms_by_state", "Managed VMs by the state their host reports (running, shutoff, ..., unknown) and target (started, stopped, disabled, ignored); leader only.", []string{"state", "target"}, nil)
	descVoters   = prometheus.NewDesc("vmha_quorum_voters", "Raft voters: all, alive, and needed for a quorum; leader only.", []string{"kind"}, nil)

	descHostState  = prometheus.NewDesc("vmha_host_state", "1 for the host's lifecycle state (alive, lost, fence-failed, fenced), 0 for the others; leader only.", []string{"host", "state"}, nil)
	descHostAdmin  = prometheus.NewDesc("vmha_host_admin", "1 for each administrative state the host is in (draining, drained, maintenance, standby, ...); absent when none; leader only.", []string{"host", "admin"}, nil)
	descHostMemory = prometheus.NewDesc("vmha_host_memory_bytes", "The host's memory for VMs (total) and what its placed VMs take (used); leader only.", []string{"host", "kind"}, nil)
	descHostVMs    = prometheus.NewDesc("vmha_host_vms", "VMs placed on the host; leader only.", []string{"host"}, nil)

	descVMRunning = prometheus.NewDesc("vmha_vm_running", "1 if the VM is reported running on host (where it runs, or else where it is placed; \"\" when neither); leader only.", []string{"vm", "host"}, nil)
	descVMTarget  = prometheus.NewDesc("vmha_vm_target", "1 for the VM's target (started, stopped, disabled, ignored); leader only.", []string{"vm", "target"}, nil)
	descVMFails   = prometheus.NewDesc("vmha_vm_fail_count", "The VM's fail count on host (only hosts where it failed); leader only.", []string{"vm", "host"}, nil)

	descCertExpiry = prometheus.NewDesc("vmha_tls_cert_expiry_timestamp_seconds", "When this host's TLS certificate (cert=\"host\", tls.cert_file) and the cluster CA (cert=\"ca\", tls.ca_file) expire, as read from the files at scrape time; absent without TLS.", []string{"cert"}, nil)
)

// hostStates and vmTargets are every value of the enum labels, each one
// exported (0 or 1) so that a state change is a value change.
var (
	hostStates = []model.HostState{model.HostAlive, model.HostLost, model.HostFenceFailed, model.HostFenced}
	vmTargets  = []model.Target{model.TargetStarted, model.TargetStopped, model.TargetDisabled, model.TargetIgnored}
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descMembers, descLeader, descQuorate, descTerm, descApplied, descHosts, descVMs, descDevice, descInsecure, descDiskFree,
		descVMStates, descVoters, descHostState, descHostAdmin, descHostMemory, descHostVMs, descVMRunning, descVMTarget, descVMFails, descCertExpiry} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.n
	byStatus := map[string]float64{"alive": 0, "leaving": 0, "left": 0, "failed": 0}
	for _, m := range n.serf.Members() {
		byStatus[memberStatus(decide.Members{m.Name: memberOf(m)}, m.Name)]++
	}
	for s, v := range byStatus {
		ch <- prometheus.MustNewConstMetric(descMembers, prometheus.GaugeValue, v, s)
	}
	leader := n.raft.State() == raft.Leader
	ch <- prometheus.MustNewConstMetric(descLeader, prometheus.GaugeValue, b2f(leader))
	st := n.Status()
	ch <- prometheus.MustNewConstMetric(descInsecure, prometheus.GaugeValue, b2f(st.Security.Insecure))
	ch <- prometheus.MustNewConstMetric(descQuorate, prometheus.GaugeValue, b2f(st.Quorum.Quorate))
	ch <- prometheus.MustNewConstMetric(descTerm, prometheus.GaugeValue, float64(n.raft.CurrentTerm()))
	ch <- prometheus.MustNewConstMetric(descApplied, prometheus.GaugeValue, float64(n.raft.AppliedIndex()))
	if d, err := statDisk(n.cfg.DataDir); err == nil {
		ch <- prometheus.MustNewConstMetric(descDiskFree, prometheus.GaugeValue, float64(d.Free))
	}
	collectCertExpiry(ch, n.cfg.TLS)
	if leader {
		collectCluster(ch, st)
	}
}

// collectCertExpiry exports the expiry of this host's certificate and CA.
func collectCertExpiry(ch chan<- prometheus.Metric, f pki.Files) {
	for _, c := range []struct{ label, path string }{{"host", f.Cert}, {"ca", f.CA}} {
		if c.path == "" {
			continue
		}
		if t, err := pki.NotAfter(c.path); err == nil {
			ch <- prometheus.MustNewConstMetric(descCertExpiry, prometheus.GaugeValue, float64(t.Unix()), c.label)
		}
	}
}

// collectCluster exports the leader's gauges of the cluster state st.
func collectCluster(ch chan<- prometheus.Metric, st *api.Status) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	hosts := map[model.HostState]float64{}
	for _, h := range st.Hosts {
		hosts[h.State]++
		if h.FenceCheck != nil {
			gauge(descDevice, b2f(h.FenceCheck.OK), h.Name)
		}
		for _, s := range hostStates {
			gauge(descHostState, b2f(h.State == s), h.Name, string(s))
		}
		for _, a := range h.Admin {
			gauge(descHostAdmin, 1, h.Name, a.State)
		}
		gauge(descHostMemory, float64(h.MemoryMiB)*(1<<20), h.Name, "total")
		gauge(descHostMemory, float64(h.UsedMiB)*(1<<20), h.Name, "used")
		gauge(descHostVMs, float64(len(h.VMs)), h.Name)
	}
	for _, s := range hostStates {
		gauge(descHosts, hosts[s], string(s))
	}
	q := st.Quorum
	gauge(descVoters, float64(len(q.Voters)), "all")
	gauge(descVoters, float64(len(q.AliveVoters)), "alive")
	gauge(descVoters, float64(q.Needed), "needed")
	placed := 0.0
	type stateTarget struct{ state, target string }
	byState := map[stateTarget]float64{}
	for _, v := range st.VMs {
		if v.Host != "" {
			placed++
		}
		target := v.Target
		if target == "" {
			target = model.TargetStarted
		}
		state := v.State
		if state == "" {
			state = "unknown"
		}
		byState[stateTarget{state, string(target)}]++
		where, running := v.Host, v.State == "running"
		if v.ActualHost != "" {
			where, running = v.ActualHost, v.Actual == "running"
		}
		gauge(descVMRunning, b2f(running), v.Name, where)
		for _, t := range vmTargets {
			gauge(descVMTarget, b2f(target == t), v.Name, string(t))
		}
		for _, f := range v.Failures {
			gauge(descVMFails, float64(f.Count), v.Name, f.Host)
		}
	}
	gauge(descVMs, placed, "true")
	gauge(descVMs, float64(len(st.VMs))-placed, "false")
	for k, v := range byState {
		gauge(descVMStates, v, k.state, k.target)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
