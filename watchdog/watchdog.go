// Package watchdog drives a Linux watchdog device (/dev/watchdog, e.g. a
// BMC's hardware watchdog or the softdog module) for self-fencing: vmhad
// pets it only while its host is in the quorum, so a host cut off from the
// quorum longer than the timeout is reset by the device, even when its BMC
// is unreachable too (a whole-rack power loss takes the BMC with it). The
// majority, knowing the timeout, can then treat the host as fenced.
//
// A FIFO stands for the device where no watchdog driver exists (the
// supervision of a test, or a userspace watchdog daemon that reads
// keepalives from a pipe): each pet writes "k\n", a disarm "V".
package watchdog

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ioctl requests of linux/watchdog.h.
const (
	wdiocKeepAlive  = 0x80045705 // _IOR('W', 5, int)
	wdiocSetTimeout = 0xc0045706 // _IOWR('W', 6, int)
	wdiocGetTimeout = 0x80045707 // _IOR('W', 7, int)
)

// Device is an armed watchdog.
type Device struct {
	mu      sync.Mutex
	f       *os.File
	path    string
	fifo    bool
	timeout time.Duration
	closed  bool
}

// Open arms the watchdog at path with timeout (whole seconds, 1 s to
// 1 h). A real device must accept the timeout: the majority's wait
// depends on it, so a device that keeps another one is an error.
func Open(path string, timeout time.Duration) (*Device, error) {
	if timeout < time.Second || timeout > time.Hour || timeout%time.Second != 0 {
		return nil, fmt.Errorf("watchdog timeout %s: want whole seconds from 1s to 1h", timeout)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("watchdog %s: %w", path, err)
	}
	switch {
	case fi.Mode()&os.ModeNamedPipe != 0:
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return nil, fmt.Errorf("watchdog %s: %w", path, err)
		}
		d := &Device{f: f, path: path, fifo: true, timeout: timeout}
		return d, d.Pet()
	case fi.Mode()&os.ModeCharDevice == 0:
		return nil, fmt.Errorf("watchdog %s: not a character device (nor a FIFO)", path)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("watchdog %s: %w (is another watchdog daemon holding it?)", path, err)
	}
	d := &Device{f: f, path: path, timeout: timeout}
	secs := int32(timeout / time.Second)
	if err := d.ioctl(wdiocSetTimeout, &secs); err != nil {
		_ = d.disarmAndClose()
		return nil, fmt.Errorf("watchdog %s: set timeout %s: %w", path, timeout, err)
	}
	var got int32
	if err := d.ioctl(wdiocGetTimeout, &got); err == nil && time.Duration(got)*time.Second != timeout {
		_ = d.disarmAndClose()
		return nil, fmt.Errorf("watchdog %s: asked for a %s timeout, the device keeps %ds", path, timeout, got)
	}
	return d, d.Pet()
}

func (d *Device) ioctl(req uintptr, arg *int32) error {
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, d.f.Fd(), req, uintptr(unsafe.Pointer(arg)))
	if errno != 0 {
		return errno
	}
	return nil
}

// Timeout is the armed timeout.
func (d *Device) Timeout() time.Duration { return d.timeout }

// Pet restarts the device's countdown.
func (d *Device) Pet() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errors.New("watchdog closed")
	}
	if d.fifo {
		_, err := d.f.WriteString("k\n")
		return err
	}
	var dummy int32
	return d.ioctl(wdiocKeepAlive, &dummy)
}

// Disarm stops the watchdog for a clean shutdown ("magic close": writing
// V before closing). A driver built with nowayout ignores it and resets
// the host after the timeout anyway; the log says so at start.
func (d *Device) Disarm() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	return d.disarmAndClose()
}

func (d *Device) disarmAndClose() error {
	d.closed = true
	_, werr := d.f.WriteString("V")
	cerr := d.f.Close()
	return errors.Join(werr, cerr)
}
