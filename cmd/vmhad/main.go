// Command vmhad is the vmha daemon that runs on every hypervisor host.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/vmha/vmha/cluster"
	"github.com/vmha/vmha/config"
	"github.com/vmha/vmha/fencing/devices"
	"github.com/vmha/vmha/hypervisor"
	"github.com/vmha/vmha/internal/buildinfo"
	"github.com/vmha/vmha/internal/gossipkey"
	"github.com/vmha/vmha/internal/sdnotify"
	"github.com/vmha/vmha/model"
	"github.com/vmha/vmha/pki"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	var checkOnly, offline, showVersion bool
	cmd := &cobra.Command{
		Use:   "vmhad",
		Short: "vmha host daemon: membership, replicated state, fencing and VM recovery",
		Long: `vmhad runs on every hypervisor host of a vmha cluster. It gossips with the
other hosts, keeps the replicated cluster state, and, on the leader, fences
lost hosts and places their VMs on survivors; on every host it reconciles the
local hypervisor to the committed placements.

Configuration: ` + config.DefaultPath + ` (or --config), VMHA_* environment
variables, then flags.

--check-config runs every check vmhad runs before it starts (the config, the
password and key files it names and their modes, the TLS certificates, the
fence devices, the hypervisor connection; --offline skips the hypervisor),
then checks, without doing it, what the start does: the socket can be
claimed, data_dir opened (and its raft store is one the start accepts), the
ports and metrics_addr bound, the watchdog device opened. It lists every
problem and exits 1 if there is one, 0 otherwise: 0 means vmhad starts with
this config. Beside a running vmhad of the same config, that is a warning.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if showVersion {
				fmt.Fprintf(stdout, "vmhad %s\n", buildinfo.Get())
				return nil
			}
			path, _ := cmd.Flags().GetString("config")
			if offline && !checkOnly {
				return errors.New("--offline goes with --check-config only: the daemon needs its hypervisor")
			}
			if checkOnly {
				return checkConfig(path, cmd.Flags(), offline, stderr)
			}
			cfg, err := config.Load(path, cmd.Flags())
			if err != nil {
				return err
			}
			log := newLogger(cfg, stderr)
			pre := preflight(cfg, log, preflightOptions{Hypervisor: true, Now: time.Now()})
			if err := pre.problems.Err(); err != nil {
				pre.close()
				return err
			}
			for _, w := range pre.warnings {
				log.Warn().Msg(w)
			}
			return serve(cfg, log, pre)
		},
	}
	config.Flags(cmd.Flags())
	cmd.Flags().BoolVar(&checkOnly, "check-config", false, "run every check of a start (config, secret files, TLS, fence devices, hypervisor, socket, data_dir, ports, watchdog), list every problem and exit")
	cmd.Flags().BoolVar(&showVersion, "version", false, "print the version, the revision it was built from and the Go version (as vmha version), and exit")
	cmd.Flags().BoolVar(&offline, "offline", false, "with --check-config: skip the checks that need the hypervisor")
	cmd.SetArgs(args)
	cmd.SetErr(stderr)
	if err := cmd.Execute(); err != nil {
		report(stderr, err)
		return 1
	}
	return 0
}

// report prints err, a list of problems one per line.
func report(w io.Writer, err error) {
	if p, ok := err.(config.Problems); ok && len(p) > 1 {
		fmt.Fprintf(w, "vmhad: %d problems:\n", len(p))
		for _, e := range p {
			fmt.Fprintln(w, "  "+e.Error())
		}
		return
	}
	fmt.Fprintln(w, "vmhad: "+err.Error())
}

// checkConfig is vmhad --check-config: config.Load's checks, then the same
// preflight as a start (closing the hypervisor connection it opened), then
// startChecks (what the start does after preflight). When
// the config decoded but did not validate, the files it names are checked
// too, so that one run lists every problem it can find.
func checkConfig(path string, flags *pflag.FlagSet, offline bool, stderr io.Writer) error {
	cfg, err := config.LoadForCheck(path, flags)
	var problems config.Problems
	if p, ok := err.(config.Problems); ok {
		problems = append(problems, p...)
	} else if err != nil {
		problems = append(problems, err)
	}
	if cfg == nil {
		return problems.Err()
	}
	pre := preflight(cfg, zerolog.Nop(), preflightOptions{Hypervisor: !offline, FilesOnly: err != nil, Now: time.Now()})
	pre.close()
	problems = append(problems, pre.problems...)
	if err == nil {
		pre.startChecks(cfg)
		problems = append(problems, pre.startProblems...)
	}
	for _, w := range pre.warnings {
		fmt.Fprintln(stderr, "vmhad: warning: "+w)
	}
	if err := problems.Err(); err != nil {
		return err
	}
	hv := cfg.HypervisorURI
	switch {
	case cfg.Witness:
		hv = "none (witness)"
	case offline:
		hv += " (not checked: --offline)"
	}
	fmt.Fprintf(stderr, "config ok: node %s, hypervisor %s\n", cfg.NodeName, hv)
	return nil
}

// certWarnDays: a certificate that expires sooner is warned about.
const certWarnDays = 30

// preflightOptions say how much preflight checks.
type preflightOptions struct {
	// Hypervisor opens the hypervisor connection (never for a witness).
	Hypervisor bool
	// FilesOnly checks only the files the config names: the config did
	// not validate, so its fence devices and hypervisor are not tried.
	FilesOnly bool
	Now       time.Time
}

// checked is what preflight found and opened.
type checked struct {
	problems config.Problems
	// startProblems are startChecks' (--check-config only).
	startProblems config.Problems
	warnings      []string
	// fence is this host's fence topology with its passwords read.
	fence *model.FenceTopology
	// hv is the open hypervisor connection (nil for a witness or when not
	// asked for).
	hv *hypervisor.Libvirt
}

func (c *checked) close() {
	if c.hv != nil {
		_ = c.hv.Close()
		c.hv = nil
	}
}

// preflight is everything vmhad checks after config.Load and before it
// starts, and what --check-config checks: one function for both, so that
// a config the check passes is one the daemon starts with. It checks every
// item and returns every problem, each naming the file or field:
//   - every fence device's password file and the gossip key file: present,
//     a regular readable file, not accessible by group or others;
//   - the gossip key decodes; the gossip keyring in data_dir has mode 0600;
//   - TLS: the certificate chains to the CA, it and the CA are valid now
//     (a warning when one expires within 30 days);
//   - the fence topology builds and its passwords read (fenceTopology);
//   - the hypervisor connection opens.
func preflight(cfg *config.Daemon, log zerolog.Logger, o preflightOptions) *checked {
	c := &checked{}
	sp := cfg.FenceSpec()
	passwordsOK := true
	for _, d := range sp.Devices {
		if d.PasswordFile == "" {
			continue
		}
		if err := checkSecretFile("fence device "+d.Name+": password_file", d.PasswordFile); err != nil {
			c.problems = append(c.problems, err)
			passwordsOK = false
		}
	}
	c.checkGossipKey(cfg)
	c.checkTLS(cfg.TLS, o.Now)
	if o.FilesOnly {
		return c
	}
	if passwordsOK {
		fence, err := fenceTopology(cfg)
		if err != nil {
			c.problems = append(c.problems, err)
		}
		c.fence = fence
	}
	if o.Hypervisor && !cfg.Witness {
		hv, err := hypervisor.OpenLibvirt(cfg.HypervisorURI, log)
		if err != nil {
			c.problems = append(c.problems, fmt.Errorf("hypervisor %s: %w", cfg.HypervisorURI, err))
		} else {
			c.hv = hv
		}
	}
	return c
}

// startChecks is what the start does after preflight, checked without
// doing it (--check-config only; the start does it for real, in serve and
// cluster.NewNode): the socket can be claimed (cluster.CheckSocket), the
// data_dir opened (cluster.CheckDataDir: writable, and a raft store the
// start accepts), the ports bound (raft, API and gossip on bind_addr, TCP
// and gossip's UDP, and metrics_addr), the watchdog device opened. A
// data_dir or socket held by a running vmhad is a warning, not a problem
// (the config may be the one it runs with), and the ports are then not
// tried: they are its own.
func (c *checked) startChecks(cfg *config.Daemon) {
	running := false
	inUse := func(err error) bool {
		if errors.Is(err, cluster.ErrInUse) {
			running = true
			c.warnings = append(c.warnings, err.Error()+": stop it before starting another vmhad with this config")
			return true
		}
		return false
	}
	if err := cluster.CheckSocket(cfg.Socket, cfg.SocketGroup); err != nil && !inUse(err) {
		c.startProblems = append(c.startProblems, err)
	}
	warnings, err := cluster.CheckDataDir(cfg.DataDir, cfg.NodeName)
	c.warnings = append(c.warnings, warnings...)
	if err != nil && !inUse(err) {
		c.startProblems = append(c.startProblems, err)
	}
	if w := cfg.Watchdog; w.Device != "" && !cfg.Witness {
		if err := checkWatchdog(w.Device); err != nil {
			c.startProblems = append(c.startProblems, err)
		}
	}
	if running {
		c.warnings = append(c.warnings, "the ports are not checked: the running vmhad holds them")
		return
	}
	bind := func(field, network, addr string) {
		var err error
		if network == "udp" {
			var pc net.PacketConn
			if pc, err = net.ListenPacket("udp", addr); err == nil {
				_ = pc.Close()
			}
		} else {
			var l net.Listener
			if l, err = net.Listen("tcp", addr); err == nil {
				_ = l.Close()
			}
		}
		if err != nil {
			c.startProblems = append(c.startProblems, fmt.Errorf("%s %s/%s: %w", field, addr, network, errors.Unwrap(err)))
		}
	}
	host := func(port int) string { return net.JoinHostPort(cfg.BindAddr, strconv.Itoa(port)) }
	bind("ports.raft", "tcp", host(cfg.Ports.Raft))
	bind("ports.api", "tcp", host(cfg.Ports.API))
	bind("ports.serf", "tcp", host(cfg.Ports.Serf))
	bind("ports.serf", "udp", host(cfg.Ports.Serf))
	if cfg.Web.Addr != "" {
		bind("web.addr", "tcp", cluster.MetricsListenAddr(cfg.Web.Addr))
	}
	if cfg.MetricsAddr != "" {
		bind("metrics_addr", "tcp", cluster.MetricsListenAddr(cfg.MetricsAddr))
	}
}

// checkWatchdog checks, without opening it (that arms it), that the
// watchdog device is what watchdog.Open takes: a character device or a
// FIFO this process may write.
func checkWatchdog(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("watchdog.device: %w", err)
	}
	if fi.Mode()&(os.ModeCharDevice|os.ModeNamedPipe) == 0 {
		return fmt.Errorf("watchdog.device %s: not a character device (nor a FIFO)", path)
	}
	if err := syscall.Access(path, 0o2); err != nil { // W_OK
		return fmt.Errorf("watchdog.device %s: %w", path, err)
	}
	return nil
}

// checkSecretFile checks that path, named by label in errors, is a regular
// file this process can read and that neither group nor others may access
// (mode & 0o077 == 0). Its content never appears in an error.
func checkSecretFile(label, path string) error {
	f, err := os.Open(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return fmt.Errorf("%s %s: %w", label, path, pe.Err)
		}
		return fmt.Errorf("%s %s: %w", label, path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("%s %s: %w", label, path, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s %s: not a regular file", label, path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%s %s has mode %04o: group and others must have no access (chmod 600 %s)", label, path, perm, path)
	}
	if _, err := f.Read(make([]byte, 1)); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s %s: cannot read it: %w", label, path, err)
	}
	return nil
}

// checkGossipKey checks the gossip key file that seeds the keyring. Once
// the keyring exists in data_dir the seed is not read any more: a missing
// seed is then only a warning.
func (c *checked) checkGossipKey(cfg *config.Daemon) {
	keyring := filepath.Join(cfg.DataDir, gossipKeyringFile)
	_, kerr := os.Stat(keyring)
	hasKeyring := kerr == nil
	if hasKeyring {
		if err := checkSecretFile("gossip keyring", keyring); err != nil {
			c.problems = append(c.problems, err)
		}
	}
	kf := cfg.Gossip.EncryptKeyFile
	if kf == "" {
		return
	}
	if err := checkSecretFile("gossip.encrypt_key_file", kf); err != nil {
		if hasKeyring && errors.Is(err, fs.ErrNotExist) {
			c.warnings = append(c.warnings, err.Error()+" (not used: the keyring "+keyring+" holds the keys)")
			return
		}
		c.problems = append(c.problems, err)
		return
	}
	raw, err := os.ReadFile(kf)
	if err != nil {
		c.problems = append(c.problems, fmt.Errorf("gossip.encrypt_key_file %s: %w", kf, err))
		return
	}
	if _, err := gossipkey.Decode(string(raw)); err != nil {
		c.problems = append(c.problems, fmt.Errorf("gossip.encrypt_key_file %s: %w", kf, err))
	}
}

// gossipKeyringFile is the keyring vmhad keeps in data_dir (cluster's
// loadKeyring).
const gossipKeyringFile = "serf.keyring"

// checkTLS checks what pki.Files.Config (run by config.Validate and at
// start) does not: that the certificate chains to the CA and that both are
// valid now, warning about one that expires within certWarnDays.
func (c *checked) checkTLS(f pki.Files, now time.Time) {
	if !f.Enabled() {
		return
	}
	if _, err := f.Config(); err != nil {
		return // config.Validate reported it
	}
	pair, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return // as above
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		c.problems = append(c.problems, fmt.Errorf("tls.cert_file %s: %w", f.Cert, err))
		return
	}
	caPEM, err := os.ReadFile(f.CA)
	if err != nil {
		c.problems = append(c.problems, fmt.Errorf("tls.ca_file %s: %w", f.CA, err))
		return
	}
	pool := x509.NewCertPool()
	cas, errs := pki.ParseCertificates(caPEM)
	for _, err := range errs {
		c.problems = append(c.problems, fmt.Errorf("tls.ca_file %s: %w", f.CA, err))
	}
	for _, ca := range cas {
		pool.AddCert(ca)
		c.checkValidity("tls.ca_file "+f.CA, ca, now, "a new CA means new certificates for every host")
	}
	leafOK := c.checkValidity("tls.cert_file "+f.Cert, leaf, now, "renew it: vmha tls issue "+leaf.Subject.CommonName)
	inter := x509.NewCertPool()
	for _, der := range pair.Certificate[1:] {
		if ic, err := x509.ParseCertificate(der); err == nil {
			inter.AddCert(ic)
		}
	}
	// The chain is checked on its own: at a time the certificate is valid
	// when it is not valid now (reported above).
	at := now
	if !leafOK {
		at = leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) / 2)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		var cie x509.CertificateInvalidError
		if errors.As(err, &cie) && cie.Reason == x509.Expired {
			return // a CA's validity, reported above
		}
		c.problems = append(c.problems, fmt.Errorf("tls.cert_file %s does not chain to the CA in tls.ca_file %s: %w", f.Cert, f.CA, err))
	}
}

// checkValidity reports a certificate that is not valid at now and warns
// about one that expires within certWarnDays; it returns whether it is
// valid now.
func (c *checked) checkValidity(label string, cert *x509.Certificate, now time.Time, hint string) bool {
	const day = 24 * time.Hour
	const layout = "2006-01-02 15:04 MST"
	switch {
	case now.After(cert.NotAfter):
		c.problems = append(c.problems, fmt.Errorf("%s: the certificate %q expired on %s (%s)", label, cert.Subject.CommonName, cert.NotAfter.UTC().Format(layout), hint))
		return false
	case now.Before(cert.NotBefore):
		c.problems = append(c.problems, fmt.Errorf("%s: the certificate %q is not valid before %s (is this host's clock right?)", label, cert.Subject.CommonName, cert.NotBefore.UTC().Format(layout)))
		return false
	case cert.NotAfter.Sub(now) < certWarnDays*day:
		c.warnings = append(c.warnings, fmt.Sprintf("%s: the certificate %q expires on %s, in %d days (%s)", label, cert.Subject.CommonName, cert.NotAfter.UTC().Format(layout), int(cert.NotAfter.Sub(now)/day), hint))
	}
	return true
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}

func newLogger(cfg *config.Daemon, w io.Writer) zerolog.Logger {
	lvl, err := zerolog.ParseLevel(cfg.Log.Level)
	if err != nil {
		lvl = zerolog.InfoLevel
	}
	if cfg.Log.Format == "console" {
		// Colour only on a terminal: journald and log files get the
		// escape codes as text otherwise.
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly, NoColor: !isTerminal(w)}
	}
	zerolog.TimeFieldFormat = time.RFC3339Nano
	// Durations carry their unit ("1.5s", "142ms"): a bare number in a
	// log line is a guess for whoever reads it.
	zerolog.DurationFieldFormat = zerolog.DurationFormatString
	return zerolog.New(w).Level(lvl).With().Timestamp().Str("node", cfg.NodeName).Logger()
}

// serve runs the daemon with what preflight checked and opened.
func serve(cfg *config.Daemon, log zerolog.Logger, pre *checked) error {
	defer pre.close()
	// The socket first: a second vmhad given the same path stops here,
	// before it joins gossip or raft, and never takes the live one's.
	sock, err := cluster.ClaimSocket(cfg.Socket, cfg.SocketGroup)
	if err != nil {
		return err
	}
	// Serve closes it; this covers a start that fails before.
	defer func() { _ = sock.Close() }()
	opts := cluster.Options{Config: cfg, Log: log, Fencing: pre.fence, Socket: sock}
	if cfg.Witness {
		// A witness votes only: it has no hypervisor, runs no VM and,
		// holding nothing, needs no fencing.
		opts.Fencing = nil
	} else {
		opts.Hypervisor = pre.hv
	}
	node, err := cluster.NewNode(opts)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 3)
	go func() { errc <- node.Serve(ctx) }()
	log.Info().Bool("witness", cfg.Witness).Str("hypervisor", cfg.HypervisorURI).Str("api", node.APIAddr()).Str("socket", cfg.Socket).Msg("vmhad started")
	if sec := node.Status().Security; sec.Insecure {
		// Loud on purpose: an error-level line at every start.
		log.Error().Bool("insecure_setting", cfg.Insecure).Str("bind_addr", cfg.BindAddr).Msg(sec.Explanation)
	}
	if cfg.MetricsAddr != "" {
		go func() {
			if err := node.ServeMetrics(ctx, cfg.MetricsAddr); err != nil {
				errc <- err
			}
		}()
	}
	if cfg.Web.Addr != "" {
		go func() {
			if err := node.ServeWeb(ctx); err != nil {
				errc <- err
			}
		}()
	}
	runDone := make(chan struct{})
	go func() { node.Run(ctx); close(runDone) }()
	// systemd (Type=notify): ready once the API listens and the loops
	// run; the watchdog is pinged only while the loops go round.
	if _, err := sdnotify.Notify("READY=1"); err != nil {
		log.Warn().Err(err).Msg("sd_notify READY")
	}
	go sdnotify.Watchdog(ctx, node.Healthy)
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
		stop()
	}
	_, _ = sdnotify.Notify("STOPPING=1")
	<-runDone
	// A clean stop leaves gossip so peers see "left", not "failed": a
	// daemon restart must not get its host fenced. Its VMs keep running.
	node.Shutdown(true)
	log.Info().Msg("vmhad stopped")
	if serveErr != nil && !errors.Is(serveErr, context.Canceled) {
		return serveErr
	}
	return nil
}

// fenceTopology describes how the other hosts fence this one, with the
// passwords read from their files. Every device is opened once here, so a
// bad fence config fails at start rather than during an incident. Device
// names get "@node" so that they are unique in the cluster.
func fenceTopology(cfg *config.Daemon) (*model.FenceTopology, error) {
	sp := cfg.FenceSpec()
	if len(sp.Hosts) == 0 {
		return nil, nil
	}
	set, err := devices.Build(sp)
	if err != nil {
		return nil, fmt.Errorf("fence: %w", err)
	}
	_ = set.Close()
	h := sp.Hosts[0]
	t := &model.FenceTopology{Action: h.Action, Delay: h.Delay, RandomDelay: h.RandomDelay}
	suffix := "@" + cfg.NodeName
	for _, d := range sp.Devices {
		r, err := d.Resolve()
		if err != nil {
			return nil, fmt.Errorf("fence: %w", err)
		}
		t.Devices = append(t.Devices, model.FenceDevice{Name: d.Name + suffix, Type: d.Type, Params: d.Params, Password: r.Secret.Store(), Timeout: d.Timeout})
	}
	for _, l := range h.Levels {
		var lvl []string
		for _, n := range l {
			lvl = append(lvl, n+suffix)
		}
		t.Levels = append(t.Levels, lvl)
	}
	return t, nil
}
