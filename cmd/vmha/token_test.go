package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vmha/vmha/api"
)

// vmha token: bad flags never reach the daemon (exit 2); create prints
// the token once on stdout and the warning on stderr; revoke refuses a
// pasted token without repeating it.
func TestTokenCommands(t *testing.T) {
	var got []api.TokenRequest
	var revoked []string
	const tok = "vmha_3f2a9c01b7de_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2U"
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+api.PathTokens, func(w http.ResponseWriter, r *http.Request) {
		var req api.TokenRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		got = append(got, req)
		_ = json.NewEncoder(w).Encode(api.TokenCreated{ID: "3f2a9c01b7de", Token: tok, Owner: req.Owner, Role: req.Role, Expires: time.Now().Add(req.TTL)})
	})
	mux.HandleFunc("DELETE "+api.PathTokens+"/{id}", func(w http.ResponseWriter, r *http.Request) {
		revoked = append(revoked, r.PathValue("id"))
		w.WriteHeader(http.StatusNoContent)
	})
	sock := fakeDaemon(t, mux)
	for _, bad := range [][]string{
		{"token", "create", "alice", "--ttl", "8h"},
		{"token", "create", "alice", "--role", "admin", "--ttl", "8h"},
		{"token", "create", "alice", "--role", "operator"},
		{"token", "create", "alice", "--role", "operator", "--ttl", "0s"},
		{"token", "create", "alice", "--role", "operator", "--ttl", "-1h"},
		{"token", "create", "alice", "--role", "operator", "--ttl", "401d"},
		{"token", "create", "alice", "--role", "operator", "--ttl", "soon"},
		{"token", "create", "--role", "operator", "--ttl", "8h"},
		{"token", "revoke"},
		{"token", "revoke", tok},
	} {
		code, out, errOut := runCLI(append([]string{"--socket", sock}, bad...)...)
		if code != exitUsage {
			t.Errorf("vmha %v: exit %d, want %d (%s)", bad, code, exitUsage, errOut)
		}
		if strings.Contains(out+errOut, "c2VjcmV0") {
			t.Errorf("vmha %v repeated the secret: %s%s", bad, out, errOut)
		}
	}
	if len(got)+len(revoked) != 0 {
		t.Fatalf("bad input reached the daemon: %v %v", got, revoked)
	}

	code, out, errOut := runCLI("--socket", sock, "token", "create", "alice", "--role", "readonly", "--ttl", "30d", "--comment", "console")
	if code != 0 || strings.Count(out, tok) != 1 || strings.Contains(errOut, tok) || !strings.Contains(errOut, "only time") {
		t.Fatalf("create: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if len(got) != 1 || got[0].TTL != 30*24*time.Hour || got[0].Role != "readonly" || got[0].Comment != "console" || got[0].RequestedBy == "" {
		t.Fatalf("request %+v", got)
	}
	code, out, _ = runCLI("--socket", sock, "-o", "json", "token", "create", "bob", "--role", "operator", "--ttl", "8h")
	var created api.TokenCreated
	if err := json.Unmarshal([]byte(out), &created); code != 0 || err != nil || created.Token != tok {
		t.Fatalf("create -o json: exit %d %v\n%s", code, err, out)
	}
	if code, out, _ := runCLI("--socket", sock, "token", "revoke", "3f2a9c01b7de"); code != 0 || !strings.Contains(out, "token 3f2a9c01b7de revoked") || len(revoked) != 1 {
		t.Fatalf("revoke: exit %d %s %v", code, out, revoked)
	}
}

func TestParseTTL(t *testing.T) {
	for in, want := range map[string]time.Duration{"8h": 8 * time.Hour, "90m": 90 * time.Minute, "30d": 30 * 24 * time.Hour, "400d": api.MaxTokenTTL} {
		if d, err := api.ParseTTL(in); err != nil || d != want {
			t.Errorf("%s: %v %v", in, d, err)
		}
	}
	for _, in := range []string{"", "0", "0d", "-1h", "401d", "9601h", "1.5d", "d", "1w"} {
		if _, err := api.ParseTTL(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}
