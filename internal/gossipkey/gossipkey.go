// Package gossipkey makes, checks and names serf gossip encryption keys,
// for vmhad and for the CLI (which must not link the cluster code).
package gossipkey

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Size is the AES-256 key length serf uses.
const Size = 32

// New returns a fresh random key in the base64 form that
// vmha keygen prints and encrypt_key_file holds.
func New() (string, error) {
	var b [Size]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b[:]), nil
}

// Decode checks a base64 key. Its error never repeats the key.
func Decode(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, errors.New("not valid base64 (make one with vmha keygen)")
	}
	if len(b) != Size {
		return nil, fmt.Errorf("decodes to %d bytes, want %d (make one with vmha keygen)", len(b), Size)
	}
	return b, nil
}

// Fingerprint names a key in listings without revealing it.
func Fingerprint(key []byte) string {
	h := sha256.Sum256(key)
	return hex.EncodeToString(h[:6])
}
