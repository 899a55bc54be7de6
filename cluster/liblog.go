package cluster

import (
	"fmt"
	"io"
	"log"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/rs/zerolog"
)

// The libraries vmhad embeds log their own way: raft through hclog, serf
// and memberlist through the standard log package. Their lines go into
// vmhad's zerolog log as structured events, with one timestamp format:
// raft's key/value pairs become fields, and the others' level markers
// become levels.

// raftLogger is an hclog logger whose events are zerolog events on l:
// warnings and errors only (raft's info lines are its normal operation).
func raftLogger(l zerolog.Logger) hclog.Logger {
	il := hclog.NewInterceptLogger(&hclog.LoggerOptions{Name: "raft", Output: io.Discard, Level: hclog.Warn})
	il.RegisterSink(&zerologSink{l: l, min: hclog.Warn})
	return il
}

// zerologSink receives hclog's events (hclog.SinkAdapter).
type zerologSink struct {
	l   zerolog.Logger
	min hclog.Level
}

// reservedKeys are fields vmhad's own log lines carry: a library's pair
// with such a key is written with a "lib_" prefix, so that no line
// repeats a key.
var reservedKeys = map[string]bool{"level": true, "message": true, "time": true, "node": true, "component": true}

func (s *zerologSink) Accept(name string, level hclog.Level, msg string, args ...any) {
	if level < s.min {
		return
	}
	var ev *zerolog.Event
	switch level {
	case hclog.Error:
		ev = s.l.Error()
	case hclog.Warn:
		ev = s.l.Warn()
	case hclog.Info:
		ev = s.l.Info()
	default:
		ev = s.l.Debug()
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(args); i += 2 {
		k := fmt.Sprint(args[i])
		if reservedKeys[k] || seen[k] {
			k = "lib_" + k
		}
		seen[k] = true
		if err, ok := args[i+1].(error); ok {
			ev = ev.Str(k, err.Error())
			continue
		}
		ev = ev.Str(k, fmt.Sprint(args[i+1]))
	}
	if name != "" {
		ev = ev.Str("logger", name)
	}
	ev.Msg(msg)
}

// stdLogger is a standard logger (serf, memberlist) whose lines are
// zerolog events on l, without the standard logger's own timestamp.
func stdLogger(l zerolog.Logger) *log.Logger {
	return log.New(zerologWriter{l}, "", 0)
}

// zerologWriter adapts libraries that log through io.Writer to zerolog:
// the level is read from the line's [ERR]/[WARN]/[INFO]/[DEBUG] marker,
// which is dropped from the message.
type zerologWriter struct{ l zerolog.Logger }

func (w zerologWriter) Write(p []byte) (int, error) {
	msg := strings.TrimRight(string(p), "\r\n")
	lvl := zerolog.DebugLevel
	for marker, l := range map[string]zerolog.Level{"[ERR] ": zerolog.ErrorLevel, "[ERROR] ": zerolog.ErrorLevel, "[WARN] ": zerolog.WarnLevel, "[INFO] ": zerolog.InfoLevel, "[DEBUG] ": zerolog.DebugLevel} {
		if i := strings.Index(msg, marker); i >= 0 {
			lvl, msg = l, msg[:i]+msg[i+len(marker):]
			break
		}
	}
	w.l.WithLevel(lvl).Msg(strings.TrimSpace(msg))
	return len(p), nil
}
