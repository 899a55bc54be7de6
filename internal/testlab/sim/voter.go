package sim

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/cluster"
	"github.com/vmha/vmha/config"
	"github.com/vmha/vmha/internal/testlab/testenv"
)

// voter is one real cluster.Node (a witness: it votes, may lead and runs
// the coordinator, but has no hypervisor, so every VM is on a simulated
// host).
type voter struct {
	c                           *Cluster
	name, dir                   string
	raftAddr, apiAddr, gossip   string
	serfPort, raftPort, apiPort int

	mu     sync.Mutex
	node   *cluster.Node
	cancel context.CancelFunc
	done   chan struct{}
	logf   io.Closer
}

func (c *Cluster) newVoter(name string) (*voter, error) {
	ports, err := testenv.FreePorts(3)
	if err != nil {
		return nil, err
	}
	v := &voter{c: c, name: name, dir: filepath.Join(c.opts.Dir, name), serfPort: ports[0], raftPort: ports[1], apiPort: ports[2]}
	v.raftAddr = fmt.Sprintf("127.0.0.1:%d", v.raftPort)
	v.apiAddr = fmt.Sprintf("127.0.0.1:%d", v.apiPort)
	v.gossip = fmt.Sprintf("127.0.0.1:%d", v.serfPort)
	return v, os.MkdirAll(v.dir, 0o700)
}

// config is the voter's vmhad.yaml, loaded through config.Load so that
// every default and check of the real daemon applies.
func (v *voter) config(join []string) (*config.Daemon, error) {
	g := v.c.opts.Gossip
	y := fmt.Sprintf(`node_name: %s
bind_addr: 127.0.0.1
ports: {serf: %d, raft: %d, api: %d}
join: [%s]
bootstrap_expect: %d
data_dir: %s
socket: %s
hypervisor_uri: test:///default
witness: true
raft: {max_voters: %d}
# Simulated hosts register long after the voters formed the cluster.
admission: open
gossip: {probe_interval: %s, probe_timeout: %s, gossip_interval: %s, suspicion_mult: %d}
fencing:
  timeout: 20s
  call_timeout: 10s
  poll_interval: 100ms
  retry_interval: 2s
  check_interval: 1h
log: {level: info}
`, v.name, v.serfPort, v.raftPort, v.apiPort, strings.Join(join, ", "), len(v.c.voters), filepath.Join(v.dir, "data"),
		filepath.Join(v.dir, "vmhad.sock"), len(v.c.voters), g.ProbeInterval, g.ProbeTimeout, g.GossipInterval, g.SuspicionMult)
	path := filepath.Join(v.dir, "vmhad.yaml")
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		return nil, err
	}
	return config.Load(path, nil)
}

// start runs the node as vmhad's serve does: API, loops.
func (v *voter) start(join []string) error {
	cfg, err := v.config(join)
	if err != nil {
		return fmt.Errorf("%s: %w", v.name, err)
	}
	log, closer, err := v.c.logger(v.name)
	if err != nil {
		return err
	}
	n, err := cluster.NewNode(cluster.Options{Config: cfg, Log: log})
	if err != nil {
		_ = closer.Close()
		return fmt.Errorf("%s: %w", v.name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	served := make(chan struct{})
	go func() { defer close(served); _ = n.Serve(ctx) }()
	go func() { n.Run(ctx); <-served; close(done) }()
	v.mu.Lock()
	v.node, v.cancel, v.done, v.logf = n, cancel, done, closer
	v.mu.Unlock()
	return nil
}

func (v *voter) running() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.node != nil
}

// stop shuts the node down without leaving gossip (a crash, for gossip;
// the process is stopping anyway).
func (v *voter) stop() {
	v.mu.Lock()
	n, cancel, done, closer := v.node, v.cancel, v.done, v.logf
	v.node = nil
	v.mu.Unlock()
	if n == nil {
		return
	}
	cancel()
	<-done
	n.Shutdown(false)
	_ = closer.Close()
}

// MemoryReport is what one more real host daemon costs.
type MemoryReport struct {
	// DaemonHeap is the live-heap growth of starting one more real
	// cluster.Node (a non-voter that catches up on the full state).
	DaemonHeap uint64
	// ProcessHeap and ProcessRSS are the whole simulation's, afterwards.
	ProcessHeap, ProcessRSS uint64
	// CatchUp is how long the new node took to hold the full state.
	CatchUp time.Duration
	// Bootstrapped is set when the joining node bootstrapped a raft
	// configuration of its own instead of waiting for the leader.
	Bootstrapped bool
}

// MeasureDaemon starts one more real cluster.Node, lets it join as a raft
// non-voter and catch up on the state, and reports the live heap it added.
// The node keeps running (it is one more real replica) until Close.
func (c *Cluster) MeasureDaemon() (MemoryReport, error) {
	var r MemoryReport
	if c.extra != nil {
		return r, fmt.Errorf("sim: the daemon was measured already")
	}
	v, err := c.newVoter("daemon")
	if err != nil {
		return r, err
	}
	c.mu.Lock()
	c.extra = v
	c.mu.Unlock()
	before := HeapInuse()
	t0 := time.Now()
	if err := v.start(c.gossipJoin()); err != nil {
		return r, err
	}
	var want, hosts int
	c.replica.fsm.Read(func(s *modelState) { want, hosts = len(s.Config.VMs), len(s.Config.Hosts) })
	// Caught up: its own view (?local=1) holds every VM and host,
	// itself included.
	err = c.waitFor(10*time.Minute, "the measured daemon to catch up", func() bool {
		var st api.Status
		ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
		defer cancel()
		if err := api.NewTCPClient(v.apiAddr, 30*time.Second, nil).Do(ctx, "GET", api.PathStatus+"?local=1", nil, &st, nil); err != nil {
			return false
		}
		return len(st.VMs) == want && len(st.Hosts) >= hosts+1
	})
	if err != nil {
		return r, err
	}
	r.CatchUp = time.Since(t0)
	// Let the snapshot install's buffers and the status call's copy go.
	time.Sleep(3 * time.Second)
	after := HeapInuse()
	if b, err := os.ReadFile(filepath.Join(c.opts.Dir, v.name+".log")); err == nil && strings.Contains(string(b), "raft cluster bootstrapped") {
		// cluster.Node's bootstrapLoop formed a raft cluster of its own
		// before the leader added it (docs/scale.md).
		r.Bootstrapped = true
	}
	if after > before {
		r.DaemonHeap = after - before
	}
	r.ProcessHeap, r.ProcessRSS = after, RSS()
	return r, nil
}
