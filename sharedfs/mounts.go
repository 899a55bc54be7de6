package sharedfs

import (
	"bufio"
	"bytes"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

// Mount is one line of /proc/mounts (or /proc/self/mounts, /etc/mtab).
type Mount struct {
	Device     string
	MountPoint string
	Type       string
	Options    []string
}

// ReadOnly reports whether the mount has the ro option: a cluster file system
// mounted read-only (e.g. after a withdraw) cannot hold a running VM's disk.
func (m Mount) ReadOnly() bool {
	for _, o := range m.Options {
		if o == "ro" {
			return true
		}
	}
	return false
}

// ParseMounts parses the kernel's mount table format: device, mount point,
// type, options, dump, pass, separated by spaces, with space, tab, newline
// and backslash in names written as octal escapes (\040, \011, \012, \134).
// A line with fewer than four fields is an error naming the line, since a
// table we cannot read must not look like "nothing mounted".
func ParseMounts(data []byte) ([]Mount, error) {
	var out []Mount
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 {
			return nil, fmt.Errorf("mount table line %d %q: want at least 4 fields (device, mount point, type, options), got %d", n, line, len(f))
		}
		dev, err := unescapeMount(f[0])
		if err != nil {
			return nil, fmt.Errorf("mount table line %d device %q: %w", n, f[0], err)
		}
		mp, err := unescapeMount(f[1])
		if err != nil {
			return nil, fmt.Errorf("mount table line %d mount point %q: %w", n, f[1], err)
		}
		out = append(out, Mount{Device: dev, MountPoint: mp, Type: f[2], Options: strings.Split(f[3], ",")})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("mount table: %w", err)
	}
	return out, nil
}

// unescapeMount undoes the kernel's octal escapes (\NNN) in a mount table
// field.
func unescapeMount(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+4 > len(s) {
			return "", fmt.Errorf("truncated escape at byte %d", i)
		}
		v, err := strconv.ParseUint(s[i+1:i+4], 8, 8)
		if err != nil {
			return "", fmt.Errorf("bad escape %q at byte %d", s[i:i+4], i)
		}
		b.WriteByte(byte(v))
		i += 3
	}
	return b.String(), nil
}

// FindMount returns the last mount at mountPoint (the one in effect when
// several are stacked), comparing cleaned paths.
func FindMount(mounts []Mount, mountPoint string) (Mount, bool) {
	want := filepath.Clean(mountPoint)
	for i := len(mounts) - 1; i >= 0; i-- {
		if filepath.Clean(mounts[i].MountPoint) == want {
			return mounts[i], true
		}
	}
	return Mount{}, false
}

// MountsOfDevice returns the mounts whose source is device (cleaned path).
func MountsOfDevice(mounts []Mount, device string) []Mount {
	want := filepath.Clean(device)
	var out []Mount
	for _, m := range mounts {
		if filepath.Clean(m.Device) == want {
			out = append(out, m)
		}
	}
	return out
}
