package cluster

import (
	"maps"
	"sync"
	"time"

	"github.com/vmha/vmha/model"
)

// heardReports is the leader's memory of when each host's agent last
// reported. A report that says what the committed one says is not
// committed again (issue 17): at 1,000 hosts the re-sent reports were 67
// log entries a second, each waking every agent and every replica's
// snapshot counter, for no new fact. Only its time is new, and that time
// is kept here, in memory: status reads it on the leader, and a new
// leader hears every agent again within reportEvery.
type heardReports struct {
	mu sync.Mutex
	at map[string]time.Time
}

// note records that host reported at t (the agent's own clock, as the
// committed At is).
func (h *heardReports) note(host string, t time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.at == nil {
		h.at = map[string]time.Time{}
	}
	if t.After(h.at[host]) {
		h.at[host] = t
	}
}

// snapshot is a copy of the times, for one status.
func (h *heardReports) snapshot() map[string]time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return maps.Clone(h.at)
}

// sameReport reports whether o says what the committed report prev says:
// the same vmhad life and every VM in the same state since the same time,
// with the same error and failure. Only the report's time may differ.
func sameReport(prev, o *model.Observation) bool {
	if prev == nil || prev.Host != o.Host || prev.Boot != o.Boot || len(prev.VMs) != len(o.VMs) {
		return false
	}
	for name, a := range o.VMs {
		b, ok := prev.VMs[name]
		if !ok || a.State != b.State || a.Error != b.Error || !a.Since.Equal(b.Since) || !a.FailedAt.Equal(b.FailedAt) {
			return false
		}
	}
	return true
}
