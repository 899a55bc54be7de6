package cluster

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	return uint64(st.Ino)
}

func dialOK(t *testing.T, path string) {
	t.Helper()
	c, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		t.Fatalf("nothing answers on %s: %v", path, err)
	}
	c.Close()
}

// A socket another daemon listens on is refused, and stays: the live
// daemon keeps its socket.
func TestClaimSocketRefusesALiveSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vmhad.sock")
	live, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	ino := inode(t, path)
	s, err := ClaimSocket(path, "")
	if err == nil {
		_ = s.Close()
		t.Fatal("a live socket was taken over")
	}
	if want := "socket " + path + " is in use by another vmhad"; !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not say %q", err, want)
	}
	if inode(t, path) != ino {
		t.Fatal("the live socket was replaced")
	}
	dialOK(t, path)
}

// Two vmhads on one path: the second is refused (by the lock, before it
// looks at the socket), the first keeps serving and removes its socket
// when it stops.
func TestClaimSocketTwice(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vmhad.sock")
	first, err := ClaimSocket(path, "")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := first.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	if fi, err := os.Lstat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode: %v %v, want 0600", fi.Mode(), err)
	}
	second, err := ClaimSocket(path, "")
	if err == nil {
		_ = second.Close()
		t.Fatal("a second vmhad claimed the socket")
	}
	if !strings.Contains(err.Error(), "is in use by another vmhad") {
		t.Fatalf("second claim: %v", err)
	}
	dialOK(t, path)
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Fatalf("the socket is still there after Close: %v", err)
	}
	// Free again: a new daemon may claim it.
	again, err := ClaimSocket(path, "")
	if err != nil {
		t.Fatal(err)
	}
	_ = again.Close()
}

// Anything but a socket at the path is an error that names it, and is
// left exactly as it was.
func TestClaimSocketRefusesWhatIsNotASocket(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file.sock")
	if err := os.WriteFile(file, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "dir.sock")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.sock")
	if err := os.Symlink(file, link); err != nil {
		t.Fatal(err)
	}
	for path, what := range map[string]string{file: "a regular file", sub: "a directory", link: "a symbolic link"} {
		s, err := ClaimSocket(path, "")
		if err == nil {
			_ = s.Close()
			t.Fatalf("%s: claimed %s", path, what)
		}
		if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), what) {
			t.Errorf("%s: error %q does not name the path and %q", path, err, what)
		}
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "precious" {
		t.Fatalf("the regular file was changed: %q %v", b, err)
	}
	if fi, err := os.Lstat(sub); err != nil || !fi.IsDir() {
		t.Fatalf("the directory was changed: %v", err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode().Type() != os.ModeSymlink {
		t.Fatalf("the link was changed: %v", err)
	}
}

// A socket nobody listens on (a vmhad that was killed) is replaced.
func TestClaimSocketReplacesAStaleSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vmhad.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	_ = l.Close()
	if _, err := net.Dial("unix", path); err == nil {
		t.Fatal("the stale socket answers")
	}
	s, err := ClaimSocket(path, "")
	if err != nil {
		t.Fatalf("a stale socket was not replaced: %v", err)
	}
	defer func() { _ = s.Close() }()
	go func() {
		if c, err := s.Accept(); err == nil {
			c.Close()
		}
	}()
	dialOK(t, path)
}

// Close removes the socket only if the path is still this daemon's: a
// socket made there since (by an operator, or another daemon after the
// path was freed) stays.
func TestSocketCloseRemovesOnlyItsOwn(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vmhad.sock")
	s, err := ClaimSocket(path, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	other, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	other.SetUnlinkOnClose(false)
	defer func() { _ = other.Close() }()
	ino := inode(t, path)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); err != nil || inode(t, path) != ino {
		t.Fatalf("Close removed a socket that was not its own: %v", err)
	}
	_ = s.Close() // twice is fine
}
