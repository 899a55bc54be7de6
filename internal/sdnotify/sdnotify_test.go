package sdnotify

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func listen(t *testing.T) *net.UnixConn {
	t.Helper()
	p := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: p, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	t.Setenv("NOTIFY_SOCKET", p)
	return c
}

func read(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 256)
	n, err := c.Read(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(b[:n])
}

func TestNotify(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if sent, err := Notify("READY=1"); sent || err != nil {
		t.Fatalf("outside systemd: sent %v, err %v", sent, err)
	}
	c := listen(t)
	if sent, err := Notify("READY=1"); !sent || err != nil {
		t.Fatalf("sent %v, err %v", sent, err)
	}
	if got := read(t, c); got != "READY=1" {
		t.Fatalf("got %q", got)
	}
}

func TestWatchdog(t *testing.T) {
	c := listen(t)
	t.Setenv("WATCHDOG_USEC", "40000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	if iv := WatchdogInterval(); iv != 20*time.Millisecond {
		t.Fatalf("interval %v", iv)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	healthy := make(chan bool, 1)
	healthy <- true
	go Watchdog(ctx, func() bool {
		select {
		case h := <-healthy:
			healthy <- h
			return h
		default:
			return false
		}
	})
	if got := read(t, c); got != "WATCHDOG=1" {
		t.Fatalf("got %q", got)
	}
	// An unhealthy daemon stops pinging: drain what was already sent,
	// then nothing more may arrive for several intervals.
	<-healthy
	healthy <- false
	time.Sleep(50 * time.Millisecond)
	b := make([]byte, 64)
	for {
		_ = c.SetReadDeadline(time.Now().Add(time.Millisecond))
		if _, err := c.Read(b); err != nil {
			break
		}
	}
	_ = c.SetReadDeadline(time.Now().Add(150 * time.Millisecond))
	if n, err := c.Read(b); err == nil {
		t.Fatalf("an unhealthy daemon still pinged: %q", b[:n])
	}
	// Another process's watchdog settings are not ours.
	t.Setenv("WATCHDOG_PID", "1")
	if WatchdogInterval() != 0 {
		t.Fatal("watchdog meant for another pid")
	}
}
