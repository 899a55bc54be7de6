package cluster

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/vmha/vmha/model"
	"github.com/vmha/vmha/pki"
)

// Bounds of the API's listeners (DESIGN "Trust model": bound sizes and
// rates, time out slow clients). Nothing the API serves streams: `vmha
// migrate --wait` and `vmha host evacuate` poll every half second. What
// takes long is a handful of calls that act (a fence, a fence device test,
// formatting or checking storage, a peer's LVM command): those get a budget
// of their own (routeBudget), set per request through http.ResponseController,
// instead of one write timeout for all.
const (
	// readHeaderTimeout bounds the TLS handshake and the request line and
	// headers: a client on a LAN sends them in milliseconds.
	readHeaderTimeout = 5 * time.Second
	// requestBudget is a request's default budget from its header to the
	// end of the handler: reading the body (at most maxBody, 320 KiB),
	// the handler itself (a raft proposal waits at most applyTimeout; a
	// forwarded one waits for the leader's), and its context ends then.
	requestBudget = 30 * time.Second
	// answerGrace is the time left after the budget to write the answer.
	answerGrace = 5 * time.Second
	// idleTimeout closes a keep-alive connection that carries nothing.
	// Peers close theirs first (peerIdleConnTimeout).
	idleTimeout = 30 * time.Second
	// maxHeaderBytes bounds a request's header (Go's default is 1 MiB);
	// vmha sends a few hundred bytes.
	maxHeaderBytes = 64 << 10

	// socketConnCap bounds the local socket's connections: the CLI and
	// scripts on this host, one connection per call.
	socketConnCap = 64
	// peerConnCapMin bounds the peer port's connections: every other host
	// keeps a few (peerMaxIdle) and remote operators one per call. A large
	// cluster gets peerConnsPerHost per configured host instead.
	peerConnCapMin   = 256
	peerConnsPerHost = 8
	// metricsConnCap bounds the metrics port (a scraper or two).
	metricsConnCap = 16
)

// Peer writes (registration, observations, migration results, LVM commands)
// are limited per authenticated peer (its certificate's name under TLS, its
// address otherwise): a token bucket that refills peerWriteRate a second up
// to peerWriteBurst. A host's agent reports when something changed and every
// 15 s; a recovery or an evacuation of hundreds of VMs costs a few calls
// per VM and host, which the burst absorbs. The limit is for a peer gone
// wrong (a loop, a compromised host), not for load.
const (
	peerWriteRate  = 50
	peerWriteBurst = 1000
	// rateBuckets bounds the buckets kept: past it, full buckets (peers
	// idle long enough to have refilled) are dropped, and if none is,
	// the newcomers share one.
	rateBuckets = 4096
)

// newServer is an http.Server with the API's bounds. The write and read
// timeouts are the default budget: budgeted sets each request's own.
func newServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       requestBudget + answerGrace,
		WriteTimeout:      requestBudget + answerGrace,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
	}
}

// budgeted gives each request d from now: its context ends then (a forwarded
// request, a peer call or a proposal made for it gives up), and so does the
// reading of its body (a client that stalls its body is cut). The write
// deadline is answerGrace later, for the answer. A call that legitimately
// takes d is not cut by the server's shorter defaults.
func budgeted(d time.Duration, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		end := time.Now().Add(d)
		rc := http.NewResponseController(w)
		// Only while there is a body to read: once it is read (or with
		// none), Go's server clears the read deadline and watches the
		// connection for the client going away, which must not time out.
		if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
			_ = rc.SetReadDeadline(end)
		}
		_ = rc.SetWriteDeadline(end.Add(answerGrace))
		ctx, cancel := context.WithDeadline(r.Context(), end)
		defer cancel()
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

// routeBudget is how long a call may take on the route pattern: the
// default, or longer for the calls that act on devices.
func (n *Node) routeBudget(pattern string) time.Duration {
	switch pattern {
	case "POST /v1/fence/{host}", "POST /v1/fence/{host}/test":
		// The leader fences within Fencing.Timeout plus 10 s
		// (handleFence); a follower forwards and waits as long.
		return n.cfg.Fencing.Timeout + 20*time.Second
	case "POST /v1/local/storage/init":
		// mkfs of a large device; the CLI waits up to 30 minutes.
		return 30 * time.Minute
	case "GET /v1/local/storage":
		// A readiness probe per file system, 10 s each at most.
		return 2 * time.Minute
	case "POST /v1/peer/lvm":
		// lvchange may wait for lvmlockd; the caller gives up at 30 s.
		return time.Minute
	}
	return requestBudget
}

// limitListener bounds the connections a listener holds open: at the cap,
// Accept waits for one to close (new ones wait in the kernel's queue), as
// x/net/netutil.LimitListener does; the cap may change with the cluster's
// size.
type limitListener struct {
	net.Listener
	name  string
	limit func() int
	log   zerolog.Logger

	mu       sync.Mutex
	cond     *sync.Cond
	active   int
	closed   bool
	loggedAt time.Time
}

func newLimitListener(l net.Listener, name string, limit func() int, log zerolog.Logger) *limitListener {
	ll := &limitListener{Listener: l, name: name, limit: limit, log: log}
	ll.cond = sync.NewCond(&ll.mu)
	return ll
}

func (l *limitListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	for !l.closed && l.active >= l.limit() {
		if time.Since(l.loggedAt) > time.Minute {
			l.loggedAt = time.Now()
			l.log.Warn().Str("listener", l.name).Int("cap", l.limit()).Msg("the API holds as many connections as it takes: new ones wait until one closes (slow or idle clients are cut by the timeouts)")
		}
		l.cond.Wait()
	}
	if l.closed {
		l.mu.Unlock()
		return nil, net.ErrClosed
	}
	l.active++
	l.mu.Unlock()
	c, err := l.Listener.Accept()
	if err != nil {
		l.release()
		return nil, err
	}
	return &limitConn{Conn: c, l: l}, nil
}

func (l *limitListener) release() {
	l.mu.Lock()
	l.active--
	l.mu.Unlock()
	l.cond.Signal()
}

// Close closes the listener and wakes an Accept waiting for a slot.
func (l *limitListener) Close() error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.cond.Broadcast()
	return l.Listener.Close()
}

// open is the number of connections held (tests).
func (l *limitListener) open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.active
}

type limitConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

// Unwrap is the connection underneath (the socket's peer credentials are
// read from it).
func (c *limitConn) Unwrap() net.Conn { return c.Conn }

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.l.release)
	return err
}

// rateLimiter is a token bucket per principal.
type rateLimiter struct {
	rate, burst float64
	now         func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
	// refused counts the calls refused since the last log line.
	refused  int
	loggedAt time.Time
}

func newRateLimiter(rate, burst float64) *rateLimiter {
	return &rateLimiter{rate: rate, burst: burst, now: time.Now, buckets: map[string]*bucket{}}
}

// sharedBucket is where newcomers go when rateBuckets are all busy.
const sharedBucket = "(shared: too many peers)"

// allow takes a token of key's bucket. When it refuses, logNow says whether
// to log (the first refusal, then at most every 10 s per principal), and
// refused is how many calls were refused since the last log line.
func (l *rateLimiter) allow(key string) (ok, logNow bool, refused int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= rateBuckets {
			l.prune(now)
		}
		if len(l.buckets) >= rateBuckets {
			key = sharedBucket
			b = l.buckets[key]
		}
		if b == nil {
			b = &bucket{tokens: l.burst, last: now}
			l.buckets[key] = b
		}
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, false, 0
	}
	b.refused++
	if now.Sub(b.loggedAt) < 10*time.Second {
		return false, false, 0
	}
	b.loggedAt, refused, b.refused = now, b.refused, 0
	return false, true, refused
}

// prune drops the buckets that have refilled: they are as good as new.
func (l *rateLimiter) prune(now time.Time) {
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
			delete(l.buckets, k)
		}
	}
}

// principal names who made a request for the rate limit: the certificate's
// name under mutual TLS (authenticate checked it), else the remote address.
func principal(r *http.Request) string {
	if r.TLS != nil {
		if name := pki.PeerName(r.TLS); name != "" {
			return name
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// limitPeerWrites answers 429 to a peer over its rate.
func (n *Node) limitPeerWrites(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who := principal(r)
		ok, logNow, refused := n.peerRate.allow(who)
		if !ok {
			if logNow {
				n.log.Warn().Str("peer", who).Str("remote", r.RemoteAddr).Str("path", r.URL.Path).Int("refused", refused).
					Float64("per_second", n.peerRate.rate).Float64("burst", n.peerRate.burst).
					Msg("peer writes over their rate: refused with 429 (counting refusals since the last such line)")
			}
			w.Header().Set("Retry-After", strconv.Itoa(1))
			writeErr(w, http.StatusTooManyRequests, "", fmt.Errorf("%s: too many peer writes (over %v a second after a burst of %v); retry later", who, n.peerRate.rate, n.peerRate.burst))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// peerConnCap is the peer port's cap for the configured hosts.
func (n *Node) peerConnCap() int {
	hosts := 0
	n.fsm.Read(func(s *model.State) { hosts = len(s.Config.Hosts) })
	return max(peerConnCapMin, peerConnsPerHost*hosts)
}
