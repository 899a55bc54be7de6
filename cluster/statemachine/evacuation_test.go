package statemachine

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/vmha/vmha/cluster/command"
	"github.com/vmha/vmha/model"
)

// OpEvacuation is a compare-and-set: the leader's update of an evacuation
// an operator ended (or replaced) is refused and changes nothing, and a
// second start on a host under evacuation is refused.
func TestEvacuationCompareAndSet(t *testing.T) {
	at := time.Date(2026, 12, 5, 3, 0, 0, 0, time.UTC)
	evac := func(id string) *model.Evacuation {
		return &model.Evacuation{ID: id, Host: "h1", Parallel: 1, OnStuck: "fail", By: "alice", At: at}
	}
	start := func(id string) *command.Command {
		return &command.Command{Op: command.OpEvacuation, Evacuation: evac(id)}
	}
	update := func(id, ifID string) *command.Command {
		e := evac(id)
		e.Stuck = map[string]string{"vm1": "no other host can take it"}
		return &command.Command{Op: command.OpEvacuation, Evacuation: e, IfEvacuation: ifID}
	}
	end := func(ifID string) *command.Command {
		return &command.Command{Op: command.OpEvacuation, Name: "h1", IfEvacuation: ifID}
	}
	for _, tc := range []struct {
		name    string
		before  []*command.Command
		cmd     *command.Command
		wantErr any    // nil, *command.ConflictError or *command.ValidationError
		wantID  string // the evacuation of h1 after ("-": none)
	}{
		{"start", nil, start("ev-1"), nil, "ev-1"},
		{"second start refused", []*command.Command{start("ev-1")}, start("ev-2"), &command.ConflictError{}, "ev-1"},
		{"update of the one under way", []*command.Command{start("ev-1")}, update("ev-1", "ev-1"), nil, "ev-1"},
		{"update after online refused (no re-creation)", []*command.Command{start("ev-1"), end("")}, update("ev-1", "ev-1"), &command.ConflictError{}, "-"},
		{"update of a replaced evacuation refused", []*command.Command{start("ev-1"), end(""), start("ev-2")}, update("ev-1", "ev-1"), &command.ConflictError{}, "ev-2"},
		{"update that changes the ID refused", []*command.Command{start("ev-1")}, update("ev-2", "ev-1"), &command.ValidationError{}, "ev-1"},
		{"end of the one under way", []*command.Command{start("ev-1")}, end("ev-1"), nil, "-"},
		{"end of any", []*command.Command{start("ev-1")}, end(""), nil, "-"},
		{"end of another refused", []*command.Command{start("ev-1")}, end("ev-0"), &command.ConflictError{}, "ev-1"},
		{"end of none refused", nil, end(""), &command.ConflictError{}, "-"},
		{"old log: a start without an ID replaces", []*command.Command{start("")}, start(""), nil, ""},
		{"old log: an update without an ID recreates", []*command.Command{start(""), end("")}, update("", ""), nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := model.NewState()
			s.Config.Hosts["h1"] = &model.Host{Name: "h1", MemoryMiB: 4096}
			for _, c := range tc.before {
				if err := Apply(s, c); err != nil {
					t.Fatalf("before: %v", err)
				}
			}
			snap, _ := json.Marshal(s)
			err := Apply(s, tc.cmd)
			switch want := tc.wantErr.(type) {
			case nil:
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
			case *command.ConflictError:
				if !errors.As(err, &want) {
					t.Fatalf("err %v, want a conflict", err)
				}
			case *command.ValidationError:
				if !errors.As(err, &want) {
					t.Fatalf("err %v, want a validation error", err)
				}
			}
			if err != nil {
				if after, _ := json.Marshal(s); string(after) != string(snap) {
					t.Errorf("a refused command changed the state")
				}
			}
			got := "-"
			if e := s.Status.Evacuations["h1"]; e != nil {
				got = e.ID
			}
			if got != tc.wantID {
				t.Errorf("evacuation of h1 after: %q, want %q", got, tc.wantID)
			}
		})
	}
}
