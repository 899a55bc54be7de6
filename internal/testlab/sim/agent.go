package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/cluster/reconcile"
	"github.com/vmha/vmha/model"
)

// reportEvery re-sends an unchanged observation, as cluster.Agent does.
const reportEvery = 15 * time.Second

// stopTimeout is vmhad's default agent.stop_timeout (an in-memory stop
// is instant anyway).
const stopTimeout = 30 * time.Second

// run is the host's vmhad: register through the real API, then reconcile
// on every committed placement change and on the agent timer, until the
// host is powered off.
func (h *Host) run() {
	ctx := h.ctx
	for {
		if err := h.register(ctx); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
	// Spread the timers: 1,000 agents must not tick together.
	jitter := time.Duration(rand.Int64N(int64(h.c.opts.AgentInterval)))
	select {
	case <-ctx.Done():
		return
	case <-time.After(jitter):
	}
	t := time.NewTicker(h.c.opts.AgentInterval)
	defer t.Stop()
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()
	for {
		changed := h.c.replica.wait()
		if h.reconcile(ctx) {
			retry.Reset(200 * time.Millisecond)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-changed:
		case <-retry.C:
		}
	}
}

// register is POST /v1/peer/register with the host's capacity, as
// cluster.Node's registerLoop sends it (the seed's operator set its fence
// devices; a registration never changes them).
func (h *Host) register(ctx context.Context) error {
	return h.c.peerDo(ctx, http.MethodPost, api.PathRegister, api.Register{Host: *h.c.registration(h)}, nil, h.Name)
}

// reconcile runs the agent's pure pass (reconcile.Decide, as cluster.Agent
// does) on the simulated hypervisor: stops first, then starts, each
// confirmed after the shared replica has applied up to the leader's read
// index, then the report. It returns true to be retried soon.
func (h *Host) reconcile(ctx context.Context) (again bool) {
	me := h.Name
	view := h.c.replica.view.Load()
	mine := view.byHost[me]
	ds, err := h.HV.List(ctx)
	if err != nil {
		return true // powered off: the run loop ends with the context
	}
	// The same pass as cluster.Agent's (reconcile.Decide). The shared
	// replica never restarts, so its state is always the log's latest as
	// far as it applied: synced. Every domain of a simulated hypervisor is
	// the cluster's (managed).
	in := reconcile.Input{Host: me, Synced: true, Desired: map[string]reconcile.Desired{}, Domains: map[string]bool{}, Managed: map[string]bool{}}
	for vm := range mine {
		in.Desired[vm] = reconcile.Desired{Host: me}
	}
	for _, d := range ds {
		in.Domains[d.Name], in.Managed[d.Name] = d.State.Active(), true
	}
	plan := reconcile.Decide(in)
	again = h.stop(ctx, plan.Stops)
	if len(plan.Starts) > 0 && h.start(ctx, plan.Starts) {
		again = true
	}
	if err := h.report(ctx); err != nil {
		again = true
	}
	return again
}

// stop carries out the pass's stops; it returns true when one failed.
func (h *Host) stop(ctx context.Context, stops []reconcile.Stop) (again bool) {
	for _, st := range stops {
		if st.Active {
			if err := h.HV.Stop(ctx, st.VM, stopTimeout); err != nil {
				h.setErr(st.VM, err)
				again = true
				continue
			}
		}
		if st.Undefine {
			_ = h.HV.Undefine(ctx, st.VM)
		}
	}
	return again
}

// start carries out the pass's starts, each confirmed on the committed
// state once the replica caught up with the leader; it returns true when
// that or a start failed.
func (h *Host) start(ctx context.Context, vms []string) (again bool) {
	if err := h.catchUp(ctx); err != nil {
		return true
	}
	type todo struct{ name, xml string }
	var starts []todo
	// Re-read the committed state itself, now as new as the
	// leader's (the view may lag it by one rebuild), and confirm
	// each start on it.
	h.c.replica.fsm.Read(func(s *model.State) {
		for _, vm := range vms {
			p, v := s.Status.Placements[vm], s.Config.VMs[vm]
			d := reconcile.Desired{}
			if p != nil {
				d = reconcile.Desired{Host: p.Host, MigrateFrom: p.MigrateFrom}
			}
			if reconcile.Confirm(h.Name, vm, d, v != nil) == nil {
				starts = append(starts, todo{vm, v.XML})
			}
		}
	})
	for _, s := range starts {
		if _, err := h.HV.Define(ctx, s.xml); err != nil {
			h.setErr(s.name, err)
			again = true
			continue
		}
		if err := h.HV.Start(ctx, s.name); err != nil {
			h.setErr(s.name, err)
			again = true
			continue
		}
		h.setErr(s.name, nil)
	}
	return again
}

// catchUp asks the leader for its read index (GET /v1/peer/read-index,
// answered after the leader confirmed its leadership with a quorum) and
// waits until the shared replica's state machine applied that far (its own
// index: raft's runs ahead of the state while entries queue, issue 19).
func (h *Host) catchUp(ctx context.Context) error {
	var ri api.ReadIndex
	if err := h.c.peerDo(ctx, http.MethodGet, api.PathReadIndex, nil, &ri, h.Name); err != nil {
		return err
	}
	h.mu.Lock()
	if ri.Term < h.term {
		h.mu.Unlock()
		return fmt.Errorf("read index from term %d: term %d was already seen", ri.Term, h.term)
	}
	h.term = ri.Term
	h.mu.Unlock()
	deadline := time.Now().Add(2 * time.Second)
	for h.c.replica.fsm.AppliedIndex() < ri.Index {
		if time.Now().After(deadline) {
			return fmt.Errorf("replica at index %d, leader at %d", h.c.replica.fsm.AppliedIndex(), ri.Index)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// report sends POST /v1/peer/observe when what runs here changed, and every
// reportEvery anyway.
func (h *Host) report(ctx context.Context) error {
	ds, err := h.HV.List(ctx)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	obs := model.Observation{Host: h.Name, At: now, VMs: map[string]model.VMObserve{}}
	h.mu.Lock()
	for _, d := range ds {
		prev, ok := h.since[d.Name]
		o := model.VMObserve{State: string(d.State), Since: now, Error: h.errs[d.Name]}
		if ok && prev.State == o.State {
			o.Since = prev.Since
		}
		h.since[d.Name] = o
		obs.VMs[d.Name] = o
	}
	for name := range h.since {
		if _, ok := obs.VMs[name]; !ok {
			delete(h.since, name)
		}
	}
	for name, e := range h.errs {
		if _, ok := obs.VMs[name]; !ok {
			obs.VMs[name] = model.VMObserve{State: "failed", Since: now, Error: e}
		}
	}
	key, _ := json.Marshal(obs.VMs)
	fresh := string(key) == h.sent && time.Since(h.sentAt) < reportEvery
	h.mu.Unlock()
	if fresh {
		return nil
	}
	if err := h.c.peerDo(ctx, http.MethodPost, api.PathObserve, obs, nil, h.Name); err != nil {
		return err
	}
	h.mu.Lock()
	h.sent, h.sentAt = string(key), time.Now()
	h.mu.Unlock()
	return nil
}

func (h *Host) setErr(vm string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err == nil {
		delete(h.errs, vm)
	} else {
		h.errs[vm] = err.Error()
	}
}

// PowerOff is the host losing power: its VMs stop, its vmhad (agent and
// gossip) dies without a word to anyone. Idempotent.
func (h *Host) PowerOff() {
	if h.off.Swap(true) {
		return
	}
	h.HV.PowerOff()
	if h.cancel != nil {
		h.cancel()
	}
	if h.serf != nil {
		_ = h.serf.Shutdown() // no Leave: peers must detect the failure
	}
}

// Off reports whether the host was powered off.
func (h *Host) Off() bool { return h.off.Load() }
