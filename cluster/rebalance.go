package cluster

import (
	"fmt"
	"time"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/cluster/decide"
	"github.com/vmha/vmha/model"
)

// A rebalance travels through the log like an evacuation: the leader plans
// it with the pure rebalance package on the engine's input, commits the
// plan (OpRebalance), and then, pass after pass, commits each move as a
// live migration once the earlier steps ended and a slot is free
// (migration caps and the run's parallelism), and records how each ended.
// A new leader picks the run up where the log says it stands.

// StartRebalance is vmha rebalance: the plan, committed and run unless it
// is a dry run.
func (c *Coordinator) StartRebalance(req api.RebalanceRequest, by string) (*model.Rebalance, error) {
	switch {
	case req.MaxMoves < 0:
		return nil, &ValidationError{Field: "max_moves", Err: fmt.Errorf("%d: want 0 (no cap) or more", req.MaxMoves)}
	case req.MinGain < 0 || req.MinGain != req.MinGain:
		return nil, &ValidationError{Field: "min_gain", Err: fmt.Errorf("%v: want a number >= 0", req.MinGain)}
	case req.Parallel < 1:
		return nil, &ValidationError{Field: "parallel", Err: fmt.Errorf("%d: at least one move must run at a time", req.Parallel)}
	}
	st := c.n.fsm.Copy()
	if cur := st.Status.ActiveRebalance(); cur != nil {
		return nil, &ConflictError{What: fmt.Sprintf("rebalance %s (by %s) is under way; vmha rebalance cancel ends it", cur.ID, cur.By)}
	}
	t0 := time.Now()
	r, err := decide.PlanRebalance(c.n.view(st, c.n.members()), decide.RebalanceRequest{MaxMoves: req.MaxMoves, MinGain: req.MinGain, Parallel: req.Parallel}, by)
	c.n.metrics.placeSeconds.Observe(time.Since(t0).Seconds())
	if err != nil || req.DryRun {
		return r, err
	}
	decide.EndIfBalanced(r)
	if err := c.n.propose(&Command{Op: OpRebalance, Rebalance: r}); err != nil {
		return nil, err
	}
	c.log.Info().Str("rebalance_id", r.ID).Str("by", by).Int("moves", len(r.Moves)).Float64("score_before", r.Before).Float64("score_planned", r.Planned).Msg("rebalance started")
	c.poke()
	return r, nil
}

// CancelRebalance ends the run under way: moves under way finish, the
// others are skipped.
func (c *Coordinator) CancelRebalance(by string) (*model.Rebalance, error) {
	st := c.n.fsm.Copy()
	cur := st.Status.ActiveRebalance()
	if cur == nil {
		return nil, &ConflictError{What: "no rebalance is under way"}
	}
	for i := range cur.Moves {
		if cur.Moves[i].State == model.MovePlanned {
			cur.Moves[i].State, cur.Moves[i].Reason = model.MoveSkipped, "cancelled by "+by
		}
	}
	cur.Note = "cancelled by " + by
	if err := c.n.propose(&Command{Op: OpRebalance, Rebalance: cur}); err != nil {
		return nil, err
	}
	c.log.Warn().Str("rebalance_id", cur.ID).Str("by", by).Msg("rebalance cancelled")
	return cur, nil
}
