package buildinfo

import (
	"runtime"
	"runtime/debug"
	"testing"
)

func TestGet(t *testing.T) {
	vcs := func() (*debug.BuildInfo, bool) {
		return &debug.BuildInfo{
			Main: debug.Module{Version: "v1.0.0"},
			Settings: []debug.BuildSetting{
				{Key: "vcs.revision", Value: "0123456789abcdef"},
				{Key: "vcs.modified", Value: "true"},
			},
		}, true
	}
	none := func() (*debug.BuildInfo, bool) { return nil, false }
	devel := func() (*debug.BuildInfo, bool) { return &debug.BuildInfo{Main: debug.Module{Version: ""}}, true }
	gov := runtime.Version()
	for _, c := range []struct {
		name           string
		stamp, stampRv string
		read           func() (*debug.BuildInfo, bool)
		want           Info
		line           string
	}{
		{"no build info", "", "", none, Info{Version: Devel, Go: gov}, "(devel), unknown revision, " + gov},
		{"devel", "", "", devel, Info{Version: Devel, Go: gov}, "(devel), unknown revision, " + gov},
		{"go's vcs stamp", "", "", vcs, Info{Version: "v1.0.0", Revision: "0123456789abcdef", Modified: true, Go: gov}, "v1.0.0, 0123456789abcdef (modified), " + gov},
		{"linker stamp", "1.2.0+git5.abc1234", "abc1234", devel, Info{Version: "1.2.0+git5.abc1234", Revision: "abc1234", Go: gov}, "1.2.0+git5.abc1234, abc1234, " + gov},
		{"linker stamp wins", "1.2.0", "", vcs, Info{Version: "1.2.0", Revision: "0123456789abcdef", Modified: true, Go: gov}, "1.2.0, 0123456789abcdef (modified), " + gov},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := get(c.stamp, c.stampRv, c.read)
			if got != c.want {
				t.Errorf("get = %+v, want %+v", got, c.want)
			}
			if s := got.String(); s != c.line {
				t.Errorf("String() = %q, want %q", s, c.line)
			}
		})
	}
}
