package migration

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Move is one planned migration for the Executor.
type Move struct {
	VM      string
	Source  Endpoint
	Target  Endpoint
	Options Options
}

// MigrateFunc runs one migration; (*Migrator).Migrate is one. Tests and
// simulations pass their own.
type MigrateFunc func(ctx context.Context, vm string, src, dst Endpoint, opts Options, progress func(Progress)) (Result, error)

// Skipped is the outcome of a move the Executor never started (cancelled
// before its turn, or a duplicate of another move of the same VM).
const Skipped Outcome = "skipped"

// Executor runs a list of migrations with at most Parallel at once, at most
// PerTarget into one target host and at most PerSource out of one source
// host. It starts moves in list order but lets a later move overtake one
// whose host is at its limit, so one busy target does not stall the rest.
// Cancelling Run's context aborts the running jobs (each leaves its VM on
// its source) and starts no more; a context with a deadline is how an
// evacuation's --deadline is enforced.
type Executor struct {
	Migrate MigrateFunc
	// Parallel is the most migrations at once; 0 means 1.
	Parallel int
	// PerTarget and PerSource limit concurrent migrations per host; 0
	// means only Parallel applies.
	PerTarget int
	PerSource int
	// OnEvent, if set, receives every event. Calls are serialized, so it
	// needs no locking of its own; it should return quickly, since
	// progress of all jobs waits for it.
	OnEvent func(Event)
}

// EventKind says what an Event reports.
type EventKind string

// Event kinds.
const (
	EventStarted  EventKind = "started"
	EventProgress EventKind = "progress"
	EventFinished EventKind = "finished"
	EventSkipped  EventKind = "skipped"
)

// Event is one step of an executor run, for a per-VM progress bar plus an
// overall one (or one JSON line each).
type Event struct {
	Kind   EventKind `json:"kind"`
	VM     string    `json:"vm"`
	Source string    `json:"source"`
	Target string    `json:"target"`
	// Progress is set for EventProgress.
	Progress *Progress `json:"progress,omitempty"`
	// Result is set for EventFinished and EventSkipped.
	Result  *Result `json:"result,omitempty"`
	Overall Overall `json:"overall"`
}

// Overall sums up a run at the time of an event.
type Overall struct {
	Total     int `json:"total"`
	Running   int `json:"running"`
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"` // aborted, refused or failed
	Skipped   int `json:"skipped"`
	// DataTotal and DataProcessed add up the latest job statistics of
	// every started move (finished ones count as complete).
	DataTotal     uint64        `json:"data_total"`
	DataProcessed uint64        `json:"data_processed"`
	Elapsed       time.Duration `json:"elapsed"`
}

// Report is what a run did.
type Report struct {
	// Results has one entry per move, in the order of the moves given.
	Results []Result      `json:"results"`
	Wall    time.Duration `json:"wall"`
	// MaxRunning is the most migrations that were running at one time,
	// counted by the executor itself.
	MaxRunning int `json:"max_running"`
}

// Run executes moves and returns when every started migration has ended.
// The error is nil when every move ended Migrated; otherwise it names each
// VM that did not and why.
func (e *Executor) Run(ctx context.Context, moves []Move) (Report, error) {
	start := time.Now()
	if e.Migrate == nil {
		return Report{}, fmt.Errorf("%w: executor has no MigrateFunc", ErrInvalid)
	}
	if e.Parallel < 0 || e.PerTarget < 0 || e.PerSource < 0 {
		return Report{}, fmt.Errorf("%w: negative limit (parallel %d, per target %d, per source %d)", ErrInvalid, e.Parallel, e.PerTarget, e.PerSource)
	}
	parallel := max(e.Parallel, 1)

	r := &run{e: e, start: start, results: make([]Result, len(moves)), errs: make([]error, len(moves)), progress: make([]Progress, len(moves))}
	r.overall.Total = len(moves)
	var pending []int
	seen := map[string]int{}
	for i, mv := range moves {
		if j, dup := seen[mv.VM]; dup {
			// Two moves of one VM at once would race each other; the
			// first wins, the second is refused outright.
			r.skip(i, mv, fmt.Sprintf("duplicate: %s is already moved by entry %d of this run", mv.VM, j))
			continue
		}
		seen[mv.VM] = i
		pending = append(pending, i)
	}

	doneCh := make(chan int)
	perTarget := map[string]int{}
	perSource := map[string]int{}
	running := 0
	cancelled := false
	ctxDone := ctx.Done()
	eligible := func(mv Move) bool {
		return running < parallel &&
			(e.PerTarget == 0 || perTarget[mv.Target.Host] < e.PerTarget) &&
			(e.PerSource == 0 || perSource[mv.Source.Host] < e.PerSource)
	}
	for {
		// Checked here, not only in the select: with a job's completion
		// and the cancel ready together, select may pick the completion
		// and the freed slot must not start another job.
		if ctx.Err() != nil {
			cancelled = true
		}
		if !cancelled {
			rest := pending[:0]
			for _, i := range pending {
				mv := moves[i]
				if !eligible(mv) {
					rest = append(rest, i)
					continue
				}
				running++
				perTarget[mv.Target.Host]++
				perSource[mv.Source.Host]++
				r.started(i, mv, running)
				go func() {
					res, err := e.Migrate(ctx, mv.VM, mv.Source, mv.Target, mv.Options, func(p Progress) { r.onProgress(i, mv, p) })
					r.finished(i, mv, res, err)
					doneCh <- i
				}()
			}
			pending = rest
		}
		if running == 0 && (len(pending) == 0 || cancelled) {
			break
		}
		select {
		case i := <-doneCh:
			running--
			perTarget[moves[i].Target.Host]--
			perSource[moves[i].Source.Host]--
		case <-ctxDone:
			cancelled = true
			ctxDone = nil
		}
	}
	for _, i := range pending {
		r.skip(i, moves[i], fmt.Sprintf("not started: %v", ctx.Err()))
	}

	rep := Report{Results: r.results, Wall: time.Since(start), MaxRunning: r.maxRunning}
	var errs []error
	for i, res := range rep.Results {
		if res.Outcome != Migrated || r.errs[i] != nil {
			errs = append(errs, fmt.Errorf("%s (%s -> %s): %s: %s", res.VM, res.Source, res.Target, res.Outcome, res.Reason))
		}
	}
	if len(errs) > 0 {
		return rep, fmt.Errorf("%d of %d migrations did not complete: %w", len(errs), len(moves), errors.Join(errs...))
	}
	return rep, nil
}

// run is the shared state of one Executor.Run; mu serializes OnEvent too.
type run struct {
	e          *Executor
	start      time.Time
	mu         sync.Mutex
	results    []Result
	errs       []error // what the MigrateFunc returned, per move
	progress   []Progress
	overall    Overall
	maxRunning int
}

func (r *run) emit(ev Event) {
	r.overall.Elapsed = time.Since(r.start)
	var tot, proc uint64
	for _, p := range r.progress {
		tot += p.DataTotal
		proc += p.DataProcessed
	}
	r.overall.DataTotal, r.overall.DataProcessed = tot, proc
	ev.Overall = r.overall
	if r.e.OnEvent != nil {
		r.e.OnEvent(ev)
	}
}

func (r *run) started(i int, mv Move, running int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.overall.Running++
	r.maxRunning = max(r.maxRunning, running)
	r.emit(Event{Kind: EventStarted, VM: mv.VM, Source: mv.Source.Host, Target: mv.Target.Host})
}

func (r *run) onProgress(i int, mv Move, p Progress) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p.DataTotal > 0 {
		r.progress[i] = p
	} else {
		// Phase-only samples must not zero the counters already known.
		r.progress[i].Phase = p.Phase
	}
	r.emit(Event{Kind: EventProgress, VM: mv.VM, Source: mv.Source.Host, Target: mv.Target.Host, Progress: &p})
}

func (r *run) finished(i int, mv Move, res Result, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if res.VM == "" {
		// A MigrateFunc that returned only an error still gets a result.
		res = Result{VM: mv.VM, Source: mv.Source.Host, Target: mv.Target.Host, Outcome: Failed}
	}
	if err != nil && res.Reason == "" {
		res.Reason = err.Error()
	}
	r.results[i] = res
	r.errs[i] = err
	r.overall.Running--
	if res.Outcome == Migrated && err == nil {
		r.overall.Succeeded++
		if res.Job.DataTotal > 0 {
			r.progress[i].DataTotal = res.Job.DataTotal
			r.progress[i].DataProcessed = res.Job.DataTotal
		}
	} else {
		r.overall.Failed++
	}
	r.emit(Event{Kind: EventFinished, VM: mv.VM, Source: mv.Source.Host, Target: mv.Target.Host, Result: &res})
}

func (r *run) skip(i int, mv Move, why string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	// RunningOn: untouched, so where the plan found it (not re-checked).
	res := Result{VM: mv.VM, Source: mv.Source.Host, Target: mv.Target.Host, Outcome: Skipped, Reason: why, RunningOn: mv.Source.Host}
	r.results[i] = res
	r.overall.Skipped++
	r.emit(Event{Kind: EventSkipped, VM: mv.VM, Source: mv.Source.Host, Target: mv.Target.Host, Result: &res})
}
