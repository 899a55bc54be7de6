package watchdog

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestOpenRefuses(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	_ = os.WriteFile(plain, nil, 0o600)
	for _, tc := range []struct {
		path    string
		timeout time.Duration
		want    string
	}{
		{plain, 500 * time.Millisecond, "whole seconds"},
		{plain, 1500 * time.Millisecond, "whole seconds"},
		{plain, 2 * time.Hour, "whole seconds"},
		{filepath.Join(dir, "missing"), 10 * time.Second, "no such file"},
		{plain, 10 * time.Second, "not a character device"},
	} {
		if _, err := Open(tc.path, tc.timeout); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%s, %s): %v, want %q", tc.path, tc.timeout, err, tc.want)
		}
	}
}

// TestFIFO: a pipe stands for the device: every pet is a line, a disarm
// the magic "V", and a pet after the disarm is an error.
func TestFIFO(t *testing.T) {
	p := filepath.Join(t.TempDir(), "wd")
	if err := unix.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := os.OpenFile(p, os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	d, err := Open(p, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if d.Timeout() != 3*time.Second {
		t.Fatalf("timeout %s", d.Timeout())
	}
	for range 2 {
		if err := d.Pet(); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Disarm(); err != nil {
		t.Fatal(err)
	}
	if err := d.Pet(); err == nil {
		t.Fatal("a pet after the disarm succeeded")
	}
	_ = unix.SetNonblock(int(r.Fd()), false)
	b, _ := bufio.NewReader(r).ReadString(0)
	if b != "k\nk\nk\nV" {
		t.Fatalf("the device read %q, want three pets (open, two) and V", b)
	}
}

// TestRealDevice arms /dev/watchdog when the kernel offers one. This
// machine's kernel has no watchdog driver (no /dev/watchdog, no softdog
// module), so it is skipped here; the FIFO stands in for the cluster test.
func TestRealDevice(t *testing.T) {
	if _, err := os.Stat("/dev/watchdog"); err != nil || os.Getenv("VMHA_TEST_WATCHDOG") != "1" {
		t.Skip("needs /dev/watchdog and VMHA_TEST_WATCHDOG=1 (arming it resets the machine if the test dies); this kernel has none")
	}
	d, err := Open("/dev/watchdog", 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Pet(); err != nil {
		t.Fatal(err)
	}
	if err := d.Disarm(); err != nil {
		t.Fatal(err)
	}
}
