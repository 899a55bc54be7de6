package web

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vmha/vmha/api"
)

// browser is a minimal client of the handler: it keeps cookies (Secure
// ones too: the handler is called directly) and the last page's CSRF.
type browser struct {
	t       *testing.T
	h       http.Handler
	cookies map[string]*http.Cookie
	csrf    string
}

func newServer(t testing.TB, c *fakeCluster) *Server {
	t.Helper()
	s, err := New(Options{Backend: fakeBackend{c}, Log: zerolog.Nop(), Refresh: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newBrowser(t *testing.T, s *Server) *browser {
	return &browser{t: t, h: s.Handler(), cookies: map[string]*http.Cookie{}}
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (b *browser) do(method, path string, form url.Values, hdr map[string]string) *httptest.ResponseRecorder {
	b.t.Helper()
	var r *http.Request
	if form != nil {
		r = httptest.NewRequest(method, "https://console.example"+path, strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		r = httptest.NewRequest(method, "https://console.example"+path, nil)
	}
	for _, c := range b.cookies {
		r.AddCookie(c)
	}
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	b.h.ServeHTTP(w, r)
	for _, c := range w.Result().Cookies() {
		if c.MaxAge < 0 {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c
		}
	}
	if m := csrfRe.FindStringSubmatch(w.Body.String()); m != nil {
		b.csrf = m[1]
	}
	return w
}

func (b *browser) login(token string) *httptest.ResponseRecorder {
	b.t.Helper()
	b.do("GET", "/login", nil, nil)
	return b.do("POST", "/login", url.Values{"csrf": {b.csrf}, "token": {token}, "next": {"/"}}, nil)
}

func TestLoginSessionCookie(t *testing.T) {
	s := newServer(t, newFakeCluster(3, 6))
	b := newBrowser(t, s)
	if w := b.do("GET", "/", nil, nil); w.Code != http.StatusSeeOther || !strings.HasPrefix(w.Header().Get("Location"), "/login") {
		t.Fatalf("no session: %d %s, want a redirect to /login", w.Code, w.Header().Get("Location"))
	}
	w := b.login(opToken)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/" {
		t.Fatalf("login: %d %q: %s", w.Code, w.Header().Get("Location"), w.Body)
	}
	c := b.cookies[cookieSession]
	if c == nil || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
		t.Fatalf("session cookie %+v: want Secure, HttpOnly, SameSite=Strict", c)
	}
	w = b.do("GET", "/", nil, nil)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "vm00001") || !strings.Contains(w.Body.String(), "alice") {
		t.Fatalf("overview: %d\n%s", w.Code, w.Body)
	}
	for _, h := range []string{"Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options"} {
		if w.Header().Get(h) == "" {
			t.Errorf("no %s header", h)
		}
	}
	// Logging out needs the CSRF token too, and ends the session.
	if w := b.do("POST", "/logout", url.Values{}, nil); w.Code != http.StatusForbidden {
		t.Fatalf("logout without CSRF: %d", w.Code)
	}
	b.do("POST", "/logout", url.Values{"csrf": {b.csrf}}, nil)
	if w := b.do("GET", "/", nil, nil); w.Code != http.StatusSeeOther {
		t.Fatalf("after logout: %d, want a redirect to /login", w.Code)
	}
	if n := s.sessions.count(); n != 0 {
		t.Fatalf("%d sessions left after logout", n)
	}
}

func TestLoginRefusals(t *testing.T) {
	s := newServer(t, newFakeCluster(3, 6))
	b := newBrowser(t, s)
	b.do("GET", "/login", nil, nil)
	// No login CSRF: refused before the token is even looked at.
	if w := b.do("POST", "/login", url.Values{"token": {opToken}}, nil); w.Code != http.StatusForbidden {
		t.Fatalf("login without its CSRF value: %d", w.Code)
	}
	// Another site's form.
	b.do("GET", "/login", nil, nil)
	if w := b.do("POST", "/login", url.Values{"csrf": {b.csrf}, "token": {opToken}}, map[string]string{"Sec-Fetch-Site": "cross-site"}); w.Code != http.StatusForbidden {
		t.Fatalf("cross-site login: %d", w.Code)
	}
	// Wrong tokens: refused, then rate-limited; the token never echoes.
	for i := 0; i < loginBurst; i++ {
		w := b.login("vmha_op0000000001_wrong-guess")
		if w.Code != http.StatusUnauthorized || strings.Contains(w.Body.String(), "wrong-guess") {
			t.Fatalf("try %d: %d, or the token was echoed", i, w.Code)
		}
	}
	if w := b.login(opToken); w.Code != http.StatusTooManyRequests {
		t.Fatalf("after %d failures: %d, want 429", loginBurst, w.Code)
	}
}

func TestActionsNeedCSRFAndOperator(t *testing.T) {
	c := newFakeCluster(3, 6)
	s := newServer(t, c)
	op := newBrowser(t, s)
	op.login(opToken)
	// The confirmation page shows the cluster's dry run and changes nothing.
	w := op.do("GET", "/act/migrate?vm=vm00001&to=host3", nil, nil)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "Migrate vm00001 from host1 to host3") {
		t.Fatalf("confirm page: %d\n%s", w.Code, w.Body)
	}
	if calls := c.callList(); len(calls) != 1 || !strings.Contains(calls[0], `"dry_run":true`) {
		t.Fatalf("showing the plan made calls %q, want the dry run only", calls)
	}
	// Without the CSRF token (a forged form), or from another site: refused.
	if w := op.do("POST", "/act/migrate", url.Values{"vm": {"vm00001"}, "to": {"host3"}}, nil); w.Code != http.StatusForbidden {
		t.Fatalf("POST without CSRF: %d", w.Code)
	}
	if w := op.do("POST", "/act/migrate", url.Values{"csrf": {op.csrf}, "vm": {"vm00001"}, "to": {"host3"}}, map[string]string{"Origin": "https://evil.example"}); w.Code != http.StatusForbidden {
		t.Fatalf("POST from another origin: %d", w.Code)
	}
	if len(c.callList()) != 1 {
		t.Fatalf("refused forms reached the API: %q", c.callList())
	}
	// Confirmed: the API is called as the token's owner.
	w = op.do("POST", "/act/migrate", url.Values{"csrf": {op.csrf}, "vm": {"vm00001"}, "to": {"host3"}}, nil)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/vms/vm00001" {
		t.Fatalf("confirmed migrate: %d %s", w.Code, w.Header().Get("Location"))
	}
	calls := c.callList()
	if last := calls[len(calls)-1]; !strings.HasPrefix(last, "POST /v1/vms/vm00001/migrate by alice") || strings.Contains(last, "dry_run") {
		t.Fatalf("the migrate call was %q", last)
	}
	if w := op.do("GET", "/vms/vm00001", nil, nil); !strings.Contains(w.Body.String(), "Migrate of vm00001 to host3 started") {
		t.Fatalf("no outcome shown after the action:\n%s", w.Body)
	}
	// A read-only token sees the plan but may not act, even with a valid form.
	ro := newBrowser(t, s)
	ro.login(roToken)
	w = ro.do("GET", "/act/stop?vm=vm00002", nil, nil)
	if !strings.Contains(w.Body.String(), "read-only") || strings.Contains(w.Body.String(), `id="confirm"`) {
		t.Fatalf("read-only confirm page offers the action:\n%s", w.Body)
	}
	n := len(c.callList())
	if w := ro.do("POST", "/act/stop", url.Values{"csrf": {ro.csrf}, "vm": {"vm00002"}}, nil); w.Code != http.StatusForbidden {
		t.Fatalf("read-only POST: %d", w.Code)
	}
	if len(c.callList()) != n {
		t.Fatalf("a read-only action reached the API: %q", c.callList()[n:])
	}
	// Overview and VM pages offer no actions to a read-only session.
	if w := ro.do("GET", "/vms/vm00002", nil, nil); strings.Contains(w.Body.String(), "/act/") {
		t.Fatal("the VM page offers actions to a read-only session")
	}
}

func TestRevokedTokenEndsSession(t *testing.T) {
	c := newFakeCluster(3, 6)
	s := newServer(t, c)
	b := newBrowser(t, s)
	b.login(opToken)
	if w := b.do("GET", "/", nil, nil); w.Code != http.StatusOK {
		t.Fatalf("overview: %d", w.Code)
	}
	c.revoke(opToken)
	if w := b.do("GET", "/", nil, nil); w.Code != http.StatusSeeOther {
		t.Fatalf("after revocation: %d, want a redirect to /login", w.Code)
	}
	if w := b.do("GET", "/", nil, map[string]string{headerPartial: "1"}); w.Code != http.StatusUnauthorized {
		t.Fatalf("live refresh after revocation: %d, want 401", w.Code)
	}
}

func TestPartialIsMainOnly(t *testing.T) {
	s := newServer(t, newFakeCluster(3, 6))
	b := newBrowser(t, s)
	b.login(opToken)
	w := b.do("GET", "/", nil, map[string]string{headerPartial: "1"})
	body := w.Body.String()
	if w.Code != http.StatusOK || strings.Contains(body, "<html") || !strings.Contains(body, "vm00001") || w.Header().Get("X-Vmha-Version") == "" {
		t.Fatalf("partial: %d %q\n%s", w.Code, w.Header().Get("X-Vmha-Version"), body)
	}
}

func TestLiveStreamSendsVersions(t *testing.T) {
	c := newFakeCluster(3, 6)
	s := newServer(t, c)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	b := newBrowser(t, s)
	b.login(opToken)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/live", nil)
	req.AddCookie(b.cookies[cookieSession])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("live: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(resp.Body)
	versions := map[string]bool{}
	changed := false
	for sc.Scan() && len(versions) < 2 {
		if v, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			versions[v] = true
			if !changed {
				// A host goes down: the version changes.
				c.mu.Lock()
				c.st.Hosts[1].State = "lost"
				c.mu.Unlock()
				changed = true
			}
		}
	}
	if len(versions) < 2 {
		t.Fatalf("versions seen: %v, want a new one after the change", versions)
	}
	// Without a session the stream is refused.
	resp2, err := http.Get(srv.URL + "/live")
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusUnauthorized {
		t.Fatalf("live without a session: %d", resp2.StatusCode)
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{"/vms/a": "/vms/a", "//evil.example/": "/", "https://evil.example": "/", "": "/", "/\\evil": "/"} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEveryPageRenders(t *testing.T) {
	s := newServer(t, newFakeCluster(3, 6))
	b := newBrowser(t, s)
	b.login(opToken)
	for path, want := range map[string]string{
		"/":                          "The cluster has quorum",
		"/?show=problems":            "No VMs.",
		"/hosts/host2":               "Fencing",
		"/vms/vm00002":               "Why here",
		"/events":                    "joined",
		"/recoveries":                "recovered 1/1 VMs from host2",
		"/migrations":                "42%",
		"/whatif?fail=host1":         "vm00001",
		"/whatif?fail=nohost":        `unknown host &#34;nohost&#34;`,
		"/whatif?rebalance=1":        "score 10.0 → 8.0",
		"/act/rebalance":             "Rebalance: 1 live migrations",
		"/act/evacuate?host=zz":      "This cannot be done now",
		"/act/fence-test?host=host1": "nothing is powered off",
	} {
		w := b.do("GET", path, nil, nil)
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), want) {
			t.Errorf("%s: %d, want %q in\n%s", path, w.Code, want, w.Body)
		}
	}
	for _, path := range []string{"/hosts/nohost", "/vms/novm", "/nopage", "/act/noaction"} {
		if w := b.do("GET", path, nil, nil); w.Code != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", path, w.Code)
		}
	}
}

func TestCutOffHostSaysSo(t *testing.T) {
	c := newFakeCluster(3, 6)
	c.st.Leader, c.st.Quorum.Quorate, c.st.Quorum.Explanation = "", false, "1 of 3 voters alive, 2 needed."
	s := newServer(t, c)
	b := newBrowser(t, s)
	b.login(opToken)
	for _, path := range []string{"/", "/vms/vm00001", "/events"} {
		w := b.do("GET", path, nil, nil)
		if !strings.Contains(w.Body.String(), "has no quorate leader to ask") || !strings.Contains(w.Body.String(), "last-known view") {
			t.Fatalf("%s on a cut-off host does not say so:\n%s", path, w.Body)
		}
	}
	if w := b.do("GET", "/", nil, nil); !strings.Contains(w.Body.String(), "NO QUORUM") {
		t.Fatal("the overview of a cut-off host does not say NO QUORUM")
	}
}

// TestSnapshotReadsScaleWithTheirCost: a status read that takes long is
// not repeated sooner than five times its duration, however often pages
// ask; pages meanwhile get the snapshot they have.
func TestSnapshotReadsScaleWithTheirCost(t *testing.T) {
	var reads int
	s := newSnapshots(time.Millisecond, time.Now, func(context.Context) (*api.Status, uint64, error) {
		reads++
		time.Sleep(20 * time.Millisecond)
		return &api.Status{Node: "h1"}, 0, nil
	})
	first := s.get(context.Background())
	for end := time.Now().Add(60 * time.Millisecond); time.Now().Before(end); {
		if sn := s.get(context.Background()); sn != first {
			t.Fatalf("a new snapshot %v after the first, within 5 × its 20 ms read", time.Since(first.at))
		}
		time.Sleep(time.Millisecond)
	}
	if reads != 1 {
		t.Fatalf("%d reads", reads)
	}
}

// TestOneSessionManyRequests: a browser's pages, live refreshes and forms
// arrive at once (the race detector runs this in make test).
func TestOneSessionManyRequests(t *testing.T) {
	c := newFakeCluster(3, 30)
	s := newServer(t, c)
	b := newBrowser(t, s)
	b.login(opToken)
	h := s.Handler()
	cookie := b.cookies[cookieSession]
	done := make(chan struct{})
	for i := 0; i < 8; i++ {
		go func(i int) {
			defer func() { done <- struct{}{} }()
			for j := 0; j < 20; j++ {
				paths := []string{"/", "/vms/vm00003", "/hosts/host2", "/events", "/act/stop?vm=vm00004"}
				r := httptest.NewRequest("GET", "https://console.example"+paths[(i+j)%len(paths)], nil)
				r.AddCookie(cookie)
				if j%2 == 0 {
					r.Header.Set(headerPartial, "1")
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != http.StatusOK {
					t.Errorf("%s: %d", r.URL.Path, w.Code)
				}
			}
		}(i)
	}
	for i := 0; i < 8; i++ {
		<-done
	}
}
