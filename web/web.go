// Package web is vmha's web console: the cluster at a glance, live, and
// the common actions with their consequences shown before anything is done.
//
// The console is a client of the cluster's own API. Every page reads the
// API, and every action calls it, in process, as the session's principal
// (the owner of the token that logged in), so the console has the same
// routes, the same roles and the same event log as the CLI: it cannot do
// anything the CLI could not, and it records who did it the same way.
//
// Pages are rendered on the server (html/template) from one status
// snapshot shared by every browser of this host; a small script follows a
// server-sent event stream and swaps the page's main part when the cluster
// changes, so nothing reloads. No asset comes from outside the binary.
package web

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"github.com/vmha/vmha/api"
)

// Roles a console identity can have: the CLI's operator and readonly.
const (
	RoleOperator = "operator"
	RoleReadOnly = "readonly"
)

// Identity is who a session acts as: the owner of the token it logged in
// with, and that token's role.
type Identity struct {
	Name    string
	Role    string
	TokenID string
}

// Operator reports whether the identity may act (not only read).
func (id Identity) Operator() bool { return id.Role == RoleOperator }

// ErrBadToken is Backend.Login's answer to a token that is not valid
// (unknown, revoked, expired or wrong). It says no more, on purpose.
var ErrBadToken = errors.New("this token is not valid (unknown, revoked or expired)")

// Backend is the cluster as the console sees it. The node implements it
// (cluster.Node.Console); tests and the scale benchmark use a fake.
type Backend interface {
	// Self names the host serving the console.
	Self() string
	// Login checks an API token (vmha token create) and names its owner.
	// Any error means "not valid"; the token never appears in it.
	Login(token string) (Identity, error)
	// Check re-checks a session's token: false once it is revoked or
	// expired, so that revocation ends sessions at their next request.
	Check(tokenID string) (Identity, bool)
	// API is the cluster's API called in process as id.
	API(id Identity) *api.Client
}

// Options configure a console.
type Options struct {
	Backend Backend
	Log     zerolog.Logger
	// SessionIdle ends a session unused that long (default 30 min);
	// SessionMax ends any session that long after its login (default
	// 12 h); a session never outlives its token.
	SessionIdle time.Duration
	SessionMax  time.Duration
	// Refresh is how old the shared status snapshot may get before a
	// page or the live stream fetches a new one (default 1 s).
	Refresh time.Duration
	// Now is the clock (tests); nil: time.Now.
	Now func() time.Time
}

// maxStreams bounds the live pages a host follows at once.
const maxStreams = 256

// Server is one host's console.
type Server struct {
	be       Backend
	log      zerolog.Logger
	now      func() time.Time
	sessions *sessions
	logins   *loginLimiter
	snap     *snapshots
	streams  streamLimit
	pages    *renderer
	mux      *http.ServeMux
	// reader is the identity of the shared snapshot's reads.
	reader Identity
}

// New makes a console.
func New(o Options) (*Server, error) {
	if o.Backend == nil {
		return nil, errors.New("web: no backend")
	}
	if o.SessionIdle <= 0 {
		o.SessionIdle = 30 * time.Minute
	}
	if o.SessionMax <= 0 {
		o.SessionMax = 12 * time.Hour
	}
	if o.Refresh <= 0 {
		o.Refresh = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	r, err := newRenderer()
	if err != nil {
		return nil, err
	}
	s := &Server{
		be: o.Backend, log: o.Log, now: o.Now,
		sessions: newSessions(o.SessionIdle, o.SessionMax, o.Now),
		logins:   newLoginLimiter(o.Now),
		pages:    r,
		streams:  make(streamLimit, maxStreams),
		reader:   Identity{Name: "web console on " + o.Backend.Self(), Role: RoleReadOnly},
	}
	s.snap = newSnapshots(o.Refresh, o.Now, func(ctx context.Context) (*api.Status, uint64, error) {
		c := s.be.API(s.reader)
		st, err := c.Status(ctx)
		if err != nil {
			return nil, 0, err
		}
		var ev api.Events
		_ = c.Do(ctx, http.MethodGet, api.PathEvents+"?limit=1", nil, &ev, nil)
		return st, ev.Last, nil
	})
	s.routes()
	return s, nil
}

// Handler is the console's HTTP handler, with its security headers.
func (s *Server) Handler() http.Handler { return secureHeaders(s.mux) }

// secureHeaders sets what every answer carries: nothing but the console's
// own scripts and styles runs, no page frames it, nothing is cached.
func secureHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Strict-Transport-Security", "max-age=31536000")
		if hd.Get("Cache-Control") == "" {
			hd.Set("Cache-Control", "no-store")
		}
		h.ServeHTTP(w, r)
	})
}
