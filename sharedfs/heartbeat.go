package sharedfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// HeartbeatDir is the folder, at the root of each cluster file system, that
// holds one heartbeat file per host.
const HeartbeatDir = ".vmha-heartbeat"

// Heartbeat writes this host's heartbeat file on one cluster file system.
// A host that still writes to the shared disk is alive even when the
// network says otherwise: the coordinator must not recover its VMs unless
// it was fenced.
type Heartbeat struct {
	Root string // the mount point
	Host string
	Now  func() time.Time // nil means time.Now
}

func (h Heartbeat) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

// checkHostName keeps heartbeat file names inside HeartbeatDir.
func checkHostName(host string) error {
	if host == "" || host == "." || host == ".." || strings.ContainsAny(host, "/\\\x00") || strings.HasPrefix(host, ".") {
		return fmt.Errorf("host name %q cannot name a heartbeat file", host)
	}
	return nil
}

// Path is the host's heartbeat file.
func (h Heartbeat) Path() string { return filepath.Join(h.Root, HeartbeatDir, h.Host) }

// Write stores the current time in the host's heartbeat file (write a
// temporary file, fsync, rename, so a reader never sees half a line) and
// returns the time written.
func (h Heartbeat) Write() (time.Time, error) {
	if err := checkHostName(h.Host); err != nil {
		return time.Time{}, err
	}
	dir := filepath.Join(h.Root, HeartbeatDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return time.Time{}, fmt.Errorf("heartbeat of %s: %w", h.Host, err)
	}
	t := h.now().UTC()
	data := []byte(t.Format(time.RFC3339Nano) + "\n")
	tmp := filepath.Join(dir, "."+h.Host+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return time.Time{}, fmt.Errorf("heartbeat of %s: %w", h.Host, err)
	}
	_, werr := f.Write(data)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return time.Time{}, fmt.Errorf("heartbeat of %s: writing %s: %w", h.Host, tmp, err)
	}
	if err := os.Rename(tmp, h.Path()); err != nil {
		return time.Time{}, fmt.Errorf("heartbeat of %s: %w", h.Host, err)
	}
	return t, nil
}

// Probe writes the heartbeat and reads it back, and fails if that does not
// finish within timeout. I/O on a cluster file system whose lock manager
// hangs blocks in the kernel and cannot be cancelled, so the I/O runs on its
// own goroutine, which is left behind on a timeout (it ends when the kernel
// lets go).
func (h Heartbeat) Probe(ctx context.Context, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		t, err := h.Write()
		if err != nil {
			done <- err
			return
		}
		b, err := os.ReadFile(h.Path())
		if err != nil {
			done <- fmt.Errorf("reading back %s: %w", h.Path(), err)
			return
		}
		got, err := ParseHeartbeat(b)
		if err != nil {
			done <- fmt.Errorf("reading back %s: %w", h.Path(), err)
			return
		}
		if !got.Equal(t) {
			done <- fmt.Errorf("read back %s from %s, wrote %s", got.Format(time.RFC3339Nano), h.Path(), t.Format(time.RFC3339Nano))
			return
		}
		done <- nil
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case err := <-done:
		return time.Since(start), err
	case <-timer.C:
		return time.Since(start), fmt.Errorf("write-then-read of %s did not answer within %s", h.Path(), timeout)
	case <-ctx.Done():
		return time.Since(start), fmt.Errorf("write-then-read of %s: %w", h.Path(), ctx.Err())
	}
}

// ParseHeartbeat reads a heartbeat file's content: one RFC 3339 time.
func ParseHeartbeat(data []byte) (time.Time, error) {
	s := string(bytes.TrimSpace(data))
	if s == "" {
		return time.Time{}, errors.New("heartbeat file is empty")
	}
	if len(s) > 64 {
		return time.Time{}, fmt.Errorf("heartbeat file holds %d bytes, not a time", len(s))
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("heartbeat file holds %q, not an RFC 3339 time", s)
	}
	return t, nil
}

// Beat is what a reader found for one host.
type Beat struct {
	Host string
	// Written is the time the host wrote (by the host's clock); zero when
	// it never wrote.
	Written time.Time
	// Changed is when this reader first saw the current content (by the
	// reader's clock), set by a Tracker; it does not depend on clock skew.
	Changed time.Time
	Err     error
}

// ReadHeartbeats reads the heartbeat file of every host on the file system
// mounted at root. A host without a file has a zero Written and no error
// (it never wrote); an unreadable or garbled file is an Err.
func ReadHeartbeats(root string, hosts []string) []Beat {
	out := make([]Beat, 0, len(hosts))
	for _, h := range hosts {
		b := Beat{Host: h}
		if err := checkHostName(h); err != nil {
			b.Err = err
			out = append(out, b)
			continue
		}
		data, err := os.ReadFile(filepath.Join(root, HeartbeatDir, h))
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			b.Err = err
		default:
			b.Written, b.Err = ParseHeartbeat(data)
		}
		out = append(out, b)
	}
	return out
}

// Tracker remembers, per host, the last heartbeat content seen and when (by
// the reader's clock) it changed, so "still writing" does not depend on the
// writer's clock agreeing with the reader's.
type Tracker struct {
	last map[string]Beat
}

// Observe folds a reading taken at now into the tracker and returns the
// beats with Changed filled in.
func (t *Tracker) Observe(now time.Time, beats []Beat) []Beat {
	if t.last == nil {
		t.last = map[string]Beat{}
	}
	out := make([]Beat, len(beats))
	for i, b := range beats {
		prev, seen := t.last[b.Host]
		switch {
		case b.Err != nil || b.Written.IsZero():
			b.Changed = prev.Changed
		case !seen || !prev.Written.Equal(b.Written):
			b.Changed = now
		default:
			b.Changed = prev.Changed
		}
		if b.Err == nil && !b.Written.IsZero() {
			t.last[b.Host] = b
		}
		out[i] = b
	}
	return out
}

// Liveness is the storage heartbeat's verdict on a host.
type Liveness string

const (
	// Writing means the host changed its file within the window: it is alive
	// and reaches the storage, whatever the network says.
	Writing Liveness = "writing"
	// Silent means it wrote before but not within the window.
	Silent Liveness = "silent"
	// Never means no heartbeat from it was ever seen.
	Never Liveness = "never"
)

// Classify says whether the host still writes: its content changed (by the
// reader's clock) within window before now.
func Classify(b Beat, now time.Time, window time.Duration) Liveness {
	if b.Changed.IsZero() {
		return Never
	}
	if now.Sub(b.Changed) <= window {
		return Writing
	}
	return Silent
}

// Run writes the heartbeat once at start and then on every tick until ctx
// ends, calling report (if not nil) with each write's time or error. The
// caller owns the ticker (time.NewTicker(interval).C in the agent, a plain
// channel in tests). A write that hangs (hung cluster file system) blocks
// the loop: that host then goes silent, which is the truth readers should
// see.
func (h Heartbeat) Run(ctx context.Context, ticks <-chan time.Time, report func(time.Time, error)) {
	for {
		t, err := h.Write()
		if report != nil {
			report(t, err)
		}
		select {
		case <-ctx.Done():
			return
		case _, ok := <-ticks:
			if !ok {
				return
			}
		}
	}
}
