package storage

import (
	"fmt"
	"sort"
	"strings"

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
