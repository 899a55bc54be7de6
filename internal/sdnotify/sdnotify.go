// Package sdnotify speaks systemd's notify protocol (sd_notify(3)) without
// a library: readiness, stopping, and the service watchdog, over the unix
// datagram socket named by $NOTIFY_SOCKET. Outside systemd it does nothing.
package sdnotify

import (
	"context"
	"net"
	"os"
	"strconv"
	"time"
)

// Notify sends state (e.g. "READY=1") to systemd. It reports whether a
// message was sent; without $NOTIFY_SOCKET it sends nothing.
func Notify(state string) (bool, error) {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return false, nil
	}
	if path[0] == '@' {
		path = "\x00" + path[1:] // abstract socket
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return false, err
	}
	defer func() { _ = c.Close() }()
	if _, err := c.Write([]byte(state)); err != nil {
		return false, err
	}
	return true, nil
}

// WatchdogInterval is how often to ping systemd's watchdog: half of
// $WATCHDOG_USEC, when it is set for this process ($WATCHDOG_PID).
func WatchdogInterval() time.Duration {
	usec, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return 0
	}
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0
	}
	return time.Duration(usec) * time.Microsecond / 2
}

// Watchdog pings systemd every WatchdogInterval while healthy() says the
// daemon works, until ctx ends. A daemon whose loops are stuck stops
// pinging, and systemd restarts it.
func Watchdog(ctx context.Context, healthy func() bool) {
	iv := WatchdogInterval()
	if iv == 0 {
		return
	}
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if healthy() {
				_, _ = Notify("WATCHDOG=1")
			}
		}
	}
}
