package statemachine

import (
	"errors"
	"fmt"

	"github.com/vmha/vmha/cluster/command"
	"github.com/vmha/vmha/model"
)

// VM definitions: replacing a VM's definition in place (vm update), and
// adding a VM where its domain already runs (vm add --from-libvirt).

func describeAdoptVM(_ *model.State, c *command.Command) []model.Event {
	if c.VM == nil || len(c.Placements) != 1 {
		return nil
	}
	e := ev(c, model.EventVM, c.VM.Name, "adopt", "", "added where its domain already runs")
	e.Host = c.Placements[0].Host
	return []model.Event{e}
}

// onUpdateVM replaces a VM's definition; see command.OpUpdateVM. A VM
// placed on a host runs with the definition it started with until it
// starts again: PendingRestart, with PreviousXML the definition it still
// runs with (an update on top of one still pending keeps the older).
func onUpdateVM(s *model.State, c *command.Command) error {
	nv := c.VM
	if nv == nil {
		return errors.New("update_vm: no vm")
	}
	old, ok := s.Config.VMs[nv.Name]
	if !ok {
		return &command.NotFoundError{Kind: "vm", Name: nv.Name}
	}
	if nv.XML == "" {
		return &command.ValidationError{Field: "xml", Err: errors.New("empty domain XML")}
	}
	vm := *old
	vm.XML, vm.MemoryMiB, vm.VCPUs = nv.XML, nv.MemoryMiB, nv.VCPUs
	vm.Disks = append([]string(nil), nv.Disks...)
	if nv.XMLPath != "" {
		vm.XMLPath = nv.XMLPath
	}
	vm.UpdatedAt, vm.UpdatedBy = c.At, principal(c, "")
	if !s.RunsPreviousDefinition(vm.Name) {
		vm.PreviousXML = old.XML
	}
	if p := s.Status.Placements[vm.Name]; p != nil && p.Host != "" {
		vm.PendingRestart = true
		vm.RestartRequested = nv.RestartRequested
	} else {
		// Placed nowhere: it starts with the new definition.
		vm.PendingRestart, vm.RestartRequested = false, false
	}
	s.Config.VMs[vm.Name] = &vm
	return nil
}

func describeUpdateVM(s *model.State, c *command.Command) []model.Event {
	if c.VM == nil {
		return nil
	}
	reason := "definition replaced"
	if p := s.Status.Placements[c.VM.Name]; p != nil && p.Host != "" {
		reason += "; it runs with the previous one until it next starts"
		if c.VM.RestartRequested {
			reason += " (restart requested)"
		}
	}
	return []model.Event{ev(c, model.EventVM, c.VM.Name, "update", "", reason)}
}

// onAdoptVM adds a VM and places it where it runs; see command.OpAdoptVM.
func onAdoptVM(s *model.State, c *command.Command) error {
	if c.VM == nil || len(c.Placements) != 1 || c.Placements[0].VM != c.VM.Name {
		return errors.New("adopt_vm: want a vm and its one placement")
	}
	host := c.Placements[0].Host
	if h, ok := s.Config.Hosts[host]; !ok || h.Witness {
		return &command.ValidationError{Field: "host", Err: fmt.Errorf("%q is not a host that runs VMs", host)}
	}
	// Both checked before either changes the state.
	if err := validateVMAtApply(s, c.VM); err != nil {
		return err
	}
	if err := onAddVM(s, c); err != nil {
		return err
	}
	return onPlace(s, &command.Command{Op: command.OpPlace, At: c.At, Term: c.Term, Placements: c.Placements})
}
