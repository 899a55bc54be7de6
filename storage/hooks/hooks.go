// Package hooks prepares storage around a live migration: it implements
// migration.Hooks with clvm (the VM's logical volumes shared on both hosts
// before the job, exclusive on the target after it, back to exclusive on
// the source when it fails) and an optional readiness check of the
// target's cluster file systems. It lives apart from clvm so that clvm
// does not link libvirt through the migration package.
package hooks

import (
	"context"
	"fmt"

	"github.com/vmha/vmha/clvm"
	"github.com/vmha/vmha/migration"
	"github.com/vmha/vmha/model"
	"github.com/vmha/vmha/storage"
)

// Hooks is a migration.Hooks for VMs with disks on shared storage.
type Hooks struct {
	LVM *clvm.Manager
	// LVs returns the VM's logical volumes as "VG/LV" (none for a VM on
	// cluster file systems only). DomainLVs builds one from the config.
	LVs func(ctx context.Context, vm string) ([]string, error)
	// TargetReady, if set, refuses the migration when the VM's storage is
	// not ready on the target host (e.g. its cluster file system is not
	// mounted there, from the host's published readiness).
	TargetReady func(ctx context.Context, vm, host string) error
}

var _ migration.Hooks = (*Hooks)(nil)

func (h *Hooks) lvs(ctx context.Context, vm string) ([]string, error) {
	if h.LVs == nil {
		return nil, nil
	}
	lvs, err := h.LVs(ctx, vm)
	if err != nil {
		return nil, fmt.Errorf("storage of VM %s: %w", vm, err)
	}
	return lvs, nil
}

// Before checks the target and activates the VM's LVs shared on both ends.
func (h *Hooks) Before(ctx context.Context, vm string, src, dst migration.Endpoint) error {
	if h.TargetReady != nil {
		if err := h.TargetReady(ctx, vm, dst.Host); err != nil {
			return fmt.Errorf("storage of VM %s is not ready on %s: %w", vm, dst.Host, err)
		}
	}
	lvs, err := h.lvs(ctx, vm)
	if err != nil || len(lvs) == 0 {
		return err
	}
	return h.LVM.MigrateBefore(ctx, vm, src.Host, dst.Host, lvs)
}

// After releases the source and makes the target's activation exclusive.
func (h *Hooks) After(ctx context.Context, vm string, src, dst migration.Endpoint) error {
	lvs, err := h.lvs(ctx, vm)
	if err != nil || len(lvs) == 0 {
		return err
	}
	return h.LVM.MigrateAfter(ctx, vm, src.Host, dst.Host, lvs)
}

// Abort deactivates the target and returns the source to exclusive.
func (h *Hooks) Abort(ctx context.Context, vm string, src, dst migration.Endpoint) error {
	lvs, err := h.lvs(ctx, vm)
	if err != nil || len(lvs) == 0 {
		return err
	}
	return h.LVM.MigrateAbort(ctx, vm, src.Host, dst.Host, lvs)
}

// DomainLVs returns an LVs function that reads the VM's domain XML (from
// the replicated state, through domainXML) and maps its disks with cfg. A
// disk on no known storage is an error naming the VM and the disk, which
// refuses the migration.
func DomainLVs(cfg storage.Config, domainXML func(ctx context.Context, vm string) ([]byte, error)) func(context.Context, string) ([]string, error) {
	return func(ctx context.Context, vm string) ([]string, error) {
		x, err := domainXML(ctx, vm)
		if err != nil {
			return nil, err
		}
		info, err := model.ParseDomainXML(x)
		if err != nil {
			return nil, err
		}
		rs, err := cfg.MapDisks(vm, info.Disks)
		if err != nil {
			return nil, err
		}
		return storage.LVs(rs), nil
	}
}
