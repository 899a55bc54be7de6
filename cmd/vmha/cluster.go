package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vmha/vmha/internal/gossipkey"
	"github.com/vmha/vmha/model"
	"github.com/vmha/vmha/pki"
)

// clusterHost is one --host NAME=IP of vmha cluster init.
type clusterHost struct {
	Name string
	IP   net.IP
}

func parseClusterHosts(specs []string) ([]clusterHost, error) {
	var out []clusterHost
	seen := map[string]bool{}
	for _, s := range specs {
		name, ip, ok := strings.Cut(s, "=")
		if !ok {
			return nil, fmt.Errorf("--host %q: want NAME=IP (the address the host's vmhad binds and advertises)", s)
		}
		if err := model.ValidateName("host", name); err != nil {
			return nil, fmt.Errorf("--host %q: %w", s, err)
		}
		addr := net.ParseIP(ip)
		if addr == nil {
			return nil, fmt.Errorf("--host %q: %q is not an IP address", s, ip)
		}
		if seen[name] {
			return nil, fmt.Errorf("--host %q: host %s given twice", s, name)
		}
		seen[name] = true
		out = append(out, clusterHost{Name: name, IP: addr})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no --host: name every host of the cluster (--host NAME=IP, repeatable)")
	}
	return out, nil
}

func newClusterCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "cluster", Short: "The cluster as a whole: set up its security (CA, certificates, gossip key), maintenance mode"}
	var dir, name, operator string
	var hostSpecs []string
	initCmd := &cobra.Command{
		Use:   "init --dir DIR --host NAME=IP... [--operator NAME] [--cluster NAME]",
		Short: "Create everything a secure cluster needs: a CA, host and operator certificates, the gossip key, and each host's security settings",
		Long: `vmha cluster init is vmha's pcs cluster setup: run it once, on a trusted machine,
for a new cluster. In DIR it writes:

  ca/                      the cluster CA (ca.key never leaves this machine)
  hosts/NAME/              one folder per host, to copy to that host's /etc/vmha/:
      ca.crt host.crt host.key gossip.key vmhad-security.yaml
  operators/OPERATOR.{crt,key}  an operator certificate for remote vmha (--addr)

vmhad-security.yaml holds the host's bind address, mutual TLS files and gossip
key file: merge it into /etc/vmha/vmhad.yaml (paths assume /etc/vmha). Every
key file is mode 0600. Nothing is overwritten: DIR must not hold a cluster yet.

Later hosts get a certificate from the same CA: vmha tls issue NAME --role host
--dir DIR/ca --ip IP, and the gossip key from any host.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			hosts, err := parseClusterHosts(hostSpecs)
			if err != nil {
				return usageError{err}
			}
			if err := model.ValidateName("operator", operator); err != nil {
				return usageError{fmt.Errorf("--operator: %w", err)}
			}
			if slices.ContainsFunc(hosts, func(h clusterHost) bool { return h.Name == operator }) {
				return usageError{fmt.Errorf("--operator %s is also a host's name: a certificate has one role", operator)}
			}
			return clusterInit(g, dir, name, operator, hosts)
		},
	}
	initCmd.Flags().StringVar(&dir, "dir", "", "directory to create the cluster's files in (required; must not hold a cluster)")
	initCmd.Flags().StringVar(&name, "cluster", "vmha", "cluster name, in the CA's name")
	initCmd.Flags().StringVar(&operator, "operator", "admin", "name of the first operator certificate")
	initCmd.Flags().StringArrayVar(&hostSpecs, "host", nil, "a host of the cluster as NAME=IP (repeatable, required)")
	_ = initCmd.MarkFlagRequired("dir")
	cmd.AddCommand(initCmd, newClusterMaintenanceCmd(g))
	return cmd
}

// clusterInit writes the files vmha cluster init promises; on an error it
// leaves what it wrote for the operator to see, but never overwrites.
func clusterInit(g *globals, dir, name, operator string, hosts []clusterHost) error {
	caDir := filepath.Join(dir, "ca")
	if _, err := os.Stat(filepath.Join(caDir, pki.CACert)); err == nil {
		return fmt.Errorf("%s already holds a cluster CA: vmha cluster init makes a new cluster; issue more certificates with vmha tls issue --dir %s", dir, caDir)
	}
	for _, d := range []string{dir, caDir, filepath.Join(dir, "hosts"), filepath.Join(dir, "operators")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
		if err := os.Chmod(d, 0o700); err != nil {
			return err
		}
	}
	if err := pki.InitCA(caDir, name); err != nil {
		return err
	}
	key, err := gossipkey.New()
	if err != nil {
		return err
	}
	for _, h := range hosts {
		crt, k, err := pki.Issue(caDir, h.Name, pki.RoleHost, []net.IP{h.IP}, nil)
		if err != nil {
			return err
		}
		hd := filepath.Join(dir, "hosts", h.Name)
		if err := os.MkdirAll(hd, 0o700); err != nil {
			return err
		}
		files := []struct {
			name string
			from string
			data string
		}{
			{"ca.crt", filepath.Join(caDir, pki.CACert), ""},
			{"host.crt", crt, ""},
			{"host.key", k, ""},
			{"gossip.key", "", key + "\n"},
			{"vmhad-security.yaml", "", securitySnippet(h)},
		}
		for _, f := range files {
			data := []byte(f.data)
			if f.from != "" {
				if data, err = os.ReadFile(f.from); err != nil {
					return err
				}
			}
			if err := writeNew(filepath.Join(hd, f.name), data); err != nil {
				return err
			}
		}
		// The host's key lives in its folder only.
		_ = os.Remove(crt)
		_ = os.Remove(k)
	}
	crt, k, err := pki.Issue(caDir, operator, pki.RoleOperator, nil, nil)
	if err != nil {
		return err
	}
	for _, p := range [][2]string{{crt, operator + ".crt"}, {k, operator + ".key"}} {
		data, err := os.ReadFile(p[0])
		if err != nil {
			return err
		}
		if err := writeNew(filepath.Join(dir, "operators", p[1]), data); err != nil {
			return err
		}
		_ = os.Remove(p[0])
	}
	fmt.Fprintf(g.out, "cluster %s: CA in %s, %d hosts, operator %s\n", name, caDir, len(hosts), operator)
	for _, h := range hosts {
		fmt.Fprintf(g.out, "  copy %s/ to %s:/etc/vmha/ and merge vmhad-security.yaml into vmhad.yaml\n", filepath.Join(dir, "hosts", h.Name), h.Name)
	}
	fmt.Fprintf(g.out, "  remote vmha: vmha --addr HOST:PORT --tls-ca %s --tls-cert %s --tls-key %s status\n",
		filepath.Join(caDir, pki.CACert), filepath.Join(dir, "operators", operator+".crt"), filepath.Join(dir, "operators", operator+".key"))
	fmt.Fprintf(g.out, "  keep %s offline: whoever holds it can make hosts and operators\n", filepath.Join(caDir, pki.CAKey))
	return nil
}

// securitySnippet is a host's security settings for vmhad.yaml.
func securitySnippet(h clusterHost) string {
	return fmt.Sprintf(`# vmha cluster init: the security settings of host %[1]s. Merge into
# /etc/vmha/vmhad.yaml (the files of this folder go to /etc/vmha/).
node_name: %[1]s
bind_addr: %[2]s
advertise_addr: %[2]s
tls:
  ca_file: /etc/vmha/ca.crt
  cert_file: /etc/vmha/host.crt
  key_file: /etc/vmha/host.key
gossip:
  encrypt_key_file: /etc/vmha/gossip.key
`, h.Name, h.IP)
}

// writeNew writes a file that must not exist yet, mode 0600.
func writeNew(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
