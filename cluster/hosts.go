package cluster

import (
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/vmha/vmha/cluster/decide"
	"github.com/vmha/vmha/model"
)

// Host join and leave as operations.
//
// A host joins by starting its vmhad with join: pointing at a member; it
// registers itself. vmha host add announces it first: the status lists it
// until it has joined, wait_for_all waits for it, and with admission:
// closed only announced (or known) hosts may register. vmha host remove
// takes a host out for good once its vmhad is stopped and no VM is placed
// on it: its vote, its gossip entry and every record that names it.
// vmha host maintenance covers rolling restarts of vmhad itself.

// SetMaintenance starts (on) or ends daemon maintenance of host.
func (c *Coordinator) SetMaintenance(host string, on bool, reason, by string) error {
	if m, ok := c.n.members()[host]; !on && (!ok || m.Status != decide.MemberAlive) {
		// Ending it now would have the host taken for lost and fenced.
		if _, known := c.n.fsm.Copy().Config.Hosts[host]; known {
			return &ConflictError{What: fmt.Sprintf("host %s is not back in gossip yet: start its vmhad and end the maintenance once vmha status shows it alive", host)}
		}
	}
	if cur := c.n.fsm.Copy().Status.Maintenance[host]; on && cur != nil {
		// Checked here, not in the log: two operators' maintenance of one
		// host must not silently become the second one's.
		return &ConflictError{What: fmt.Sprintf("host %s is already in maintenance (by %s since %s: %s); vmha host maintenance %s off ends it", host, cur.By, cur.At.Format(time.RFC3339), cur.Reason, host)}
	}
	cmd := &Command{Op: OpMaintenance, Name: host, By: by}
	if on {
		cmd.Maintenance = &model.Maintenance{By: by, At: time.Now().UTC(), Reason: reason}
	}
	if err := c.n.propose(cmd); err != nil {
		return err
	}
	c.log.Warn().Str("host", host).Bool("maintenance", on).Str("by", by).Str("reason", reason).Msg("host maintenance")
	return nil
}

// ExpectHost announces (on) a host that has not joined yet, or withdraws it.
func (c *Coordinator) ExpectHost(host string, on bool, by string) error {
	cmd := &Command{Op: OpExpectHost, Name: host}
	if on {
		cmd.Expected = &model.Expected{By: by, At: time.Now().UTC()}
	}
	if err := c.n.propose(cmd); err != nil {
		return err
	}
	c.log.Info().Str("host", host).Bool("expected", on).Str("by", by).Msg("host announcement")
	return nil
}

// removeStray takes out a raft server or gossip member that is no host of
// the cluster (it never registered: a node that had the gossip key but no
// certificate, or a host whose registration was refused). Its vote goes
// at once; a failed gossip member is pruned, and one still alive is shut
// out only by a new gossip key.
func (c *Coordinator) removeStray(host, by string) error {
	found := false
	if f := c.n.raft.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			if string(s.ID) == host {
				found = true
				if host == c.n.cfg.NodeName {
					return &ConflictError{What: fmt.Sprintf("%s is this leader itself", host)}
				}
				if err := c.n.raft.RemoveServer(raft.ServerID(host), 0, 10*time.Second).Error(); err != nil {
					return fmt.Errorf("remove the raft server %s: %w", host, err)
				}
				c.log.Warn().Str("server", host).Str("by", by).Msg("stray raft server removed (never a registered host)")
			}
		}
	}
	m, member := c.n.members()[host]
	if !found && !member {
		return &NotFoundError{Kind: "host", Name: host}
	}
	if member {
		if m.Status == decide.MemberAlive {
			return &ConflictError{What: fmt.Sprintf("%s is no host of the cluster (its raft vote, if any, was removed) but it is alive in gossip: it holds the gossip key; rotate the key (vmha gossip keys) to shut it out", host)}
		}
		if err := c.n.serf.RemoveFailedNodePrune(host); err != nil {
			return fmt.Errorf("prune %s from gossip: %w", host, err)
		}
		c.log.Warn().Str("member", host).Str("by", by).Msg("stray gossip member pruned")
	}
	return nil
}

// RemoveHost takes host out of the cluster. Its vmhad must be stopped (not
// alive in gossip) and no VM placed on it; then its raft vote and gossip
// entry go, and the state forgets it.
func (c *Coordinator) RemoveHost(host, by string) error {
	st := c.n.fsm.Copy()
	if _, ok := st.Config.Hosts[host]; !ok {
		if _, exp := st.Config.Expected[host]; exp {
			return c.ExpectHost(host, false, by)
		}
		return c.removeStray(host, by)
	}
	if host == c.n.cfg.NodeName {
		return &ConflictError{What: fmt.Sprintf("host %s is the leader: stop its vmhad first (another host takes over), then remove it", host)}
	}
	if m, ok := c.n.members()[host]; ok && m.Status == decide.MemberAlive {
		return &ConflictError{What: fmt.Sprintf("host %s is alive: evacuate it (vmha evacuate %s), stop its vmhad (systemctl stop vmhad), then remove it", host, host)}
	}
	// The state first: a refusal (VMs still placed there) changes nothing.
	if err := c.n.propose(&Command{Op: OpRemoveHost, Name: host}); err != nil {
		return err
	}
	if f := c.n.raft.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			if string(s.ID) == host {
				if err := c.n.raft.RemoveServer(raft.ServerID(host), 0, 10*time.Second).Error(); err != nil {
					c.log.Error().Err(err).Str("host", host).Msg("remove the host's raft vote")
				}
			}
		}
	}
	if err := c.n.serf.RemoveFailedNodePrune(host); err != nil {
		c.log.Warn().Err(err).Str("host", host).Msg("prune the host from gossip")
	}
	c.log.Warn().Str("host", host).Str("by", by).Msg("host removed from the cluster")
	return nil
}
