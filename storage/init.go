package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/vmha/vmha/sharedfs"
	"github.com/vmha/vmha/sharedfs/gfs2"
	"github.com/vmha/vmha/sharedfs/ocfs2"
)

// InitRequest asks to format one cluster file system of the config.
type InitRequest struct {
	FS      Filesystem
	Cluster string // the cluster name: GFS2's lock table prefix, OCFS2's cluster name
	Hosts   int    // journals (GFS2) or node slots (OCFS2) to create
	// Yes is the operator's explicit consent (`--yes`): formatting destroys
	// whatever the device holds, so nothing runs without it.
	Yes bool
	// Force formats a device that carries a signature (a file system, an
	// LVM PV, a partition table). It never formats a mounted device.
	Force bool
	// MountsFile is the mount table to check; "" means /proc/mounts.
	MountsFile string
}

// MkfsCommand is the mkfs command line Init runs for req, after checking
// the parameters; it runs nothing.
func MkfsCommand(req InitRequest) (string, []string, error) {
	if req.Hosts < 1 {
		return "", nil, fmt.Errorf("storage init %s: %d hosts: need at least one journal or slot", req.FS.Name, req.Hosts)
	}
	if req.Cluster == "" {
		return "", nil, fmt.Errorf("storage init %s: the cluster name is empty", req.FS.Name)
	}
	switch req.FS.Type {
	case "gfs2":
		args, err := gfs2.MkfsArgs(req.FS.Device, req.Cluster, req.FS.GFS2FSName(), req.Hosts, 0)
		return "mkfs.gfs2", args, wrapInit(req, err)
	case "ocfs2":
		args, err := ocfs2.MkfsArgs(req.FS.Device, req.Cluster, req.FS.OCFS2Stack(), req.FS.Name, req.Hosts)
		return "mkfs.ocfs2", args, wrapInit(req, err)
	}
	return "", nil, fmt.Errorf("storage init %s: type %q: want gfs2 or ocfs2", req.FS.Name, req.FS.Type)
}

func wrapInit(req InitRequest, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("storage init %s: %w", req.FS.Name, err)
}

// Init formats req.FS.Device with journals/slots for req.Hosts and the
// cluster's lock table or name, then reads the result back and validates
// it. It refuses, before running anything: without Yes; a mounted device
// (per the mount table, by the path given and by the path its symlinks
// resolve to); a device with a blkid signature unless Force. It cannot see
// a mount on another host: run `vmha storage check` first, which does.
func Init(ctx context.Context, r sharedfs.Runner, req InitRequest) error {
	name, args, err := MkfsCommand(req)
	if err != nil {
		return err
	}
	dev := req.FS.Device
	if !req.Yes {
		return fmt.Errorf("storage init %s: formatting %s destroys everything on it; pass --yes to confirm (it would run: %s)", req.FS.Name, dev, sharedfs.CommandLine(name, args))
	}
	if _, err := os.Stat(dev); err != nil {
		return fmt.Errorf("storage init %s: device: %w", req.FS.Name, err)
	}
	file := req.MountsFile
	if file == "" {
		file = "/proc/mounts"
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("storage init %s: cannot tell whether %s is mounted: %w", req.FS.Name, dev, err)
	}
	mounts, err := sharedfs.ParseMounts(b)
	if err != nil {
		return fmt.Errorf("storage init %s: cannot tell whether %s is mounted: %w", req.FS.Name, dev, err)
	}
	paths := []string{dev}
	if target, err := filepath.EvalSymlinks(dev); err == nil && target != filepath.Clean(dev) {
		paths = append(paths, target)
	}
	for _, p := range paths {
		if ms := sharedfs.MountsOfDevice(mounts, p); len(ms) > 0 {
			return fmt.Errorf("storage init %s: %s is mounted at %s (%s); unmount it on every host first (--force does not override this)", req.FS.Name, dev, ms[0].MountPoint, ms[0].Type)
		}
	}
	sig, err := sharedfs.Probe(ctx, r, dev)
	if err != nil {
		return fmt.Errorf("storage init %s: %w", req.FS.Name, err)
	}
	if sig.Type != "" && !req.Force {
		return fmt.Errorf("storage init %s: %s already holds %s (label %q, uuid %s); pass --force to overwrite it", req.FS.Name, dev, sig.Type, sig.Label, sig.UUID)
	}
	if sig.Type != "" {
		// Forced over an existing signature. mkfs.ocfs2 asks "Overwriting
		// existing ocfs2 partition. Proceed (y/N)" on stdin even with -F
		// and aborts without a terminal; wiping the signatures first
		// makes every mkfs see a blank device, and the operator already
		// said --yes --force.
		if out, err := r.Run(ctx, "wipefs", "-a", dev); err != nil {
			return fmt.Errorf("storage init %s: wiping the %s signature: %w (output: %s)", req.FS.Name, sig.Type, err, trim(out))
		}
	}
	if out, err := r.Run(ctx, name, args...); err != nil {
		return fmt.Errorf("storage init %s: %w (output: %s)", req.FS.Name, err, trim(out))
	}
	// Read back what mkfs wrote: a tool that "succeeded" with other
	// parameters than we asked must not pass.
	return wrapInit(req, CheckFilesystem(ctx, r, req.FS, req.Cluster, req.Hosts))
}

func trim(b []byte) string {
	if len(b) > 500 {
		return string(b[len(b)-500:])
	}
	return string(b)
}

// CheckFilesystem reads fs's superblock with the file system's tools and
// validates it for a cluster named cluster with hosts hosts: GFS2 journals
// ≥ hosts and lock table CLUSTER:FSNAME; OCFS2 slots ≥ hosts, the
// configured stack and the cluster name. `vmha storage check` runs it.
func CheckFilesystem(ctx context.Context, r sharedfs.Runner, fs Filesystem, cluster string, hosts int) error {
	switch fs.Type {
	case "gfs2":
		info, err := gfs2.Inspect(ctx, r, fs.Device)
		if err != nil {
			return fmt.Errorf("file system %s: %w", fs.Name, err)
		}
		if err := gfs2.Validate(info, gfs2.Want{Cluster: cluster, FSName: fs.GFS2FSName(), Hosts: hosts}); err != nil {
			return fmt.Errorf("file system %s: %w", fs.Name, err)
		}
		return nil
	case "ocfs2":
		info, err := ocfs2.Inspect(ctx, r, fs.Device)
		if err != nil {
			return fmt.Errorf("file system %s: %w", fs.Name, err)
		}
		if err := ocfs2.Validate(info, ocfs2.Want{Cluster: cluster, Stack: fs.OCFS2Stack(), Hosts: hosts}); err != nil {
			return fmt.Errorf("file system %s: %w", fs.Name, err)
		}
		return nil
	}
	return errors.New("file system " + fs.Name + ": type " + fs.Type + " is not gfs2 or ocfs2")
}

// CheckAll runs CheckFilesystem on every file system of cfg and reports
// every problem: what `vmha storage check` prints.
func CheckAll(ctx context.Context, r sharedfs.Runner, cfg Config, cluster string, hosts int) error {
	var errs []error
	for _, fs := range cfg.Filesystems {
		errs = append(errs, CheckFilesystem(ctx, r, fs, cluster, hosts))
	}
	return errors.Join(errs...)
}
