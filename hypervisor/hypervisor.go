// Package hypervisor is the boundary between vmha and the software that runs
// virtual machines on a host. The agent only talks to the Hypervisor interface;
// the libvirt implementation drives qemu:///system, xen:///system or the
// in-process test:/// driver.
package hypervisor

import (
	"context"
	"errors"
	"time"

	"github.com/vmha/vmha/model"
)

// State is a domain's run state as vmha cares about it (model.DomainState:
// the decisions read it without the hypervisor binding).
type State = model.DomainState

// Domain states, mapped from libvirt's virDomainState.
const (
	StateRunning  = model.DomainRunning
	StatePaused   = model.DomainPaused
	StateShutdown = model.DomainShutdown
	StateShutoff  = model.DomainShutoff
	StateCrashed  = model.DomainCrashed
	StateUnknown  = model.DomainUnknown
)

// Domain is one defined domain on this hypervisor.
type Domain struct {
	Name      string `json:"name"`
	UUID      string `json:"uuid"`
	State     State  `json:"state"`
	MemoryMiB uint64 `json:"memory_mib"`
	VCPUs     uint   `json:"vcpus"`
	// Crashed: the guest crashed (libvirt's crashed state, kept with
	// <on_crash>preserve</on_crash>; or shut off with reason crashed, after
	// <on_crash>destroy</on_crash>). See docs/guest-health.md.
	Crashed bool `json:"crashed,omitempty"`
}

// Event is a lifecycle change of one domain.
type Event struct {
	Domain string
	State  State
	// Detail is libvirt's event kind, e.g. "started", "stopped", "crashed"
	// (also a stop because the guest crashed), "watchdog" (the emulated
	// watchdog fired; State is then unknown).
	Detail string
	Time   time.Time
}

// NodeInfo is the capacity of the host.
type NodeInfo struct {
	MemoryMiB uint64 `json:"memory_mib"`
	CPUs      uint   `json:"cpus"`
}

// ErrNotFound is returned (wrapped) when a named domain does not exist.
var ErrNotFound = errors.New("domain not found")

// Hypervisor is what the agent needs from a host's hypervisor. Every method is
// idempotent where the operation allows it: starting a running domain and
// stopping a stopped one succeed.
type Hypervisor interface {
	// Define defines (or redefines) a persistent domain from its XML and
	// returns the domain's name.
	Define(ctx context.Context, xml string) (string, error)
	// Start starts a defined domain; a running domain is left as it is.
	Start(ctx context.Context, name string) error
	// Stop asks the guest to shut down, waits up to timeout, then destroys
	// it. A domain that is already off, or not defined, is not an error.
	Stop(ctx context.Context, name string, timeout time.Duration) error
	// Undefine removes a domain's persistent definition (stopping it first
	// is the caller's job). A missing domain is not an error.
	Undefine(ctx context.Context, name string) error
	// List returns every defined or running domain with its state.
	List(ctx context.Context) ([]Domain, error)
	// NodeInfo returns the host's capacity.
	NodeInfo(ctx context.Context) (NodeInfo, error)
	// Events delivers lifecycle events until Close. The channel is
	// buffered; a slow reader loses events, never blocks the hypervisor,
	// which is why the agent also reconciles on a timer.
	Events() <-chan Event
	// Close releases the connection and closes the Events channel.
	Close() error
}
