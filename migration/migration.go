// Package migration moves running VMs between hosts live through libvirt and
// runs many such moves with limits (the basis of `vmha migrate`, `vmha
// evacuate` and rebalancing).
//
// One migration (Migrator.Migrate) is libvirt's peer-to-peer live migration:
// the caller — the agent on the source host — asks the source libvirtd to
// migrate the domain; the source libvirtd connects to the target libvirtd
// itself (Target.PeerURI), and QEMU streams memory over the migration
// network (Options.MigrationURI or Target.MigrationURI). The caller keeps a
// connection to the target only to verify the result. Progress comes from
// the source's job statistics; a timeout or a cancelled context aborts the
// job, which leaves the VM running on the source; afterwards the package
// checks where the VM really runs instead of trusting the return code.
//
// # Xen (libvirt's libxl driver, xen:///system)
//
// The same calls work, with less: libxl accepts only the flags LIVE,
// PEER2PEER, TUNNELLED, PERSIST_DEST, UNDEFINE_SOURCE and PAUSED and only the
// parameters URI, DEST_NAME and DEST_XML. So on a Xen source Migrate refuses
// (ErrUnsupported, before anything moves) the options bandwidth, maximum
// downtime, auto-converge, post-copy, compression, TLS and parallel
// connections, instead of letting libvirt fail half-way or silently ignoring
// them. libxl implements no AbortJob: a timeout or cancel cannot stop a
// running Xen migration; Migrate still asks, and when libvirt refuses it
// waits for the job to finish and the result's Reason carries the refusal.
// libxl's job statistics carry only the elapsed time (no data counters,
// dirty rate or downtime), so progress shows phase and time only; a
// statistics error gives a time-only sample, never a failed job. (These libxl
// facts come from libvirt's libxl driver source, not from a run here.)
// libxl's own port range (migration_port_min/max in libxl.conf) plays the
// part of qemu.conf's. The unsafe-cache check does not apply to Xen disks
// (libxl decides caching itself); Force is still honoured for symmetry.
// None of this is tested here: the lab has no Xen.
//
// # Wiring into the cluster
//
// The agent on the source host runs the migrations it is the source of,
// once the committed desired placement moves a VM away from it (decisions
// travel only through the log). It calls Migrate with Source
// {Host: itself, URI: "qemu:///system"} and Target {Host, URI,
// MigrationURI} from the cluster's host list, so each host needs in the
// cluster config: the libvirt URI other hosts reach it at (e.g.
// qemu+tls://HOST/system; the lab uses qemu+tcp://127.0.0.1:PORT/system),
// its migration address (tcp://ADDR on the migration network, no port), and
// PeerURI only where the source libvirtd must reach it differently than the
// agent does. An evacuation is a series of such moves the leader commits
// (cluster/decide: at most its parallelism at once, within the migration
// limits), each run by its source's agent like any other. The
// outcome decides the next log entry: Migrated → the VM's status moves to
// the target; Aborted/Refused → it stays on the source and the desired
// placement must be reverted or retried, not left pointing at the target;
// Failed with RunningOn "" → the VM is nowhere: recovery, not a retry.
package migration

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"libvirt.org/go/libvirt"
)

// Errors that callers can test with errors.Is.
var (
	// ErrNotFound: the VM is not defined on the source.
	ErrNotFound = errors.New("vm not found on source")
	// ErrNotRunning: the VM is defined on the source but not running, so
	// there is nothing to move live.
	ErrNotRunning = errors.New("vm not running on source")
	// ErrOnTarget: the target already runs a domain of that name; moving
	// there would make two (never twice).
	ErrOnTarget = errors.New("vm already active on target")
	// ErrUnsafe: the migration could corrupt data (see checkSafe) and
	// Options.Force is not set. Nothing was moved.
	ErrUnsafe = errors.New("unsafe migration refused")
	// ErrUnsupported: an option the source's hypervisor driver cannot do.
	ErrUnsupported = errors.New("option not supported by the hypervisor driver")
	// ErrInvalid: options or endpoints that make no sense.
	ErrInvalid = errors.New("invalid migration request")
	// ErrAborted: the job was aborted (timeout or cancelled context); the
	// VM still runs on the source.
	ErrAborted = errors.New("migration aborted")
	// ErrHook: a storage hook failed (see Result.Reason for which).
	ErrHook = errors.New("storage hook failed")
)

// DefaultFlags are the libvirt flags of every migration: live, driven by the
// source libvirtd, the domain defined on the target and undefined on the
// source, so exactly one host holds the VM's definition afterwards.
const DefaultFlags = libvirt.MIGRATE_LIVE | libvirt.MIGRATE_PEER2PEER |
	libvirt.MIGRATE_PERSIST_DEST | libvirt.MIGRATE_UNDEFINE_SOURCE

// DefaultProgressInterval is how often job statistics are sampled when
// Options.ProgressInterval is zero.
const DefaultProgressInterval = 500 * time.Millisecond

// Endpoint is one end of a migration.
type Endpoint struct {
	// Host is the cluster's name for the host, used in results and errors.
	Host string
	// URI is the libvirt URI the caller uses to reach this host, e.g.
	// "qemu:///system" for the local source, or
	// "qemu+tls://host2/system" for a target.
	URI string
	// PeerURI is the URI the *source libvirtd* uses to reach this host's
	// libvirtd in a peer-to-peer migration (libvirt's dconnuri). Empty
	// means URI. It differs from URI when the caller and the source daemon
	// see the target differently (e.g. the caller uses a local socket).
	PeerURI string
	// MigrationURI is where this host receives migration streams, e.g.
	// "tcp://10.1.0.2" on a dedicated migration network (a port may be
	// added; without one the target picks from its migration port range).
	// Empty lets libvirt use the target's hostname.
	MigrationURI string
}

func (e Endpoint) peerURI() string {
	if e.PeerURI != "" {
		return e.PeerURI
	}
	return e.URI
}

// Options tune one migration. The zero value is a plain live migration
// with libvirt's defaults, no timeout and progress every 500 ms.
type Options struct {
	// MigrationURI overrides Target.MigrationURI for this migration.
	MigrationURI string
	// BandwidthMiBps caps the migration stream (MiB/s); 0 is unlimited.
	BandwidthMiBps uint64
	// MaxDowntime is the longest pause the guest may see at the switch-over;
	// QEMU keeps copying until it can meet it. 0 keeps QEMU's (300 ms).
	MaxDowntime time.Duration
	// AutoConverge throttles the guest's vCPUs when memory is dirtied
	// faster than it can be sent.
	AutoConverge bool
	// PostCopyAfter enables post-copy and switches to it this long after
	// the job started (the guest then runs on the target while the rest of
	// its memory follows on demand); if QEMU is not streaming yet by then,
	// the switch is retried every 250 ms. BandwidthMiBps still limits the
	// post-copy stream (seen with libvirt 9.0 / QEMU 7.2). libvirt keeps no
	// completed-job statistics for a post-copy migration, so Result.Job is
	// then empty (Valid false). 0 disables post-copy. After the switch the
	// migration can no longer be aborted: a timeout that fires later lets it
	// finish, and a network failure then loses the guest (libvirt leaves it
	// paused on both ends), which is why it is off by default.
	PostCopyAfter time.Duration
	// Compression is a libvirt compression method: "xbzrle", "mt", "zlib"
	// or "zstd" (what QEMU supports); empty means none.
	Compression string
	// TLS encrypts the migration stream with the hosts' libvirt migration
	// certificates (qemu.conf migrate_tls_x509_cert_dir).
	TLS bool
	// ParallelConnections uses several streams (QEMU multifd); 0 is one.
	ParallelConnections int
	// Force allows a migration that checkSafe or libvirt deem unsafe
	// (VIR_MIGRATE_UNSAFE).
	Force bool
	// Timeout aborts the job if it has not completed after this long,
	// leaving the VM on the source. 0 means no timeout (ctx still applies).
	Timeout time.Duration
	// ProgressInterval is how often job statistics are sampled.
	ProgressInterval time.Duration
	// DestXML, if set, is the domain XML to use on the target (e.g. to
	// change host-specific paths); it must describe the same guest.
	DestXML string
}

// Phase is where a migration stands.
type Phase string

// Phases, in order. Aborting replaces the later ones when a job is aborted.
const (
	PhasePrepare    Phase = "prepare"     // checks and storage hooks
	PhasePreCopy    Phase = "pre-copy"    // memory copied while the guest runs
	PhasePostCopy   Phase = "post-copy"   // guest runs on the target, memory follows
	PhaseSwitchover Phase = "switch-over" // guest paused for the last pages
	PhaseAborting   Phase = "aborting"
	PhaseVerify     Phase = "verify"
	PhaseDone       Phase = "done"
)

// Progress is one sample of a running migration.
type Progress struct {
	VM    string `json:"vm"`
	Phase Phase  `json:"phase"`
	// Elapsed is wall time since Migrate started; JobElapsed is libvirt's
	// own job clock.
	Elapsed    time.Duration `json:"elapsed"`
	JobElapsed time.Duration `json:"job_elapsed"`
	// Data* are bytes (memory plus any disk copy) as libvirt counts them.
	DataTotal     uint64 `json:"data_total"`
	DataProcessed uint64 `json:"data_processed"`
	DataRemaining uint64 `json:"data_remaining"`
	// DirtyRate is how fast the guest dirties memory, bytes/s.
	DirtyRate uint64 `json:"dirty_rate"`
	// Throughput is the current transfer rate, bytes/s.
	Throughput uint64 `json:"throughput"`
	// ExpectedDowntime is QEMU's estimate of the switch-over pause.
	ExpectedDowntime time.Duration `json:"expected_downtime"`
	// Iteration is the pre-copy pass over memory (1 is the first full pass).
	Iteration uint64 `json:"iteration"`
	// Throttle is auto-converge's current vCPU throttle, percent.
	Throttle int `json:"throttle,omitempty"`
}

// Percent is the share of data sent, 0-100; 0 while libvirt does not know
// the total yet.
func (p Progress) Percent() float64 {
	if p.DataTotal == 0 {
		return 0
	}
	done := p.DataTotal - min(p.DataRemaining, p.DataTotal)
	return 100 * float64(done) / float64(p.DataTotal)
}

// String renders a sample for a one-line progress display, e.g.
// "pre-copy 45% 58/128 MiB, 12.0 MiB/s, dirty 0.3 MiB/s, iteration 2,
// expected downtime 300ms".
func (p Progress) String() string {
	const mib = 1 << 20
	if p.DataTotal == 0 {
		return fmt.Sprintf("%s %s", p.Phase, p.Elapsed.Round(100*time.Millisecond))
	}
	s := fmt.Sprintf("%s %.0f%% %d/%d MiB, %.1f MiB/s, dirty %.1f MiB/s, iteration %d, expected downtime %s",
		p.Phase, p.Percent(), (p.DataTotal-min(p.DataRemaining, p.DataTotal))/mib, p.DataTotal/mib,
		float64(p.Throughput)/mib, float64(p.DirtyRate)/mib, p.Iteration, p.ExpectedDowntime)
	if p.Throttle > 0 {
		s += fmt.Sprintf(", throttle %d%%", p.Throttle)
	}
	return s
}

// Outcome is how a migration ended.
type Outcome string

// Outcomes.
const (
	// Migrated: the VM runs on the target and not on the source.
	Migrated Outcome = "migrated"
	// Aborted: the job was stopped (timeout, cancel); the VM runs on the
	// source.
	Aborted Outcome = "aborted"
	// Refused: a check or a storage hook said no before the job started;
	// nothing moved.
	Refused Outcome = "refused"
	// Failed: libvirt failed the job or the result could not be verified;
	// RunningOn says where the VM was found running ("" if nowhere).
	Failed Outcome = "failed"
)

// JobStats are libvirt's statistics of the finished job.
type JobStats struct {
	// TimeElapsed is the job's duration as libvirt measured it.
	TimeElapsed time.Duration `json:"time_elapsed"`
	// Downtime is how long the guest was paused at the switch-over.
	Downtime time.Duration `json:"downtime"`
	// SetupTime is the time before the first byte was sent.
	SetupTime     time.Duration `json:"setup_time"`
	DataTotal     uint64        `json:"data_total"`
	DataProcessed uint64        `json:"data_processed"`
	DataRemaining uint64        `json:"data_remaining"`
	Iterations    uint64        `json:"iterations"`
	// PostCopyRequests counts pages the target fetched on demand.
	PostCopyRequests uint64 `json:"postcopy_requests,omitempty"`
	// Valid is false when libvirt had no statistics to give.
	Valid bool `json:"valid"`
}

// Result describes one migration after the fact, whatever its outcome.
type Result struct {
	VM      string  `json:"vm"`
	Source  string  `json:"source"`
	Target  string  `json:"target"`
	Outcome Outcome `json:"outcome"`
	// Reason explains any outcome but Migrated (and notes on Migrated, e.g.
	// an abort that came too late).
	Reason string `json:"reason,omitempty"`
	// RunningOn is the host the VM was found active on afterwards.
	RunningOn string `json:"running_on"`
	// State is the VM's state there ("running"; "paused" if the guest
	// was paused before, or libvirt left it paused), after waiting up to
	// 15 s for a switch-over pause to end.
	State string `json:"state,omitempty"`
	// PostCopy is true if the switch to post-copy happened.
	PostCopy bool      `json:"postcopy,omitempty"`
	Started  time.Time `json:"started"`
	// Wall is Migrate's whole duration: checks, hooks, job, verification.
	Wall time.Duration `json:"wall"`
	// JobWall is the wall time of the libvirt call alone.
	JobWall time.Duration `json:"job_wall"`
	Job     JobStats      `json:"job"`
}

// Hooks prepare storage around a migration. Before runs before the job
// starts (e.g. activate the VM's logical volumes shared on both hosts, check
// the target's cluster file system) and may refuse it by returning an error;
// After runs once the VM runs on the target (e.g. make the activation
// exclusive on the target); Abort runs when the job was refused after
// Before, aborted or failed, to undo Before. Hooks run on the caller's
// goroutine and get the migration's context (After and Abort get a
// context that is not cancelled, so clean-up still runs after a Ctrl-C).
type Hooks interface {
	Before(ctx context.Context, vm string, src, dst Endpoint) error
	After(ctx context.Context, vm string, src, dst Endpoint) error
	Abort(ctx context.Context, vm string, src, dst Endpoint) error
}

// NoHooks does nothing; it is the default until the storage issue lands.
type NoHooks struct{}

// Before does nothing.
func (NoHooks) Before(context.Context, string, Endpoint, Endpoint) error { return nil }

// After does nothing.
func (NoHooks) After(context.Context, string, Endpoint, Endpoint) error { return nil }

// Abort does nothing.
func (NoHooks) Abort(context.Context, string, Endpoint, Endpoint) error { return nil }

// hookTimeout bounds After/Abort, which run on a fresh context.
const hookTimeout = 2 * time.Minute

// Migrator runs live migrations. The zero value is usable; it is safe for
// concurrent use (each Migrate opens its own connections).
type Migrator struct {
	// Hooks prepare storage; nil means NoHooks.
	Hooks Hooks
	// Log receives one line per migration step; the zero logger is silent.
	// Migrate adds the fields vm, source and target to every line: a
	// logger that already carries them would write them twice.
	Log zerolog.Logger
	// Connect opens a libvirt connection; nil means libvirt.NewConnect.
	Connect func(uri string) (*libvirt.Connect, error)
}

func (m *Migrator) hooks() Hooks {
	if m.Hooks == nil {
		return NoHooks{}
	}
	return m.Hooks
}

func (m *Migrator) connect(uri string) (*libvirt.Connect, error) {
	if m.Connect != nil {
		return m.Connect(uri)
	}
	return libvirt.NewConnect(uri)
}

// validate checks options that need no connection.
func (o Options) validate() error {
	var bad []string
	if o.Timeout < 0 {
		bad = append(bad, fmt.Sprintf("timeout %s is negative", o.Timeout))
	}
	if o.PostCopyAfter < 0 {
		bad = append(bad, fmt.Sprintf("post-copy-after %s is negative", o.PostCopyAfter))
	}
	if o.MaxDowntime < 0 {
		bad = append(bad, fmt.Sprintf("max downtime %s is negative", o.MaxDowntime))
	}
	if o.MaxDowntime > 0 && o.MaxDowntime < time.Millisecond {
		bad = append(bad, fmt.Sprintf("max downtime %s is below libvirt's 1 ms unit", o.MaxDowntime))
	}
	if o.ProgressInterval < 0 {
		bad = append(bad, fmt.Sprintf("progress interval %s is negative", o.ProgressInterval))
	}
	if o.ParallelConnections < 0 {
		bad = append(bad, fmt.Sprintf("parallel connections %d is negative", o.ParallelConnections))
	}
	switch o.Compression {
	case "", "xbzrle", "mt", "zlib", "zstd":
	default:
		bad = append(bad, fmt.Sprintf("compression %q is not one of xbzrle, mt, zlib, zstd", o.Compression))
	}
	if u := o.MigrationURI; u != "" && !strings.Contains(u, "://") {
		bad = append(bad, fmt.Sprintf("migration URI %q has no scheme (want e.g. tcp://10.0.0.2)", u))
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalid, strings.Join(bad, "; "))
	}
	return nil
}

// xenUnsupported lists the options libxl cannot honour (see the package
// doc), so a Xen migration is refused up front rather than half-done.
func (o Options) xenUnsupported() []string {
	var out []string
	if o.BandwidthMiBps > 0 {
		out = append(out, "bandwidth")
	}
	if o.MaxDowntime > 0 {
		out = append(out, "max downtime")
	}
	if o.AutoConverge {
		out = append(out, "auto-converge")
	}
	if o.PostCopyAfter > 0 {
		out = append(out, "post-copy")
	}
	if o.Compression != "" {
		out = append(out, "compression")
	}
	if o.TLS {
		out = append(out, "TLS")
	}
	if o.ParallelConnections > 0 {
		out = append(out, "parallel connections")
	}
	return out
}

// flagsAndParams turns options into libvirt's flags and typed parameters.
func (o Options) flagsAndParams(dst Endpoint) (libvirt.DomainMigrateFlags, *libvirt.DomainMigrateParameters) {
	flags := DefaultFlags
	p := &libvirt.DomainMigrateParameters{}
	uri := o.MigrationURI
	if uri == "" {
		uri = dst.MigrationURI
	}
	if uri != "" {
		p.URISet, p.URI = true, uri
	}
	if o.BandwidthMiBps > 0 {
		p.BandwidthSet, p.Bandwidth = true, o.BandwidthMiBps
	}
	if o.AutoConverge {
		flags |= libvirt.MIGRATE_AUTO_CONVERGE
	}
	if o.PostCopyAfter > 0 {
		flags |= libvirt.MIGRATE_POSTCOPY
	}
	if o.Compression != "" {
		flags |= libvirt.MIGRATE_COMPRESSED
		p.CompressionSet, p.Compression = true, o.Compression
	}
	if o.TLS {
		flags |= libvirt.MIGRATE_TLS
	}
	if o.ParallelConnections > 0 {
		flags |= libvirt.MIGRATE_PARALLEL
		p.ParallelConnectionsSet, p.ParallelConnections = true, o.ParallelConnections
	}
	if o.Force {
		flags |= libvirt.MIGRATE_UNSAFE
	}
	if o.DestXML != "" {
		p.DestXMLSet, p.DestXML = true, o.DestXML
	}
	return flags, p
}
