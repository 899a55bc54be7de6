package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmha/vmha/internal/testlab/testenv"
)

// TestCheckConfigRefusesWhatStartRefuses: each config here passes
// config.Load and preflight, and the daemon refuses to start with it (or
// stops at once); --check-config must refuse it too, so that "config ok"
// means the daemon starts. Each case runs the check, then the real start.
func TestCheckConfigRefusesWhatStartRefuses(t *testing.T) {
	type setup struct {
		l                    *checkLab
		raft, api, serf, met int
	}
	listen := func(t *testing.T, network string, port int) {
		t.Helper()
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		if network == "udp" {
			pc, err := net.ListenPacket("udp", addr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = pc.Close() })
			return
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = l.Close() })
	}
	mkdir := func(t *testing.T, p string) {
		t.Helper()
		if err := os.MkdirAll(p, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	write := func(t *testing.T, p, body string) {
		t.Helper()
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		// prepare changes the lab and returns extra config.
		prepare func(t *testing.T, s setup) string
		// check is in --check-config's output, start in the start's.
		check, start string
	}{
		{"data_dir is a file", func(t *testing.T, s setup) string {
			write(t, filepath.Join(s.l.dir, "data"), "")
			return ""
		}, "data_dir {DIR}/data is not a directory", "data_dir {DIR}/data"},
		{"empty raft.db", func(t *testing.T, s setup) string {
			mkdir(t, filepath.Join(s.l.dir, "data"))
			write(t, filepath.Join(s.l.dir, "data", "raft.db"), "")
			return ""
		}, "{DIR}/data/raft.db is empty", "{DIR}/data/raft.db is empty"},
		{"a member's data_dir without raft.db", func(t *testing.T, s setup) string {
			writeKeyring(t, s.l, 0o600)
			mustRemove(t, filepath.Join(s.l.dir, "data", "raft.db"))
			return ""
		}, "{DIR}/data/raft.db is missing", "{DIR}/data/raft.db is missing"},
		{"socket is a directory", func(t *testing.T, s setup) string {
			mkdir(t, filepath.Join(s.l.dir, "run", "vmhad.sock"))
			return ""
		}, "a directory is in the way", "a directory is in the way"},
		{"socket directory under a file", func(t *testing.T, s setup) string {
			write(t, filepath.Join(s.l.dir, "run"), "")
			return ""
		}, "{DIR}/run is not a directory", "not a directory"},
		{"unknown socket_group", func(t *testing.T, s setup) string {
			return "socket_group: vmha-no-such-group\n"
		}, `socket_group "vmha-no-such-group"`, `socket_group "vmha-no-such-group"`},
		{"raft port taken", func(t *testing.T, s setup) string {
			listen(t, "tcp", s.raft)
			return ""
		}, fmt.Sprintf("ports.raft 127.0.0.1:%s/tcp: bind: address already in use", "{RAFT}"), "address already in use"},
		{"api port taken", func(t *testing.T, s setup) string {
			listen(t, "tcp", s.api)
			return ""
		}, "ports.api 127.0.0.1:{API}/tcp: bind: address already in use", "address already in use"},
		{"gossip UDP port taken", func(t *testing.T, s setup) string {
			listen(t, "udp", s.serf)
			return ""
		}, "ports.serf 127.0.0.1:{SERF}/udp: bind: address already in use", "address already in use"},
		{"metrics port taken", func(t *testing.T, s setup) string {
			listen(t, "tcp", s.met)
			return fmt.Sprintf("metrics_addr: 127.0.0.1:%d\n", s.met)
		}, "metrics_addr 127.0.0.1:{MET}/tcp: bind: address already in use", "address already in use"},
		{"watchdog device missing", func(t *testing.T, s setup) string {
			return "watchdog: {device: " + filepath.Join(s.l.dir, "watchdog0") + ", timeout: 10s}\n"
		}, "watchdog.device: stat {DIR}/watchdog0: no such file or directory", "watchdog"},
		{"watchdog device a regular file", func(t *testing.T, s setup) string {
			write(t, filepath.Join(s.l.dir, "watchdog0"), "")
			return "watchdog: {device: " + filepath.Join(s.l.dir, "watchdog0") + ", timeout: 10s}\n"
		}, "watchdog.device {DIR}/watchdog0: not a character device", "not a character device"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := setup{l: newCheckLab(t), raft: testenv.FreePort(t), api: testenv.FreePort(t), serf: testenv.FreePort(t), met: testenv.FreePort(t)}
			extra := fmt.Sprintf("ports: {raft: %d, api: %d, serf: %d}\nsocket: %s\n", s.raft, s.api, s.serf, filepath.Join(s.l.dir, "run", "vmhad.sock"))
			extra += tt.prepare(t, s)
			p := s.l.config(t, extra)
			r := strings.NewReplacer("{DIR}", s.l.dir, "{RAFT}", fmt.Sprint(s.raft), "{API}", fmt.Sprint(s.api), "{SERF}", fmt.Sprint(s.serf), "{MET}", fmt.Sprint(s.met))
			code, out := runVmhad(t, "--config", p, "--check-config")
			if code != 1 || !strings.Contains(out, r.Replace(tt.check)) {
				t.Fatalf("--check-config: exit %d, want 1 with %q; stderr:\n%s", code, r.Replace(tt.check), out)
			}
			// The start refuses it too (and so it stops: a start that
			// did not would run until the timeout).
			type res struct {
				code int
				out  string
			}
			done := make(chan res, 1)
			go func() {
				code, out := runVmhad(t, "--config", p)
				done <- res{code, out}
			}()
			select {
			case got := <-done:
				if got.code != 1 || !strings.Contains(got.out, r.Replace(tt.start)) {
					t.Fatalf("start: exit %d, want 1 with %q; stderr:\n%s", got.code, r.Replace(tt.start), got.out)
				}
			case <-time.After(60 * time.Second):
				t.Fatal("the daemon started with a config --check-config refuses")
			}
		})
	}
}

// TestCheckConfigStartsClean: the lab's config, on free ports and a
// socket of its own, passes the start checks: they refuse only what the
// start refuses.
func TestCheckConfigStartsClean(t *testing.T) {
	l := newCheckLab(t)
	extra := fmt.Sprintf("ports: {raft: %d, api: %d, serf: %d}\nsocket: %s\nmetrics_addr: 127.0.0.1:%d\n",
		testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t), filepath.Join(l.dir, "run", "vmhad.sock"), testenv.FreePort(t))
	code, out := runVmhad(t, "--config", l.config(t, extra), "--check-config")
	if code != 0 || !strings.Contains(out, "config ok") {
		t.Fatalf("exit %d; stderr:\n%s", code, out)
	}
	for _, p := range []string{filepath.Join(l.dir, "data"), filepath.Join(l.dir, "run")} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("--check-config made %s", p)
		}
	}
}

// TestCheckConfigBesideARunningDaemon: beside a live vmhad of the same
// config (its data_dir locked, its socket answering, its ports bound),
// --check-config checks the config and says the daemon runs, as warnings:
// ok, since the config may be the one it runs with.
func TestCheckConfigBesideARunningDaemon(t *testing.T) {
	l := newCheckLab(t)
	raftPort := testenv.FreePort(t)
	sock := filepath.Join(l.dir, "run", "vmhad.sock")
	data := filepath.Join(l.dir, "data")
	for _, d := range []string{data, filepath.Dir(sock)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	lock, err := os.OpenFile(filepath.Join(data, "vmhad.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	ul, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ul.Close()
	go func() {
		for {
			c, err := ul.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	rl, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", raftPort))
	if err != nil {
		t.Fatal(err)
	}
	defer rl.Close()
	extra := fmt.Sprintf("ports: {raft: %d, api: %d, serf: %d}\nsocket: %s\n", raftPort, testenv.FreePort(t), testenv.FreePort(t), sock)
	code, out := runVmhad(t, "--config", l.config(t, extra), "--check-config")
	for _, w := range []string{"data_dir " + data + " is in use by a running vmhad", "socket " + sock + " is in use by a running vmhad", "the ports are not checked", "config ok"} {
		if !strings.Contains(out, w) {
			t.Errorf("no %q in:\n%s", w, out)
		}
	}
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
}
