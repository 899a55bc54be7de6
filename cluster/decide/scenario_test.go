package decide_test

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vmha/vmha/cluster/command"
	"github.com/vmha/vmha/cluster/decide"
	"github.com/vmha/vmha/cluster/statemachine"
	"github.com/vmha/vmha/model"
)

var update = flag.Bool("update", false, "rewrite the scenarios' .expect files from what the pass decides now")

// TestScenarios runs every testdata/scenarios/*.txt: a cluster, a schedule
// of faults and operator actions on a virtual clock, and assertions; the
// whole log of decisions must equal the .expect file beside it (in the
// spirit of Proxmox's ha-manager test directories: cmdlist + log.expect).
// Every scenario also checks the invariants on every tick: never two
// running copies, no recovery before a confirmed fence, every placement
// with a reason. go test -run TestScenarios -update rewrites the .expect
// files; review their diff like code.
func TestScenarios(t *testing.T) {
	files, err := filepath.Glob("testdata/scenarios/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".txt")
		t.Run(name, func(t *testing.T) {
			w := newWorld(decide.Pass)
			if err := runScenario(w, f); err != nil {
				t.Fatalf("%s\n--- log ---\n%s", err, strings.Join(w.lines, "\n"))
			}
			for _, v := range w.violations {
				t.Errorf("invariant broken: %s", v)
			}
			got := strings.Join(w.lines, "\n") + "\n"
			exp := strings.TrimSuffix(f, ".txt") + ".expect"
			if *update {
				if err := os.WriteFile(exp, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(exp)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("the decisions differ from %s:\n%s", exp, diff(string(want), got))
			}
		})
	}
}

// diff shows the first lines where two logs part.
func diff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var a, b string
		if i < len(wl) {
			a = wl[i]
		}
		if i < len(gl) {
			b = gl[i]
		}
		if a != b {
			var out []string
			for j := i; j < i+8 && (j < len(wl) || j < len(gl)); j++ {
				a, b = "", ""
				if j < len(wl) {
					a = wl[j]
				}
				if j < len(gl) {
					b = gl[j]
				}
				out = append(out, fmt.Sprintf("line %d\n  want: %s\n  got:  %s", j+1, a, b))
			}
			return strings.Join(out, "\n")
		}
	}
	return "(equal)"
}

// runScenario reads a scenario file and runs it on w.
func runScenario(w *world, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if i := strings.Index(text, "#"); i >= 0 {
			text = strings.TrimSpace(text[:i])
		}
		if text == "" {
			continue
		}
		w.logf("> %s", text)
		if err := w.do(strings.Fields(text)); err != nil {
			return fmt.Errorf("%s:%d: %s: %w", path, line, text, err)
		}
	}
	return sc.Err()
}

// opts splits key=value words.
func opts(words []string) (map[string]string, []string) {
	kv := map[string]string{}
	var rest []string
	for _, w := range words {
		if k, v, ok := strings.Cut(w, "="); ok {
			kv[k] = v
		} else {
			rest = append(rest, w)
		}
	}
	return kv, rest
}

func (w *world) host(name string) (*simHost, error) {
	h := w.hosts[name]
	if h == nil {
		return nil, fmt.Errorf("unknown host %q", name)
	}
	return h, nil
}

// do runs one scenario command.
func (w *world) do(words []string) error {
	w.version++
	kv, args := opts(words[1:])
	for _, run := range []func([]string, []string, map[string]string) (bool, error){w.doSetup, w.doOperator, w.doLifecycle} {
		if handled, err := run(words, args, kv); handled || err != nil {
			return err
		}
	}
	switch words[0] {
	case "run":
		d, err := time.ParseDuration(args[0])
		if err != nil {
			return err
		}
		w.run(d)
	case "kill", "crash", "stop", "start", "poweron", "isolate", "bmc", "beat", "reboot", "refuse":
		return w.fault(words[0], args)
	case "break", "fix": // break VM HOST: its start fails there (fix: works again)
		h, err := w.host(args[1])
		if err != nil {
			return err
		}
		h.broken[args[0]] = words[0] == "break"
	case "virsh": // virsh HOST start|shutdown VM: someone acts on libvirt by hand
		h, err := w.host(args[0])
		if err != nil {
			return err
		}
		h.domains[args[2]] = args[1] == "start"
		w.logf("%s: virsh %s %s by hand", h.name, args[1], args[2])
		h.reconciled = 0
	case "split":
		for side, group := range args {
			for _, n := range strings.Split(group, ",") {
				h, err := w.host(n)
				if err != nil {
					return err
				}
				h.side = side
			}
		}
	case "heal":
		for _, h := range w.hosts {
			h.side = 0
		}
	case "pass": // pass hold: the leader plans now; pass commit: its commits land later
		return w.heldPass(args[0])
	case "mark": // log and no-log assertions look only after the last mark
	case "assert":
		return w.assert(args, words[1:])
	default:
		return fmt.Errorf("unknown command %q", words[0])
	}
	return nil
}

// doSetup runs a command that builds the cluster (hosts, VMs, settings,
// rules); handled is false for any other.
func (w *world) doSetup(words, args []string, kv map[string]string) (handled bool, err error) {
	switch words[0] {
	case "hosts":
		mem := uint64(16384)
		if v := kv["memory"]; v != "" {
			n, _ := strconv.Atoi(v)
			mem = uint64(n)
		}
		for _, n := range args {
			w.addHost(n, mem, false, 0)
		}
	case "host":
		mem, wd := uint64(16384), time.Duration(0)
		if v := kv["memory"]; v != "" {
			n, _ := strconv.Atoi(v)
			mem = uint64(n)
		}
		if v := kv["watchdog"]; v != "" {
			wd, _ = time.ParseDuration(v)
		}
		w.addHost(args[0], mem, len(args) > 1 && args[1] == "witness", wd)
		if kv["live"] == "off" {
			// Registered without migration.libvirt_uri: it takes no
			// live migration.
			h := *w.st.Config.Hosts[args[0]]
			h.LibvirtURI = ""
			w.mustApply(&command.Command{Op: command.OpRegisterHost, Host: &h})
		}
	case "vm":
		mem := uint64(1024)
		if v := kv["memory"]; v != "" {
			n, _ := strconv.Atoi(v)
			mem = uint64(n)
		}
		w.addVM(args[0], mem, kv["prefer"])
	case "vms":
		n, _ := strconv.Atoi(args[0])
		for i := 1; i <= n; i++ {
			w.addVM(fmt.Sprintf("vm%d", i), 1024, "")
		}
	case "settings":
		if v := kv["fence-retry"]; v != "" {
			w.settings.FenceRetry, _ = time.ParseDuration(v)
		}
		if _, ok := kv["wait-for-all"]; ok || contains(args, "wait-for-all") {
			w.settings.WaitForAll = true
		}
		if v := kv["max-per-target"]; v != "" {
			w.settings.MaxPerTarget, _ = strconv.Atoi(v)
		}
		if v := kv["max-cluster"]; v != "" {
			w.settings.MaxCluster, _ = strconv.Atoi(v)
		}
	case "health": // health HOST LEVEL|-: the host gossips #health-ipmi=LEVEL (- deletes it)
		h := w.hosts[args[0]]
		if h.attrs == nil {
			h.attrs = map[string]string{}
		}
		if args[1] == "-" {
			delete(h.attrs, decide.HealthIPMIAttr)
		} else {
			h.attrs[decide.HealthIPMIAttr] = args[1]
		}
	case "health-clear": // health-clear HOST: vmha host health clear
		return true, w.operator(&command.Command{Op: command.OpHostAttr, Attr: &command.HostAttr{Host: args[0], Key: decide.HealthHoldAttr}})
	case "rules":
		text, err := os.ReadFile(filepath.Join("testdata/scenarios", args[0]))
		if err != nil {
			return true, err
		}
		return true, w.operator(&command.Command{Op: command.OpSetRules, Rules: ptr(string(text))})
	default:
		return false, nil
	}
	return true, nil
}

// doOperator runs an operator's command (through the leader); handled is
// false for any other.
func (w *world) doOperator(words, args []string, kv map[string]string) (handled bool, err error) {
	switch words[0] {
	case "maintenance":
		on := args[1] == "on"
		c := &command.Command{Op: command.OpMaintenance, Name: args[0]}
		if on {
			c.Maintenance = &model.Maintenance{By: "operator", At: w.now, Reason: "scenario"}
		}
		return true, w.operator(c)
	case "evacuate":
		par := 1
		if v := kv["parallel"]; v != "" {
			par, _ = strconv.Atoi(v)
		}
		onStuck := decide.OnStuckFail
		if v := kv["on-stuck"]; v != "" {
			onStuck = v
		}
		e := &model.Evacuation{ID: kv["id"], Host: args[0], Parallel: par, OnStuck: onStuck, By: "operator", At: w.now}
		if why := decide.EvacuationShortfall(w.view(), args[0], e); why != "" && w.leader != "" {
			if kv["force"] == "" { // as the API refuses it without --force
				w.logf("refused: %s", why)
				return true, nil
			}
			w.logf("forced: %s", why)
		}
		return true, w.operator(&command.Command{Op: command.OpEvacuation, Evacuation: e})
	case "migrate": // migrate VM HOST: vmha migrate VM --to HOST, as the API commits it
		p := w.st.Status.Placements[args[0]]
		if p == nil {
			return true, fmt.Errorf("vm %s is not placed", args[0])
		}
		return true, w.operator(&command.Command{Op: command.OpPlace, Placements: []model.Placement{{VM: args[0], Host: args[1], MigrateFrom: p.Host,
			MigrationID: w.newID("mig-"), Reason: "live migration requested by operator"}}})
	case "online": // online HOST [if=ID]
		return true, w.operator(&command.Command{Op: command.OpEvacuation, Name: args[0], IfEvacuation: kv["if"]})
	case "rebalance":
		if w.leader == "" {
			w.logf("refused: no leader")
			return true, nil
		}
		maxMoves := 0
		if v := kv["max-moves"]; v != "" {
			maxMoves, _ = strconv.Atoi(v)
		}
		v := w.view()
		r, err := decide.PlanRebalance(v, decide.RebalanceRequest{MaxMoves: maxMoves, Parallel: 1}, "operator")
		if err != nil {
			return true, err
		}
		decide.EndIfBalanced(r)
		w.logf("rebalance planned: %d moves, score %.4f -> %.4f", len(r.Moves), r.Before, r.Planned)
		return true, w.operator(&command.Command{Op: command.OpRebalance, Rebalance: r})
	case "fencing":
		c := &command.Command{Op: command.OpSetFencing}
		if args[0] == "off" {
			c.FencingOff = &model.FencingOff{By: "operator", At: w.now}
		}
		return true, w.operator(c)
	case "fence": // fence HOST [ACTION]: vmha fence HOST, as the API commits it
		h, err := w.host(args[0])
		if err != nil {
			return true, err
		}
		action := ""
		if len(args) > 1 {
			action = args[1]
		}
		return true, w.operator(&command.Command{Op: command.OpHostState, HostState: &command.HostStateChange{Host: h.name, State: model.HostLost,
			Reason: "fence requested by operator", RecoveryID: w.newID("rcv-"), RequestedBy: "operator+" + action,
			Boot: fmt.Sprintf("%s-b%d", h.name, h.boot)}})
	case "expect": // expect HOST [off]: vmha host expect (a host announced, not yet joined), or withdraw it
		c := &command.Command{Op: command.OpExpectHost, Name: args[0]}
		if !contains(args[1:], "off") {
			c.Expected = &model.Expected{By: "operator", At: w.now}
		}
		return true, w.operator(c)
	case "confirm":
		hs := w.st.Status.Hosts[args[0]]
		rid := ""
		if hs != nil {
			rid = hs.RecoveryID
		}
		return true, w.operator(&command.Command{Op: command.OpFenceConfirm, Fence: &model.FenceRecord{Host: args[0], Device: "operator", Action: "confirm", Requester: "operator", Started: w.now, OK: true, RecoveryID: rid},
			HostState: &command.HostStateChange{Host: args[0], Reason: "confirmed down by operator", RecoveryID: rid}})
	}
	return false, nil
}

// doLifecycle runs an operator's command on a VM's lifecycle or on the
// whole cluster; handled is false for any other.
func (w *world) doLifecycle(words, args []string, kv map[string]string) (handled bool, err error) {
	switch words[0] {
	case "vm-state": // vm-state VM TARGET|clear [if=TARGET|-]: vmha vm set --state
		c := &command.Command{Op: command.OpVMState, Name: args[0], By: "operator", IfTarget: model.Target(kv["if"])}
		if args[1] != "clear" {
			c.VMState = &model.VMState{Target: model.Target(args[1]), By: "operator", At: w.now}
		}
		return true, w.operator(c)
	case "cleanup": // cleanup VM [HOST]: vmha vm cleanup
		c := &command.Command{Op: command.OpFailures, Names: args[:1], By: "operator"}
		if len(args) > 1 {
			c.Name = args[1]
		}
		return true, w.operator(c)
	case "relocate": // relocate VM HOST: vmha relocate (a cold move)
		if w.leader == "" {
			w.logf("refused: no leader")
			return true, nil
		}
		move, err := decide.PlanRelocate(w.view(), args[0], args[1], "operator", w.newID("mv-"))
		if err != nil {
			w.logf("refused: %v", err)
			return true, nil
		}
		return true, w.operator(&command.Command{Op: command.OpPlace, By: "operator", Placements: []model.Placement{move}})
	case "cluster-maintenance": // cluster-maintenance on|off
		c := &command.Command{Op: command.OpClusterMaintenance, By: "operator"}
		if args[0] == "on" {
			c.ClusterMaintenance = &model.ClusterMaintenance{By: "operator", At: w.now}
		}
		return true, w.operator(c)
	}
	return false, nil
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func ptr[T any](v T) *T { return &v }

// view is the leader's view now, for the operator's planning commands.
func (w *world) view() *decide.View {
	return &decide.View{Now: w.now, Self: w.leader, Term: 1, State: w.st.Clone(), Apply: statemachine.Apply,
		Members: w.members(), Settings: w.settings, NewID: w.newID}
}

// operator commits an operator's command through the leader.
func (w *world) operator(c *command.Command) error {
	if w.leader == "" {
		w.logf("refused: no leader")
		return nil
	}
	if err := w.apply(c); err != nil {
		w.logf("refused: %v", err)
		return nil
	}
	w.logf("operator: %s", decide.DescribeCommand(c))
	return nil
}

// fault changes the world's truth.
func (w *world) fault(kind string, args []string) error {
	h, err := w.host(args[0])
	if err != nil {
		return err
	}
	switch kind {
	case "kill": // power cut: the host and its guests are gone; the BMC answers
		w.powerOff(h)
	case "crash": // vmhad dies; its guests keep running
		h.vmhad = false
	case "stop": // vmhad stops cleanly: gossip says left
		h.vmhad, h.left = false, true
	case "start": // vmhad starts again: a new life
		h.vmhad, h.left = true, false
		h.boot++
		h.waitOver = false
	case "poweron", "reboot":
		if kind == "reboot" {
			w.powerOff(h)
		}
		w.powerOn(h)
	case "isolate": // alone on its own side
		for i, n := range w.names {
			if n == h.name {
				h.side = 1000 + i
			}
		}
	case "bmc":
		h.bmc = args[1]
	case "beat":
		h.beat = args[1] == "on"
	case "refuse": // refuse HOST on|off: its live moves are refused before the job, the VM's place unknown
		h.refuse = args[1] == "on"
	}
	return nil
}

// assert checks the world now.
func (w *world) assert(args, words []string) error {
	if len(args) == 0 {
		return fmt.Errorf("assert what?")
	}
	switch args[0] {
	case "runs": // assert runs VM HOST
		if got := w.running(args[1]); len(got) != 1 || got[0] != args[2] {
			return fmt.Errorf("%s runs on %v, want %s", args[1], got, args[2])
		}
	case "stopped": // assert stopped VM
		if got := w.running(args[1]); len(got) != 0 {
			return fmt.Errorf("%s runs on %v, want nowhere", args[1], got)
		}
	case "state": // assert state HOST STATE
		st := model.HostAlive
		if hs := w.st.Status.Hosts[args[1]]; hs != nil {
			st = hs.State
		}
		if string(st) != args[2] {
			return fmt.Errorf("host %s is %s, want %s", args[1], st, args[2])
		}
	case "placed": // assert placed VM HOST
		p := w.st.Status.Placements[args[1]]
		if p == nil || p.Host != args[2] {
			return fmt.Errorf("%s placed %+v, want %s", args[1], p, args[2])
		}
	case "leader": // assert leader HOST, or none
		want := args[1]
		if want == "none" {
			want = ""
		}
		if w.leader != want {
			return fmt.Errorf("leader %q, want %s", w.leader, args[1])
		}
	case "unplaced": // assert unplaced VM: no host for it (stopped, with a reason)
		if p := w.st.Status.Placements[args[1]]; p != nil && p.Host != "" {
			return fmt.Errorf("%s placed on %s, want no host", args[1], p.Host)
		}
	case "moved": // assert moved VM OUTCOME: how the move that placed it ended
		p := w.st.Status.Placements[args[1]]
		if p == nil || p.Moved == nil || p.Moved.Outcome != args[2] {
			return fmt.Errorf("%s placed %+v, want a move that ended %s", args[1], p, args[2])
		}
	case "evacuated": // assert evacuated HOST "N moved live, M restarted": done, with those counts
		e := w.st.Status.Evacuations[args[1]]
		text := strings.Trim(strings.Join(words[2:], " "), `"`)
		if e == nil || !e.Done || decide.MoveCounts(e.MovedLive, e.Restarted) != text {
			return fmt.Errorf("evacuation of %s: %+v, want done with %s", args[1], e, text)
		}
	case "rebalanced": // assert rebalanced "text": the last rebalance ended, its note contains text
		text := strings.Trim(strings.Join(words[1:], " "), `"`)
		rs := w.st.Status.Rebalances
		if len(rs) == 0 || !rs[len(rs)-1].Done || !strings.Contains(rs[len(rs)-1].Note, text) {
			return fmt.Errorf("rebalances %+v, want the last one ended with a note containing %q", rs, text)
		}
	case "reason": // assert reason VM "text": its placement's reason contains text
		text := strings.Trim(strings.Join(words[2:], " "), `"`)
		p := w.st.Status.Placements[args[1]]
		if p == nil || !strings.Contains(p.Reason, text) {
			return fmt.Errorf("%s placed %+v, want a reason containing %q", args[1], p, text)
		}
	default:
		return w.assertWorld(args, words)
	}
	return nil
}

// assertWorld checks the assertions on the whole world and its log.
func (w *world) assertWorld(args, words []string) error {
	switch args[0] {
	case "fits": // no host runs more memory than it has
		for _, n := range w.names {
			if used, has := w.memoryUsed(n), w.st.Config.Hosts[n].MemoryMiB; used > has {
				return fmt.Errorf("%s runs %d MiB of VMs, it has %d MiB", n, used, has)
			}
		}
	case "settled": // every VM runs once, where placed
		n := len(w.violations)
		w.checkSettled()
		if len(w.violations) > n {
			return fmt.Errorf("not settled: %s", strings.Join(w.violations[n:], "; "))
		}
	case "count": // assert count VM-running-on HOST N
		n, _ := strconv.Atoi(args[2])
		got := 0
		for _, a := range w.hosts[args[1]].domains {
			if a {
				got++
			}
		}
		if got != n {
			return fmt.Errorf("%s runs %d VMs, want %d", args[1], got, n)
		}
	case "failcount": // assert failcount VM HOST N
		n, _ := strconv.Atoi(args[3])
		got := 0
		if f := w.st.Status.Failures[args[1]][args[2]]; f != nil {
			got = f.Count
		}
		if got != n {
			return fmt.Errorf("%s failed %d times on %s, want %d", args[1], got, args[2], n)
		}
	case "event": // assert event OBJECT ACTION [principal]: in the event log
		for _, e := range w.st.Status.Events {
			if e.Object == args[1] && e.Action == args[2] && (len(args) < 4 || e.Principal == args[3]) {
				return nil
			}
		}
		return fmt.Errorf("no event %v in the log", args[1:])
	case "log", "no-log": // assert log "text", in the lines after the last mark
		text := strings.Trim(strings.Join(words[1:], " "), `"`)
		found := false
		for _, l := range w.lines[lastMark(w.lines):] {
			if strings.Contains(l, text) && !strings.Contains(l, "> assert") {
				found = true
			}
		}
		if found != (args[0] == "log") {
			return fmt.Errorf("log line containing %q: found=%t", text, found)
		}
	default:
		return fmt.Errorf("unknown assertion %q", args[0])
	}
	return nil
}

// memoryUsed is the memory of the VMs host runs now (truth).
func (w *world) memoryUsed(host string) uint64 {
	h := w.hosts[host]
	if !h.power {
		return 0
	}
	var used uint64
	for vm, active := range h.domains {
		if v := w.st.Config.VMs[vm]; active && v != nil {
			used += v.MemoryMiB
		}
	}
	return used
}

// lastMark is the index of the last "> mark" line of the log (0: none).
func lastMark(lines []string) int {
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasSuffix(lines[i], "> mark") {
			return i
		}
	}
	return 0
}
