package command

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vmha/vmha/model"
)

func goodToken() *model.Token {
	at := time.Date(2026, 12, 5, 3, 0, 0, 0, time.UTC)
	return &model.Token{ID: "3f2a9c01b7de", Owner: "alice", Role: model.TokenRoleOperator, Hash: strings.Repeat("ab", 32),
		Created: at, Expires: at.Add(8 * time.Hour), CreatedBy: "root on h1", Comment: "web console"}
}

// Every bad field of a token is refused with an error that names it, and
// the hash is never repeated in the error.
func TestValidateToken(t *testing.T) {
	if err := ValidateToken(goodToken()); err != nil {
		t.Fatalf("a good token refused: %v", err)
	}
	secretHash := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeX"
	for _, c := range []struct {
		name, field string
		change      func(t *model.Token)
	}{
		{"short id", "id", func(t *model.Token) { t.ID = "3f2a9c01b7d" }},
		{"long id", "id", func(t *model.Token) { t.ID = "3f2a9c01b7de0" }},
		{"upper-case id", "id", func(t *model.Token) { t.ID = "3F2A9C01B7DE" }},
		{"non-hex id", "id", func(t *model.Token) { t.ID = "3f2a9c01b7dg" }},
		{"empty owner", "owner", func(t *model.Token) { t.Owner = "" }},
		{"long owner", "owner", func(t *model.Token) { t.Owner = strings.Repeat("a", 65) }},
		{"owner with a newline", "owner", func(t *model.Token) { t.Owner = "alice\nroot" }},
		{"owner not UTF-8", "owner", func(t *model.Token) { t.Owner = "al\xffice" }},
		{"unknown role", "role", func(t *model.Token) { t.Role = "host" }},
		{"empty role", "role", func(t *model.Token) { t.Role = "" }},
		{"short hash", "hash", func(t *model.Token) { t.Hash = "abcd" }},
		{"non-hex hash", "hash", func(t *model.Token) { t.Hash = secretHash }},
		{"upper-case hash", "hash", func(t *model.Token) { t.Hash = strings.Repeat("AB", 32) }},
		{"no creation time", "created", func(t *model.Token) { t.Created = time.Time{} }},
		{"expires at creation", "expires", func(t *model.Token) { t.Expires = t.Created }},
		{"expires before creation", "expires", func(t *model.Token) { t.Expires = t.Created.Add(-time.Hour) }},
		{"no creator", "created_by", func(t *model.Token) { t.CreatedBy = "" }},
		{"long comment", "comment", func(t *model.Token) { t.Comment = strings.Repeat("x", MaxTokenComment+1) }},
		{"comment with a control character", "comment", func(t *model.Token) { t.Comment = "a\x1b[31mb" }},
	} {
		t.Run(c.name, func(t *testing.T) {
			tok := goodToken()
			c.change(tok)
			err := ValidateToken(tok)
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field != c.field {
				t.Fatalf("got %v, want a validation error of %s", err, c.field)
			}
			if strings.Contains(err.Error(), secretHash) {
				t.Fatalf("the error repeats the hash: %v", err)
			}
		})
	}
	if err := ValidateToken(nil); err == nil {
		t.Fatal("no token accepted")
	}
	// An ID error never repeats its input (it may be a pasted secret).
	if err := ValidTokenID("vmha_sekrit"); err == nil || strings.Contains(err.Error(), "sekrit") {
		t.Fatalf("ValidTokenID: %v", err)
	}
}
