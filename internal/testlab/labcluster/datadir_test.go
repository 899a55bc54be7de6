package labcluster

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmha/vmha/api"
)

// TestEmptiedRaftDBIsRefused: a member whose raft.db was emptied while its
// vmhad was stopped refuses to start (it must not begin a new, empty cluster
// history), its log names raft.db and the way back, the cluster keeps its
// state, and the way back the message gives works: fence, remove, move the
// data aside, start again.
func TestEmptiedRaftDBIsRefused(t *testing.T) {
	c := startCluster(t)
	names := []string{"e1", "e2", "e3"}
	addVMs(t, c, names...)
	before := mustStatus(t, c)
	var v *Host
	for _, h := range c.Hosts {
		if h.Name != before.Leader && len(hostOf(before, h.Name).VMs) > 0 {
			v = h
		}
	}
	if v == nil {
		t.Fatal("no follower runs a VM")
	}
	v.Stop()
	data := filepath.Join(v.Dir, "data")
	db := filepath.Join(data, "raft.db")
	if err := os.Truncate(db, 0); err != nil {
		t.Fatal(err)
	}

	// Start it as the harness does, and wait for it to give up.
	logf, err := os.OpenFile(v.Log, os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	fi, _ := logf.Stat()
	cmd := exec.Command(filepath.Join(binDir, "vmhad"), "--config", v.Config)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Logf("killed: %v", <-done)
		t.Fatalf("vmhad of %s kept running on an emptied raft.db", v.Name)
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Fatalf("vmhad of %s on an emptied raft.db ended with %v, want a non-zero exit", v.Name, err)
	}
	b, _ := os.ReadFile(v.Log)
	out := string(b[fi.Size():])
	for _, want := range []string{
		"refusing to start: " + db + " is empty (0 bytes)",
		"this data_dir belonged to a cluster member",
		"restore " + data + " from a backup",
		"vmha host remove " + v.Name + " --yes",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("vmhad's log lacks %q:\n%s", want, out)
		}
	}
	if fi, err := os.Stat(db); err != nil || fi.Size() != 0 {
		t.Errorf("the refused start changed raft.db: %v %v", fi, err)
	}

	// The cluster keeps its hosts, VMs and term.
	s := mustStatus(t, c)
	if len(s.VMs) != len(names) || len(s.Hosts) != 3 || s.Term < before.Term || s.Leader == "" || s.Leader == v.Name {
		t.Fatalf("after the refused start: leader %q term %d (before %d), %d hosts, VMs %+v", s.Leader, s.Term, before.Term, len(s.Hosts), s.VMs)
	}

	// The way back the message gives: its VMs restart elsewhere, the host
	// leaves the cluster, its data goes aside, and it joins as new.
	via := c.Host(s.Leader)
	if out, err := c.vmha(via, "fence", v.Name, "--yes"); err != nil {
		t.Fatalf("vmha fence %s: %v: %s", v.Name, err, out)
	}
	if _, err := c.WaitFor(context.Background(), 60*time.Second, "VMs recovered off "+v.Name, func(s *api.Status) bool {
		for _, vm := range s.VMs {
			if vm.Host == v.Name || vm.State != "running" {
				return false
			}
		}
		return len(s.VMs) == len(names)
	}); err != nil {
		t.Fatal(err)
	}
	if out, err := c.vmha(via, "host", "remove", v.Name, "--yes"); err != nil {
		t.Fatalf("vmha host remove %s: %v: %s", v.Name, err, out)
	}
	// The cluster formed: admission is closed until the host is announced.
	if out, err := c.vmha(via, "host", "add", v.Name); err != nil {
		t.Fatalf("vmha host add %s: %v: %s", v.Name, err, out)
	}
	if err := os.Rename(data, data+".broken"); err != nil {
		t.Fatal(err)
	}
	if err := v.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitFor(context.Background(), 60*time.Second, v.Name+" back as a new member, every VM running", func(s *api.Status) bool {
		if len(s.Hosts) != 3 || hostOf(s, v.Name).Member != "alive" || len(s.VMs) != len(names) {
			return false
		}
		for _, vm := range s.VMs {
			if vm.State != "running" {
				return false
			}
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
}
