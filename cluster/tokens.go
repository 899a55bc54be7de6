package cluster

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/cluster/command"
	"github.com/vmha/vmha/model"
)

// API tokens (docs/tokens.md): operators issue them (vmha token create)
// for the web console, which takes one as a login and authenticates each
// request with TokenPrincipal, then TokenValid on every request of the
// session it opened. The replicated state keeps the SHA-256 of each
// secret only: the secret is in the leader's answer to its creation and
// nowhere else, neither in the log, nor in errors, events or status.

// tokenSecretLen is the secret's length in bytes.
const tokenSecretLen = 32

// tokenLen is a token's length: the prefix, the ID, "_" and the secret in
// unpadded base64url.
var tokenLen = len(api.TokenPrefix) + command.TokenIDLen + 1 + base64.RawURLEncoding.EncodedLen(tokenSecretLen)

// errMalformedToken is the answer for anything that is not a token. It
// never repeats its input, which may be a secret pasted wrong.
var errMalformedToken = fmt.Errorf("not a vmha API token (want %s<id>_<secret>, as vmha token create prints it)", api.TokenPrefix)

// formatToken is the token the bearer gets: vmha_<id>_<secret>.
func formatToken(id string, secret []byte) string {
	return api.TokenPrefix + id + "_" + base64.RawURLEncoding.EncodeToString(secret)
}

// parseToken splits a token into its ID and its secret's bytes.
func parseToken(tok string) (id string, secret []byte, err error) {
	rest, ok := strings.CutPrefix(tok, api.TokenPrefix)
	if !ok || len(tok) != tokenLen || rest[command.TokenIDLen] != '_' {
		return "", nil, errMalformedToken
	}
	id = rest[:command.TokenIDLen]
	if command.ValidTokenID(id) != nil {
		return "", nil, errMalformedToken
	}
	secret, err = base64.RawURLEncoding.Strict().DecodeString(rest[command.TokenIDLen+1:])
	if err != nil || len(secret) != tokenSecretLen {
		return "", nil, errMalformedToken
	}
	return id, secret, nil
}

// tokenHash is what the state keeps of a secret.
func tokenHash(secret []byte) string {
	sum := sha256.Sum256(secret)
	return hex.EncodeToString(sum[:])
}

// tokenOf reads token id from the local replicated state, under the read
// lock and without copying the state (any host can verify a token).
func (n *Node) tokenOf(id string) (model.Token, bool) {
	var t model.Token
	var ok bool
	n.fsm.Read(func(s *model.State) {
		if p := s.Config.Tokens[id]; p != nil {
			t, ok = *p, true
		}
	})
	return t, ok
}

func principalOfToken(t model.Token) Principal {
	return Principal{Name: t.Owner, Role: Role(t.Role), How: "token", TokenID: t.ID}
}

// TokenPrincipal authenticates an API token (vmha_<id>_<secret>) against
// this host's replicated state: the ID must name a token, the secret's
// SHA-256 match its hash (compared in constant time), and the token not
// have expired. The error never holds the secret.
func (n *Node) TokenPrincipal(token string) (Principal, error) {
	return n.tokenPrincipal(token, time.Now())
}

func (n *Node) tokenPrincipal(token string, now time.Time) (Principal, error) {
	id, secret, err := parseToken(token)
	if err != nil {
		return Principal{}, err
	}
	got := tokenHash(secret)
	t, ok := n.tokenOf(id)
	if !ok {
		return Principal{}, fmt.Errorf("token %s is unknown or revoked", id)
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(t.Hash)) != 1 {
		return Principal{}, fmt.Errorf("token %s: wrong secret", id)
	}
	if t.Expired(now) {
		return Principal{}, fmt.Errorf("token %s expired at %s", id, t.Expires.UTC().Format(time.RFC3339))
	}
	if t.Role != model.TokenRoleOperator && t.Role != model.TokenRoleReadOnly {
		return Principal{}, fmt.Errorf("token %s has an unknown role", id)
	}
	return principalOfToken(t), nil
}

// TokenValid re-checks a token a session was opened with: it still
// exists (not revoked) and has not expired. A session calls it on every
// request, so that a revocation takes effect at once. The principal is
// the token's as the state has it now.
func (n *Node) TokenValid(id string) (Principal, bool) {
	return n.tokenValid(id, time.Now())
}

func (n *Node) tokenValid(id string, now time.Time) (Principal, bool) {
	t, ok := n.tokenOf(id)
	if !ok || t.Expired(now) || (t.Role != model.TokenRoleOperator && t.Role != model.TokenRoleReadOnly) {
		return Principal{}, false
	}
	return principalOfToken(t), true
}

// recheckToken checks a forwarded principal that a host authenticated
// by a token: the token must still be valid here, with the same owner and
// role (a revocation reaches the leader first).
func (n *Node) recheckToken(p Principal) error {
	if p.How != "token" {
		return nil
	}
	tp, ok := n.TokenValid(p.TokenID)
	if !ok || tp.Name != p.Name || tp.Role != p.Role {
		return fmt.Errorf("forwarded token principal %q: the token is unknown, revoked, expired or not %s's", p.Name, p.Name)
	}
	return nil
}

// CreateToken issues an API token: a new ID and 32 random bytes of
// secret; the command carries the secret's hash only. The answer is the
// only place the token is ever shown.
func (c *Coordinator) CreateToken(req api.TokenRequest, by string) (*api.TokenCreated, error) {
	if req.Role != model.TokenRoleOperator && req.Role != model.TokenRoleReadOnly {
		return nil, &ValidationError{Field: "role", Err: fmt.Errorf("unknown role %q: operator or readonly", req.Role)}
	}
	if err := api.CheckTTL(req.TTL); err != nil {
		return nil, &ValidationError{Field: "ttl_ns", Err: err}
	}
	secret := make([]byte, tokenSecretLen)
	_, _ = rand.Read(secret) // never fails (crypto/rand)
	now := time.Now().UTC().Truncate(time.Second)
	t := &model.Token{
		ID: newID(""), Owner: strings.TrimSpace(req.Owner), Role: req.Role, Hash: tokenHash(secret),
		Created: now, Expires: now.Add(req.TTL), CreatedBy: by, Comment: strings.TrimSpace(req.Comment),
	}
	if err := command.ValidateToken(t); err != nil {
		return nil, err
	}
	if err := c.n.propose(&Command{Op: command.OpTokenCreate, By: by, Token: t}); err != nil {
		return nil, err
	}
	c.log.Info().Str("token", t.ID).Str("owner", t.Owner).Str("role", t.Role).Time("expires", t.Expires).Str("by", by).Msg("api token created")
	return &api.TokenCreated{ID: t.ID, Token: formatToken(t.ID, secret), Owner: t.Owner, Role: t.Role, Expires: t.Expires}, nil
}

// RevokeToken removes token id: from its entry on, no host admits it.
func (c *Coordinator) RevokeToken(id, by string) error {
	if err := command.ValidTokenID(id); err != nil {
		return err
	}
	if err := c.n.propose(&Command{Op: command.OpTokenRevoke, Name: id, By: by}); err != nil {
		return err
	}
	c.log.Warn().Str("token", id).Str("by", by).Msg("api token revoked")
	return nil
}

// tokens lists the tokens, oldest first, without their hashes.
func tokens(s *model.State, now time.Time) []api.Token {
	out := make([]api.Token, 0, len(s.Config.Tokens))
	for _, t := range s.Config.Tokens {
		out = append(out, api.Token{ID: t.ID, Owner: t.Owner, Role: t.Role, Created: t.Created, Expires: t.Expires,
			CreatedBy: t.CreatedBy, Comment: t.Comment, Expired: t.Expired(now)})
	}
	slices.SortFunc(out, func(a, b api.Token) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

func (n *Node) handleTokens(w http.ResponseWriter, _ *http.Request, _ []byte) {
	var out []api.Token
	n.fsm.Read(func(s *model.State) { out = tokens(s, time.Now()) })
	writeJSON(w, http.StatusOK, out)
}

// errTokenByToken refuses a new token to a principal that holds one: a
// token never mints another, so a stolen one cannot outlive itself.
var errTokenByToken = errors.New("a token cannot create tokens: use vmha token create with the socket or an operator certificate")

// tokenRoutes are the routes of this file, added by Handler: operators
// only (tokens are security data, not for read-only principals).
func (n *Node) tokenRoutes(add func(string, http.HandlerFunc, []Role), op []Role) {
	add("GET "+api.PathTokens, n.leaderRead(n.handleTokens), op)
	create := jsonCall(func(r *http.Request, req api.TokenRequest) (any, error) {
		return nilIfErr(n.coord.CreateToken(req, actor(r, req.RequestedBy)))
	})
	add("POST "+api.PathTokens, n.leaderWrite(func(w http.ResponseWriter, r *http.Request, body []byte) {
		if principalOf(r).How == "token" {
			writeErr(w, http.StatusForbidden, "", errTokenByToken)
			return
		}
		create(w, r, body)
	}), op)
	add("DELETE "+api.PathTokens+"/{id}", n.leaderWrite(jsonCall(func(r *http.Request, req api.TokenRevoke) (any, error) {
		return nil, n.coord.RevokeToken(r.PathValue("id"), actor(r, req.RequestedBy))
	})), op)
}
