package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/internal/gossipkey"
)

func newKeygenCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "keygen",
		Short: "Print a new random gossip encryption key (for gossip.encrypt_key_file)",
		Long: `vmha keygen prints a new 32-byte key, base64. Store it in a file of mode 0600 on
every host and name it in gossip.encrypt_key_file, or rotate it into a running
cluster with vmha gossip keys install/use/remove.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, err := gossipkey.New()
			if err != nil {
				return err
			}
			fmt.Fprintln(g.out, k)
			return nil
		},
	}
}

func newGossipCmd(g *globals) *cobra.Command {
	gossip := &cobra.Command{Use: "gossip", Short: "Gossip encryption keyring"}
	keys := &cobra.Command{
		Use:   "keys",
		Short: "List the gossip keys every member holds (by fingerprint, never the key)",
		Long: `vmha gossip keys lists the keyring of every member. Rotate a key without
downtime in three steps, each run once on any host:

  vmha keygen > new.key
  vmha gossip keys install new.key   # every member can now read the new key
  vmha gossip keys use new.key       # every member now sends with it
  vmha gossip keys remove old.key    # the old key is gone

A key is read from a file (or - for standard input), never from the command
line, so that it does not show in the process list or shell history. The
keyring is kept in each host's data directory across restarts.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := g.ctx()
			defer cancel()
			var v api.GossipKeys
			if err := g.client().Do(ctx, http.MethodGet, api.PathGossipKeys, nil, &v, nil); err != nil {
				return err
			}
			return printKeys(g, &v)
		},
	}
	for _, op := range []struct{ name, short string }{
		{"install", "Add a key to every member's keyring"},
		{"use", "Make an installed key the one every member sends with"},
		{"remove", "Remove a key that is no longer the primary one"},
	} {
		keys.AddCommand(&cobra.Command{
			Use:   op.name + " KEYFILE|-",
			Short: op.short,
			Args:  exactArgs(1, "KEYFILE or -"),
			RunE: func(cmd *cobra.Command, args []string) error {
				key, err := readKey(cmd.InOrStdin(), args[0])
				if err != nil {
					return err
				}
				if _, err := gossipkey.Decode(key); err != nil {
					return usageError{fmt.Errorf("key in %s: %w", args[0], err)}
				}
				ctx, cancel := g.ctx()
				defer cancel()
				var v api.GossipKeys
				if err := g.client().Do(ctx, http.MethodPost, api.PathGossipKeys, api.GossipKeyOp{Op: op.name, Key: key}, &v, nil); err != nil {
					return err
				}
				return printKeys(g, &v)
			},
		})
	}
	gossip.AddCommand(keys)
	return gossip
}

func readKey(stdin io.Reader, path string) (string, error) {
	var b []byte
	var err error
	if path == "-" {
		b, err = io.ReadAll(io.LimitReader(stdin, 4096))
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return "", fmt.Errorf("read key: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

func printKeys(g *globals, v *api.GossipKeys) error {
	if g.output == "json" {
		return g.printJSON(v)
	}
	fmt.Fprintf(g.out, "%d of %d members answered\n", v.Responses, v.Members)
	tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY (FINGERPRINT)\tINSTALLED ON\tPRIMARY ON")
	for _, k := range v.Keys {
		fmt.Fprintf(tw, "%s\t%d\t%d\n", k.Fingerprint, k.Members, k.Primary)
	}
	_ = tw.Flush()
	for node, msg := range v.Errors {
		fmt.Fprintf(g.out, "%s: %s\n", node, msg)
	}
	return nil
}
