// Package sim runs a simulated vmha cluster in one process, large enough
// for the scale figures (1,000 hosts, 50,000 VMs) and small enough for CI.
//
// What is real: a few cluster.Node voters (raft over TCP, boltdb, serf, the
// HTTP API, the coordinator with its fencing and the placement engine),
// one serf/memberlist instance per simulated host on loopback UDP/TCP (so
// failure detection is memberlist's own), registration, observations and
// read indexes over the real peer API, and fencing through the real fence
// code running a fence_* agent script. What is simulated: the hypervisors
// (hypervisor.Memory) and the per-host agent, a light re-implementation of
// cluster.Agent's reconcile that reads the committed state from one shared
// raft non-voter instead of a full replica per host (every replica applies
// the same log, so they are identical by construction, and 1,000 copies of
// a 50,000-VM state do not fit in one process). docs/scale.md explains the
// choices and the figures.
package sim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/serf"
	"github.com/rs/zerolog"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/config"
	"github.com/vmha/vmha/hypervisor"
	"github.com/vmha/vmha/model"
)

// Gossip tags, as cluster/node.go publishes them: the wire contract the
// coordinator reads (raft address, API address, boot id).
const (
	tagRaft = "raft"
	tagAPI  = "api"
	tagBoot = "boot"
)

// Options describe the simulated cluster.
type Options struct {
	// Dir holds every file (voters' data, logs, the fence script).
	Dir string
	// Hosts is the number of simulated hosts; VMs the number of VMs.
	Hosts, VMs int
	// Voters is the number of real cluster.Node voters (default 3). They
	// are witnesses (no hypervisor): every VM runs on a simulated host.
	Voters int
	// HostMemoryMiB and HostCPUs are each simulated host's capacity
	// (default 256 GiB, 64); VMMemoryMiB each VM's size (default 1 GiB).
	HostMemoryMiB uint64
	HostCPUs      uint
	VMMemoryMiB   uint64
	// Gossip are the failure-detector timers of every host, real and
	// simulated (zero: vmhad's defaults).
	Gossip config.Gossip
	// AgentInterval is the simulated agents' reconcile timer (default 2s,
	// vmhad's default).
	AgentInterval time.Duration
	// SampleEvery is how often the never-twice checker takes a consistent
	// picture of every hypervisor (default 100ms).
	SampleEvery time.Duration
	// CompressGossip makes simulated hosts compress gossip as vmhad does
	// (default off: see memberlistConfig).
	CompressGossip bool
	// Logf receives progress lines (nil: none).
	Logf func(format string, args ...any)
}

// Cluster is a running simulated cluster.
type Cluster struct {
	opts     Options
	voters   []*voter
	extra    *voter
	replica  *replica
	hosts    []*Host
	byName   map[string]*Host
	script   string
	fenceDir string
	sinkAddr string
	sink     *http.Server
	// world is held for reading by every hypervisor change and for
	// writing by the checker (hypervisor.MemoryOptions.World).
	world     sync.RWMutex
	seedBytes int
	// plainGossip turns memberlist compression off for simulated hosts.
	plainGossip bool

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu         sync.Mutex
	violations []string
	samples    int
	fences     map[string]int
	closeOnce  sync.Once
}

// Host is one simulated host: its own serf, an in-memory hypervisor and a
// light agent.
type Host struct {
	Name string
	HV   *hypervisor.Memory
	c    *Cluster
	serf *serf.Serf
	addr string

	ctx    context.Context
	cancel context.CancelFunc
	off    atomic.Bool

	// agent state, as cluster.Agent keeps it
	mu     sync.Mutex
	since  map[string]model.VMObserve
	errs   map[string]string
	sent   string
	sentAt time.Time
	term   uint64
}

func (o *Options) defaults() error {
	if o.Dir == "" || o.Hosts < 1 || o.VMs < 0 {
		return errors.New("sim: Dir, Hosts (>=1) and VMs are required")
	}
	if o.Voters == 0 {
		o.Voters = 3
	}
	if o.HostMemoryMiB == 0 {
		o.HostMemoryMiB = 256 << 10
	}
	if o.HostCPUs == 0 {
		o.HostCPUs = 64
	}
	if o.VMMemoryMiB == 0 {
		o.VMMemoryMiB = 1024
	}
	if o.Gossip.ProbeInterval == 0 {
		d := func(k string) time.Duration { v, _ := time.ParseDuration(config.Defaults[k].(string)); return v }
		o.Gossip.ProbeInterval, o.Gossip.ProbeTimeout = d("gossip.probe_interval"), d("gossip.probe_timeout")
		o.Gossip.GossipInterval = d("gossip.gossip_interval")
		o.Gossip.SuspicionMult = config.Defaults["gossip.suspicion_mult"].(int)
	}
	if o.AgentInterval == 0 {
		o.AgentInterval = 2 * time.Second
	}
	if o.SampleEvery == 0 {
		o.SampleEvery = 100 * time.Millisecond
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	return nil
}

// Start builds the seed state, starts the simulated hosts' gossip, the
// shared replica, the voters and the agents, and returns once every VM
// runs where the committed state places it. On error everything started is
// stopped again.
func Start(o Options) (c *Cluster, err error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	c = &Cluster{opts: o, byName: map[string]*Host{}, fences: map[string]int{}, plainGossip: !o.CompressGossip}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			c.Close()
			c = nil
		}
	}()
	t0 := time.Now()
	if err := c.startSink(); err != nil {
		return c, err
	}
	if err := c.writeFenceScript(); err != nil {
		return c, err
	}
	c.addHosts()
	// Gossip first: the voters restore hosts that must be alive in
	// gossip within the coordinator's unseen grace (15 s). (And the voters'
	// ports are picked after the thousand ephemeral gossip ports are.)
	if err := c.startGossip(); err != nil {
		return c, err
	}
	o.Logf("gossip: %d simulated hosts joined (%v)", o.Hosts, time.Since(t0).Round(time.Millisecond))
	t1 := time.Now()
	for i := 1; i <= o.Voters; i++ {
		v, err := c.newVoter(fmt.Sprintf("voter%d", i))
		if err != nil {
			return c, err
		}
		c.voters = append(c.voters, v)
	}
	fsm, index, err := c.seedState()
	if err != nil {
		return c, err
	}
	if err := c.writeSeed(fsm, index); err != nil {
		return c, err
	}
	fsm = nil //nolint:ineffassign,wastedassign // let the seed's copy go before the voters load theirs
	o.Logf("seed: %d hosts, %d VMs, snapshot %.1f MB at index %d (%v)", o.Hosts, o.VMs, float64(c.seedBytes)/1e6, index, time.Since(t1).Round(time.Millisecond))
	t1 = time.Now()
	if c.replica, err = c.startReplica(); err != nil {
		return c, err
	}
	for _, v := range c.voters {
		if err := v.start(c.gossipJoin()); err != nil {
			return c, err
		}
	}
	if err := c.waitFor(2*time.Minute, "a leader", func() bool { return c.leader() != nil }); err != nil {
		return c, err
	}
	if err := c.waitFor(5*time.Minute, "the replica to catch up", func() bool {
		n := 0
		c.replica.fsm.Read(func(s *model.State) { n = len(s.Status.Placements) })
		return n == o.VMs && o.VMs > 0 || o.VMs == 0 && c.replica.raft.AppliedIndex() >= index
	}); err != nil {
		return c, err
	}
	o.Logf("voters: leader elected, replica caught up (%v)", time.Since(t1).Round(time.Millisecond))
	c.wg.Add(2)
	go func() { defer c.wg.Done(); c.replica.viewLoop(c.ctx) }()
	go func() { defer c.wg.Done(); c.fenceLoop(c.ctx) }()
	t2 := time.Now()
	for _, h := range c.hosts {
		h.ctx, h.cancel = context.WithCancel(c.ctx)
		c.wg.Add(1)
		go func() { defer c.wg.Done(); h.run() }()
	}
	c.wg.Add(1)
	go func() { defer c.wg.Done(); c.sampleLoop(c.ctx) }()
	if err := c.waitFor(10*time.Minute, "every VM running where it is placed, every host reported", c.settled); err != nil {
		return c, err
	}
	o.Logf("agents: %d VMs running, %d hosts reported (%v)", o.VMs, o.Hosts, time.Since(t2).Round(time.Millisecond))
	return c, nil
}

func (c *Cluster) addHosts() {
	for i := 1; i <= c.opts.Hosts; i++ {
		name := fmt.Sprintf("sim%04d", i)
		h := &Host{Name: name, c: c, since: map[string]model.VMObserve{}, errs: map[string]string{}}
		h.HV = hypervisor.NewMemory(hypervisor.MemoryOptions{Info: hypervisor.NodeInfo{MemoryMiB: c.opts.HostMemoryMiB, CPUs: c.opts.HostCPUs}, World: &c.world})
		c.hosts = append(c.hosts, h)
		c.byName[name] = h
	}
}

// settled reports whether every placed VM is active on its host's
// hypervisor and every host has reported to the leader.
func (c *Cluster) settled() bool {
	ok := true
	c.replica.fsm.Read(func(s *model.State) {
		for _, h := range c.hosts {
			if h.off.Load() {
				continue
			}
			if s.Status.Observed[h.Name] == nil {
				ok = false
				return
			}
		}
		for vm, p := range s.Status.Placements {
			h := c.byName[p.Host]
			if h == nil {
				ok = false
				return
			}
			if d, found := h.HV.Lookup(vm); !found || !d.State.Active() {
				ok = false
				return
			}
		}
	})
	return ok
}

func (c *Cluster) waitFor(limit time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("sim: timed out after %v waiting for %s", limit, what)
		}
		select {
		case <-c.ctx.Done():
			return c.ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// Close stops everything Start started, in reverse order. It is safe to
// call more than once and after a failed Start.
func (c *Cluster) Close() {
	c.closeOnce.Do(func() {
		c.cancel()
		for _, h := range c.hosts {
			if h.cancel != nil {
				h.cancel()
			}
		}
		c.wg.Wait()
		if c.extra != nil {
			c.extra.stop()
		}
		for _, v := range c.voters {
			v.stop()
		}
		if c.replica != nil {
			c.replica.stop()
		}
		var wg sync.WaitGroup
		sem := make(chan struct{}, 32)
		for _, h := range c.hosts {
			if h.serf == nil {
				continue
			}
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				_ = h.serf.Shutdown()
			}()
		}
		wg.Wait()
		for _, h := range c.hosts {
			_ = h.HV.Close()
		}
		if c.sink != nil {
			_ = c.sink.Close()
		}
	})
}

// startSink serves the simulated hosts' peer API address. The leader
// nudges a host's agent after a placement; a simulated agent wakes on the
// shared replica's change instead, so the sink only acknowledges.
func (c *Cluster) startSink() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	c.sinkAddr = l.Addr().String()
	c.sink = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = c.sink.Serve(l) }()
	return nil
}

// memberlistConfig is cluster/node.go's gossip configuration for one host.
func (c *Cluster) memberlistConfig(name string) *memberlist.Config {
	g := c.opts.Gossip
	mc := memberlist.DefaultLANConfig()
	mc.Name = name
	mc.BindAddr, mc.AdvertiseAddr = "127.0.0.1", "127.0.0.1"
	mc.BindPort, mc.AdvertisePort = 0, 0
	mc.ProbeInterval, mc.ProbeTimeout = g.ProbeInterval, g.ProbeTimeout
	mc.GossipInterval, mc.SuspicionMult = g.GossipInterval, g.SuspicionMult
	mc.PushPullInterval = 5 * time.Second
	// A join's state exchange with 1,000 members on a busy machine can
	// take longer than the 10 s default.
	mc.TCPTimeout = 30 * time.Second
	// vmhad gossips compressed (memberlist's default). A thousand
	// instances in one process spend most of their CPU and garbage on
	// LZW tables, so simulated hosts send plain messages; memberlist reads
	// both, so the voters keep the real setting.
	mc.EnableCompression = !c.plainGossip
	mc.LogOutput = io.Discard
	return mc
}

func newSerf(name string, tags map[string]string, mc *memberlist.Config) (*serf.Serf, error) {
	sc := serf.DefaultConfig()
	sc.NodeName = name
	sc.Tags = tags
	sc.MemberlistConfig = mc
	sc.ReconnectInterval = 3 * time.Second
	sc.LogOutput = io.Discard
	return serf.Create(sc)
}

func newBootID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// startGossip starts every simulated host's serf on loopback and joins it
// to hosts already up (spread, so that no one host answers every join).
func (c *Cluster) startGossip() error {
	t0 := time.Now()
	var mu sync.Mutex
	var firstErr error
	start := func(h *Host) {
		s, err := newSerf(h.Name, map[string]string{tagAPI: c.sinkAddr, tagBoot: newBootID()}, c.memberlistConfig(h.Name))
		mu.Lock()
		defer mu.Unlock()
		if err != nil && firstErr == nil {
			firstErr = fmt.Errorf("serf of %s: %w", h.Name, err)
		}
		if err == nil {
			h.serf = s
			h.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(int(s.Memberlist().LocalNode().Port)))
		}
	}
	start(c.hosts[0])
	if firstErr != nil {
		return firstErr
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	// Every host joins the first: its answer (a full state exchange)
	// holds every host that joined before, so the view converges at once.
	// On a busy machine an exchange with 1,000 members can time out: retry.
	first := c.hosts[0].addr
	var joined []string
	for _, h := range c.hosts[1:] {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			start(h)
			mu.Lock()
			s := h.serf
			mu.Unlock()
			if s == nil {
				return
			}
			var err error
			for attempt := 0; attempt < 5; attempt++ {
				// After two refusals the first host is swamped: any
				// host that joined already will do (the view then
				// converges through gossip and push/pull).
				peer := first
				mu.Lock()
				if attempt >= 2 && len(joined) > 0 {
					peer = joined[attempt*7919%len(joined)]
				}
				mu.Unlock()
				if _, err = s.Join([]string{peer}, true); err == nil {
					mu.Lock()
					joined = append(joined, h.addr)
					mu.Unlock()
					return
				}
			}
			mu.Lock()
			if firstErr == nil {
				firstErr = fmt.Errorf("%s cannot join %s: %w", h.Name, first, err)
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	c.opts.Logf("gossip: every join answered (%v)", time.Since(t0).Round(time.Millisecond))
	want := len(c.hosts)
	last := time.Now()
	return c.waitFor(10*time.Minute, "every simulated host to see every other", func() bool {
		a, b := alive(c.hosts[0].serf), alive(c.hosts[len(c.hosts)-1].serf)
		if time.Since(last) > 5*time.Second {
			last = time.Now()
			c.opts.Logf("gossip: %s sees %d alive, %s %d, of %d", c.hosts[0].Name, a, c.hosts[len(c.hosts)-1].Name, b, want)
		}
		return a >= want && b >= want
	})
}

func alive(s *serf.Serf) int {
	n := 0
	for _, m := range s.Members() {
		if m.Status == serf.StatusAlive {
			n++
		}
	}
	return n
}

// gossipJoin returns a few simulated hosts' gossip addresses to join.
func (c *Cluster) gossipJoin() []string {
	var out []string
	for i := 0; i < len(c.hosts) && len(out) < 3; i++ {
		if !c.hosts[i].off.Load() {
			out = append(out, c.hosts[i].addr)
		}
	}
	return out
}

// leader returns the voter that leads, or nil.
func (c *Cluster) leader() *voter {
	for _, v := range c.voters {
		if v.running() && v.node.IsLeader() {
			return v
		}
	}
	return nil
}

// apiOf returns the peer API address of the raft server id.
func (c *Cluster) apiOf(id string) string {
	c.mu.Lock()
	extra := c.extra // set by MeasureDaemon while agents run
	c.mu.Unlock()
	for _, v := range append(append([]*voter(nil), c.voters...), extra) {
		if v != nil && v.name == id {
			return v.apiAddr
		}
	}
	return ""
}

// leaderAPI is where agents send their writes: the leader the shared
// replica knows, as a host's agent asks its own raft (any voter's API
// forwards to the leader otherwise).
func (c *Cluster) leaderAPI() string {
	if _, id := c.replica.raft.LeaderWithID(); id != "" {
		if a := c.apiOf(string(id)); a != "" {
			return a
		}
	}
	for _, v := range c.voters {
		if v.running() {
			return v.apiAddr
		}
	}
	return ""
}

// peerDo calls the real peer API of the leader, marked as forwarded (as
// cluster's forwardWrite does) so that a follower does not forward again.
func (c *Cluster) peerDo(ctx context.Context, method, path string, in, out any, from string) error {
	addr := c.leaderAPI()
	if addr == "" {
		return errors.New("no voter is running")
	}
	h := http.Header{}
	h.Set(api.HeaderForwarded, from)
	return api.NewTCPClient(addr, 10*time.Second, nil).Do(ctx, method, path, in, out, h)
}

// HostNames returns the simulated hosts' names.
func (c *Cluster) HostNames() []string {
	out := make([]string, 0, len(c.hosts))
	for _, h := range c.hosts {
		out = append(out, h.Name)
	}
	return out
}

// Host returns a simulated host by name.
func (c *Cluster) Host(name string) *Host { return c.byName[name] }

// Violations returns every never-twice violation the checker saw, and
// how many consistent samples it took.
func (c *Cluster) Violations() ([]string, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.violations...), c.samples
}

// Fences returns how often the fence script powered each host off.
func (c *Cluster) Fences() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for k, v := range c.fences {
		out[k] = v
	}
	return out
}

// sampleLoop is the never-twice checker: with the world held, no
// hypervisor changes, so the picture is one instant of the whole cluster.
func (c *Cluster) sampleLoop(ctx context.Context) {
	t := time.NewTicker(c.opts.SampleEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.sampleOnce()
	}
}

// sampleOnce takes one never-twice sample of the whole cluster.
func (c *Cluster) sampleOnce() {
	where := map[string]string{}
	var bad []string
	c.world.Lock()
	for _, h := range c.hosts {
		for _, vm := range h.HV.Active() {
			if other, dup := where[vm]; dup {
				bad = append(bad, fmt.Sprintf("%s active on %s and %s at %s", vm, other, h.Name, time.Now().Format(time.StampMilli)))
			}
			where[vm] = h.Name
		}
	}
	c.world.Unlock()
	c.mu.Lock()
	c.samples++
	if len(c.violations) < 100 {
		c.violations = append(c.violations, bad...)
	}
	c.mu.Unlock()
}

// HeapInuse returns the process's live heap after two collections.
func HeapInuse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// RSS returns the process's resident set size in bytes (0 if unknown).
func RSS() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseUint(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// logger writes a component's log to Dir/name.log.
func (c *Cluster) logger(name string) (zerolog.Logger, io.Closer, error) {
	f, err := os.OpenFile(filepath.Join(c.opts.Dir, name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return zerolog.Nop(), nil, err
	}
	w := &logFile{f: f}
	return zerolog.New(w).Level(zerolog.InfoLevel).With().Timestamp().Str("node", name).Logger(), w, nil
}

// logFile drops writes after Close: a node's last goroutines (a nudge, a
// fence of a deposed leader) may still log while it shuts down.
type logFile struct {
	mu sync.Mutex
	f  *os.File
}

func (l *logFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return len(p), nil
	}
	return l.f.Write(p)
}

func (l *logFile) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
