package cluster

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/config"
)

func TestRateLimiterBurstRefillAndLog(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newRateLimiter(2, 5)
	l.now = func() time.Time { return now }
	for i := range 5 {
		if ok, _, _ := l.allow("host2"); !ok {
			t.Fatalf("call %d of the burst refused", i+1)
		}
	}
	ok, logNow, refused := l.allow("host2")
	if ok || !logNow || refused != 1 {
		t.Fatalf("over the burst: ok %v, log %v, refused %d; want a refusal, logged", ok, logNow, refused)
	}
	// Further refusals are counted, not logged, for 10 s.
	for range 3 {
		if ok, logNow, _ := l.allow("host2"); ok || logNow {
			t.Fatalf("ok %v log %v, want a silent refusal", ok, logNow)
		}
	}
	// Another peer has its own bucket.
	if ok, _, _ := l.allow("host3"); !ok {
		t.Fatal("host3 was limited for host2's calls")
	}
	// Half a second refills one token.
	now = now.Add(500 * time.Millisecond)
	if ok, _, _ := l.allow("host2"); !ok {
		t.Fatal("no refill after 0.5 s at 2/s")
	}
	now = now.Add(11 * time.Second)
	for range 5 {
		l.allow("host2")
	}
	if ok, logNow, refused := l.allow("host2"); ok || !logNow || refused != 4 {
		t.Fatalf("after 10 s: ok %v log %v refused %d; want a log line counting 4", ok, logNow, refused)
	}
}

func TestRateLimiterBoundsItsBuckets(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newRateLimiter(1, 2)
	l.now = func() time.Time { return now }
	for i := range rateBuckets {
		l.allow(fmt.Sprint("10.0.", i/256, ".", i%256))
	}
	// All busy: a newcomer shares the overflow bucket.
	l.allow("newcomer")
	if len(l.buckets) != rateBuckets+1 || l.buckets[sharedBucket] == nil {
		t.Fatalf("%d buckets, shared %v", len(l.buckets), l.buckets[sharedBucket] != nil)
	}
	// Once they refilled, they are dropped to make room.
	now = now.Add(10 * time.Second)
	l.allow("another")
	if len(l.buckets) != 1 || l.buckets["another"] == nil {
		t.Fatalf("%d buckets after refilling, want only the newcomer's", len(l.buckets))
	}
}

// The peer writes go through the rate limit on the peer port, and only
// there; over the limit, a call is answered 429 before it does anything.
func TestPeerWritesAreRateLimited(t *testing.T) {
	n := &Node{cfg: &config.Daemon{NodeName: "h1"}, fsm: NewFSM(), log: zerolog.Nop(), peerRate: newRateLimiter(0, 1)}
	mux := n.Handler(false).(*http.ServeMux)
	for pattern := range peerWrites {
		method, path, _ := strings.Cut(pattern, " ")
		if _, got := mux.Handler(httptest.NewRequest(method, path, nil)); got != pattern {
			t.Errorf("%s is not a route (got %q)", pattern, got)
		}
	}
	call := func(h http.Handler) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", api.PathPeerLVM, strings.NewReader(`{"name":"lvs","args":[]}`))
		req.RemoteAddr = "192.0.2.7:4242"
		h.ServeHTTP(rec, req)
		return rec
	}
	// The first call passes (and is refused by the handler: no volume
	// groups here), the second is over the limit.
	peerPort := n.authenticate(false, mux) // insecure: any caller may make peer calls
	if rec := call(peerPort); rec.Code != http.StatusConflict {
		t.Fatalf("first call: %d %s", rec.Code, rec.Body)
	}
	rec := call(peerPort)
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), "192.0.2.7: too many peer writes") {
		t.Fatalf("over the limit: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	// The socket is not limited (its operator may not make peer calls:
	// refused, but not for the rate).
	sock := n.authenticate(true, n.Handler(true))
	rec = httptest.NewRecorder()
	req := httptest.NewRequest("POST", api.PathPeerLVM, strings.NewReader(`{"name":"lvs","args":[]}`))
	req = req.WithContext(contextWithCred(req, syscall.Ucred{Uid: 0}))
	if sock.ServeHTTP(rec, req); rec.Code == http.StatusTooManyRequests || rec.Code != http.StatusForbidden {
		t.Fatalf("socket call: %d %s", rec.Code, rec.Body)
	}
}

func TestLimitListenerCapsConnections(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := newLimitListener(tcp, "test", func() int { return 2 }, zerolog.Nop())
	defer func() { _ = l.Close() }()
	accepted := make(chan net.Conn, 3)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	for range 3 {
		c, err := net.Dial("tcp", tcp.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	first, second := <-accepted, <-accepted
	select {
	case <-accepted:
		t.Fatal("a third connection was accepted over the cap of 2")
	case <-time.After(200 * time.Millisecond):
	}
	if l.open() != 2 {
		t.Fatalf("%d open, want 2", l.open())
	}
	first.Close()
	first.Close() // a second Close frees nothing more
	select {
	case c := <-accepted:
		c.Close()
	case <-time.After(2 * time.Second):
		t.Fatal("the third connection was not accepted after one closed")
	}
	second.Close()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-accepted; ok {
		t.Fatal("Accept went on after Close")
	}
	if l.open() != 0 {
		t.Fatalf("%d still counted open", l.open())
	}
}

// budgeted: a request whose body stalls is cut at its budget (408, then
// the connection closes), and a route with a longer budget outlives the
// server's default timeouts.
func TestBudgetedRequests(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("POST /short", budgeted(300*time.Millisecond, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := readBody(w, r, 1<<10); err != nil {
			writeBodyErr(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})))
	mux.Handle("GET /long", budgeted(3*time.Second, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(1500 * time.Millisecond):
		case <-r.Context().Done():
			http.Error(w, "cut", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "done")
	})))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: time.Second, ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond, IdleTimeout: time.Second}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	defer func() { _ = srv.Close() }()
	addr := l.Addr().String()

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	fmt.Fprint(c, "POST /short HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"a\":")
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("stalled body: %d, want 408", resp.StatusCode)
	}
	if _, err := io.Copy(io.Discard, c); err != nil {
		t.Fatalf("the connection was not closed: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("the stalled body was held %v", d)
	}

	// Twice on one keep-alive connection: the long call is not cut by the
	// server's 500 ms timeouts, and its connection serves the next call.
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	for i := range 2 {
		resp, err := hc.Get("http://" + addr + "/long")
		if err != nil {
			t.Fatalf("long call %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(b) != "done" {
			t.Fatalf("long call %d: %d %q", i, resp.StatusCode, b)
		}
	}
}
