package labcluster

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/internal/testlab/testenv"
	"github.com/vmha/vmha/model"
)

// wdEmulator stands in for a hardware watchdog, which this machine's
// kernel lacks (no /dev/watchdog, no softdog module): vmhad writes its
// keepalives into a FIFO, and when none arrives for the timeout while armed,
// the emulator "resets" the host the way the device would: its vmhad (and
// with it the test-driver VMs it runs) dies at once.
type wdEmulator struct {
	mu     sync.Mutex
	resets map[string]time.Time
}

func startWatchdogs(t *testing.T, dir string, hosts []string, timeout time.Duration) (*wdEmulator, map[string]string) {
	t.Helper()
	e := &wdEmulator{resets: map[string]time.Time{}}
	paths := map[string]string{}
	for _, h := range hosts {
		p := filepath.Join(dir, h+".watchdog")
		if err := unix.Mkfifo(p, 0o666); err != nil {
			t.Fatal(err)
		}
		_ = os.Chmod(p, 0o666)
		// Read-write: opening never blocks, and the pipe never reports
		// EOF, so a vmhad that dies is seen as silence, as a device does.
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = f.Close() })
		paths[h] = p
	}
	return e, paths
}

// watch resets host when its FIFO is silent for timeout while armed.
func (e *wdEmulator) watch(t *testing.T, c *Cluster, host, path string, timeout time.Duration, stop <-chan struct{}) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Error(err)
		return
	}
	defer f.Close()
	armed := false
	buf := make([]byte, 64)
	for {
		select {
		case <-stop:
			return
		default:
		}
		_ = f.SetReadDeadline(time.Now().Add(timeout))
		n, err := f.Read(buf)
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			if armed {
				e.mu.Lock()
				e.resets[host] = time.Now()
				e.mu.Unlock()
				c.Host(host).Kill()
				armed = false
			}
		case err != nil:
			return
		default:
			// A keepalive arms, a magic close disarms; the last one counts.
			if s := string(buf[:n]); strings.LastIndexAny(s, "kV") >= 0 {
				armed = s[strings.LastIndexAny(s, "kV")] == 'k'
			}
		}
	}
}

func (e *wdEmulator) resetAt(host string) time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.resets[host]
}

// TestWatchdogSelfFence: a host is cut off from the quorum and its BMC is
// dead, so no fence device can answer. Its watchdog (4 s) stops being
// petted, and the emulated device resets it; the majority, which knows the
// timeout, counts it as fenced only after the bound (lost + 1.5 × 4 s +
// margin), records "watchdog" in the fence history, and recovers its VMs.
// No VM runs on two hosts at any sample, and the reset happens before the
// recovery.
func TestWatchdogSelfFence(t *testing.T) {
	if err := PartitionAvailable(); err != nil {
		testenv.Missing(t, err.Error())
	}
	const timeout = 4 * time.Second
	dir := t.TempDir()
	_ = os.Chmod(dir, 0o777)
	hosts := []string{"host1", "host2", "host3"}
	e, paths := startWatchdogs(t, dir, hosts, timeout)
	extra := map[string]string{}
	for _, h := range hosts {
		extra[h] = "watchdog:\n  device: " + paths[h] + "\n  timeout: 4s\n"
	}
	c := startClusterWith(t, Options{Users: true, HostExtra: extra})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, h := range hosts {
		wg.Add(1)
		go func() { defer wg.Done(); e.watch(t, c, h, paths[h], timeout, stop) }()
	}
	t.Cleanup(func() { close(stop); wg.Wait() })

	names := []string{"w1", "w2", "w3", "w4", "w5", "w6"}
	addVMs(t, c, names...)
	// Healthy and idle for longer than the timeout: nobody is reset.
	time.Sleep(timeout + 2*time.Second)
	for _, h := range hosts {
		if !e.resetAt(h).IsZero() {
			t.Fatalf("%s was reset by its watchdog while the cluster was healthy", h)
		}
	}
	s := mustStatus(t, c)
	ch := watchNeverTwice(t, c)
	vh, lost := victimWithVMs(t, s, false)
	victim := c.Host(vh.Name)
	if err := victim.BMC.Pause(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = victim.BMC.Resume() })
	cut := time.Now()
	if err := c.Partition([]string{vh.Name}, others(c, vh.Name)); err != nil {
		t.Fatal(err)
	}
	s = waitRecovered(t, c, vh.Name, names)
	recovered := time.Now()
	reset := e.resetAt(vh.Name)
	if reset.IsZero() || reset.After(recovered) {
		t.Fatalf("the cut-off host was reset at %v, its VMs recovered at %v: the reset must come first", reset, recovered)
	}
	if d := recovered.Sub(cut); d < timeout*3/2 {
		t.Fatalf("recovered %s after the cut: sooner than the watchdog bound (1.5 × %s)", d, timeout)
	}
	var hist []model.FenceRecord
	if err := c.Host(s.Leader).Client().Do(context.Background(), "GET", api.PathFenceHistory, nil, &hist, nil); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(hist, func(r model.FenceRecord) bool { return r.Host == vh.Name && r.Device == "watchdog" && r.OK }) {
		t.Fatalf("no watchdog record for %s in the fence history: %+v", vh.Name, hist)
	}
	for _, h := range others(c, vh.Name) {
		if !e.resetAt(h).IsZero() {
			t.Fatalf("%s, on the majority side, was reset", h)
		}
	}
	t.Logf("cut → reset %.1f s, cut → recovered %.1f s (VMs %v)", reset.Sub(cut).Seconds(), recovered.Sub(cut).Seconds(), lost)
	if err := c.Heal(); err != nil {
		t.Fatal(err)
	}
	ch.verify(t)
}
