package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmha/vmha/internal/testlab/plangen"
)

// TestPlanGolden runs vmha plan on plangen's inputs and compares with the
// output of the implementation before issue 17's speed-ups (commit
// 96822a6: yaml.v3 decoding, the scores of every VM computed for the text
// output too, unbuffered output), kept in testdata/plan-golden: the same
// plan, the same text, the same JSON. The capacity-short files (-short)
// come from commit 4cdf8e4, before the engine evaluated each distinct
// location rule once and scanned only the hosts a VM's terms touch.
func TestPlanGolden(t *testing.T) {
	cases := []struct {
		golden string
		nh, nv int
		args   []string
		short  bool
	}{
		{"8x200.txt", 8, 200, nil, false},
		{"8x200.json", 8, 200, []string{"-o", "json"}, false},
		{"8x200-explain.txt", 8, 200, []string{"--explain", "vm00000", "--explain", "vm00007"}, false},
		{"8x200-explain.json", 8, 200, []string{"-o", "json", "--explain", "vm00000"}, false},
		{"32x2000.txt", 32, 2000, nil, false},
		{"8x200-short.json", 8, 200, []string{"-o", "json"}, true},
		{"8x200-short-explain.txt", 8, 200, []string{"--explain", "vm00006", "--explain", "vm00000"}, true},
		{"32x2000-short.txt", 32, 2000, nil, true},
	}
	for _, c := range cases {
		t.Run(c.golden, func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join("testdata", "plan-golden", c.golden))
			if err != nil {
				t.Fatal(err)
			}
			cfg, st, err := plangen.WriteWith(t.TempDir(), c.nh, c.nv, plangen.Options{Short: c.short})
			if err != nil {
				t.Fatal(err)
			}
			code, out, errs := runPlanCLI(t, append([]string{"plan", "--config", cfg, "--status", st}, c.args...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errs)
			}
			if out != string(want) {
				t.Errorf("output differs from %s:\n%s", c.golden, firstDiff(out, string(want)))
			}
		})
	}
}

// firstDiff shows the first line where got and want differ.
func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) && i < len(w); i++ {
		if g[i] != w[i] {
			return fmt.Sprintf("line %d:\n got: %s\nwant: %s", i+1, g[i], w[i])
		}
	}
	return fmt.Sprintf("got %d lines, want %d", len(g), len(w))
}
