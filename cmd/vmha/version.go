package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/vmha/vmha/internal/buildinfo"
)

// versionInfo is what vmha version reports: the version and VCS revision
// the binary was built from (internal/buildinfo: make build's linker stamp,
// else Go's build info) and the Go version. Its -o json carries the
// version of the CLI's JSON contract too, as every object does: the one
// the array outputs follow.
type versionInfo struct {
	buildinfo.Info
}

func buildVersion() versionInfo {
	return versionInfo{Info: buildinfo.Get()}
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
			fmt.Fprintf(g.out, "vmha %s\n", v.Info)
			return nil
		},
	}
}
