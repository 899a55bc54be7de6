package statemachine

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vmha/vmha/cluster/command"
	"github.com/vmha/vmha/model"
)

func testToken(id string) *model.Token {
	return &model.Token{ID: id, Owner: "alice", Role: model.TokenRoleOperator, Hash: strings.Repeat("5e", 32),
		Created: at, Expires: at.Add(30 * 24 * time.Hour), CreatedBy: "root on h1", Comment: "console"}
}

// Tokens are created and revoked through the log, each recorded in the
// event log with its principal and never its hash; bad or unknown ones are
// refused and change nothing.
func TestTokenApply(t *testing.T) {
	s := lifecycleState(t)
	tok := testToken("3f2a9c01b7de")
	must(t, s, &command.Command{Op: command.OpTokenCreate, At: at, By: "root on h1", Token: tok})
	tok.Owner = "changed" // the state keeps its own copy
	if got := s.Config.Tokens["3f2a9c01b7de"]; got == nil || got.Owner != "alice" || got.Hash != strings.Repeat("5e", 32) {
		t.Fatalf("token kept as %+v", got)
	}
	if c := s.Clone(); c.Config.Tokens["3f2a9c01b7de"] == s.Config.Tokens["3f2a9c01b7de"] || c.Config.Tokens["3f2a9c01b7de"].Owner != "alice" {
		t.Fatal("a clone shares or lacks the token")
	}
	before := snapshot(s)
	bad := testToken("3f2a9c01b7de")
	for _, c := range []struct {
		name string
		cmd  *command.Command
	}{
		{"the same id again", &command.Command{Op: command.OpTokenCreate, At: at, Token: bad}},
		{"no token", &command.Command{Op: command.OpTokenCreate, At: at}},
		{"a bad hash", &command.Command{Op: command.OpTokenCreate, At: at, Token: &model.Token{ID: "000000000001", Owner: "bob", Role: "readonly", Hash: "x", Created: at, Expires: at.Add(time.Hour), CreatedBy: "root"}}},
		{"revoke an unknown id", &command.Command{Op: command.OpTokenRevoke, At: at, Name: "000000000002"}},
		{"revoke a malformed id", &command.Command{Op: command.OpTokenRevoke, At: at, Name: "../etc"}},
	} {
		if err := Apply(s, c.cmd); err == nil {
			t.Errorf("%s: applied", c.name)
		}
		if snapshot(s) != before {
			t.Fatalf("%s: a refused command changed the state", c.name)
		}
	}
	var nf *command.NotFoundError
	if err := Apply(s, &command.Command{Op: command.OpTokenRevoke, At: at, Name: "000000000002"}); !errors.As(err, &nf) {
		t.Fatalf("revoking an unknown token: %v", err)
	}
	must(t, s, &command.Command{Op: command.OpTokenRevoke, At: at, By: "carol on h2", Name: "3f2a9c01b7de"})
	if len(s.Config.Tokens) != 0 {
		t.Fatalf("tokens after revoking: %v", s.Config.Tokens)
	}
	var got []string
	for _, e := range s.Status.Events {
		if strings.HasPrefix(e.Action, "token-") {
			got = append(got, fmt.Sprintf("%s %s %s %s: %s", e.Kind, e.Object, e.Action, e.Principal, e.Reason))
		}
		if strings.Contains(fmt.Sprintf("%+v", e), "5e5e5e") {
			t.Fatalf("an event holds the hash: %+v", e)
		}
	}
	want := []string{
		"cluster 3f2a9c01b7de token-create root on h1: token created for alice (operator, expires 2027-01-04 03:12 UTC)",
		"cluster 3f2a9c01b7de token-revoke carol on h2: token 3f2a9c01b7de revoked (alice, operator)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// The number of tokens is bounded: one past model.MaxTokens is refused
// with a clear error.
func TestTokenLimit(t *testing.T) {
	s := model.NewState()
	for i := range model.MaxTokens {
		must(t, s, &command.Command{Op: command.OpTokenCreate, At: at, Token: testToken(fmt.Sprintf("%012x", i))})
	}
	err := Apply(s, &command.Command{Op: command.OpTokenCreate, At: at, Token: testToken("ffffffffffff")})
	var ce *command.ConflictError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "revoke some") {
		t.Fatalf("token %d: %v", model.MaxTokens+1, err)
	}
	if len(s.Config.Tokens) != model.MaxTokens {
		t.Fatalf("%d tokens kept", len(s.Config.Tokens))
	}
}
