package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.yaml.in/yaml/v3"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/internal/testlab/testenv"
	"github.com/vmha/vmha/model"
)

// registered lists the metric names vmhad's registry serves, histograms
// with their _bucket, _sum and _count series.
func registered(t *testing.T) map[string]bool {
	t.Helper()
	m := newMetrics(&Node{})
	ch := make(chan *prometheus.Desc, 512)
	go func() { m.reg.Describe(ch); close(ch) }()
	re := regexp.MustCompile(`fqName: "([^"]+)"`)
	names := map[string]bool{}
	for d := range ch {
		if s := re.FindStringSubmatch(d.String()); s != nil {
			names[s[1]] = true
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				names[s[1]+suf] = true
			}
		}
	}
	return names
}

var metricName = regexp.MustCompile(`\bvmha_[a-z0-9_]+`)

// TestMonitoringUsesServedMetrics: every vmha_ metric that the shipped
// Grafana dashboard and Prometheus alert rules query is one vmhad serves,
// so that a renamed metric cannot leave them silently empty.
func TestMonitoringUsesServedMetrics(t *testing.T) {
	have := registered(t)
	var exprs []string
	raw, err := os.ReadFile("../configs/monitoring/vmha-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("dashboard panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			exprs = append(exprs, q.Expr)
		}
	}
	raw, err = os.ReadFile("../configs/monitoring/vmha-alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(raw, &rules); err != nil {
		t.Fatalf("alert rules: %v", err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || r.Expr == "" {
				t.Errorf("alert rule %q without a name or an expression", r.Alert)
			}
			exprs = append(exprs, r.Expr)
		}
	}
	used := map[string]bool{}
	for _, e := range exprs {
		for _, n := range metricName.FindAllString(e, -1) {
			used[n] = true
		}
	}
	if len(used) < 10 {
		t.Fatalf("the dashboard and rules use only %d vmha metrics: were they read?", len(used))
	}
	var missing []string
	for n := range used {
		if !have[n] {
			missing = append(missing, n)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Fatalf("configs/monitoring/ queries metrics vmhad does not serve: %s", strings.Join(missing, ", "))
	}
}

// TestAlertRulesPromtool: Prometheus's own checker accepts the shipped
// alert rules (the PromQL parses, the durations and labels are valid),
// which the YAML decoding above does not check. promtool is Debian's
// prometheus package (scripts/deps.sh).
func TestAlertRulesPromtool(t *testing.T) {
	promtool := testenv.NeedCommand(t, "promtool")
	out, err := exec.Command(promtool, "check", "rules", "../configs/monitoring/vmha-alerts.yml").CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules configs/monitoring/vmha-alerts.yml: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "SUCCESS") {
		t.Errorf("promtool check rules printed no SUCCESS:\n%s", out)
	}
}

// TestMetricsDocumented: every vmha_ metric vmhad serves is in
// docs/metrics.md.
func TestMetricsDocumented(t *testing.T) {
	raw, err := os.ReadFile("../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := map[string]bool{}
	for _, n := range metricName.FindAllString(string(raw), -1) {
		doc[n] = true
	}
	for n := range registered(t) {
		if strings.HasPrefix(n, "vmha_") && !strings.HasSuffix(n, "_bucket") && !strings.HasSuffix(n, "_sum") && !strings.HasSuffix(n, "_count") && !doc[n] {
			t.Errorf("%s is not in docs/metrics.md", n)
		}
	}
}

// TestFenceTestIsNotAFence: a vmha fence test --power-cycle counts in
// vmha_fence_tests_total, never in vmha_fence_total or its histogram.
func TestFenceTestIsNotAFence(t *testing.T) {
	m := newMetrics(&Node{})
	ctx := context.Background()
	m.countFence(withFenceTest(ctx), "reboot", nil, time.Second)
	m.countFence(withFenceTest(ctx), "reboot", errors.New("bmc down"), time.Second)
	if n := testutil.CollectAndCount(m.fences); n != 0 {
		t.Fatalf("a fence test counted as a fence: %d series", n)
	}
	if n := testutil.CollectAndCount(m.fenceSeconds); n != 0 {
		t.Fatalf("a fence test observed as a fence duration: %d series", n)
	}
	if v := testutil.ToFloat64(m.fenceTests.WithLabelValues("success")); v != 1 {
		t.Fatalf("fence tests success = %v, want 1", v)
	}
	m.countFence(ctx, "off", nil, 2*time.Second)
	if v := testutil.ToFloat64(m.fences.WithLabelValues("off", "success")); v != 1 {
		t.Fatalf("vmha_fence_total{off,success} = %v, want 1", v)
	}
}

// TestCountMoveEnds: a committed placement that ends a move counts once
// by outcome, with its duration from the move's commit; a cold fallback
// (still moving) and a plain placement count nothing.
func TestCountMoveEnds(t *testing.T) {
	m := newMetrics(&Node{})
	start := time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)
	cmd := &Command{Op: OpPlace, Placements: []model.Placement{
		{VM: "a", Host: "h2", Moved: &model.MoveRecord{ID: "mig-1", From: "h1", To: "h2", Outcome: model.MoveLive}},
		{VM: "b", Host: "h1", Moved: &model.MoveRecord{ID: "mig-2", From: "h1", To: "h2", Outcome: "refused", Why: "no"}},
		{VM: "c", Host: "h2", MigrateFrom: "h1", MigrationID: "mig-3/restart", Cold: true},
		{VM: "d", Host: "h3"},
	}}
	m.countMoveEnds(cmd, map[string]time.Time{"a": start, "b": start}, start.Add(30*time.Second))
	want := `
# HELP vmha_migrations_total Moves of a VM whose end this host committed as leader, by outcome: live, restart (arrived), aborted, refused, failed (stayed on the source).
# TYPE vmha_migrations_total counter
vmha_migrations_total{outcome="aborted"} 0
vmha_migrations_total{outcome="failed"} 0
vmha_migrations_total{outcome="live"} 1
vmha_migrations_total{outcome="refused"} 1
vmha_migrations_total{outcome="restart"} 0
`
	if err := testutil.CollectAndCompare(m.migrations, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(m.migrationSecs); n != 2 {
		t.Fatalf("duration series: %d, want 2 (live, refused)", n)
	}
}

// TestClusterGauges: the leader's per-host and per-VM gauges read from a
// status.
func TestClusterGauges(t *testing.T) {
	st := &api.Status{
		Quorum: api.Quorum{Voters: []string{"h1", "h2", "h3"}, AliveVoters: []string{"h1", "h2"}, Needed: 2, Quorate: true},
		Hosts: []api.Host{
			{Name: "h1", State: model.HostAlive, MemoryMiB: 1024, UsedMiB: 512, VMs: []string{"a"}, FenceCheck: &api.FenceCheck{OK: true}},
			{Name: "h2", State: model.HostFenceFailed, MemoryMiB: 2048, VMs: []string{}, Admin: []api.AdminState{{State: "drained"}}},
		},
		VMs: []api.VM{
			{Name: "a", Host: "h1", State: "running", Target: model.TargetStarted, Actual: "running", ActualHost: "h1",
				Failures: []api.VMFailure{{Host: "h2", Count: 3}}},
			{Name: "b", State: "unknown", Target: model.TargetStopped},
		},
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectorFunc(func(ch chan<- prometheus.Metric) { collectCluster(ch, st) }))
	want := `
# HELP vmha_host_admin 1 for each administrative state the host is in (draining, drained, maintenance, standby, ...); absent when none; leader only.
# TYPE vmha_host_admin gauge
vmha_host_admin{admin="drained",host="h2"} 1
# HELP vmha_host_memory_bytes The host's memory for VMs (total) and what its placed VMs take (used); leader only.
# TYPE vmha_host_memory_bytes gauge
vmha_host_memory_bytes{host="h1",kind="total"} 1.073741824e+09
vmha_host_memory_bytes{host="h1",kind="used"} 5.36870912e+08
vmha_host_memory_bytes{host="h2",kind="total"} 2.147483648e+09
vmha_host_memory_bytes{host="h2",kind="used"} 0
# HELP vmha_host_vms VMs placed on the host; leader only.
# TYPE vmha_host_vms gauge
vmha_host_vms{host="h1"} 1
vmha_host_vms{host="h2"} 0
# HELP vmha_hosts Configured hosts by lifecycle state (alive, lost, fence-failed, fenced); leader only.
# TYPE vmha_hosts gauge
vmha_hosts{state="alive"} 1
vmha_hosts{state="fence-failed"} 1
vmha_hosts{state="fenced"} 0
vmha_hosts{state="lost"} 0
# HELP vmha_quorum_voters Raft voters: all, alive, and needed for a quorum; leader only.
# TYPE vmha_quorum_voters gauge
vmha_quorum_voters{kind="alive"} 2
vmha_quorum_voters{kind="all"} 3
vmha_quorum_voters{kind="needed"} 2
# HELP vmha_vm_fail_count The VM's fail count on host (only hosts where it failed); leader only.
# TYPE vmha_vm_fail_count gauge
vmha_vm_fail_count{host="h2",vm="a"} 3
# HELP vmha_vm_running 1 if the VM is reported running on host (where it runs, or else where it is placed; "" when neither); leader only.
# TYPE vmha_vm_running gauge
vmha_vm_running{host="",vm="b"} 0
vmha_vm_running{host="h1",vm="a"} 1
# HELP vmha_vms_by_state Managed VMs by the state their host reports (running, shutoff, ..., unknown) and target (started, stopped, disabled, ignored); leader only.
# TYPE vmha_vms_by_state gauge
vmha_vms_by_state{state="running",target="started"} 1
vmha_vms_by_state{state="unknown",target="stopped"} 1
`
	names := []string{"vmha_host_admin", "vmha_host_memory_bytes", "vmha_host_vms", "vmha_hosts", "vmha_quorum_voters", "vmha_vm_fail_count", "vmha_vm_running", "vmha_vms_by_state"}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg, "vmha_host_state"); err != nil || n != 8 {
		t.Fatalf("vmha_host_state: %d series (%v), want 4 states × 2 hosts", n, err)
	}
	if n, err := testutil.GatherAndCount(reg, "vmha_vm_target"); err != nil || n != 8 {
		t.Fatalf("vmha_vm_target: %d series (%v), want 4 targets × 2 VMs", n, err)
	}
}

// collectorFunc is an unchecked collector around a collect function.
type collectorFunc func(chan<- prometheus.Metric)

func (f collectorFunc) Describe(chan<- *prometheus.Desc)    {}
func (f collectorFunc) Collect(ch chan<- prometheus.Metric) { f(ch) }
