// Package sharedfs holds what the cluster file systems (GFS2, OCFS2) have in
// common on a host: the mount table, blkid signatures, readiness of a
// mounted file system, and the storage heartbeat that lets the coordinator
// tell a dead host (stopped writing) from an isolated one (still writing).
// The per-file-system packages (sharedfs/gfs2, sharedfs/ocfs2) parse their
// tools' output and validate a file system against the cluster.
package sharedfs

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// Runner runs a command and returns its standard output. Everything that
// calls a storage tool goes through it, so tests can record the commands or
// run the real tools, and the agent can put a timeout on each call.
type Runner interface {
	Run(ctx context.Context, name string, args ...string) ([]byte, error)
}

// ExecRunner runs commands on this host.
type ExecRunner struct{}

// ExitError is a command that ran and failed; Stderr says why in the tool's
// own words (mkfs and tunefs print their reasons there).
type ExitError struct {
	Cmd    string
	Code   int
	Stderr string
}

func (e *ExitError) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if len(msg) > 2000 {
		msg = msg[:2000] + "…"
	}
	return fmt.Sprintf("%s: exit status %d: %s", e.Cmd, e.Code, msg)
}

// Run runs name with args and returns its stdout; a non-zero exit is an
// *ExitError that carries stderr.
func (ExecRunner) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return stdout.Bytes(), &ExitError{Cmd: CommandLine(name, args), Code: ee.ExitCode(), Stderr: stderr.String()}
		}
		return stdout.Bytes(), fmt.Errorf("%s: %w", CommandLine(name, args), err)
	}
	return stdout.Bytes(), nil
}

// CommandLine renders a command for errors and logs.
func CommandLine(name string, args []string) string {
	return strings.TrimSpace(name + " " + strings.Join(args, " "))
}
