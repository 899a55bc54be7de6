package cluster

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vmha/vmha/cluster/decide"
	"github.com/vmha/vmha/config"
	"github.com/vmha/vmha/internal/testlab/logkeys"
	"github.com/vmha/vmha/model"
)

// checkLogKeys fails t for every recorded line that repeats a key.
func checkLogKeys(t *testing.T, rec *logkeys.Recorder) {
	t.Helper()
	lines := rec.Lines()
	if len(lines) == 0 {
		t.Fatal("nothing was logged")
	}
	for _, f := range logkeys.Find(t, lines) {
		t.Errorf("log line %q repeats %v: %s", f.Message, f.Keys, f.Line)
	}
}

// logged reports whether a line with message msg was recorded.
func logged(rec *logkeys.Recorder, msg string) bool {
	for _, l := range rec.Lines() {
		if strings.Contains(string(l), `"message":"`+msg+`"`) {
			return true
		}
	}
	return false
}

// logNode is an in-memory leader whose coordinator and agent log as in
// vmhad (a node field, then the component) into the returned recorder.
func logNode(t *testing.T) (*Node, *logkeys.Recorder) {
	cfg := &config.Daemon{NodeName: "h1", Admission: "open", DataDir: t.TempDir(), HypervisorURI: "test:///default"}
	cfg.Fencing.Timeout, cfg.Fencing.CallTimeout, cfg.Fencing.PollInterval = 10*time.Second, 5*time.Second, 50*time.Millisecond
	cfg.Fencing.CheckInterval = time.Hour
	n := newMemNode(t, cfg)
	t.Cleanup(func() { _ = n.raft.Shutdown().Error() })
	rec := &logkeys.Recorder{}
	n.log = zerolog.New(rec).With().Timestamp().Str("node", cfg.NodeName).Logger()
	n.coord, n.agent = newCoordinator(n), newAgent(n)
	return n, rec
}

// fenceScript is a fence agent for h2: with mode=ok the power goes off and
// stays off; with mode=broken every action fails.
const fenceScript = `#!/bin/sh
action= mode=
while IFS= read -r line; do
  case "$line" in
    action=*) action=${line#action=} ;;
    mode=*) mode=${line#mode=} ;;
  esac
done
[ "$mode" = ok ] || { echo "the device does not answer" >&2; exit 1; }
case "$action" in
  off|monitor) exit 0 ;;
  status) exit 2 ;;
esac
exit 1
`

// setScriptDevice gives h2 one fence device, the script in mode.
func setScriptDevice(t *testing.T, n *Node, mode string) {
	t.Helper()
	script := filepath.Join(t.TempDir(), "fence_logkeys")
	if err := os.WriteFile(script, []byte(fenceScript), 0o700); err != nil {
		t.Fatal(err)
	}
	ft := &model.FenceTopology{
		Devices: []model.FenceDevice{{Name: "script@h2", Type: "agent", AllowUnsafe: true, Timeout: 5 * time.Second,
			Params: map[string]string{"agent": script, "mode": mode}}},
		Levels: [][]string{{"script@h2"}},
	}
	if err := n.propose(&Command{Op: OpSetFenceDevices, Name: "h2", Fencing: ft,
		Fence: &model.FenceRecord{Action: model.FenceDevicesSet, Requester: "test"}}); err != nil {
		t.Fatal(err)
	}
}

// TestFenceLogsRepeatNoKey runs the leader's fence of a host, and its
// periodic device check with a device that fails, and checks every line
// they log for a repeated key.
func TestFenceLogsRepeatNoKey(t *testing.T) {
	n, rec := logNode(t)
	c := n.coord
	setScriptDevice(t, n, "ok")
	if _, err := c.fence(context.Background(), "h2", "r1", "", "test", true); err != nil {
		t.Fatalf("fence h2: %v", err)
	}
	if !logged(rec, "host fenced; recovering its VMs") {
		t.Fatal("the fence logged no success")
	}

	setScriptDevice(t, n, "broken")
	if err := n.propose(&Command{Op: OpHostSeen, Names: []string{"h2"}, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rec.OnLine = func(l []byte) {
		if strings.Contains(string(l), "fence device check failed") {
			cancel()
		}
	}
	c.checkLoop(ctx)
	rec.OnLine = nil
	if ctx.Err() != context.Canceled {
		t.Fatal("the device check logged no failure")
	}
	checkLogKeys(t, rec)
}

// TestMigrationLogsRepeatNoKey runs the source agent's side of a live
// migration (one the migration package refuses: the target has no libvirt
// URI) and checks every line the agent and the migration package log.
func TestMigrationLogsRepeatNoKey(t *testing.T) {
	n, rec := logNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Once the agent logged the end, stop before it reports the result
	// to a leader that is not listening.
	rec.OnLine = func(l []byte) {
		if strings.Contains(string(l), "live migration done") {
			cancel()
		}
	}
	p := model.Placement{VM: "vm1", Host: "h2", MigrateFrom: "h1", MigrationID: "m1"}
	n.agent.migrate(ctx, p, &model.Host{Name: "h2"})
	rec.OnLine = nil
	if !logged(rec, "migration finished") || !logged(rec, "live migration done") {
		t.Fatal("the migration's lines are missing")
	}
	checkLogKeys(t, rec)
}

// A standing condition the pass reports on every pass (four a second) is
// logged once per noteQuiet, not on every pass.
func TestStandingNotesAreNotRepeated(t *testing.T) {
	c := &Coordinator{}
	n := &decide.Note{Level: decide.Error, Standing: true, Msg: "watchdog bound passed but the host still writes its storage heartbeat", Fields: []decide.Field{{Key: "host", Value: "h2"}}}
	t0 := time.Now()
	if c.repeated(n, t0) {
		t.Fatal("the first note was suppressed")
	}
	if !c.repeated(n, t0.Add(250*time.Millisecond)) {
		t.Fatal("the same note a pass later was logged again")
	}
	other := &decide.Note{Level: decide.Error, Standing: true, Msg: n.Msg, Fields: []decide.Field{{Key: "host", Value: "h3"}}}
	if c.repeated(other, t0.Add(time.Second)) {
		t.Fatal("the note about another host was suppressed")
	}
	if c.repeated(n, t0.Add(noteQuiet+time.Second)) {
		t.Fatal("the note was never logged again")
	}
}
