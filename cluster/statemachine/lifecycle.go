package statemachine

import (
	"errors"
	"fmt"
	"time"

	"github.com/vmha/vmha/cluster/command"
	"github.com/vmha/vmha/model"
)

// onVMState sets or clears a VM's target; a compare-and-set (IfTarget)
// is refused when another operator changed it since the client read it.
func onVMState(s *model.State, c *command.Command) error {
	if _, ok := s.Config.VMs[c.Name]; !ok {
		return &command.NotFoundError{Kind: "vm", Name: c.Name}
	}
	cur := s.Config.VMStates[c.Name]
	if c.IfTarget != "" {
		have := model.Target("-")
		if cur != nil {
			have = cur.Target
		}
		if have != c.IfTarget {
			return &command.ConflictError{What: fmt.Sprintf("vm %s: its state changed meanwhile (now %s, expected %s): read it again", c.Name, have, c.IfTarget)}
		}
	}
	if c.VMState == nil {
		delete(s.Config.VMStates, c.Name)
		return nil
	}
	if _, err := model.ParseTarget(string(c.VMState.Target)); err != nil {
		return &command.ValidationError{Field: "state", Err: err}
	}
	if s.Config.VMStates == nil {
		s.Config.VMStates = map[string]*model.VMState{}
	}
	cp := *c.VMState
	s.Config.VMStates[c.Name] = &cp
	if cp.Target == model.TargetDisabled {
		delete(s.Status.Failures, c.Name)
	}
	return nil
}

// onFailures counts reported failures, each once (a report repeated with
// the same time is the same failure), or clears them.
func onFailures(s *model.State, c *command.Command) error {
	if len(c.Failures) == 0 {
		return clearFailures(s, c.Names, c.Name)
	}
	for _, f := range c.Failures {
		if _, ok := s.Config.VMs[f.VM]; !ok {
			return &command.NotFoundError{Kind: "vm", Name: f.VM}
		}
		if _, ok := s.Config.Hosts[f.Host]; !ok {
			return &command.NotFoundError{Kind: "host", Name: f.Host}
		}
	}
	if s.Status.Failures == nil {
		s.Status.Failures = map[string]map[string]*model.Failure{}
	}
	for _, f := range c.Failures {
		byHost := s.Status.Failures[f.VM]
		if byHost == nil {
			byHost = map[string]*model.Failure{}
			s.Status.Failures[f.VM] = byHost
		}
		cur := byHost[f.Host]
		if cur == nil {
			cur = &model.Failure{}
			byHost[f.Host] = cur
		}
		if !f.At.After(cur.Last) {
			continue // counted already
		}
		cur.Count++
		cur.Last, cur.Error = f.At, f.Error
	}
	return nil
}

func clearFailures(s *model.State, vms []string, host string) error {
	if len(vms) == 0 {
		return errors.New("failures: no VM named")
	}
	for _, vm := range vms {
		if _, ok := s.Config.VMs[vm]; !ok {
			return &command.NotFoundError{Kind: "vm", Name: vm}
		}
	}
	for _, vm := range vms {
		// The failure the agent last reported is counted and now cleared:
		// forgotten with the count, or the leader would count it again
		// from the stored report (a cleanup undone at once).
		for h, o := range s.Status.Observed {
			if o == nil || (host != "" && h != host) {
				continue
			}
			if v, ok := o.VMs[vm]; ok && !v.FailedAt.IsZero() {
				v.FailedAt = time.Time{}
				o.VMs[vm] = v
			}
		}
		if host == "" {
			delete(s.Status.Failures, vm)
			continue
		}
		delete(s.Status.Failures[vm], host)
		if len(s.Status.Failures[vm]) == 0 {
			delete(s.Status.Failures, vm)
		}
	}
	return nil
}

func onClusterMaintenance(s *model.State, c *command.Command) error {
	if c.ClusterMaintenance == nil {
		if s.Config.Maintenance == nil {
			return &command.ConflictError{What: "the cluster is not in maintenance"}
		}
		s.Config.Maintenance = nil
		return nil
	}
	cp := *c.ClusterMaintenance
	s.Config.Maintenance = &cp
	return nil
}

// FailuresNow is a VM's failures that still count at now: those older than
// timeout (0: never expire) are forgotten, as Pacemaker's failure-timeout.
func FailuresNow(s *model.State, vm string, timeout time.Duration, now time.Time) map[string]*model.Failure {
	out := map[string]*model.Failure{}
	for h, f := range s.Status.Failures[vm] {
		if timeout > 0 && now.Sub(f.Last) >= timeout {
			continue
		}
		out[h] = f
	}
	return out
}

// onAlerted moves the alerts' mark forward (a late, lower one is ignored).
func onAlerted(s *model.State, c *command.Command) error {
	if c.AlertedSeq > s.Status.EventSeq {
		return &command.ValidationError{Field: "alerted_seq", Err: fmt.Errorf("%d is past the last event %d", c.AlertedSeq, s.Status.EventSeq)}
	}
	s.Status.AlertedSeq = max(s.Status.AlertedSeq, c.AlertedSeq)
	return nil
}
