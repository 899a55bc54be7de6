// Package buildinfo says which build of vmha this binary is: the version,
// the VCS revision and the Go version. vmha version, vmhad --version and
// the vmha_build_info metric all report it.
//
// make build stamps the version and revision with the linker
// (scripts/version.sh's version):
//
//	go build -ldflags "-X github.com/vmha/vmha/internal/buildinfo.version=1.2.0 \
//	  -X github.com/vmha/vmha/internal/buildinfo.revision=abc1234..."
//
// Without the stamp, Go's own build info is used (the module version and,
// when the build ran with VCS stamping, the revision), else "(devel)".
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set by the linker (-ldflags -X); empty in a plain go build.
var (
	version  string
	revision string
)

// Devel is the version of a build that was not stamped.
const Devel = "(devel)"

// Info is one build's identity.
type Info struct {
	Version  string `json:"version"`
	Revision string `json:"revision,omitempty"`
	Modified bool   `json:"modified,omitempty"`
	Go       string `json:"go"`
}

// Get returns this binary's build info.
func Get() Info {
	return get(version, revision, debug.ReadBuildInfo)
}

// get is Get with the stamps and Go's build info reader passed in.
func get(stamped, stampedRev string, read func() (*debug.BuildInfo, bool)) Info {
	i := Info{Version: Devel, Go: runtime.Version()}
	if bi, ok := read(); ok {
		if bi.Main.Version != "" {
			i.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				i.Revision = s.Value
			case "vcs.modified":
				i.Modified = s.Value == "true"
			}
		}
	}
	if stamped != "" {
		i.Version = stamped
	}
	if stampedRev != "" {
		i.Revision = stampedRev
	}
	return i
}

// String is the one line vmha version and vmhad --version print after the
// program's name: "1.2.0, 0123abcd... (modified), go1.26.0".
func (i Info) String() string {
	rev := i.Revision
	if rev == "" {
		rev = "unknown revision"
	}
	if i.Modified {
		rev += " (modified)"
	}
	return fmt.Sprintf("%s, %s, %s", i.Version, rev, i.Go)
}
