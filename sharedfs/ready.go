package sharedfs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Spec is one cluster file system as a host should see it.
type Spec struct {
	Name       string // the storage resource's name in the config
	Type       string // "gfs2" or "ocfs2"
	MountPoint string
}

// Observation is what a host saw of one file system; Evaluate turns it into
// a verdict without touching anything, so the rules are tested on tables.
type Observation struct {
	Mounts    []Mount
	MountsErr error // the mount table could not be read
	// LockManager is nil when the lock manager (dlm_controld, o2cb) runs,
	// else why not.
	LockManager error
	// ProbeErr is nil when the heartbeat file was written and read back in
	// time; ProbeTook is how long it took.
	ProbeErr  error
	ProbeTook time.Duration
}

// Readiness is a host's verdict on one file system: Ready only when every
// check passed; Reasons says what failed, in words for `vmha explain`.
type Readiness struct {
	Name    string        `json:"name"`
	Ready   bool          `json:"ready"`
	Reasons []string      `json:"reasons,omitempty"`
	Probe   time.Duration `json:"probe,omitempty"`
}

// Evaluate decides readiness: mounted at the configured point with the
// configured type and read-write, the lock manager running, and the
// write-then-read probe answered within timeout. Every failing check is
// reported, not just the first, so one look tells the operator all of it.
func Evaluate(spec Spec, obs Observation, timeout time.Duration) Readiness {
	r := Readiness{Name: spec.Name, Probe: obs.ProbeTook}
	switch {
	case obs.MountsErr != nil:
		r.Reasons = append(r.Reasons, fmt.Sprintf("mount table unreadable: %v", obs.MountsErr))
	default:
		m, ok := FindMount(obs.Mounts, spec.MountPoint)
		switch {
		case !ok:
			r.Reasons = append(r.Reasons, fmt.Sprintf("%s is not mounted at %s", spec.Name, spec.MountPoint))
		case m.Type != spec.Type:
			r.Reasons = append(r.Reasons, fmt.Sprintf("%s at %s is mounted as %s (from %s), want %s", spec.Name, spec.MountPoint, m.Type, m.Device, spec.Type))
		case m.ReadOnly():
			r.Reasons = append(r.Reasons, fmt.Sprintf("%s at %s is mounted read-only (from %s)", spec.Name, spec.MountPoint, m.Device))
		}
	}
	if obs.LockManager != nil {
		r.Reasons = append(r.Reasons, fmt.Sprintf("lock manager for %s: %v", spec.Name, obs.LockManager))
	}
	switch {
	case obs.ProbeErr != nil:
		r.Reasons = append(r.Reasons, fmt.Sprintf("heartbeat probe on %s: %v", spec.MountPoint, obs.ProbeErr))
	case timeout > 0 && obs.ProbeTook > timeout:
		r.Reasons = append(r.Reasons, fmt.Sprintf("heartbeat probe on %s took %s, more than %s", spec.MountPoint, obs.ProbeTook.Round(time.Millisecond), timeout))
	}
	r.Ready = len(r.Reasons) == 0
	return r
}

// LockManager tells whether a file system's lock manager runs on this host.
type LockManager interface {
	Check(ctx context.Context) error
}

// ProcessRunning finds a process by its command name in /proc/*/comm:
// dlm_controld for GFS2 and for OCFS2 on the pcmk stack.
type ProcessRunning struct {
	Name     string
	ProcRoot string // "" means /proc; tests point it at a fake tree
}

// Check returns nil when a process called p.Name exists.
func (p ProcessRunning) Check(context.Context) error {
	root := p.ProcRoot
	if root == "" {
		root = "/proc"
	}
	ents, err := os.ReadDir(root)
	if err != nil {
		return fmt.Errorf("listing processes in %s: %w", root, err)
	}
	for _, e := range ents {
		if strings.TrimLeft(e.Name(), "0123456789") != "" {
			continue // not a pid
		}
		b, err := os.ReadFile(filepath.Join(root, e.Name(), "comm"))
		if err != nil {
			continue // the process ended while we looked
		}
		if strings.TrimSpace(string(b)) == p.Name {
			return nil
		}
	}
	return fmt.Errorf("%s is not running", p.Name)
}

// CommandSucceeds runs a status command (e.g. `o2cb cluster-status
// CLUSTER`) and treats exit 0 as running.
type CommandSucceeds struct {
	Runner Runner
	Name   string
	Args   []string
}

// Check runs the command.
func (c CommandSucceeds) Check(ctx context.Context) error {
	if _, err := c.Runner.Run(ctx, c.Name, c.Args...); err != nil {
		return fmt.Errorf("%s says it is not running: %w", CommandLine(c.Name, c.Args), err)
	}
	return nil
}

// Checker is the side-effecting half of readiness on one host: it reads the
// mount table, asks the lock manager, and runs the heartbeat probe.
type Checker struct {
	Host       string
	MountsFile string // "" means /proc/mounts
	Lock       LockManager
	Timeout    time.Duration // probe timeout; 0 means 10 s
	Now        func() time.Time
}

// Check observes spec on this host and evaluates it. The probe runs only
// when the file system is mounted as configured: probing an unmounted
// mount point would write the heartbeat to the local root file system and
// pass.
func (c Checker) Check(ctx context.Context, spec Spec) Readiness {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	var obs Observation
	file := c.MountsFile
	if file == "" {
		file = "/proc/mounts"
	}
	if b, err := os.ReadFile(file); err != nil {
		obs.MountsErr = err
	} else {
		obs.Mounts, obs.MountsErr = ParseMounts(b)
	}
	if c.Lock == nil {
		obs.LockManager = errors.New("no lock manager check configured")
	} else {
		lctx, cancel := context.WithTimeout(ctx, timeout)
		obs.LockManager = c.Lock.Check(lctx)
		cancel()
	}
	m, mounted := FindMount(obs.Mounts, spec.MountPoint)
	if obs.MountsErr == nil && mounted && m.Type == spec.Type {
		hb := Heartbeat{Root: spec.MountPoint, Host: c.Host, Now: c.Now}
		obs.ProbeTook, obs.ProbeErr = hb.Probe(ctx, timeout)
	} else {
		obs.ProbeErr = errors.New("not run: the file system is not mounted as configured")
	}
	return Evaluate(spec, obs, timeout)
}
