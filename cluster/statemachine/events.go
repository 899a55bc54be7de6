package statemachine

import (
	"fmt"

	"github.com/vmha/vmha/cluster/command"
	"github.com/vmha/vmha/model"
)

// The event log is derived from the commands as they apply, so that every
// change an operator or the leader commits appears once, with the
// principal the command carries, on every host alike; nothing has to
// remember to write an event.

// eventsOf describes what c will do to s, read before c applies.
func eventsOf(s *model.State, c *command.Command) []model.Event {
	if f := describers[c.Op]; f != nil {
		return f(s, c)
	}
	return nil
}

// recordEvents appends evs, numbering them, and keeps the last MaxEvents.
func recordEvents(s *model.State, evs []model.Event) {
	if len(evs) == 0 {
		return
	}
	for _, e := range evs {
		s.Status.EventSeq++
		e.Seq = s.Status.EventSeq
		s.Status.Events = append(s.Status.Events, e)
	}
	if n := len(s.Status.Events); n > model.MaxEvents {
		// Copy rather than reslice, so the dropped events are freed.
		s.Status.Events = append([]model.Event(nil), s.Status.Events[n-model.MaxEvents:]...)
	}
}

// principal is who a command is recorded as: its authenticated principal,
// the one its payload names, or the cluster's leader.
func principal(c *command.Command, said string) string {
	switch {
	case c.By != "":
		return c.By
	case said != "":
		return said
	}
	return model.PrincipalCluster
}

func ev(c *command.Command, kind, object, action, by, reason string) model.Event {
	if c.Why != "" {
		reason = c.Why
	}
	return model.Event{At: c.At, Kind: kind, Object: object, Action: action, Principal: principal(c, by), Reason: reason}
}

var describers = map[command.Op]func(*model.State, *command.Command) []model.Event{
	command.OpUpdateVM:    describeUpdateVM,
	command.OpAdoptVM:     describeAdoptVM,
	command.OpTokenCreate: describeTokenCreate,
	command.OpTokenRevoke: describeTokenRevoke,
	command.OpRegisterHost: func(s *model.State, c *command.Command) []model.Event {
		if c.Host == nil {
			return nil
		}
		action := "register"
		if _, ok := s.Config.Hosts[c.Host.Name]; ok {
			action = "re-register"
		}
		return []model.Event{ev(c, model.EventHost, c.Host.Name, action, "host "+c.Host.Name, "")}
	},
	command.OpAddVM: func(s *model.State, c *command.Command) []model.Event {
		if c.VM == nil {
			return nil
		}
		action := "add"
		if _, ok := s.Config.VMs[c.VM.Name]; ok {
			action = "update"
		}
		return []model.Event{ev(c, model.EventVM, c.VM.Name, action, "", "")}
	},
	command.OpRemoveVM: func(_ *model.State, c *command.Command) []model.Event {
		return []model.Event{ev(c, model.EventVM, c.Name, "remove", "", "")}
	},
	command.OpPlace:       describePlace,
	command.OpHostState:   describeHostState,
	command.OpObserve:     describeObserve,
	command.OpFenceRecord: func(_ *model.State, c *command.Command) []model.Event { return []model.Event{fenceEvent(c, c.Fence)} },
	command.OpFenceConfirm: func(_ *model.State, c *command.Command) []model.Event {
		e := fenceEvent(c, c.Fence)
		e.Action = "confirm"
		return []model.Event{e}
	},
	command.OpSetFenceDevices: func(_ *model.State, c *command.Command) []model.Event {
		if c.Fence == nil {
			return nil
		}
		e := fenceEvent(c, c.Fence)
		e.Reason = fmt.Sprintf("%s → %s", c.Fence.Before, c.Fence.After)
		return []model.Event{e}
	},
	command.OpSetFencing: func(_ *model.State, c *command.Command) []model.Event {
		if c.FencingOff != nil {
			return []model.Event{ev(c, model.EventCluster, "fencing", "off", c.FencingOff.By, "lost hosts are recovered without being fenced")}
		}
		return []model.Event{ev(c, model.EventCluster, "fencing", "on", "", "")}
	},
	command.OpSetRules: func(_ *model.State, c *command.Command) []model.Event {
		action := "apply"
		if c.Rules != nil && *c.Rules == "" {
			action = "clear"
		}
		return []model.Event{ev(c, model.EventRules, "rules", action, "", "")}
	},
	command.OpHostAttr: func(_ *model.State, c *command.Command) []model.Event {
		a := c.Attr
		if a == nil || (a.Transient && c.By == "") {
			return nil // a host's own live attributes change often: not an event
		}
		if a.Value == "" {
			return []model.Event{ev(c, model.EventHost, a.Host, "attr-delete", "", a.Key)}
		}
		return []model.Event{ev(c, model.EventHost, a.Host, "attr-set", "", a.Key+"="+a.Value)}
	},
	command.OpEvacuation: describeEvacuation,
	command.OpPin: func(_ *model.State, c *command.Command) []model.Event {
		if c.Pin != nil {
			e := ev(c, model.EventVM, c.Pin.VM, "pin", c.Pin.By, "")
			e.Host = c.Pin.Host
			return []model.Event{e}
		}
		var out []model.Event
		for _, vm := range c.Names {
			out = append(out, ev(c, model.EventVM, vm, "unpin", "", ""))
		}
		return out
	},
	command.OpRebalance: describeRebalance,
	command.OpMaintenance: func(_ *model.State, c *command.Command) []model.Event {
		if m := c.Maintenance; m != nil {
			return []model.Event{ev(c, model.EventHost, c.Name, "maintenance-on", m.By, m.Reason)}
		}
		return []model.Event{ev(c, model.EventHost, c.Name, "maintenance-off", "", "")}
	},
	command.OpRemoveHost: func(_ *model.State, c *command.Command) []model.Event {
		return []model.Event{ev(c, model.EventHost, c.Name, "remove", "", "")}
	},
	command.OpExpectHost: func(_ *model.State, c *command.Command) []model.Event {
		if c.Expected != nil {
			return []model.Event{ev(c, model.EventHost, c.Name, "expect", c.Expected.By, "")}
		}
		return []model.Event{ev(c, model.EventHost, c.Name, "expect-withdraw", "", "")}
	},
	command.OpFormed: func(_ *model.State, c *command.Command) []model.Event {
		return []model.Event{ev(c, model.EventCluster, "cluster", "formed", "", fmt.Sprintf("all %d hosts seen together", len(c.Formed)))}
	},
	command.OpHostSeen: func(s *model.State, c *command.Command) []model.Event {
		var out []model.Event
		for _, h := range c.Names {
			if hs := s.Status.Hosts[h]; hs == nil || !hs.SeenAlive {
				out = append(out, ev(c, model.EventHost, h, "joined", "", "first seen alive in gossip"))
			}
		}
		return out
	},
	command.OpVMState: func(s *model.State, c *command.Command) []model.Event {
		if c.VMState == nil {
			return []model.Event{ev(c, model.EventVM, c.Name, "state-clear", "", "the rules decide its state again")}
		}
		return []model.Event{ev(c, model.EventVM, c.Name, "set-"+string(c.VMState.Target), c.VMState.By, c.VMState.Reason)}
	},
	command.OpFailures: func(_ *model.State, c *command.Command) []model.Event {
		if len(c.Failures) > 0 {
			return nil // the observation that reported it is the event
		}
		var out []model.Event
		for _, vm := range c.Names {
			e := ev(c, model.EventVM, vm, "cleanup", "", "fail counts cleared")
			e.Host = c.Name
			out = append(out, e)
		}
		return out
	},
	command.OpClusterMaintenance: func(_ *model.State, c *command.Command) []model.Event {
		if m := c.ClusterMaintenance; m != nil {
			return []model.Event{ev(c, model.EventCluster, "cluster", "maintenance-on", m.By, m.Reason)}
		}
		return []model.Event{ev(c, model.EventCluster, "cluster", "maintenance-off", "", "")}
	},
}

func fenceEvent(c *command.Command, r *model.FenceRecord) model.Event {
	if r == nil {
		return ev(c, model.EventFence, "", "fence", "", "")
	}
	e := ev(c, model.EventFence, r.Host, r.Action, r.Requester, r.Error)
	e.RecoveryID = r.RecoveryID
	e.Result = "ok"
	if !r.OK {
		e.Result = "failed"
	}
	if r.Device != "" && e.Reason == "" {
		e.Reason = "device " + r.Device
	}
	return e
}

// describePlace names each placement change by what it does to the VM.
func describePlace(s *model.State, c *command.Command) []model.Event {
	var out []model.Event
	for _, p := range c.Placements {
		old := s.Status.Placements[p.VM]
		action, result := placeAction(old, &p)
		if action == "" {
			continue
		}
		e := ev(c, model.EventVM, p.VM, action, "", p.Reason)
		e.Result, e.Host, e.RecoveryID, e.MigrationID = result, p.Host, p.RecoveryID, p.MigrationID
		if p.Host == "" && old != nil {
			e.Host = old.Host
		}
		out = append(out, e)
	}
	return out
}

func placeAction(old, p *model.Placement) (action, result string) {
	switch {
	case p.MigrateFrom != "" && p.Cold:
		return "relocate", ""
	case p.MigrateFrom != "":
		return "migrate", ""
	case old != nil && old.MigrateFrom != "" && p.Host == old.Host:
		if p.Moved != nil && p.Moved.Outcome == model.MoveRestart {
			return "restarted", "ok" // its live migration failed: shut down, started there
		}
		return "moved", "ok"
	case old != nil && old.MigrateFrom != "" && p.Host == old.MigrateFrom:
		return "move-back", "failed"
	case p.Host == "":
		if old == nil || old.Host == "" {
			return "", ""
		}
		return "stop", ""
	case p.RecoveryID != "" && (old == nil || old.Host != p.Host):
		return "recover", ""
	case old == nil || old.Host == "":
		return "start", ""
	case old.Host != p.Host:
		return "move", ""
	}
	return "", ""
}

func describeHostState(s *model.State, c *command.Command) []model.Event {
	hc := c.HostState
	if hc == nil {
		return nil
	}
	if hs := s.Status.Hosts[hc.Host]; hs != nil && hs.State == hc.State {
		return nil
	}
	e := ev(c, model.EventHost, hc.Host, string(hc.State), hc.RequestedBy, hc.Reason)
	e.RecoveryID = hc.RecoveryID
	return []model.Event{e}
}

// describeObserve records a VM's new failure on the reporting host: an
// error it did not report before.
func describeObserve(s *model.State, c *command.Command) []model.Event {
	o := c.Observation
	if o == nil {
		return nil
	}
	prev := s.Status.Observed[o.Host]
	var out []model.Event
	for _, vm := range model.SortedKeys(o.VMs) {
		cur := o.VMs[vm]
		if cur.Error == "" {
			continue
		}
		if prev != nil {
			if was, ok := prev.VMs[vm]; ok && was.Error == cur.Error && was.Since.Equal(cur.Since) {
				continue
			}
		}
		e := ev(c, model.EventVM, vm, "failed", "host "+o.Host, cur.Error)
		e.Result, e.Host = "failed", o.Host
		out = append(out, e)
	}
	return out
}

func describeEvacuation(s *model.State, c *command.Command) []model.Event {
	if e := c.Evacuation; e != nil {
		old := s.Status.Evacuations[e.Host]
		switch {
		case old == nil:
			what := "evacuate"
			if e.Storage != "" {
				what = "evacuate-storage"
			}
			return []model.Event{ev(c, model.EventHost, e.Host, what, e.By, e.Storage)}
		case e.Done && !old.Done:
			x := ev(c, model.EventHost, e.Host, "evacuated", e.By, "no VM is placed on it any more")
			x.Result = "ok"
			return []model.Event{x}
		}
		return nil
	}
	return []model.Event{ev(c, model.EventHost, c.Name, "online", "", "")}
}

func describeRebalance(s *model.State, c *command.Command) []model.Event {
	r := c.Rebalance
	if r == nil {
		return nil
	}
	cur := s.Status.ActiveRebalance()
	switch {
	case cur == nil || cur.ID != r.ID:
		return []model.Event{ev(c, model.EventRebalance, r.ID, "start", r.By, fmt.Sprintf("%d moves planned, score %.3g → %.3g", len(r.Moves), r.Before, r.Planned))}
	case r.Done && !cur.Done:
		x := ev(c, model.EventRebalance, r.ID, "end", r.By, r.Note)
		x.Result = "ok"
		return []model.Event{x}
	}
	return nil
}
