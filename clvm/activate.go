package clvm

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Manager moves LV activation with a VM. Hosts lists every host of the
// cluster: Start asks each other one whether it has the VM's LVs active.
type Manager struct {
	Run   Runner
	Hosts []string
}

// checkRefs rejects anything that is not VG/LV, since the strings end up
// as lvchange arguments.
func checkRefs(vm string, lvs []string) error {
	if len(lvs) == 0 {
		return fmt.Errorf("VM %s: no logical volumes given", vm)
	}
	for _, ref := range lvs {
		vg, lv, ok := strings.Cut(ref, "/")
		if !ok || vg == "" || lv == "" || strings.Contains(lv, "/") || strings.HasPrefix(vg, "-") || strings.HasPrefix(lv, "-") || strings.ContainsAny(ref, " \t\n") {
			return fmt.Errorf("VM %s: %q is not a VG/LV name", vm, ref)
		}
	}
	return nil
}

// Status returns the given LVs as host sees them.
func (m *Manager) Status(ctx context.Context, host string, lvs []string) ([]LV, error) {
	args := append([]string{"--reportformat", "json", "--binary", "-o", lvsFields}, lvs...)
	out, err := m.Run.Run(ctx, host, "lvs", args...)
	if err != nil {
		return nil, fmt.Errorf("lvs on %s: %w", host, err)
	}
	got, err := ParseLVs(out)
	if err != nil {
		return nil, fmt.Errorf("lvs on %s: %w", host, err)
	}
	return got, nil
}

// ActiveElsewhereError is a VM refused because one of its LVs is active
// on another host: starting it would run it twice on the same disk.
type ActiveElsewhereError struct {
	VM, LV, Host string
	Exclusive    bool
}

func (e *ActiveElsewhereError) Error() string {
	how := "active (shared)"
	if e.Exclusive {
		how = "active exclusively"
	}
	return fmt.Sprintf("VM %s refused: logical volume %s is %s on host %s", e.VM, e.LV, how, e.Host)
}

// StartOptions tune Start.
type StartOptions struct {
	// Down lists hosts that are fenced or confirmed down: they are not
	// asked (they cannot answer), and their locks are released by the lock
	// manager once fencing is confirmed (DLM) or the lease expires
	// (sanlock), which lvchange -aey then waits for or fails on.
	Down []string
}

// Start activates the VM's LVs exclusively on host (lvchange -aey). It
// first asks every other host that is not down; an LV active there (or a
// host that cannot answer) refuses the start, naming the VM, the LV and the
// host. If one activation fails, the LVs it already activated are
// deactivated again, so a refused start leaves nothing behind.
func (m *Manager) Start(ctx context.Context, vm, host string, lvs []string, opt StartOptions) error {
	if err := checkRefs(vm, lvs); err != nil {
		return err
	}
	down := map[string]bool{}
	for _, h := range opt.Down {
		down[h] = true
	}
	for _, h := range m.Hosts {
		if h == host || down[h] {
			continue
		}
		st, err := m.Status(ctx, h, lvs)
		if err != nil {
			return fmt.Errorf("VM %s refused: cannot tell whether host %s has its logical volumes active (fence it or mark it down first): %w", vm, h, err)
		}
		for _, lv := range st {
			if lv.ActiveLocally || lv.ActiveExclusively {
				return &ActiveElsewhereError{VM: vm, LV: lv.Ref(), Host: h, Exclusive: lv.ActiveExclusively}
			}
		}
	}
	var done []string
	for _, ref := range lvs {
		if _, err := m.Run.Run(ctx, host, "lvchange", "-aey", ref); err != nil {
			undo := m.each(ctx, host, "-an", done)
			return errors.Join(fmt.Errorf("VM %s: exclusive activation of %s on %s: %w", vm, ref, host, err), undo)
		}
		done = append(done, ref)
	}
	return nil
}

// Stop deactivates the VM's LVs on host (lvchange -an), releasing their
// locks so another host can take them. It tries every LV and reports every
// failure.
func (m *Manager) Stop(ctx context.Context, vm, host string, lvs []string) error {
	if err := checkRefs(vm, lvs); err != nil {
		return err
	}
	if err := m.each(ctx, host, "-an", lvs); err != nil {
		return fmt.Errorf("VM %s: %w", vm, err)
	}
	return nil
}

// each runs lvchange mode on every ref, going on after a failure.
func (m *Manager) each(ctx context.Context, host, mode string, refs []string) error {
	var errs []error
	for _, ref := range refs {
		if _, err := m.Run.Run(ctx, host, "lvchange", mode, ref); err != nil {
			errs = append(errs, fmt.Errorf("lvchange %s %s on %s: %w", mode, ref, host, err))
		}
	}
	return errors.Join(errs...)
}

// MigrateBefore makes the LVs shared on both ends so the target's QEMU can
// open them while the source still runs: the source converts its exclusive
// lock to shared (lvchange -asy), then the target activates shared. If the
// target fails, the source goes back to exclusive and the target is
// deactivated, so a refused migration leaves the VM as it was.
func (m *Manager) MigrateBefore(ctx context.Context, vm, src, dst string, lvs []string) error {
	if err := checkRefs(vm, lvs); err != nil {
		return err
	}
	if src == dst {
		return fmt.Errorf("VM %s: migration source and target are both %s", vm, src)
	}
	if err := m.each(ctx, src, "-asy", lvs); err != nil {
		undo := m.each(ctx, src, "-aey", lvs)
		return errors.Join(fmt.Errorf("VM %s: shared activation on source %s before migrating to %s: %w", vm, src, dst, err), undo)
	}
	if err := m.each(ctx, dst, "-asy", lvs); err != nil {
		undo := errors.Join(m.each(ctx, dst, "-an", lvs), m.each(ctx, src, "-aey", lvs))
		return errors.Join(fmt.Errorf("VM %s: shared activation on target %s: %w", vm, dst, err), undo)
	}
	return nil
}

// MigrateAfter runs once the VM runs on the target: the source deactivates
// (releasing its shared lock), then the target converts to exclusive. The
// order matters: the target's exclusive request would fail while the
// source still holds a shared lock.
func (m *Manager) MigrateAfter(ctx context.Context, vm, src, dst string, lvs []string) error {
	if err := checkRefs(vm, lvs); err != nil {
		return err
	}
	if err := m.each(ctx, src, "-an", lvs); err != nil {
		return fmt.Errorf("VM %s: deactivating on source %s after migrating to %s (the target keeps a shared lock until this succeeds): %w", vm, src, dst, err)
	}
	if err := m.each(ctx, dst, "-aey", lvs); err != nil {
		return fmt.Errorf("VM %s: exclusive activation on target %s after migration: %w", vm, dst, err)
	}
	return nil
}

// MigrateAbort undoes MigrateBefore when the migration failed and the VM
// still runs on the source: the target deactivates, then the source goes
// back to exclusive.
func (m *Manager) MigrateAbort(ctx context.Context, vm, src, dst string, lvs []string) error {
	if err := checkRefs(vm, lvs); err != nil {
		return err
	}
	if err := m.each(ctx, dst, "-an", lvs); err != nil {
		return fmt.Errorf("VM %s: deactivating on target %s after a failed migration: %w", vm, dst, err)
	}
	if err := m.each(ctx, src, "-aey", lvs); err != nil {
		return fmt.Errorf("VM %s: exclusive activation back on source %s: %w", vm, src, err)
	}
	return nil
}
