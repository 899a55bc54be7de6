package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// extendRoot adds what the finished command tree gets on top of the
// commands themselves: the hidden gen-man command that make install runs,
// cobra's completion command (vmha completion bash|zsh|fish) made now
// rather than at Execute so that its help can say what vmha completes, and
// the dynamic completion of VM and host names (complete.go).
func extendRoot(root *cobra.Command, g *globals) {
	root.AddCommand(newGenManCmd())
	root.InitDefaultCompletionCmd()
	if c, _, err := root.Find([]string{"completion"}); err == nil && c.Name() == "completion" {
		c.Long += completionHelp
	}
	registerCompletions(root, g)
}

const completionHelp = `
Beyond commands and flags, the scripts complete the cluster's names: VMs
(vmha vm stop <Tab>, migrate, relocate, explain, pins clear, events --vm...)
and hosts (evacuate, fence, host maintenance, migrate --to, events --host...),
read from the local vmhad's status (--socket, env VMHA_SOCKET) within a
second. When vmhad cannot be reached, or its socket does not admit the user
(vmhad.yaml's socket_group), they offer no names.

The Debian package and make install put the scripts where the shells look:
/usr/share/bash-completion/completions/vmha, /usr/share/zsh/vendor-completions/_vmha
(make install: $PREFIX/share/zsh/site-functions/_vmha) and
/usr/share/fish/vendor_completions.d/vmha.fish.
`

// newGenManCmd writes a man page (section 1) for every command: vmha(1),
// vmha-vm-start(1), ... Hidden: it is for make install and packagers. The
// pages' date is $SOURCE_DATE_EPOCH when set (reproducible builds), else
// today.
func newGenManCmd() *cobra.Command {
	var source string
	c := &cobra.Command{
		Use:    "gen-man DIR",
		Short:  "Write the man pages of every vmha command into DIR",
		Hidden: true,
		Args:   exactArgs(1, "DIR"),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			if source == "" {
				source = "vmha " + buildVersion().Version
			}
			root := cmd.Root()
			hdr := &doc.GenManHeader{Section: "1", Source: source, Manual: "vmha manual"}
			if err := doc.GenManTree(root, hdr, dir); err != nil {
				return fmt.Errorf("gen-man %s: %w", dir, err)
			}
			return nil
		},
	}
	c.Flags().StringVar(&source, "source", "", `the pages' footer, e.g. "vmha 1.2.0" (default: vmha and the version vmha version reports)`)
	return c
}
