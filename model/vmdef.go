package model

// RunsPreviousDefinition reports whether VM name runs with a definition
// older than its replicated XML: its definition was replaced while it was
// placed on a host (PendingRestart), and that host has not reported it
// inactive, or active since after the update, since then. Without a report
// from its host it is taken to run with the previous one.
func (s *State) RunsPreviousDefinition(name string) bool {
	vm := s.Config.VMs[name]
	p := s.Status.Placements[name]
	if vm == nil || !vm.PendingRestart || p == nil || p.Host == "" {
		return false
	}
	o := s.Status.Observed[p.Host]
	if o == nil {
		return true
	}
	ob, ok := o.VMs[name]
	if !ok {
		return true
	}
	return DomainState(ob.State).Active() && !ob.Since.After(vm.UpdatedAt)
}
