package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/pki"
)

// Exit codes scripts can rely on.
const (
	exitOK          = 0
	exitFailed      = 1 // the daemon refused or the operation failed
	exitUsage       = 2 // bad flags or arguments
	exitUnreachable = 3 // no daemon on the socket, or no leader to decide
)

const defaultSocket = "/run/vmha/vmhad.sock"

type globals struct {
	socket  string
	output  string
	timeout time.Duration
	out     io.Writer
	// addr and tls reach a remote vmhad's peer port, only with a client
	// certificate of the cluster CA.
	addr string
	tls  pki.Files
	// remote is the TLS config built from tls in PersistentPreRunE.
	remote *tls.Config
}

// usageError marks errors in what the user typed.
type usageError struct{ error }

func run(args []string, stdout, stderr io.Writer) int {
	g := &globals{out: stdout}
	root := newRoot(g)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	var es exitStatus
	if errors.As(err, &es) {
		// A verdict (vmha status --check, no quorum), not a failure.
		if es.msg != "" {
			fmt.Fprintln(stderr, "vmha: "+es.msg)
		}
		return es.code
	}
	fmt.Fprintln(stderr, "vmha: "+err.Error())
	return exitCode(err)
}

func exitCode(err error) int {
	var ue usageError
	var un *api.UnreachableError
	var se *api.StatusError
	switch {
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &un):
		return exitUnreachable
	case errors.As(err, &se) && se.Code == 503:
		return exitUnreachable
	}
	return exitFailed
}

func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "vmha",
		Short: "Keep KVM and Xen VMs running across host failures",
		Long: `vmha drives a vmha cluster: every hypervisor host runs vmhad, which detects
failed hosts over gossip, fences them (IPMI power off), and restarts their VMs
on the survivors. vmha talks to the local vmhad over its unix socket; writes
are forwarded to the cluster's leader.

Exit codes: 0 success, 1 the operation failed or was refused, 2 bad usage,
3 vmhad unreachable or no leader (quorum lost). vmha status exits 2 when the
cluster has no quorum; vmha status --check exits as a monitoring plugin does
(0 ok, 1 warning, 2 critical, 3 unknown).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if g.output != "text" && g.output != "json" {
				return usageError{fmt.Errorf("--output %q: want text or json", g.output)}
			}
			if g.addr != "" {
				// Remote access only with a client certificate: the peer
				// port of a TLS cluster accepts nothing else, and a plain
				// one must not be driven from afar.
				tc, err := g.tls.Config()
				if err != nil {
					return usageError{fmt.Errorf("--addr %s: %w (remote access needs --tls-ca, --tls-cert and --tls-key)", g.addr, err)}
				}
				g.remote = tc
			}
			return nil
		},
	}
	sock := os.Getenv("VMHA_SOCKET")
	if sock == "" {
		sock = defaultSocket
	}
	root.PersistentFlags().StringVar(&g.socket, "socket", sock, "vmhad's unix socket (env VMHA_SOCKET)")
	root.PersistentFlags().StringVarP(&g.output, "output", "o", "text", "output format of read commands: text or json")
	root.PersistentFlags().DurationVar(&g.timeout, "timeout", 20*time.Second, "how long to wait for the daemon")
	root.PersistentFlags().StringVar(&g.addr, "addr", os.Getenv("VMHA_ADDR"), "a remote vmhad's peer API (host:port) instead of the local socket; needs --tls-* (env VMHA_ADDR)")
	root.PersistentFlags().StringVar(&g.tls.CA, "tls-ca", os.Getenv("VMHA_TLS_CA"), "cluster CA certificate for --addr (env VMHA_TLS_CA)")
	root.PersistentFlags().StringVar(&g.tls.Cert, "tls-cert", os.Getenv("VMHA_TLS_CERT"), "client certificate for --addr, from vmha tls issue (env VMHA_TLS_CERT)")
	root.PersistentFlags().StringVar(&g.tls.Key, "tls-key", os.Getenv("VMHA_TLS_KEY"), "client key for --addr (env VMHA_TLS_KEY)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newStatusCmd(g), newHostCmd(g), newVMCmd(g), newFenceCmd(g), newKeygenCmd(g), newGossipCmd(g), newTLSCmd(g), newClusterCmd(g), newPlanCmd(g), newMigrateCmd(g), newImportCmd(g), newRulesCmd(g), newExplainCmd(g), newEvacuateCmd(g), newStorageCmd(g), newPinsCmd(g), newRebalanceCmd(g), newVersionCmd(g),
		newEventsCmd(g), newRelocateCmd(g), newAlertCmd(g), newDoctorCmd(g))
	root.AddCommand(newTokenCmd(g))
	root.AddCommand(newWhatIfCmd(g), newRecoveriesCmd(g))
	extendRoot(root, g) // gen-man, completion and its names: gen.go, complete.go
	strictGroups(root)
	return root
}

// strictGroups makes every command that only groups others (vmha, vmha vm,
// vmha fence devices, ...) refuse a word that is none of its subcommands
// as a usage error (exit 2), naming the ones it has; cobra would print the
// help and exit 0, and a script's typo (vmha vm stop web1) would pass for
// success. Without arguments a group prints its help.
func strictGroups(c *cobra.Command) {
	for _, sub := range c.Commands() {
		strictGroups(sub)
	}
	if !c.HasSubCommands() || c.Runnable() {
		return
	}
	if c.SuggestionsMinimumDistance <= 0 {
		c.SuggestionsMinimumDistance = 2
	}
	c.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		var names []string
		for _, sub := range cmd.Commands() {
			if sub.IsAvailableCommand() {
				names = append(names, sub.Name())
			}
		}
		msg := fmt.Sprintf("unknown command %q for %q (its commands: %s)", args[0], cmd.CommandPath(), strings.Join(names, ", "))
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			msg += "; did you mean " + strings.Join(s, " or ") + "?"
		}
		return usageError{errors.New(msg)}
	}
	c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
}

func (g *globals) client() *api.Client {
	if g.addr != "" {
		return api.NewTCPClient(g.addr, g.timeout, g.remote)
	}
	return api.NewUnixClient(g.socket, g.timeout)
}

func (g *globals) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), g.timeout)
}

// printJSON writes v as indented JSON, its empty lists as [] (jsonLists),
// an object with its "json_version" (versionedJSON).
func (g *globals) printJSON(v any) error {
	b, err := versionedJSON(v)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return err
	}
	out.WriteByte('\n')
	_, err = g.out.Write(out.Bytes())
	return err
}

// read GETs path and prints the answer: as JSON with -o json, else through
// text. Every read command is this, with its own table.
func read[T any](g *globals, path string, text func(T) error) error {
	ctx, cancel := g.ctx()
	defer cancel()
	var v T
	if err := g.client().Do(ctx, http.MethodGet, path, nil, &v, nil); err != nil {
		return err
	}
	if g.output == "json" {
		return g.printJSON(v)
	}
	return text(v)
}

// exactArgs is cobra.ExactArgs with a usage error.
func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{fmt.Errorf("want %s, got %d argument(s)", names, len(args))}
		}
		return nil
	}
}
