package ocfs2

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

// The testdata files are output of ocfs2-tools 1.8.7 (Debian 12) on images
// made with mkfs.ocfs2 -F -N 4 --cluster-stack=o2cb --cluster-name=alpha
// -L vmstore, -N 2 --cluster-stack=pcmk --cluster-name=beta, -N 2 -M local,
// and -N 2 with no stack (classic o2cb).
func TestParseStatsCaptured(t *testing.T) {
	cases := map[string]Stats{
		"debugfs-stats-alpha-4.txt":     {Label: "vmstore", UUID: "4965E6A1D8DE4BA4A821F829CD1F26D0", Slots: 4, Stack: "o2cb", Cluster: "alpha"},
		"debugfs-stats-pcmk-beta-2.txt": {Slots: 2, Stack: "pcmk", Cluster: "beta"},
		"debugfs-stats-local.txt":       {Slots: 2, Stack: "classic o2cb", Local: true},
		"debugfs-stats-classic.txt":     {Slots: 2, Stack: "classic o2cb"},
	}
	for file, want := range cases {
		got, err := ParseStats(readTestdata(t, file))
		if err != nil {
			t.Errorf("%s: %v", file, err)
			continue
		}
		if got.Slots != want.Slots || got.Stack != want.Stack || got.Cluster != want.Cluster || got.Local != want.Local ||
			(want.Label != "" && got.Label != want.Label) || (want.UUID != "" && got.UUID != want.UUID) {
			t.Errorf("%s: got %+v, want %+v", file, got, want)
		}
	}
}

func TestParseStatsRejects(t *testing.T) {
	stats := string(readTestdata(t, "debugfs-stats-alpha-4.txt"))
	for name, in := range map[string]string{
		"empty":     "",
		"gfs2 tool": "Lock table: alpha:x\n",
		"no slots":  strings.ReplaceAll(stats, "Max Node Slots", "Max Slots"),
		"bad slots": strings.ReplaceAll(stats, "Max Node Slots: 4", "Max Node Slots: 4000"),
	} {
		if _, err := ParseStats([]byte(in)); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

func TestParseQuerySlots(t *testing.T) {
	if n, err := ParseQuerySlots(readTestdata(t, "tunefs-Q-N.txt")); err != nil || n != 4 {
		t.Fatalf("captured: %d, %v", n, err)
	}
	for _, bad := range []string{"", "four", "4 4096", "-1", "256"} {
		if _, err := ParseQuerySlots([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestParseSlotmap(t *testing.T) {
	slots, err := ParseSlotmap(readTestdata(t, "debugfs-slotmap-empty.txt"))
	if err != nil || len(slots) != 0 {
		t.Fatalf("captured (unmounted): %v, %v", slots, err)
	}
	// A mounted volume's rows, in the layout of debugfs.ocfs2's slotmap
	// (written by hand: nothing can mount OCFS2 here).
	slots, err = ParseSlotmap([]byte("\tSlot#   Node#\n\t     0       1\n\t     2       7\n"))
	if err != nil || len(slots) != 2 || slots[1] != (Slot{Slot: 2, Node: 7}) {
		t.Fatalf("rows: %v, %v", slots, err)
	}
	for _, bad := range []string{"", "0 1\n", "\tSlot#   Node#\n\t 0\n", "\tSlot#   Node#\n x y\n"} {
		if _, err := ParseSlotmap([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestValidate(t *testing.T) {
	good := Info{Device: "/dev/sdc", Stats: Stats{Slots: 4, Stack: "o2cb", Cluster: "alpha"}}
	if err := Validate(good, Want{Cluster: "alpha", Stack: "o2cb", Hosts: 4}); err != nil {
		t.Fatalf("good refused: %v", err)
	}
	cases := []struct {
		name string
		info Info
		want Want
		msgs []string
	}{
		{"too few slots", good, Want{Cluster: "alpha", Stack: "o2cb", Hosts: 5}, []string{"/dev/sdc", "4 node slots for 5 hosts", "tunefs.ocfs2 -N 5"}},
		{"wrong stack", good, Want{Cluster: "alpha", Stack: "pcmk", Hosts: 2}, []string{`cluster stack "o2cb", want "pcmk"`}},
		{"wrong name", good, Want{Cluster: "beta", Stack: "o2cb", Hosts: 2}, []string{`cluster name "alpha", want "beta"`}},
		{"classic", Info{Device: "d", Stats: Stats{Slots: 4, Stack: "classic o2cb"}}, Want{Cluster: "alpha", Stack: "o2cb", Hosts: 2}, []string{`"classic o2cb"`, `cluster name ""`}},
		{"local", Info{Device: "d", Stats: Stats{Slots: 4, Stack: "classic o2cb", Local: true}}, Want{Cluster: "alpha", Stack: "o2cb", Hosts: 2}, []string{"local-only"}},
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
	args, err := MkfsArgs("/dev/sdc", "alpha", "o2cb", "vmstore", 3)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(args, " "), "-F -N 3 --cluster-stack=o2cb --cluster-name=alpha -L vmstore /dev/sdc"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	for _, bad := range []struct {
		c, s string
		n    int
	}{{"alpha", "o2cb", 0}, {"alpha", "o2cb", 256}, {"alpha", "cman", 2}, {"", "o2cb", 2}, {strings.Repeat("a", 17), "o2cb", 2}} {
		if _, err := MkfsArgs("/dev/sdc", bad.c, bad.s, "", bad.n); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// TestRealTools formats image files with the real mkfs.ocfs2 and reads
// them back with debugfs.ocfs2 and tunefs.ocfs2. Mounting is what the
// kernel prevents here (no ocfs2 module), so the slot map stays empty.
func TestRealTools(t *testing.T) {
	for _, tool := range []string{"mkfs.ocfs2", "debugfs.ocfs2", "tunefs.ocfs2", "modprobe"} {
		testenv.NeedCommand(t, tool)
	}
	ctx := context.Background()
	r := sharedfs.ExecRunner{}
	for _, c := range []struct {
		stack, cluster string
		slots          int
	}{{"o2cb", "alpha", 2}, {"pcmk", "beta", 5}} {
		img := filepath.Join(t.TempDir(), "o.img")
		if err := os.WriteFile(img, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(img, 256<<20); err != nil {
			t.Fatal(err)
		}
		args, err := MkfsArgs(img, c.cluster, c.stack, "vms", c.slots)
		if err != nil {
			t.Fatal(err)
		}
		if out, err := r.Run(ctx, "mkfs.ocfs2", args...); err != nil {
			t.Fatalf("mkfs.ocfs2 %v: %v\n%s", args, err, out)
		}
		info, err := Inspect(ctx, r, img)
		if err != nil {
			t.Fatal(err)
		}
		if info.Stats.Slots != c.slots || info.Stats.Stack != c.stack || info.Stats.Cluster != c.cluster || info.Stats.Label != "vms" || len(info.InUse) != 0 {
			t.Fatalf("%+v: read back %+v", c, info)
		}
		if err := Validate(info, Want{Cluster: c.cluster, Stack: c.stack, Hosts: c.slots}); err != nil {
			t.Fatal(err)
		}
		if err := Validate(info, Want{Cluster: c.cluster, Stack: c.stack, Hosts: c.slots + 1}); err == nil {
			t.Fatalf("%d slots accepted for %d hosts", c.slots, c.slots+1)
		}
	}
}

func FuzzParseStats(f *testing.F) {
	for _, n := range []string{"debugfs-stats-alpha-4.txt", "debugfs-stats-pcmk-beta-2.txt", "debugfs-stats-local.txt", "debugfs-stats-classic.txt"} {
		f.Add(readTestdata(f, n))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := ParseStats(data)
		if err == nil && (st.Slots < 0 || st.Slots > 255) {
			t.Fatalf("slots %d", st.Slots)
		}
	})
}

func FuzzParseSlotmap(f *testing.F) {
	f.Add(readTestdata(f, "debugfs-slotmap-empty.txt"))
	f.Add([]byte("\tSlot#   Node#\n\t     0       1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		slots, err := ParseSlotmap(data)
		if err != nil {
			return
		}
		for _, s := range slots {
			if s.Slot < 0 || s.Slot > 255 || s.Node < 0 {
				t.Fatalf("row %+v", s)
			}
		}
	})
}

func FuzzParseQuerySlots(f *testing.F) {
	f.Add(readTestdata(f, "tunefs-Q-N.txt"))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := ParseQuerySlots(data)
		if err == nil && (n < 0 || n > 255) {
			t.Fatalf("%d", n)
		}
	})
}
