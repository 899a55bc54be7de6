package statemachine

import (
	"os"
	"regexp"
	"testing"

	"github.com/vmha/vmha/cluster/command"
	"github.com/vmha/vmha/model"
)

// Every op the command package declares has its applier, and an unknown
// op is refused without a change.
func TestEveryOpIsApplied(t *testing.T) {
	src, err := os.ReadFile("../command/command.go")
	if err != nil {
		t.Fatal(err)
	}
	ops := regexp.MustCompile(`(?m)^\s*Op\w+\s+Op = "(\w+)"`).FindAllStringSubmatch(string(src), -1)
	if len(ops) < 20 {
		t.Fatalf("found only %d ops in command.go", len(ops))
	}
	for _, m := range ops {
		if appliers[command.Op(m[1])] == nil {
			t.Errorf("op %q has no applier", m[1])
		}
	}
	if len(appliers) != len(ops) {
		t.Errorf("%d appliers for %d ops", len(appliers), len(ops))
	}
	s := model.NewState()
	if err := Apply(s, &command.Command{Op: "no_such_op"}); err == nil {
		t.Fatal("an unknown op was applied")
	}
}
