package clusterspec

import (
	"fmt"
	"time"
)

// Guest monitoring modes (a VM's guest-monitor), as vSphere HA's VM
// monitoring: off (the default: a crashed guest is left as libvirt leaves
// it), crash (a guest that panics, or whose emulated watchdog fires, is
// restarted on its host) and heartbeat (crash, and also a guest whose
// QEMU guest agent stops answering for guest-heartbeat-timeout).
const (
	GuestMonitorOff       = "off"
	GuestMonitorCrash     = "crash"
	GuestMonitorHeartbeat = "heartbeat"
)

// Guest monitoring defaults: a missed heartbeat counts after 60 s, and a
// guest that has not answered since it started gets 2 minutes (vSphere HA's
// "minimum uptime": the boot, its agent's start); a guest
// is restarted at most 3 times in an hour on one host, then left stopped
// and reported (vSphere's "maximum per-VM resets" in a "maximum resets time
// window").
const (
	DefaultGuestHeartbeatTimeout = 60 * time.Second
	DefaultGuestHeartbeatStartup = 2 * time.Minute
	DefaultGuestMaxRestarts      = 3
	DefaultGuestRestartWindow    = time.Hour
)

// GuestPolicy is a VM's guest monitoring with the defaults filled in.
type GuestPolicy struct {
	Monitor          string
	HeartbeatTimeout time.Duration
	// HeartbeatStartup is the silence allowed before a guest's first
	// answer since it started (at least HeartbeatTimeout).
	HeartbeatStartup time.Duration
	MaxRestarts      int
	Window           time.Duration
}

// Guest is the guest policy of v, defaults filled in.
func (v VM) Guest() GuestPolicy {
	p := GuestPolicy{Monitor: v.GuestMonitor, HeartbeatTimeout: DefaultGuestHeartbeatTimeout,
		HeartbeatStartup: DefaultGuestHeartbeatStartup, MaxRestarts: DefaultGuestMaxRestarts, Window: DefaultGuestRestartWindow}
	if p.Monitor == "" {
		p.Monitor = GuestMonitorOff
	}
	if v.GuestHeartbeatTimeout > 0 {
		p.HeartbeatTimeout = time.Duration(v.GuestHeartbeatTimeout)
	}
	if v.GuestHeartbeatStartup > 0 {
		p.HeartbeatStartup = time.Duration(v.GuestHeartbeatStartup)
	}
	p.HeartbeatStartup = max(p.HeartbeatStartup, p.HeartbeatTimeout)
	if v.GuestMaxRestarts != nil {
		p.MaxRestarts = *v.GuestMaxRestarts
	}
	if v.GuestRestartWindow > 0 {
		p.Window = time.Duration(v.GuestRestartWindow)
	}
	return p
}

// GuestOf is VM vm's guest policy (off when cluster.yaml does not name it).
func (s *Spec) GuestOf(vm string) GuestPolicy {
	if s != nil {
		for _, v := range s.VMs {
			if v.Name == vm {
				return v.Guest()
			}
		}
	}
	return VM{}.Guest()
}

// guestProblems are what is wrong with v's guest keys, one message each.
func (v VM) guestProblems() []string {
	var out []string
	switch v.GuestMonitor {
	case "", GuestMonitorOff, GuestMonitorCrash, GuestMonitorHeartbeat:
	default:
		out = append(out, fmt.Sprintf("guest-monitor %q: want off, crash or heartbeat", v.GuestMonitor))
	}
	if v.GuestHeartbeatTimeout < 0 {
		out = append(out, "guest-heartbeat-timeout is negative")
	} else if v.GuestHeartbeatTimeout > 0 && time.Duration(v.GuestHeartbeatTimeout) < 5*time.Second {
		out = append(out, fmt.Sprintf("guest-heartbeat-timeout %s is under 5s: a busy guest would be restarted for being slow", time.Duration(v.GuestHeartbeatTimeout)))
	}
	if v.GuestHeartbeatStartup < 0 {
		out = append(out, "guest-heartbeat-startup is negative")
	}
	if v.GuestMaxRestarts != nil && *v.GuestMaxRestarts < 0 {
		out = append(out, fmt.Sprintf("guest-max-restarts %d is negative", *v.GuestMaxRestarts))
	}
	if v.GuestRestartWindow < 0 {
		out = append(out, "guest-restart-window is negative")
	}
	return out
}
