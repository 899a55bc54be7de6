// Package storage maps a VM's disks to the cluster's storage resources
// (cluster file systems, logical volumes of shared volume groups), checks
// the storage config, and formats a cluster file system (`vmha storage
// init`). A VM may run only where all its storage is ready, so a disk that
// is on no known storage is an error, not a silent pass.
package storage

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
)

// Filesystem is a cluster file system every host mounts.
type Filesystem struct {
	Name       string `json:"name" yaml:"name" mapstructure:"name"`
	Type       string `json:"type" yaml:"type" mapstructure:"type"` // "gfs2" or "ocfs2"
	Device     string `json:"device" yaml:"device" mapstructure:"device"`
	MountPoint string `json:"mount_point" yaml:"mount_point" mapstructure:"mount_point"`
	// FSName is GFS2's name after the colon of the lock table
	// (CLUSTER:FSNAME); "" means Name.
	FSName string `json:"fs_name,omitempty" yaml:"fs_name,omitempty" mapstructure:"fs_name"`
	// Stack is OCFS2's cluster stack, "o2cb" (default) or "pcmk".
	Stack string `json:"stack,omitempty" yaml:"stack,omitempty" mapstructure:"stack"`
}

// VolumeGroup is a shared VG (lvmlockd) whose LVs hold VM disks.
type VolumeGroup struct {
	Name     string `json:"name" yaml:"name" mapstructure:"name"`
	LockType string `json:"lock_type" yaml:"lock_type" mapstructure:"lock_type"` // "dlm" or "sanlock"
}

// Config is the cluster's storage.
type Config struct {
	Filesystems  []Filesystem  `json:"filesystems,omitempty" yaml:"filesystems,omitempty" mapstructure:"filesystems"`
	VolumeGroups []VolumeGroup `json:"volume_groups,omitempty" yaml:"volume_groups,omitempty" mapstructure:"volume_groups"`
}

// GFS2FSName is the lock table's file system name for f.
func (f Filesystem) GFS2FSName() string {
	if f.FSName != "" {
		return f.FSName
	}
	return f.Name
}

// OCFS2Stack is f's cluster stack, o2cb by default.
func (f Filesystem) OCFS2Stack() string {
	if f.Stack != "" {
		return f.Stack
	}
	return "o2cb"
}

// Validate checks the config alone and returns every problem, each naming
// the item.
func (c Config) Validate() error {
	var errs []error
	names := map[string]string{}
	claim := func(kind, name string) {
		if prev, ok := names[name]; ok {
			errs = append(errs, fmt.Errorf("storage: %s %q has the same name as %s %q", kind, name, prev, name))
		}
		names[name] = kind
	}
	mounts := map[string]string{}
	for i, f := range c.Filesystems {
		where := fmt.Sprintf("storage filesystems[%d] %q", i, f.Name)
		if f.Name == "" {
			errs = append(errs, fmt.Errorf("storage filesystems[%d]: name is empty", i))
		} else {
			claim("file system", f.Name)
		}
		switch f.Type {
		case "gfs2":
			if f.Stack != "" {
				errs = append(errs, fmt.Errorf("%s: stack %q is an OCFS2 setting; GFS2 always uses the DLM", where, f.Stack))
			}
		case "ocfs2":
			if s := f.OCFS2Stack(); s != "o2cb" && s != "pcmk" {
				errs = append(errs, fmt.Errorf("%s: stack %q: want o2cb or pcmk", where, f.Stack))
			}
		default:
			errs = append(errs, fmt.Errorf("%s: type %q: want gfs2 or ocfs2", where, f.Type))
		}
		if f.Device == "" || !filepath.IsAbs(f.Device) {
			errs = append(errs, fmt.Errorf("%s: device %q: want an absolute path (e.g. /dev/disk/by-id/...)", where, f.Device))
		}
		mp := filepath.Clean(f.MountPoint)
		if f.MountPoint == "" || !filepath.IsAbs(f.MountPoint) || mp == "/" {
			errs = append(errs, fmt.Errorf("%s: mount point %q: want an absolute path other than /", where, f.MountPoint))
			continue
		}
		for other, name := range mounts {
			if other == mp || strings.HasPrefix(mp, other+"/") || strings.HasPrefix(other, mp+"/") {
				errs = append(errs, fmt.Errorf("%s: mount point %s overlaps %s of %q", where, mp, other, name))
			}
		}
		mounts[mp] = f.Name
	}
	for i, vg := range c.VolumeGroups {
		where := fmt.Sprintf("storage volume_groups[%d] %q", i, vg.Name)
		if err := checkVGName(vg.Name); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
		} else {
			claim("volume group", vg.Name)
		}
		if vg.LockType != "dlm" && vg.LockType != "sanlock" {
			errs = append(errs, fmt.Errorf("%s: lock type %q: want dlm or sanlock (lvmlockd)", where, vg.LockType))
		}
	}
	return errors.Join(errs...)
}

// checkVGName applies LVM's rules for VG names.
func checkVGName(n string) error {
	if n == "" || len(n) > 127 || n == "." || n == ".." || strings.HasPrefix(n, "-") {
		return fmt.Errorf("volume group name %q is not valid for LVM", n)
	}
	for _, c := range n {
		if !isVGChar(c) {
			return fmt.Errorf("volume group name %q: LVM allows only letters, digits and + _ . -", n)
		}
	}
	return nil
}

// Kind of a storage resource.
type Kind string

// The kinds of storage resources: a cluster file system, a logical volume
// of a shared volume group.
const (
	KindFilesystem    Kind = "filesystem"
	KindLogicalVolume Kind = "lv"
)

// Resource is where one disk of a VM lives.
type Resource struct {
	Disk string `json:"disk"`
	Kind Kind   `json:"kind"`
	// Name is the file system's name, or the VG for an LV.
	Name string `json:"name"`
	LV   string `json:"lv,omitempty"`
}

// String is "filesystem vmstore" or "lv vg0/vm1-disk".
func (r Resource) String() string {
	if r.Kind == KindLogicalVolume {
		return fmt.Sprintf("lv %s/%s", r.Name, r.LV)
	}
	return fmt.Sprintf("filesystem %s", r.Name)
}

// DiskError is a disk of a VM that is on no known storage.
type DiskError struct {
	VM     string
	Disk   string
	Reason string
}

func (e *DiskError) Error() string {
	return fmt.Sprintf("VM %s: disk %s: %s", e.VM, e.Disk, e.Reason)
}

// MapDisks maps each disk of vm (as model.ParseDomainXML lists them: file
// paths, block devices, "pool/volume", network names) to the storage
// resource that holds it. Every disk on no known storage is a *DiskError
// naming the VM and the disk; the result then holds the disks that mapped.
//
//   - a file path under a file system's mount point → that file system;
//   - /dev/VG/LV or /dev/mapper/VG-LV of a configured VG → that LV;
//   - "pool/volume" where pool is a configured VG (a libvirt logical pool
//     named after its VG, as virt-manager creates them) → that LV;
//   - anything else (a local disk, a network disk, a pool we do not know)
//     is unknown: running the VM elsewhere would not find it, or would not
//     be protected from a double start.
func (c Config) MapDisks(vm string, disks []string) ([]Resource, error) {
	vgs := map[string]bool{}
	for _, vg := range c.VolumeGroups {
		vgs[vg.Name] = true
	}
	// Longest mount point first, so nested points (refused by Validate,
	// but cheap to get right) pick the innermost.
	fss := append([]Filesystem(nil), c.Filesystems...)
	sort.Slice(fss, func(i, j int) bool { return len(fss[i].MountPoint) > len(fss[j].MountPoint) })

	var out []Resource
	var errs []error
	for _, d := range disks {
		r, reason := c.mapDisk(d, fss, vgs)
		if reason != "" {
			errs = append(errs, &DiskError{VM: vm, Disk: d, Reason: reason})
			continue
		}
		out = append(out, r)
	}
	return out, errors.Join(errs...)
}

func (c Config) mapDisk(d string, fss []Filesystem, vgs map[string]bool) (Resource, string) {
	if d == "" || d == "(disk without source)" {
		return Resource{}, "has no source, so no host can be shown to reach it"
	}
	if strings.HasPrefix(d, "/") {
		p := filepath.Clean(d)
		if vg, lv, ok := lvOfDevice(p); ok {
			if vgs[vg] {
				return Resource{Disk: d, Kind: KindLogicalVolume, Name: vg, LV: lv}, ""
			}
			return Resource{}, fmt.Sprintf("is logical volume %s/%s, but volume group %q is not a configured shared VG", vg, lv, vg)
		}
		for _, f := range fss {
			mp := filepath.Clean(f.MountPoint)
			if strings.HasPrefix(p, mp+"/") {
				return Resource{Disk: d, Kind: KindFilesystem, Name: f.Name}, ""
			}
		}
		return Resource{}, "is on no configured cluster file system or shared volume group (a local path would not exist on the other hosts)"
	}
	if pool, vol, ok := strings.Cut(d, "/"); ok && pool != "" && vol != "" && !strings.Contains(vol, "/") {
		if vgs[pool] {
			return Resource{Disk: d, Kind: KindLogicalVolume, Name: pool, LV: vol}, ""
		}
		return Resource{}, fmt.Sprintf("is volume %q of libvirt pool %q, which is not a configured shared volume group", vol, pool)
	}
	return Resource{}, "is not a path or a pool volume vmha knows (network disks are not managed storage)"
}

// lvOfDevice recognises /dev/VG/LV and /dev/mapper/VG-LV (where a '-'
// inside a name is written '--').
func lvOfDevice(p string) (vg, lv string, ok bool) {
	rest, found := strings.CutPrefix(p, "/dev/mapper/")
	if found {
		if strings.Contains(rest, "/") {
			return "", "", false
		}
		// Split at the first single '-' (not part of a '--').
		for i := 0; i < len(rest); i++ {
			if rest[i] != '-' {
				continue
			}
			if i+1 < len(rest) && rest[i+1] == '-' {
				i++
				continue
			}
			vg = strings.ReplaceAll(rest[:i], "--", "-")
			lv = strings.ReplaceAll(rest[i+1:], "--", "-")
			return vg, lv, vg != "" && lv != ""
		}
		return "", "", false
	}
	rest, found = strings.CutPrefix(p, "/dev/")
	if !found {
		return "", "", false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 2 {
		return "", "", false
	}
	// /dev/disk/…, /dev/mapper handled above; other two-level /dev names
	// that are not VGs (e.g. /dev/md/0, /dev/pts/1) fail the VG lookup.
	return parts[0], parts[1], parts[0] != "" && parts[1] != ""
}

// LVs returns the logical volumes among rs, as "VG/LV", deduplicated in
// order: what clvm activates for the VM.
func LVs(rs []Resource) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range rs {
		if r.Kind != KindLogicalVolume {
			continue
		}
		k := r.Name + "/" + r.LV
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

// Filesystems returns the names of the file systems among rs, deduplicated
// in order: the ones that must be ready on a host before the VM starts there.
func Filesystems(rs []Resource) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range rs {
		if r.Kind == KindFilesystem && !seen[r.Name] {
			seen[r.Name] = true
			out = append(out, r.Name)
		}
	}
	return out
}

func isVGChar(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("+_.-", c)
}
