// Package cluster is who decides and what is decided: membership over serf
// gossip, the replicated state over raft, the coordinator that runs on the
// raft leader, the agent that reconciles each host's hypervisor to the
// committed state, and the HTTP API that exposes them.
package cluster

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/hashicorp/serf/serf"
	"github.com/rs/zerolog"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/cluster/decide"
	"github.com/vmha/vmha/config"
	"github.com/vmha/vmha/health"
	"github.com/vmha/vmha/hypervisor"
	"github.com/vmha/vmha/model"
	"github.com/vmha/vmha/sharedfs"
	"github.com/vmha/vmha/watchdog"
)

// Serf tags every host publishes.
const (
	tagRaft = "raft"
	tagAPI  = "api"
	// tagBoot is a random id drawn at every vmhad start. A fenced host
	// counts as back only when it gossips with a new boot id: right after
	// a power-off, gossip still shows the old incarnation alive for a
	// moment, and that must not undo the fence.
	tagBoot = decide.TagBoot
)

// applyTimeout bounds one raft proposal.
const applyTimeout = 5 * time.Second

// Node is one vmhad: membership, replicated state, coordinator and agent.
type Node struct {
	cfg *config.Daemon
	log zerolog.Logger
	fsm *FSM
	// heard is when each host last reported to this host as leader
	// (reports.go): unchanged reports are not committed.
	heard heardReports
	// raft is the replicated log. It is replaced once in a two_node
	// takeover (raft.RecoverCluster needs raft shut down), hence the
	// reference that every caller reads it through.
	raft *raftRef
	serf *serf.Serf
	hv   hypervisor.Hypervisor
	// fencing is how this host is fenced, registered with the cluster.
	fencing *model.FenceTopology

	serfEvents chan serf.Event
	// memberChanged is signalled (non-blocking) on every membership event.
	memberChanged chan struct{}

	agent   *Agent
	coord   *Coordinator
	metrics *Metrics
	// coordBeat and agentBeat are the unix nano times the coordinator and
	// agent loops last went round (the systemd watchdog's health).
	coordBeat, agentBeat atomic.Int64
	// tags are this host's gossip tags (raft and API addresses, boot id,
	// live attributes such as pingd); tagsMu guards them.
	tagsMu sync.Mutex
	tags   map[string]string
	// tls is the mutual-TLS config of raft and the peer API (nil: plain).
	tls *tls.Config
	// peers holds a client per peer API address, for every call this
	// host makes to another (and to its own peer port).
	peers *peerClients
	// peerRate limits each peer's writes on the peer port.
	peerRate *rateLimiter
	// socket is the local API's socket when claimed before the node
	// started (Options.Socket); Serve claims it otherwise.
	socket *Socket

	// watchdog is the armed self-fencing watchdog (nil: none).
	watchdog *watchdog.Device
	// gossipEncrypted is set when gossip runs with a keyring.
	gossipEncrypted bool
	// wfaDone is set once the cold-start wait_for_all is over (always
	// when it is off).
	wfaDone atomic.Bool
	// rulesCache keeps the compiled placement rules between passes.
	rulesCache rulesCache
	// lvmExec runs this host's LVM commands (nil: the real tools).
	lvmExec sharedfs.Runner
	// twoNode runs quorum.two_node (nil: off).
	twoNode *twoNode

	// lock is data_dir/vmhad.lock, held (flock) for the daemon's life.
	lock     *os.File
	logStore *raftboltdb.BoltStore
	snaps    raft.SnapshotStore
	stores   []interface{ Close() error }
	wg       sync.WaitGroup
	cancel   context.CancelFunc
	stopped  chan struct{}
}

// Options are what vmhad wires into a node.
type Options struct {
	Config     *config.Daemon
	Log        zerolog.Logger
	Hypervisor hypervisor.Hypervisor
	// Fencing is this host's own fence topology (nil: none).
	Fencing *model.FenceTopology
	// Socket is the local API's socket, claimed (ClaimSocket) before the
	// node starts so that a second vmhad on the same path stops before it
	// joins anything. Serve closes it. Nil: Serve claims Config.Socket.
	Socket *Socket
}

// NewNode opens the data directory, starts raft and serf, and joins peers.
// Call Run to start the coordinator, agent and background loops.
func NewNode(o Options) (_ *Node, err error) {
	cfg := o.Config
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data_dir %s: %w", cfg.DataDir, err)
	}
	lock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = lock.Close()
		}
	}()
	changed, terr := tightenDataDir(cfg.DataDir)
	for _, c := range changed {
		o.Log.Warn().Str("file", c.Path).Str("was", fmt.Sprintf("%04o", c.Was)).Str("now", fmt.Sprintf("%04o", c.Now)).Msg("data_dir file was open to other users; mode tightened (data_dir 0700, directories 0700, files 0600)")
	}
	if terr != nil {
		o.Log.Warn().Err(terr).Str("data_dir", cfg.DataDir).Msg("cannot tighten the data_dir's modes")
	}
	n := &Node{
		cfg: cfg, log: o.Log, fsm: NewFSM(), hv: o.Hypervisor, lock: lock,
		fencing:    o.Fencing,
		serfEvents: make(chan serf.Event, 256), memberChanged: make(chan struct{}, 1),
		stopped:  make(chan struct{}),
		socket:   o.Socket,
		peerRate: newRateLimiter(peerWriteRate, peerWriteBurst),
	}
	n.metrics = newMetrics(n)
	if cfg.TLS.Enabled() {
		tc, err := cfg.TLS.Config()
		if err != nil {
			return nil, err
		}
		n.tls = tc
	}
	n.peers = newPeerClients(n.tls)
	if w := cfg.Watchdog; w.Device != "" && !cfg.Witness {
		d, err := watchdog.Open(w.Device, w.Timeout)
		if err != nil {
			return nil, fmt.Errorf("watchdog.device: %w", err)
		}
		n.watchdog = d
		n.log.Warn().Str("device", w.Device).Dur("timeout", w.Timeout).Msg("self-fencing watchdog armed: cut off from the quorum for more than half the timeout, this host is reset")
	}
	if err := n.startRaft(); err != nil {
		n.disarm()
		n.closeStores()
		return nil, err
	}
	if err := n.startSerf(); err != nil {
		n.disarm()
		_ = n.raft.Shutdown().Error()
		n.closeStores()
		return nil, err
	}
	if cfg.Quorum.TwoNode && !cfg.Witness {
		n.twoNode = newTwoNode(n)
	}
	return n, nil
}

func (n *Node) closeStores() {
	for _, s := range n.stores {
		_ = s.Close()
	}
}

func (n *Node) raftAddr() string {
	return net.JoinHostPort(n.cfg.AdvertiseAddr, strconv.Itoa(n.cfg.Ports.Raft))
}

// APIAddr is this host's peer API address.
func (n *Node) APIAddr() string {
	return net.JoinHostPort(n.cfg.AdvertiseAddr, strconv.Itoa(n.cfg.Ports.API))
}

func (n *Node) startRaft() error {
	rc := n.raftConfig()
	trans, err := n.newTransport()
	if err != nil {
		return err
	}
	store, warnings, err := openRaftStore(n.cfg.DataDir, n.cfg.NodeName, boltOpenTimeout)
	for _, w := range warnings {
		n.log.Warn().Msg(w)
	}
	if err != nil {
		_ = trans.Close()
		return err
	}
	n.logStore = store
	n.stores = append(n.stores, store, trans)
	snaps, err := raft.NewFileSnapshotStoreWithLogger(n.cfg.DataDir, 2, rc.Logger)
	if err != nil {
		return fmt.Errorf("raft snapshots in %s: %w", n.cfg.DataDir, err)
	}
	n.snaps = snaps
	r, err := raft.NewRaft(rc, n.fsm, store, store, snaps, trans)
	if err != nil {
		return fmt.Errorf("start raft: %w", err)
	}
	n.raft = newRaftRef(r)
	return nil
}

// raftConfig is this host's raft configuration.
func (n *Node) raftConfig() *raft.Config {
	cfg := n.cfg
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeName)
	rc.HeartbeatTimeout = cfg.Raft.HeartbeatTimeout
	rc.ElectionTimeout = cfg.Raft.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.Raft.LeaderLease
	rc.CommitTimeout = 50 * time.Millisecond
	rc.SnapshotThreshold = 2048
	rc.Logger = raftLogger(n.log.With().Str("component", "raft").Logger())
	return rc
}

// raftTransport is raft's network transport, which the node closes.
type raftTransport interface {
	raft.Transport
	Close() error
}

// newTransport listens on the raft port: mutual TLS under the cluster CA,
// or plain TCP.
func (n *Node) newTransport() (raftTransport, error) {
	cfg := n.cfg
	hl := raftLogger(n.log.With().Str("component", "raft").Logger())
	bind := net.JoinHostPort(cfg.BindAddr, strconv.Itoa(cfg.Ports.Raft))
	adv, err := net.ResolveTCPAddr("tcp", n.raftAddr())
	if err != nil {
		return nil, fmt.Errorf("raft advertise address %s: %w", n.raftAddr(), err)
	}
	if n.tls != nil {
		l, err := net.Listen("tcp", bind)
		if err != nil {
			return nil, fmt.Errorf("raft listen on %s: %w", bind, err)
		}
		return raft.NewNetworkTransportWithLogger(&tlsStream{Listener: tls.NewListener(l, n.tls), n: n, adv: adv, conf: n.tls}, 3, 5*time.Second, hl), nil
	}
	t, err := raft.NewTCPTransportWithLogger(bind, adv, 3, 5*time.Second, hl)
	if err != nil {
		return nil, fmt.Errorf("raft listen on %s: %w", bind, err)
	}
	return t, nil
}

func (n *Node) startSerf() error {
	cfg := n.cfg
	sc := serf.DefaultConfig()
	sc.NodeName = cfg.NodeName
	n.tags = map[string]string{tagRaft: n.raftAddr(), tagAPI: n.APIAddr(), tagBoot: newBootID()}
	sc.Tags = map[string]string{}
	for k, v := range n.tags {
		sc.Tags[k] = v
	}
	sc.EventCh = n.serfEvents
	sc.SnapshotPath = filepath.Join(cfg.DataDir, "serf.snapshot")
	sc.RejoinAfterLeave = true
	sc.Logger = stdLogger(n.log.With().Str("component", "serf").Logger())
	mc := memberlist.DefaultLANConfig()
	mc.Name = cfg.NodeName
	mc.BindAddr = cfg.BindAddr
	mc.BindPort = cfg.Ports.Serf
	mc.AdvertiseAddr = cfg.AdvertiseAddr
	mc.AdvertisePort = cfg.Ports.Serf
	mc.ProbeInterval = cfg.Gossip.ProbeInterval
	mc.ProbeTimeout = cfg.Gossip.ProbeTimeout
	mc.GossipInterval = cfg.Gossip.GossipInterval
	mc.SuspicionMult = cfg.Gossip.SuspicionMult
	// After a partition heals, the halves find each other through a
	// push/pull or serf's reconnect of failed members; memberlist's and
	// serf's defaults (30 s each) leave a healed host out for up to half
	// a minute, during which it cannot report or start anything. memberlist
	// stretches the push/pull interval with the cluster's size.
	mc.PushPullInterval = 5 * time.Second
	sc.ReconnectInterval = 3 * time.Second
	mc.Logger = stdLogger(n.log.With().Str("component", "memberlist").Logger())
	keyringFile := filepath.Join(cfg.DataDir, "serf.keyring")
	kr, err := loadKeyring(keyringFile, cfg.Gossip.EncryptKeyFile)
	if err != nil {
		return err
	}
	if kr != nil {
		// Encrypted and authenticated gossip: a message under another key
		// is dropped, so a host without the key cannot join or speak.
		mc.Keyring = kr
		mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = true, true
		n.gossipEncrypted = true
		sc.KeyringFile = keyringFile
	}
	sc.MemberlistConfig = mc
	s, err := serf.Create(sc)
	if err != nil {
		return fmt.Errorf("start gossip on %s:%d: %w", cfg.BindAddr, cfg.Ports.Serf, err)
	}
	n.serf = s
	if len(cfg.Join) > 0 {
		if _, err := s.Join(cfg.Join, true); err != nil {
			// Not fatal: peers may start later; the snapshot and the
			// retry loop in Run rejoin them.
			n.log.Warn().Err(err).Strs("join", cfg.Join).Msg("cannot join peers yet; retrying")
		}
	}
	return nil
}

// Run starts the background loops and blocks until ctx is done.
func (n *Node) Run(ctx context.Context) {
	ctx, n.cancel = context.WithCancel(ctx)
	now := time.Now().UnixNano()
	n.coordBeat.Store(now)
	n.agentBeat.Store(now)
	n.coord = newCoordinator(n)
	loops := []func(context.Context){n.membershipLoop, n.bootstrapLoop, n.joinLoop, n.registerLoop, n.coord.run, n.dataDirLoop, n.alertLoop, n.doctorLoop}
	if n.storageOn() && !n.cfg.Witness {
		loops = append(loops, n.storageLoop)
	}
	if p := n.cfg.Ping; len(p.Targets) > 0 {
		m := &health.Monitor{Targets: p.Targets, Multiplier: p.Multiplier, Interval: p.Interval, Timeout: p.Timeout,
			Dampen: p.Dampen, Pinger: health.ICMP{}, Publish: func(v int) { n.setAttrTag("pingd", strconv.Itoa(v)) }}
		loops = append(loops, func(ctx context.Context) { _ = m.Run(ctx) })
	}
	if hl := n.healthLoop(); hl != nil {
		loops = append(loops, hl)
	}
	if n.twoNode != nil {
		loops = append(loops, n.twoNode.run)
	}
	if !n.cfg.Witness {
		// A witness has no hypervisor: it votes and may lead, but it
		// runs no agent.
		n.agent = newAgent(n)
		loops = append(loops, n.agent.run)
		if n.watchdog != nil {
			loops = append(loops, n.watchdogLoop)
		}
	}
	for _, f := range loops {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			f(ctx)
		}()
	}
	<-ctx.Done()
}

// Shutdown stops the loops, leaves gossip gracefully if leave is true, and
// closes raft and the stores. VMs keep running: a daemon restart must not
// move or stop anything.
func (n *Node) Shutdown(leave bool) {
	if n.cancel != nil {
		n.cancel()
	}
	n.wg.Wait()
	// A clean stop disarms: the host leaves gossip, so it is not lost and
	// nobody waits for its watchdog.
	n.disarm()
	if leave {
		_ = n.serf.Leave()
	}
	_ = n.serf.Shutdown()
	if err := n.raft.Shutdown().Error(); err != nil {
		n.log.Warn().Err(err).Msg("raft shutdown")
	}
	n.closeStores()
	_ = n.lock.Close()
	n.peers.close()
}

// membershipLoop turns serf events into a wake-up for the coordinator.
func (n *Node) membershipLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-n.serfEvents:
			if me, ok := e.(serf.MemberEvent); ok {
				for _, m := range me.Members {
					n.log.Info().Str("event", me.EventType().String()).Str("member", m.Name).Msg("membership change")
					switch me.EventType() {
					case serf.EventMemberLeave, serf.EventMemberFailed, serf.EventMemberReap:
						// Its connections are gone or useless: a
						// host that comes back gets a new client.
						if addr := m.Tags[tagAPI]; addr != "" && m.Name != n.cfg.NodeName {
							n.peers.forget(addr)
						}
					}
				}
				select {
				case n.memberChanged <- struct{}{}:
				default:
				}
			}
		}
	}
}

// joinLoop keeps trying the configured peers while this host is alone, so
// that hosts may start in any order.
func (n *Node) joinLoop(ctx context.Context) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if len(n.cfg.Join) == 0 || n.serf.NumNodes() > 1 {
			continue
		}
		if _, err := n.serf.Join(n.cfg.Join, true); err == nil {
			n.log.Info().Strs("join", n.cfg.Join).Msg("joined peers")
		}
	}
}

// bootstrapLoop forms the raft cluster the first time: once
// bootstrap_expect hosts are alive in gossip, every one of them bootstraps
// with the same sorted server list, which raft accepts as one cluster.
func (n *Node) bootstrapLoop(ctx context.Context) {
	has, err := raft.HasExistingState(n.logStore, n.logStore, n.snaps)
	if err == nil && has {
		return
	}
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if addr, _ := n.raft.LeaderWithID(); addr != "" {
			return
		}
		f := n.raft.GetConfiguration()
		if f.Error() == nil && len(f.Configuration().Servers) > 0 {
			return
		}
		var servers []raft.Server
		for _, m := range n.serf.Members() {
			if m.Status != serf.StatusAlive || m.Tags[tagRaft] == "" {
				continue
			}
			servers = append(servers, raft.Server{ID: raft.ServerID(m.Name), Address: raft.ServerAddress(m.Tags[tagRaft]), Suffrage: raft.Voter})
		}
		if len(servers) < n.cfg.BootstrapExpect {
			continue
		}
		sort.Slice(servers, func(i, j int) bool { return servers[i].ID < servers[j].ID })
		for i := n.cfg.Raft.MaxVoters; i < len(servers); i++ {
			servers[i].Suffrage = raft.Nonvoter
		}
		err := n.raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error()
		if err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			n.log.Error().Err(err).Msg("raft bootstrap")
			continue
		}
		n.log.Info().Int("servers", len(servers)).Msg("raft cluster bootstrapped")
		return
	}
}

// registerLoop announces this host (address, capacity, BMC) to the leader
// at start and whenever the leader changes, until it is recorded.
func (n *Node) registerLoop(ctx context.Context) {
	var done string
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		leader, addr := n.joinLeader(ctx)
		if addr == "" || leader == done {
			continue
		}
		reg, err := n.registration(ctx)
		if err != nil {
			n.log.Error().Err(err).Msg("cannot describe this host for registration")
			continue
		}
		if n.registered(reg) {
			done = leader
			continue
		}
		if err := n.toLeader(ctx, leader, addr, http.MethodPost, api.PathRegister, reg, nil); err != nil {
			n.log.Warn().Err(err).Msg("register with leader")
			continue
		}
		n.log.Info().Str("leader", leader).Msg("registered with the cluster")
		done = leader
	}
}

// joinLeader is the leader's name and API address for registering: raft's
// leader when this host follows the log, else the leader the alive members
// name. A host that is not registered yet has no raft leader: only a
// registered host is added to raft, so it must find the leader through its
// peers.
func (n *Node) joinLeader(ctx context.Context) (name, addr string) {
	if name, addr = n.Leader(); addr != "" {
		return name, addr
	}
	members := n.members()
	for _, m := range members {
		if m.Name == n.cfg.NodeName || m.Status != decide.MemberAlive || m.Tags[tagAPI] == "" {
			continue
		}
		var s api.Status
		if err := n.peers.do(ctx, m.Tags[tagAPI], 3*time.Second, http.MethodGet, api.PathStatus+"?local=1", nil, &s, nil); err != nil || s.Leader == "" {
			continue
		}
		if l, ok := members[s.Leader]; ok && l.Tags[tagAPI] != "" {
			return s.Leader, l.Tags[tagAPI]
		}
	}
	return "", ""
}

func (n *Node) registration(ctx context.Context) (*api.Register, error) {
	if n.cfg.Witness {
		return &api.Register{Host: model.Host{Name: n.cfg.NodeName, APIAddr: n.APIAddr(), Witness: true}}, nil
	}
	info, err := n.hv.NodeInfo(ctx)
	if err != nil {
		return nil, fmt.Errorf("hypervisor node info: %w", err)
	}
	return &api.Register{
		Host: model.Host{Name: n.cfg.NodeName, APIAddr: n.APIAddr(), MemoryMiB: info.MemoryMiB, CPUs: info.CPUs,
			LibvirtURI: n.cfg.Migration.LibvirtURI, MigrationURI: n.cfg.Migration.Address, Watchdog: n.watchdogTimeout()},
		Fencing: n.fencing,
	}, nil
}

// registered reports whether the committed state already holds reg, so a
// restart does not write the same registration again. A known host's
// registration never changes its fencing: it is recorded once its fence
// topology is the one in use, or pending as its offer (or it offers none).
func (n *Node) registered(reg *api.Register) bool {
	same := false
	n.fsm.Read(func(s *model.State) {
		h := s.Config.Hosts[reg.Host.Name]
		if h == nil || *h != reg.Host {
			return
		}
		o := s.Status.FenceOffers[reg.Host.Name]
		same = reg.Fencing == nil || s.Config.Fencing[reg.Host.Name].Same(reg.Fencing) || (o != nil && o.Topology.Same(reg.Fencing))
	})
	return same
}

// tagAttr prefixes the gossip tags that carry live host attributes.
const tagAttr = decide.TagAttr

// setAttrTag publishes a live host attribute through gossip: it changes
// often (pingd), so it travels with membership, not through the log.
func (n *Node) setAttrTag(key, value string) { n.setTag(tagAttr+key, value) }

// setTag publishes one gossip tag of this host.
func (n *Node) setTag(key, value string) {
	n.tagsMu.Lock()
	n.tags[key] = value
	tags := map[string]string{}
	for k, v := range n.tags {
		tags[k] = v
	}
	n.tagsMu.Unlock()
	// SetTags changes the local tags at once and then waits for gossip
	// to carry them; a timeout there ("waiting for update broadcast")
	// does not undo the change, but the broadcast may have been dropped,
	// so it is sent again a few times.
	var err error
	for attempt := 1; attempt <= 5; attempt++ {
		if err = n.serf.SetTags(tags); err == nil {
			n.log.Info().Str("tag", key).Str("value", value).Msg("gossip tag published")
			return
		}
		n.log.Warn().Err(err).Str("tag", key).Int("attempt", attempt).Msg("publish gossip tag; retrying")
	}
	n.log.Error().Err(err).Str("tag", key).Msg("publish gossip tag failed")
}

// Healthy reports whether the node's loops go round: the coordinator's
// (every 250 ms) within 30 s, and the agent's within three intervals plus
// the time one graceful VM stop may take.
func (n *Node) Healthy() bool {
	now := time.Now().UnixNano()
	if now-n.coordBeat.Load() > int64(30*time.Second) {
		return false
	}
	if n.agent == nil {
		return true
	}
	limit := 3*n.cfg.Agent.Interval + n.cfg.Agent.StopTimeout
	return now-n.agentBeat.Load() <= int64(limit)
}

// IsLeader reports whether this node is the raft leader.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Leader returns the leader's name and API address, if known.
func (n *Node) Leader() (name, apiAddr string) {
	_, id := n.raft.LeaderWithID()
	if id == "" {
		return "", ""
	}
	name = string(id)
	if m, ok := n.members()[name]; ok {
		return name, m.Tags[tagAPI]
	}
	return name, ""
}

// propose appends a command to the log as leader and waits for it to be
// applied; a rejection by the state machine comes back as the error.
func (n *Node) propose(c *Command) error {
	c.At = time.Now().UTC()
	if n.raft == nil {
		// Not started (unit tests of the handlers): the local state
		// machine applies the command as the log would.
		b, err := json.Marshal(c)
		if err != nil {
			return err
		}
		if err, ok := n.fsm.Apply(&raft.Log{Index: n.fsm.AppliedIndex() + 1, Data: b}).(error); ok && err != nil {
			return err
		}
		return nil
	}
	c.Term = n.raft.CurrentTerm()
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	f := n.raft.Apply(b, applyTimeout)
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return errNoLeader
		}
		return fmt.Errorf("replicate %s: %w", c.Op, err)
	}
	if resp, ok := f.Response().(error); ok && resp != nil {
		return resp
	}
	return nil
}

var errNoLeader = errors.New("this host is not the leader and no leader is known")

// members returns gossip's view, by name.
func (n *Node) members() decide.Members {
	out := decide.Members{}
	if n.serf == nil {
		return out // not started (unit tests of the parts that read it)
	}
	for _, m := range n.serf.Members() {
		out[m.Name] = memberOf(m)
	}
	return out
}

// memberOf is gossip's view of one host as plain data.
func memberOf(m serf.Member) decide.Member {
	st := decide.MemberNone
	switch m.Status {
	case serf.StatusAlive:
		st = decide.MemberAlive
	case serf.StatusLeaving:
		st = decide.MemberLeaving
	case serf.StatusLeft:
		st = decide.MemberLeft
	case serf.StatusFailed:
		st = decide.MemberFailed
	}
	return decide.Member{Name: m.Name, Status: st, Tags: m.Tags}
}

// waitingForAll is what quorum.wait_for_all still waits for, for status, read
// from the state as it is, without a barrier or a proposal (a read must not
// write the log; the coordinator's pass ends the wait).
func (n *Node) waitingForAll(members decide.Members) []string {
	if !n.cfg.Quorum.WaitForAll || n.wfaDone.Load() || !n.IsLeader() {
		return nil
	}
	missing, _, over := decide.WaitVerdict(n.fsm.Copy(), members, n.cfg.NodeName)
	if over != "" {
		return nil
	}
	return missing
}

// watchdogLoop pets the watchdog every quarter of its timeout while this
// host reached the quorum within half the timeout (the agent's clock of the
// no-quorum policy). Cut off longer, it stops: the device resets the host
// at most 1.5 × timeout after it lost the quorum, which is the bound the
// majority waits for (model.WatchdogWait) before recovering its VMs.
func (n *Node) watchdogLoop(ctx context.Context) {
	w := n.watchdog.Timeout()
	t := time.NewTicker(w / 4)
	defer t.Stop()
	petting := true
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if time.Since(n.agent.lastQuorate()) >= w/4 {
			// No recent report or read: ask the leader to prove its
			// quorum now (a read index the leader verifies with a
			// majority), so that a healthy, idle host keeps petting.
			cctx, cancel := context.WithTimeout(ctx, w/4)
			if _, err := n.agent.readIndex(cctx); err == nil {
				n.agent.setQuorate()
			}
			cancel()
		}
		ok := time.Since(n.agent.lastQuorate()) < w/2
		if ok {
			if err := n.watchdog.Pet(); err != nil {
				n.log.Error().Err(err).Msg("pet the watchdog")
			}
		}
		if ok != petting {
			petting = ok
			if ok {
				n.log.Warn().Msg("quorum reached again: petting the watchdog")
			} else {
				n.log.Error().Dur("reset_within", w).Msg("cut off from the quorum: no longer petting the watchdog; this host will be reset")
			}
		}
	}
}

func (n *Node) disarm() {
	if n.watchdog == nil {
		return
	}
	if err := n.watchdog.Disarm(); err != nil {
		n.log.Warn().Err(err).Msg("disarm the watchdog")
	}
}

func (n *Node) watchdogTimeout() time.Duration {
	if n.watchdog == nil {
		return 0
	}
	return n.watchdog.Timeout()
}

// whileLeading runs fn every interval while this host leads, until ctx
// ends: the shape of the leader's side jobs (alerts, the scheduled doctor).
func (n *Node) whileLeading(ctx context.Context, interval time.Duration, fn func(context.Context)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n.IsLeader() {
			fn(ctx)
		}
	}
}
