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

	"github.com/vmha/vmha/cluster/decide"
	"github.com/vmha/vmha/model"
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
	deviceChecks  *prometheus.CounterVec
	agentStarts   *prometheus.CounterVec
	agentStops    *prometheus.CounterVec
	leaderChanges prometheus.Counter
	alerts        *prometheus.CounterVec
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
	m.reg.MustRegister(m.fences, m.fenceSeconds, m.recoveries, m.recoverySecs, m.placeSeconds, m.passSeconds,
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

// stateCollector reports the cluster as this host sees it at scrape time.
type stateCollector struct{ n *Node }

var (
	descMembers  = prometheus.NewDesc("vmha_members", "Gossip members by status.", []string{"status"}, nil)
	descLeader   = prometheus.NewDesc("vmha_is_leader", "1 if this host is the raft leader.", nil, nil)
	descQuorate  = prometheus.NewDesc("vmha_quorate", "1 if this host sees a quorum of voters alive and a leader.", nil, nil)
	descTerm     = prometheus.NewDesc("vmha_raft_term", "Current raft term.", nil, nil)
	descApplied  = prometheus.NewDesc("vmha_raft_applied_index", "Last log index applied to the state.", nil, nil)
	descHosts    = prometheus.NewDesc("vmha_hosts", "Configured hosts by lifecycle state (alive, lost, fence-failed, fenced).", []string{"state"}, nil)
	descVMs      = prometheus.NewDesc("vmha_vms", "Managed VMs by whether they are placed on a host.", []string{"placed"}, nil)
	descDevice   = prometheus.NewDesc("vmha_fence_device_up", "1 if the host's fence device answered its last check (leader only).", []string{"host"}, nil)
	descInsecure = prometheus.NewDesc("vmha_insecure", "1 if this host runs without mutual TLS or without encrypted gossip (anyone who reaches its ports can act in the cluster).", nil, nil)
)

var descDiskFree = prometheus.NewDesc("vmha_data_dir_free_bytes", "Bytes free for vmhad (statfs f_bavail) on the file system of data_dir; vmha status warns below the larger of 1 GiB and 5 %.", nil, nil)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descMembers, descLeader, descQuorate, descTerm, descApplied, descHosts, descVMs, descDevice, descInsecure, descDiskFree} {
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
	hosts := map[model.HostState]float64{model.HostAlive: 0, model.HostLost: 0, model.HostFenceFailed: 0, model.HostFenced: 0}
	for _, h := range st.Hosts {
		hosts[h.State]++
		if h.FenceCheck != nil {
			ch <- prometheus.MustNewConstMetric(descDevice, prometheus.GaugeValue, b2f(h.FenceCheck.OK), h.Name)
		}
	}
	for s, v := range hosts {
		ch <- prometheus.MustNewConstMetric(descHosts, prometheus.GaugeValue, v, string(s))
	}
	placed := 0.0
	for _, v := range st.VMs {
		if v.Host != "" {
			placed++
		}
	}
	ch <- prometheus.MustNewConstMetric(descVMs, prometheus.GaugeValue, placed, "true")
	ch <- prometheus.MustNewConstMetric(descVMs, prometheus.GaugeValue, float64(len(st.VMs))-placed, "false")
	if d, err := statDisk(n.cfg.DataDir); err == nil {
		ch <- prometheus.MustNewConstMetric(descDiskFree, prometheus.GaugeValue, float64(d.Free))
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
