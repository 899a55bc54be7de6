package cluster

import (
	"github.com/vmha/vmha/cluster/command"
	"github.com/vmha/vmha/cluster/statemachine"
)

// The log's commands and the state machine live in their own packages
// (cluster/command, cluster/statemachine); these names keep the rest of
// this package, and its callers, reading as before.
type (
	// Op is command.Op.
	Op = command.Op
	// Command is command.Command.
	Command = command.Command
	// HostStateChange is command.HostStateChange.
	HostStateChange = command.HostStateChange
	// HostAttr is command.HostAttr.
	HostAttr = command.HostAttr
	// ValidationError is command.ValidationError.
	ValidationError = command.ValidationError
	// NotFoundError is command.NotFoundError.
	NotFoundError = command.NotFoundError
	// ConflictError is command.ConflictError.
	ConflictError = command.ConflictError
)

// The log's ops (command.Op*).
const (
	OpRegisterHost       = command.OpRegisterHost
	OpAddVM              = command.OpAddVM
	OpRemoveVM           = command.OpRemoveVM
	OpPlace              = command.OpPlace
	OpHostState          = command.OpHostState
	OpFenceRecord        = command.OpFenceRecord
	OpObserve            = command.OpObserve
	OpFenceConfirm       = command.OpFenceConfirm
	OpSetFencing         = command.OpSetFencing
	OpSetRules           = command.OpSetRules
	OpHostAttr           = command.OpHostAttr
	OpEvacuation         = command.OpEvacuation
	OpPin                = command.OpPin
	OpRebalance          = command.OpRebalance
	OpMaintenance        = command.OpMaintenance
	OpRemoveHost         = command.OpRemoveHost
	OpExpectHost         = command.OpExpectHost
	OpFormed             = command.OpFormed
	OpSetFenceDevices    = command.OpSetFenceDevices
	OpHostSeen           = command.OpHostSeen
	OpAlerted            = command.OpAlerted
	OpVMState            = command.OpVMState
	OpFailures           = command.OpFailures
	OpClusterMaintenance = command.OpClusterMaintenance
)

var (
	apply      = statemachine.Apply
	checkRules = statemachine.CheckRules
	// SpecOf turns a replicated topology into a fencing spec (see statemachine.SpecOf).
	SpecOf = statemachine.SpecOf
	// ValidateVM checks a VM before it is proposed (see statemachine.ValidateVM).
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
