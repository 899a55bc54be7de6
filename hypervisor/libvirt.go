package hypervisor

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"libvirt.org/go/libvirt"

	"github.com/vmha/vmha/model"
)

// ErrClosed is returned by a Libvirt method called after (or interrupted by)
// Close.
var ErrClosed = errors.New("hypervisor connection closed")

// eventBuffer is the size of the Events channel. Lifecycle events come in
// short bursts (a host start brings up every domain at once), and the agent
// reconciles on a timer anyway, so a few hundred is plenty without letting a
// stuck reader pin much memory.
const eventBuffer = 256

// stopPollInterval is how often Stop checks whether the guest has powered
// off. libvirt's shutdown only asks the guest (ACPI, Xen PV control), so the
// only portable way to learn it finished is to look again.
const stopPollInterval = 100 * time.Millisecond

// The libvirt event loop is process-wide: virEventRegisterDefaultImpl must run
// once before the first connection that wants events, and exactly one
// goroutine must keep calling virEventRunDefaultImpl, or no callback of any
// connection ever fires (the test driver even queues its events on a timer of
// that loop).
var (
	eventLoopOnce sync.Once
	eventLoopErr  error
)

func startEventLoop(log zerolog.Logger) error {
	eventLoopOnce.Do(func() {
		if err := libvirt.EventRegisterDefaultImpl(); err != nil {
			eventLoopErr = fmt.Errorf("register libvirt event loop: %w", wrapLibvirtErr(err))
			return
		}
		go func() {
			for {
				if err := libvirt.EventRunDefaultImpl(); err != nil {
					log.Error().Err(wrapLibvirtErr(err)).Msg("libvirt event loop iteration failed")
					// Back off so a persistent failure cannot spin a core.
					time.Sleep(time.Second)
				}
			}
		}()
	})
	return eventLoopErr
}

// Libvirt is the Hypervisor backed by one libvirt connection (qemu:///system,
// xen:///system, or test:/// in tests). It is safe for concurrent use: libvirt
// connections are thread-safe, and Close waits for in-flight calls before it
// frees the connection.
type Libvirt struct {
	uri  string
	log  zerolog.Logger
	conn *libvirt.Connect
	// parse reads a domain XML the way vmha stores it (a field so that
	// tests can make vmha and libvirt disagree).
	parse func([]byte) (model.DomainInfo, error)

	// opMu is held shared by every call that uses conn and exclusively by
	// Close, so the connection is never closed under a running call.
	opMu   sync.RWMutex
	closed bool // guarded by opMu

	// done is closed when Close starts, to cut short Stop's wait, which
	// would otherwise hold opMu for up to its whole timeout.
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error

	callbackID int
	watchdogID int // -1: no watchdog events

	// evMu orders the callback's send against Close's close(events): a send
	// on a closed channel panics, and the event loop goroutine can be inside
	// the callback while Close runs.
	evMu     sync.Mutex
	evClosed bool // guarded by evMu
	dropping bool // guarded by evMu; true while the reader is behind
	events   chan Event
	dropped  atomic.Uint64
}

var _ Hypervisor = (*Libvirt)(nil)

// OpenLibvirt connects to the libvirt URI (e.g. "qemu:///system",
// "xen:///system", "test:///default") and subscribes to its domain lifecycle
// events. The first call in a process also starts libvirt's event loop.
func OpenLibvirt(uri string, log zerolog.Logger) (*Libvirt, error) {
	log = log.With().Str("component", "hypervisor").Str("uri", uri).Logger()
	if err := startEventLoop(log); err != nil {
		return nil, err
	}
	conn, err := libvirt.NewConnect(uri)
	if err != nil {
		return nil, fmt.Errorf("connect to libvirt %s: %w", uri, wrapLibvirtErr(err))
	}
	l := &Libvirt{
		uri:    uri,
		log:    log,
		conn:   conn,
		parse:  model.ParseDomainXML,
		done:   make(chan struct{}),
		events: make(chan Event, eventBuffer),
	}
	id, err := conn.DomainEventLifecycleRegister(nil, l.onLifecycle)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("subscribe to domain events on %s: %w", uri, wrapLibvirtErr(err))
	}
	l.callbackID = id
	l.watchdogID = -1
	if id, err := conn.DomainEventWatchdogRegister(nil, l.onWatchdog); err == nil {
		l.watchdogID = id
	} else {
		log.Warn().Err(wrapLibvirtErr(err)).Msg("no watchdog events from this hypervisor")
	}
	log.Debug().Msg("connected to libvirt")
	return l, nil
}

// URI returns the libvirt URI this connection was opened with.
func (l *Libvirt) URI() string { return l.uri }

// acquire marks the start of a call that uses the connection; the caller must
// call l.release when done.
func (l *Libvirt) acquire(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l.opMu.RLock()
	if l.closed {
		l.opMu.RUnlock()
		return ErrClosed
	}
	return nil
}

func (l *Libvirt) release() { l.opMu.RUnlock() }

// Define defines (or redefines) a persistent domain and returns its name.
//
// The XML must pass model.ParseDomainXML, so that vmha and libvirt read it
// alike; after libvirt has defined it, Define checks that the domain has
// the name vmha read (and the UUID, when the XML gives one or keepUUID
// supplied it). On a mismatch it undefines the domain again, unless libvirt
// had it defined before (then its old definition is gone already, and
// undefining would lose the domain), and returns an error with both values.
func (l *Libvirt) Define(ctx context.Context, domainXML string) (string, error) {
	if err := l.acquire(ctx); err != nil {
		return "", err
	}
	defer l.release()
	info, err := l.parse([]byte(domainXML))
	if err != nil {
		// Name the domain when the XML is well-formed enough to have one.
		if name := nameFromXML(domainXML); name != "" {
			return "", fmt.Errorf("define domain %q on %s: %w", name, l.uri, err)
		}
		return "", fmt.Errorf("define domain on %s: %w", l.uri, err)
	}
	defined, err := l.persistentUUIDs()
	if err != nil {
		return "", fmt.Errorf("define domain %q on %s: %w", info.Name, l.uri, err)
	}
	domainXML, wantUUID := l.keepUUID(domainXML, info)
	dom, err := l.conn.DomainDefineXML(domainXML)
	if err != nil {
		return "", fmt.Errorf("define domain %q on %s: %w", info.Name, l.uri, wrapLibvirtErr(err))
	}
	defer dom.Free()
	if err := l.checkDefined(dom, info.Name, wantUUID, defined); err != nil {
		return "", err
	}
	l.log.Info().Str("domain", info.Name).Msg("domain defined")
	return info.Name, nil
}

// checkDefined compares the domain libvirt just defined with the name and
// UUID (if any) vmha read from the XML; defined holds the UUIDs of the
// domains that were defined before. On a mismatch a domain that was not
// defined before is undefined again (a running one becomes transient again,
// as it was).
func (l *Libvirt) checkDefined(dom *libvirt.Domain, wantName, wantUUID string, defined map[string]bool) error {
	name, err := dom.GetName()
	if err != nil {
		return fmt.Errorf("name of defined domain %q on %s: %w", wantName, l.uri, wrapLibvirtErr(err))
	}
	uuid, err := dom.GetUUIDString()
	if err != nil {
		return fmt.Errorf("UUID of defined domain %q on %s: %w", wantName, l.uri, wrapLibvirtErr(err))
	}
	var diffs []string
	if name != wantName {
		diffs = append(diffs, fmt.Sprintf("libvirt defined the name %q where vmha read %q", name, wantName))
	}
	if wantUUID != "" && !strings.EqualFold(uuid, wantUUID) {
		diffs = append(diffs, fmt.Sprintf("libvirt defined the UUID %s where vmha read %s", uuid, wantUUID))
	}
	if len(diffs) == 0 {
		return nil
	}
	mismatch := fmt.Errorf("define domain %q on %s: %s", wantName, l.uri, strings.Join(diffs, ", and "))
	l.log.Error().Str("domain", wantName).Str("libvirt_name", name).Str("libvirt_uuid", uuid).Str("uuid", wantUUID).
		Msg("libvirt read the domain XML differently from vmha")
	if defined[uuid] {
		return fmt.Errorf("%w; domain %q (%s) was defined before, so it is left as libvirt now has it", mismatch, name, uuid)
	}
	if err := dom.Undefine(); err != nil && !isCode(err, libvirt.ERR_NO_DOMAIN) {
		return fmt.Errorf("%w; undefining %q (%s) again failed: %w", mismatch, name, uuid, wrapLibvirtErr(err))
	}
	return fmt.Errorf("%w; undefined %q (%s) again", mismatch, name, uuid)
}

// persistentUUIDs returns the UUIDs of the domains defined here, to tell
// after a define whether libvirt created a domain or replaced one.
func (l *Libvirt) persistentUUIDs() (map[string]bool, error) {
	doms, err := l.conn.ListAllDomains(libvirt.CONNECT_LIST_DOMAINS_PERSISTENT)
	if err != nil {
		return nil, fmt.Errorf("list domains: %w", wrapLibvirtErr(err))
	}
	defer func() {
		for i := range doms {
			doms[i].Free()
		}
	}()
	out := make(map[string]bool, len(doms))
	for i := range doms {
		uuid, err := doms[i].GetUUIDString()
		if err != nil {
			if isCode(err, libvirt.ERR_NO_DOMAIN) {
				continue // undefined meanwhile
			}
			return nil, fmt.Errorf("list domains: %w", wrapLibvirtErr(err))
		}
		out[uuid] = true
	}
	return out, nil
}

// keepUUID gives an XML without a <uuid> the UUID of the domain of that
// name already defined here: libvirt would otherwise draw a new UUID and
// refuse the redefinition ("already exists with uuid"), so a VM that was
// stopped here (and stays defined) could never be started again. It
// returns the XML to define and the UUID the domain must get ("" when
// libvirt picks one).
func (l *Libvirt) keepUUID(domainXML string, info model.DomainInfo) (string, string) {
	if info.UUID != "" {
		return domainXML, info.UUID
	}
	dom, err := l.conn.LookupDomainByName(info.Name)
	if err != nil {
		return domainXML, ""
	}
	defer dom.Free()
	uuid, err := dom.GetUUIDString()
	if err != nil {
		return domainXML, ""
	}
	i := afterRootTag(domainXML)
	if i < 0 {
		return domainXML, ""
	}
	return domainXML[:i] + "<uuid>" + uuid + "</uuid>" + domainXML[i:], uuid
}

// afterRootTag returns the offset just past the start tag of the root
// element, where a child can be inserted, or -1.
func afterRootTag(s string) int {
	dec := xml.NewDecoder(strings.NewReader(s))
	for {
		tok, err := dec.Token()
		if err != nil {
			return -1
		}
		if _, ok := tok.(xml.StartElement); ok {
			off := int(dec.InputOffset())
			if off > len(s) || strings.HasSuffix(s[:off], "/>") {
				return -1
			}
			return off
		}
	}
}

// Start starts a defined domain. A domain that is already running (or
// paused) is left alone; a domain that is not defined gives ErrNotFound.
func (l *Libvirt) Start(ctx context.Context, name string) error {
	if err := l.acquire(ctx); err != nil {
		return err
	}
	defer l.release()
	dom, err := l.conn.LookupDomainByName(name)
	if err != nil {
		if isCode(err, libvirt.ERR_NO_DOMAIN) {
			return fmt.Errorf("start domain %q on %s: %w: %w", name, l.uri, ErrNotFound, wrapLibvirtErr(err))
		}
		return fmt.Errorf("look up domain %q on %s: %w", name, l.uri, wrapLibvirtErr(err))
	}
	defer dom.Free()
	if active, err := dom.IsActive(); err != nil {
		return fmt.Errorf("state of domain %q on %s: %w", name, l.uri, wrapLibvirtErr(err))
	} else if active {
		return nil
	}
	if err := dom.Create(); err != nil {
		// Another caller may have started it between IsActive and Create;
		// libvirt then says "already active", which is the outcome we want.
		if active, aerr := dom.IsActive(); aerr == nil && active {
			return nil
		}
		if isCode(err, libvirt.ERR_NO_DOMAIN) {
			return fmt.Errorf("start domain %q on %s: %w: %w", name, l.uri, ErrNotFound, wrapLibvirtErr(err))
		}
		return fmt.Errorf("start domain %q on %s: %w", name, l.uri, wrapLibvirtErr(err))
	}
	l.log.Info().Str("domain", name).Msg("domain started")
	return nil
}

// Stop asks the guest to shut down, waits until it is off or timeout passes
// (or ctx is done, which the caller means as a tighter bound, not as "leave
// it running"), then destroys it. A domain that is off or not defined is not
// an error. If Close interrupts the wait, Stop returns ErrClosed without
// destroying the domain.
func (l *Libvirt) Stop(ctx context.Context, name string, timeout time.Duration) error {
	if err := l.acquire(ctx); err != nil {
		return err
	}
	defer l.release()
	dom, err := l.conn.LookupDomainByName(name)
	if err != nil {
		if isCode(err, libvirt.ERR_NO_DOMAIN) {
			return nil
		}
		return fmt.Errorf("look up domain %q on %s: %w", name, l.uri, wrapLibvirtErr(err))
	}
	defer dom.Free()

	// libvirt's IsActive, not State.Active: a crashed domain kept for a core
	// dump still has its process (and disks) and must be destroyed too.
	off, err := l.isOff(dom)
	if err != nil {
		return fmt.Errorf("state of domain %q on %s: %w", name, l.uri, err)
	}
	if off {
		return nil
	}

	graceful := true
	if err := dom.Shutdown(); err != nil {
		if off, oerr := l.isOff(dom); oerr == nil && off {
			return nil // it stopped by itself in the meantime
		}
		// A paused or crashed guest cannot be asked (qemu: "domain is not
		// running"); go straight to destroy instead of waiting in vain.
		l.log.Warn().Str("domain", name).Err(wrapLibvirtErr(err)).Msg("graceful shutdown refused, destroying")
		graceful = false
	}

	if graceful {
		stopped, err := l.waitOff(ctx, dom, timeout)
		if err != nil {
			return fmt.Errorf("stop domain %q on %s: %w", name, l.uri, err)
		}
		if stopped {
			l.log.Info().Str("domain", name).Msg("domain shut down")
			return nil
		}
		l.log.Warn().Str("domain", name).Dur("timeout", timeout).Msg("guest did not shut down in time, destroying")
	}

	if err := dom.Destroy(); err != nil {
		// "domain is not running": the guest finished its shutdown between
		// our last look and the destroy.
		if off, oerr := l.isOff(dom); oerr == nil && off {
			return nil
		}
		return fmt.Errorf("destroy domain %q on %s: %w", name, l.uri, wrapLibvirtErr(err))
	}
	l.log.Info().Str("domain", name).Msg("domain destroyed")
	return nil
}

// isOff reports whether dom has no running instance; a domain that vanished
// (transient, or undefined concurrently) is off.
func (l *Libvirt) isOff(dom *libvirt.Domain) (bool, error) {
	active, err := dom.IsActive()
	if err != nil {
		if isCode(err, libvirt.ERR_NO_DOMAIN) {
			return true, nil
		}
		return false, wrapLibvirtErr(err)
	}
	return !active, nil
}

// waitOff polls dom until it is off (true), timeout or ctx ends (false), or
// Close starts (ErrClosed).
func (l *Libvirt) waitOff(ctx context.Context, dom *libvirt.Domain, timeout time.Duration) (bool, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(stopPollInterval)
	defer tick.Stop()
	for {
		// Look before the first tick: some drivers (test://) power off
		// synchronously, and a quick guest should not cost a whole interval.
		off, err := l.isOff(dom)
		if err != nil {
			return false, err
		}
		if off {
			return true, nil
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			return false, nil
		case <-ctx.Done():
			return false, nil
		case <-l.done:
			return false, ErrClosed
		}
	}
}

// Undefine removes a domain's persistent definition; a running domain becomes
// transient (libvirt's rule), so stop it first. A missing domain is not an
// error. Managed-save images and snapshots make libvirt refuse, which is
// deliberate: deleting them is an operator's decision.
func (l *Libvirt) Undefine(ctx context.Context, name string) error {
	if err := l.acquire(ctx); err != nil {
		return err
	}
	defer l.release()
	dom, err := l.conn.LookupDomainByName(name)
	if err != nil {
		if isCode(err, libvirt.ERR_NO_DOMAIN) {
			return nil
		}
		return fmt.Errorf("look up domain %q on %s: %w", name, l.uri, wrapLibvirtErr(err))
	}
	defer dom.Free()
	if err := dom.Undefine(); err != nil {
		if isCode(err, libvirt.ERR_NO_DOMAIN) {
			return nil // undefined concurrently
		}
		return fmt.Errorf("undefine domain %q on %s: %w", name, l.uri, wrapLibvirtErr(err))
	}
	l.log.Info().Str("domain", name).Msg("domain undefined")
	return nil
}

// List returns every defined or running domain, sorted by name. MemoryMiB is
// the domain's maximum memory (<memory>), which is what it may claim from the
// host and what placement reserves; VCPUs is the current vCPU count.
func (l *Libvirt) List(ctx context.Context) ([]Domain, error) {
	if err := l.acquire(ctx); err != nil {
		return nil, err
	}
	defer l.release()
	doms, err := l.conn.ListAllDomains(0)
	if err != nil {
		return nil, fmt.Errorf("list domains on %s: %w", l.uri, wrapLibvirtErr(err))
	}
	defer func() {
		for i := range doms {
			doms[i].Free()
		}
	}()
	out := make([]Domain, 0, len(doms))
	for i := range doms {
		d, err := describe(&doms[i])
		if err != nil {
			// Undefined between the listing and the look: it is no longer
			// part of the answer.
			if isCode(err, libvirt.ERR_NO_DOMAIN) {
				continue
			}
			return nil, fmt.Errorf("list domains on %s: %w", l.uri, err)
		}
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func describe(dom *libvirt.Domain) (Domain, error) {
	name, err := dom.GetName()
	if err != nil {
		return Domain{}, wrapLibvirtErr(err)
	}
	uuid, err := dom.GetUUIDString()
	if err != nil {
		return Domain{}, fmt.Errorf("domain %q: %w", name, wrapLibvirtErr(err))
	}
	info, err := dom.GetInfo()
	if err != nil {
		return Domain{}, fmt.Errorf("domain %q: %w", name, wrapLibvirtErr(err))
	}
	crashed := info.State == libvirt.DOMAIN_CRASHED
	if info.State == libvirt.DOMAIN_SHUTOFF {
		if _, reason, err := dom.GetState(); err == nil && libvirt.DomainShutoffReason(reason) == libvirt.DOMAIN_SHUTOFF_CRASHED {
			crashed = true
		}
	}
	return Domain{
		Crashed:   crashed,
		Name:      name,
		UUID:      uuid,
		State:     stateFromLibvirt(info.State),
		MemoryMiB: info.MaxMem / 1024, // libvirt reports KiB
		VCPUs:     info.NrVirtCpu,
	}, nil
}

// NodeInfo returns the host's memory and logical CPU count.
func (l *Libvirt) NodeInfo(ctx context.Context) (NodeInfo, error) {
	if err := l.acquire(ctx); err != nil {
		return NodeInfo{}, err
	}
	defer l.release()
	info, err := l.conn.GetNodeInfo()
	if err != nil {
		return NodeInfo{}, fmt.Errorf("node info of %s: %w", l.uri, wrapLibvirtErr(err))
	}
	return NodeInfo{MemoryMiB: info.Memory / 1024, CPUs: info.Cpus}, nil
}

// Events returns the lifecycle event channel. It is closed by Close; events
// that find it full are dropped and counted (DroppedEvents).
func (l *Libvirt) Events() <-chan Event { return l.events }

// DroppedEvents returns how many events were dropped because the Events
// channel was full.
func (l *Libvirt) DroppedEvents() uint64 { return l.dropped.Load() }

// onLifecycle runs on the event loop goroutine. It must never block: the
// same loop serves every connection in the process.
func (l *Libvirt) onLifecycle(_ *libvirt.Connect, d *libvirt.Domain, ev *libvirt.DomainEventLifecycle) {
	// d is borrowed from libvirt for the callback's duration: no Free.
	name, err := d.GetName()
	if err != nil {
		l.log.Warn().Err(wrapLibvirtErr(err)).Msg("lifecycle event for a domain without a name")
		return
	}
	state, detail := eventState(ev.Event)
	if ev.Event == libvirt.DOMAIN_EVENT_STOPPED && libvirt.DomainEventStoppedDetailType(ev.Detail) == libvirt.DOMAIN_EVENT_STOPPED_CRASHED {
		detail = "crashed" // <on_crash>destroy</on_crash>: the guest crashed
	}
	if ev.Event == libvirt.DOMAIN_EVENT_DEFINED || ev.Event == libvirt.DOMAIN_EVENT_UNDEFINED {
		// (Re)definition says nothing about whether the domain runs: a
		// running domain can be redefined or made transient. Ask.
		state = currentState(d)
	}
	l.send(Event{Domain: name, State: state, Detail: detail, Time: time.Now()}, ev.Detail)
}

// send queues e without blocking (the event loop must not wait).
func (l *Libvirt) send(e Event, reason int) {
	name, detail := e.Domain, e.Detail
	l.evMu.Lock()
	defer l.evMu.Unlock()
	if l.evClosed {
		return // a callback that was already running when Close deregistered it
	}
	l.log.Debug().Str("domain", name).Str("event", detail).Int("reason", reason).Msg("lifecycle event")
	select {
	case l.events <- e:
		if l.dropping {
			l.dropping = false
			l.log.Info().Uint64("dropped_total", l.dropped.Load()).Msg("event reader caught up")
		}
	default:
		l.dropped.Add(1)
		// Log once per overflow, not per event, or a stuck reader would
		// also flood the log.
		if !l.dropping {
			l.dropping = true
			l.log.Warn().Str("domain", name).Str("event", detail).Msg("event channel full, dropping events until the reader catches up")
		}
	}
}

// currentState asks libvirt for d's state; a domain that no longer exists
// (undefined while off) is shut off.
func currentState(d *libvirt.Domain) State {
	st, _, err := d.GetState()
	if err != nil {
		if isCode(err, libvirt.ERR_NO_DOMAIN) {
			return StateShutoff
		}
		return StateUnknown
	}
	return stateFromLibvirt(st)
}

// Close deregisters the event callback, closes the connection and then the
// Events channel. It waits for in-flight calls (cutting a Stop's wait short)
// and is safe to call more than once; later calls return the first result.
func (l *Libvirt) Close() error {
	l.closeOnce.Do(func() {
		close(l.done)
		l.opMu.Lock()
		l.closed = true
		var errs []error
		if err := l.conn.DomainEventDeregister(l.callbackID); err != nil {
			errs = append(errs, fmt.Errorf("deregister domain events on %s: %w", l.uri, wrapLibvirtErr(err)))
		}
		if l.watchdogID >= 0 {
			_ = l.conn.DomainEventDeregister(l.watchdogID)
		}
		if refs, err := l.conn.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close libvirt %s: %w", l.uri, wrapLibvirtErr(err)))
		} else if refs > 0 {
			// Not an error: an event being dispatched holds a reference
			// until its callback returns.
			l.log.Debug().Int("refs", refs).Msg("libvirt connection still referenced after close")
		}
		l.opMu.Unlock()

		l.evMu.Lock()
		l.evClosed = true
		close(l.events)
		l.evMu.Unlock()
		l.closeErr = errors.Join(errs...)
		l.log.Debug().Msg("libvirt connection closed")
	})
	return l.closeErr
}

// stateFromLibvirt maps libvirt's virDomainState to State. Blocked (waiting
// on a resource) is running, and pmsuspended counts as paused because the
// domain still holds its disks.
func stateFromLibvirt(s libvirt.DomainState) State {
	switch s {
	case libvirt.DOMAIN_RUNNING, libvirt.DOMAIN_BLOCKED:
		return StateRunning
	case libvirt.DOMAIN_PAUSED, libvirt.DOMAIN_PMSUSPENDED:
		return StatePaused
	case libvirt.DOMAIN_SHUTDOWN:
		return StateShutdown
	case libvirt.DOMAIN_SHUTOFF:
		return StateShutoff
	case libvirt.DOMAIN_CRASHED:
		return StateCrashed
	default:
		return StateUnknown
	}
}

// eventState maps a lifecycle event type to the state it leaves the domain in
// and the event's name for Event.Detail. Defined and undefined map to
// StateUnknown because the event alone does not say whether the domain runs.
func eventState(t libvirt.DomainEventType) (State, string) {
	switch t {
	case libvirt.DOMAIN_EVENT_DEFINED:
		return StateUnknown, "defined"
	case libvirt.DOMAIN_EVENT_UNDEFINED:
		return StateUnknown, "undefined"
	case libvirt.DOMAIN_EVENT_STARTED:
		return StateRunning, "started"
	case libvirt.DOMAIN_EVENT_SUSPENDED:
		return StatePaused, "suspended"
	case libvirt.DOMAIN_EVENT_RESUMED:
		return StateRunning, "resumed"
	case libvirt.DOMAIN_EVENT_STOPPED:
		return StateShutoff, "stopped"
	case libvirt.DOMAIN_EVENT_SHUTDOWN:
		// The guest finished (or began) its shutdown; "stopped" follows
		// when the domain is really off.
		return StateShutdown, "shutdown"
	case libvirt.DOMAIN_EVENT_PMSUSPENDED:
		return StatePaused, "pmsuspended"
	case libvirt.DOMAIN_EVENT_CRASHED:
		return StateCrashed, "crashed"
	default:
		return StateUnknown, fmt.Sprintf("event-%d", int(t))
	}
}

// libvirtError presents a libvirt error by its message alone (the binding's
// Error() adds numeric codes that mean nothing in a log line) while keeping
// the original reachable for errors.As and errors.Is(err, libvirt.ERR_...).
type libvirtError struct{ err libvirt.Error }

func (e libvirtError) Error() string { return strings.TrimSpace(e.err.Message) }
func (e libvirtError) Unwrap() error { return e.err }

func wrapLibvirtErr(err error) error {
	var le libvirt.Error
	if errors.As(err, &le) && le.Message != "" {
		return libvirtError{le}
	}
	return err
}

func isCode(err error, code libvirt.ErrorNumber) bool {
	var le libvirt.Error
	return errors.As(err, &le) && le.Code == code
}

// nameFromXML extracts <domain><name> for error messages, reading tokens
// only as far as the name so that XML broken after it still yields one; ""
// when there is none to find.
func nameFromXML(s string) string {
	dec := xml.NewDecoder(strings.NewReader(s))
	depth := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 2 && t.Name.Local == "name" {
				var name string
				if err := dec.DecodeElement(&name, &t); err != nil {
					return ""
				}
				return strings.TrimSpace(name)
			}
		case xml.EndElement:
			depth--
		}
	}
}
