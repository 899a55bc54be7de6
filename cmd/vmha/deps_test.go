package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/vmha/vmha/internal/testlab/testenv"
)

// TestNoCgoBinding: the CLI links no cgo outside the standard library, in
// particular not libvirt's binding (libvirt.org/go/libvirt). Loading
// libvirt and the ~60 shared libraries it pulls in costs every start of
// the CLI tens of milliseconds, more than a whole vmha plan of 2,000 VMs
// may take (issue 17). The CLI validates fence configurations
// (fencing/spec, fencing/libvirturi) but never opens a device: that is
// fencing/devices, for vmhad only. (Tests may import what they like.)
func TestNoCgoBinding(t *testing.T) {
	goTool := testenv.NeedCommand(t, "go")
	cmd := exec.Command(goTool, "list", "-deps", "-f", "{{.ImportPath}} {{if and .CgoFiles (not .Standard)}}cgo{{end}}", ".")
	// As the CLI is built (cgo on): without cgo, go list would leave
	// the cgo files out and see nothing to refuse.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	seen := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, cgo, _ := strings.Cut(line, " ")
		seen++
		if cgo == "cgo" || pkg == "libvirt.org/go/libvirt" {
			t.Errorf("cmd/vmha links %s, a cgo package: keep it out of the CLI (validation in packages without it, devices opened only by vmhad)", pkg)
		}
	}
	if seen < 10 {
		t.Fatalf("go list listed only %d packages:\n%s", seen, out)
	}
}
