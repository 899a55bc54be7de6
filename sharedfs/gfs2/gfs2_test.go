package gfs2

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmha/vmha/internal/testlab/testenv"
	"github.com/vmha/vmha/sharedfs"
)

func readTestdata(t testing.TB, name string) []byte { return testenv.Testdata(t, name) }

// The testdata files are the output of tunegfs2 -l and gfs2_edit -p jindex
// (gfs2-utils 3.5.0, Debian 12) on images made with
// mkfs.gfs2 -O -p lock_dlm -t alpha:vmstore -j 3 -J 8, -t alpha:vm1 -j 1
// and -b 1024 -t alpha:big -j 60 (whose jindex no longer fits in its inode
// and is listed as hashed leaf blocks).
func TestParseTunegfs2Captured(t *testing.T) {
	sb, err := ParseTunegfs2(readTestdata(t, "tunegfs2-l-alpha-vmstore.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if sb.LockProtocol != "lock_dlm" || sb.LockTable != "alpha:vmstore" || sb.Cluster() != "alpha" || sb.FSName() != "vmstore" || sb.BlockSize != 4096 {
		t.Fatalf("got %+v", sb)
	}
	if sb.UUID != "a3375fa5-e3ee-4402-9515-010c71857d67" {
		t.Fatalf("uuid %q", sb.UUID)
	}
	sb, err = ParseTunegfs2(readTestdata(t, "tunegfs2-l-alpha-big.txt"))
	if err != nil || sb.LockTable != "alpha:big" || sb.BlockSize != 1024 {
		t.Fatalf("got %+v, %v", sb, err)
	}
}

func TestParseTunegfs2Rejects(t *testing.T) {
	for name, in := range map[string]string{
		"empty":          "",
		"other tool":     "Cluster stack: o2cb\nCluster name: alpha\n",
		"no lock table":  "File system magic number: 0x1161970\nLock protocol: lock_dlm\n",
		"bad block size": "File system magic number: 0x1161970\nBlock size: x\nLock protocol: lock_dlm\nLock table: a:b\n",
	} {
		if _, err := ParseTunegfs2([]byte(in)); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

func TestParseJindexCaptured(t *testing.T) {
	for file, want := range map[string]int{"jindex-1.txt": 1, "jindex-3.txt": 3, "jindex-60-exhash.txt": 60} {
		n, err := ParseJindex(readTestdata(t, file))
		if err != nil || n != want {
			t.Errorf("%s: %d journals, %v; want %d", file, n, err, want)
		}
	}
}

func TestParseJindexRejects(t *testing.T) {
	three := string(readTestdata(t, "jindex-3.txt"))
	for name, in := range map[string]string{
		"empty":      "",
		"no header":  strings.ReplaceAll(three, "Journal Index", "Master"),
		"no journal": strings.ReplaceAll(three, "File    journal", "File    other"),
		"gap":        strings.Replace(three, "journal1\n", "journal7\n", 1),
	} {
		if n, err := ParseJindex([]byte(in)); err == nil {
			t.Errorf("%s: parsed as %d journals", name, n)
		}
	}
}

func TestValidate(t *testing.T) {
	good := Info{Device: "/dev/sdb", Journals: 3, Superblock: Superblock{LockProtocol: "lock_dlm", LockTable: "alpha:vmstore"}}
	if err := Validate(good, Want{Cluster: "alpha", FSName: "vmstore", Hosts: 3}); err != nil {
		t.Fatalf("good file system refused: %v", err)
	}
	if err := Validate(good, Want{Cluster: "alpha", Hosts: 2}); err != nil {
		t.Fatalf("any fs name and spare journals refused: %v", err)
	}
	cases := []struct {
		name string
		info Info
		want Want
		msgs []string
	}{
		{"too few journals", good, Want{Cluster: "alpha", Hosts: 4}, []string{"/dev/sdb", "3 journals for 4 hosts", "gfs2_jadd -j 1"}},
		{"wrong cluster", good, Want{Cluster: "beta", Hosts: 3}, []string{"/dev/sdb", `"alpha:vmstore"`, `want "beta"`, "locktable=beta:vmstore"}},
		{"wrong fs name", good, Want{Cluster: "alpha", FSName: "other", Hosts: 3}, []string{`want "alpha:other"`}},
		{"nolock", Info{Device: "d", Journals: 3, Superblock: Superblock{LockProtocol: "lock_nolock", LockTable: "alpha:x"}}, Want{Cluster: "alpha", Hosts: 1}, []string{`"lock_nolock"`}},
		{"no colon", Info{Device: "d", Journals: 3, Superblock: Superblock{LockProtocol: "lock_dlm", LockTable: "alpha"}}, Want{Cluster: "alpha", Hosts: 1}, []string{"not CLUSTER:FSNAME"}},
		{"all at once", Info{Device: "d", Journals: 1, Superblock: Superblock{LockProtocol: "lock_nolock", LockTable: "x:y"}}, Want{Cluster: "alpha", Hosts: 2}, []string{"lock_nolock", `names cluster "x"`, "1 journals for 2 hosts"}},
	}
	for _, c := range cases {
		err := Validate(c.info, c.want)
		if err == nil {
			t.Errorf("%s: accepted", c.name)
			continue
		}
		for _, m := range c.msgs {
			if !strings.Contains(err.Error(), m) {
				t.Errorf("%s: error %q does not say %q", c.name, err, m)
			}
		}
	}
}

func TestMkfsArgs(t *testing.T) {
	args, err := MkfsArgs("/dev/sdb", "alpha", "vmstore", 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(args, " "), "-O -p lock_dlm -t alpha:vmstore -j 3 -J 8 /dev/sdb"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	for _, bad := range []struct {
		c, f string
		j, m int
	}{{"", "x", 1, 8}, {"a:b", "x", 1, 8}, {"alpha", strings.Repeat("x", 31), 1, 8}, {"alpha", "x", 0, 8}, {"alpha", "x", 1, 4}} {
		if _, err := MkfsArgs("/dev/sdb", bad.c, bad.f, bad.j, bad.m); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// TestRealTools formats image files with the real mkfs.gfs2 and reads them
// back with the real tunegfs2 and gfs2_edit. Mounting them is what the
// kernel prevents here (no gfs2 module, no DLM).
func TestRealTools(t *testing.T) {
	for _, tool := range []string{"mkfs.gfs2", "tunegfs2", "gfs2_edit"} {
		testenv.NeedCommand(t, tool)
	}
	ctx := context.Background()
	r := sharedfs.ExecRunner{}
	for _, j := range []int{1, 2, 5} {
		img := filepath.Join(t.TempDir(), "g.img")
		if err := os.WriteFile(img, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(img, 256<<20); err != nil {
			t.Fatal(err)
		}
		args, err := MkfsArgs(img, "alpha", "vm"+string(rune('0'+j)), j, 0)
		if err != nil {
			t.Fatal(err)
		}
		if out, err := r.Run(ctx, "mkfs.gfs2", args...); err != nil {
			t.Fatalf("mkfs.gfs2 %v: %v\n%s", args, err, out)
		}
		info, err := Inspect(ctx, r, img)
		if err != nil {
			t.Fatal(err)
		}
		if info.Journals != j || info.Superblock.LockTable != "alpha:vm"+string(rune('0'+j)) || info.Superblock.LockProtocol != "lock_dlm" {
			t.Fatalf("-j %d: read back %+v", j, info)
		}
		if err := Validate(info, Want{Cluster: "alpha", Hosts: j}); err != nil {
			t.Fatalf("-j %d: %v", j, err)
		}
		if err := Validate(info, Want{Cluster: "alpha", Hosts: j + 1}); err == nil {
			t.Fatalf("-j %d accepted for %d hosts", j, j+1)
		}
		if err := Validate(info, Want{Cluster: "beta", Hosts: j}); err == nil {
			t.Fatalf("lock table alpha accepted for cluster beta")
		}
	}
	// tunegfs2 on something that is not GFS2 fails, and Inspect says which device.
	junk := filepath.Join(t.TempDir(), "junk.img")
	if err := os.WriteFile(junk, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Inspect(ctx, r, junk); err == nil || !strings.Contains(err.Error(), junk) {
		t.Fatalf("zeroed image: %v", err)
	}
}

func FuzzParseTunegfs2(f *testing.F) {
	f.Add(readTestdata(f, "tunegfs2-l-alpha-vmstore.txt"))
	f.Add(readTestdata(f, "tunegfs2-l-alpha-big.txt"))
	f.Add([]byte("Lock table: :\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		sb, err := ParseTunegfs2(data)
		if err != nil {
			return
		}
		// Whatever parsed splits back into the table it came from.
		if strings.Contains(sb.LockTable, ":") && sb.Cluster()+":"+sb.FSName() != sb.LockTable {
			t.Fatalf("lock table %q splits into %q and %q", sb.LockTable, sb.Cluster(), sb.FSName())
		}
		_ = Validate(Info{Superblock: sb}, Want{Cluster: "alpha", Hosts: 2})
	})
}

func FuzzParseJindex(f *testing.F) {
	for _, n := range []string{"jindex-1.txt", "jindex-3.txt", "jindex-60-exhash.txt"} {
		f.Add(readTestdata(f, n))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := ParseJindex(data)
		if err == nil && n < 1 {
			t.Fatalf("%d journals without an error", n)
		}
	})
}
