package logkeys

import (
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

func TestRepeated(t *testing.T) {
	for _, tc := range []struct {
		line string
		want string
	}{
		{`{"level":"info","vm":"a","message":"m"}`, ""},
		{`{"level":"info","level":3,"message":"m"}`, "level"},
		{`{"vm":"a","to":"h2","vm":"a","vm":"b"}`, "vm,vm"},
		{`{"a":{"x":1,"x":2},"b":{"x":1}}`, "a.x"},
		{`{"a":[{"x":1,"x":2},{"x":1}],"x":0}`, "a.x"},
		{`{"a":[[1,2],{"k":{"k":1}}],"k":{},"n":null,"t":true}`, ""},
		{`{"a":{"b":{"c":1,"c":2}},"a":1}`, "a.b.c,a"},
		{`{"key":"key","v":["key","key"]}`, ""},
		{`{}`, ""},
	} {
		got, err := Repeated([]byte(tc.line))
		if err != nil {
			t.Fatalf("%s: %v", tc.line, err)
		}
		if strings.Join(got, ",") != tc.want {
			t.Errorf("%s: repeated %v, want %q", tc.line, got, tc.want)
		}
	}
	for _, bad := range []string{`{"a":`, `{"a":1`, ``, `{"a" 1}`} {
		if _, err := Repeated([]byte(bad)); err == nil {
			t.Errorf("%q is not an error", bad)
		}
	}
}

// TestRecorderFindsZerologRepeats is the case the package is for: a
// sub-logger's field given again on the event, and a field named level.
func TestRecorderFindsZerologRepeats(t *testing.T) {
	var r Recorder
	var seen []string
	r.OnLine = func(l []byte) { seen = append(seen, string(l)) }
	log := zerolog.New(&r).With().Str("vm", "a").Logger()
	log.Info().Str("to", "h2").Msg("clean")
	log.Info().Str("vm", "a").Msg("vm twice")
	log.Warn().Int("level", 2).Msg("level twice")
	lines := r.Lines()
	if len(lines) != 3 || len(seen) != 3 {
		t.Fatalf("%d lines recorded, %d seen", len(lines), len(seen))
	}
	got := Find(t, lines)
	if len(got) != 2 || got[0].Message != "vm twice" || got[0].Keys[0] != "vm" || got[1].Message != "level twice" || got[1].Keys[0] != "level" {
		t.Fatalf("findings %+v", got)
	}
}
