package model

import "time"

// Token is an API token an operator issued (vmha token create) for the
// web console: a bearer secret that authenticates as Owner with Role until
// Expires. Only the SHA-256 of the secret is kept, so the replicated state,
// its snapshots and the raft log never hold a usable token.
type Token struct {
	// ID is 12 lowercase hex digits, the public half of the token
	// (vmha_<id>_<secret>): listed, logged and revoked by it.
	ID    string `json:"id"`
	Owner string `json:"owner"`
	// Role is TokenRoleOperator or TokenRoleReadOnly.
	Role string `json:"role"`
	// Hash is the lowercase hex SHA-256 of the secret's 32 raw bytes.
	Hash      string    `json:"hash"`
	Created   time.Time `json:"created,omitzero"`
	Expires   time.Time `json:"expires,omitzero"`
	CreatedBy string    `json:"created_by"`
	Comment   string    `json:"comment,omitempty"`
}

// Token roles: what a token's bearer may do, as the certificate roles.
const (
	TokenRoleOperator = "operator"
	TokenRoleReadOnly = "readonly"
)

// MaxTokens bounds the tokens kept in the replicated state.
const MaxTokens = 1000

// Expired reports whether t no longer authenticates at now.
func (t *Token) Expired(now time.Time) bool { return !now.Before(t.Expires) }
