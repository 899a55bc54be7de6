package hypervisor

import (
	"context"
	"fmt"
	"time"

	"libvirt.org/go/libvirt"
)

// GuestPinger is what a hypervisor offers for guest heartbeats: a ping of
// the QEMU guest agent inside the guest. Optional: the agent asks for it
// with a type assertion, and a hypervisor without it cannot run
// guest-monitor heartbeat.
type GuestPinger interface {
	GuestPing(ctx context.Context, name string, timeout time.Duration) error
}

// onWatchdog runs on the event loop: the guest's emulated watchdog fired
// (<watchdog model='i6300esb' action='...'/>). The action already ran in
// QEMU; the agent counts it as a guest failure.
func (l *Libvirt) onWatchdog(_ *libvirt.Connect, d *libvirt.Domain, ev *libvirt.DomainEventWatchdog) {
	name, err := d.GetName()
	if err != nil {
		return
	}
	l.send(Event{Domain: name, State: currentState(d), Detail: "watchdog", Time: time.Now()}, int(ev.Action))
}

// GuestPing sends guest-ping to the QEMU guest agent of domain name (the
// guest needs qemu-guest-agent and a <channel type='unix'> with target
// org.qemu.guest_agent.0). A nil error is a heartbeat.
func (l *Libvirt) GuestPing(ctx context.Context, name string, timeout time.Duration) error {
	if err := l.acquire(ctx); err != nil {
		return err
	}
	defer l.release()
	dom, err := l.conn.LookupDomainByName(name)
	if err != nil {
		return fmt.Errorf("look up domain %q on %s: %w", name, l.uri, wrapLibvirtErr(err))
	}
	defer dom.Free()
	secs := max(int(timeout/time.Second), 1)
	if _, err := dom.QemuAgentCommand(`{"execute":"guest-ping"}`, libvirt.DomainQemuAgentCommandTimeout(secs), 0); err != nil {
		return fmt.Errorf("guest agent of %q: %w", name, wrapLibvirtErr(err))
	}
	return nil
}

// QemuMonitorCommand runs one QMP command (JSON) in domain name's QEMU
// through libvirt, which stays the owner of the monitor socket, and returns
// QEMU's JSON reply. For what the libvirt binding does not type
// (hypervisor/qmp wraps it for go-qemu).
func (l *Libvirt) QemuMonitorCommand(ctx context.Context, name, cmd string) (string, error) {
	if err := l.acquire(ctx); err != nil {
		return "", err
	}
	defer l.release()
	dom, err := l.conn.LookupDomainByName(name)
	if err != nil {
		return "", fmt.Errorf("look up domain %q on %s: %w", name, l.uri, wrapLibvirtErr(err))
	}
	defer dom.Free()
	out, err := dom.QemuMonitorCommand(cmd, libvirt.DOMAIN_QEMU_MONITOR_COMMAND_DEFAULT)
	if err != nil {
		return "", fmt.Errorf("qemu monitor of %q: %w", name, wrapLibvirtErr(err))
	}
	return out, nil
}
