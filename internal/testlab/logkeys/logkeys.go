// Package logkeys finds JSON log lines that carry a key twice. zerolog
// writes every field it is given: a sub-logger's With().Str("vm") and an
// event's Str("vm") both end up in the line, as does a field named like
// one of zerolog's own (level, time, message, error), and a reader of the
// line keeps only one of them. Tests record a logger's output with a
// Recorder and check it with Check.
package logkeys

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"testing"
)

// Repeated returns the keys that appear more than once in one object of
// the JSON value in line, in the order found, each with its path ("a.b"
// for key b of the object under key a; arrays add nothing to the path).
func Repeated(line []byte) ([]string, error) {
	type frame struct {
		obj     bool
		wantKey bool
		path    string
		key     string // the key whose value is being read
		keys    map[string]bool
	}
	var stack []*frame
	var out []string
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	// valueDone marks the end of a value in the enclosing object, which
	// then expects its next key.
	valueDone := func() {
		if n := len(stack); n > 0 && stack[n-1].obj {
			stack[n-1].wantKey = true
		}
	}
	for started := false; ; started = true {
		tok, err := dec.Token()
		if err == io.EOF {
			if !started || len(stack) > 0 {
				return out, fmt.Errorf("not JSON: a cut or empty value: %s", line)
			}
			break
		}
		if err != nil {
			return out, fmt.Errorf("not JSON: %w: %s", err, line)
		}
		if n := len(stack); n > 0 && stack[n-1].obj && stack[n-1].wantKey {
			top := stack[n-1]
			if k, ok := tok.(string); ok {
				if top.keys[k] {
					out = append(out, top.path+k)
				}
				top.keys[k], top.key, top.wantKey = true, k, false
				continue
			}
			// Otherwise the '}' that closes the object, handled below.
		}
		d, ok := tok.(json.Delim)
		if !ok {
			valueDone()
			continue
		}
		switch d {
		case '{', '[':
			path := ""
			if n := len(stack); n > 0 {
				path = stack[n-1].path
				if stack[n-1].obj {
					path += stack[n-1].key + "."
				}
			}
			stack = append(stack, &frame{obj: d == '{', wantKey: d == '{', path: path, keys: map[string]bool{}})
		case '}', ']':
			stack = stack[:len(stack)-1]
			valueDone()
		}
	}
	return out, nil
}

// Recorder is an io.Writer for a zerolog.Logger that keeps every line.
// It is safe for concurrent use.
type Recorder struct {
	// OnLine, when set, is called with each complete line as it is
	// written (on the logging goroutine, without the Recorder's lock).
	OnLine func(line []byte)

	mu      sync.Mutex
	lines   [][]byte
	partial []byte
}

// Write implements io.Writer.
func (r *Recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	r.partial = append(r.partial, p...)
	var done [][]byte
	for {
		i := bytes.IndexByte(r.partial, '\n')
		if i < 0 {
			break
		}
		line := append([]byte(nil), r.partial[:i]...)
		r.partial = r.partial[i+1:]
		r.lines = append(r.lines, line)
		done = append(done, line)
	}
	r.mu.Unlock()
	if r.OnLine != nil {
		for _, l := range done {
			r.OnLine(l)
		}
	}
	return len(p), nil
}

// Lines returns the complete lines written so far.
func (r *Recorder) Lines() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.lines...)
}

// Finding is one line with repeated keys.
type Finding struct {
	Message string   // the line's "message"
	Keys    []string // the repeated keys
	Line    []byte
}

// Find returns the lines that repeat a key; a line that is not JSON fails
// t.
func Find(t testing.TB, lines [][]byte) []Finding {
	t.Helper()
	var out []Finding
	for _, l := range lines {
		keys, err := Repeated(l)
		if err != nil {
			t.Errorf("log line: %v", err)
			continue
		}
		if len(keys) == 0 {
			continue
		}
		var m struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(l, &m)
		out = append(out, Finding{Message: m.Message, Keys: keys, Line: l})
	}
	return out
}

// Check fails t for every line that repeats a key.
func Check(t testing.TB, lines [][]byte) {
	t.Helper()
	for _, f := range Find(t, lines) {
		t.Errorf("log line %q repeats %v: %s", f.Message, f.Keys, f.Line)
	}
}
