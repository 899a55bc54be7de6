package api

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// API tokens for the web console (docs/tokens.md): operators issue them
// with vmha token create; the console takes one as its login.
const (
	// PathTokens lists the tokens (GET, []Token) and creates one (POST
	// TokenRequest, answered TokenCreated). PathTokens+"/{id}" revokes
	// one (DELETE TokenRevoke). Operators only: tokens are security data.
	PathTokens = "/v1/tokens"
	// TokenPrefix starts every token: vmha_<id>_<secret>, the secret 32
	// random bytes in unpadded base64url.
	TokenPrefix = "vmha_"
	// MaxTokenTTL is the longest a token may live.
	MaxTokenTTL = 400 * 24 * time.Hour
)

// TokenRequest is the body of POST /v1/tokens.
type TokenRequest struct {
	Owner string `json:"owner"`
	// Role is operator or readonly.
	Role string `json:"role"`
	// TTL is how long the token lives, from now: more than 0, at most
	// MaxTokenTTL.
	TTL         time.Duration `json:"ttl_ns"`
	Comment     string        `json:"comment,omitempty"`
	RequestedBy string        `json:"requested_by"`
}

// TokenCreated is the answer of POST /v1/tokens: the only time the token
// itself is shown. vmha keeps its hash alone.
type TokenCreated struct {
	ID      string    `json:"id"`
	Token   string    `json:"token"`
	Owner   string    `json:"owner"`
	Role    string    `json:"role"`
	Expires time.Time `json:"expires,omitzero"`
}

// Token is one token as GET /v1/tokens lists it: never its secret or its
// hash.
type Token struct {
	ID        string    `json:"id"`
	Owner     string    `json:"owner"`
	Role      string    `json:"role"`
	Created   time.Time `json:"created,omitzero"`
	Expires   time.Time `json:"expires,omitzero"`
	CreatedBy string    `json:"created_by"`
	Comment   string    `json:"comment,omitempty"`
	// Expired is set once the token no longer authenticates (it stays
	// listed until revoked).
	Expired bool `json:"expired"`
}

// TokenRevoke is the body of DELETE /v1/tokens/{id}.
type TokenRevoke struct {
	RequestedBy string `json:"requested_by"`
}

// ParseTTL reads a token's lifetime: a Go duration (90m, 8h) or a number
// of days (30d). It must be more than 0 and at most MaxTokenTTL.
func ParseTTL(s string) (time.Duration, error) {
	var d time.Duration
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.ParseUint(n, 10, 32)
		if err != nil {
			return 0, fmt.Errorf("ttl %q: want a duration such as 8h or 30d", s)
		}
		if days > uint64(MaxTokenTTL/(24*time.Hour)) {
			return 0, fmt.Errorf("ttl %s: at most %dd", s, MaxTokenTTL/(24*time.Hour))
		}
		d = time.Duration(days) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("ttl %q: want a duration such as 8h or 30d", s)
		}
	}
	return d, CheckTTL(d)
}

// CheckTTL bounds a token's lifetime.
func CheckTTL(d time.Duration) error {
	switch {
	case d <= 0:
		return fmt.Errorf("ttl %s: a token must live more than 0", d)
	case d > MaxTokenTTL:
		return fmt.Errorf("ttl %s: at most %dd", d, MaxTokenTTL/(24*time.Hour))
	}
	return nil
}
