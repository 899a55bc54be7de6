package main

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vmha/vmha/api"
)

// Dynamic shell completion: the names of the cluster's VMs and hosts, read
// from the local vmhad's status, and of its cluster file systems, read from
// its storage check (vmha storage check), when the shell asks (vmha __complete ...,
// the hidden command cobra's completion scripts call). The commands are
// found by their path in the finished command tree, so the command files
// stay as they are.

// completeTimeout bounds the status read behind one completion: a shell
// waits for it at every Tab, and when vmhad does not answer it offers
// nothing rather than hang.
const completeTimeout = time.Second

// nameKind is what a positional argument or a flag names.
type nameKind int

const (
	vmName   nameKind = iota
	hostName          // any host of the cluster, witnesses included
	vmTarget          // a host VMs can run on: not a witness
	fsName            // a cluster file system configured on the answering host (storage: in vmhad.yaml)
)

// argCompletion says what each positional argument of a command names;
// with variadic, the last kind repeats (vmha pins clear VM...).
type argCompletion struct {
	args     []nameKind
	variadic bool
}

// argCompletions maps command paths (without the leading "vmha ") to what
// their positional arguments name.
var argCompletions = map[string]argCompletion{
	"vm start":                {args: []nameKind{vmName}},
	"vm stop":                 {args: []nameKind{vmName}},
	"vm show":                 {args: []nameKind{vmName}},
	"vm update":               {args: []nameKind{vmName}},
	"vm diff":                 {args: []nameKind{vmName}},
	"vm remove":               {args: []nameKind{vmName}},
	"vm set":                  {args: []nameKind{vmName}},
	"vm cleanup":              {args: []nameKind{vmName}},
	"vm failcount":            {args: []nameKind{vmName}},
	"vm manage":               {args: []nameKind{vmName}},
	"vm unmanage":             {args: []nameKind{vmName}},
	"migrate":                 {args: []nameKind{vmName}},
	"relocate":                {args: []nameKind{vmName}},
	"explain":                 {args: []nameKind{vmName}},
	"pins clear":              {args: []nameKind{vmName}, variadic: true},
	"rules location add":      {args: []nameKind{vmName, vmTarget}},
	"rules location remove":   {args: []nameKind{vmName, vmTarget}},
	"rules colocation add":    {args: []nameKind{vmName, vmName}},
	"rules colocation remove": {args: []nameKind{vmName, vmName}},
	"evacuate":                {args: []nameKind{hostName}},
	"host online":             {args: []nameKind{hostName}},
	"host maintenance":        {args: []nameKind{hostName}},
	"host attr set":           {args: []nameKind{hostName}},
	"host attr delete":        {args: []nameKind{hostName}},
	"host remove":             {args: []nameKind{hostName}},
	"fence":                   {args: []nameKind{hostName}},
	"fence test":              {args: []nameKind{hostName}},
	"fence confirm":           {args: []nameKind{hostName}},
	"fence devices accept":    {args: []nameKind{hostName}},
	"fence devices set":       {args: []nameKind{hostName}},
	"storage init":            {args: []nameKind{fsName}},
}

// flagCompletions maps command paths to the flags whose value names a VM
// or a host.
var flagCompletions = map[string]map[string]nameKind{
	"events":     {"vm": vmName, "host": hostName},
	"evacuate":   {"storage": fsName},
	"migrate":    {"to": vmTarget},
	"relocate":   {"to": vmTarget},
	"vm add":     {"prefer": vmTarget},
	"vm cleanup": {"host": hostName},
	"whatif":     {"fail": vmTarget, "standby": vmTarget},
}

// registerCompletions hooks the name completions into root's finished
// command tree. A command that already has its own ValidArgsFunction keeps
// it. A path of the tables that the tree lacks is skipped here (the tests
// check that every one exists).
func registerCompletions(root *cobra.Command, g *globals) {
	walkCommands(root, func(c *cobra.Command) {
		path := strings.TrimPrefix(c.CommandPath(), root.Name()+" ")
		if ac, ok := argCompletions[path]; ok && c.ValidArgsFunction == nil {
			c.ValidArgsFunction = func(_ *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
				kind, ok := ac.kindAt(len(args))
				if !ok {
					return nil, cobra.ShellCompDirectiveNoFileComp
				}
				return completeNames(g, kind, toComplete, args), cobra.ShellCompDirectiveNoFileComp
			}
		}
		for flag, kind := range flagCompletions[path] {
			if c.Flags().Lookup(flag) == nil {
				continue
			}
			// An error means the flag has a completion already: keep it.
			_ = c.RegisterFlagCompletionFunc(flag, func(_ *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
				return completeNames(g, kind, toComplete, nil), cobra.ShellCompDirectiveNoFileComp
			})
		}
	})
}

// kindAt is what the argument at position i names; false when the command
// takes no argument there that completion knows.
func (a argCompletion) kindAt(i int) (nameKind, bool) {
	switch {
	case i < len(a.args):
		return a.args[i], true
	case a.variadic && len(a.args) > 0:
		return a.args[len(a.args)-1], true
	}
	return 0, false
}

func walkCommands(c *cobra.Command, f func(*cobra.Command)) {
	f(c)
	for _, sub := range c.Commands() {
		walkCommands(sub, f)
	}
}

// completeNames lists the names of kind that start with prefix, each with
// a short description (shown by zsh and fish), leaving out the ones already
// given in args. Nothing when vmhad cannot be reached.
func completeNames(g *globals, kind nameKind, prefix string, args []string) []cobra.Completion {
	var out []cobra.Completion
	add := func(name, desc string) {
		if strings.HasPrefix(name, prefix) && !slices.Contains(args, name) {
			out = append(out, cobra.CompletionWithDesc(name, desc))
		}
	}
	if kind == fsName {
		var c api.StorageCheck
		if err := completionGet(g, api.PathLocalStorage, &c); err != nil {
			return nil
		}
		for _, f := range c.FileSystems {
			add(f.Name, fsDescription(f))
		}
		return out
	}
	var st api.Status
	if err := completionGet(g, api.PathStatus, &st); err != nil {
		return nil
	}
	switch kind {
	case vmName:
		for _, vm := range st.VMs {
			add(vm.Name, vmDescription(vm))
		}
	case hostName, vmTarget:
		for _, h := range st.Hosts {
			if kind == vmTarget && h.Witness {
				continue
			}
			add(h.Name, hostDescription(h))
		}
	}
	return out
}

func vmDescription(vm api.VM) string {
	switch {
	case vm.Host == "":
		return vm.State + ", not placed"
	case vm.State == "":
		return "on " + vm.Host
	}
	return vm.State + " on " + vm.Host
}

func fsDescription(f api.StorageFS) string {
	switch {
	case !f.Ready:
		return "not ready"
	case !f.FormatOK:
		return "ready, wrongly formatted"
	}
	return "ready"
}

func hostDescription(h api.Host) string {
	d := string(h.State)
	if h.Witness {
		d += ", witness"
	}
	if h.Leader {
		d += ", leader"
	}
	return d
}

// completionGet reads path from vmhad into v the way every command does
// (the --socket, or --addr with the --tls-* files), within
// completeTimeout. PersistentPreRunE does not run for completions, so the
// remote TLS config is built here.
func completionGet(g *globals, path string, v any) error {
	timeout := min(completeTimeout, g.timeout)
	if timeout <= 0 {
		timeout = completeTimeout
	}
	var c *api.Client
	if g.addr != "" {
		tc, err := g.tls.Config()
		if err != nil {
			return err
		}
		c = api.NewTCPClient(g.addr, timeout, tc)
	} else {
		c = api.NewUnixClient(g.socket, timeout)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return c.Do(ctx, http.MethodGet, path, nil, v, nil)
}
