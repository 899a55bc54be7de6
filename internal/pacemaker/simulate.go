package pacemaker

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/vmha/vmha/placement"
)

// SimResult is what crm_simulate decided.
type SimResult struct {
	// Placement maps every resource it listed to its node after the
	// simulated transition, "" when stopped.
	Placement map[string]string
	// Scores are the allocation scores it printed (-s).
	Scores map[string]map[string]placement.Score
	// Output is crm_simulate's whole output, for test failures.
	Output string
}

var (
	scoreLine = regexp.MustCompile(`^\S+: (\S+) allocation score on (\S+): (\S+)$`)
	rscLine   = regexp.MustCompile(`^\s*\*?\s*(\S+)\s+\(([^)]*)\):\s+(\S+)(?:\s+(\S+))?`)
)

// Simulate runs crm_simulate (at path) on cib and parses its answer.
func Simulate(ctx context.Context, path string, cib []byte) (*SimResult, error) {
	dir, err := os.MkdirTemp("", "vmha-cib-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	f := filepath.Join(dir, "cib.xml")
	if err := os.WriteFile(f, cib, 0o600); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, path, "-x", f, "-S", "-s")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// crm_simulate wants a writable state directory for nothing we use.
	cmd.Env = append(os.Environ(), "CIB_file="+f)
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("crm_simulate: %w\n%s", err, out.String())
	}
	return Parse(out.String())
}

// Parse reads crm_simulate -S -s output.
func Parse(out string) (*SimResult, error) {
	r := &SimResult{Placement: map[string]string{}, Scores: map[string]map[string]placement.Score{}, Output: out}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		line := sc.Text()
		if m := scoreLine.FindStringSubmatch(line); m != nil {
			s, err := placement.ParseScore(m[3])
			if err != nil {
				return nil, fmt.Errorf("crm_simulate score line %q: %w", line, err)
			}
			if r.Scores[m[1]] == nil {
				r.Scores[m[1]] = map[string]placement.Score{}
			}
			r.Scores[m[1]][m[2]] = s
			continue
		}
		// Resource lines appear in the current status and again in the
		// revised status after the simulated transition: the last one wins.
		if m := rscLine.FindStringSubmatch(line); m != nil && strings.Contains(m[2], ":") {
			if m[3] == "Started" {
				r.Placement[m[1]] = m[4]
			} else {
				// Stopped, "Stopped (disabled)", or anything not running.
				r.Placement[m[1]] = ""
			}
		}
	}
	return r, sc.Err()
}
