package clvm

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/vmha/vmha/internal/testlab/testenv"
	"github.com/vmha/vmha/sharedfs"
)

func readTestdata(t testing.TB, name string) []byte { return testenv.Testdata(t, name) }

// recorder stands in for the hosts: it records every command as
// "host: command" and answers lvs from a table of what each host has
// active. Activation itself is what the kernel prevents here (no
// device-mapper, no lvmlockd, no DLM or sanlock), so these tests check the
// exact lvchange sequence instead.
type recorder struct {
	mu     sync.Mutex
	cmds   []string
	active map[string]map[string]string // host → "VG/LV" → "ex" or "sh"
	fail   map[string]error             // "host: command" → error
}

func (r *recorder) Run(_ context.Context, host, name string, args ...string) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	line := host + ": " + sharedfs.CommandLine(name, args)
	if name != "lvs" {
		r.cmds = append(r.cmds, line)
	}
	if err := r.fail[line]; err != nil {
		return nil, err
	}
	if name == "lvs" {
		if err := r.fail[host+": lvs"]; err != nil {
			return nil, err
		}
		var rows []string
		for _, a := range args {
			vg, lv, ok := strings.Cut(a, "/")
			if !ok {
				continue
			}
			mode := r.active[host][a]
			b := func(x bool) string {
				if x {
					return "1"
				}
				return "0"
			}
			rows = append(rows, fmt.Sprintf(`{"lv_name":%q, "vg_name":%q, "lv_attr":"-wi-a-----", "lv_active_locally":%q, "lv_active_remotely":"0", "lv_active_exclusively":%q}`, lv, vg, b(mode != ""), b(mode == "ex")))
		}
		return []byte(`{"report":[{"lv":[` + strings.Join(rows, ",") + `]}]}`), nil
	}
	return nil, nil
}

func newRecorder() *recorder {
	return &recorder{active: map[string]map[string]string{}, fail: map[string]error{}}
}

func (r *recorder) want(t *testing.T, want ...string) {
	t.Helper()
	got := strings.Join(r.cmds, "\n")
	if got != strings.Join(want, "\n") {
		t.Fatalf("commands:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}

var lvs = []string{"vg0/web1-root", "vg0/web1-data"}

// Start on h1 activates exclusively, after asking h2 and h3.
func TestStartExclusive(t *testing.T) {
	r := newRecorder()
	m := &Manager{Run: r, Hosts: []string{"h1", "h2", "h3"}}
	if err := m.Start(context.Background(), "web1", "h1", lvs, StartOptions{}); err != nil {
		t.Fatal(err)
	}
	r.want(t, "h1: lvchange -aey vg0/web1-root", "h1: lvchange -aey vg0/web1-data")
}

// An LV active exclusively on another host refuses the start; nothing is
// activated.
func TestStartRefusedWhenActiveElsewhere(t *testing.T) {
	r := newRecorder()
	r.active["h2"] = map[string]string{"vg0/web1-data": "ex"}
	m := &Manager{Run: r, Hosts: []string{"h1", "h2", "h3"}}
	err := m.Start(context.Background(), "web1", "h1", lvs, StartOptions{})
	var ae *ActiveElsewhereError
	if !errors.As(err, &ae) || ae.Host != "h2" || ae.LV != "vg0/web1-data" || !ae.Exclusive {
		t.Fatalf("got %v", err)
	}
	if want := "VM web1 refused: logical volume vg0/web1-data is active exclusively on host h2"; err.Error() != want {
		t.Fatalf("message %q", err)
	}
	r.want(t)
}

// A host that cannot answer refuses the start unless it is marked down
// (fenced): then it is not asked.
func TestStartUnreachableHost(t *testing.T) {
	r := newRecorder()
	r.fail["h2: lvs"] = errors.New("peer unreachable")
	m := &Manager{Run: r, Hosts: []string{"h1", "h2"}}
	err := m.Start(context.Background(), "web1", "h1", lvs, StartOptions{})
	if err == nil || !strings.Contains(err.Error(), "cannot tell whether host h2") {
		t.Fatalf("got %v", err)
	}
	r.want(t)
	if err := m.Start(context.Background(), "web1", "h1", lvs, StartOptions{Down: []string{"h2"}}); err != nil {
		t.Fatal(err)
	}
	r.want(t, "h1: lvchange -aey vg0/web1-root", "h1: lvchange -aey vg0/web1-data")
}

// A failed activation (the lock manager refuses: another host holds the
// lock) undoes the LVs already activated.
func TestStartRollsBack(t *testing.T) {
	r := newRecorder()
	r.fail["h1: lvchange -aey vg0/web1-data"] = errors.New("LV locked by other host")
	m := &Manager{Run: r, Hosts: []string{"h1"}}
	err := m.Start(context.Background(), "web1", "h1", lvs, StartOptions{})
	if err == nil || !strings.Contains(err.Error(), "LV locked by other host") || !strings.Contains(err.Error(), "vg0/web1-data on h1") {
		t.Fatalf("got %v", err)
	}
	r.want(t, "h1: lvchange -aey vg0/web1-root", "h1: lvchange -aey vg0/web1-data", "h1: lvchange -an vg0/web1-root")
}

func TestStop(t *testing.T) {
	r := newRecorder()
	r.fail["h1: lvchange -an vg0/web1-root"] = errors.New("in use")
	m := &Manager{Run: r}
	err := m.Stop(context.Background(), "web1", "h1", lvs)
	if err == nil || !strings.Contains(err.Error(), "VM web1") || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("got %v", err)
	}
	// The second LV is still deactivated after the first failed.
	r.want(t, "h1: lvchange -an vg0/web1-root", "h1: lvchange -an vg0/web1-data")
}

// A live migration: shared on the source (converting its exclusive lock),
// shared on the target, then after the switch-over the source lets go and
// the target takes the exclusive lock.
func TestMigrateSequence(t *testing.T) {
	r := newRecorder()
	m := &Manager{Run: r}
	ctx := context.Background()
	if err := m.MigrateBefore(ctx, "web1", "h1", "h2", lvs); err != nil {
		t.Fatal(err)
	}
	if err := m.MigrateAfter(ctx, "web1", "h1", "h2", lvs); err != nil {
		t.Fatal(err)
	}
	r.want(t,
		"h1: lvchange -asy vg0/web1-root", "h1: lvchange -asy vg0/web1-data",
		"h2: lvchange -asy vg0/web1-root", "h2: lvchange -asy vg0/web1-data",
		"h1: lvchange -an vg0/web1-root", "h1: lvchange -an vg0/web1-data",
		"h2: lvchange -aey vg0/web1-root", "h2: lvchange -aey vg0/web1-data")
}

func TestMigrateAbort(t *testing.T) {
	r := newRecorder()
	m := &Manager{Run: r}
	ctx := context.Background()
	if err := m.MigrateBefore(ctx, "web1", "h1", "h2", lvs[:1]); err != nil {
		t.Fatal(err)
	}
	if err := m.MigrateAbort(ctx, "web1", "h1", "h2", lvs[:1]); err != nil {
		t.Fatal(err)
	}
	r.want(t, "h1: lvchange -asy vg0/web1-root", "h2: lvchange -asy vg0/web1-root",
		"h2: lvchange -an vg0/web1-root", "h1: lvchange -aey vg0/web1-root")
}

// The target cannot activate shared: the source returns to exclusive and
// the target is cleaned, so the VM keeps running as before.
func TestMigrateBeforeTargetFails(t *testing.T) {
	r := newRecorder()
	r.fail["h2: lvchange -asy vg0/web1-root"] = errors.New("VG vg0 lock not started")
	m := &Manager{Run: r}
	err := m.MigrateBefore(context.Background(), "web1", "h1", "h2", lvs[:1])
	if err == nil || !strings.Contains(err.Error(), "target h2") || !strings.Contains(err.Error(), "lock not started") {
		t.Fatalf("got %v", err)
	}
	r.want(t, "h1: lvchange -asy vg0/web1-root", "h2: lvchange -asy vg0/web1-root",
		"h2: lvchange -an vg0/web1-root", "h1: lvchange -aey vg0/web1-root")
}

// The source cannot release after the switch-over: the target must not
// try to take the exclusive lock (it would fail, or worse with a broken
// lock manager), and the error says the target keeps a shared lock.
func TestMigrateAfterSourceFails(t *testing.T) {
	r := newRecorder()
	r.fail["h1: lvchange -an vg0/web1-root"] = errors.New("device busy")
	m := &Manager{Run: r}
	err := m.MigrateAfter(context.Background(), "web1", "h1", "h2", lvs[:1])
	if err == nil || !strings.Contains(err.Error(), "target keeps a shared lock") {
		t.Fatalf("got %v", err)
	}
	r.want(t, "h1: lvchange -an vg0/web1-root")
}

func TestBadRefs(t *testing.T) {
	m := &Manager{Run: newRecorder()}
	for _, bad := range [][]string{nil, {"novg"}, {"vg/"}, {"/lv"}, {"vg/a/b"}, {"vg/-aey"}, {"vg/x y"}} {
		if err := m.Stop(context.Background(), "web1", "h1", bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if err := m.MigrateBefore(context.Background(), "web1", "h1", "h1", lvs); err == nil {
		t.Error("migration to the same host accepted")
	}
}

func TestLocalRunnerOtherHost(t *testing.T) {
	_, err := (LocalRunner{Host: "h1"}).Run(context.Background(), "h2", "lvchange", "-an", "vg/lv")
	if err == nil || !strings.Contains(err.Error(), "only runs on h1") {
		t.Fatalf("got %v", err)
	}
}

func TestCheckPeerCommand(t *testing.T) {
	head := []string{"--reportformat", "json", "--binary", "-o", lvsFields}
	ok := [][]string{
		append([]string{"lvs"}, append(append([]string{}, head...), "vg/lv1", "vg/lv2")...),
		{"lvchange", "-aey", "vg/lv1"}, {"lvchange", "-asy", "vg/lv1"}, {"lvchange", "-an", "vg/lv1"},
	}
	for _, c := range ok {
		if err := CheckPeerCommand(c[0], c[1:]); err != nil {
			t.Errorf("%v refused: %v", c, err)
		}
	}
	bad := [][]string{
		{"rm", "-rf", "/"}, {"lvremove", "vg/lv1"}, {"lvs"}, {"lvs", "-o", "lv_name", "vg/lv"},
		append([]string{"lvs"}, head...), // no LV
		{"lvchange", "-aey"}, {"lvchange", "-ay", "vg/lv1"}, {"lvchange", "--yes", "vg/lv1"},
		{"lvchange", "-aey", "vg/lv1", "vg/lv2"}, {"lvchange", "-aey", "--config=x"}, {"lvchange", "-aey", "vg/-lv"},
		append([]string{"lvs"}, append(append([]string{}, head...), "vg/lv; reboot")...),
	}
	for _, c := range bad {
		if err := CheckPeerCommand(c[0], c[1:]); err == nil {
			t.Errorf("%v accepted", c)
		}
	}
}

// FuzzCheckPeerCommand: whatever a peer sends, an accepted command is lvs
// or lvchange, and no accepted argument can be read as another option or a
// path outside VG/LV.
func FuzzCheckPeerCommand(f *testing.F) {
	f.Add("lvchange", "-aey\x00vg/lv")
	f.Add("lvs", "--reportformat\x00json\x00--binary\x00-o\x00"+lvsFields+"\x00vg/lv")
	f.Add("sh", "-c\x00reboot")
	f.Fuzz(func(t *testing.T, name, joined string) {
		args := strings.Split(joined, "\x00")
		if CheckPeerCommand(name, args) != nil {
			return
		}
		if name != "lvs" && name != "lvchange" {
			t.Fatalf("accepted %q", name)
		}
		last := args[len(args)-1]
		if strings.HasPrefix(last, "-") || strings.Count(last, "/") != 1 || strings.ContainsAny(last, " \t\n") {
			t.Fatalf("accepted %q %q", name, args)
		}
	})
}
