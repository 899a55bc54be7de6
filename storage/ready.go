package storage

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/vmha/vmha/sharedfs"
)

// AttrPrefix starts the host attributes that publish storage readiness:
// "storage.NAME" = "ready" or "not-ready" per file system, and
// "storage-ready" = "true" when every configured file system is ready.
const AttrPrefix = "storage."

// HostAttributes turns a host's readiness results into host attributes
// (published through membership tags, usable in location rules as
// Pacemaker users write them, e.g. `storage.vmstore eq ready`).
func HostAttributes(rs []sharedfs.Readiness) map[string]string {
	attrs := map[string]string{}
	all := true
	for _, r := range rs {
		v := "ready"
		if !r.Ready {
			v, all = "not-ready", false
		}
		attrs[AttrPrefix+r.Name] = v
	}
	attrs["storage-ready"] = fmt.Sprint(all)
	return attrs
}

// VMReady is the placement filter's question: can vm run on a host whose
// attributes are hostAttrs? Its file systems must all be ready there
// (logical volumes need no host state: clvm activates them on start and
// refuses when they are active elsewhere). The reason names the file
// systems that are not ready, for `vmha explain`.
func VMReady(resources []Resource, hostAttrs map[string]string) (bool, string) {
	var missing []string
	for _, fs := range Filesystems(resources) {
		switch hostAttrs[AttrPrefix+fs] {
		case "ready":
		case "":
			missing = append(missing, fs+" (no readiness reported)")
		default:
			missing = append(missing, fs)
		}
	}
	if len(missing) > 0 {
		return false, "storage not ready: " + strings.Join(missing, ", ")
	}
	return true, ""
}

// Users returns the VMs (sorted) with a disk on the named storage resource
// (file system or VG): the VMs to stop or migrate before that storage is
// taken down for maintenance on a host.
func Users(name string, vmResources map[string][]Resource) []string {
	var out []string
	for vm, rs := range vmResources {
		for _, r := range rs {
			if r.Name == name {
				out = append(out, vm)
				break
			}
		}
	}
	sort.Strings(out)
	return out
}

// Spec is f as the readiness checker sees it.
func (f Filesystem) Spec() sharedfs.Spec {
	return sharedfs.Spec{Name: f.Name, Type: f.Type, MountPoint: f.MountPoint}
}

// LockManagerFor is the lock manager check for f: `o2cb cluster-status
// CLUSTER` for OCFS2 on its own o2cb stack (exit 0 when the cluster is
// online), a running dlm_controld for GFS2 and for OCFS2 on pcmk.
func LockManagerFor(f Filesystem, cluster string, r sharedfs.Runner) sharedfs.LockManager {
	if f.Type == "ocfs2" && f.OCFS2Stack() == "o2cb" {
		return sharedfs.CommandSucceeds{Runner: r, Name: "o2cb", Args: []string{"cluster-status", cluster}}
	}
	return sharedfs.ProcessRunning{Name: "dlm_controld"}
}

// HostCheck observes every file system of the config on this host.
type HostCheck struct {
	Host       string
	Cluster    string
	Runner     sharedfs.Runner // for lock manager status commands
	MountsFile string          // "" means /proc/mounts
	Timeout    time.Duration   // per probe; 0 means 10 s
	Now        func() time.Time
}

// Check returns one readiness per configured file system, in config
// order; HostAttributes turns them into the host's attributes.
func (h HostCheck) Check(ctx context.Context, cfg Config) []sharedfs.Readiness {
	out := make([]sharedfs.Readiness, 0, len(cfg.Filesystems))
	for _, f := range cfg.Filesystems {
		c := sharedfs.Checker{Host: h.Host, MountsFile: h.MountsFile, Lock: LockManagerFor(f, h.Cluster, h.Runner), Timeout: h.Timeout, Now: h.Now}
		out = append(out, c.Check(ctx, f.Spec()))
	}
	return out
}
