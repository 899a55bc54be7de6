package decide_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmha/vmha/storage"
)

// TestDecisionsArePure: the decisions import no network, raft, serf,
// libvirt, process or storage-tool code, and read no clock: they are a
// function of their inputs. (Tests may import what they like.)
func TestDecisionsArePure(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	forbidden := []string{"net", "net/http", "os/exec", "github.com/hashicorp/raft", "github.com/hashicorp/serf/serf",
		"github.com/hashicorp/memberlist", "libvirt.org/go/libvirt", "github.com/vmha/vmha/fencing", "github.com/vmha/vmha/hypervisor",
		"github.com/vmha/vmha/sharedfs", "github.com/vmha/vmha/storage", "github.com/vmha/vmha/api", "github.com/vmha/vmha/cluster"}
	deps := map[string]bool{}
	for _, d := range strings.Fields(string(out)) {
		deps[d] = true
	}
	for _, f := range forbidden {
		if deps[f] {
			t.Errorf("cluster/decide depends on %s", f)
		}
	}
	files, _ := filepath.Glob("*.go")
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, clock := range []string{"time.Now(", "time.Since(", "time.Until(", "time.After(", "time.Sleep(", "math/rand", "crypto/rand"} {
			if strings.Contains(string(b), clock) {
				t.Errorf("%s uses %s: a decision takes its time and randomness from the view", f, clock)
			}
		}
	}
}

// The storage readiness attributes the rules read are the ones the
// storage check publishes.
func TestStorageAttrPrefix(t *testing.T) {
	if storage.AttrPrefix != "storage." {
		t.Fatalf("storage.AttrPrefix is %q; decide's StorageAttrPrefix must follow it", storage.AttrPrefix)
	}
}
