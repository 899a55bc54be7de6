// Package gfs2 reads GFS2 superblocks and journal indexes through the
// gfs2-utils tools (tunegfs2 -l, gfs2_edit -p jindex), validates a file
// system against the cluster (lock_dlm, lock table CLUSTER:FS, one journal
// per host that mounts it) and builds the mkfs.gfs2 command line.
package gfs2

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/vmha/vmha/sharedfs"
)

// Superblock is what `tunegfs2 -l` prints.
type Superblock struct {
	Label        string // "File system volume name" (mkfs sets it to the lock table)
	UUID         string
	LockProtocol string // lock_dlm for a cluster, lock_nolock for one host
	LockTable    string // CLUSTER:FSNAME
	BlockSize    int
}

// Cluster and FSName split the lock table at its colon.
func (s Superblock) Cluster() string { c, _, _ := strings.Cut(s.LockTable, ":"); return c }

// FSName is the part of the lock table after the colon.
func (s Superblock) FSName() string { _, f, _ := strings.Cut(s.LockTable, ":"); return f }

// ParseTunegfs2 parses `tunegfs2 -l DEVICE`: "Key: value" lines. It needs
// at least the lock protocol and the magic number line, so that the output
// of some other tool or a truncated run is an error, not an empty lock
// table.
func ParseTunegfs2(data []byte) (Superblock, error) {
	var sb Superblock
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		seen[k] = true
		switch k {
		case "File system volume name":
			sb.Label = v
		case "File system UUID":
			sb.UUID = v
		case "Lock protocol":
			sb.LockProtocol = v
		case "Lock table":
			sb.LockTable = v
		case "Block size":
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return Superblock{}, fmt.Errorf("tunegfs2: block size %q is not a positive number", v)
			}
			sb.BlockSize = n
		}
	}
	if err := sc.Err(); err != nil {
		return Superblock{}, fmt.Errorf("tunegfs2 output: %w", err)
	}
	for _, k := range []string{"File system magic number", "Lock protocol", "Lock table"} {
		if !seen[k] {
			return Superblock{}, fmt.Errorf("tunegfs2 output has no %q line: not a GFS2 superblock listing", k)
		}
	}
	return sb, nil
}

// journalEntry matches a journal's directory entry in gfs2_edit's listing
// of the jindex directory, e.g.
// "   3/3 [FC7745EB] 1/18 (0x1/0x12) +0: File    journal0".
var journalEntry = regexp.MustCompile(`:\s+File\s+journal([0-9]+)\s*$`)

// ParseJindex counts the journals in `gfs2_edit -p jindex DEVICE`: the
// distinct journalN files of the journal index directory, whether it is
// stuffed in its inode or spread over hashed leaf blocks (both layouts seen
// from mkfs.gfs2 3.5). The numbers must run 0..N-1, as mkfs and gfs2_jadd
// create them; a gap means a listing we do not understand.
func ParseJindex(data []byte) (int, error) {
	if !bytes.Contains(data, []byte("Journal Index")) {
		return 0, errors.New("gfs2_edit output has no \"Journal Index\" header: not a jindex listing")
	}
	seen := map[int]bool{}
	highest := -1
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		m := journalEntry.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		n, err := strconv.Atoi(m[1])
		if err != nil || n > 1<<16 {
			return 0, fmt.Errorf("gfs2_edit: journal number %q out of range", m[1])
		}
		seen[n] = true
		if n > highest {
			highest = n
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("gfs2_edit output: %w", err)
	}
	if len(seen) == 0 {
		return 0, errors.New("gfs2_edit jindex listing names no journal")
	}
	if len(seen) != highest+1 {
		return 0, fmt.Errorf("gfs2_edit jindex listing names %d journals but numbers up to journal%d", len(seen), highest)
	}
	return len(seen), nil
}

// Info is one inspected GFS2 file system.
type Info struct {
	Device     string
	Superblock Superblock
	Journals   int
}

// Inspect reads device's superblock and counts its journals. gfs2_edit
// 3.5 fails to open a bare relative name ("g.img"), so the path is made
// absolute first.
func Inspect(ctx context.Context, r sharedfs.Runner, device string) (Info, error) {
	dev, err := filepath.Abs(device)
	if err != nil {
		return Info{}, fmt.Errorf("gfs2 %s: %w", device, err)
	}
	out, err := r.Run(ctx, "tunegfs2", "-l", dev)
	if err != nil {
		return Info{}, fmt.Errorf("gfs2 %s: %w", device, err)
	}
	sb, err := ParseTunegfs2(out)
	if err != nil {
		return Info{}, fmt.Errorf("gfs2 %s: %w", device, err)
	}
	out, err = r.Run(ctx, "gfs2_edit", "-p", "jindex", dev)
	if err != nil {
		return Info{}, fmt.Errorf("gfs2 %s: %w", device, err)
	}
	j, err := ParseJindex(out)
	if err != nil {
		return Info{}, fmt.Errorf("gfs2 %s: %w", device, err)
	}
	return Info{Device: device, Superblock: sb, Journals: j}, nil
}

// Want is what the cluster needs of a GFS2 file system.
type Want struct {
	Cluster string // the cluster name the DLM runs under
	FSName  string // the name after the colon; "" accepts any
	Hosts   int    // hosts that mount it: each needs its own journal
}

// Validate checks info against want and returns every problem at once, each
// naming the device and the value found.
func Validate(info Info, want Want) error {
	var errs []error
	sb := info.Superblock
	if sb.LockProtocol != "lock_dlm" {
		errs = append(errs, fmt.Errorf("gfs2 %s: lock protocol is %q, want \"lock_dlm\" (a cluster file system; lock_nolock would let hosts corrupt each other)", info.Device, sb.LockProtocol))
	}
	wantTable := want.Cluster + ":" + want.FSName
	switch {
	case !strings.Contains(sb.LockTable, ":"):
		errs = append(errs, fmt.Errorf("gfs2 %s: lock table %q is not CLUSTER:FSNAME", info.Device, sb.LockTable))
	case sb.Cluster() != want.Cluster:
		errs = append(errs, fmt.Errorf("gfs2 %s: lock table %q names cluster %q, want %q (the DLM refuses the mount; fix with tunegfs2 -o locktable=%s)", info.Device, sb.LockTable, sb.Cluster(), want.Cluster, fixTable(want, sb)))
	case want.FSName != "" && sb.FSName() != want.FSName:
		errs = append(errs, fmt.Errorf("gfs2 %s: lock table %q, want %q", info.Device, sb.LockTable, wantTable))
	}
	if info.Journals < want.Hosts {
		errs = append(errs, fmt.Errorf("gfs2 %s: %d journals for %d hosts: each host that mounts it needs one (add %d with gfs2_jadd -j %d MOUNTPOINT)", info.Device, info.Journals, want.Hosts, want.Hosts-info.Journals, want.Hosts-info.Journals))
	}
	return errors.Join(errs...)
}

func fixTable(want Want, sb Superblock) string {
	fs := want.FSName
	if fs == "" {
		fs = sb.FSName()
	}
	return want.Cluster + ":" + fs
}

// JournalMiB is the journal size vmha formats with: mkfs.gfs2's minimum
// (8 MiB) is enough for VM images, which are few large files, and keeps
// small test images possible. Larger is set with MkfsOptions.JournalMiB.
const JournalMiB = 8

// MkfsArgs is the mkfs.gfs2 command line for a cluster of hosts: lock_dlm,
// lock table CLUSTER:FSNAME, one journal per host. -O skips the
// interactive question; the caller has already decided (storage init asks
// for --yes).
func MkfsArgs(device, cluster, fsName string, journals, journalMiB int) ([]string, error) {
	if err := checkTablePart("cluster name", cluster, 32); err != nil {
		return nil, err
	}
	if err := checkTablePart("file system name", fsName, 30); err != nil {
		return nil, err
	}
	if journals < 1 {
		return nil, fmt.Errorf("gfs2 %s: %d journals: need at least one", device, journals)
	}
	if journalMiB == 0 {
		journalMiB = JournalMiB
	}
	if journalMiB < 8 || journalMiB > 1024 {
		return nil, fmt.Errorf("gfs2 %s: journal size %d MiB: mkfs.gfs2 takes 8 to 1024", device, journalMiB)
	}
	return []string{"-O", "-p", "lock_dlm", "-t", cluster + ":" + fsName,
		"-j", strconv.Itoa(journals), "-J", strconv.Itoa(journalMiB), device}, nil
}

// checkTablePart applies mkfs.gfs2's limits to the lock table parts
// (cluster name up to 32 bytes, file system name up to 30; letters,
// digits, '-' and '_').
func checkTablePart(what, s string, maxLen int) error {
	if s == "" || len(s) > maxLen {
		return fmt.Errorf("gfs2 lock table %s %q: want 1 to %d characters", what, s, maxLen)
	}
	for _, c := range s {
		if !isNameChar(c) {
			return fmt.Errorf("gfs2 lock table %s %q: only letters, digits, '-' and '_'", what, s)
		}
	}
	return nil
}

func isNameChar(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}
