package cluster

import (
	"time"

	"github.com/vmha/vmha/cluster/reconcile"
)

// startFailure is a VM's run of failed defines or starts on this host
// under one placement (a new placement generation starts a new run).
type startFailure struct {
	count       int
	first, last time.Time
	gen         uint64
}

func (f *startFailure) notBefore() time.Time {
	return f.last.Add(reconcile.Backoff(f.count))
}

// startResult records how a start under placement generation gen ended.
func (a *Agent) startResult(vm string, gen uint64, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err == nil {
		delete(a.fails, vm)
		return
	}
	f := a.fails[vm]
	if f == nil || f.gen != gen {
		f = &startFailure{gen: gen, first: time.Now().UTC()}
		a.fails[vm] = f
	}
	f.count++
	f.last = time.Now().UTC()
	a.log.Warn().Err(err).Str("vm", vm).Int("failures", f.count).Dur("retry_in", reconcile.Backoff(f.count)).Msg("start failed; retrying after a backoff unless the leader moves it")
}

// deferred notes the starts held back by a backoff: the agent wakes when
// the first one ends.
func (a *Agent) deferred(vms []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.wakeAt = time.Time{}
	for _, vm := range vms {
		if f := a.fails[vm]; f != nil {
			if nb := f.notBefore(); a.wakeAt.IsZero() || nb.Before(a.wakeAt) {
				a.wakeAt = nb
			}
		}
	}
}

func (a *Agent) wake() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.wakeAt
}

// forgetFailures drops the runs of VMs that are no longer placed here:
// their next placement here starts afresh.
func (a *Agent) forgetFailures(placedHere func(string) bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for vm := range a.fails {
		if !placedHere(vm) {
			delete(a.fails, vm)
			delete(a.errs, vm) // its start error, reported until now
		}
	}
}
