package cluster

import (
	"sync"
	"time"

	"github.com/vmha/vmha/cluster/decide"
	"github.com/vmha/vmha/cluster/statemachine"
	"github.com/vmha/vmha/config"
	"github.com/vmha/vmha/model"
	"github.com/vmha/vmha/storage"
)

// view is decide's view of st (a copy the caller owns) and members, with
// this host's settings and the compiled rules. The leader's pass, the
// status and the API's planning questions all read the cluster through it.
func (n *Node) view(st *model.State, members decide.Members) *decide.View {
	var term uint64
	if n.raft != nil {
		term = n.raft.CurrentTerm()
	}
	return &decide.View{
		Now: time.Now(), Self: n.cfg.NodeName, Term: term, State: st, Apply: statemachine.Apply,
		Members: members, Beats: map[string]decide.Beat{}, Settings: n.settings(),
		Rules: n.compiledRules(st.Config.Rules), NewID: newID,
	}
}

// settings are the parts of this host's config the decisions use.
func (n *Node) settings() decide.Settings {
	c := n.cfg
	s := decide.Settings{
		FenceRetry: c.Fencing.RetryInterval, AgentInterval: c.Agent.Interval, UnseenGrace: unseenGrace,
		MaxPerTarget: c.Migration.MaxPerTarget, MaxCluster: c.Migration.MaxCluster,
		Storage: n.storageOn(), WaitForAll: c.Quorum.WaitForAll,
	}
	if len(c.Storage.Filesystems) > 0 {
		s.Disks = storageDisks{c.Storage.Config}
	}
	if c.Rebalance.Window != "" {
		if start, end, err := config.ParseWindow(c.Rebalance.Window); err == nil {
			s.Window = &decide.Window{Start: start, End: end, MaxMoves: c.Rebalance.MaxMoves, MinGain: c.Rebalance.MinGain, Parallel: c.Rebalance.Parallel}
		}
	}
	return s
}

// storageDisks maps a VM's disks to cluster file systems by the storage
// config.
type storageDisks struct{ cfg storage.Config }

func (d storageDisks) Filesystems(vm *model.VM) []string {
	rs, err := d.cfg.MapDisks(vm.Name, vm.Disks)
	if err != nil {
		return nil // refused at vm add; a config change is reported by status
	}
	return storage.Filesystems(rs)
}

// rulesCache holds the rules compiled from the last cluster.yaml text seen:
// the text changes with an operator's vmha rules apply, not per pass.
type rulesCache struct {
	mu    sync.Mutex
	rules *decide.Rules
}

// compiledRules are the rules of text, compiled once per change (nil when
// they do not compile: the pass reports the error).
func (n *Node) compiledRules(text string) *decide.Rules {
	n.rulesCache.mu.Lock()
	defer n.rulesCache.mu.Unlock()
	if r := n.rulesCache.rules; r != nil && r.Text == text {
		return r
	}
	r, err := decide.CompileRules(text)
	if err != nil {
		return nil
	}
	n.rulesCache.rules = r
	return r
}
