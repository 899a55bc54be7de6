// Package fencing powers off hosts that the cluster has lost, so that their
// VMs can be started elsewhere without ever running twice.
package fencing

import "context"

// PowerState is what a fence device reports about its host.
type PowerState string

// Power states.
const (
	PowerOn      PowerState = "on"
	PowerOff     PowerState = "off"
	PowerUnknown PowerState = "unknown"
)

// Device is one way to control a host's power (a BMC, a PDU outlet, a
// management hypervisor). Implementations make a single attempt per call and
// honour ctx; retries, polling and verification live in Fence.
type Device interface {
	// Name describes the device for logs and status, never with secrets,
	// e.g. "ipmi 10.0.0.11:623".
	Name() string
	// PowerOff asks for the power to be switched off.
	PowerOff(ctx context.Context) error
	// PowerOn asks for the power to be switched on.
	PowerOn(ctx context.Context) error
	// Status reads the current power state.
	Status(ctx context.Context) (PowerState, error)
}
