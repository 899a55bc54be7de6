package command

import (
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"

	"github.com/vmha/vmha/model"
)

// Bounds of an API token's fields.
const (
	// TokenIDLen is the length of a token's ID in hex digits (6 random
	// bytes).
	TokenIDLen = 12
	// MaxTokenOwner and MaxTokenComment bound the owner and the comment,
	// in characters.
	MaxTokenOwner   = 64
	MaxTokenComment = 256
)

// ValidTokenID checks a token's ID: TokenIDLen lowercase hex digits. The
// error never repeats the input, which may be a pasted secret.
func ValidTokenID(id string) error {
	if len(id) != TokenIDLen || !isLowerHex(id) {
		return &ValidationError{Field: "id", Err: fmt.Errorf("a token id is %d lowercase hex digits", TokenIDLen)}
	}
	return nil
}

// ValidateToken checks every field of a token before it is proposed and
// again when it applies; the error names the field. It never repeats the
// hash.
func ValidateToken(t *model.Token) error {
	if t == nil {
		return &ValidationError{Field: "token", Err: errors.New("no token")}
	}
	if err := ValidTokenID(t.ID); err != nil {
		return err
	}
	if err := printable(t.Owner, MaxTokenOwner, false); err != nil {
		return &ValidationError{Field: "owner", Err: err}
	}
	switch t.Role {
	case model.TokenRoleOperator, model.TokenRoleReadOnly:
	default:
		return &ValidationError{Field: "role", Err: fmt.Errorf("unknown role %q: operator or readonly", truncate(t.Role, 32))}
	}
	if len(t.Hash) != 64 || !isLowerHex(t.Hash) {
		return &ValidationError{Field: "hash", Err: errors.New("want the SHA-256 of the secret, 64 lowercase hex digits")}
	}
	if t.Created.IsZero() {
		return &ValidationError{Field: "created", Err: errors.New("not set")}
	}
	if !t.Expires.After(t.Created) {
		return &ValidationError{Field: "expires", Err: fmt.Errorf("%s is not after its creation %s", t.Expires.Format("2006-01-02T15:04:05Z07:00"), t.Created.Format("2006-01-02T15:04:05Z07:00"))}
	}
	if err := printable(t.CreatedBy, 512, false); err != nil {
		return &ValidationError{Field: "created_by", Err: err}
	}
	if err := printable(t.Comment, MaxTokenComment, true); err != nil {
		return &ValidationError{Field: "comment", Err: err}
	}
	return nil
}

// printable checks that s is valid UTF-8 of printable characters, at most
// limit of them, and not empty unless it may be.
func printable(s string, limit int, mayBeEmpty bool) error {
	switch {
	case s == "" && !mayBeEmpty:
		return errors.New("empty")
	case !utf8.ValidString(s):
		return errors.New("not valid UTF-8")
	case utf8.RuneCountInString(s) > limit:
		return fmt.Errorf("longer than %d characters", limit)
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("holds the unprintable character %U", r)
		}
	}
	return nil
}

func isLowerHex(s string) bool {
	for i := range len(s) {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
