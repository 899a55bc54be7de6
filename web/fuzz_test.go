package web

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// FuzzConsole sends the console arbitrary requests — any method, path,
// query and form, with or without a session and its CSRF token — and
// checks that it never fails inside (5xx other than an unreadable
// status), and that no request without the session's CSRF token reaches
// one of the cluster's write calls.
func FuzzConsole(f *testing.F) {
	for _, seed := range []struct {
		method, target, form string
		session              bool
		csrf                 uint8
	}{
		{"GET", "/", "", true, 0},
		{"GET", "/?vp=999999&hp=-1&q=%00", "", true, 0},
		{"GET", "/act/migrate?vm=vm00001&to=host2", "", true, 0},
		{"POST", "/act/migrate", "vm=vm00001&to=host2", true, 1},
		{"POST", "/act/migrate", "vm=vm00001&to=host2", true, 2},
		{"POST", "/act/stop", "vm=vm00001&if=-", false, 0},
		{"POST", "/login", "token=vmha_op0000000001_secret-operator", false, 0},
		{"POST", "/logout", "", true, 2},
		{"GET", "/whatif?fail=host1,,host2&standby=%ff", "", true, 0},
		{"GET", "/events?since=-5h&kind=zz", "", true, 0},
		{"GET", "/vms/..%2f..%2fetc", "", true, 0},
		{"PUT", "/act/migrate", "", true, 1},
		{"GET", "/live", "", false, 0},
	} {
		f.Add(seed.method, seed.target, seed.form, seed.session, seed.csrf)
	}
	c := newFakeCluster(3, 6)
	s, err := New(Options{Backend: fakeBackend{c}, Log: zerolog.Nop(), Refresh: time.Hour})
	if err != nil {
		f.Fatal(err)
	}
	h := s.Handler()
	cookie, ss := s.sessions.create(Identity{Name: "alice", Role: RoleOperator, TokenID: "op0000000001"})
	f.Fuzz(func(t *testing.T, method, target, form string, session bool, csrf uint8) {
		if method == "" || strings.ContainsAny(method, " \t\r\n()<>@,;:\\\"/[]?={}") || !strings.HasPrefix(target, "/") || target == "/live" {
			return // not requests an HTTP server passes on (and /live streams)
		}
		if _, err := url.ParseRequestURI(target); err != nil {
			return
		}
		vals, err := url.ParseQuery(form)
		if err != nil {
			vals = url.Values{}
		}
		vals.Del("csrf")
		switch csrf % 3 {
		case 1:
			vals.Set("csrf", ss.csrf)
		case 2:
			vals.Set("csrf", "forged")
		}
		r, err := http.NewRequest(method, "https://console.example"+target, strings.NewReader(vals.Encode()))
		if err != nil {
			return // a method or target no server would pass on
		}
		r.RemoteAddr, r.Host = "192.0.2.1:1234", "console.example"
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if session {
			r.AddCookie(&http.Cookie{Name: cookieSession, Value: cookie})
		}
		before := len(c.callList())
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code >= 500 && w.Code != http.StatusServiceUnavailable {
			t.Fatalf("%s %s: %d\n%s", method, target, w.Code, w.Body)
		}
		for _, call := range c.callList()[before:] {
			if strings.Contains(call, `"dry_run":true`) {
				continue
			}
			if !session || csrf%3 != 1 {
				t.Fatalf("%s %s (session %v, csrf mode %d) reached the API's write call %q", method, target, session, csrf%3, call)
			}
		}
	})
}
