// Package ipmi is a fence device that switches a host off through its BMC
// over the IPMI LAN protocol: IPMI 2.0 / RMCP+ ("lanplus", the default) or
// IPMI 1.5 ("lan").
//
// Each call opens a session, sends one command and closes the session: BMCs
// evict idle sessions and fencing is rare, so nothing is kept open.
package ipmi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/command/chassis"
	"github.com/bougou/go-ipmi/pkg/types"

	"github.com/vmha/vmha/fencing"
	"github.com/vmha/vmha/internal/secret"
)

// Defaults for Config.
const (
	DefaultPort        = 623
	DefaultInterface   = "lanplus"
	DefaultCipherSuite = 3
	DefaultTimeout     = 10 * time.Second
)

// Interfaces.
const (
	InterfaceLanplus = "lanplus" // IPMI 2.0, RMCP+
	InterfaceLan     = "lan"     // IPMI 1.5
)

// Protocol limits (IPMI 2.0 §13.17, §22.28).
const (
	maxUserLen       = 16
	maxPasswordLen20 = 20
	maxPasswordLen15 = 16
)

// Config describes one BMC.
type Config struct {
	Host     string
	Port     int // default 623
	User     string
	Password secret.String
	// Interface is "lanplus" (IPMI 2.0, default) or "lan" (IPMI 1.5).
	Interface string
	// CipherSuite is the RMCP+ cipher suite for lanplus (default 3:
	// HMAC-SHA1, HMAC-SHA1-96, AES-CBC-128). Ignored for lan.
	CipherSuite int
	// Timeout bounds each call: session set-up, one command and close
	// (default 10s).
	Timeout time.Duration
}

// Device is an IPMI fence device. It implements fencing.Device and is safe
// for concurrent use (calls share nothing). It prints as its Name.
type Device struct {
	host    string
	port    int
	user    string
	iface   client.Interface
	cipher  types.CipherSuiteID
	timeout time.Duration
	name    string
	// password is a closure so that no printing path, not even %#v of a
	// struct holding a Device in an unexported field, can reach the value.
	password func() string
}

var (
	_ fencing.Device   = (*Device)(nil)
	_ fencing.Rebooter = (*Device)(nil)
)

// New validates cfg, applies defaults and returns the device. Errors name
// the offending field, e.g. "ipmi: host is empty".
func New(cfg Config) (*Device, error) {
	host := strings.TrimSpace(cfg.Host)
	if host == "" {
		return nil, errors.New("ipmi: host is empty")
	}
	if strings.ContainsAny(host, " \t\r\n/") {
		return nil, fmt.Errorf("ipmi: host %q is not a host name or address", host)
	}
	port := cfg.Port
	if port == 0 {
		port = DefaultPort
	}
	if port < 1 || port > 65535 {
		return nil, fmt.Errorf("ipmi: port %d is out of range 1-65535", cfg.Port)
	}
	if cfg.User == "" {
		return nil, errors.New("ipmi: user is empty")
	}
	if len(cfg.User) > maxUserLen {
		return nil, fmt.Errorf("ipmi: user is longer than %d bytes", maxUserLen)
	}
	iface := cfg.Interface
	if iface == "" {
		iface = DefaultInterface
	}
	maxPass := maxPasswordLen20
	switch iface {
	case InterfaceLanplus:
	case InterfaceLan:
		maxPass = maxPasswordLen15
	default:
		return nil, fmt.Errorf("ipmi: interface %q is not %q or %q", cfg.Interface, InterfaceLanplus, InterfaceLan)
	}
	if cfg.Password.IsZero() {
		return nil, errors.New("ipmi: password is empty")
	}
	pass := cfg.Password.Reveal()
	if len(pass) > maxPass {
		return nil, fmt.Errorf("ipmi: password is longer than %d bytes (the %s limit)", maxPass, iface)
	}
	cs := cfg.CipherSuite
	if cs == 0 {
		cs = DefaultCipherSuite
	}
	if _, _, _, ok := types.GetCipherSuiteAlgorithms(types.CipherSuiteID(cs)); !ok || cs < 0 || cs > 19 {
		return nil, fmt.Errorf("ipmi: cipher suite %d is not a standard IPMI 2.0 cipher suite (1-19)", cfg.CipherSuite)
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	if timeout < 0 {
		return nil, fmt.Errorf("ipmi: timeout %s is negative", cfg.Timeout)
	}
	return &Device{
		host:     host,
		port:     port,
		user:     cfg.User,
		iface:    client.Interface(iface),
		cipher:   types.CipherSuiteID(cs),
		timeout:  timeout,
		name:     "ipmi " + net.JoinHostPort(host, strconv.Itoa(port)),
		password: func() string { return pass },
	}, nil
}

// Name is "ipmi HOST:PORT".
func (d *Device) Name() string { return d.name }

// String implements fmt.Stringer: the Name.
func (d Device) String() string { return d.name }

// GoString implements fmt.GoStringer so %#v prints the Name too.
func (d Device) GoString() string { return d.name }

// Status reads the chassis power state (Get Chassis Status).
func (d *Device) Status(ctx context.Context) (fencing.PowerState, error) {
	st := fencing.PowerUnknown
	err := d.call(ctx, "status", func(ctx context.Context, c *client.Client) error {
		res, err := c.GetChassisStatus(ctx)
		if err != nil {
			return err
		}
		if res.PowerIsOn {
			st = fencing.PowerOn
		} else {
			st = fencing.PowerOff
		}
		return nil
	})
	if err != nil {
		return fencing.PowerUnknown, err
	}
	return st, nil
}

// PowerOff sends Chassis Control "power down": an immediate hard off, not
// an ACPI soft shutdown.
func (d *Device) PowerOff(ctx context.Context) error {
	return d.control(ctx, "power off", chassis.ChassisControlPowerDown)
}

// PowerOn sends Chassis Control "power up".
func (d *Device) PowerOn(ctx context.Context) error {
	return d.control(ctx, "power on", chassis.ChassisControlPowerUp)
}

// Reboot sends Chassis Control "power cycle": power off, a BMC-defined
// pause (at least 1 s per the IPMI spec), power on. Fencing topologies do
// not use it (their reboot is off, verify off, on, which proves the host
// lost power); it is for an operator's explicit power cycle. BMCs ignore or
// refuse a cycle of a chassis that is off.
func (d *Device) Reboot(ctx context.Context) error {
	return d.control(ctx, "power cycle", chassis.ChassisControlPowerCycle)
}

func (d *Device) control(ctx context.Context, op string, ctl chassis.ChassisControl) error {
	return d.call(ctx, op, func(ctx context.Context, c *client.Client) error {
		_, err := c.ChassisControl(ctx, ctl)
		return err
	})
}

// closeTimeout bounds closing a session after the command.
const closeTimeout = time.Second

// call opens a session, runs fn and closes the session, all within
// d.timeout. Errors are *Error values that never contain the password.
func (d *Device) call(ctx context.Context, op string, fn func(context.Context, *client.Client) error) error {
	start := time.Now()
	if err := ctx.Err(); err != nil {
		return d.wrap(ctx, op, "", start, err)
	}
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()

	c, err := client.NewClient(d.host, d.port, d.user, d.password())
	if err != nil {
		return d.wrap(ctx, op, "", start, err)
	}
	// A datagram without an answer is resent after exchange. go-ipmi
	// resends only on such timeouts; the retry count is large so that the
	// context deadline (d.timeout), not the count, ends a call to a silent
	// BMC.
	exchange := min(time.Second, max(d.timeout/4, 50*time.Millisecond))
	c.WithInterface(d.iface).WithTimeout(exchange).WithRetry(1000)
	if d.iface == client.InterfaceLanplus {
		c.WithCipherSuiteID(d.cipher)
	}

	if err := c.Connect(ctx); err != nil {
		releaseSocket(c)
		return d.wrap(ctx, op, "open session", start, err)
	}

	err = fn(ctx, c)

	if ctx.Err() != nil {
		// The BMC is not answering (or the caller gave up): do not wait
		// for a Close Session reply too.
		releaseSocket(c)
	} else {
		// Close the session: BMCs have few session slots.
		cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), min(closeTimeout, d.timeout))
		_ = c.Close(cctx)
		ccancel()
	}

	if err != nil {
		return d.wrap(ctx, op, "", start, err)
	}
	return nil
}

// releaseSocket closes the client's UDP socket without a Close Session
// exchange: with a cancelled context, go-ipmi's Close skips the exchange.
func releaseSocket(c *client.Client) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = c.Close(ctx)
}

// ErrAuth is wrapped by errors of calls the BMC refused to authenticate
// (IPMI 2.0 RAKP: wrong user or password). IPMI 1.5 BMCs usually drop such
// requests silently, which shows as a timeout instead.
var ErrAuth = errors.New("authentication failed (wrong user or password?)")

// Error is a failed IPMI call. Its message is built from go-ipmi's error
// with the password removed; the original error is not kept (it is not
// wrapped), so no unwrapping can reach text that was not scrubbed. Unwrap
// reports context.Canceled or context.DeadlineExceeded when the call was
// cut short by its context, and ErrAuth for a refused login.
type Error struct {
	Device string // Name of the device
	Op     string // "status", "power off", "power on"
	msg    string
	kind   error
}

func (e *Error) Error() string { return "ipmi " + e.Op + ": " + e.msg }

// Unwrap returns the error's kind (context.Canceled,
// context.DeadlineExceeded, ErrAuth) or nil.
func (e *Error) Unwrap() error { return e.kind }

// wrap builds an *Error from err with the password scrubbed.
// ctx is the call's context: if it has ended, the call is classified by it
// whatever go-ipmi's error says.
func (d *Device) wrap(ctx context.Context, op, step string, start time.Time, err error) error {
	msg := d.scrub(err.Error())
	if step != "" {
		msg = step + ": " + msg
	}
	e := &Error{Device: d.name, Op: op, msg: msg}
	// go-ipmi's Connect20 flattens its errors (%v), so match the text too.
	auth := errors.Is(err, client.ErrRAKPAuthentication) ||
		strings.Contains(err.Error(), client.ErrRAKPAuthentication.Error())
	if cerr := ctx.Err(); cerr != nil && !auth {
		err = cerr
	}
	switch {
	case auth:
		e.kind = ErrAuth
		e.msg = fmt.Sprintf("%v: %s", ErrAuth, msg)
	case errors.Is(err, context.DeadlineExceeded):
		e.kind = context.DeadlineExceeded
		e.msg = fmt.Sprintf("no answer from %s after %s (%s)", net.JoinHostPort(d.host, strconv.Itoa(d.port)),
			time.Since(start).Round(time.Millisecond), msg)
	case errors.Is(err, context.Canceled):
		e.kind = context.Canceled
	}
	return e
}

// scrub removes the password from text and flattens it to one line.
func (d *Device) scrub(s string) string {
	if p := d.password(); p != "" {
		s = strings.ReplaceAll(s, p, secret.Redacted)
	}
	return strings.Join(strings.Fields(s), " ")
}

// maxPasswordFile bounds how much of a password file is read.
const maxPasswordFile = 4096

// PasswordFromFile reads a BMC password from path, dropping one trailing
// newline ("\n" or "\r\n"). The file must be a regular file not readable by
// group or others (mode 0600 or 0400). Errors name the file, never its
// contents.
func PasswordFromFile(path string) (secret.String, error) {
	f, err := os.Open(path)
	if err != nil {
		return secret.String{}, fmt.Errorf("ipmi: password file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return secret.String{}, fmt.Errorf("ipmi: password file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return secret.String{}, fmt.Errorf("ipmi: password file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o044 != 0 {
		return secret.String{}, fmt.Errorf("ipmi: password file %s has mode %04o: it must not be readable by group or others (chmod 600 %s)", path, perm, path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxPasswordFile+1))
	if err != nil {
		return secret.String{}, fmt.Errorf("ipmi: password file %s: %w", path, err)
	}
	if len(b) > maxPasswordFile {
		return secret.String{}, fmt.Errorf("ipmi: password file %s is larger than %d bytes", path, maxPasswordFile)
	}
	v := strings.TrimSuffix(string(b), "\n")
	v = strings.TrimSuffix(v, "\r")
	if v == "" {
		return secret.String{}, fmt.Errorf("ipmi: password file %s is empty", path)
	}
	if strings.ContainsAny(v, "\r\n") {
		return secret.String{}, fmt.Errorf("ipmi: password file %s holds more than one line", path)
	}
	return secret.New(v), nil
}
