package cluster

import (
	"strings"
	"testing"
	"time"

	"github.com/vmha/vmha/cluster/decide"
	"github.com/vmha/vmha/model"
)

func TestWindowOpened(t *testing.T) {
	day := func(h, m int) time.Time { return time.Date(2026, 11, 24, h, m, 0, 0, time.UTC) }
	for _, tc := range []struct {
		now        time.Time
		start, end int
		in         bool
		opened     time.Time
	}{
		{day(2, 30), 120, 300, true, day(2, 0)},
		{day(1, 59), 120, 300, false, time.Time{}},
		{day(5, 0), 120, 300, false, time.Time{}},
		// Across midnight: 23:00-01:00.
		{day(23, 30), 23 * 60, 60, true, day(23, 0)},
		{day(0, 30), 23 * 60, 60, true, day(23, 0).AddDate(0, 0, -1)},
		{day(1, 0), 23 * 60, 60, false, time.Time{}},
	} {
		opened, in := decide.WindowOpened(tc.now, tc.start, tc.end)
		if in != tc.in || (in && !opened.Equal(tc.opened)) {
			t.Errorf("%s in [%d,%d): got %v opened %s, want %v %s", tc.now.Format(time.TimeOnly), tc.start, tc.end, in, opened, tc.in, tc.opened)
		}
	}
}

// TestRebalanceRecords: one run under way at a time; it is updated by its
// ID; an ended run cannot be revived; the history is bounded.
func TestRebalanceRecords(t *testing.T) {
	f := baseFSM(t)
	run := func(id string, done bool) *Command {
		return &Command{Op: OpRebalance, Rebalance: &model.Rebalance{ID: id, Done: done,
			Moves: []model.RebalanceMove{{VM: "vm1", From: "h1", To: "h2", State: model.MovePlanned}}}}
	}
	if r := applyAll(t, f, run("rb-1", false))[0]; r != nil {
		t.Fatal(r)
	}
	if r, _ := applyAll(t, f, run("rb-2", false))[0].(error); r == nil || !strings.Contains(r.Error(), "rb-1") {
		t.Fatalf("a second run while rb-1 is under way: %v", r)
	}
	if r := applyAll(t, f, run("rb-1", true))[0]; r != nil {
		t.Fatal(r)
	}
	if r, _ := applyAll(t, f, run("rb-1", false))[0].(error); r == nil || !strings.Contains(r.Error(), "has ended") {
		t.Fatalf("reviving an ended run: %v", r)
	}
	if r, _ := applyAll(t, f, &Command{Op: OpRebalance, Rebalance: &model.Rebalance{ID: "rb-x", Moves: []model.RebalanceMove{{VM: "zz", State: model.MovePlanned}}}})[0].(error); r == nil || !strings.Contains(r.Error(), `unknown vm "zz"`) {
		t.Fatalf("a plan with an unknown VM: %v", r)
	}
	for i := range 30 {
		applyAll(t, f, run("rb-n"+string(rune('a'+i)), true))
	}
	st := f.Copy()
	if n := len(st.Status.Rebalances); n != maxRebalances {
		t.Fatalf("history holds %d runs, want %d", n, maxRebalances)
	}
	if st.Status.ActiveRebalance() != nil {
		t.Fatal("an ended run counts as under way")
	}
}
