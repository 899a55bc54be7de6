package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// versionInfo is what vmha version reports: the module version and the
// VCS revision the binary was built from (Go's build info), and the Go
// version.
type versionInfo struct {
	Version  string `json:"version"`
	Revision string `json:"revision,omitempty"`
	Modified bool   `json:"modified,omitempty"`
	Go       string `json:"go"`
}

func buildVersion() versionInfo {
	v := versionInfo{Version: "(devel)", Go: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	if bi.Main.Version != "" {
		v.Version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print vmha's version and the revision it was built from (-o json for scripts)",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(_ *cobra.Command, _ []string) error {
			v := buildVersion()
			if g.output == "json" {
				return g.printJSON(v)
			}
			rev := v.Revision
			if rev == "" {
				rev = "unknown revision"
			}
			if v.Modified {
				rev += " (modified)"
			}
			fmt.Fprintf(g.out, "vmha %s, %s, %s\n", v.Version, rev, v.Go)
			return nil
		},
	}
}
