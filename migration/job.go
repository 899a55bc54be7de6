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

// resumeWait is how long, after an abort, Migrate waits for the source to
// report the guest running again: libvirt resumes a guest that was paused in
// the switch-over only after QEMU has cancelled the stream.
const resumeWait = 15 * time.Second

// postcopyRetry and postcopyMaxTries pace retries of the post-copy switch
// while QEMU is not yet streaming (the target's QEMU takes about a second to
// start under TCG).
const (
	postcopyRetry    = 250 * time.Millisecond
	postcopyMaxTries = 120
)

// Migrate moves the running VM vm from src to dst live and returns what
// happened. The error is nil exactly when the VM was verified running on dst
// and gone from src and the storage hooks succeeded; otherwise it wraps one
// of the package's errors (errors.Is) and the Result still says where the VM
// runs. progress, if not nil, is called on the caller's goroutine every
// Options.ProgressInterval while the job runs, and once per phase change.
//
// Cancelling ctx aborts the job like a timeout does.
func (m *Migrator) Migrate(ctx context.Context, vm string, src, dst Endpoint, opts Options, progress func(Progress)) (Result, error) {
	start := time.Now()
	res := Result{VM: vm, Source: src.Host, Target: dst.Host, Started: start, Outcome: Refused}
	log := m.Log.With().Str("vm", vm).Str("source", src.Host).Str("target", dst.Host).Logger()
	finish := func(err error) (Result, error) {
		res.Wall = time.Since(start)
		if err != nil && res.Reason == "" {
			res.Reason = err.Error()
		}
		ev := log.Info()
		if err != nil {
			ev = log.Warn().Err(err)
		}
		ev.Str("outcome", string(res.Outcome)).Str("running_on", res.RunningOn).Dur("wall", res.Wall).
			Dur("downtime", res.Job.Downtime).Msg("migration finished")
		return res, err
	}
	report := func(p Progress) {
		if progress != nil {
			p.VM = vm
			p.Elapsed = time.Since(start)
			progress(p)
		}
	}

	if err := checkRequest(vm, src, dst, opts); err != nil {
		return finish(err)
	}
	if err := ctx.Err(); err != nil {
		return finish(fmt.Errorf("migrate %s: %w", vm, err))
	}
	report(Progress{Phase: PhasePrepare})

	pr, runningOn, err := m.prepare(vm, src, dst, opts)
	res.RunningOn = runningOn
	if err != nil {
		return finish(err)
	}
	defer pr.close()
	sconn, dconn, dom := pr.sconn, pr.dconn, pr.dom

	hooks := m.hooks()
	if err := hooks.Before(ctx, vm, src, dst); err != nil {
		res.Reason = fmt.Sprintf("storage hook before migration: %v", err)
		m.runAbortHook(vm, src, dst, &res)
		return finish(fmt.Errorf("%w: before migrating %s from %s to %s: %w", ErrHook, vm, src.Host, dst.Host, err))
	}

	if opts.MaxDowntime > 0 {
		if err := dom.MigrateSetMaxDowntime(uint64(opts.MaxDowntime/time.Millisecond), 0); err != nil {
			m.runAbortHook(vm, src, dst, &res)
			return finish(fmt.Errorf("set max downtime %s for %s on %s: %w", opts.MaxDowntime, vm, src.Host, err))
		}
	}

	flags, params := opts.flagsAndParams(dst)
	interval := opts.ProgressInterval
	if interval == 0 {
		interval = DefaultProgressInterval
	}

	// Statistics, abort and the post-copy switch go through a connection
	// of their own: on the connection that carries the long
	// MigrateToURI3 call, libvirt's remote client (without an event loop
	// in the process) stalls further calls until the migration ends, which
	// would make a timeout unable to abort (seen with libvirt 9.0).
	mconn, err := m.connect(src.URI)
	if err != nil {
		m.runAbortHook(vm, src, dst, &res)
		return finish(fmt.Errorf("second connection to source %s (%s) for job control: %w", src.Host, src.URI, err))
	}
	defer mconn.Close()
	uuid, err := dom.GetUUID()
	if err != nil {
		m.runAbortHook(vm, src, dst, &res)
		return finish(fmt.Errorf("UUID of %s on %s: %w", vm, src.Host, err))
	}
	mdom, err := mconn.LookupDomainByUUID(uuid)
	if err != nil {
		m.runAbortHook(vm, src, dst, &res)
		return finish(fmt.Errorf("look up %s on %s for job control: %w", vm, src.Host, err))
	}
	defer mdom.Free()

	log.Info().Str("peer_uri", dst.peerURI()).Str("migration_uri", params.URI).Uint64("flags", uint64(flags)).Msg("migration starting")
	jobStart := time.Now()
	done := make(chan error, 1)
	go func() { done <- dom.MigrateToURI3(dst.peerURI(), params, flags) }()
	w := &jobWatch{mdom: mdom, log: log, report: report, phase: PhasePreCopy}
	migErr := w.run(ctx, done, opts, interval)
	res.JobWall = w.ended.Sub(jobStart)
	res.PostCopy = w.postcopy

	report(Progress{Phase: PhaseVerify})
	m.verify(vm, src, dst, sconn, dconn, &res, w.aborted != "")

	// Statistics of the finished job: libvirt hands them to the target
	// with the domain when the migration completes, and keeps them on the
	// source when it fails or is aborted.
	if res.Outcome == Migrated {
		res.Job = completedStats(dconn, vm)
	} else {
		res.Job = completedStats(sconn, vm)
	}
	if res.Outcome != Migrated && res.Outcome != Aborted && migErr != nil && isCode(migErr, libvirt.ERR_MIGRATE_UNSAFE) {
		res.Outcome = Refused
		m.runAbortHook(vm, src, dst, &res)
		res.Reason = fmt.Sprintf("libvirt: %s", migErr.Error())
		return finish(fmt.Errorf("%w: %s: %w", ErrUnsafe, vm, migErr))
	}
	err = m.conclude(&res, vm, src, dst, hooks, w, migErr)
	report(Progress{Phase: PhaseDone, JobElapsed: res.Job.TimeElapsed, DataTotal: res.Job.DataTotal, DataProcessed: res.Job.DataProcessed})
	return finish(err)
}

// conclude sets the result's reason from the verified outcome, runs the
// storage hook that outcome calls for, and returns Migrate's error.
func (m *Migrator) conclude(res *Result, vm string, src, dst Endpoint, hooks Hooks, w *jobWatch, migErr error) error {
	switch res.Outcome {
	case Migrated:
		if w.aborted != "" {
			res.Reason = fmt.Sprintf("abort (%s) came too late: %v", w.aborted, w.abortErr)
		}
		if err := withHookCtx(func(ctx context.Context) error { return hooks.After(ctx, vm, src, dst) }); err != nil {
			res.Reason = strings.TrimPrefix(res.Reason+"; ", "; ") + fmt.Sprintf("storage hook after migration: %v", err)
			return fmt.Errorf("%w: after migrating %s to %s: %w", ErrHook, vm, dst.Host, err)
		}
		return nil
	case Aborted:
		res.Reason = fmt.Sprintf("%s; job aborted, %s still running on %s", w.aborted, vm, res.RunningOn)
		m.runAbortHook(vm, src, dst, res)
		return fmt.Errorf("%w: %s: %s", ErrAborted, vm, res.Reason)
	}
	why := "libvirt reported success"
	if migErr != nil {
		why = migErr.Error()
	}
	if w.aborted != "" {
		why = fmt.Sprintf("%s (abort: %s, %v)", why, w.aborted, w.abortErr)
	}
	res.Reason = strings.TrimPrefix(why+"; "+res.Reason, "; ")
	// Only undo storage when the VM is back on the source alone; with
	// the VM nowhere or on the target, deactivating would be wrong.
	if res.RunningOn == src.Host {
		m.runAbortHook(vm, src, dst, res)
	}
	return fmt.Errorf("migrate %s from %s to %s failed: %s", vm, src.Host, dst.Host, res.Reason)
}

// jobWatch is Migrate's control of a running job: it passes progress on,
// aborts the job on timeout or cancellation, and switches it to post-copy
// when asked to. Statistics, abort and the post-copy switch go through
// mdom, the domain on a connection of its own.
type jobWatch struct {
	mdom   *libvirt.Domain
	log    zerolog.Logger
	report func(Progress)

	phase         Phase
	aborted       string // why we aborted, "" if we did not
	abortErr      error
	postcopy      bool
	postcopyTries int
	ended         time.Time // when the job ended

	ctxDone             <-chan struct{}
	timeoutC, postcopyC <-chan time.Time
}

// run watches the job until done delivers its result, which it returns.
func (w *jobWatch) run(ctx context.Context, done <-chan error, opts Options, interval time.Duration) error {
	if opts.Timeout > 0 {
		t := time.NewTimer(opts.Timeout)
		defer t.Stop()
		w.timeoutC = t.C
	}
	if opts.PostCopyAfter > 0 {
		t := time.NewTimer(opts.PostCopyAfter)
		defer t.Stop()
		w.postcopyC = t.C
	}
	samples, stopSampler := startSampler(w.mdom, interval, w.log)
	w.ctxDone = ctx.Done()
	w.report(Progress{Phase: w.phase})
	for {
		select {
		case migErr := <-done:
			w.ended = time.Now()
			stopSampler()
			return migErr
		case <-w.timeoutC:
			w.abort(fmt.Sprintf("timeout after %s", opts.Timeout))
		case <-w.ctxDone:
			w.abort(fmt.Sprintf("cancelled: %v", ctx.Err()))
		case <-w.postcopyC:
			w.switchToPostCopy()
		case p := <-samples:
			// The sampler only tells pre-copy from switch-over; what
			// this loop did (post-copy, abort) takes precedence.
			if w.phase != PhasePreCopy || p.Phase == "" {
				p.Phase = w.phase
			}
			w.report(p)
		}
	}
}

func (w *jobWatch) abort(why string) {
	if w.aborted != "" {
		return
	}
	w.aborted = why
	w.ctxDone, w.timeoutC, w.postcopyC = nil, nil, nil
	w.phase = PhaseAborting
	w.log.Warn().Str("why", why).Msg("aborting migration job")
	if err := w.mdom.AbortJob(); err != nil {
		// Too late (completed, or in post-copy where abort is
		// impossible) or unsupported (libxl): the job runs to its end.
		w.abortErr = err
		w.log.Warn().Err(err).Msg("abort refused")
	}
	w.report(Progress{Phase: w.phase})
}

func (w *jobWatch) switchToPostCopy() {
	w.postcopyC = nil
	if err := w.mdom.MigrateStartPostCopy(0); err != nil {
		// Early in the job the target's QEMU is still starting
		// and QEMU refuses ("enable postcopy ... before the
		// start of migration"): try again shortly, as long as
		// the job runs. Near its end the job usually finished
		// in pre-copy first, and its result tells.
		w.postcopyTries++
		if w.postcopyTries < postcopyMaxTries {
			w.log.Debug().Err(err).Msg("switch to post-copy refused, retrying")
			w.postcopyC = time.After(postcopyRetry)
		} else {
			w.log.Warn().Err(err).Int("tries", w.postcopyTries).Msg("switch to post-copy refused, giving up")
		}
		return
	}
	w.postcopy = true
	w.phase = PhasePostCopy
	w.log.Info().Msg("switched to post-copy")
}

// startSampler reads the job's statistics every interval on a goroutine
// of its own, so that a slow statistics call never delays an abort or the
// post-copy switch. stop ends it and waits for it.
func startSampler(mdom *libvirt.Domain, interval time.Duration, log zerolog.Logger) (samples <-chan Progress, stop func()) {
	out := make(chan Progress, 1)
	quit := make(chan struct{})
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-quit:
				return
			case <-tick.C:
			}
			p, err := sample(mdom)
			if err != nil {
				// libxl and old drivers lack job statistics: report
				// time only rather than fail a healthy job.
				log.Debug().Err(err).Msg("job statistics unavailable")
				p = Progress{}
			}
			select {
			case out <- p:
			case <-quit:
				return
			}
		}
	}()
	return out, func() { close(quit); <-ended }
}

// Check runs every check Migrate makes before it changes anything — the
// options, both hosts reachable, the VM running on the source and not
// active on the target, the unsafe-cache rule, what a Xen source supports —
// and returns the error Migrate would. It neither calls the storage hooks
// nor starts a job: the basis of a dry run (`vmha evacuate --dry-run`).
func (m *Migrator) Check(ctx context.Context, vm string, src, dst Endpoint, opts Options) error {
	if err := checkRequest(vm, src, dst, opts); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("check %s: %w", vm, err)
	}
	pr, _, err := m.prepare(vm, src, dst, opts)
	if err != nil {
		return err
	}
	pr.close()
	return nil
}

func checkRequest(vm string, src, dst Endpoint, opts Options) error {
	if vm == "" || src.URI == "" || dst.URI == "" {
		return fmt.Errorf("%w: vm %q, source URI %q, target URI %q: none may be empty", ErrInvalid, vm, src.URI, dst.URI)
	}
	if src.Host != "" && src.Host == dst.Host {
		return fmt.Errorf("%w: source and target are the same host %q", ErrInvalid, src.Host)
	}
	return opts.validate()
}

// prepared is what prepare opened for a migration.
type prepared struct {
	sconn, dconn *libvirt.Connect
	dom          *libvirt.Domain
	xen          bool
}

func (p *prepared) close() {
	if p.dom != nil {
		_ = p.dom.Free()
	}
	if p.dconn != nil {
		_, _ = p.dconn.Close()
	}
	if p.sconn != nil {
		_, _ = p.sconn.Close()
	}
}

// prepare connects to both hosts and runs the checks that change nothing.
// runningOn is where the checks saw the VM active ("" if nowhere, or on
// both). On error everything opened is closed again.
func (m *Migrator) prepare(vm string, src, dst Endpoint, opts Options) (_ *prepared, runningOn string, err error) {
	p := &prepared{}
	defer func() {
		if err != nil {
			p.close()
		}
	}()
	if p.sconn, err = m.connect(src.URI); err != nil {
		return nil, "", fmt.Errorf("connect to source %s (%s): %w", src.Host, src.URI, err)
	}
	if p.dconn, err = m.connect(dst.URI); err != nil {
		return nil, "", fmt.Errorf("connect to target %s (%s): %w", dst.Host, dst.URI, err)
	}
	if typ, terr := p.sconn.GetType(); terr == nil && strings.EqualFold(typ, "xen") {
		p.xen = true
		if bad := opts.xenUnsupported(); len(bad) > 0 {
			return nil, "", fmt.Errorf("%w: %s on Xen source %s (libxl)", ErrUnsupported, strings.Join(bad, ", "), src.Host)
		}
	}
	if p.dom, err = p.sconn.LookupDomainByName(vm); err != nil {
		if isCode(err, libvirt.ERR_NO_DOMAIN) {
			return nil, "", fmt.Errorf("%w: %s on %s", ErrNotFound, vm, src.Host)
		}
		return nil, "", fmt.Errorf("look up %s on source %s: %w", vm, src.Host, err)
	}
	active, err := p.dom.IsActive()
	if err != nil {
		return nil, "", fmt.Errorf("state of %s on source %s: %w", vm, src.Host, err)
	}
	if !active {
		return nil, "", fmt.Errorf("%w: %s on %s is shut off", ErrNotRunning, vm, src.Host)
	}
	if onTarget, _ := activeOn(p.dconn, vm); onTarget {
		// Active on both: not ours to pick one; the caller's reconcile
		// (or an operator) must.
		return nil, "", fmt.Errorf("%w: %s is already active on %s as well as on %s", ErrOnTarget, vm, dst.Host, src.Host)
	}
	if !opts.Force && !p.xen {
		x, err := p.dom.GetXMLDesc(0)
		if err != nil {
			return nil, src.Host, fmt.Errorf("XML of %s on %s: %w", vm, src.Host, err)
		}
		reasons, err := checkSafe(x)
		if err != nil {
			return nil, src.Host, err
		}
		if len(reasons) > 0 {
			return nil, src.Host, fmt.Errorf("%w: %s: %s (use force to migrate anyway)", ErrUnsafe, vm, joinReasons(reasons))
		}
	}
	return p, src.Host, nil
}

// withHookCtx runs a clean-up hook on a context of its own: the
// migration's context may be the very Ctrl-C that caused the clean-up.
func withHookCtx(f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), hookTimeout)
	defer cancel()
	return f(ctx)
}

func (m *Migrator) runAbortHook(vm string, src, dst Endpoint, res *Result) {
	if err := withHookCtx(func(ctx context.Context) error { return m.hooks().Abort(ctx, vm, src, dst) }); err != nil {
		res.Reason = strings.TrimPrefix(res.Reason+"; ", "; ") + fmt.Sprintf("storage hook on abort: %v", err)
	}
}

// verify looks where the VM runs now and sets Outcome and RunningOn. A VM
// active on the target is "running there" even while paused (post-copy, or
// a guest that was paused before): it holds its disks there.
func (m *Migrator) verify(vm string, src, dst Endpoint, sconn, dconn *libvirt.Connect, res *Result, aborted bool) {
	onDst, dErr := activeOn(dconn, vm)
	onSrc, sErr := activeOn(sconn, vm)
	if aborted && !onDst && sErr == nil && !onSrc {
		// Not on the target and not (yet) on the source: an aborted job
		// can take a moment to hand the guest back.
		deadline := time.Now().Add(resumeWait)
		for !onSrc && sErr == nil && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
			onSrc, sErr = activeOn(sconn, vm)
		}
	}
	switch {
	case dErr != nil || sErr != nil:
		res.Outcome = Failed
		res.RunningOn = ""
		res.Reason = fmt.Sprintf("cannot verify where %s runs: target %s: %v; source %s: %v", vm, dst.Host, dErr, src.Host, sErr)
	case onDst && !onSrc:
		res.Outcome = Migrated
		res.RunningOn = dst.Host
		res.State = settledState(dconn, vm)
		if defined, _ := definedOn(sconn, vm); defined {
			// UNDEFINE_SOURCE failed: the definition left behind could be
			// started by mistake later, so say it.
			res.Reason = fmt.Sprintf("%s is still defined (inactive) on source %s", vm, src.Host)
		}
	case onSrc && !onDst:
		res.RunningOn = src.Host
		if aborted {
			res.Outcome = Aborted
		} else {
			res.Outcome = Failed
		}
		// libvirt resumes a guest that was paused for the switch-over
		// when it cancels the job; give it the time to do so, then tell
		// the caller if the guest is still paused.
		res.State = settledState(sconn, vm)
	case onSrc && onDst:
		// libvirt never leaves that after a finished job; if it is seen, it
		// is a paused leftover of a failed post-copy. Not resolved here.
		res.Outcome = Failed
		res.RunningOn = ""
		res.Reason = fmt.Sprintf("%s is active on both %s and %s after the job", vm, src.Host, dst.Host)
	default:
		res.Outcome = Failed
		res.RunningOn = ""
		res.Reason = fmt.Sprintf("%s is active on neither %s nor %s after the job", vm, src.Host, dst.Host)
	}
}

// settledState waits up to resumeWait while vm on conn is paused by the
// migration itself, then returns its state as the hypervisor package names
// states ("running", "paused", ...).
func settledState(conn *libvirt.Connect, vm string) string {
	deadline := time.Now().Add(resumeWait)
	for {
		st, reason, err := stateOf(conn, vm)
		if err != nil {
			return "unknown"
		}
		migrating := st == libvirt.DOMAIN_PAUSED && (libvirt.DomainPausedReason(reason) == libvirt.DOMAIN_PAUSED_MIGRATION ||
			libvirt.DomainPausedReason(reason) == libvirt.DOMAIN_PAUSED_POSTCOPY)
		if !migrating || time.Now().After(deadline) {
			return stateName(st)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func stateOf(conn *libvirt.Connect, vm string) (libvirt.DomainState, int, error) {
	d, err := conn.LookupDomainByName(vm)
	if err != nil {
		return 0, 0, err
	}
	defer d.Free()
	return d.GetState()
}

// stateName uses the hypervisor package's names for libvirt states.
func stateName(s libvirt.DomainState) string {
	switch s {
	case libvirt.DOMAIN_RUNNING, libvirt.DOMAIN_BLOCKED:
		return "running"
	case libvirt.DOMAIN_PAUSED, libvirt.DOMAIN_PMSUSPENDED:
		return "paused"
	case libvirt.DOMAIN_SHUTDOWN:
		return "shutting-down"
	case libvirt.DOMAIN_SHUTOFF:
		return "shutoff"
	case libvirt.DOMAIN_CRASHED:
		return "crashed"
	default:
		return "unknown"
	}
}

// activeOn reports whether conn has an active domain named vm.
func activeOn(conn *libvirt.Connect, vm string) (bool, error) {
	d, err := conn.LookupDomainByName(vm)
	if err != nil {
		if isCode(err, libvirt.ERR_NO_DOMAIN) {
			return false, nil
		}
		return false, err
	}
	defer d.Free()
	active, err := d.IsActive()
	if err != nil && isCode(err, libvirt.ERR_NO_DOMAIN) {
		return false, nil
	}
	return active, err
}

func definedOn(conn *libvirt.Connect, vm string) (bool, error) {
	d, err := conn.LookupDomainByName(vm)
	if err != nil {
		if isCode(err, libvirt.ERR_NO_DOMAIN) {
			return false, nil
		}
		return false, err
	}
	defer d.Free()
	return d.IsPersistent()
}

// sample reads the running job's statistics and the domain's state (which
// shows the switch-over: paused for migration).
func sample(dom *libvirt.Domain) (Progress, error) {
	st, err := dom.GetJobStats(0)
	if err != nil {
		return Progress{}, err
	}
	p := Progress{
		Phase:            PhasePreCopy,
		JobElapsed:       time.Duration(st.TimeElapsed) * time.Millisecond,
		DataTotal:        st.DataTotal,
		DataProcessed:    st.DataProcessed,
		DataRemaining:    st.DataRemaining,
		DirtyRate:        st.MemDirtyRate * pageSize(st.MemPageSize),
		Throughput:       st.MemBps,
		ExpectedDowntime: time.Duration(st.Downtime) * time.Millisecond,
		Iteration:        st.MemIteration,
		Throttle:         st.AutoConvergeThrottle,
	}
	if s, reason, err := dom.GetState(); err == nil && s == libvirt.DOMAIN_PAUSED &&
		libvirt.DomainPausedReason(reason) == libvirt.DOMAIN_PAUSED_MIGRATION {
		p.Phase = PhaseSwitchover
	}
	return p, nil
}

// pageSize defaults to 4 KiB when libvirt does not report one (the dirty
// rate is in pages per second).
func pageSize(ps uint64) uint64 {
	if ps == 0 {
		return 4096
	}
	return ps
}

// completedStats fetches the statistics of the last finished job of vm on
// conn; zero (Valid false) when there are none.
func completedStats(conn *libvirt.Connect, vm string) JobStats {
	d, err := conn.LookupDomainByName(vm)
	if err != nil {
		return JobStats{}
	}
	defer d.Free()
	st, err := d.GetJobStats(libvirt.DOMAIN_JOB_STATS_COMPLETED)
	if err != nil || st.Type == libvirt.DOMAIN_JOB_NONE {
		return JobStats{}
	}
	return JobStats{
		TimeElapsed:      time.Duration(st.TimeElapsed) * time.Millisecond,
		Downtime:         time.Duration(st.Downtime) * time.Millisecond,
		SetupTime:        time.Duration(st.SetupTime) * time.Millisecond,
		DataTotal:        st.DataTotal,
		DataProcessed:    st.DataProcessed,
		DataRemaining:    st.DataRemaining,
		Iterations:       st.MemIteration,
		PostCopyRequests: st.MemPostcopyReqs,
		Valid:            true,
	}
}

func isCode(err error, code libvirt.ErrorNumber) bool {
	var le libvirt.Error
	return errors.As(err, &le) && le.Code == code
}
