package web

import (
	"context"
	"encoding/binary"
	"hash/fnv"
	"sync"
	"time"

	"github.com/vmha/vmha/api"
)

// snapshot is one status read, shared by every page and live stream of
// the host until it is older than the refresh interval: a hundred open
// browsers cost the cluster one status read a second, not a hundred.
type snapshot struct {
	st *api.Status
	// events is the event log's last sequence number: a new event (a
	// refused command changes no state) is a change for the events page.
	events uint64
	err    error
	at     time.Time
	// version changes when something a page shows changes (not when only
	// the clock moved): the live stream sends it, and pages swap only on
	// a new one.
	version uint64
}

type snapshots struct {
	fetch   func(context.Context) (*api.Status, uint64, error)
	refresh time.Duration
	now     func() time.Time

	// fetching serialises fetches: callers that find the snapshot old
	// wait for one fetch rather than each making their own.
	fetching sync.Mutex
	mu       sync.Mutex
	cur      *snapshot
	// cost is how long the last read took: the snapshot is read again no
	// sooner than costFactor times that, so that at 50,000 VMs (a status
	// read of a second or two) the console takes a fifth of a core at
	// most, and at a few thousand it refreshes every refresh interval.
	cost time.Duration
}

// costFactor bounds the console's share of a core for its status reads.
const costFactor = 5

// interval is how old a snapshot may get before it is read again (mu held).
func (s *snapshots) interval() time.Duration {
	return max(s.refresh, costFactor*s.cost)
}

func newSnapshots(refresh time.Duration, now func() time.Time, fetch func(context.Context) (*api.Status, uint64, error)) *snapshots {
	return &snapshots{fetch: fetch, refresh: refresh, now: now}
}

// staleFor is how many refresh intervals old a snapshot may be and still
// be shown while a new one is read in the background: a page then never
// waits for a status read at 50,000 VMs, and the live stream swaps in the
// new one a moment later. An older one (nobody looked for a while) is
// read again first.
const staleFor = 5

// get is the snapshot to show: fresh, or recent enough while a fresh one
// is read in the background.
func (s *snapshots) get(ctx context.Context) *snapshot {
	s.mu.Lock()
	c, every := s.cur, s.interval()
	s.mu.Unlock()
	if c != nil {
		age := s.now().Sub(c.at)
		if age < every {
			return c
		}
		if age < staleFor*every {
			if s.fetching.TryLock() {
				go func() {
					defer s.fetching.Unlock()
					s.load(context.WithoutCancel(ctx))
				}()
			}
			return c
		}
	}
	s.fetching.Lock()
	defer s.fetching.Unlock()
	if c := s.fresh(); c != nil {
		return c
	}
	return s.load(ctx)
}

// load reads a new snapshot (fetching held).
func (s *snapshots) load(ctx context.Context) *snapshot {
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	start := time.Now()
	st, events, err := s.fetch(fctx)
	took := time.Since(start)
	c := &snapshot{st: st, events: events, err: err, at: s.now()}
	s.mu.Lock()
	prev := s.cur
	s.mu.Unlock()
	switch {
	case err != nil && prev != nil && prev.st != nil:
		// Keep showing the last status, with the error: a page that
		// empties itself on a hiccup helps nobody in an incident.
		c.st, c.version = prev.st, prev.version+1
	case err != nil:
		c.version = 1
	default:
		c.version = fingerprint(st) ^ events*0x9e3779b97f4a7c15 | 1
	}
	s.mu.Lock()
	s.cur, s.cost = c, took
	s.mu.Unlock()
	return c
}

func (s *snapshots) fresh() *snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != nil && s.now().Sub(s.cur.at) < s.interval() {
		return s.cur
	}
	return nil
}

// fingerprint hashes what the pages show of st, leaving out the clock and
// the ages counted from it.
func fingerprint(st *api.Status) uint64 {
	h := fnv.New64a()
	str := func(ss ...string) {
		for _, s := range ss {
			_, _ = h.Write([]byte(s))
			_, _ = h.Write([]byte{0})
		}
	}
	num := func(ns ...uint64) {
		var b [8]byte
		for _, n := range ns {
			binary.LittleEndian.PutUint64(b[:], n)
			_, _ = h.Write(b[:])
		}
	}
	flag := func(b bool) uint64 {
		if b {
			return 1
		}
		return 0
	}
	str(st.Node, st.Leader, st.Quorum.Explanation)
	num(st.Term, flag(st.Quorum.Quorate), flag(st.ClusterMaintenance != nil), flag(st.FencingOff != nil))
	for _, p := range st.ProblemDetails {
		str(p.Code, p.Message)
	}
	for _, p := range st.Notices {
		str(p.Code, p.Message)
	}
	for _, e := range st.Evacuations {
		str(e.Host, e.ID)
		num(uint64(e.Left), uint64(e.Moving), uint64(e.MovedLive), uint64(e.Restarted), flag(e.Done))
	}
	for i := range st.Hosts {
		hs := &st.Hosts[i]
		str(hs.Name, hs.Member, string(hs.State), hs.Reason, hs.StorageHeartbeat)
		num(hs.UsedMiB, hs.MemoryMiB, uint64(len(hs.VMs)), uint64(len(hs.Admin)), flag(hs.Leader), flag(hs.ReportStale), flag(hs.Maintenance != nil))
		for _, a := range hs.Admin {
			str(a.State)
			num(flag(a.Done))
		}
		if fc := hs.FenceCheck; fc != nil {
			str(fc.Power, fc.Error)
			num(flag(fc.OK))
		}
	}
	for i := range st.VMs {
		v := &st.VMs[i]
		str(v.Name, v.Host, v.State, v.Actual, v.ActualHost, v.MigratingFrom, string(v.Target), v.Error, v.PinnedTo)
		num(v.Generation, flag(v.ReportStale), uint64(len(v.Failures)))
	}
	return h.Sum64() | 1 // never 0: 0 means "no version yet" to the script
}
