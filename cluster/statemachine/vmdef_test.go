package statemachine

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/vmha/vmha/cluster/command"
	"github.com/vmha/vmha/model"
)

func vmdefState(t *testing.T) *model.State {
	t.Helper()
	s := model.NewState()
	at := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	for _, c := range []*command.Command{
		{Op: command.OpRegisterHost, At: at, Host: &model.Host{Name: "h1", MemoryMiB: 4096}},
		{Op: command.OpRegisterHost, At: at, Host: &model.Host{Name: "w", Witness: true}},
		{Op: command.OpAddVM, At: at, VM: &model.VM{Name: "vm1", XML: "<domain/>", MemoryMiB: 512}},
	} {
		if err := Apply(s, c); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// TestVMDefinitionOpsRefuseBadCommands: a refused update_vm or adopt_vm
// changes nothing (events included) and says what is wrong.
func TestVMDefinitionOpsRefuseBadCommands(t *testing.T) {
	newVM := &model.VM{Name: "vm2", XML: "<domain/>"}
	for _, tc := range []struct {
		name string
		c    *command.Command
		kind any
	}{
		{"update without a vm", &command.Command{Op: command.OpUpdateVM}, nil},
		{"update of an unknown vm", &command.Command{Op: command.OpUpdateVM, VM: &model.VM{Name: "nosuch", XML: "<domain/>"}}, &command.NotFoundError{}},
		{"update to no XML", &command.Command{Op: command.OpUpdateVM, VM: &model.VM{Name: "vm1"}}, &command.ValidationError{}},
		{"adopt without a placement", &command.Command{Op: command.OpAdoptVM, VM: newVM}, nil},
		{"adopt on a witness", &command.Command{Op: command.OpAdoptVM, VM: newVM, Placements: []model.Placement{{VM: "vm2", Host: "w"}}}, &command.ValidationError{}},
		{"adopt on an unknown host", &command.Command{Op: command.OpAdoptVM, VM: newVM, Placements: []model.Placement{{VM: "vm2", Host: "h9"}}}, &command.ValidationError{}},
		{"adopt a vm that exists", &command.Command{Op: command.OpAdoptVM, VM: &model.VM{Name: "vm1", XML: "<domain/>"}, Placements: []model.Placement{{VM: "vm1", Host: "h1"}}}, &command.ConflictError{}},
		{"adopt with another vm's placement", &command.Command{Op: command.OpAdoptVM, VM: newVM, Placements: []model.Placement{{VM: "vm1", Host: "h1"}}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := vmdefState(t)
			before, _ := json.Marshal(s)
			err := Apply(s, tc.c)
			if err == nil {
				t.Fatal("applied")
			}
			switch k := tc.kind.(type) {
			case *command.NotFoundError:
				if !errors.As(err, &k) {
					t.Errorf("error %v, want not found", err)
				}
			case *command.ValidationError:
				if !errors.As(err, &k) {
					t.Errorf("error %v, want a validation error", err)
				}
			case *command.ConflictError:
				if !errors.As(err, &k) {
					t.Errorf("error %v, want a conflict", err)
				}
			}
			if after, _ := json.Marshal(s); string(after) != string(before) {
				t.Error("a refused command changed the state")
			}
		})
	}
}

// TestAdoptAndUpdate: adopt_vm adds and places in one entry; update_vm
// keeps placement and prefer, records who and when, and marks a placed VM
// as running with the previous definition.
func TestAdoptAndUpdate(t *testing.T) {
	s := vmdefState(t)
	at := time.Date(2026, 12, 5, 11, 0, 0, 0, time.UTC)
	adopt := &command.Command{Op: command.OpAdoptVM, At: at, By: "alice", VM: &model.VM{Name: "vm2", XML: "<a/>", Prefer: "h1"},
		Placements: []model.Placement{{VM: "vm2", Host: "h1", Reason: "adopted"}}}
	if err := Apply(s, adopt); err != nil {
		t.Fatal(err)
	}
	p := s.Status.Placements["vm2"]
	if s.Config.VMs["vm2"] == nil || p == nil || p.Host != "h1" || p.Generation == 0 || !p.Since.Equal(at) {
		t.Fatalf("after adopt_vm: vm %+v, placement %+v", s.Config.VMs["vm2"], p)
	}
	if e := s.Status.Events[len(s.Status.Events)-1]; e.Action != "adopt" || e.Host != "h1" || e.Principal != "alice" {
		t.Errorf("adopt event %+v", e)
	}
	up := &command.Command{Op: command.OpUpdateVM, At: at.Add(time.Minute), By: "bob", VM: &model.VM{Name: "vm2", XML: "<b/>", MemoryMiB: 1024, RestartRequested: true}}
	if err := Apply(s, up); err != nil {
		t.Fatal(err)
	}
	vm := s.Config.VMs["vm2"]
	if vm.XML != "<b/>" || vm.MemoryMiB != 1024 || vm.Prefer != "h1" || vm.PreviousXML != "<a/>" || !vm.PendingRestart || !vm.RestartRequested ||
		vm.UpdatedBy != "bob" || !vm.UpdatedAt.Equal(up.At) || s.Status.Placements["vm2"].Generation != p.Generation {
		t.Errorf("after update_vm: %+v", vm)
	}
	if e := s.Status.Events[len(s.Status.Events)-1]; e.Action != "update" || e.Principal != "bob" || e.Object != "vm2" {
		t.Errorf("update event %+v", e)
	}
	if !s.RunsPreviousDefinition("vm2") {
		t.Error("vm2 does not run with its previous definition after an update")
	}
	// Unplaced: nothing pending.
	if err := Apply(s, &command.Command{Op: command.OpUpdateVM, At: at, VM: &model.VM{Name: "vm1", XML: "<c/>", RestartRequested: true}}); err != nil {
		t.Fatal(err)
	}
	if vm := s.Config.VMs["vm1"]; vm.PendingRestart || vm.RestartRequested || s.RunsPreviousDefinition("vm1") {
		t.Errorf("unplaced vm after update: %+v", vm)
	}
}
