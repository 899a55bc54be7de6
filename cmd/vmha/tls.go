package main

import (
	"fmt"
	"net"

	"github.com/spf13/cobra"

	"github.com/vmha/vmha/pki"
)

func newTLSCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "tls", Short: "Cluster CA and certificates for raft, the peer API and remote vmha"}
	var dir, cluster string
	initCmd := &cobra.Command{
		Use:   "init --dir DIR [--cluster NAME]",
		Short: "Create the cluster CA (ca.crt, ca.key) in DIR",
		Long: `vmha tls init creates the cluster's certificate authority. Keep ca.key on one
admin machine (mode 0600); copy ca.crt to every host. It refuses to replace an
existing CA, which would lock every host out.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := pki.InitCA(dir, cluster); err != nil {
				return err
			}
			fmt.Fprintf(g.out, "cluster CA written to %s/%s and %s/%s\n", dir, pki.CACert, dir, pki.CAKey)
			return nil
		},
	}
	initCmd.Flags().StringVar(&dir, "dir", "/etc/vmha/tls", "directory for the CA")
	initCmd.Flags().StringVar(&cluster, "cluster", "vmha", "cluster name, in the CA's name")
	var ips []net.IP
	var dns []string
	var role string
	issue := &cobra.Command{
		Use:   "issue NAME --role host|operator|readonly --dir DIR [--ip IP]... [--dns NAME]...",
		Short: "Issue a certificate for a host, an operator or a read-only client, signed by the cluster CA",
		Long: `vmha tls issue NAME writes NAME.crt and NAME.key in DIR, signed by the CA there.
The role is in the certificate and decides what its holder may do:
  host      NAME is a host's node_name: raft, peer calls for itself only
  operator  a person or program that runs vmha against the cluster (--addr)
  readonly  status, lists, history and explanations; nothing that changes
The name a certificate carries is the actor recorded for what it does.`,
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := pki.ValidRole(role); err != nil {
				return usageError{err}
			}
			crt, key, err := pki.Issue(dir, args[0], role, ips, dns)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.out, "certificate %s, key %s (copy both to %s with %s/%s; tls: {ca_file, cert_file, key_file} in vmhad.yaml)\n", crt, key, args[0], dir, pki.CACert)
			return nil
		},
	}
	issue.Flags().StringVar(&dir, "dir", "/etc/vmha/tls", "directory of the CA")
	issue.Flags().StringVar(&role, "role", "", "host, operator or readonly (required)")
	issue.Flags().IPSliceVar(&ips, "ip", nil, "IP address of the host (repeatable)")
	issue.Flags().StringSliceVar(&dns, "dns", nil, "DNS name of the host (repeatable)")
	cmd.AddCommand(initCmd, issue)
	return cmd
}
