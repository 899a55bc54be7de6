// Command vmha-demo runs the README's first command: a 3-host vmha cluster on
// loopback (libvirt test-driver hypervisors, ipmi_sim BMCs), six VMs, one
// host killed with SIGKILL, and its VMs recovered on the survivors after the
// host is fenced over IPMI. Its last line gives the measured timeline. With
// -real (make demo-real) the hosts run real QEMU guests on shared storage
// and the failure is a power cut of the whole host (real.go).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/cluster/decide"
	"github.com/vmha/vmha/internal/testlab/labcluster"
	"github.com/vmha/vmha/model"
)

var (
	bin        = flag.String("bin", "bin", "directory holding vmhad and vmha")
	vmDir      = flag.String("vms", "configs/demo", "directory of the demo VMs' domain XML")
	keep       = flag.Bool("keep", false, "keep the work directory (logs) after the demo")
	timeout    = flag.Duration("timeout", 60*time.Second, "give up on recovery after this long")
	realGuests = flag.Bool("real", false, "real QEMU (TCG) guests on shared storage, and a power cut of the whole host (real.go)")
	console    = flag.Bool("console", false, "serve the web console on every host and, after the story, keep the cluster running with a URL and an operator token until Ctrl-C")
)

// The demo VMs and their preferred hosts.
var vms = []struct{ name, prefer string }{
	{"web1", "host1"}, {"db1", "host1"},
	{"web2", "host2"}, {"db2", "host2"},
	{"cache1", "host3"}, {"batch1", "host3"},
}

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo: FAILED: "+err.Error())
		os.Exit(1)
	}
}

func say(format string, args ...any) {
	fmt.Printf("[%s] %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

func run() error {
	dir, err := os.MkdirTemp("", "vmha-demo-")
	if err != nil {
		return err
	}
	vmhad, err := filepath.Abs(filepath.Join(*bin, "vmhad"))
	if err != nil {
		return err
	}
	vmha, _ := filepath.Abs(filepath.Join(*bin, "vmha"))
	o := labcluster.Options{Dir: dir, VMHAD: vmhad, Web: *console}
	var lab *labcluster.RealLab
	if *realGuests {
		if lab, err = startReal(dir, &o); err != nil {
			return err
		}
		say("starting 3 hosts in %s: each a vmhad on its libvirtd and an ipmi_sim BMC whose power-off cuts the whole host", dir)
	} else {
		say("starting 3 hosts in %s: each a vmhad with a libvirt test-driver hypervisor and an ipmi_sim BMC", dir)
	}
	c, err := labcluster.Start(o)
	if err != nil {
		if lab != nil {
			_ = lab.Stop()
		}
		return err
	}
	var line string
	func() {
		defer func() {
			say("cleaning up: stopping every vmhad and BMC the demo started")
			c.Close()
			if lab != nil {
				if err := lab.Stop(); err != nil {
					say("stopping the hypervisor hosts: %v", err)
				}
			}
			if !*keep {
				os.RemoveAll(dir)
			} else {
				say("logs kept in %s", dir)
			}
		}()
		line, err = scenario(c, vmha, lab)
		if err == nil && *console {
			say("%s", line)
			err = serveConsole(c, vmha)
		}
		if err != nil && !*keep {
			// Show where things stood before the files go.
			for _, h := range c.Hosts {
				tail(h.Log, 15)
			}
		}
	}()
	if err != nil {
		return err
	}
	fmt.Println(line)
	return nil
}

func scenario(c *labcluster.Cluster, vmha string, lab *labcluster.RealLab) (string, error) {
	ctx := context.Background()
	s, err := c.WaitFor(ctx, 30*time.Second, "a leader and 3 registered hosts with fence devices", formed)
	if err != nil {
		return "", err
	}
	say("cluster formed: leader %s; %s", s.Leader, s.Quorum.Explanation)

	sock := c.Hosts[0].Socket
	want := len(vms)
	if lab != nil {
		want = len(realVMs)
		err = addRealVMs(vmha, sock, lab)
	} else {
		err = addVMs(vmha, sock)
	}
	if err != nil {
		return "", err
	}
	s, err = c.WaitFor(ctx, 30*time.Second, "all VMs running", func(s *api.Status) bool {
		return len(s.VMs) == want && countRunning(s, "") == want
	})
	if err != nil {
		return "", err
	}
	say("all %d VMs running:", want)
	show(vmha, sock, "status")

	victim, lost, err := pickVictim(c, s)
	if err != nil {
		return "", err
	}
	var restarted func() (time.Time, error)
	var killedAt time.Time
	if lab != nil {
		say("power cut of %s: its vmhad (pid %d), its libvirtd and the QEMU of its guests (%s) die at once", victim.Name, victim.PID(), strings.Join(lost, ", "))
		killedAt = time.Now()
		if err := powerCut(victim, lab); err != nil {
			return "", err
		}
		restarted = firstCounters(lab, victim.Name, lost, max(*timeout, 2*time.Minute))
	} else {
		say("kill -9 %s's vmhad (pid %d): the host crashes and its VMs (%s) die with it", victim.Name, victim.PID(), strings.Join(lost, ", "))
		killedAt = time.Now()
		victim.Kill()
	}

	w := &recoveryWatch{victim: victim.Name, lost: lost, running: map[string]string{}}
	s, err = c.WaitFor(ctx, *timeout, "recovery of "+victim.Name+"'s VMs", w.recovered)
	if err != nil {
		return "", err
	}
	vh, lastStart := recoveryTimes(s, victim.Name, lost)
	if restarted != nil {
		// Restart ends when the guests count again on their new hosts.
		if lastStart, err = restarted(); err != nil {
			return "", err
		}
	}
	if vh.LostAt.IsZero() || vh.FencedAt.IsZero() || lastStart.IsZero() {
		return "", fmt.Errorf("timeline incomplete: lost %v fenced %v restarted %v", vh.LostAt, vh.FencedAt, lastStart)
	}
	if !victim.Exited(0) && victim.Running() {
		return "", fmt.Errorf("%s still runs after its fence", victim.Name)
	}
	// Ask a survivor: the killed host's socket is gone with it.
	sock = c.Host(s.Leader).Socket
	show(vmha, sock, "status")
	show(vmha, sock, "fence", "history")
	// The same phases as GET /v1/recoveries (decide.Phases), with the
	// detection measured from the kill, which only the demo knows.
	ph := decide.Phases(decide.RecoveryTimes{Failed: killedAt, Lost: vh.LostAt, Fenced: vh.FencedAt, Restarted: lastStart})
	return "demo: " + decide.RecoverySummary(len(w.running), len(lost), victim.Name, ph), nil
}

// formed: a leader, and 3 registered hosts alive with fence devices.
func formed(s *api.Status) bool {
	if s.Leader == "" || len(s.Hosts) != 3 {
		return false
	}
	for _, h := range s.Hosts {
		if h.FenceDev == "" || h.Member != "alive" {
			return false
		}
	}
	return true
}

// addVMs adds the demo VMs with vmha vm add.
func addVMs(vmha, sock string) error {
	for _, v := range vms {
		xml := filepath.Join(*vmDir, v.name+".xml")
		out, err := exec.Command(vmha, "--socket", sock, "vm", "add", v.name, "--xml", xml, "--prefer", v.prefer).CombinedOutput()
		if err != nil {
			return fmt.Errorf("vmha vm add %s: %v: %s", v.name, err, out)
		}
		say("vmha vm add %s --xml %s --prefer %s: %s", v.name, xml, v.prefer, strings.TrimSpace(string(out)))
	}
	return nil
}

// pickVictim chooses a host with VMs that is not the leader, so the
// timeline shows detection and fencing without an election in the middle,
// and names its VMs.
func pickVictim(c *labcluster.Cluster, s *api.Status) (*labcluster.Host, []string, error) {
	var victim *labcluster.Host
	for _, h := range s.Hosts {
		if !h.Leader && len(h.VMs) > 0 {
			victim = c.Host(h.Name)
			break
		}
	}
	if victim == nil {
		return nil, nil, errors.New("no non-leader host runs VMs")
	}
	var lost []string
	for _, v := range s.VMs {
		if v.Host == victim.Name {
			lost = append(lost, v.Name)
		}
	}
	sort.Strings(lost)
	return victim, lost, nil
}

// recoveryWatch tells each step of the recovery of the victim's VMs once.
type recoveryWatch struct {
	victim               string
	lost                 []string
	seenLost, seenFenced bool
	running              map[string]string // recovered VM → its new host
}

// recovered tells what is new in s, and whether every lost VM runs again.
func (w *recoveryWatch) recovered(s *api.Status) bool {
	for _, h := range s.Hosts {
		if h.Name != w.victim {
			continue
		}
		if !w.seenLost && h.State != model.HostAlive {
			w.seenLost = true
			say("%s declared lost (%s); recovery %s: fencing it over IPMI before anything restarts", h.Name, h.Reason, h.RecoveryID)
		}
		if !w.seenFenced && h.State == model.HostFenced {
			w.seenFenced = true
			say("%s fenced: %s", h.Name, h.Reason)
		}
		if h.State == model.HostFenceFailed {
			say("fencing %s failed: %s", h.Name, h.Reason)
		}
	}
	for _, v := range s.VMs {
		if slices.Contains(w.lost, v.Name) && v.State == "running" && v.Host != w.victim && w.running[v.Name] == "" {
			w.running[v.Name] = v.Host
			say("%s running on %s (%s)", v.Name, v.Host, v.Reason)
		}
	}
	return len(w.running) == len(w.lost)
}

// recoveryTimes is the victim as s shows it, and when the last of its
// lost VMs started again.
func recoveryTimes(s *api.Status, victim string, lost []string) (api.Host, time.Time) {
	var vh api.Host
	for _, h := range s.Hosts {
		if h.Name == victim {
			vh = h
		}
	}
	var lastStart time.Time
	for _, v := range s.VMs {
		if slices.Contains(lost, v.Name) && v.Since.After(lastStart) {
			lastStart = v.Since
		}
	}
	return vh, lastStart
}

func countRunning(s *api.Status, notOn string) int {
	n := 0
	for _, v := range s.VMs {
		if v.State == "running" && v.Host != notOn {
			n++
		}
	}
	return n
}

func show(vmha, sock string, args ...string) {
	out, err := exec.Command(vmha, append([]string{"--socket", sock}, args...)...).CombinedOutput()
	fmt.Printf("\n$ vmha %s\n%s\n", strings.Join(args, " "), out)
	if err != nil {
		fmt.Printf("(exit: %v)\n", err)
	}
}

func tail(path string, n int) {
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	fmt.Fprintf(os.Stderr, "--- last lines of %s\n%s\n", path, strings.Join(lines, "\n"))
}
