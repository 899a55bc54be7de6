package labcluster

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/internal/testlab/testenv"
	"github.com/vmha/vmha/model"
)

// artifactRoot is where tests leave what a person reads after the run:
// $VMHA_ARTIFACTS (make test sets it to ./artifacts), else a folder in the
// system's temporary directory.
func artifactRoot() string {
	if root := os.Getenv("VMHA_ARTIFACTS"); root != "" {
		return root
	}
	return filepath.Join(os.TempDir(), "vmha-artifacts")
}

// artifactDir is where the browser tests leave their screenshots:
// $VMHA_ARTIFACTS/web (make test sets it to ./artifacts), else a folder in
// the system's temporary directory.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(artifactRoot(), "web")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// chrome is one headless Chromium (Debian's) driven over CDP.
type chrome struct {
	t      *testing.T
	ctx    context.Context
	shots  string
	prefix string
}

// newChrome starts Chromium with the flags a closed network needs (no
// background connections that would be refused) and trusting the lab's
// self-signed console certificates.
func newChrome(t *testing.T, prefix string) *chrome {
	t.Helper()
	path := testenv.NeedCommand(t, "chromium")
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path), chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.Headless,
		chromedp.NoSandbox, chromedp.DisableGPU, chromedp.IgnoreCertErrors, chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelA() })
	// The first run starts the browser.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return &chrome{t: t, ctx: ctx, shots: artifactDir(t), prefix: prefix}
}

// session is another browser context of the same Chromium: its own
// cookies (another user).
func (c *chrome) session() *chrome {
	ctx, cancel := chromedp.NewContext(c.ctx, chromedp.WithNewBrowserContext())
	c.t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		c.t.Fatal(err)
	}
	return &chrome{t: c.t, ctx: ctx, shots: c.shots, prefix: c.prefix}
}

// do runs steps with a time limit, failing the test with what failed.
func (c *chrome) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, 90*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		loc, _ := chromedp.Run(c.ctx, chromedp.Location())
		body, _ := chromedp.Run(c.ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText.slice(0, 3000) : ""`))
		c.t.Fatalf("%s: %v\n(at %s)\n%s", what, err, loc, body)
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](c *chrome, expr string, opts ...chromedp.EvaluateOption) T {
	c.t.Helper()
	v, err := chromedp.Run(c.ctx, chromedp.Evaluate[T](expr, opts...))
	if err != nil {
		c.t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// shot saves a full-page screenshot as NAME.png in the artefacts.
func (c *chrome) shot(name string) {
	c.t.Helper()
	png, err := chromedp.Run(c.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		c.t.Fatalf("screenshot %s: %v", name, err)
	}
	p := filepath.Join(c.shots, c.prefix+name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		c.t.Fatal(err)
	}
	c.t.Logf("screenshot %s", p)
}

// pollFor waits until the JavaScript predicate holds in the page.
func pollFor(js string, d time.Duration) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](js, chromedp.WithPollingTimeout(d), chromedp.WithPollingInterval(200*time.Millisecond))
}

// login logs in through the page with token.
func (c *chrome) login(base, token string) {
	c.t.Helper()
	c.do("log in",
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible("#token"),
		chromedp.SendKeys("#token", token),
		chromedp.Click("#login"),
		chromedp.WaitVisible("#quorum"),
	)
}

// createToken issues a token through the CLI and returns its secret.
func createToken(t *testing.T, c *Cluster, owner, role string) string {
	t.Helper()
	out, err := c.vmha(c.Hosts[0], "token", "create", owner, "--role", role, "--ttl", "1h", "-o", "json")
	if err != nil {
		t.Fatalf("token create: %v\n%s", err, out)
	}
	// The warning that it is shown only once goes to stderr (in out too).
	var tok api.TokenCreated
	if i := strings.IndexByte(string(out), '{'); i >= 0 {
		out = out[i:]
	}
	if err := json.Unmarshal(out, &tok); err != nil || tok.Token == "" {
		t.Fatalf("token create answered %s (%v)", out, err)
	}
	return tok.Token
}

// TestWebConsole drives the console of a real lab cluster in a real
// headless Chromium: log in, the overview, a host killed and its recovery
// appearing live without a reload, a VM moved from the page as its
// operator, a read-only user refused, and forged or session-less requests
// refused. Every page is saved as a screenshot (artefacts).
func TestWebConsole(t *testing.T) {
	testenv.NeedCommand(t, "chromium")
	c := startClusterWith(t, Options{Web: true})
	names := []string{"w1", "w2", "w3", "w4", "w5", "w6"}
	s := addVMs(t, c, names...)
	opToken := createToken(t, c, "alice", "operator")
	roToken := createToken(t, c, "bob", "readonly")
	vh, _ := victimWithVMs(t, s, false)
	// The console is served by a host that is neither the victim nor the
	// leader where possible: what it shows and does goes through the
	// leader.
	var console *Host
	for _, h := range c.Hosts {
		if h.Name != vh.Name && (console == nil || h.Name != s.Leader) {
			console = h
		}
	}
	base := "https://" + console.WebAddr
	ch := watchNeverTwice(t, c)

	b := newChrome(t, "")
	b.do("login page", chromedp.Navigate(base+"/"), chromedp.WaitVisible("#token"))
	b.shot("login")
	b.login(base, opToken)
	b.do("overview", pollFor(`document.querySelectorAll('tr[data-vm]').length === 6`, 20*time.Second))
	b.shot("overview")

	// A host is killed: the page follows the cluster without a reload.
	_ = eval[bool](b, `window.__vmhaMarker = true`)
	start := time.Now()
	c.Host(vh.Name).Kill()
	vmsJS, _ := json.Marshal(vh.VMs)
	b.do("recovery appears live", pollFor(fmt.Sprintf(`(() => {
		const st = document.querySelector('tr[data-host=%q] .state');
		if (!st || !/fenced/.test(st.textContent)) return false;
		for (const n of %s) {
			const row = document.querySelector('tr[data-vm="' + n + '"]');
			if (!row) return false;
			const td = row.querySelectorAll('td');
			if (td[2].textContent.trim() !== 'running' || td[4].textContent.trim() === %q) return false;
		}
		return true;
	})()`, vh.Name, vmsJS, vh.Name), 90*time.Second))
	t.Logf("the page showed %s fenced and its %d VMs running elsewhere %.1f s after the kill", vh.Name, len(vh.VMs), time.Since(start).Seconds())
	if !eval[bool](b, `window.__vmhaMarker === true && Number(document.body.dataset.swaps || 0) > 0`) {
		t.Fatal("the page reloaded (or never swapped its content) while following the recovery")
	}
	b.shot("overview-after-recovery")

	b.do("recoveries", chromedp.Navigate(base+"/recoveries"), pollFor(fmt.Sprintf(`document.body.innerText.includes(%q)`, vh.Name), 20*time.Second))
	b.shot("recoveries")
	b.do("host page", chromedp.Navigate(base+"/hosts/"+vh.Name), chromedp.WaitVisible("main h1"))
	b.shot("host")
	b.do("events", chromedp.Navigate(base+"/events"), chromedp.WaitVisible("table.events"))
	b.shot("events")
	b.do("what if", chromedp.Navigate(base+"/whatif?fail="+console.Name), chromedp.WaitVisible("main h1"))
	b.shot("whatif")

	// A VM moved from its page, as alice: the plan first, then the move.
	st := mustStatus(t, c)
	vm, from := "", ""
	for _, v := range st.VMs {
		if v.Actual == "running" && v.Host != console.Name {
			vm, from = v.Name, v.Host
			break
		}
	}
	to := console.Name
	b.do("VM page", chromedp.Navigate(base+"/vms/"+vm), chromedp.WaitVisible("#why-h"))
	b.shot("vm")
	b.do("relocate plan",
		chromedp.SetValue("#rto", to),
		chromedp.Click(`form[action="/act/relocate"] button`),
		chromedp.WaitVisible("#plan-summary"))
	b.shot("action-confirm")
	if txt := eval[string](b, `document.querySelector('#plan-summary').innerText`); !strings.Contains(txt, vm) || !strings.Contains(txt, to) {
		t.Fatalf("the plan says %q, want %s moving to %s", txt, vm, to)
	}
	b.do("relocate", chromedp.Click("#confirm"), chromedp.WaitVisible("#flash"))
	if flash := eval[string](b, `document.querySelector('#flash').innerText`); strings.Contains(flash, "refused") {
		t.Fatalf("relocate from the page: %s", flash)
	}
	if _, err := c.WaitFor(context.Background(), 60*time.Second, vm+" running on "+to, func(s *api.Status) bool {
		for _, v := range s.VMs {
			if v.Name == vm {
				return v.Host == to && v.Actual == "running" && v.ActualHost == to
			}
		}
		return false
	}); err != nil {
		t.Fatal(err)
	}
	b.do("the page follows the move", chromedp.Navigate(base+"/vms/"+vm), pollFor(fmt.Sprintf(`document.querySelector('h1').innerText.includes('running on %s')`, to), 20*time.Second))
	// The event log names alice, through her token, as who did it.
	var ev api.Events
	if err := c.Alive()[0].Client().Do(context.Background(), "GET", api.PathEvents+"?vm="+vm, nil, &ev, nil); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range ev.Events {
		if strings.HasPrefix(e.Principal, "alice (operator token ") {
			found = true
		}
	}
	if !found {
		t.Fatalf("no event of %s names alice's token as its principal: %+v", vm, ev.Events)
	}
	_ = from

	// A live migration on this lab's test-driver hosts is refused: the
	// plan says why and offers nothing to confirm.
	b.do("migrate refused", chromedp.Navigate(base+"/act/migrate?vm="+vm+"&to="+from), chromedp.WaitVisible("#refused"))
	if n := eval[int](b, `document.querySelectorAll('#confirm').length`); n != 0 {
		t.Fatal("a refused plan offers a confirmation")
	}

	// The phone's width, and a dark room.
	b.do("phone", chromedp.EmulateViewport(390, 844), chromedp.Navigate(base+"/"), chromedp.WaitVisible("#quorum"))
	b.shot("overview-phone")
	b.do("dark", chromedp.EmulateViewport(1280, 900), chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}})
		return err
	}), chromedp.Navigate(base+"/"), chromedp.WaitVisible("#quorum"))
	b.shot("overview-dark")

	// bob's token is read-only: he sees the plan, no button, and a
	// forged POST from his own page is refused.
	ro := b.session()
	ro.login(base, roToken)
	ro.do("VM page as bob", chromedp.Navigate(base+"/vms/"+vm), chromedp.WaitVisible("#why-h"))
	if n := eval[int](ro, `document.querySelectorAll('a[href^="/act/"], form[action^="/act/"]').length`); n != 0 {
		t.Fatalf("the VM page offers %d actions to a read-only user", n)
	}
	ro.do("stop plan as bob", chromedp.Navigate(base+"/act/stop?vm="+vm), chromedp.WaitVisible("#readonly"))
	ro.shot("readonly-refused")
	code := eval[int](ro, fmt.Sprintf(`(async () => {
		const csrf = document.querySelector('input[name=csrf]').value;
		const r = await fetch('/act/stop', {method: 'POST', body: new URLSearchParams({csrf: csrf, vm: %q})});
		return r.status;
	})()`, vm), chromedp.EvalAwaitPromise)
	if code != http.StatusForbidden {
		t.Fatalf("bob's POST /act/stop: %d, want 403", code)
	}

	// Without a session, or without the session's CSRF token: refused.
	noSessionAndCSRF(t, base, opToken, vm)
	st = mustStatus(t, c)
	for _, v := range st.VMs {
		if v.Name == vm && v.Target != model.TargetStarted && v.Target != "" {
			t.Fatalf("a refused request changed %s's target to %s", vm, v.Target)
		}
	}
	ch.verify(t)
}

// noSessionAndCSRF checks the console's refusals with a plain HTTP client:
// an action without a session, and one with a session but no CSRF token.
func noSessionAndCSRF(t *testing.T, base, token, vm string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 10 * time.Second,
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, //nolint:gosec // the lab's self-signed console certificate
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	post := func(path string, form url.Values) int {
		resp, err := hc.PostForm(base+path, form)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("/act/stop", url.Values{"vm": {vm}}); code != http.StatusUnauthorized {
		t.Fatalf("POST /act/stop without a session: %d, want 401", code)
	}
	// Log in for a session (the login form's CSRF value from its page).
	resp, err := hc.Get(base + "/login")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF value on the login page:\n%s", page)
	}
	if code := post("/login", url.Values{"csrf": {string(m[1])}, "token": {token}}); code != http.StatusSeeOther {
		t.Fatalf("login: %d", code)
	}
	if code := post("/act/stop", url.Values{"vm": {vm}}); code != http.StatusForbidden {
		t.Fatalf("POST /act/stop with a session but no CSRF token: %d, want 403", code)
	}
	if code := post("/act/stop", url.Values{"vm": {vm}, "csrf": {"forged"}}); code != http.StatusForbidden {
		t.Fatalf("POST /act/stop with a forged CSRF token: %d, want 403", code)
	}
}

// migrateFromConsole moves g1 live from the console's VM page (the real
// QEMU lab of TestLiveMigrationThroughTheCluster): the plan says live, the
// migrations page shows its progress while it runs, and it ends live.
func (m *migrationLab) migrateFromConsole() {
	t, c := m.t, m.c
	s := mustStatus(t, c)
	from, to := "", ""
	for _, v := range s.VMs {
		if v.Name == "g1" {
			from = v.Host
		}
	}
	to = "host1"
	if from == "host1" {
		to = "host2"
	}
	token := createToken(t, c, "carol", "operator")
	base := "https://" + c.Host(from).WebAddr
	b := newChrome(t, "live-")
	b.login(base, token)
	b.do("migrate plan", chromedp.Navigate(base+"/vms/g1"), chromedp.WaitVisible("#why-h"),
		chromedp.SetValue("#to", to), chromedp.Click("#migrate"), chromedp.WaitVisible("#plan-summary"))
	if txt := eval[string](b, `document.querySelector('main').innerText`); !strings.Contains(txt, "Migrate g1 from "+from+" to "+to) || !strings.Contains(txt, "keeps running") {
		t.Fatalf("the migrate plan says:\n%s", txt)
	}
	b.shot("migrate-confirm")
	b.do("migrate", chromedp.Click("#confirm"), chromedp.WaitVisible("#flash"))
	// The migrations page, live: the move with its progress, until it ends.
	b.do("migrations page", chromedp.Navigate(base+"/migrations"), chromedp.WaitVisible("table.moves"))
	// The page refreshes itself while a move runs: it shows the move with
	// its progress, then (the move over) no longer shows it, all without a
	// reload. How many percentages it catches between depends on how fast
	// the copy goes (one sample of a 128 MiB guest can be the whole move).
	_ = eval[bool](b, `window.__vmhaMarker = true`)
	seen := map[int]bool{}
	shot, shotUnderWay, gone := false, false, false
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		pct := eval[int](b, `(() => { const p = document.querySelector('tr[data-vm="g1"] progress'); return p ? Number(p.value) : -1; })()`)
		if pct >= 0 {
			seen[pct] = true
			// The first sample, and again the first with a bar under way.
			if !shot || (pct > 0 && !shotUnderWay) {
				b.shot("migrations")
				shot, shotUnderWay = true, pct > 0
			}
		}
		if len(seen) > 0 && eval[bool](b, `document.querySelector('tr[data-vm="g1"]') === null`) {
			gone = true
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(seen) == 0 || !gone || !eval[bool](b, `window.__vmhaMarker === true`) {
		t.Fatalf("the migrations page showed g1's progress at %v %%, gone afterwards: %v (want the move shown, then gone, without a reload)", seen, gone)
	}
	t.Logf("the migrations page showed g1 at %d distinct percentages, then the move gone, without a reload", len(seen))
	st, err := c.WaitFor(context.Background(), 60*time.Second, "g1 on "+to, func(s *api.Status) bool {
		for _, v := range s.VMs {
			if v.Name == "g1" {
				return v.Host == to && v.MigratingFrom == "" && v.State == "running"
			}
		}
		return false
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range st.VMs {
		if v.Name == "g1" && (v.LastMove == nil || v.LastMove.Outcome != model.MoveLive) {
			t.Fatalf("g1's move from the console ended %+v, want live", v.LastMove)
		}
	}
}
