package sim

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/hashicorp/serf/serf"

	"github.com/vmha/vmha/cluster"
	"github.com/vmha/vmha/model"
)

// modelState shortens the state type in closures.
type modelState = model.State

// replica is the simulated hosts' shared copy of the replicated state: a
// raft non-voter running the real state machine (cluster.FSM), added to
// the cluster by the leader's own code (the coordinator makes every gossip
// member with a raft address a voter or non-voter). Each real host holds
// one such replica; the simulated hosts all read this one.
type replica struct {
	fsm   *cluster.FSM
	raft  *raft.Raft
	trans *raft.NetworkTransport
	serf  *serf.Serf

	view atomic.Pointer[placementView]
	mu   sync.Mutex
	// changed is closed (and replaced) whenever the view changes: the
	// agents' wake-up, as fsm.Changed() is a real agent's.
	changed chan struct{}
}

// placementView is the committed placement, indexed by host, rebuilt only
// when placements or the VM set change (Status.Generation, len(VMs)).
type placementView struct {
	generation uint64
	vms        int
	byHost     map[string]map[string]bool
}

func (c *Cluster) startReplica() (*replica, error) {
	r := &replica{fsm: cluster.NewFSM(), changed: make(chan struct{})}
	r.view.Store(&placementView{byHost: map[string]map[string]bool{}})
	rc := raft.DefaultConfig()
	rc.LocalID = "sim-replica"
	rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout = 500*time.Millisecond, 500*time.Millisecond, 250*time.Millisecond
	rc.CommitTimeout = 50 * time.Millisecond
	rc.SnapshotThreshold = 2048
	rc.Logger = hclog.New(&hclog.LoggerOptions{Name: "replica", Output: io.Discard, Level: hclog.Off})
	trans, err := raft.NewTCPTransportWithLogger("127.0.0.1:0", nil, 3, 5*time.Second, rc.Logger)
	if err != nil {
		return nil, err
	}
	r.trans = trans
	store := raft.NewInmemStore()
	rf, err := raft.NewRaft(rc, r.fsm, store, store, raft.NewInmemSnapshotStore(), trans)
	if err != nil {
		_ = trans.Close()
		return nil, err
	}
	r.raft = rf
	s, err := newSerf("sim-replica", map[string]string{tagRaft: string(trans.LocalAddr()), tagAPI: c.sinkAddr, tagBoot: newBootID()}, c.memberlistConfig("sim-replica"))
	if err != nil {
		r.stop()
		return nil, err
	}
	r.serf = s
	if _, err := s.Join(c.gossipJoin(), true); err != nil {
		r.stop()
		return nil, err
	}
	return r, nil
}

func (r *replica) stop() {
	if r.serf != nil {
		_ = r.serf.Shutdown()
	}
	if r.raft != nil {
		_ = r.raft.Shutdown().Error()
	}
	if r.trans != nil {
		_ = r.trans.Close()
	}
}

// wait returns the channel closed at the next view change.
func (r *replica) wait() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changed
}

// viewLoop rebuilds the placement view after applies that changed
// placements, at most every 20 ms.
func (r *replica) viewLoop(ctx context.Context) {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		r.rebuild()
		select {
		case <-ctx.Done():
			return
		case <-r.fsm.Changed():
		case <-t.C:
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (r *replica) rebuild() {
	old := r.view.Load()
	var nv *placementView
	r.fsm.Read(func(s *model.State) {
		if s.Status.Generation == old.generation && len(s.Config.VMs) == old.vms && old.byHost != nil && old.generation != 0 {
			return
		}
		nv = &placementView{generation: s.Status.Generation, vms: len(s.Config.VMs), byHost: map[string]map[string]bool{}}
		for vm, p := range s.Status.Placements {
			// A VM moving live arrives through the migration: not
			// started by its target (there are none in the simulation).
			if p.Host == "" || p.MigrateFrom != "" || s.Config.VMs[vm] == nil {
				continue
			}
			m := nv.byHost[p.Host]
			if m == nil {
				m = map[string]bool{}
				nv.byHost[p.Host] = m
			}
			m[vm] = true
		}
	})
	if nv == nil {
		return
	}
	r.view.Store(nv)
	r.mu.Lock()
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}
