package cluster

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/hashicorp/raft"

	"github.com/vmha/vmha/model"
)

// FSM is the replicated state machine. Reads take a consistent copy.
type FSM struct {
	mu    sync.RWMutex
	state *model.State
	// applied is the raft index of the last command this state machine
	// has applied (or restored from a snapshot). It is the only index an
	// agent may compare with a read index: raft's own AppliedIndex counts
	// entries handed to the FSM's queue, which runs ahead of the state
	// while a rejoining host replays its log (issue 19: a host started VMs
	// from placements that later entries in its queue had moved away).
	applied uint64
	// rev counts the changes to state (every command applied, every
	// restore): equal revisions, equal states. The leader
	// skips a pass when nothing it reads changed (Coordinator.step).
	rev uint64
	// notify gets a non-blocking signal after every apply so the local
	// agent reconciles promptly.
	notify chan struct{}
}

// NewFSM returns an empty state machine.
func NewFSM() *FSM {
	return &FSM{state: model.NewState(), notify: make(chan struct{}, 1)}
}

// Changed signals after state changes.
func (f *FSM) Changed() <-chan struct{} { return f.notify }

// Read runs fn on the current state under a read lock. fn must not keep
// references past its return.
func (f *FSM) Read(fn func(s *model.State)) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	fn(f.state)
}

// Copy returns a deep copy of the state (model.State.Clone).
func (f *FSM) Copy() *model.State {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.state.Clone()
}

// ReadAt runs fn on the current state and the index of the last command it
// reflects, under a read lock. fn must not keep references past its return.
func (f *FSM) ReadAt(fn func(s *model.State, applied uint64)) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	fn(f.state, f.applied)
}

// HostSlice returns a copy of the state as host's agent needs it
// (model.State.HostSlice): the VMs placed on or moving from host, and
// those named in also.
func (f *FSM) HostSlice(host string, also []string) *model.State {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.state.HostSlice(host, also)
}

// CopyAt returns a deep copy of the state and the index of the last command
// it reflects, taken together.
func (f *FSM) CopyAt() (*model.State, uint64) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.state.Clone(), f.applied
}

// AppliedIndex is the index of the last command applied to the state (see
// FSM.applied; not raft's AppliedIndex).
func (f *FSM) AppliedIndex() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.applied
}

// Revision counts the changes to the state so far (see rev).
func (f *FSM) Revision() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.rev
}

// Apply implements raft.FSM. It returns nil or an error; an error means the
// command was rejected and changed nothing.
func (f *FSM) Apply(l *raft.Log) any {
	var c Command
	if err := json.Unmarshal(l.Data, &c); err != nil {
		f.mu.Lock()
		f.applied = max(f.applied, l.Index)
		f.mu.Unlock()
		return fmt.Errorf("decode command at index %d: %w", l.Index, err)
	}
	f.mu.Lock()
	err := apply(f.state, &c)
	// A rejected command is applied too: it changed nothing, on every host.
	f.applied = max(f.applied, l.Index)
	f.rev++ // a rejected command changes nothing, but counting it costs one pass at most
	f.mu.Unlock()
	if err == nil {
		select {
		case f.notify <- struct{}{}:
		default:
		}
	}
	return err
}

// snapshotFormat marks a snapshot that carries its applied index. Older
// snapshots are the bare state.
const snapshotFormat = "vmha-state/2"

// snapshotEnvelope is a snapshot: the state and the index of the last
// command it reflects.
type snapshotEnvelope struct {
	Format  string          `json:"format"`
	Applied uint64          `json:"applied_index"`
	State   json.RawMessage `json:"state"`
}

// Snapshot implements raft.FSM.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	st, err := json.Marshal(f.state)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(snapshotEnvelope{Format: snapshotFormat, Applied: f.applied, State: st})
	if err != nil {
		return nil, err
	}
	return fsmSnapshot(b), nil
}

// Restore implements raft.FSM. It reads both snapshot formats; one in the
// old format (the bare state) leaves the applied index at 0 until the next
// command, so an agent waits for that command rather than trust it.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	var env snapshotEnvelope
	if err := json.Unmarshal(b, &env); err == nil && env.Format == snapshotFormat {
		b = env.State
	} else {
		env = snapshotEnvelope{}
	}
	s := model.NewState()
	if err := json.Unmarshal(b, s); err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	s.Fill()
	f.mu.Lock()
	f.state = s
	f.applied = env.Applied
	f.rev++
	f.mu.Unlock()
	select {
	case f.notify <- struct{}{}:
	default:
	}
	return nil
}

type fsmSnapshot []byte

func (s fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s fsmSnapshot) Release() {}
