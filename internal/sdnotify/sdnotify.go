// Package sdnotify is vmhad's use of systemd's notify protocol through
// coreos/go-systemd: readiness, stopping, and a service watchdog that is
// pinged only while the daemon's own loops go round. Outside systemd it
// does nothing.
package sdnotify

import (
	"context"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// Notify sends state (e.g. "READY=1") to systemd. It reports whether a
// message was sent; without $NOTIFY_SOCKET it sends nothing.
func Notify(state string) (bool, error) {
	return daemon.SdNotify(false, state)
}

// WatchdogInterval is how often to ping systemd's watchdog: half of the
// timeout systemd set for this process (0: none).
func WatchdogInterval() time.Duration {
	d, err := daemon.SdWatchdogEnabled(false)
	if err != nil || d <= 0 {
		return 0
	}
	return d / 2
}

// Watchdog pings systemd every WatchdogInterval while healthy() says the
// daemon works, until ctx ends. A daemon whose loops are stuck stops
// pinging, and systemd restarts it (the library only sends; deciding
// when the daemon is healthy is ours).
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
				_, _ = Notify(daemon.SdNotifyWatchdog)
			}
		}
	}
}
