// Package ocfs2 reads OCFS2 superblocks through ocfs2-tools
// (debugfs.ocfs2 -R stats, debugfs.ocfs2 -R slotmap, tunefs.ocfs2 -Q),
// validates a file system against the cluster (node slots for every host,
// the configured cluster stack and name, not a local-only volume) and
// builds the mkfs.ocfs2 command line.
package ocfs2

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/vmha/vmha/sharedfs"
)

// Stats is what `debugfs.ocfs2 -R stats DEVICE` prints of the superblock.
type Stats struct {
	Label    string
	UUID     string
	Slots    int    // "Max Node Slots"
	Stack    string // "o2cb", "pcmk", or "classic o2cb" when mkfs got no --cluster-stack
	Cluster  string // "" for classic o2cb (the name then lives in /etc/ocfs2/cluster.conf)
	Local    bool   // formatted with -M local: mountable by one host only
	Incompat []string
}

// ParseStats parses debugfs.ocfs2's stats listing: tab-indented lines
// holding one or more "Key: value" pairs separated by three spaces
// ("Block Size Bits: 10   Cluster Size Bits: 12"). It needs the
// "Max Node Slots" line, so output of another command is an error.
func ParseStats(data []byte) (Stats, error) {
	var st Stats
	slotsSeen := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		// Single-valued keys whose values may contain spaces come first.
		switch {
		case strings.HasPrefix(line, "Label:"):
			st.Label = strings.TrimSpace(strings.TrimPrefix(line, "Label:"))
			continue
		case strings.HasPrefix(line, "UUID:"):
			st.UUID = strings.TrimSpace(strings.TrimPrefix(line, "UUID:"))
			continue
		case strings.HasPrefix(line, "Cluster stack:"):
			st.Stack = strings.TrimSpace(strings.TrimPrefix(line, "Cluster stack:"))
			continue
		case strings.HasPrefix(line, "Cluster name:"):
			st.Cluster = strings.TrimSpace(strings.TrimPrefix(line, "Cluster name:"))
			continue
		case strings.HasPrefix(line, "Feature Incompat:"):
			f := strings.Fields(strings.TrimPrefix(line, "Feature Incompat:"))
			if len(f) > 0 {
				st.Incompat = f[1:] // the first field is the numeric mask
			}
			for _, x := range st.Incompat {
				if x == "local" {
					st.Local = true
				}
			}
			continue
		case strings.HasPrefix(line, "Max Node Slots:"):
			v := strings.TrimSpace(strings.TrimPrefix(line, "Max Node Slots:"))
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 255 {
				return Stats{}, fmt.Errorf("debugfs.ocfs2 stats: Max Node Slots %q is not 0..255", v)
			}
			st.Slots, slotsSeen = n, true
		}
	}
	if err := sc.Err(); err != nil {
		return Stats{}, fmt.Errorf("debugfs.ocfs2 stats: %w", err)
	}
	if !slotsSeen {
		return Stats{}, errors.New("debugfs.ocfs2 stats output has no \"Max Node Slots\" line: not an OCFS2 superblock listing")
	}
	return st, nil
}

// ParseQuerySlots parses `tunefs.ocfs2 -Q '%N\n' DEVICE`: the number of
// node slots alone on a line.
func ParseQuerySlots(data []byte) (int, error) {
	s := string(bytes.TrimSpace(data))
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 255 {
		if len(s) > 80 {
			s = s[:80] + "…"
		}
		return 0, fmt.Errorf("tunefs.ocfs2 -Q %%N printed %q, not a slot count 0..255", s)
	}
	return n, nil
}

// Slot is one row of the slot map: which cluster node holds which slot.
type Slot struct {
	Slot int
	Node int
}

// ParseSlotmap parses `debugfs.ocfs2 -R slotmap DEVICE`: a "Slot#   Node#"
// header and one row per slot in use. An unmounted volume lists no rows.
func ParseSlotmap(data []byte) ([]Slot, error) {
	var out []Slot
	header := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if !header {
			if len(f) == 2 && f[0] == "Slot#" && f[1] == "Node#" {
				header = true
				continue
			}
			return nil, fmt.Errorf("debugfs.ocfs2 slotmap: want a \"Slot#   Node#\" header, got %q", sc.Text())
		}
		if len(f) != 2 {
			return nil, fmt.Errorf("debugfs.ocfs2 slotmap row %q: want two numbers", sc.Text())
		}
		s, err1 := strconv.Atoi(f[0])
		n, err2 := strconv.Atoi(f[1])
		if err1 != nil || err2 != nil || s < 0 || n < 0 || s > 255 {
			return nil, fmt.Errorf("debugfs.ocfs2 slotmap row %q: want a slot 0..255 and a node number", sc.Text())
		}
		out = append(out, Slot{Slot: s, Node: n})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("debugfs.ocfs2 slotmap: %w", err)
	}
	if !header {
		return nil, errors.New("debugfs.ocfs2 slotmap output is empty")
	}
	return out, nil
}

// Info is one inspected OCFS2 file system.
type Info struct {
	Device string
	Stats  Stats
	InUse  []Slot // slots held by mounted nodes
}

// Inspect reads device's superblock and slot map, and cross-checks the slot
// count with tunefs.ocfs2 -Q so that a misread of debugfs's layout shows as
// an error rather than a wrong count.
func Inspect(ctx context.Context, r sharedfs.Runner, device string) (Info, error) {
	out, err := r.Run(ctx, "debugfs.ocfs2", "-R", "stats", device)
	if err != nil {
		return Info{}, fmt.Errorf("ocfs2 %s: %w", device, err)
	}
	st, err := ParseStats(out)
	if err != nil {
		return Info{}, fmt.Errorf("ocfs2 %s: %w", device, err)
	}
	out, err = r.Run(ctx, "tunefs.ocfs2", "-Q", `%N\n`, device)
	if err != nil {
		return Info{}, fmt.Errorf("ocfs2 %s: %w", device, err)
	}
	n, err := ParseQuerySlots(out)
	if err != nil {
		return Info{}, fmt.Errorf("ocfs2 %s: %w", device, err)
	}
	if n != st.Slots {
		return Info{}, fmt.Errorf("ocfs2 %s: tunefs.ocfs2 reports %d node slots, debugfs.ocfs2 %d", device, n, st.Slots)
	}
	out, err = r.Run(ctx, "debugfs.ocfs2", "-R", "slotmap", device)
	if err != nil {
		return Info{}, fmt.Errorf("ocfs2 %s: %w", device, err)
	}
	slots, err := ParseSlotmap(out)
	if err != nil {
		return Info{}, fmt.Errorf("ocfs2 %s: %w", device, err)
	}
	return Info{Device: device, Stats: st, InUse: slots}, nil
}

// Stacks vmha accepts: o2cb (OCFS2's own) and pcmk (the DLM through
// corosync, as with GFS2).
const (
	StackO2CB = "o2cb"
	StackPcmk = "pcmk"
)

// Want is what the cluster needs of an OCFS2 file system.
type Want struct {
	Cluster string
	Stack   string // o2cb or pcmk
	Hosts   int
}

// Validate checks info against want and returns every problem at once, each
// naming the device and what was found.
func Validate(info Info, want Want) error {
	var errs []error
	st := info.Stats
	if st.Local {
		errs = append(errs, fmt.Errorf("ocfs2 %s: formatted local-only (-M local): one host can mount it, the cluster needs -M cluster", info.Device))
	}
	if st.Slots < want.Hosts {
		errs = append(errs, fmt.Errorf("ocfs2 %s: %d node slots for %d hosts: each host that mounts it needs one (tunefs.ocfs2 -N %d %s)", info.Device, st.Slots, want.Hosts, want.Hosts, info.Device))
	}
	if st.Stack != want.Stack {
		errs = append(errs, fmt.Errorf("ocfs2 %s: cluster stack %q, want %q (tunefs.ocfs2 --update-cluster-stack with the cluster online)", info.Device, st.Stack, want.Stack))
	}
	if st.Cluster != want.Cluster && !st.Local {
		errs = append(errs, fmt.Errorf("ocfs2 %s: cluster name %q, want %q", info.Device, st.Cluster, want.Cluster))
	}
	return errors.Join(errs...)
}

// MkfsArgs is the mkfs.ocfs2 command line for a cluster: slots for every
// host, the cluster stack and name written into the superblock (so a host
// of another cluster refuses it), a label. -F skips the check that the
// volume is not mounted on another node, which needs the cluster online;
// storage init checks the mount table and the signature itself and asks
// for --yes. Note that mkfs.ocfs2 1.8.7 runs modprobe and exits 1 when
// /sbin/modprobe is missing although it formatted the volume, so the kmod
// package must be installed.
func MkfsArgs(device, cluster, stack, label string, slots int) ([]string, error) {
	if slots < 1 || slots > 255 {
		return nil, fmt.Errorf("ocfs2 %s: %d node slots: mkfs.ocfs2 takes 1 to 255", device, slots)
	}
	if stack != StackO2CB && stack != StackPcmk {
		return nil, fmt.Errorf("ocfs2 %s: cluster stack %q: want %q or %q", device, stack, StackO2CB, StackPcmk)
	}
	if cluster == "" || len(cluster) > 16 || strings.ContainsAny(cluster, " \t\n:/") {
		return nil, fmt.Errorf("ocfs2 %s: cluster name %q: want 1 to 16 characters without spaces, ':' or '/'", device, cluster)
	}
	if len(label) > 63 {
		return nil, fmt.Errorf("ocfs2 %s: label %q is longer than 63 bytes", device, label)
	}
	args := []string{"-F", "-N", strconv.Itoa(slots), "--cluster-stack=" + stack, "--cluster-name=" + cluster}
	if label != "" {
		args = append(args, "-L", label)
	}
	return append(args, device), nil
}
