package cluster

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/model"
)

// Where fence devices come from.
//
// Fence configuration is code that runs as root on the leader, so it comes
// from operators, never from a peer's message (DESIGN.md, invariant 5). A
// host's first registration may bring its own topology (from its
// vmhad.yaml, allow-listed, without allow_unsafe); after that, only an
// operator changes it: vmha fence devices accept HOST takes what the host
// offers in a later registration (other devices, a rotated password), and
// vmha fence devices set HOST --file SPEC sets a topology of the operator's
// own, the only way to a device with allow_unsafe. Both are recorded in the
// fence history with who did it and the devices before and after.

// fenceDevicesCommand builds the command of vmha fence devices set (t, the
// new topology) or, with accept, of vmha fence devices accept (the host's
// pending offer; t is ignored). It checks the command against s exactly as
// the state machine will, by applying it to s: s must be a copy the caller
// no longer needs. A device with allow_unsafe is refused unless the
// operator confirmed it (allowUnsafe).
func fenceDevicesCommand(s *model.State, host string, t *model.FenceTopology, accept, allowUnsafe bool, by string, now time.Time) (*Command, error) {
	if _, ok := s.Config.Hosts[host]; !ok {
		return nil, &NotFoundError{Kind: "host", Name: host}
	}
	rec := &model.FenceRecord{Requester: by, Started: now}
	if accept {
		o := s.Status.FenceOffers[host]
		if o == nil {
			return nil, &ConflictError{What: fmt.Sprintf("host %s offers no other fence devices than the cluster uses (vmha fence devices lists offers)", host)}
		}
		rec.Action = model.FenceDevicesAccept
		t = cloneTopology(&o.Topology)
	} else {
		if t == nil || len(t.Devices) == 0 || len(t.Levels) == 0 {
			return nil, &ValidationError{Field: "fencing", Err: fmt.Errorf("no devices or no level: a fence spec for %s needs at least one device and one level", host)}
		}
		var unsafe []string
		for _, d := range t.Devices {
			if d.AllowUnsafe {
				unsafe = append(unsafe, d.Name)
			}
		}
		if len(unsafe) > 0 && !allowUnsafe {
			return nil, &ValidationError{Field: "allow_unsafe", Err: fmt.Errorf("fence device %s sets allow_unsafe: the allow-lists do not apply to it, so it may run any program as root on the leader; confirm with --allow-unsafe",
				strings.Join(unsafe, ", "))}
		}
		rec.Action = model.FenceDevicesSet
	}
	c := &Command{Op: OpSetFenceDevices, Name: host, Fencing: t, Fence: rec, At: now}
	if err := apply(s, c); err != nil {
		return nil, err
	}
	c.At = time.Time{} // propose stamps it
	return c, nil
}

func (n *Node) handleFenceDevicesSet(w http.ResponseWriter, r *http.Request, body []byte) {
	var req api.FenceDevicesSet
	if err := decode(body, &req); err != nil {
		writeErr(w, http.StatusBadRequest, "", err)
		return
	}
	n.changeFenceDevices(w, r.PathValue("host"), req.Fencing, false, req.AllowUnsafe, actor(r, req.RequestedBy))
}

func (n *Node) handleFenceDevicesAccept(w http.ResponseWriter, r *http.Request, body []byte) {
	var req api.FenceDevicesAccept
	if len(body) > 0 {
		if err := decode(body, &req); err != nil {
			writeErr(w, http.StatusBadRequest, "", err)
			return
		}
	}
	n.changeFenceDevices(w, r.PathValue("host"), nil, true, false, actor(r, req.RequestedBy))
}

// changeFenceDevices commits an operator's change of host's fence devices
// and answers with its fence history record.
func (n *Node) changeFenceDevices(w http.ResponseWriter, host string, t *model.FenceTopology, accept, allowUnsafe bool, by string) {
	c, err := fenceDevicesCommand(n.fsm.Copy(), host, t, accept, allowUnsafe, by, time.Now().UTC())
	if err != nil {
		writeApplyErr(w, err)
		return
	}
	if err := n.propose(c); err != nil {
		writeApplyErr(w, err)
		return
	}
	var rec model.FenceRecord
	n.fsm.Read(func(s *model.State) {
		for i := len(s.Status.FenceHistory) - 1; i >= 0; i-- {
			if r := s.Status.FenceHistory[i]; r.Host == host && r.Action == c.Fence.Action && r.Requester == by {
				rec = r
				break
			}
		}
	})
	n.log.Warn().Str("host", host).Str("action", rec.Action).Str("by", by).Str("before", rec.Before).Str("after", rec.After).
		Msg("fence devices changed by an operator")
	if n.coord != nil {
		n.coord.devicesChanged(host)
	}
	writeJSON(w, http.StatusOK, rec)
}

// offerRows lists the devices host offers in place of its topology, if it
// offers any, as rows of vmha fence devices.
func offerRows(s *model.State, host string) []api.FenceDevice {
	o := s.Status.FenceOffers[host]
	if o == nil {
		return nil
	}
	rows := deviceRows(host, &o.Topology, nil)
	note := ""
	if pw := s.Config.Fencing[host].PasswordChanges(&o.Topology); len(pw) > 0 {
		note = "new password for " + strings.Join(pw, ", ")
	}
	for i := range rows {
		rows[i].Offered, rows[i].OfferedAt, rows[i].Note = true, o.At.UTC(), note
	}
	return rows
}

// fenceProblems are the status lines about where a host's fencing stands
// with respect to trust: a host that offers other devices than the cluster
// uses, and a host never seen alive since it registered.
func fenceProblems(st *model.State, name string) []api.Issue {
	var out []api.Issue
	if o := st.Status.FenceOffers[name]; o != nil {
		what := o.Topology.Describe()
		if pw := st.Config.Fencing[name].PasswordChanges(&o.Topology); len(pw) > 0 {
			what += "; new password for " + strings.Join(pw, ", ")
		}
		out = append(out, hostIssue(api.SeverityWarning, "fence_offer", name, fmt.Sprintf("host %s offers other fence devices than the cluster uses; vmha fence devices accept %s uses them (offered at %s: %s; in use: %s)",
			name, name, o.At.Format(time.DateTime), what, st.Config.Fencing[name].Describe())))
	}
	if h := st.Config.Hosts[name]; h != nil && !h.Witness && !seenAlive(st.Status.Hosts[name]) {
		out = append(out, hostIssue(api.SeverityWarning, "host_not_seen", name, fmt.Sprintf("host %s has not been seen alive in gossip since it registered: its fence devices are not checked and the cluster does not fence it on its own; vmha fence %s --yes still does (if it is no real host: vmha host remove %s --yes)",
			name, name, name)))
	}
	return out
}

// seenAlive reports whether gossip has reported the host alive since it
// registered.
func seenAlive(hs *model.HostStatus) bool { return hs != nil && hs.SeenAlive }

// devicesChanged forgets the last checks of host's old devices and, when
// the host was seen alive and this host leads, checks the new ones now.
func (c *Coordinator) devicesChanged(host string) {
	c.mu.Lock()
	delete(c.checks, host)
	c.mu.Unlock()
	if c.n.raft == nil || !c.n.IsLeader() {
		return
	}
	seen := false
	c.n.fsm.Read(func(s *model.State) { seen = seenAlive(s.Status.Hosts[host]) })
	if !seen {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), c.n.cfg.Fencing.CallTimeout+10*time.Second)
		defer cancel()
		c.CheckDevices(ctx, host)
	}()
}
