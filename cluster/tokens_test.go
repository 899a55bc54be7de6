package cluster

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/config"
	"github.com/vmha/vmha/model"
)

// createToken issues a token through the API and returns the answer.
func createToken(t *testing.T, srv http.Handler, req api.TokenRequest) api.TokenCreated {
	t.Helper()
	w := call(t, srv, "POST", api.PathTokens, req)
	if w.Code != http.StatusOK {
		t.Fatalf("create token: %d %s", w.Code, w.Body)
	}
	var out api.TokenCreated
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// Tokens end to end on a real (in-memory) node: created once with the
// secret in the answer alone, listed without secret or hash, verified by
// TokenPrincipal, refused with a wrong secret, and revoked at once; bad
// requests change nothing.
func TestTokenAPI(t *testing.T) {
	n := newMemNode(t, &config.Daemon{NodeName: "h1", Admission: "open"})
	defer func() { _ = n.raft.Shutdown().Error() }()
	srv := n.authenticate(false, n.Handler(false))

	before, _ := json.Marshal(n.fsm.Copy().Config)
	for _, bad := range []struct {
		req   api.TokenRequest
		field string
	}{
		{api.TokenRequest{Owner: "alice", Role: "root", TTL: time.Hour}, "role"},
		{api.TokenRequest{Owner: "alice", Role: "operator"}, "ttl_ns"},
		{api.TokenRequest{Owner: "alice", Role: "operator", TTL: -time.Hour}, "ttl_ns"},
		{api.TokenRequest{Owner: "alice", Role: "operator", TTL: api.MaxTokenTTL + time.Second}, "ttl_ns"},
		{api.TokenRequest{Owner: " ", Role: "operator", TTL: time.Hour}, "owner"},
		{api.TokenRequest{Owner: "alice", Role: "readonly", TTL: time.Hour, Comment: "a\x00b"}, "comment"},
	} {
		w := call(t, srv, "POST", api.PathTokens, bad.req)
		var e api.Error
		_ = json.Unmarshal(w.Body.Bytes(), &e)
		if w.Code != http.StatusBadRequest || e.Field != bad.field {
			t.Errorf("%+v: %d %s, want 400 naming %s", bad.req, w.Code, w.Body, bad.field)
		}
	}
	if after, _ := json.Marshal(n.fsm.Copy().Config); string(before) != string(after) {
		t.Fatal("a refused request changed the configuration")
	}

	created := createToken(t, srv, api.TokenRequest{Owner: "alice", Role: "operator", TTL: 8 * time.Hour, Comment: "web console", RequestedBy: "mallory"})
	if created.ID == "" || !strings.HasPrefix(created.Token, "vmha_"+created.ID+"_") || created.Owner != "alice" || created.Role != "operator" {
		t.Fatalf("created %+v", created)
	}
	if d := time.Until(created.Expires); d < 7*time.Hour || d > 8*time.Hour {
		t.Fatalf("expires in %s", d)
	}
	secret := strings.TrimPrefix(created.Token, "vmha_"+created.ID+"_")
	stored := n.fsm.Copy().Config.Tokens[created.ID]
	if stored == nil || len(stored.Hash) != 64 || strings.Contains(stored.Hash, secret) {
		t.Fatalf("stored %+v", stored)
	}
	if !strings.Contains(stored.CreatedBy, `[says "mallory"]`) || !strings.HasPrefix(stored.CreatedBy, "unauthenticated") {
		t.Fatalf("created by %q: the authenticated principal, the claim as a comment", stored.CreatedBy)
	}

	w := call(t, srv, "GET", api.PathTokens, nil)
	if w.Code != http.StatusOK || strings.Contains(w.Body.String(), secret) || strings.Contains(w.Body.String(), stored.Hash) || strings.Contains(w.Body.String(), "hash") {
		t.Fatalf("list: %d %s", w.Code, w.Body)
	}
	var list []api.Token
	_ = json.Unmarshal(w.Body.Bytes(), &list)
	if len(list) != 1 || list[0].ID != created.ID || list[0].Owner != "alice" || list[0].Expired || list[0].Comment != "web console" {
		t.Fatalf("list %+v", list)
	}

	p, err := n.TokenPrincipal(created.Token)
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "alice" || p.Role != RoleOperator || p.How != "token" || p.TokenID != created.ID {
		t.Fatalf("principal %+v", p)
	}
	if got, want := p.String(), "alice (operator token "+created.ID+")"; got != want {
		t.Fatalf("principal %q, want %q", got, want)
	}
	if vp, ok := n.TokenValid(created.ID); !ok || vp != p {
		t.Fatalf("TokenValid: %+v %v", vp, ok)
	}
	wrong := "vmha_" + created.ID + "_" + base64.RawURLEncoding.EncodeToString(make([]byte, 32))
	if _, err := n.TokenPrincipal(wrong); err == nil || !strings.Contains(err.Error(), "wrong secret") {
		t.Fatalf("a wrong secret: %v", err)
	}

	// An operator token opens the operator's routes (allow), but never
	// mints another token.
	rr := httptest.NewRequest("POST", api.PathVMs+"/vm1/cleanup", strings.NewReader(`{}`))
	rr = rr.WithContext(contextWithPrincipal(rr, p))
	ww := httptest.NewRecorder()
	n.Handler(false).ServeHTTP(ww, rr)
	if ww.Code/100 != 2 {
		t.Fatalf("an operator token on an operator route: %d %s", ww.Code, ww.Body)
	}
	rr = httptest.NewRequest("POST", api.PathTokens, strings.NewReader(`{"owner":"eve","role":"operator","ttl_ns":3600000000000}`))
	rr = rr.WithContext(contextWithPrincipal(rr, p))
	ww = httptest.NewRecorder()
	n.Handler(false).ServeHTTP(ww, rr)
	if ww.Code != http.StatusForbidden || len(n.fsm.Copy().Config.Tokens) != 1 {
		t.Fatalf("a token created a token: %d %s", ww.Code, ww.Body)
	}

	if w := call(t, srv, "DELETE", api.PathTokens+"/000000000000", nil); w.Code != http.StatusNotFound {
		t.Fatalf("revoke an unknown token: %d %s", w.Code, w.Body)
	}
	if w := call(t, srv, "DELETE", api.PathTokens+"/nope", nil); w.Code != http.StatusBadRequest {
		t.Fatalf("revoke a malformed id: %d %s", w.Code, w.Body)
	}
	if w := call(t, srv, "DELETE", api.PathTokens+"/"+created.ID, api.TokenRevoke{}); w.Code != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", w.Code, w.Body)
	}
	if _, err := n.TokenPrincipal(created.Token); err == nil || !strings.Contains(err.Error(), "unknown or revoked") {
		t.Fatalf("a revoked token: %v", err)
	}
	if _, ok := n.TokenValid(created.ID); ok {
		t.Fatal("a revoked token is still valid")
	}

	w = call(t, srv, "GET", api.PathEvents+"?kind=cluster", nil)
	var evs api.Events
	_ = json.Unmarshal(w.Body.Bytes(), &evs)
	var actions []string
	for _, e := range evs.Events {
		actions = append(actions, e.Action)
		if strings.Contains(e.Reason, stored.Hash) || strings.Contains(e.Reason, secret) {
			t.Fatalf("an event holds the secret or its hash: %+v", e)
		}
	}
	if strings.Join(actions, ",") != "token-create,token-revoke" {
		t.Fatalf("events %v", actions)
	}
	if !strings.Contains(w.Body.String(), "token created for alice (operator, expires ") {
		t.Fatalf("events: %s", w.Body)
	}
}

// An expired token is refused by TokenPrincipal and TokenValid, and
// listed as expired.
func TestTokenExpired(t *testing.T) {
	n := newMemNode(t, &config.Daemon{NodeName: "h1", Admission: "open"})
	defer func() { _ = n.raft.Shutdown().Error() }()
	secret := make([]byte, tokenSecretLen)
	secret[0] = 7
	now := time.Now().UTC()
	tok := &model.Token{ID: "00000000abcd", Owner: "bob", Role: model.TokenRoleReadOnly, Hash: tokenHash(secret),
		Created: now.Add(-2 * time.Hour), Expires: now.Add(-time.Hour), CreatedBy: "root"}
	if err := n.propose(&Command{Op: "token_create", Token: tok}); err != nil {
		t.Fatal(err)
	}
	full := formatToken(tok.ID, secret)
	if _, err := n.TokenPrincipal(full); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("an expired token: %v", err)
	}
	if _, ok := n.TokenValid(tok.ID); ok {
		t.Fatal("an expired token is valid")
	}
	// The same token an hour and a half ago was good.
	if p, err := n.tokenPrincipal(full, now.Add(-90*time.Minute)); err != nil || p.Role != RoleReadOnly {
		t.Fatalf("before it expired: %+v %v", p, err)
	}
	w := call(t, n.authenticate(false, n.Handler(false)), "GET", api.PathTokens, nil)
	var list []api.Token
	_ = json.Unmarshal(w.Body.Bytes(), &list)
	if len(list) != 1 || !list[0].Expired {
		t.Fatalf("list %s", w.Body)
	}
}

// A read-only token reads, but allow refuses it every operator route,
// the token list included; a forwarded token principal keeps How and its
// token, and is refused once the token is revoked.
func TestTokenRolesAndForwarding(t *testing.T) {
	n := newMemNode(t, &config.Daemon{NodeName: "h1", Admission: "open"})
	defer func() { _ = n.raft.Shutdown().Error() }()
	srv := n.authenticate(false, n.Handler(false))
	ro := createToken(t, srv, api.TokenRequest{Owner: "auditor", Role: "readonly", TTL: time.Hour})
	p, err := n.TokenPrincipal(ro.Token)
	if err != nil || p.Role != RoleReadOnly {
		t.Fatalf("%+v %v", p, err)
	}
	h := n.Handler(false)
	for _, c := range []struct {
		method, path, body string
		code               int
	}{
		{"GET", api.PathStatus, "", http.StatusOK},
		{"GET", api.PathTokens, "", http.StatusForbidden},
		{"POST", api.PathTokens, `{"owner":"x","role":"operator","ttl_ns":1}`, http.StatusForbidden},
		{"DELETE", api.PathTokens + "/" + ro.ID, "", http.StatusForbidden},
		{"POST", api.PathVMs + "/vm1/state", `{"state":"stopped"}`, http.StatusForbidden},
		{"POST", api.PathClusterMaintenance, `{"on":true}`, http.StatusForbidden},
	} {
		r := httptest.NewRequest(c.method, c.path, strings.NewReader(c.body))
		r = r.WithContext(contextWithPrincipal(r, p))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != c.code {
			t.Errorf("readonly token %s %s: %d %s, want %d", c.method, c.path, w.Code, w.Body, c.code)
		}
		if c.code == http.StatusForbidden && !strings.Contains(w.Body.String(), "auditor (readonly token "+ro.ID+")") {
			t.Errorf("the refusal does not name the token principal: %s", w.Body)
		}
	}

	// Forwarded: the leader sees the token principal as the follower
	// authenticated it, via the follower.
	var seen []Principal
	rec := n.authenticate(false, http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { seen = append(seen, principalOf(r)) }))
	fwd := func() *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/x", nil)
		setForwardedPrincipal(r.Header, p)
		r.Header.Set(api.HeaderForwarded, "h2")
		w := httptest.NewRecorder()
		rec.ServeHTTP(w, r)
		return w
	}
	if w := fwd(); w.Code != http.StatusOK || len(seen) != 1 || seen[0].String() != "auditor (readonly token "+ro.ID+") via h2" {
		t.Fatalf("forwarded: %d %s %+v", w.Code, w.Body, seen)
	}
	if w := call(t, srv, "DELETE", api.PathTokens+"/"+ro.ID, nil); w.Code != http.StatusNoContent {
		t.Fatalf("revoke: %d", w.Code)
	}
	if w := fwd(); w.Code != http.StatusForbidden || len(seen) != 1 {
		t.Fatalf("a revoked token forwarded: %d %s", w.Code, w.Body)
	}
}

// TokenPrincipal's errors never hold the secret, whatever is wrong.
func TestTokenErrorsNeverHoldTheSecret(t *testing.T) {
	n := newMemNode(t, &config.Daemon{NodeName: "h1", Admission: "open"})
	defer func() { _ = n.raft.Shutdown().Error() }()
	srv := n.authenticate(false, n.Handler(false))
	good := createToken(t, srv, api.TokenRequest{Owner: "alice", Role: "operator", TTL: time.Hour})
	secret := strings.TrimPrefix(good.Token, "vmha_"+good.ID+"_")
	other := "A" // another secret: another last character (4 bits and 2 zero bits)
	if strings.HasSuffix(good.Token, "A") {
		other = "E"
	}
	for _, tok := range []string{
		good.Token[:len(good.Token)-1] + other,
		good.Token + "x",
		good.Token[:len(good.Token)-2],
		"vmha_000000000000_" + secret,
		"vmha_" + strings.ToUpper(good.ID) + "_" + secret,
		"VMHA_" + good.ID + "_" + secret,
		secret,
		"Bearer " + good.Token,
		"vmha_" + good.ID + "-" + secret,
		"",
	} {
		_, err := n.TokenPrincipal(tok)
		if err == nil {
			t.Errorf("%q admitted", tok)
			continue
		}
		if strings.Contains(err.Error(), secret[:16]) || (tok != "" && strings.Contains(err.Error(), tok)) {
			t.Errorf("the error holds the secret: %v", err)
		}
	}
}

// A token in a snapshot comes back with its restore.
func TestTokenSnapshotRestore(t *testing.T) {
	f := NewFSM()
	f.Read(func(s *model.State) {
		s.Config.Tokens = map[string]*model.Token{"0123456789ab": {ID: "0123456789ab", Owner: "alice", Role: "operator", Hash: strings.Repeat("0f", 32)}}
	})
	g := restored(t, f)
	if tk := g.Copy().Config.Tokens["0123456789ab"]; tk == nil || tk.Hash != strings.Repeat("0f", 32) {
		t.Fatalf("restored %+v", tk)
	}
}

// FuzzTokenParse: parseToken never panics, and what it accepts is exactly
// a token formatToken writes.
func FuzzTokenParse(f *testing.F) {
	f.Add("vmha_3f2a9c01b7de_" + base64.RawURLEncoding.EncodeToString(make([]byte, 32)))
	f.Add("vmha_3f2a9c01b7de_")
	f.Add("vmha__")
	f.Add("vmha_3f2a9c01b7de_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB")
	f.Add("vmha_3F2A9C01B7DE_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		id, secret, err := parseToken(s)
		if err != nil {
			if err != errMalformedToken {
				t.Fatalf("%q: %v", s, err)
			}
			return
		}
		if len(secret) != tokenSecretLen || formatToken(id, secret) != s {
			t.Fatalf("%q parsed as %q %x", s, id, secret)
		}
	})
}
