// Package libvirt fences hosts that are themselves domains of a management
// hypervisor (labs, nested clusters), like fence_virsh or Pacemaker's
// external/libvirt: off is "virsh destroy", on is "virsh start", reboot is
// "virsh reset", status is the domain's state. The management hypervisor
// is reached through a libvirt URI (qemu+ssh://, qemu+tcp://, test:///...)
// and a host → domain name map says which domain plays which host.
//
// This package links libvirt's C library through cgo; only vmhad (through
// fencing/devices) imports it. The allow-list of URIs that a fence
// configuration may name is fencing/libvirturi, which the CLI shares.
package libvirt

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	lv "libvirt.org/go/libvirt"

	"github.com/vmha/vmha/fencing"
)

// DefaultTimeout bounds each call (connect included) when Config.Timeout
// is zero.
const DefaultTimeout = 10 * time.Second

// Config describes one management hypervisor and the hosts it runs.
type Config struct {
	// URI is the management hypervisor's libvirt URI, e.g.
	// "qemu+ssh://root@mgmt/system", "qemu+tcp://10.0.0.1/system",
	// "test:///default". Credentials come from the transport (ssh keys,
	// SASL config), never from the URI.
	URI string
	// Domains maps a cluster host name to the name of the domain that is
	// that host. A host missing from the map is its own domain name.
	Domains map[string]string
	// Timeout bounds each call, connect included (default DefaultTimeout).
	Timeout time.Duration
}

// Conn is one management hypervisor. It connects on first use and keeps
// the connection; a connection that failed or timed out is replaced on the
// next call. Safe for concurrent use.
type Conn struct {
	uri     string
	display string // uri without any password, for names and errors
	domains map[string]string
	timeout time.Duration

	mu   sync.Mutex
	conn *lv.Connect // nil until the first call, or after a failure
	// gone remembers transient domains this Conn destroyed: a transient
	// domain disappears when destroyed, and its absence then means off.
	gone map[string]bool
}

// New validates cfg. It does not connect: reachability is a run-time
// state (checked by Status), not a configuration error.
func New(cfg Config) (*Conn, error) {
	uri := strings.TrimSpace(cfg.URI)
	if uri == "" {
		return nil, errors.New("libvirt fence: uri is empty")
	}
	u, err := url.Parse(uri)
	if err != nil || u.Scheme == "" {
		return nil, fmt.Errorf("libvirt fence: uri %q is not a libvirt URI such as qemu+ssh://host/system", redactURI(uri))
	}
	if _, ok := u.User.Password(); ok {
		return nil, fmt.Errorf("libvirt fence: uri %q holds a password: use ssh keys or SASL credentials instead", redactURI(uri))
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("libvirt fence: timeout %s is negative", cfg.Timeout)
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	domains := make(map[string]string, len(cfg.Domains))
	hosts := make([]string, 0, len(cfg.Domains))
	for h := range cfg.Domains {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts) // report the first bad entry deterministically
	for _, h := range hosts {
		d := cfg.Domains[h]
		if strings.TrimSpace(h) == "" {
			return nil, fmt.Errorf("libvirt fence %s: domain map has an empty host name (for domain %q)", uri, d)
		}
		if strings.TrimSpace(d) == "" {
			return nil, fmt.Errorf("libvirt fence %s: host %s maps to an empty domain name", uri, h)
		}
		domains[h] = d
	}
	return &Conn{uri: uri, display: redactURI(uri), domains: domains, timeout: timeout, gone: map[string]bool{}}, nil
}

// Device returns the fence device of host: the domain the map names, or
// the domain called host when the map has no entry.
func (c *Conn) Device(host string) (*Device, error) {
	if strings.TrimSpace(host) == "" {
		return nil, fmt.Errorf("libvirt fence %s: host name is empty", c.display)
	}
	dom := host
	if d, ok := c.domains[host]; ok {
		dom = d
	}
	return &Device{c: c, host: host, domain: dom,
		name: fmt.Sprintf("libvirt %s domain %s", c.display, dom)}, nil
}

// Close closes the connection, if one is open.
func (c *Conn) Close() error {
	c.mu.Lock()
	conn := c.conn
	c.conn = nil
	c.mu.Unlock()
	if conn != nil {
		if _, err := conn.Close(); err != nil {
			return fmt.Errorf("libvirt fence: close %s: %w", c.display, err)
		}
	}
	return nil
}

// get returns the open connection or opens one. The lock is not held while
// connecting: a connect to a silent peer can block for a long time, and
// Close, drop and other devices of this Conn must not wait for it.
func (c *Conn) get() (*lv.Connect, error) {
	c.mu.Lock()
	conn := c.conn
	c.mu.Unlock()
	if conn != nil {
		return conn, nil
	}
	conn, err := lv.NewConnect(c.uri)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %s", c.display, message(err))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil {
		// Another call connected meanwhile: use one connection, so that a
		// test:///FILE hypervisor keeps one private state.
		go func() { _, _ = conn.Close() }()
		return c.conn, nil
	}
	c.conn = conn
	return conn, nil
}

// drop forgets conn after a failure so the next call reconnects. The old
// connection is closed in the background: a call stuck on a dead peer may
// still hold it.
func (c *Conn) drop(conn *lv.Connect) {
	c.mu.Lock()
	if c.conn == conn {
		c.conn = nil
	}
	c.mu.Unlock()
	go func() { _, _ = conn.Close() }()
}

// Device fences one host through its domain. It implements fencing.Device
// and fencing.Rebooter.
type Device struct {
	c      *Conn
	host   string
	domain string
	name   string
}

var (
	_ fencing.Device   = (*Device)(nil)
	_ fencing.Rebooter = (*Device)(nil)
)

// Name is "libvirt URI domain NAME".
func (d *Device) Name() string { return d.name }

// Domain is the name of the domain that is the host.
func (d *Device) Domain() string { return d.domain }

// String implements fmt.Stringer: the Name.
func (d *Device) String() string { return d.name }

// ErrNoDomain is wrapped by errors about a domain the hypervisor does not
// know: a wrong host → domain map must never read as "host is off".
var ErrNoDomain = errors.New("no such domain")

// Status reads the domain's state. Only "shut off" is off: a paused,
// suspended or crashed domain still has its memory and can run again.
func (d *Device) Status(ctx context.Context) (fencing.PowerState, error) {
	st := fencing.PowerUnknown
	err := d.call(ctx, "status", func(dom *lv.Domain) error {
		s, _, err := dom.GetState()
		if err != nil {
			return err
		}
		if s == lv.DOMAIN_SHUTOFF {
			st = fencing.PowerOff
		} else {
			st = fencing.PowerOn
		}
		return nil
	})
	if errors.Is(err, errGone) {
		return fencing.PowerOff, nil
	}
	if err != nil {
		return fencing.PowerUnknown, err
	}
	return st, nil
}

// PowerOff destroys the domain: an immediate hard stop, no guest shutdown.
// A domain that is already shut off is success.
func (d *Device) PowerOff(ctx context.Context) error {
	err := d.call(ctx, "power off", func(dom *lv.Domain) error {
		persistent, perr := dom.IsPersistent()
		if err := dom.Destroy(); err != nil {
			if isCode(err, lv.ERR_OPERATION_INVALID) {
				if s, _, serr := dom.GetState(); serr == nil && s == lv.DOMAIN_SHUTOFF {
					return nil // already off
				}
			}
			return err
		}
		if perr == nil && !persistent {
			d.c.mu.Lock()
			d.c.gone[d.domain] = true
			d.c.mu.Unlock()
		}
		return nil
	})
	if errors.Is(err, errGone) {
		return nil
	}
	return err
}

// PowerOn starts the domain. A running domain is success.
func (d *Device) PowerOn(ctx context.Context) error {
	err := d.call(ctx, "power on", func(dom *lv.Domain) error {
		if err := dom.Create(); err != nil {
			if active, aerr := dom.IsActive(); aerr == nil && active {
				return nil
			}
			return err
		}
		return nil
	})
	if errors.Is(err, errGone) {
		return fmt.Errorf("libvirt power on of domain %s on %s: the transient domain was destroyed and cannot be started again: %w",
			d.domain, d.c.display, ErrNoDomain)
	}
	return err
}

// Reboot resets the domain (a hard reset, like pressing the reset button).
func (d *Device) Reboot(ctx context.Context) error {
	return d.call(ctx, "reset", func(dom *lv.Domain) error { return dom.Reset(0) })
}

// errGone: the domain is absent and this Conn destroyed it as transient.
var errGone = errors.New("transient domain destroyed")

// call looks the domain up and runs fn within the call timeout. libvirt's
// C calls cannot be cancelled, so a call that outlives the timeout is
// abandoned (it finishes in the background) and its connection replaced.
func (d *Device) call(ctx context.Context, op string, fn func(*lv.Domain) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("libvirt %s of domain %s on %s: %w", op, d.domain, d.c.display, err)
	}
	ctx, cancel := context.WithTimeout(ctx, d.c.timeout)
	defer cancel()
	type result struct {
		conn *lv.Connect
		err  error
	}
	done := make(chan result, 1)
	go func() {
		conn, err := d.c.get()
		if err != nil {
			done <- result{nil, err}
			return
		}
		dom, err := conn.LookupDomainByName(d.domain)
		if err != nil {
			done <- result{conn, err}
			return
		}
		defer dom.Free()
		// The domain exists (again): it is no longer "gone".
		d.c.mu.Lock()
		delete(d.c.gone, d.domain)
		d.c.mu.Unlock()
		done <- result{conn, fn(dom)}
	}()
	select {
	case r := <-done:
		if r.err == nil {
			return nil
		}
		if isCode(r.err, lv.ERR_NO_DOMAIN) {
			d.c.mu.Lock()
			gone := d.c.gone[d.domain]
			d.c.mu.Unlock()
			if gone {
				return errGone
			}
			return fmt.Errorf("libvirt %s of domain %s (host %s) on %s: %w: %s", op, d.domain, d.host, d.c.display, ErrNoDomain, message(r.err))
		}
		if r.conn != nil {
			if alive, aerr := r.conn.IsAlive(); aerr != nil || !alive {
				d.c.drop(r.conn)
			}
		}
		return fmt.Errorf("libvirt %s of domain %s on %s: %s", op, d.domain, d.c.display, message(r.err))
	case <-ctx.Done():
		// Whatever connection the abandoned call uses is suspect.
		go func() {
			if r := <-done; r.conn != nil {
				d.c.drop(r.conn)
			}
		}()
		return fmt.Errorf("libvirt %s of domain %s on %s: no answer within %s: %w", op, d.domain, d.c.display, d.c.timeout, ctx.Err())
	}
}

func isCode(err error, code lv.ErrorNumber) bool {
	var le lv.Error
	return errors.As(err, &le) && le.Code == code
}

// message is libvirt's own message without the Go binding's
// "virError(Code=..., Domain=...)" framing.
func message(err error) string {
	var le lv.Error
	if errors.As(err, &le) && le.Message != "" {
		return le.Message
	}
	return err.Error()
}

// redactURI hides a password in the URI's user info, if any.
func redactURI(uri string) string {
	u, err := url.Parse(uri)
	if err != nil || u.User == nil {
		return uri
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "redacted")
		return u.String()
	}
	return uri
}

// ParseHostMap parses a host → domain map written like Pacemaker's
// pcmk_host_map or external/libvirt's hostlist; see fencing.ParseHostMap.
func ParseHostMap(s string) (map[string]string, error) { return fencing.ParseHostMap(s) }
