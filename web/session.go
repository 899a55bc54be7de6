package web

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net"
	"net/http"
	"sync"
	"time"
)

// Cookie names. The session cookie is Secure, HttpOnly and SameSite=Strict:
// no script reads it and no other site's page sends it.
const (
	cookieSession = "vmha_session"
	// cookieLogin carries the login form's CSRF value (double submit):
	// there is no session yet to hold it.
	cookieLogin = "vmha_login"
	// maxSessions bounds the sessions a host keeps: the oldest goes first.
	maxSessions = 10000
)

// session is one browser's login. It is kept by the host that served the
// login only (a browser talks to one host); a restart logs everyone out.
type session struct {
	id      Identity
	csrf    string
	created time.Time
	used    time.Time

	// mu guards the flash: the outcome of the last action, shown once by
	// the next page.
	mu       sync.Mutex
	flash    string
	flashErr bool
}

// setFlash keeps msg for the session's next page.
func (s *session) setFlash(msg string, isErr bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flash, s.flashErr = msg, isErr
}

// takeFlash is the kept message, once.
func (s *session) takeFlash() (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, e := s.flash, s.flashErr
	s.flash, s.flashErr = "", false
	return m, e
}

// sessions are the host's sessions by the hash of their cookie: what the
// map holds cannot be replayed as a cookie.
type sessions struct {
	mu   sync.Mutex
	m    map[[32]byte]*session
	idle time.Duration
	max  time.Duration
	now  func() time.Time
}

func newSessions(idle, maxAge time.Duration, now func() time.Time) *sessions {
	return &sessions{m: map[[32]byte]*session{}, idle: idle, max: maxAge, now: now}
}

// randomString is n random bytes, base64url.
func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go ≥ 1.24)
	return base64.RawURLEncoding.EncodeToString(b)
}

// create starts a session for id and returns its cookie value.
func (ss *sessions) create(id Identity) (string, *session) {
	cookie := randomString(32)
	now := ss.now()
	s := &session{id: id, csrf: randomString(32), created: now, used: now}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.expire(now)
	if len(ss.m) >= maxSessions {
		var oldest [32]byte
		var at time.Time
		for k, v := range ss.m {
			if at.IsZero() || v.used.Before(at) {
				oldest, at = k, v.used
			}
		}
		delete(ss.m, oldest)
	}
	ss.m[sha256.Sum256([]byte(cookie))] = s
	return cookie, s
}

// expire drops ended sessions (mu held).
func (ss *sessions) expire(now time.Time) {
	for k, s := range ss.m {
		if !ss.live(s, now) {
			delete(ss.m, k)
		}
	}
}

func (ss *sessions) live(s *session, now time.Time) bool {
	// The token's own end is checked on every request (Backend.Check).
	return now.Sub(s.used) < ss.idle && now.Sub(s.created) < ss.max
}

// get is the live session of cookie, its use noted; nil when there is none.
func (ss *sessions) get(cookie string) *session {
	if cookie == "" {
		return nil
	}
	k := sha256.Sum256([]byte(cookie))
	now := ss.now()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.m[k]
	if s == nil {
		return nil
	}
	if !ss.live(s, now) {
		delete(ss.m, k)
		return nil
	}
	s.used = now
	return s
}

// drop ends cookie's session.
func (ss *sessions) drop(cookie string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.m, sha256.Sum256([]byte(cookie)))
}

// count is the number of sessions held (tests).
func (ss *sessions) count() int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return len(ss.m)
}

// sameSecret compares two secrets in constant time.
func sameSecret(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// loginLimiter slows down token guessing: each client address gets
// loginBurst failed logins, refilled at one per loginRefill.
type loginLimiter struct {
	mu  sync.Mutex
	m   map[string]*bucket
	now func() time.Time
}

type bucket struct {
	tokens float64
	at     time.Time
}

const (
	loginBurst  = 5
	loginRefill = 12 * time.Second
	// maxLimited bounds the addresses remembered.
	maxLimited = 10000
)

func newLoginLimiter(now func() time.Time) *loginLimiter {
	return &loginLimiter{m: map[string]*bucket{}, now: now}
}

// clientAddr is the address a request came from, without its port.
func clientAddr(r *http.Request) string {
	h, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return h
}

// allowed reports whether addr may try to log in now.
func (l *loginLimiter) allowed(addr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fill(addr).tokens >= 1
}

// failed takes one try from addr.
func (l *loginLimiter) failed(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.fill(addr)
	b.tokens = max(0, b.tokens-1)
}

// fill is addr's bucket, refilled to now (mu held).
func (l *loginLimiter) fill(addr string) *bucket {
	now := l.now()
	b := l.m[addr]
	if b == nil {
		if len(l.m) >= maxLimited {
			for k, v := range l.m {
				if v.tokens >= loginBurst || now.Sub(v.at) > loginBurst*loginRefill {
					delete(l.m, k)
				}
			}
		}
		b = &bucket{tokens: loginBurst, at: now}
		l.m[addr] = b
		return b
	}
	b.tokens = min(loginBurst, b.tokens+float64(now.Sub(b.at))/float64(loginRefill))
	b.at = now
	return b
}
