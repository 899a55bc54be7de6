package cluster

import (
	"github.com/vmha/vmha/cluster/command"
	"github.com/vmha/vmha/cluster/statemachine"
)

// The log's commands and the state machine live in their own packages
// (cluster/command, cluster/statemachine); these names keep the rest of
// this package, and its callers, reading as before.
type (
	Op              = command.Op
	Command         = command.Command
	HostStateChange = command.HostStateChange
	HostAttr        = command.HostAttr
	ValidationError = command.ValidationError
	NotFoundError   = command.NotFoundError
	ConflictError   = command.ConflictError
)

const (
	OpRegisterHost    = command.OpRegisterHost
	OpAddVM           = command.OpAddVM
	OpRemoveVM        = command.OpRemoveVM
	OpPlace           = command.OpPlace
	OpHostState       = command.OpHostState
	OpFenceRecord     = command.OpFenceRecord
	OpObserve         = command.OpObserve
	OpFenceConfirm    = command.OpFenceConfirm
	OpSetFencing      = command.OpSetFencing
	OpSetRules        = command.OpSetRules
	OpHostAttr        = command.OpHostAttr
	OpEvacuation      = command.OpEvacuation
	OpPin             = command.OpPin
	OpRebalance       = command.OpRebalance
	OpMaintenance     = command.OpMaintenance
	OpRemoveHost      = command.OpRemoveHost
	OpExpectHost      = command.OpExpectHost
	OpFormed          = command.OpFormed
	OpSetFenceDevices = command.OpSetFenceDevices
	OpHostSeen        = command.OpHostSeen
)

var (
	apply      = statemachine.Apply
	checkRules = statemachine.CheckRules
	// SpecOf turns a replicated topology into a fencing spec (see statemachine.SpecOf).
	SpecOf     = statemachine.SpecOf
	ValidateVM = statemachine.ValidateVM
)

var (
	cloneTopology   = statemachine.CloneTopology
	checkTopology   = statemachine.CheckTopology
	registerOutcome = statemachine.RegisterOutcome
)

const maxFenceHistory = statemachine.MaxFenceHistory

var checkTransition = statemachine.CheckTransition

const maxRebalances = statemachine.MaxRebalances
