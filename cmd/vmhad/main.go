// Command vmhad is the vmha daemon that runs on every hypervisor host.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/vmha/vmha/cluster"
	"github.com/vmha/vmha/config"
	"github.com/vmha/vmha/fencing/spec"
	"github.com/vmha/vmha/hypervisor"
	"github.com/vmha/vmha/internal/sdnotify"
	"github.com/vmha/vmha/model"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	var checkOnly bool
	cmd := &cobra.Command{
		Use:   "vmhad",
		Short: "vmha host daemon: membership, replicated state, fencing and VM recovery",
		Long: `vmhad runs on every hypervisor host of a vmha cluster. It gossips with the
other hosts, keeps the replicated cluster state, and, on the leader, fences
lost hosts and places their VMs on survivors; on every host it reconciles the
local hypervisor to the committed placements.

Configuration: ` + config.DefaultPath + ` (or --config), VMHA_* environment
variables, then flags.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, _ := cmd.Flags().GetString("config")
			cfg, err := config.Load(path, cmd.Flags())
			if err != nil {
				return err
			}
			if checkOnly {
				fmt.Fprintf(stderr, "config ok: node %s, hypervisor %s\n", cfg.NodeName, cfg.HypervisorURI)
				return nil
			}
			return serve(cfg, stderr)
		},
	}
	config.Flags(cmd.Flags())
	cmd.Flags().BoolVar(&checkOnly, "check-config", false, "validate the configuration and exit")
	cmd.SetArgs(args)
	cmd.SetErr(stderr)
	if err := cmd.Execute(); err != nil {
		fmt.Fprintln(stderr, "vmhad: "+err.Error())
		return 1
	}
	return 0
}

func newLogger(cfg *config.Daemon, w io.Writer) zerolog.Logger {
	lvl, err := zerolog.ParseLevel(cfg.Log.Level)
	if err != nil {
		lvl = zerolog.InfoLevel
	}
	if cfg.Log.Format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	}
	zerolog.TimeFieldFormat = time.RFC3339Nano
	return zerolog.New(w).Level(lvl).With().Timestamp().Str("node", cfg.NodeName).Logger()
}

func serve(cfg *config.Daemon, stderr io.Writer) error {
	log := newLogger(cfg, stderr)
	fence, err := fenceTopology(cfg)
	if err != nil {
		return err
	}
	// The socket first: a second vmhad given the same path stops here,
	// before it joins gossip or raft, and never takes the live one's.
	sock, err := cluster.ClaimSocket(cfg.Socket, cfg.SocketGroup)
	if err != nil {
		return err
	}
	// Serve closes it; this covers a start that fails before.
	defer sock.Close()
	opts := cluster.Options{Config: cfg, Log: log, Fencing: fence, Socket: sock}
	if cfg.Witness {
		// A witness votes only: it has no hypervisor, runs no VM and,
		// holding nothing, needs no fencing.
		opts.Fencing = nil
	} else {
		hv, err := hypervisor.OpenLibvirt(cfg.HypervisorURI, log)
		if err != nil {
			return fmt.Errorf("hypervisor %s: %w", cfg.HypervisorURI, err)
		}
		defer func() { _ = hv.Close() }()
		opts.Hypervisor = hv
	}
	node, err := cluster.NewNode(opts)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 2)
	go func() { errc <- node.Serve(ctx) }()
	log.Info().Bool("witness", cfg.Witness).Str("hypervisor", cfg.HypervisorURI).Str("api", node.APIAddr()).Str("socket", cfg.Socket).Msg("vmhad started")
	if cfg.MetricsAddr != "" {
		go func() {
			if err := node.ServeMetrics(ctx, cfg.MetricsAddr); err != nil {
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
	set, err := spec.Build(sp)
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
