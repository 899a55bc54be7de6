package cluster

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// raft's hclog lines and serf's/memberlist's standard-log lines become
// zerolog events: one JSON object a line, the library's level as the
// level, raft's pairs as fields, no second timestamp, no repeated key.
func TestLibraryLogsAreStructured(t *testing.T) {
	var b bytes.Buffer
	base := zerolog.New(&b).With().Timestamp().Str("node", "h1").Logger()
	rl := raftLogger(base.With().Str("component", "raft").Logger())
	rl.Info("entering follower state", "follower", "h1") // below warn: dropped
	rl.Warn("heartbeat timeout reached, starting election", "last-leader-addr", "10.0.0.2:7002", "node", "h2")
	rl.Error("failed to appendEntries", "peer", "h3", "error", errors.New("connection refused"))
	stdLogger(base.With().Str("component", "memberlist").Logger()).Printf("[WARN] memberlist: Refuting a suspect message (from: h2)")
	stdLogger(base.With().Str("component", "serf").Logger()).Printf("[INFO] serf: EventMemberJoin: h3 10.0.0.3")

	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("want 4 lines (the info of raft dropped), got %d:\n%s", len(lines), b.String())
	}
	want := []struct{ level, msg, key, value string }{
		{"warn", "heartbeat timeout reached, starting election", "last-leader-addr", "10.0.0.2:7002"},
		{"error", "failed to appendEntries", "error", "connection refused"},
		{"warn", "memberlist: Refuting a suspect message (from: h2)", "component", "memberlist"},
		{"info", "serf: EventMemberJoin: h3 10.0.0.3", "component", "serf"},
	}
	for i, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %d is not one JSON object: %v: %s", i, err, l)
		}
		w := want[i]
		if m["level"] != w.level || m["message"] != w.msg || m[w.key] != w.value {
			t.Errorf("line %d: %s; want level %s, message %q, %s=%s", i, l, w.level, w.msg, w.key, w.value)
		}
		if strings.Contains(l, "[WARN]") || strings.Contains(l, "[INFO]") || strings.Count(l, "2026/") > 0 {
			t.Errorf("line %d keeps the library's own marker or timestamp: %s", i, l)
		}
	}
	if !strings.Contains(lines[0], `"lib_node":"h2"`) || strings.Count(lines[0], `"node":`) != 1 {
		t.Errorf("raft's node pair must not repeat vmhad's node key: %s", lines[0])
	}
}
