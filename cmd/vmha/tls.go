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
	issue := &cobra.Command{
		Use:   "issue NAME --dir DIR [--ip IP]... [--dns NAME]...",
		Short: "Issue a certificate for host NAME (or an operator) signed by the cluster CA",
		Long: `vmha tls issue NAME writes NAME.crt and NAME.key in DIR, signed by the CA there.
For a host, NAME is its node_name: peers accept raft and peer calls only from
certificates that name a host of the cluster. For an operator (remote vmha
--addr), any other name works for the operator commands.`,
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			crt, key, err := pki.Issue(dir, args[0], ips, dns)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.out, "certificate %s, key %s (copy both to %s with %s/%s; tls: {ca_file, cert_file, key_file} in vmhad.yaml)\n", crt, key, args[0], dir, pki.CACert)
			return nil
		},
	}
	issue.Flags().StringVar(&dir, "dir", "/etc/vmha/tls", "directory of the CA")
	issue.Flags().IPSliceVar(&ips, "ip", nil, "IP address of the host (repeatable)")
	issue.Flags().StringSliceVar(&dns, "dns", nil, "DNS name of the host (repeatable)")
	cmd.AddCommand(initCmd, issue)
	return cmd
}
