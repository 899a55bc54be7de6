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
	"github.com/vmha/vmha/fencing"
	"github.com/vmha/vmha/fencing/ipmi"
	"github.com/vmha/vmha/hypervisor"
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
	dev, err := fenceDevice(cfg)
	if err != nil {
		return err
	}
	hv, err := hypervisor.OpenLibvirt(cfg.HypervisorURI, log)
	if err != nil {
		return fmt.Errorf("hypervisor %s: %w", cfg.HypervisorURI, err)
	}
	defer func() { _ = hv.Close() }()
	node, err := cluster.NewNode(cluster.Options{
		Config: cfg, Log: log, Hypervisor: hv, FenceDevice: dev,
		Fencer: func(d *model.FenceDevice) (fencing.Device, error) {
			return ipmi.New(ipmi.Config{
				Host: d.Address, Port: d.Port, User: d.User, Password: d.Password.Load(),
				Interface: d.Interface, CipherSuite: d.CipherSuite, Timeout: cfg.Fencing.CallTimeout,
			})
		},
	})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 2)
	go func() { errc <- node.Serve(ctx) }()
	log.Info().Str("hypervisor", cfg.HypervisorURI).Str("api", node.APIAddr()).Str("socket", cfg.Socket).Msg("vmhad started")
	if cfg.MetricsAddr != "" {
		go func() {
			if err := node.ServeMetrics(ctx, cfg.MetricsAddr); err != nil {
				errc <- err
			}
		}()
	}
	runDone := make(chan struct{})
	go func() { node.Run(ctx); close(runDone) }()
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
		stop()
	}
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

// fenceDevice describes this host's BMC for the cluster, with the password
// read from its file.
func fenceDevice(cfg *config.Daemon) (*model.FenceDevice, error) {
	b := cfg.BMC
	if b.Address == "" {
		return nil, nil
	}
	pw, err := ipmi.PasswordFromFile(b.PasswordFile)
	if err != nil {
		return nil, fmt.Errorf("bmc.password_file: %w", err)
	}
	dev := &model.FenceDevice{
		Type: b.Type, Address: b.Address, Port: b.Port, User: b.User, Password: pw.Store(),
		Interface: b.Interface, CipherSuite: b.CipherSuite,
	}
	// Check the device description now, so a bad BMC config fails at start
	// rather than during an incident.
	if _, err := ipmi.New(ipmi.Config{Host: dev.Address, Port: dev.Port, User: dev.User, Password: pw, Interface: dev.Interface, CipherSuite: dev.CipherSuite, Timeout: cfg.Fencing.CallTimeout}); err != nil {
		return nil, fmt.Errorf("bmc: %w", err)
	}
	return dev, nil
}
