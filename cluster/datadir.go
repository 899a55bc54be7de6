package cluster

// The data directory: what vmhad keeps on local disk, and the checks that run
// before raft opens it. DESIGN.md invariant 6: a daemon that finds its data
// missing, empty or corrupt where a cluster existed refuses to start and says
// how to recover; it never starts over empty.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc64"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/vmha/vmha/cluster/decide"
	"github.com/vmha/vmha/internal/units"
)

// What the data directory holds.
const (
	lockFileName         = "vmhad.lock"
	raftDBName           = "raft.db"
	snapshotsDirName     = "snapshots" // raft's FileSnapshotStore: snapshots/TERM-INDEX-MS/{meta.json,state.bin}
	serfSnapshotName     = "serf.snapshot"
	serfKeyringName      = "serf.keyring"
	agentManagedName     = "agent-managed.json"
	agentGenerationsName = "agent-generations.json"
)

// boltOpenTimeout bounds the wait for raft.db's own file lock: a process
// holding it makes vmhad fail with a message instead of hanging.
const boltOpenTimeout = 5 * time.Second

// tagDiskLow is the gossip tag a host sets ("FREE/TOTAL" bytes) while its
// data_dir's file system is below the free-space floor, and clears after.
const tagDiskLow = "disk_low"

// lockDataDir takes data_dir/vmhad.lock (flock, exclusive, non-blocking) and
// writes this process's pid into it. The lock lasts while the returned file
// is open; the kernel drops it when the process ends, however it ends.
func lockDataDir(dir string) (*os.File, error) {
	p := filepath.Join(dir, lockFileName)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data_dir %s: lock file: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("data_dir %s is in use by another vmhad (pid %s)", dir, lockHolder(p))
		}
		return nil, fmt.Errorf("data_dir %s: lock %s: %w", dir, p, err)
	}
	// The pid is for the message of a second vmhad; the lock works without.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

// lockHolder reads the pid the lock holder wrote ("unknown" if none).
func lockHolder(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return "unknown"
	}
	s := strings.TrimSpace(string(b))
	if _, err := strconv.Atoi(s); err != nil || len(s) > 10 {
		return "unknown"
	}
	return s
}

// modeChange is a file of the data directory whose mode was wider than
// vmhad's (0600 files, 0700 directories), and what it is now.
type modeChange struct {
	Path     string
	Was, Now fs.FileMode
}

// tightenDataDir makes the data directory and every directory in it 0700 and
// every regular file 0600 (bits are only taken away). Symbolic links are not
// followed and neither they nor sockets or devices are touched. It returns
// what it changed; the first error ends the walk.
func tightenDataDir(dir string) ([]modeChange, error) {
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, err
	}
	var out []modeChange
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var want fs.FileMode
		switch {
		case d.IsDir():
			want = 0o700
		case d.Type().IsRegular():
			want = 0o600
		default:
			return nil // symlink, socket, fifo, device
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		mode := info.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
		if mode&^want == 0 {
			return nil
		}
		now := mode.Perm() & want
		if err := os.Chmod(p, now); err != nil {
			return err
		}
		out = append(out, modeChange{Path: p, Was: mode, Now: now})
		return nil
	})
	return out, err
}

// raftDBState is what raft.db looks like before anything opens it.
type raftDBState int

const (
	raftDBAbsent raftDBState = iota
	raftDBEmpty              // zero length
	raftDBPresent
)

// evidence is one thing in the data directory that shows it was used.
type evidence struct {
	What string
	// FirstStart is set for what any start writes before a cluster
	// forms (serf's files): on its own it does not prove a cluster.
	FirstStart bool
}

// snapInfo is one raft snapshot directory.
type snapInfo struct {
	Name        string // under snapshots/
	Index, Term uint64
	// Err says what is wrong with it, naming the file (nil: intact).
	Err error
}

// dataDirFacts is what the data directory holds. inspectDataDir gathers the
// file-level facts, readStore those of the opened raft store; verdict
// decides from the facts alone.
type dataDirFacts struct {
	Dir, Host string
	RaftDB    raftDBState
	// RaftDBErr: raft.db cannot be read as a raft store (corrupt,
	// truncated, entries missing or undecodable).
	RaftDBErr error
	// Opened: the store was opened and the fields below are known.
	Opened                      bool
	FirstIndex, LastIndex, Term uint64
	// Snapshots are the snapshot directories, newest first.
	Snapshots []snapInfo
	// ListErr: the snapshots directory cannot be read.
	ListErr error
	Found   []evidence
}

func (f *dataDirFacts) path(name string) string { return filepath.Join(f.Dir, name) }

// inspectDataDir gathers what the data directory holds without changing it.
func inspectDataDir(dir, host string, timeout time.Duration) *dataDirFacts {
	f := &dataDirFacts{Dir: dir, Host: host}
	fi, err := os.Lstat(f.path(raftDBName))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		f.RaftDB = raftDBAbsent
	case err != nil:
		f.RaftDB, f.RaftDBErr = raftDBPresent, err
	case !fi.Mode().IsRegular():
		f.RaftDB, f.RaftDBErr = raftDBPresent, fmt.Errorf("%s is not a regular file (%s)", f.path(raftDBName), fi.Mode().Type())
	case fi.Size() == 0:
		f.RaftDB = raftDBEmpty
	default:
		f.RaftDB = raftDBPresent
		if err := checkBolt(f.path(raftDBName), timeout); err != nil {
			f.RaftDBErr = err
		}
	}
	entries, err := os.ReadDir(f.path(snapshotsDirName))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		f.ListErr = fmt.Errorf("cannot list the raft snapshots: %w", err)
	}
	for _, e := range entries {
		// raft writes NAME.tmp and renames it once complete: a .tmp
		// directory is an unfinished snapshot that raft ignores.
		if !e.IsDir() || strings.HasSuffix(e.Name(), ".tmp") {
			continue
		}
		s := checkSnapshot(filepath.Join(f.path(snapshotsDirName), e.Name()))
		s.Name = e.Name()
		f.Snapshots = append(f.Snapshots, s)
		f.Found = append(f.Found, evidence{What: snapshotsDirName + "/" + e.Name() + " (a raft snapshot)"})
	}
	sort.SliceStable(f.Snapshots, func(i, j int) bool { return snapNewer(f.Snapshots[i], f.Snapshots[j]) })
	for _, e := range []evidence{
		{What: serfSnapshotName, FirstStart: true},
		{What: serfKeyringName, FirstStart: true},
		{What: agentManagedName},
		{What: agentGenerationsName},
	} {
		if _, err := os.Lstat(f.path(e.What)); err == nil {
			f.Found = append(f.Found, e)
		}
	}
	return f
}

// snapNewer orders snapshots as raft does (term, index, then time), taking
// them from the directory name (TERM-INDEX-MS) so that a snapshot with a
// broken meta.json still has its place.
func snapNewer(a, b snapInfo) bool {
	pa, pb := snapOrder(a.Name), snapOrder(b.Name)
	for i := range pa {
		if pa[i] != pb[i] {
			return pa[i] > pb[i]
		}
	}
	return a.Name > b.Name
}

func snapOrder(name string) [3]uint64 {
	var out [3]uint64
	parts := strings.Split(name, "-")
	if len(parts) != 3 {
		return out
	}
	for i, p := range parts {
		out[i], _ = strconv.ParseUint(p, 10, 64)
	}
	return out
}

// checkSnapshot verifies one raft snapshot directory as raft's
// FileSnapshotStore reads it: meta.json, and state.bin with the size and
// CRC-64 that meta.json records.
func checkSnapshot(dir string) snapInfo {
	var s snapInfo
	metaPath, statePath := filepath.Join(dir, "meta.json"), filepath.Join(dir, "state.bin")
	b, err := readSmall(metaPath, 1<<20)
	if err != nil {
		s.Err = err
		return s
	}
	var m struct {
		ID          string
		Index, Term uint64
		Size        int64
		CRC         []byte
	}
	if err := json.Unmarshal(b, &m); err != nil {
		s.Err = fmt.Errorf("%s is not a raft snapshot's metadata: %v", metaPath, err)
		return s
	}
	if m.ID == "" || m.Index == 0 || m.Term == 0 || len(m.CRC) != 8 {
		s.Err = fmt.Errorf("%s lacks the snapshot's id, index, term or checksum", metaPath)
		return s
	}
	s.Index, s.Term = m.Index, m.Term
	fh, err := os.Open(statePath)
	if err != nil {
		s.Err = err
		return s
	}
	defer fh.Close()
	h := crc64.New(crc64.MakeTable(crc64.ECMA))
	n, err := io.Copy(h, fh)
	switch {
	case err != nil:
		s.Err = fmt.Errorf("read %s: %w", statePath, err)
	case n != m.Size:
		s.Err = fmt.Errorf("%s holds %d bytes where %s records %d (truncated or overwritten)", statePath, n, metaPath, m.Size)
	case !bytes.Equal(h.Sum(nil), m.CRC):
		s.Err = fmt.Errorf("%s does not match the checksum in %s (damaged)", statePath, metaPath)
	}
	return s
}

func readSmall(p string, limit int64) ([]byte, error) {
	fh, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", p, limit)
	}
	return b, nil
}

// errBoltLocked marks raft.db held by another process: not damage.
var errBoltLocked = errors.New("locked by another process")

// checkBolt reads all of raft.db read-only, without writing to it: both
// meta pages, the file's length against the database's high-water mark,
// every key and value, and bbolt's own consistency check. bbolt reads
// through mmap and may panic (or fault past the end of a truncated file)
// on a damaged file; both come back as an error.
func checkBolt(path string, timeout time.Duration) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s is corrupt: reading it failed: %v", path, r)
		}
	}()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: timeout, PreLoadFreelist: true})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return fmt.Errorf("%s is %w (waited %v): is another vmhad or a tool using it?", path, errBoltLocked, timeout)
		}
		return fmt.Errorf("%s is corrupt: %v", path, err)
	}
	defer func() { _ = db.Close() }()
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	err = db.View(func(tx *bbolt.Tx) error {
		if need := tx.Size(); fi.Size() < need {
			return fmt.Errorf("truncated: %d bytes long, but its pages reach byte %d", fi.Size(), need)
		}
		if err := tx.ForEach(func(_ []byte, b *bbolt.Bucket) error { return touchBucket(b) }); err != nil {
			return err
		}
		var first error
		for e := range tx.Check() {
			if first == nil {
				first = e
			}
		}
		return first
	})
	if err != nil {
		return fmt.Errorf("%s is corrupt: %v", path, err)
	}
	return nil
}

// touchBucket reads every key and value of b and its nested buckets, so that
// a damaged page faults here, under recover, rather than later in raft.
func touchBucket(b *bbolt.Bucket) error {
	var sum byte
	err := b.ForEach(func(k, v []byte) error {
		if v == nil {
			if nb := b.Bucket(k); nb != nil {
				return touchBucket(nb)
			}
		}
		for _, x := range [][]byte{k, v} {
			if len(x) > 0 {
				sum ^= x[0] ^ x[len(x)-1]
			}
		}
		return nil
	})
	_ = sum
	return err
}

// openBoltStore opens raft.db for raft (or read-only), with bbolt's lock
// timeout, and turns a panic inside bbolt into an error that names the file.
func openBoltStore(path string, timeout time.Duration, readOnly bool) (s *raftboltdb.BoltStore, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("%s is corrupt: opening it failed: %v", path, r)
		}
	}()
	o := *bbolt.DefaultOptions
	o.Timeout, o.ReadOnly = timeout, readOnly
	s, err = raftboltdb.New(raftboltdb.Options{Path: path, BoltOptions: &o})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("%s is %w (waited %v): is another vmhad or a tool using it?", path, errBoltLocked, timeout)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// readStore records the opened store's log range and term, and decodes every
// log entry: raft panics on an entry it cannot read, so a gap or a damaged
// entry is found here, where it can be named.
func (f *dataDirFacts) readStore(s *raftboltdb.BoltStore) {
	f.Opened = true
	p := f.path(raftDBName)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			f.RaftDBErr = fmt.Errorf("%s is corrupt: reading it failed: %v", p, r)
		}
	}()
	var err error
	if f.FirstIndex, err = s.FirstIndex(); err == nil {
		f.LastIndex, err = s.LastIndex()
	}
	if err != nil {
		f.RaftDBErr = fmt.Errorf("%s is corrupt: %v", p, err)
		return
	}
	if t, err := s.GetUint64([]byte("CurrentTerm")); err == nil {
		f.Term = t
	} else if !errors.Is(err, raftboltdb.ErrKeyNotFound) {
		f.RaftDBErr = fmt.Errorf("%s is corrupt: current term: %v", p, err)
		return
	}
	if f.FirstIndex == 0 {
		return
	}
	for i := f.FirstIndex; i <= f.LastIndex; i++ {
		var l raft.Log
		if err := s.GetLog(i, &l); err != nil {
			f.RaftDBErr = fmt.Errorf("%s is corrupt: log entry %d of %d..%d: %v", p, i, f.FirstIndex, f.LastIndex, err)
			return
		}
		if l.Index != i {
			f.RaftDBErr = fmt.Errorf("%s is corrupt: the log entry under index %d says it is entry %d", p, i, l.Index)
			return
		}
	}
}

// verdict decides whether vmhad may start on these facts. Before the store is
// opened it judges the files alone; after, the store's contents too. The
// error names the file, what was found and how to recover. Warnings are
// what is wrong but harmless (a damaged snapshot that a newer one replaces).
func (f *dataDirFacts) verdict() (warnings []string, err error) {
	db := f.path(raftDBName)
	switch f.RaftDB {
	case raftDBAbsent:
		if len(f.Found) == 0 {
			return nil, nil // first start in an empty data_dir
		}
		return nil, f.refuse(db+" is missing", "")
	case raftDBEmpty:
		hint := ""
		if len(f.Found) == 0 {
			// Nothing else shows a cluster, but only an interrupted
			// first start or a damaged disk leaves raft.db empty.
			hint = "If this host never was a cluster member (its very first start was interrupted), remove " + db + " and start again. Otherwise"
		}
		return nil, f.refuse(db+" is empty (0 bytes)", hint)
	}
	if f.ListErr != nil {
		return nil, f.refuse(f.ListErr.Error(), "")
	}
	if f.RaftDBErr != nil {
		if errors.Is(f.RaftDBErr, errBoltLocked) {
			return nil, f.RaftDBErr
		}
		return nil, f.refuse(f.RaftDBErr.Error(), "")
	}
	var newestIntact *snapInfo
	for i := range f.Snapshots {
		s := &f.Snapshots[i]
		switch {
		case s.Err == nil && newestIntact == nil:
			newestIntact = s
		case s.Err != nil && newestIntact != nil:
			// raft restores the newest snapshot it can read: an older
			// damaged one is never used, and raft deletes it in time.
			warnings = append(warnings, fmt.Sprintf("%v; raft uses the newer snapshot %s instead", s.Err, newestIntact.Name))
		case s.Err != nil:
			// raft would skip it and restore an older state, or none.
			return warnings, f.refuse(s.Err.Error(), "")
		}
	}
	if !f.Opened {
		return warnings, nil
	}
	if f.LastIndex == 0 && newestIntact == nil {
		if f.Term > 0 {
			return warnings, f.refuse(fmt.Sprintf("%s holds no log entry and no snapshot, but records raft term %d", db, f.Term), "")
		}
		for _, e := range f.Found {
			if !e.FirstStart {
				return warnings, f.refuse(db+" holds no log entry and no snapshot", "")
			}
		}
		return warnings, nil // started before, but never in a cluster
	}
	if f.FirstIndex > 1 && (newestIntact == nil || newestIntact.Index+1 < f.FirstIndex) {
		have := "there is no snapshot"
		if newestIntact != nil {
			have = fmt.Sprintf("the newest snapshot, %s, ends at entry %d", newestIntact.Name, newestIntact.Index)
		}
		return warnings, f.refuse(fmt.Sprintf("%s's log starts at entry %d, but %s: entries 1 to %d are lost", db, f.FirstIndex, have, f.FirstIndex-1), "")
	}
	return warnings, nil
}

// refuse builds the refusal: the problem, what shows a cluster was here, and
// the two ways back (after hint, if any).
func (f *dataDirFacts) refuse(problem, hint string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "refusing to start: %s", problem)
	var found []string
	for _, e := range f.Found {
		found = append(found, e.What)
	}
	if f.Term > 0 {
		found = append(found, fmt.Sprintf("%s at raft term %d", raftDBName, f.Term))
	}
	if len(found) > 0 {
		fmt.Fprintf(&b, "; this data_dir belonged to a cluster member (found in %s: %s)", f.Dir, strings.Join(found, ", "))
	}
	b.WriteString(". Starting anyway would begin an empty cluster history and forget the cluster's hosts and VMs. ")
	if hint != "" {
		b.WriteString(hint + ", to")
	} else {
		b.WriteString("To")
	}
	fmt.Fprintf(&b, " recover, either:\n"+
		"  1. restore %[1]s from a backup taken while vmhad was stopped, then start vmhad; or\n"+
		"  2. rejoin as a new member (other members still hold the cluster): on a running member, once no VM is placed on %[2]s (vmha status; vmha fence %[2]s restarts its VMs elsewhere), run `vmha host remove %[2]s --yes` and announce it again with `vmha host add %[2]s`; then on this host move the data aside (mv %[1]s %[1]s.broken) and start vmhad again: it joins through join: and receives the cluster state.",
		f.Dir, f.Host)
	return errors.New(b.String())
}

// openRaftStore checks the data directory and opens raft.db in it. A data
// directory that held a cluster but lost or damaged its raft state is
// refused. Every check reads only: a refused data_dir is left as it was
// found, for a backup or a closer look.
func openRaftStore(dir, host string, timeout time.Duration) (*raftboltdb.BoltStore, []string, error) {
	f := inspectDataDir(dir, host, timeout)
	warnings, err := f.verdict()
	if err != nil {
		return nil, warnings, err
	}
	path := f.path(raftDBName)
	if f.RaftDB == raftDBPresent {
		ro, err := openBoltStore(path, timeout, true)
		if err != nil {
			f.RaftDBErr = err
		} else {
			f.readStore(ro)
			_ = ro.Close()
		}
		if warnings, err = f.verdict(); err != nil {
			return nil, warnings, err
		}
	}
	store, err := openBoltStore(path, timeout, false)
	if err != nil {
		return nil, warnings, fmt.Errorf("raft store: %w", err)
	}
	return store, warnings, nil
}

// diskSpace is the free and total bytes of the file system under data_dir.
type diskSpace struct{ Free, Total uint64 }

func statDisk(dir string) (diskSpace, error) {
	var s syscall.Statfs_t
	if err := syscall.Statfs(dir, &s); err != nil {
		return diskSpace{}, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return diskSpace{Free: s.Bavail * uint64(s.Bsize), Total: s.Blocks * uint64(s.Bsize)}, nil
}

// floor is the free space below which the data_dir counts as nearly full:
// the larger of 1 GiB and 5 % of the file system.
func (d diskSpace) floor() uint64 { return max(1<<30, d.Total/20) }

func (d diskSpace) low() bool { return d.Free < d.floor() }

// diskProblems are the status lines for data directories running out of
// space: this host's (self, measured now: local, or statErr) and the other
// hosts' (from their gossip tag, set while low).
func diskProblems(self, dir string, local diskSpace, statErr error, members decide.Members) []string {
	var out []string
	const why = "when it fills, raft can no longer write its log and the host drops out of the cluster; free space there"
	switch {
	case statErr != nil:
		out = append(out, fmt.Sprintf("host %s: cannot read the free space of data_dir %s: %v", self, dir, statErr))
	case local.low():
		out = append(out, fmt.Sprintf("host %s: data_dir %s has %s free of %s (below %s, the larger of 1 GiB and 5 %%): %s",
			self, dir, units.Bytes(local.Free), units.Bytes(local.Total), units.Bytes(local.floor()), why))
	}
	names := make([]string, 0, len(members))
	for name := range members {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		m := members[name]
		v := m.Tags[tagDiskLow]
		if name == self || v == "" || m.Status != decide.MemberAlive {
			continue
		}
		var d diskSpace
		if _, err := fmt.Sscanf(v, "%d/%d", &d.Free, &d.Total); err != nil {
			out = append(out, fmt.Sprintf("host %s: its data_dir is nearly full: %s", name, why))
			continue
		}
		out = append(out, fmt.Sprintf("host %s: its data_dir has %s free of %s (below %s, the larger of 1 GiB and 5 %%): %s",
			name, units.Bytes(d.Free), units.Bytes(d.Total), units.Bytes(d.floor()), why))
	}
	return out
}

// diskProblems of this node, measured now.
func (n *Node) diskProblems(members decide.Members) []string {
	d, err := statDisk(n.cfg.DataDir)
	return diskProblems(n.cfg.NodeName, n.cfg.DataDir, d, err, members)
}

// dataDirLoop watches the data directory while vmhad runs: it keeps the
// modes tight (raft writes new snapshots 0644 and serf rewrites its snapshot
// 0755; the 0700 directory already keeps them private) and gossips a
// nearly full file system, so that the leader's vmha status shows it.
func (n *Node) dataDirLoop(ctx context.Context) {
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	published := ""
	for {
		if changed, err := tightenDataDir(n.cfg.DataDir); err != nil {
			n.log.Warn().Err(err).Str("data_dir", n.cfg.DataDir).Msg("cannot tighten the data_dir's modes")
		} else {
			for _, c := range changed {
				n.log.Debug().Str("file", c.Path).Str("was", fmt.Sprintf("%04o", c.Was)).Str("now", fmt.Sprintf("%04o", c.Now)).Msg("data_dir file mode tightened")
			}
		}
		tag := ""
		if d, err := statDisk(n.cfg.DataDir); err != nil {
			n.log.Warn().Err(err).Msg("data_dir free space")
		} else if d.low() {
			tag = fmt.Sprintf("%d/%d", d.Free/(1<<20)<<20, d.Total)
			if published == "" {
				n.log.Error().Str("data_dir", n.cfg.DataDir).Uint64("free_bytes", d.Free).Uint64("floor_bytes", d.floor()).Msg("data_dir is nearly full: raft cannot write its log once it fills")
			}
		}
		if tag != published && n.serf != nil {
			n.setTag(tagDiskLow, tag)
			published = tag
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
