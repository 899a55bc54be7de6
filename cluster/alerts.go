package cluster

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/vmha/vmha/alerts"
	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/config"
	"github.com/vmha/vmha/model"
)

// The leader hands every event of the replicated event log to each alert
// target once, in order, and then records how far it got (OpAlerted), so
// that a new leader goes on from there: at least once across a leader
// change, once otherwise. Alerts never block a decision: they run in
// their own loop, each target in parallel.

// alertTargets compiles the configured alerts (token files read, CA
// pools built); a target that cannot be built is logged and left out.
func (n *Node) alertTargets() []*alerts.Target {
	var out []*alerts.Target
	for _, a := range n.cfg.Alerts {
		t := &alerts.Target{Name: a.Name, Path: a.Path, Webhook: a.Webhook, Recipient: a.Recipient, Kinds: a.Kinds, Env: a.Env,
			Timeout: a.Timeout, Retries: a.Retries, TimestampFormat: a.TimestampFormat}
		if t.Path != "" && t.Timeout == 0 {
			t.Timeout = config.DefaultAlertTimeout
		}
		if t.Webhook != "" {
			if t.Timeout == 0 {
				t.Timeout = config.DefaultWebhookTimeout
			}
			if t.Retries == 0 {
				t.Retries = config.DefaultWebhookRetries
			}
			c, err := alerts.Client(a.CAFile)
			if err != nil {
				n.log.Error().Err(err).Str("alert", a.Name).Msg("alert target left out: its CA file")
				continue
			}
			t.Client = c
			if a.TokenFile != "" {
				b, err := os.ReadFile(a.TokenFile)
				if err != nil {
					n.log.Error().Err(err).Str("alert", a.Name).Msg("alert target left out: its token file")
					continue
				}
				t.Token = strings.TrimSpace(string(b))
			}
		}
		out = append(out, t)
	}
	return out
}

// alertBatch bounds the events one round delivers before it records them.
const alertBatch = 200

// alertLoop runs on every host and acts while it leads.
func (n *Node) alertLoop(ctx context.Context) {
	targets := n.alertTargets()
	if len(targets) == 0 {
		return
	}
	n.whileLeading(ctx, time.Second, func(ctx context.Context) {
		if err := n.alertRound(ctx, targets); err != nil {
			n.log.Debug().Err(err).Msg("alerts: recording how far they got")
		}
	})
}

// alertRound delivers the events after the mark and moves the mark.
func (n *Node) alertRound(ctx context.Context, targets []*alerts.Target) error {
	var evs []model.Event
	var mark, last uint64
	n.fsm.Read(func(s *model.State) {
		mark, last = s.Status.AlertedSeq, s.Status.EventSeq
		if mark == 0 {
			return // never recorded: the history before alerts is not sent
		}
		for i := range s.Status.Events {
			if e := s.Status.Events[i]; e.Seq > mark && len(evs) < alertBatch {
				evs = append(evs, e)
			}
		}
	})
	switch {
	case last == 0 || last == mark:
		return nil
	case mark == 0:
		n.log.Info().Uint64("from", last).Msg("alerts start with the events after this one")
		return n.propose(&Command{Op: OpAlerted, AlertedSeq: last})
	}
	var wg sync.WaitGroup
	for _, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range evs {
				_ = n.alertOne(ctx, t, &evs[i], false) // logged and counted there
			}
		}()
	}
	wg.Wait()
	if len(evs) == 0 {
		// Fell out of the bounded log: go on from what is left.
		return n.propose(&Command{Op: OpAlerted, AlertedSeq: last})
	}
	return n.propose(&Command{Op: OpAlerted, AlertedSeq: evs[len(evs)-1].Seq})
}

// alertOne hands e to t if t wants it, and logs and counts the result.
func (n *Node) alertOne(ctx context.Context, t *alerts.Target, e *model.Event, test bool) error {
	if !test && !t.Wants(alerts.KindOf(e)) {
		return nil
	}
	start := time.Now()
	err := alerts.Deliver(ctx, t, e, n.cfg.ClusterName, test)
	n.metrics.alerts.WithLabelValues(t.Name, result(err)).Inc()
	log := n.log.Info()
	if err != nil {
		log = n.log.Error().Err(err)
	}
	log.Str("alert", t.Name).Uint64("event_seq", e.Seq).Str("kind", alerts.KindOf(e)).Str("object", e.Object).Str("action", e.Action).
		Dur("took", time.Since(start)).Msg("alert delivered")
	return err
}

// handleAlertTest sends a test event to every alert target (or the one
// named) now, and answers each target's result: vmha alert test.
func (n *Node) handleAlertTest(r *http.Request, req api.AlertTest) (any, error) {
	targets := n.alertTargets()
	if len(targets) == 0 {
		return nil, &ConflictError{What: fmt.Sprintf("the leader (%s) has no alerts configured (alerts: in its vmhad.yaml)", n.cfg.NodeName)}
	}
	e := model.Event{At: time.Now().UTC(), Kind: model.EventCluster, Object: "cluster", Action: "test", Principal: actor(r, req.RequestedBy),
		Reason: "vmha alert test"}
	out := []api.AlertResult{}
	for _, t := range targets {
		if req.Name != "" && t.Name != req.Name {
			continue
		}
		start := time.Now()
		err := n.alertOne(r.Context(), t, &e, true)
		res := api.AlertResult{Name: t.Name, OK: err == nil, Seconds: time.Since(start).Seconds()}
		if err != nil {
			res.Error = err.Error()
		}
		out = append(out, res)
	}
	if len(out) == 0 {
		return nil, &NotFoundError{Kind: "alert", Name: req.Name}
	}
	return out, nil
}
