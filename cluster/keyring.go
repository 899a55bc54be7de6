package cluster

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/serf"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/internal/gossipkey"
)

// loadKeyring builds the gossip keyring. The keyring file in the data
// directory wins: it holds the result of every rotation since the first
// start. Without it, the configured key file seeds it. Neither: no
// encryption (nil keyring).
func loadKeyring(keyringFile, seedFile string) (*memberlist.Keyring, error) {
	var keys []string
	seeded := false
	switch data, err := os.ReadFile(keyringFile); {
	case err == nil:
		if err := json.Unmarshal(data, &keys); err != nil || len(keys) == 0 {
			return nil, fmt.Errorf("gossip keyring %s: not a JSON list of keys", keyringFile)
		}
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("gossip keyring: %w", err)
	case seedFile == "":
		return nil, nil
	default:
		raw, err := os.ReadFile(seedFile)
		if err != nil {
			return nil, fmt.Errorf("gossip.encrypt_key_file: %w", err)
		}
		keys, seeded = []string{strings.TrimSpace(string(raw))}, true
	}
	var decoded [][]byte
	for i, k := range keys {
		b, err := gossipkey.Decode(k)
		if err != nil {
			src := keyringFile
			if seeded {
				src = "gossip.encrypt_key_file " + seedFile
			}
			return nil, fmt.Errorf("gossip key %d in %s: %w", i+1, src, err)
		}
		decoded = append(decoded, b)
	}
	if seeded {
		// Write the keyring at once so that rotations persist and a
		// restart keeps them even when the seed file is stale by then.
		b, _ := json.Marshal(keys)
		if err := os.WriteFile(keyringFile, b, 0o600); err != nil {
			return nil, fmt.Errorf("gossip keyring: %w", err)
		}
	}
	kr, err := memberlist.NewKeyring(decoded, decoded[0])
	if err != nil {
		return nil, fmt.Errorf("gossip keyring: %w", err)
	}
	return kr, nil
}

// GossipKeys lists the keyring of every member.
func (n *Node) GossipKeys() (*api.GossipKeys, error) {
	if !n.serf.EncryptionEnabled() {
		return nil, &ConflictError{What: "gossip is not encrypted: set gossip.encrypt_key_file on every host first"}
	}
	r, err := n.serf.KeyManager().ListKeys()
	return keysView(r, err)
}

// ChangeGossipKey installs, makes primary, or removes a key on every
// member. Rotation without downtime: install the new key, use it, then
// remove the old one.
func (n *Node) ChangeGossipKey(op, key string) (*api.GossipKeys, error) {
	if !n.serf.EncryptionEnabled() {
		return nil, &ConflictError{What: "gossip is not encrypted: set gossip.encrypt_key_file on every host first"}
	}
	if _, err := gossipkey.Decode(key); err != nil {
		return nil, &ValidationError{Field: "key", Err: err}
	}
	km := n.serf.KeyManager()
	var r *serf.KeyResponse
	var err error
	switch op {
	case "install":
		r, err = km.InstallKey(key)
	case "use":
		r, err = km.UseKey(key)
	case "remove":
		r, err = km.RemoveKey(key)
	default:
		return nil, &ValidationError{Field: "op", Err: fmt.Errorf("%q: want install, use or remove", op)}
	}
	n.log.Info().Str("op", op).Str("key", gossipkey.Fingerprint(mustDecode(key))).Msg("gossip keyring change")
	if err != nil && r == nil {
		return nil, err
	}
	v, _ := keysView(r, nil)
	if err != nil {
		return v, fmt.Errorf("gossip key %s: %s", op, scrubKey(err.Error(), key))
	}
	return v, nil
}

func mustDecode(key string) []byte {
	b, _ := gossipkey.Decode(key)
	return b
}

// scrubKey removes a key from a message that might quote it.
func scrubKey(msg, key string) string {
	return strings.ReplaceAll(msg, strings.TrimSpace(key), "[redacted]")
}

func keysView(r *serf.KeyResponse, err error) (*api.GossipKeys, error) {
	if err != nil && r == nil {
		return nil, err
	}
	v := &api.GossipKeys{Members: r.NumNodes, Responses: r.NumResp, Keys: []api.GossipKey{}}
	for k, count := range r.Keys {
		b, derr := base64.StdEncoding.DecodeString(k)
		if derr != nil {
			continue
		}
		v.Keys = append(v.Keys, api.GossipKey{Fingerprint: gossipkey.Fingerprint(b), Members: count, Primary: r.PrimaryKeys[k]})
	}
	sort.Slice(v.Keys, func(i, j int) bool { return v.Keys[i].Fingerprint < v.Keys[j].Fingerprint })
	for node, msg := range r.Messages {
		if msg != "" {
			if v.Errors == nil {
				v.Errors = map[string]string{}
			}
			v.Errors[node] = msg
		}
	}
	return v, err
}
