package labcluster

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/pki"
)

// usage is one sample of a vmhad's resources.
type usage struct {
	sockets, goroutines int
	rssKiB              int
}

// sampleUsage reads a vmhad's open sockets and resident memory from /proc
// and its goroutines from its metrics.
func sampleUsage(h *Host) (usage, error) {
	var u usage
	pid := h.PID()
	if pid == 0 {
		return u, fmt.Errorf("%s is not running", h.Name)
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return u, err
	}
	for _, fd := range fds {
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil && strings.HasPrefix(l, "socket:") {
			u.sockets++
		}
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			u.rssKiB, _ = strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	m, err := h.Metrics()
	if err != nil {
		return u, err
	}
	for line := range strings.SplitSeq(m, "\n") {
		if v, ok := strings.CutPrefix(line, "go_goroutines "); ok {
			u.goroutines, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	if u.rssKiB == 0 || u.goroutines == 0 {
		return u, fmt.Errorf("%s: no VmRSS or go_goroutines in its figures", h.Name)
	}
	return u, nil
}

// samplePhase samples every host every interval for d.
func samplePhase(t *testing.T, c *Cluster, d, every time.Duration) map[string][]usage {
	t.Helper()
	out := map[string][]usage{}
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(every) {
		for _, h := range c.Hosts {
			u, err := sampleUsage(h)
			if err != nil {
				t.Fatalf("sample %s: %v", h.Name, err)
			}
			out[h.Name] = append(out[h.Name], u)
		}
	}
	return out
}

// flat fails the test if the series grew: the maximum of its last third
// may exceed the maximum of its first third by at most abs plus rel of it.
func flat(t *testing.T, what string, series []int, abs int, rel float64) {
	t.Helper()
	third := len(series) / 3
	if third == 0 {
		t.Fatalf("%s: only %d samples", what, len(series))
	}
	first, last := slices.Max(series[:third]), slices.Max(series[len(series)-third:])
	allowed := first + abs + int(rel*float64(first))
	t.Logf("%-28s first third max %7d, last third max %7d (allowed %d; min %d, max %d)", what, first, last, allowed, slices.Min(series), slices.Max(series))
	if last > allowed {
		t.Errorf("%s grows: %d in the first third, %d in the last (allowed %d): %v", what, first, last, allowed, series)
	}
}

func checkFlat(t *testing.T, phase string, samples map[string][]usage) {
	t.Helper()
	for _, name := range sortedNames(samples) {
		var so, gr, rss []int
		for _, u := range samples[name] {
			so, gr, rss = append(so, u.sockets), append(gr, u.goroutines), append(rss, u.rssKiB)
		}
		// Measured on a quiet 3-host lab: with a client per peer, each
		// series moves by one or two; with a transport per call, the
		// idle leader gained 8 sockets from the first third to the last
		// and the busy one 400 sockets, 550 goroutines and 36 % RSS.
		flat(t, fmt.Sprintf("%s %s sockets", name, phase), so, 5, 0)
		flat(t, fmt.Sprintf("%s %s goroutines", name, phase), gr, 15, 0)
		flat(t, fmt.Sprintf("%s %s RSS KiB", name, phase), rss, 0, 0.30)
	}
}

func sortedNames(m map[string][]usage) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestSoakResourcesStayFlat: a 3-host mutual-TLS cluster, idle for a minute
// and then busy for a minute (status, host attributes, VMs added and removed
// through every host, so that writes are forwarded to the leader), keeps
// every vmhad's open sockets, goroutines and memory flat. Each peer call
// used to build an http.Transport of its own whose idle TLS connection was
// never closed: the leader gained about 16 sockets a minute when idle.
func TestSoakResourcesStayFlat(t *testing.T) {
	c := startClusterWith(t, Options{TLS: true})
	const phase, every = 60 * time.Second, 2 * time.Second

	idle := samplePhase(t, c, phase, every)

	dir := t.TempDir()
	stop := make(chan struct{})
	var ops, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	wg.Go(func() {
		do := func(h *Host, args ...string) {
			ops.Add(1)
			if out, err := c.vmha(h, args...); err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, fmt.Sprintf("vmha %s via %s: %v: %s", strings.Join(args, " "), h.Name, err, out))
			}
		}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(250 * time.Millisecond):
			}
			a, b, d := c.Hosts[i%3], c.Hosts[(i+1)%3], c.Hosts[(i+2)%3]
			do(a, "status")
			do(b, "host", "attr", "set", a.Name, "soak", strconv.Itoa(i))
			name := fmt.Sprintf("soak%d", i)
			p := filepath.Join(dir, name+".xml")
			xml := fmt.Sprintf("<domain type='test'><name>%s</name><memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type>hvm</type></os></domain>", name)
			if err := os.WriteFile(p, []byte(xml), 0o600); err != nil {
				firstErr.CompareAndSwap(nil, err.Error())
				return
			}
			do(d, "vm", "add", name, "--xml", p, "--prefer", a.Name)
			if i > 0 {
				do(a, "vm", "remove", fmt.Sprintf("soak%d", i-1), "--yes")
			}
		}
	})
	busy := samplePhase(t, c, phase, every)
	close(stop)
	wg.Wait()

	t.Logf("busy phase: %d vmha calls, %d failed", ops.Load(), failed.Load())
	checkFlat(t, "idle", idle)
	checkFlat(t, "busy", busy)
	if ops.Load() < 40 {
		t.Errorf("the busy phase made only %d calls", ops.Load())
	}
	// A write may meet a leader change; more than a few failures is a bug.
	if f := failed.Load(); f > ops.Load()/20 {
		t.Errorf("%d of %d vmha calls failed; first: %v", f, ops.Load(), firstErr.Load())
	}
}

// The limits TestSlowClientsAreCut holds the peer port to, and the size of
// its attack.
const (
	slowHeaderTimeout = 5 * time.Second  // the server's ReadHeaderTimeout
	slowRequestBudget = 30 * time.Second // a request's default budget
	slowIdleTimeout   = 30 * time.Second // the server's IdleTimeout
	slowSlack         = 4 * time.Second
	slowHalfHeaders   = 300
	slowStalledBodies = 10
	slowIdlers        = 10
)

// TestSlowClientsAreCut: connections that stop half-way through a request's
// header, stall in its body, or sit idle after an answer are closed by the
// peer port within its timeouts, the port never holds more connections than
// its cap, and status keeps answering throughout, through a follower (whose
// reads go to the attacked leader) and over fresh connections to the leader.
func TestSlowClientsAreCut(t *testing.T) {
	c := startClusterWith(t, Options{TLS: true})
	s := mustStatus(t, c)
	leader := c.Host(s.Leader)
	var follower *Host
	for _, h := range c.Hosts {
		if h.Name != s.Leader {
			follower = h
			break
		}
	}
	// An operator's certificate: the attack is made by a client the CA
	// signed, past the TLS handshake.
	crt, key, err := pki.Issue(c.CADir(), "mallory", pki.RoleOperator, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := pki.Files{CA: filepath.Join(c.CADir(), pki.CACert), Cert: crt, Key: key}.Config()
	if err != nil {
		t.Fatal(err)
	}
	before, err := sampleUsage(leader)
	if err != nil {
		t.Fatal(err)
	}

	a := &slowAttack{addr: leader.APIAddr, tc: tc, results: make(chan slowResult, slowHalfHeaders+slowStalledBodies+slowIdlers)}
	var wg sync.WaitGroup
	// Stalled bodies and idle connections first, so that they hold slots.
	for range slowStalledBodies {
		wg.Go(a.stalledBody)
	}
	for range slowIdlers {
		wg.Go(a.idle)
	}
	time.Sleep(time.Second)
	for range slowHalfHeaders {
		wg.Go(a.halfHeader)
	}

	// Meanwhile: status through a follower (a read the follower forwards
	// to the attacked leader) and over a fresh connection to the leader,
	// and the leader's sockets.
	stop := make(chan struct{})
	m := &statusMonitor{follower: follower, leader: leader, tc: tc}
	var mwg sync.WaitGroup
	mwg.Go(func() { m.run(stop) })
	wg.Wait()
	close(stop)
	mwg.Wait()
	close(a.results)

	checkSlowConnections(t, a.results)
	slices.Sort(m.viaFollower)
	slices.Sort(m.fresh)
	t.Logf("status via %s: %d answers, slowest %v; over fresh connections to %s: %d answers, slowest %v; leader sockets %d before, at most %d during",
		follower.Name, len(m.viaFollower), last(m.viaFollower), leader.Name, len(m.fresh), last(m.fresh), before.sockets, m.maxSockets)
	if len(m.statusErrs) > 0 {
		t.Errorf("status failed during the attack (%d times): %v", len(m.statusErrs), m.statusErrs[0])
	}
	if len(m.viaFollower) < 10 || len(m.fresh) < 2 {
		t.Errorf("too few status answers during the attack: %d via the follower, %d fresh", len(m.viaFollower), len(m.fresh))
	}
	// The peer port holds at most its cap (256) of connections.
	if m.maxSockets > before.sockets+256+16 {
		t.Errorf("the leader held %d sockets during the attack (%d before): the peer port's cap did not hold", m.maxSockets, before.sockets)
	}
	// And the leader is back to where it was.
	time.Sleep(2 * time.Second)
	after, err := sampleUsage(leader)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("leader after the attack: %d sockets, %d goroutines (before: %d, %d)", after.sockets, after.goroutines, before.sockets, before.goroutines)
	if after.sockets > before.sockets+8 {
		t.Errorf("the leader holds %d sockets after the attack, %d before", after.sockets, before.sockets)
	}
}

// slowResult is how one attacking connection ended.
type slowResult struct {
	kind string
	// held is how long the server kept the connection after the
	// client's last byte (or the end of the handshake).
	held time.Duration
	err  error
}

// slowAttack makes slow connections to the peer port at addr, each
// reporting to results.
type slowAttack struct {
	addr    string
	tc      *tls.Config
	results chan slowResult
}

// open dials the leader's peer port and completes the TLS handshake (a
// connection beyond the port's cap waits in the accept queue, so the
// handshake waits too).
func (a *slowAttack) open() (*tls.Conn, error) {
	conn, err := net.DialTimeout("tcp", a.addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	tconn := tls.Client(conn, a.tc.Clone())
	_ = tconn.SetDeadline(time.Now().Add(60 * time.Second))
	if err := tconn.Handshake(); err != nil {
		conn.Close()
		return nil, fmt.Errorf("handshake: %w", err)
	}
	return tconn, nil
}

// waitClosed reads until the server closes the connection.
func (a *slowAttack) waitClosed(kind string, conn net.Conn, since time.Time, limit time.Duration) {
	defer conn.Close()
	_ = conn.SetReadDeadline(since.Add(limit + 10*time.Second))
	_, err := io.Copy(io.Discard, conn)
	held := time.Since(since)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		a.results <- slowResult{kind: kind, held: held, err: fmt.Errorf("still open after %v", held.Round(time.Second))}
		return
	}
	a.results <- slowResult{kind: kind, held: held}
}

// stalledBody sends a request's header and the start of its body, then
// nothing.
func (a *slowAttack) stalledBody() {
	conn, err := a.open()
	if err != nil {
		a.results <- slowResult{kind: "stalled body", err: err}
		return
	}
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: vmhad\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"name\":", api.PathVMs)
	a.waitClosed("stalled body", conn, time.Now(), slowRequestBudget)
}

// idle reads an answer, then stays silent.
func (a *slowAttack) idle() {
	conn, err := a.open()
	if err != nil {
		a.results <- slowResult{kind: "idle", err: err}
		return
	}
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: vmhad\r\n\r\n", api.PathStatus)
	// Read the answer, then stay silent.
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		_ = conn.Close()
		a.results <- slowResult{kind: "idle", err: err}
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	a.waitClosed("idle", conn, time.Now(), slowIdleTimeout)
}

// halfHeader sends half a request header.
func (a *slowAttack) halfHeader() {
	conn, err := a.open()
	if err != nil {
		a.results <- slowResult{kind: "half header", err: err}
		return
	}
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: vm", api.PathStatus)
	a.waitClosed("half header", conn, time.Now(), slowHeaderTimeout)
}

// checkSlowConnections checks that the server closed every attacking
// connection, each within its limit (plus slack), and every half header.
func checkSlowConnections(t *testing.T, results <-chan slowResult) {
	held := map[string][]time.Duration{}
	limit := map[string]time.Duration{"half header": slowHeaderTimeout, "stalled body": slowRequestBudget, "idle": slowIdleTimeout}
	for r := range results {
		if r.err != nil {
			t.Errorf("%s connection: %v", r.kind, r.err)
			continue
		}
		held[r.kind] = append(held[r.kind], r.held)
	}
	for kind, ds := range held {
		slices.Sort(ds)
		t.Logf("%-12s %3d connections closed by the server after %v (median %v, max %v)", kind, len(ds), ds[0].Round(100*time.Millisecond), ds[len(ds)/2].Round(100*time.Millisecond), ds[len(ds)-1].Round(100*time.Millisecond))
		if worst := ds[len(ds)-1]; worst > limit[kind]+slowSlack {
			t.Errorf("%s: a connection was held %v, more than %v", kind, worst, limit[kind]+slowSlack)
		}
	}
	if len(held["half header"]) != slowHalfHeaders {
		t.Errorf("%d of %d half-header connections were closed", len(held["half header"]), slowHalfHeaders)
	}
}

// statusMonitor asks for the status during the attack, through a follower
// and over fresh connections to the leader, and samples the leader's
// sockets. Its fields are read once run returned.
type statusMonitor struct {
	follower, leader *Host
	tc               *tls.Config

	viaFollower, fresh []time.Duration
	statusErrs         []string
	maxSockets         int
}

// run samples every 250 ms until stop is closed.
func (m *statusMonitor) run(stop <-chan struct{}) {
	follower, leader := m.follower, m.leader
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		case <-time.After(250 * time.Millisecond):
		}
		t0 := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		_, err := follower.Status(ctx)
		cancel()
		if err != nil {
			m.statusErrs = append(m.statusErrs, "via "+follower.Name+": "+err.Error())
		} else {
			m.viaFollower = append(m.viaFollower, time.Since(t0))
		}
		if i%8 == 0 {
			t0 = time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			err := api.NewTCPClient(leader.APIAddr, 15*time.Second, m.tc).Do(ctx, http.MethodGet, api.PathStatus, nil, &api.Status{}, nil)
			cancel()
			if err != nil {
				m.statusErrs = append(m.statusErrs, "fresh connection to "+leader.Name+": "+err.Error())
			} else {
				m.fresh = append(m.fresh, time.Since(t0))
			}
		}
		if u, err := sampleUsage(leader); err == nil {
			m.maxSockets = max(m.maxSockets, u.sockets)
		}
	}
}

func last(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	return ds[len(ds)-1].Round(10 * time.Millisecond)
}
