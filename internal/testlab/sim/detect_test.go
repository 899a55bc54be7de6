//go:build linux

package sim

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/serf/serf"

	"github.com/vmha/vmha/config"
	"github.com/vmha/vmha/model"
)

// TestDetectionUnderLoad is issue 17's failure-detection campaign, not a
// CI test: it runs TestSimulatedClusterSmall's shape (3 voters, 40 hosts,
// 1,000 VMs) SIM_CAMPAIGN times, each time with one busy loop per core
// running beside it (SIM_SATURATE=0 leaves the machine alone), kills one
// host and counts the healthy hosts that gossip declared failed, that the
// leader marked lost and that were fenced. It fails if any healthy host
// was fenced or marked lost.
//
//	SIM_CAMPAIGN=20 go test -run TestDetectionUnderLoad -v -timeout 30m ./internal/testlab/sim/
//	SIM_CAMPAIGN=20 SIM_GOSSIP=200ms,100ms,100ms,2 go test -run TestDetectionUnderLoad ...
//
// SIM_GOSSIP=PROBE,TIMEOUT,GOSSIP,MULT sets the timers (default: vmhad's
// defaults); several sets separated by ";" take turns, run by run, so that
// each sees the same background load ("default" names vmhad's). SIM_HOLD (default 5s) how long each run stays up, saturated,
// after the victim's VMs run elsewhere, SIM_HOSTS and SIM_VMS the size,
// SIM_KILLS how many hosts each run kills one after the other (default 1),
// SIM_BUDGET a time after which no further run starts.
// docs/scale.md ("Failure detection under load") has the results.
func TestDetectionUnderLoad(t *testing.T) {
	runs, _ := strconv.Atoi(os.Getenv("SIM_CAMPAIGN"))
	if runs <= 0 {
		t.Skip("a measurement campaign: set SIM_CAMPAIGN=N (runs)")
	}
	sets := []config.Gossip{{}}
	if s := os.Getenv("SIM_GOSSIP"); s != "" {
		sets = nil
		for _, f := range strings.Split(s, ";") {
			var g config.Gossip
			if f != "default" {
				var err error
				if g, err = parseGossip(f); err != nil {
					t.Fatal(err)
				}
			}
			sets = append(sets, g)
		}
	}
	hold := 5 * time.Second
	if s := os.Getenv("SIM_HOLD"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("SIM_HOLD: %v", err)
		}
		hold = d
	}
	hosts, vms, kills := envInt("SIM_HOSTS", 40), envInt("SIM_VMS", 1000), envInt("SIM_KILLS", 1)
	busy := runtime.NumCPU()
	if s := os.Getenv("SIM_SATURATE"); s != "" {
		busy, _ = strconv.Atoi(s)
	}
	// SIM_BUDGET bounds the campaign's length: no run starts after it.
	var budget time.Duration
	if s := os.Getenv("SIM_BUDGET"); s != "" {
		var err error
		if budget, err = time.ParseDuration(s); err != nil {
			t.Fatalf("SIM_BUDGET: %v", err)
		}
	}
	t0 := time.Now()
	results := make([][]detectRun, len(sets))
	for i := 0; i < runs*len(sets); i++ {
		if budget > 0 && time.Since(t0) > budget {
			t.Logf("SIM_BUDGET %v spent after %d runs", budget, i)
			break
		}
		k := i % len(sets)
		r := detectOnce(t, i/len(sets), hosts, vms, kills, sets[k], busy, hold)
		results[k] = append(results[k], r)
		t.Logf("run %2d [%s]: %s", i/len(sets)+1, timersOf(sets[k]), r)
	}
	for k, g := range sets {
		s := summarize(results[k])
		t.Logf("SUMMARY hosts=%d vms=%d timers=%s busy=%d runs=%d kills/run=%d: %s", hosts, vms, timersOf(g), busy, len(results[k]), kills, s)
		if s.falseFenced > 0 || s.falseLost > 0 {
			t.Errorf("timers %s: healthy hosts lost in %d runs, fenced in %d runs", timersOf(g), s.runsLost, s.runsFenced)
		}
	}
}

// detectRun is one run of the campaign.
type detectRun struct {
	err error
	// One entry per victim.
	detect, fence, recovery []time.Duration
	// gossipFailed: healthy hosts an observer's serf saw failed;
	// lost: healthy hosts the leader committed as not alive;
	// fenced: healthy hosts the fence script powered off.
	gossipFailed, lost, fenced []string
	load                       string
}

func (r detectRun) String() string {
	if r.err != nil {
		return fmt.Sprintf("ERROR %v (gossip failed %v, lost %v, fenced %v)", r.err, r.gossipFailed, r.lost, r.fenced)
	}
	return fmt.Sprintf("detect %v fence %v recover %v; healthy: gossip-failed %v lost %v fenced %v; loadavg %s",
		r.detect, r.fence, r.recovery, r.gossipFailed, r.lost, r.fenced, r.load)
}

func detectOnce(t *testing.T, i, hosts, vms, kills int, g config.Gossip, busy int, hold time.Duration) (r detectRun) {
	stop, err := saturate(busy)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	dir := t.TempDir()
	c, err := Start(Options{Dir: dir, Hosts: hosts, VMs: vms, Gossip: g})
	if err != nil {
		r.err = err
		return r
	}
	defer c.Close()
	// The victims: kills distinct hosts, never the observer (sim0001).
	observer := c.hosts[0]
	victims := map[string]bool{}
	var order []string
	for j := 0; len(order) < kills && j < hosts; j++ {
		h := c.hosts[1+(i*7+5+j*11)%(hosts-1)].Name
		if !victims[h] {
			victims[h] = true
			order = append(order, h)
		}
	}
	failed := watchFailed(c, observer, victims)
	for _, victim := range order {
		f, err := c.FailHost(victim, 2*time.Minute)
		if f != nil && !f.Lost.IsZero() {
			r.detect = append(r.detect, f.Detect().Round(time.Millisecond))
			if !f.Fenced.IsZero() && err == nil {
				r.fence = append(r.fence, f.FenceTime().Round(time.Millisecond))
				r.recovery = append(r.recovery, f.Recover().Round(time.Millisecond))
			}
		}
		if err != nil {
			r.err = err
			break
		}
	}
	if r.err == nil {
		time.Sleep(hold)
	}
	r.gossipFailed = failed()
	for h, n := range c.Fences() {
		if !victims[h] && n > 0 {
			r.fenced = append(r.fenced, h)
		}
	}
	c.replica.fsm.Read(func(s *model.State) {
		for hn, hs := range s.Status.Hosts {
			if !victims[hn] && c.byName[hn] != nil && hs.State != model.HostAlive {
				r.lost = append(r.lost, hn)
			}
		}
	})
	sort.Strings(r.fenced)
	sort.Strings(r.lost)
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		r.load = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	return r
}

// watchFailed samples observer's own view of gossip every 50 ms for
// members other than victims declared failed, until the returned function
// is called; that returns them, sorted.
func watchFailed(c *Cluster, observer *Host, victims map[string]bool) func() []string {
	ctx, cancel := context.WithCancel(context.Background())
	failed := map[string]bool{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		tk := time.NewTicker(50 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
			}
			for _, m := range observer.serf.Members() {
				if m.Status == serf.StatusFailed && !victims[m.Name] && c.byName[m.Name] != nil {
					failed[m.Name] = true
				}
			}
		}
	}()
	return func() []string {
		cancel()
		<-done
		var out []string
		for h := range failed {
			out = append(out, h)
		}
		sort.Strings(out)
		return out
	}
}

// saturate runs n busy loops, each its own process, as another tenant of
// the machine would; stop kills exactly those processes.
func saturate(n int) (stop func(), err error) {
	var cmds []*exec.Cmd
	stop = func() {
		for _, c := range cmds {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
		cmds = nil
	}
	for i := 0; i < n; i++ {
		c := exec.Command("/bin/sh", "-c", "while :; do :; done")
		// Killed with the test process too (a test timeout panics past
		// the deferred stop).
		c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := c.Start(); err != nil {
			stop()
			return nil, err
		}
		cmds = append(cmds, c)
	}
	return stop, nil
}

type detectSummary struct {
	runs, errors, samples                      int
	p50, p99, max                              time.Duration
	fenceP50, fenceMax, recoverP50, recoverMax time.Duration
	gossipFailed, falseLost, falseFenced       int
	runsGossipFailed, runsLost, runsFenced     int
}

func (s detectSummary) String() string {
	return fmt.Sprintf("errors %d; %d failures: detect p50 %v p99 %v max %v; fence p50 %v max %v; recover p50 %v max %v; healthy hosts gossip-failed %d (in %d runs), lost %d (in %d runs), fenced %d (in %d runs)",
		s.errors, s.samples, s.p50, s.p99, s.max, s.fenceP50, s.fenceMax, s.recoverP50, s.recoverMax,
		s.gossipFailed, s.runsGossipFailed, s.falseLost, s.runsLost, s.falseFenced, s.runsFenced)
}

func summarize(rs []detectRun) detectSummary {
	s := detectSummary{runs: len(rs)}
	var det, fen, rec []time.Duration
	for _, r := range rs {
		if r.err != nil {
			s.errors++
		}
		det = append(det, r.detect...)
		fen = append(fen, r.fence...)
		rec = append(rec, r.recovery...)
		s.gossipFailed += len(r.gossipFailed)
		s.falseLost += len(r.lost)
		s.falseFenced += len(r.fenced)
		if len(r.gossipFailed) > 0 {
			s.runsGossipFailed++
		}
		if len(r.lost) > 0 {
			s.runsLost++
		}
		if len(r.fenced) > 0 {
			s.runsFenced++
		}
	}
	s.samples = len(det)
	s.p50, s.p99, s.max = quantile(det, 0.5), quantile(det, 0.99), quantile(det, 1)
	s.fenceP50, s.fenceMax = quantile(fen, 0.5), quantile(fen, 1)
	s.recoverP50, s.recoverMax = quantile(rec, 0.5), quantile(rec, 1)
	return s
}

// quantile is the nearest-rank quantile (at 20 samples, p99 is the
// largest).
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	k := int(math.Ceil(q*float64(len(s)))) - 1
	if k < 0 {
		k = 0
	}
	return s[k].Round(time.Millisecond)
}

// parseGossip reads SIM_GOSSIP's PROBE,TIMEOUT,GOSSIP,MULT.
func parseGossip(s string) (config.Gossip, error) {
	var g config.Gossip
	f := strings.Split(s, ",")
	if len(f) != 4 {
		return g, fmt.Errorf("SIM_GOSSIP=%q: want PROBE,TIMEOUT,GOSSIP,MULT", s)
	}
	var errs [4]error
	g.ProbeInterval, errs[0] = time.ParseDuration(f[0])
	g.ProbeTimeout, errs[1] = time.ParseDuration(f[1])
	g.GossipInterval, errs[2] = time.ParseDuration(f[2])
	g.SuspicionMult, errs[3] = strconv.Atoi(f[3])
	for _, err := range errs {
		if err != nil {
			return g, fmt.Errorf("SIM_GOSSIP=%q: %w", s, err)
		}
	}
	return g, nil
}

func timersOf(g config.Gossip) string {
	if g.ProbeInterval == 0 {
		o := Options{Dir: "x", Hosts: 1}
		_ = o.defaults()
		g = o.Gossip
	}
	return fmt.Sprintf("%v,%v,%v,%d", g.ProbeInterval, g.ProbeTimeout, g.GossipInterval, g.SuspicionMult)
}

func envInt(k string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(k)); err == nil && n > 0 {
		return n
	}
	return def
}
