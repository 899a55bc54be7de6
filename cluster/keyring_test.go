package cluster

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmha/vmha/internal/gossipkey"
)

func TestLoadKeyring(t *testing.T) {
	dir := t.TempDir()
	ring := filepath.Join(dir, "serf.keyring")
	// No seed and no keyring: gossip in clear, as configured.
	if kr, err := loadKeyring(ring, ""); kr != nil || err != nil {
		t.Fatalf("no key: %v %v", kr, err)
	}
	k1, _ := gossipkey.New()
	seed := filepath.Join(dir, "gossip.key")
	if err := os.WriteFile(seed, []byte(k1+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	kr, err := loadKeyring(ring, seed)
	if err != nil || kr == nil {
		t.Fatalf("seed: %v", err)
	}
	if _, err := os.ReadFile(ring); err != nil {
		t.Fatalf("keyring not written from the seed: %v", err)
	}
	if fi, _ := os.Stat(ring); fi.Mode().Perm() != 0o600 {
		t.Fatalf("keyring mode %v", fi.Mode())
	}
	// A rotated keyring wins over a stale seed.
	k2, _ := gossipkey.New()
	rot, _ := json.Marshal([]string{k2, k1})
	if err := os.WriteFile(ring, rot, 0o600); err != nil {
		t.Fatal(err)
	}
	kr, err = loadKeyring(ring, seed)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := gossipkey.Decode(k2)
	if string(kr.GetPrimaryKey()) != string(want) || len(kr.GetKeys()) != 2 {
		t.Fatal("the rotated keyring's primary key is not used")
	}
	// Bad input names the file and never shows the key.
	bad := filepath.Join(t.TempDir(), "bad.key")
	_ = os.WriteFile(bad, []byte("c2VjcmV0LXRvby1zaG9ydA=="), 0o600)
	_, err = loadKeyring(filepath.Join(t.TempDir(), "serf.keyring"), bad)
	if err == nil || !strings.Contains(err.Error(), "gossip.encrypt_key_file "+bad) || strings.Contains(err.Error(), "c2VjcmV0") {
		t.Fatalf("bad seed: %v", err)
	}
	_, err = loadKeyring(filepath.Join(t.TempDir(), "serf.keyring"), filepath.Join(dir, "missing.key"))
	if err == nil || !strings.Contains(err.Error(), "gossip.encrypt_key_file") {
		t.Fatalf("missing seed: %v", err)
	}
	garbage := filepath.Join(t.TempDir(), "serf.keyring")
	_ = os.WriteFile(garbage, []byte("{"), 0o600)
	if _, err := loadKeyring(garbage, seed); err == nil || !strings.Contains(err.Error(), garbage) {
		t.Fatalf("corrupt keyring: %v", err)
	}
}
