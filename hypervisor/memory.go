package hypervisor

import (
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/vmha/vmha/model"
)

// ErrPoweredOff is returned (wrapped) by every call to an in-memory
// hypervisor whose host was powered off: like a host whose power was cut,
// it answers nothing until it boots again.
var ErrPoweredOff = errors.New("host is powered off")

// MemoryOptions configure an in-memory hypervisor.
type MemoryOptions struct {
	// Info is the host's capacity (NodeInfo).
	Info NodeInfo
	// EventBuffer is the Events channel's size (default 64). As with
	// libvirt, a full channel drops events rather than blocking.
	EventBuffer int
	// World, when set, is held for reading around every state change.
	// Whoever holds it for writing sees every hypervisor sharing it at one
	// instant: a simulation checks "never active on two hosts" that way
	// without mistaking a sequential stop-then-start that happened during
	// its scan for an overlap.
	World *sync.RWMutex
	// Now is the clock events are stamped with (default time.Now).
	Now func() time.Time
}

// Memory is an in-memory Hypervisor: domains are entries in a map and start
// or stop at once. It is the driver of the simulated cluster (thousands of
// hosts in one process, where libvirt's test driver would cost a
// connection, an event loop and a file per host) and behaves as the
// interface promises: Start of a running domain, Stop of a stopped or
// unknown one and Undefine of an unknown one succeed; Undefine of a running
// domain leaves it running as a transient domain until it stops, as libvirt
// does. It is safe for concurrent use.
type Memory struct {
	opts   MemoryOptions
	mu     sync.Mutex
	doms   map[string]*memDomain
	events chan Event
	closed bool
	off    bool
}

type memDomain struct {
	name, uuid string
	state      State
	memMiB     uint64
	vcpus      uint
	// persistent is false once a running domain was undefined: it
	// disappears when it stops.
	persistent bool
}

var _ Hypervisor = (*Memory)(nil)

// NewMemory returns an empty, powered-on in-memory hypervisor.
func NewMemory(o MemoryOptions) *Memory {
	if o.EventBuffer <= 0 {
		o.EventBuffer = 64
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Memory{opts: o, doms: map[string]*memDomain{}, events: make(chan Event, o.EventBuffer)}
}

// change runs fn under the world's read lock (if any) and the
// hypervisor's own lock, after checking that the host can answer.
func (m *Memory) change(ctx context.Context, fn func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if m.opts.World != nil {
		m.opts.World.RLock()
		defer m.opts.World.RUnlock()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.usable(); err != nil {
		return err
	}
	return fn()
}

func (m *Memory) usable() error {
	switch {
	case m.closed:
		return ErrClosed
	case m.off:
		return ErrPoweredOff
	}
	return nil
}

// emit sends an event without blocking; m.mu is held.
func (m *Memory) emit(name string, s State, detail string) {
	if m.closed {
		return
	}
	select {
	case m.events <- Event{Domain: name, State: s, Detail: detail, Time: m.opts.Now()}:
	default:
	}
}

// uuidOf derives a stable UUID from the name, so that a redefinition keeps
// the domain's identity as libvirt does.
func uuidOf(name string) string {
	h := sha1.Sum([]byte("vmha-memory-domain:" + name))
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// Define parses the XML's name, memory and vCPUs and defines (or
// redefines, keeping its run state) the domain.
func (m *Memory) Define(ctx context.Context, xml string) (string, error) {
	info, err := model.ParseDomainXML([]byte(xml))
	if err != nil {
		return "", fmt.Errorf("define: %w", err)
	}
	if info.Name == "" {
		return "", errors.New("define: the domain XML has no <name>")
	}
	err = m.change(ctx, func() error {
		d := m.doms[info.Name]
		if d == nil {
			d = &memDomain{name: info.Name, uuid: uuidOf(info.Name), state: StateShutoff}
			m.doms[info.Name] = d
		}
		d.memMiB, d.vcpus, d.persistent = info.MemoryMiB, info.VCPUs, true
		m.emit(d.name, d.state, "defined")
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("define %s: %w", info.Name, err)
	}
	return info.Name, nil
}

// Start starts a defined domain; a domain that is already active is left
// as it is.
func (m *Memory) Start(ctx context.Context, name string) error {
	err := m.change(ctx, func() error {
		d := m.doms[name]
		if d == nil {
			return ErrNotFound
		}
		if d.state.Active() {
			return nil
		}
		d.state = StateRunning
		m.emit(name, d.state, "started")
		return nil
	})
	if err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	return nil
}

// Stop turns an active domain off at once (an in-memory guest shuts down
// instantly, so timeout is never reached). A stopped or unknown domain is
// not an error; a transient domain (undefined while running) disappears.
func (m *Memory) Stop(ctx context.Context, name string, _ time.Duration) error {
	err := m.change(ctx, func() error {
		d := m.doms[name]
		if d == nil {
			return nil
		}
		if d.state.Active() {
			d.state = StateShutoff
			m.emit(name, d.state, "stopped")
		}
		if !d.persistent {
			delete(m.doms, name)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("stop %s: %w", name, err)
	}
	return nil
}

// Undefine removes the persistent definition. An unknown domain is not an
// error; an active one keeps running, transient, until it stops.
func (m *Memory) Undefine(ctx context.Context, name string) error {
	err := m.change(ctx, func() error {
		d := m.doms[name]
		if d == nil {
			return nil
		}
		if d.state.Active() {
			d.persistent = false
			return nil
		}
		delete(m.doms, name)
		m.emit(name, StateShutoff, "undefined")
		return nil
	})
	if err != nil {
		return fmt.Errorf("undefine %s: %w", name, err)
	}
	return nil
}

// List returns every domain, sorted by name. It does not take the World
// lock, so a holder of World's write lock may call it.
func (m *Memory) List(ctx context.Context) ([]Domain, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.usable(); err != nil {
		return nil, fmt.Errorf("list domains: %w", err)
	}
	out := make([]Domain, 0, len(m.doms))
	for _, d := range m.doms {
		out = append(out, Domain{Name: d.name, UUID: d.uuid, State: d.state, MemoryMiB: d.memMiB, VCPUs: d.vcpus})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Active returns the names of the active domains, whatever the host's
// power: a checker's view of what holds disks (a powered-off host holds
// none). Like List, it does not take the World lock.
func (m *Memory) Active() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, d := range m.doms {
		if d.state.Active() {
			out = append(out, d.name)
		}
	}
	sort.Strings(out)
	return out
}

// Lookup returns one domain, whatever the host's power (a checker's view,
// like Active), and whether it is defined.
func (m *Memory) Lookup(name string) (Domain, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.doms[name]
	if d == nil {
		return Domain{}, false
	}
	return Domain{Name: d.name, UUID: d.uuid, State: d.state, MemoryMiB: d.memMiB, VCPUs: d.vcpus}, true
}

// NodeInfo returns the capacity given in MemoryOptions.Info.
func (m *Memory) NodeInfo(ctx context.Context) (NodeInfo, error) {
	if err := ctx.Err(); err != nil {
		return NodeInfo{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.usable(); err != nil {
		return NodeInfo{}, fmt.Errorf("node info: %w", err)
	}
	return m.opts.Info, nil
}

// Events delivers lifecycle events until Close.
func (m *Memory) Events() <-chan Event { return m.events }

// Close closes the Events channel; later calls fail with ErrClosed. A
// second Close is a no-op.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.closed {
		m.closed = true
		close(m.events)
	}
	return nil
}

// Crash makes an active domain crash (state crashed, event "crashed"), as
// a guest kernel panic or a killed qemu would. The simulation's way to fail
// one VM.
func (m *Memory) Crash(name string) error {
	return m.change(context.Background(), func() error {
		d := m.doms[name]
		if d == nil {
			return fmt.Errorf("crash %s: %w", name, ErrNotFound)
		}
		if !d.state.Active() {
			return fmt.Errorf("crash %s: not active (%s)", name, d.state)
		}
		d.state = StateCrashed
		m.emit(name, d.state, "crashed")
		return nil
	})
}

// PowerOff cuts the host's power: every domain stops at once (transient
// ones vanish), and every later call fails with ErrPoweredOff until
// PowerOn. It is what a fence device does to the host; a second PowerOff
// is a no-op.
func (m *Memory) PowerOff() {
	if m.opts.World != nil {
		m.opts.World.RLock()
		defer m.opts.World.RUnlock()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.off {
		return
	}
	for name, d := range m.doms {
		if d.state.Active() {
			d.state = StateShutoff
			m.emit(name, d.state, "destroyed")
		}
		if !d.persistent {
			delete(m.doms, name)
		}
	}
	m.off = true
}

// PowerOn boots the host again: persistent definitions are back, every
// domain is off (nothing autostarts: the agent decides).
func (m *Memory) PowerOn() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.off = false
}

// PoweredOff reports whether the host is off.
func (m *Memory) PoweredOff() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.off
}
