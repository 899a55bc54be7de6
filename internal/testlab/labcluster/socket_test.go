package labcluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/internal/testlab/testenv"
)

// TestSecondVmhadKeepsOffTheSocket: a second vmhad given a live daemon's
// socket path refuses to start (before it creates its data directory or
// joins anything) and the live one keeps its socket; one whose socket:
// names a regular file refuses and leaves the file; a clean stop removes
// the socket.
func TestSecondVmhadKeepsOffTheSocket(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "vmhad.sock")
	ports, err := testenv.FreePorts(6)
	if err != nil {
		t.Fatal(err)
	}
	config := func(name, socket string, p []int) string {
		path := filepath.Join(dir, name+".yaml")
		cfg := fmt.Sprintf("node_name: %s\nbind_addr: 127.0.0.1\nports: {serf: %d, raft: %d, api: %d}\ndata_dir: %s\nsocket: %s\nhypervisor_uri: test:///default\n",
			name, p[0], p[1], p[2], filepath.Join(dir, name+"-data"), socket)
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	vmhad := filepath.Join(binDir, "vmhad")
	first := exec.Command(vmhad, "--config", config("first", sock, ports[:3]))
	first.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- first.Wait() }()
	defer func() {
		_ = first.Process.Kill()
		t.Logf("first vmhad ended: %v", <-done)
	}()
	alive := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		var a api.Alive
		if err := api.NewUnixClient(sock, 2*time.Second).Do(ctx, "GET", api.PathAlive, nil, &a, nil); err != nil {
			return err
		}
		if a.Node != "first" {
			return fmt.Errorf("the socket answers as %q", a.Node)
		}
		return nil
	}
	for end := time.Now().Add(20 * time.Second); alive() != nil; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("the first vmhad does not answer on %s: %v", sock, alive())
		}
	}

	run := func(name, socket string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, vmhad, "--config", config(name, socket, ports[3:])).CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			t.Fatalf("vmhad %s: %v, want exit 1: %s", name, err, out)
		}
		if _, err := os.Stat(filepath.Join(dir, name+"-data")); !os.IsNotExist(err) {
			t.Errorf("vmhad %s made its data directory before it had a socket", name)
		}
		return string(out)
	}
	out := run("second", sock)
	if want := "socket " + sock + " is in use by another vmhad"; !strings.Contains(out, want) {
		t.Fatalf("second vmhad said %q, want %q", out, want)
	}
	if err := alive(); err != nil {
		t.Fatalf("the first vmhad lost its socket: %v", err)
	}

	file := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(file, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	out = run("third", file)
	if !strings.Contains(out, file) || !strings.Contains(out, "a regular file") {
		t.Fatalf("vmhad on a regular file said %q", out)
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "precious" {
		t.Fatalf("the regular file was changed: %q %v", b, err)
	}

	_ = first.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		_ = err
		done <- nil // for the deferred Kill's wait
	case <-time.After(15 * time.Second):
		t.Fatal("the first vmhad did not stop")
	}
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Fatalf("the socket is still there after a clean stop: %v", err)
	}
}
