package web

import (
	"context"
	"errors"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/vmha/vmha/api"
)

// routes are the console's pages, its live stream, its actions and its
// static files.
func (s *Server) routes() {
	m := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix("/static/", http.FileServer(http.FS(static)))
	m.Handle("GET /static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=300")
		files.ServeHTTP(w, r)
	}))
	m.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/static/favicon.svg", http.StatusMovedPermanently)
	})
	m.HandleFunc("GET /login", s.loginPage)
	m.HandleFunc("POST /login", s.login)
	m.HandleFunc("POST /logout", s.withSession(s.logout))
	m.HandleFunc("GET /live", s.withSession(s.live))
	m.HandleFunc("GET /{$}", s.withSession(s.overview))
	s.pageRoutes(m)
	s.actionRoutes(m)
	m.HandleFunc("/", s.withSession(func(w http.ResponseWriter, r *http.Request, ss *session) {
		s.fail(w, r, ss, http.StatusNotFound, "There is no page "+r.URL.Path+".")
	}))
	s.mux = m
}

type sessionHandler func(w http.ResponseWriter, r *http.Request, ss *session)

// withSession admits requests of a live session whose token still holds.
// Without one, a page asks the browser to log in; anything else is
// refused (the live stream and actions are not pages to come back to).
func (s *Server) withSession(h sessionHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var ss *session
		c, err := r.Cookie(cookieSession)
		if err == nil {
			ss = s.sessions.get(c.Value)
		}
		if ss != nil {
			// A token's owner and role never change; what can change is
			// that it is revoked or expired, which ends the session.
			if _, ok := s.be.Check(ss.id.TokenID); !ok {
				s.sessions.drop(c.Value)
				ss = nil
			}
		}
		if ss == nil {
			if r.Method == http.MethodGet && r.URL.Path != "/live" && r.Header.Get(headerPartial) == "" {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			http.Error(w, "not logged in (no session, or it ended): log in again", http.StatusUnauthorized)
			return
		}
		h(w, r, ss)
	}
}

// loginData is the login page's.
type loginData struct {
	Next  string
	Error string
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	s.showLogin(w, r, http.StatusOK, "")
}

func (s *Server) showLogin(w http.ResponseWriter, r *http.Request, code int, msg string) {
	// One value per browser while it has one: a second login page (another
	// tab, or a request the browser makes on its own) must not invalidate
	// the form already shown.
	v := randomString(24)
	if c, err := r.Cookie(cookieLogin); err == nil && len(c.Value) == len(v) {
		v = c.Value
	}
	http.SetCookie(w, &http.Cookie{Name: cookieLogin, Value: v, Path: "/login", Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: 900})
	s.render(w, r, code, "login", &page{Title: "Log in", Self: s.be.Self(), CSRF: v, Data: loginData{Next: safeNext(r.FormValue("next")), Error: msg}})
}

// safeNext keeps a post-login address on this console: a path, never
// another site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return "/"
	}
	return next
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form: "+err.Error(), http.StatusBadRequest)
		return
	}
	c, err := r.Cookie(cookieLogin)
	if err != nil || !sameSecret(c.Value, r.PostFormValue("csrf")) || !sameOrigin(r) {
		s.showLogin(w, r, http.StatusForbidden, "The login form had expired or came from another page. Try again.")
		return
	}
	addr := clientAddr(r)
	if !s.logins.allowed(addr) {
		s.log.Warn().Str("remote", addr).Msg("web: login refused: too many failed tries")
		s.showLogin(w, r, http.StatusTooManyRequests, "Too many failed logins from your address. Wait a minute and try again.")
		return
	}
	id, err := s.be.Login(strings.TrimSpace(r.PostFormValue("token")))
	if err != nil {
		s.logins.failed(addr)
		// The token is not logged: it may be a real one mistyped.
		s.log.Warn().Str("remote", addr).Msg("web: login refused: token not valid")
		s.showLogin(w, r, http.StatusUnauthorized, ErrBadToken.Error())
		return
	}
	cookie, _ := s.sessions.create(id)
	http.SetCookie(w, &http.Cookie{Name: cookieSession, Value: cookie, Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.SetCookie(w, &http.Cookie{Name: cookieLogin, Value: "", Path: "/login", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	s.log.Info().Str("principal", id.Name).Str("role", id.Role).Str("token_id", id.TokenID).Str("remote", addr).Msg("web: logged in")
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, ss *session) {
	if !s.checkForm(w, r, ss) {
		return
	}
	if c, err := r.Cookie(cookieSession); err == nil {
		s.sessions.drop(c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: cookieSession, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// sameOrigin refuses a request another site's page made: the browser says
// where a request comes from (Sec-Fetch-Site, Origin); one that says
// nothing (an old browser, a script) passes on the CSRF token alone.
func sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return false
	}
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return false
		}
	}
	return true
}

// checkForm admits a POST of this session's own pages: its CSRF token
// and, where the browser tells, its origin. A refusal is answered here.
func (s *Server) checkForm(w http.ResponseWriter, r *http.Request, ss *session) bool {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form: "+err.Error(), http.StatusBadRequest)
		return false
	}
	if !sameSecret(ss.csrf, r.PostFormValue("csrf")) || !sameOrigin(r) {
		s.log.Warn().Str("principal", ss.id.Name).Str("path", r.URL.Path).Str("remote", clientAddr(r)).Msg("web: refused a form without this session's CSRF token")
		http.Error(w, "refused: this form did not come from your session's own page (missing or wrong CSRF token). Reload the page and try again.", http.StatusForbidden)
		return false
	}
	return true
}

// base is the page frame of a session's page, from the shared snapshot.
func (s *Server) base(r *http.Request, ss *session, title, nav string) (*page, *snapshot) {
	sn := s.snap.get(r.Context())
	p := &page{Title: title, Nav: nav, Self: s.be.Self(), User: &ss.id, CSRF: ss.csrf, Version: sn.version, Live: true, At: s.now()}
	if r.Header.Get(headerPartial) == "" {
		// The flash sits outside the part the live script swaps.
		p.Flash, p.FlashError = ss.takeFlash()
	}
	if sn.err != nil {
		p.FetchError = sn.err.Error()
	}
	if st := sn.st; st != nil {
		if !st.At.IsZero() {
			p.At = st.At
		}
		if st.Leader == "" || !st.Quorum.Quorate {
			p.CutOff = "This host (" + st.Node + ") has no quorate leader to ask: " + st.Quorum.Explanation + " What you see is its own last-known view; actions are refused until it rejoins."
		}
	}
	return p, sn
}

// fail shows an error page in the frame.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, ss *session, code int, msg string) {
	p, _ := s.base(r, ss, http.StatusText(code), "")
	p.Live = false
	p.Data = msg
	s.render(w, r, code, "error", p)
}

// apiError is an API error in words for a page.
func apiError(err error) string {
	var se *api.StatusError
	if errors.As(err, &se) {
		if se.Code == http.StatusForbidden {
			return "Refused: " + se.Body.Error
		}
		return se.Body.Error
	}
	return err.Error()
}

// intParam is a positive integer query parameter (def when absent or bad).
func intParam(r *http.Request, name string, def int) int {
	v, err := strconv.Atoi(r.URL.Query().Get(name))
	if err != nil || v < 1 {
		return def
	}
	return v
}

// live is the server-sent event stream a page follows: the snapshot's
// version whenever it changes, and a comment now and then to keep proxies
// from closing it. It ends when the session or its token does.
func (s *Server) live(w http.ResponseWriter, r *http.Request, ss *session) {
	if !s.streams.acquire() {
		http.Error(w, "too many live pages open on this host; close some", http.StatusServiceUnavailable)
		return
	}
	defer s.streams.release()
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	var last uint64
	tick := time.NewTicker(s.snap.refresh)
	defer tick.Stop()
	quiet := 0
	for {
		sn := s.snap.get(r.Context())
		msg := ""
		if sn.version != last {
			last = sn.version
			msg = "event: version\ndata: " + strconv.FormatUint(sn.version, 10) + "\n\n"
		} else if quiet++; quiet%15 == 0 {
			msg = ": still here\n\n"
		}
		if msg != "" {
			_ = rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if _, err := w.Write([]byte(msg)); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
		}
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
		if _, ok := s.be.Check(ss.id.TokenID); !ok || s.sessionGone(r) {
			_, _ = w.Write([]byte("event: logout\ndata: session ended\n\n"))
			_ = rc.Flush()
			return
		}
	}
}

// sessionGone reports whether r's session has ended (logout, expiry).
func (s *Server) sessionGone(r *http.Request) bool {
	c, err := r.Cookie(cookieSession)
	return err != nil || s.sessions.get(c.Value) == nil
}

// streamLimit bounds the live streams a host keeps open.
type streamLimit chan struct{}

func (l streamLimit) acquire() bool {
	select {
	case l <- struct{}{}:
		return true
	default:
		return false
	}
}
func (l streamLimit) release() { <-l }

// get reads path from the API as the session's principal into out, and
// says what went wrong in words ("" when nothing did): a page shows what
// it could read and says what it could not.
func (s *Server) get(ctx context.Context, ss *session, path string, out any) string {
	if err := s.be.API(ss.id).Do(ctx, http.MethodGet, path, nil, out, nil); err != nil {
		return apiError(err)
	}
	return ""
}

// ctxTimeout is the budget of one API call a page makes.
func ctxTimeout(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), 15*time.Second)
}
