package cluster

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"

	"github.com/vmha/vmha/cluster/decide"
)

const testHost = "host1"

// memberDir makes a data directory as a cluster member leaves it: raft.db
// with log entries first..last at term 3, a raft snapshot at snapAt (0:
// none) and serf.snapshot.
func memberDir(t *testing.T, first, last, snapAt uint64) string {
	t.Helper()
	dir := t.TempDir()
	s, err := raftboltdb.NewBoltStore(filepath.Join(dir, raftDBName))
	if err != nil {
		t.Fatal(err)
	}
	var logs []*raft.Log
	for i := first; i <= last && first > 0; i++ {
		logs = append(logs, &raft.Log{Index: i, Term: 3, Type: raft.LogCommand, Data: bytes.Repeat([]byte{'x'}, 1024)})
	}
	if len(logs) > 0 {
		if err := s.StoreLogs(logs); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetUint64([]byte("CurrentTerm"), 3); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if snapAt > 0 {
		writeSnapshot(t, dir, snapAt, []byte(`{"config":{"vms":{"web1":{}}}}`))
	}
	writeFile(t, filepath.Join(dir, serfSnapshotName), "alive: host2 127.0.0.1:7946\n", 0o600)
	return dir
}

func writeSnapshot(t *testing.T, dir string, index uint64, state []byte) string {
	t.Helper()
	ss, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	sink, err := ss.Create(raft.SnapshotVersionMax, index, 3, raft.Configuration{}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sink.Write(state); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	return sink.ID()
}

func writeFile(t *testing.T, p, data string, mode fs.FileMode) {
	t.Helper()
	if err := os.WriteFile(p, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

// open runs the start-up check and open; a store it returns is closed.
func open(t *testing.T, dir string) ([]string, error) {
	t.Helper()
	s, warnings, err := openRaftStore(dir, testHost, time.Second)
	if err == nil {
		if s == nil {
			t.Fatal("no store and no error")
		}
		_ = s.Close()
	}
	return warnings, err
}

// mustRefuse checks a refusal names what it must, including the two ways
// back, and that raft.db was left as it was.
func mustRefuse(t *testing.T, dir string, want ...string) string {
	t.Helper()
	before, _ := os.ReadFile(filepath.Join(dir, raftDBName))
	_, existed := os.Stat(filepath.Join(dir, raftDBName))
	_, err := open(t, dir)
	if err == nil {
		t.Fatal("vmhad would start on this data_dir")
	}
	msg := err.Error()
	want = append(want, "refusing to start", "restore "+dir+" from a backup",
		"vmha host remove "+testHost+" --yes", "vmha host add "+testHost, "mv "+dir+" "+dir+".broken")
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("refusal lacks %q:\n%s", w, msg)
		}
	}
	after, _ := os.ReadFile(filepath.Join(dir, raftDBName))
	_, exists := os.Stat(filepath.Join(dir, raftDBName))
	if !bytes.Equal(before, after) || (existed == nil) != (exists == nil) {
		t.Errorf("the refusal changed raft.db (%d bytes before, %d after; existed %v, exists %v)", len(before), len(after), existed == nil, exists == nil)
	}
	return msg
}

func TestDataDirFirstStartAndRestartBeforeTheClusterForms(t *testing.T) {
	dir := t.TempDir()
	if _, err := open(t, dir); err != nil {
		t.Fatalf("a new, empty data_dir is refused: %v", err)
	}
	// The first start made raft.db (no log yet) and serf's files, then
	// stopped before bootstrap_expect hosts were there: a restart is fine.
	writeFile(t, filepath.Join(dir, serfSnapshotName), "alive: host1 127.0.0.1:7946\n", 0o600)
	writeFile(t, filepath.Join(dir, serfKeyringName), `["k"]`, 0o600)
	if _, err := open(t, dir); err != nil {
		t.Fatalf("a restart before the cluster formed is refused: %v", err)
	}
}

func TestDataDirOpensAMember(t *testing.T) {
	dir := memberDir(t, 1, 40, 30)
	f := inspectDataDir(dir, testHost, time.Second)
	s, err := openBoltStore(filepath.Join(dir, raftDBName), time.Second, true)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	f.readStore(s)
	if w, err := f.verdict(); err != nil || len(w) > 0 {
		t.Fatalf("a sound member's data_dir: %v %v", w, err)
	}
	if f.FirstIndex != 1 || f.LastIndex != 40 || f.Term != 3 || len(f.Snapshots) != 1 || f.Snapshots[0].Index != 30 {
		t.Fatalf("facts %+v", f)
	}
}

func TestDataDirRefusesEmptyRaftDBBesideSnapshots(t *testing.T) {
	dir := memberDir(t, 1, 40, 30)
	if err := os.Truncate(filepath.Join(dir, raftDBName), 0); err != nil {
		t.Fatal(err)
	}
	mustRefuse(t, dir, dir+"/raft.db is empty (0 bytes)", "this data_dir belonged to a cluster member", "snapshots/3-30-", "serf.snapshot")

	// Empty with nothing else beside it: refused too, with the hint.
	lone := t.TempDir()
	writeFile(t, filepath.Join(lone, raftDBName), "", 0o600)
	mustRefuse(t, lone, lone+"/raft.db is empty (0 bytes)", "If this host never was a cluster member")
}

func TestDataDirRefusesMissingRaftDBBesideSerfSnapshot(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, serfSnapshotName), "alive: host2 127.0.0.1:7946\n", 0o600)
	mustRefuse(t, dir, dir+"/raft.db is missing", "found in "+dir+": serf.snapshot")

	dir = memberDir(t, 1, 40, 30)
	if err := os.Remove(filepath.Join(dir, raftDBName)); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, agentManagedName), `["web1"]`, 0o600)
	mustRefuse(t, dir, dir+"/raft.db is missing", "snapshots/3-30-", "agent-managed.json")
}

func TestDataDirRefusesRandomBytes(t *testing.T) {
	for _, size := range []int{100, 4096, 64 << 10} {
		dir := t.TempDir()
		b := make([]byte, size)
		_, _ = rand.Read(b)
		writeFile(t, filepath.Join(dir, raftDBName), string(b), 0o600)
		mustRefuse(t, dir, dir+"/raft.db is corrupt")
	}
}

func TestDataDirRefusesTruncatedRaftDB(t *testing.T) {
	// bbolt grows the file ahead of its pages: cut below the pages in use
	// (the high-water mark), not merely the file's length.
	for _, keep := range []float64{0.5, 0.99} {
		dir := memberDir(t, 1, 600, 0)
		p := filepath.Join(dir, raftDBName)
		if err := os.Truncate(p, int64(float64(inUse(t, p))*keep)); err != nil {
			t.Fatal(err)
		}
		msg := mustRefuse(t, dir, dir+"/raft.db is corrupt")
		t.Logf("cut to %.0f%%: %s", keep*100, strings.SplitN(msg, "\n", 2)[0])
	}
	dir := memberDir(t, 1, 600, 0)
	if err := os.Truncate(filepath.Join(dir, raftDBName), 5000); err != nil {
		t.Fatal(err)
	}
	mustRefuse(t, dir, dir+"/raft.db is corrupt")
}

// inUse is how far bbolt's pages reach into the file at p.
func inUse(t *testing.T, p string) int64 {
	t.Helper()
	db, err := bbolt.Open(p, 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	var n int64
	_ = db.View(func(tx *bbolt.Tx) error { n = tx.Size(); return nil })
	return n
}

func TestDataDirRefusesRaftDBWithoutItsState(t *testing.T) {
	// raft.db replaced by a fresh one in a member's data_dir: no log, no
	// snapshot, no term, but the agent's files remain.
	dir := t.TempDir()
	s, err := raftboltdb.NewBoltStore(filepath.Join(dir, raftDBName))
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	writeFile(t, filepath.Join(dir, serfSnapshotName), "alive: host2 127.0.0.1:7946\n", 0o600)
	writeFile(t, filepath.Join(dir, agentGenerationsName), `{"web1":4}`, 0o600)
	mustRefuse(t, dir, dir+"/raft.db holds no log entry and no snapshot", "agent-generations.json")

	// A fresh raft.db that records a term: it voted in a cluster.
	dir = t.TempDir()
	s, err = raftboltdb.NewBoltStore(filepath.Join(dir, raftDBName))
	if err != nil {
		t.Fatal(err)
	}
	_ = s.SetUint64([]byte("CurrentTerm"), 9)
	_ = s.Close()
	mustRefuse(t, dir, "holds no log entry and no snapshot, but records raft term 9")

	// The log was compacted into a snapshot that is gone.
	dir = memberDir(t, 100, 200, 0)
	mustRefuse(t, dir, dir+"/raft.db's log starts at entry 100, but there is no snapshot: entries 1 to 99 are lost")
}

func TestDataDirRefusesDamagedSnapshot(t *testing.T) {
	dir := memberDir(t, 1, 40, 30)
	snaps, _ := filepath.Glob(filepath.Join(dir, snapshotsDirName, "*", "meta.json"))
	if len(snaps) != 1 {
		t.Fatalf("snapshots %v", snaps)
	}
	writeFile(t, snaps[0], "{not json", 0o600)
	mustRefuse(t, dir, snaps[0]+" is not a raft snapshot's metadata")

	dir = memberDir(t, 1, 40, 30)
	states, _ := filepath.Glob(filepath.Join(dir, snapshotsDirName, "*", "state.bin"))
	b, _ := os.ReadFile(states[0])
	b[3] ^= 0xff
	writeFile(t, states[0], string(b), 0o600)
	mustRefuse(t, dir, states[0]+" does not match the checksum in")

	if err := os.Truncate(states[0], 5); err != nil {
		t.Fatal(err)
	}
	mustRefuse(t, dir, states[0]+" holds 5 bytes where")

	// An older damaged snapshot beside a newer sound one: raft never
	// reads it; a warning, not a refusal.
	time.Sleep(2 * time.Millisecond)
	writeSnapshot(t, dir, 35, []byte(`{"config":{}}`))
	w, err := open(t, dir)
	if err != nil || len(w) != 1 || !strings.Contains(w[0], states[0]) {
		t.Fatalf("older damaged snapshot: warnings %q, err %v", w, err)
	}
}

func TestDataDirLock(t *testing.T) {
	dir := t.TempDir()
	first, err := lockDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = lockDataDir(dir)
	want := fmt.Sprintf("data_dir %s is in use by another vmhad (pid %d)", dir, os.Getpid())
	if err == nil || err.Error() != want {
		t.Fatalf("second lock: %v, want %q", err, want)
	}
	if fi, err := os.Stat(filepath.Join(dir, lockFileName)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("lock file: %v %v", fi, err)
	}
	_ = first.Close()
	again, err := lockDataDir(dir)
	if err != nil {
		t.Fatalf("lock after the holder released it: %v", err)
	}
	_ = again.Close()
}

func TestDataDirRaftDBHeldByAnotherProcessDoesNotHang(t *testing.T) {
	dir := memberDir(t, 1, 10, 0)
	db, err := bbolt.Open(filepath.Join(dir, raftDBName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	start := time.Now()
	_, _, err = openRaftStore(dir, testHost, 200*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), dir+"/raft.db is locked by another process") || strings.Contains(err.Error(), "refusing") {
		t.Fatalf("raft.db held elsewhere: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("waited %v", d)
	}
}

func TestDataDirModesTightened(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "elsewhere")
	writeFile(t, outside, "x", 0o644)
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(filepath.Join(dir, snapshotsDirName, "3-30-1"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{dir, filepath.Join(dir, snapshotsDirName), filepath.Join(dir, snapshotsDirName, "3-30-1")} {
		_ = os.Chmod(d, 0o755)
	}
	writeFile(t, filepath.Join(dir, raftDBName), "db", 0o644)
	writeFile(t, filepath.Join(dir, snapshotsDirName, "3-30-1", "state.bin"), "bmc passwords", 0o644)
	writeFile(t, filepath.Join(dir, serfSnapshotName), "s", 0o755)
	writeFile(t, filepath.Join(dir, serfKeyringName), "k", 0o640)
	writeFile(t, filepath.Join(dir, agentManagedName), "[]", 0o600)
	writeFile(t, filepath.Join(dir, agentGenerationsName), "{}", 0o400)
	if err := os.Symlink(outside, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	changed, err := tightenDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range changed {
		rel, _ := filepath.Rel(dir, c.Path)
		got[rel] = fmt.Sprintf("%04o>%04o", c.Was, c.Now)
	}
	want := map[string]string{
		".":                          "0755>0700",
		"snapshots":                  "0755>0700",
		"snapshots/3-30-1":           "0755>0700",
		"snapshots/3-30-1/state.bin": "0644>0600",
		"raft.db":                    "0644>0600",
		"serf.snapshot":              "0755>0600",
		"serf.keyring":               "0640>0600",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("changed %v\nwant    %v", got, want)
	}
	modes := map[string]fs.FileMode{".": 0o700, "snapshots/3-30-1/state.bin": 0o600, "raft.db": 0o600, "agent-managed.json": 0o600, "agent-generations.json": 0o400}
	for rel, m := range modes {
		fi, err := os.Stat(filepath.Join(dir, rel))
		if err != nil || fi.Mode().Perm() != m {
			t.Errorf("%s: %v %v, want %04o", rel, fi.Mode(), err, m)
		}
	}
	if fi, _ := os.Stat(outside); fi.Mode().Perm() != 0o644 {
		t.Errorf("followed the symlink: %s is now %04o", outside, fi.Mode().Perm())
	}
	if again, err := tightenDataDir(dir); err != nil || len(again) != 0 {
		t.Fatalf("second pass: %v %v", again, err)
	}
}

func TestDiskSpaceProblems(t *testing.T) {
	const gib = 1 << 30
	for _, c := range []struct {
		free, total uint64
		low         bool
	}{
		{gib - 1, 10 * gib, true},
		{gib, 10 * gib, false},
		{5*gib - 1, 100 * gib, true},
		{5 * gib, 100 * gib, false},
		{0, 0, true},
	} {
		if got := (diskSpace{Free: c.free, Total: c.total}).low(); got != c.low {
			t.Errorf("free %d of %d: low %v, want %v", c.free, c.total, got, c.low)
		}
	}
	ms := members(map[string]decide.MemberStatus{"host1": decide.MemberAlive, "host2": decide.MemberAlive, "host3": decide.MemberAlive, "host4": decide.MemberFailed})
	tag := func(name, v string) {
		m := ms[name]
		m.Tags = map[string]string{tagDiskLow: v}
		ms[name] = m
	}
	tag("host1", "1/2") // self: measured, not the tag
	tag("host2", fmt.Sprintf("%d/%d", 512<<20, 100*gib))
	tag("host4", "1/2") // not alive: its tag is old news
	if p := diskProblems("host1", "/var/lib/vmha", diskSpace{Free: 20 * gib, Total: 100 * gib}, nil, ms); len(p) != 1 ||
		p[0] != "host host2: its data_dir has 512.0 MiB free of 100.0 GiB (below 5.0 GiB, the larger of 1 GiB and 5 %): when it fills, raft can no longer write its log and the host drops out of the cluster; free space there" {
		t.Fatalf("%q", p)
	}
	p := diskProblems("host1", "/var/lib/vmha", diskSpace{Free: 900 << 20, Total: 10 * gib}, nil, nil)
	if len(p) != 1 || !strings.HasPrefix(p[0], "host host1: data_dir /var/lib/vmha has 900.0 MiB free of 10.0 GiB (below 1.0 GiB") {
		t.Fatalf("%q", p)
	}
	p = diskProblems("host1", "/var/lib/vmha", diskSpace{}, fmt.Errorf("statfs /var/lib/vmha: no such file"), nil)
	if len(p) != 1 || !strings.Contains(p[0], "cannot read the free space of data_dir /var/lib/vmha") {
		t.Fatalf("%q", p)
	}
	if p := diskProblems("host1", "/d", diskSpace{Free: 50 * gib, Total: 100 * gib}, nil, nil); len(p) != 0 {
		t.Fatalf("%q", p)
	}
	if d, err := statDisk(t.TempDir()); err != nil || d.Total == 0 || d.Free > d.Total {
		t.Fatalf("statDisk: %+v %v", d, err)
	}
}
