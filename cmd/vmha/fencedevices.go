package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/internal/secret"
	"github.com/vmha/vmha/model"
)

// The operator's side of fence configuration (docs/fencing.md, "Fence
// configuration is code"): a host's first registration brings its fence
// devices; after that only these commands change them, and each change is
// kept in the fence history with who made it.

// fenceDevicesSubcommands adds accept and set to vmha fence devices.
func fenceDevicesSubcommands(g *globals, devices *cobra.Command) {
	var acceptYes bool
	accept := &cobra.Command{
		Use:   "accept HOST [--yes]",
		Short: "Fence HOST with the devices it offers (vmha fence devices lists offers)",
		Long: `vmha fence devices accept HOST makes the cluster fence HOST with the fence
devices HOST offered when it last registered, in place of the ones it uses now.

A host's fence devices come from its vmhad.yaml only at its first
registration: fence configuration runs as root on the leader, and a later
registration is a peer's message that must not change it. When a host
registers again with other devices (a new BMC, a rotated BMC password), the
cluster keeps its own, shows the offer in vmha status and vmha fence devices,
and waits for this command. It is kept in the fence history with your name
and the devices before and after.

Without a terminal to confirm on, --yes is required.`,
		Args: exactArgs(1, "HOST"),
		RunE: func(cmd *cobra.Command, args []string) error {
			host := args[0]
			if err := confirm(cmd, acceptYes, host, fmt.Sprintf("The cluster will fence %s with the devices it offers (vmha fence devices shows them), not the ones it uses now.", host)); err != nil {
				return err
			}
			return changeDevices(g, api.PathFence+"/"+url.PathEscape(host)+"/devices/accept", api.FenceDevicesAccept{RequestedBy: whoAmI()})
		},
	}
	accept.Flags().BoolVar(&acceptYes, "yes", false, "do not ask for confirmation")

	var file string
	var allowUnsafe, setYes bool
	set := &cobra.Command{
		Use:   "set HOST --file SPEC [--allow-unsafe] [--yes]",
		Short: "Set HOST's fence devices from a fencing spec (the format of vmhad.yaml's fence: block)",
		Long: `vmha fence devices set HOST --file SPEC replaces HOST's fence devices and
levels with those of SPEC, a YAML file in the format of vmhad.yaml's fence:
block (action, delay, random_delay, devices, levels). Device names get
"@HOST", as vmhad gives them. Passwords are read here, from each device's
password_file or password_env, and sent to the leader, which replicates them;
they are never printed.

The devices must pass vmha's allow-lists (docs/fencing.md): fence agents of a
known list with only the options that reach and log in to their device, and
libvirt URIs over tls or tcp to a named host. A device outside them (an agent
given as a path, an option that names a program or file, a qemu+ssh URI)
needs allow_unsafe: true on the device in SPEC and --allow-unsafe here: it
then runs as root on whichever host leads. Only this command can set
allow_unsafe; a host's own registration never can.

The change is kept in the fence history with your name and the devices
before and after. Without a terminal to confirm on, --yes is required.`,
		Args: exactArgs(1, "HOST"),
		RunE: func(cmd *cobra.Command, args []string) error {
			host := args[0]
			if file == "" {
				return usageError{errors.New("--file SPEC is required")}
			}
			t, unsafe, err := readFenceSpec(host, file)
			if err != nil {
				return usageError{err}
			}
			if len(unsafe) > 0 && !allowUnsafe {
				return usageError{fmt.Errorf("%s: device %s sets allow_unsafe: the allow-lists do not apply to it and it runs as root on the leader; add --allow-unsafe to go ahead", file, strings.Join(unsafe, ", "))}
			}
			what := fmt.Sprintf("The cluster will fence %s with %s.", host, t.Describe())
			if len(unsafe) > 0 {
				what += fmt.Sprintf(" Device %s runs without the allow-lists, as root on the leader.", strings.Join(unsafe, ", "))
			}
			if err := confirm(cmd, setYes, host, what); err != nil {
				return err
			}
			return changeDevices(g, api.PathFence+"/"+url.PathEscape(host)+"/devices", api.FenceDevicesSet{Fencing: t, AllowUnsafe: allowUnsafe, RequestedBy: whoAmI()})
		},
	}
	set.Flags().StringVar(&file, "file", "", "the fencing spec (YAML, the format of vmhad.yaml's fence: block)")
	set.Flags().BoolVar(&allowUnsafe, "allow-unsafe", false, "accept devices that set allow_unsafe: they run outside the allow-lists, as root on the leader")
	set.Flags().BoolVar(&setYes, "yes", false, "do not ask for confirmation")
	devices.AddCommand(accept, set)
}

func changeDevices(g *globals, path string, body any) error {
	ctx, cancel := g.ctx()
	defer cancel()
	var rec model.FenceRecord
	if err := g.client().Do(ctx, http.MethodPost, path, body, &rec, nil); err != nil {
		return err
	}
	if g.output == "json" {
		return g.printJSON(rec)
	}
	fmt.Fprintf(g.out, "fence devices of %s changed by %s (%s)\n  before: %s\n  after:  %s\n", rec.Host, rec.Requester, rec.Action, rec.Before, rec.After)
	return nil
}

// fenceSpecFile is the fence: block of vmhad.yaml, read on its own.
type fenceSpecFile struct {
	Action      string            `yaml:"action"`
	Delay       time.Duration     `yaml:"delay"`
	RandomDelay time.Duration     `yaml:"random_delay"`
	Devices     []fenceSpecDevice `yaml:"devices"`
	Levels      [][]string        `yaml:"levels"`
}

type fenceSpecDevice struct {
	Name         string         `yaml:"name"`
	Type         string         `yaml:"type"`
	Params       map[string]any `yaml:"params"`
	PasswordFile string         `yaml:"password_file"`
	PasswordEnv  string         `yaml:"password_env"`
	Timeout      time.Duration  `yaml:"timeout"`
	AllowUnsafe  bool           `yaml:"allow_unsafe"`
}

// maxSpecFile bounds the spec file read.
const maxSpecFile = 1 << 20

// readFenceSpec reads a fencing spec for host from path: strictly (an
// unknown key is an error), with its passwords read from their files or
// environment variables, and device names suffixed "@host" as vmhad does.
// It also lists the devices that set allow_unsafe. Everything else about
// the devices is checked by the leader, which names the device, the param
// and why.
func readFenceSpec(host, path string) (*model.FenceTopology, []string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSpecFile+1))
	if err != nil {
		return nil, nil, err
	}
	if len(data) > maxSpecFile {
		return nil, nil, fmt.Errorf("%s is larger than %d bytes", path, maxSpecFile)
	}
	var sf fenceSpecFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&sf); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil, fmt.Errorf("%s is empty", path)
		}
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(sf.Devices) == 0 || len(sf.Levels) == 0 {
		return nil, nil, fmt.Errorf("%s: a fence spec needs devices and levels (the format of vmhad.yaml's fence: block)", path)
	}
	suffix := "@" + host
	t := &model.FenceTopology{Action: sf.Action, Delay: sf.Delay, RandomDelay: sf.RandomDelay}
	var unsafe []string
	for _, d := range sf.Devices {
		md := model.FenceDevice{Name: d.Name + suffix, Type: d.Type, Timeout: d.Timeout, AllowUnsafe: d.AllowUnsafe, Params: map[string]string{}}
		for k, v := range d.Params {
			s, err := paramString(v)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: fence device %s: param %s: %w", path, d.Name, k, err)
			}
			md.Params[k] = s
		}
		pw, err := devicePassword(d)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
		md.Password = pw.Store()
		if d.AllowUnsafe {
			unsafe = append(unsafe, md.Name)
		}
		t.Devices = append(t.Devices, md)
	}
	for _, l := range sf.Levels {
		var lvl []string
		for _, n := range l {
			lvl = append(lvl, n+suffix)
		}
		t.Levels = append(t.Levels, lvl)
	}
	sort.Strings(unsafe)
	return t, unsafe, nil
}

// paramString turns a YAML scalar into the string a param holds, as
// vmhad.yaml's loader does (a number as written, a boolean as 1 or 0).
func paramString(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		if x {
			return "1", nil
		}
		return "0", nil
	case int, int64, uint64, float64:
		return fmt.Sprint(x), nil
	case nil:
		return "", nil
	}
	return "", fmt.Errorf("want a single value, not a %T", v)
}

// devicePassword reads a device's password from its file or environment
// variable (none: empty). Errors name the file or variable, never the value.
func devicePassword(d fenceSpecDevice) (secret.String, error) {
	switch {
	case d.PasswordFile != "" && d.PasswordEnv != "":
		return secret.String{}, fmt.Errorf("fence device %s: password_file and password_env are both set: choose one", d.Name)
	case d.PasswordFile != "":
		pw, err := secret.FromFile(d.PasswordFile)
		if err != nil {
			return secret.String{}, fmt.Errorf("fence device %s: password_file: %w", d.Name, err)
		}
		return pw, nil
	case d.PasswordEnv != "":
		v, ok := os.LookupEnv(d.PasswordEnv)
		if !ok || v == "" {
			return secret.String{}, fmt.Errorf("fence device %s: password_env: environment variable %s is not set or empty", d.Name, d.PasswordEnv)
		}
		return secret.New(v), nil
	}
	return secret.String{}, nil
}
