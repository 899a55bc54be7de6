package cluster

import (
	"hash/fnv"
	"sort"
	"time"

	"github.com/vmha/vmha/cluster/decide"
)

// idleRecheck is how long the leader skips passes on a cluster where
// nothing changes: a pass still runs that often, so the standing notes are
// logged as often as before (noteQuiet) and a clock condition that
// decide.Until did not know of would wait at most this long.
const idleRecheck = noteQuiet

// passKey is everything a leader pass reads besides the clock: the state
// (by revision), the raft term, gossip, the storage heartbeats and the
// leader's memory. Two passes with equal keys see the same view.
type passKey struct {
	rev, term, members, beats, mem uint64
}

// passSkip remembers the last pass that decided nothing and until when its
// decisions hold (decide.Until).
type passSkip struct {
	key   passKey
	idle  bool
	at    time.Time
	until time.Time
}

// skip reports whether a pass at now with key k would decide nothing: the
// last pass decided nothing, nothing it reads changed since, and no clock
// condition has come due.
func (s *passSkip) skip(k passKey, now time.Time) bool {
	return s.idle && s.key == k && (s.until.IsZero() || now.Before(s.until)) && now.Sub(s.at) < idleRecheck
}

// remember records a pass at now with key k.
func (s *passSkip) remember(k passKey, idle bool, now, until time.Time) {
	*s = passSkip{key: k, idle: idle, at: now, until: until}
}

// mix is splitmix64's finalizer: the sums below stay order-independent
// without letting two changes cancel each other out.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func hashStrings(ss ...string) uint64 {
	h := fnv.New64a()
	for _, s := range ss {
		_, _ = h.Write([]byte(s))
		_, _ = h.Write([]byte{0})
	}
	return h.Sum64()
}

// hashMembers fingerprints gossip's view: every member's name, status and
// tags, in any order.
func hashMembers(ms decide.Members) uint64 {
	var sum uint64
	for name, m := range ms {
		h := hashStrings(name, m.Status.String())
		for k, v := range m.Tags {
			h += mix(hashStrings(name, k, v))
		}
		sum += mix(h)
	}
	return mix(sum + uint64(len(ms)))
}

// hashBeats fingerprints the storage heartbeats' verdicts.
func hashBeats(bs map[string]decide.Beat) uint64 {
	var sum uint64
	for h, b := range bs {
		w := "0"
		if b.Writing {
			w = "1"
		}
		sum += mix(hashStrings(h, w, b.FS))
	}
	return mix(sum + uint64(len(bs)))
}

// hashMemory fingerprints the leader's memory.
func hashMemory(m decide.Memory) uint64 {
	parts := []string{m.LeaderSince.String()}
	if m.WaitOver {
		parts = append(parts, "wait over")
	}
	for h, on := range m.Fencing {
		if on {
			parts = append(parts, "fencing "+h)
		}
	}
	for h, t := range m.FailedAt {
		parts = append(parts, "failed "+h+" "+t.String())
	}
	for h, p := range m.Probes {
		ok := "down"
		if p.OK {
			ok = "up"
		}
		parts = append(parts, "probe "+h+" "+p.At.String()+" "+ok)
	}
	sort.Strings(parts)
	return hashStrings(parts...)
}
