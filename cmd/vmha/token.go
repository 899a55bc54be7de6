package main

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vmha/vmha/api"
)

// newTokenCmd is vmha token: the web console's API tokens (docs/tokens.md).
func newTokenCmd(g *globals) *cobra.Command {
	token := &cobra.Command{
		Use:   "token",
		Short: "API tokens: the web console's logins (create, list, revoke; docs/tokens.md)",
		Long: `API tokens are what an operator gives a person for the web console: a bearer
secret that authenticates as OWNER with the operator or readonly role until it
expires. The cluster keeps only the SHA-256 of each secret, in its replicated
state, so any host can verify a token and none can show it again. Managing
tokens needs the operator role.`,
	}
	token.AddCommand(newTokenCreateCmd(g), newTokenListCmd(g), newTokenRevokeCmd(g))
	return token
}

func newTokenCreateCmd(g *globals) *cobra.Command {
	var role, ttl, comment string
	c := &cobra.Command{
		Use:   "create OWNER --role operator|readonly --ttl D [--comment TEXT]",
		Short: "Issue an API token for OWNER; the token is shown once, now",
		Long: `Issue an API token for OWNER (a person's name, up to 64 characters) with the
operator or readonly role, valid for --ttl: a duration such as 8h or 90m, or
a number of days such as 30d (at most 400d).

The token (vmha_<id>_<secret>) is printed once, on standard output: vmha keeps
only its hash and cannot show it again. Hand it over safely; vmha token revoke
ID ends it at once. With -o json the answer is {id, token, owner, role,
expires}.`,
		Args: exactArgs(1, "OWNER"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if role != "operator" && role != "readonly" {
				return usageError{fmt.Errorf("--role %q: want operator or readonly", role)}
			}
			if ttl == "" {
				return usageError{fmt.Errorf("--ttl is required (e.g. 8h or 30d)")}
			}
			d, err := api.ParseTTL(ttl)
			if err != nil {
				return usageError{fmt.Errorf("--ttl: %w", err)}
			}
			req := api.TokenRequest{Owner: args[0], Role: role, TTL: d, Comment: comment, RequestedBy: whoAmI()}
			ctx, cancel := g.ctx()
			defer cancel()
			var out api.TokenCreated
			if err := g.client().Do(ctx, http.MethodPost, api.PathTokens, req, &out, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "vmha: this is the only time token %s is shown (the cluster keeps its hash only): store it now. vmha token revoke %s ends it.\n", out.ID, out.ID)
			if g.output == "json" {
				return g.printJSON(out)
			}
			fmt.Fprintf(g.out, "token %s for %s (%s), expires %s (in %s):\n\n    %s\n\n", out.ID, out.Owner, out.Role,
				out.Expires.Local().Format(time.DateTime), time.Until(out.Expires).Round(time.Minute), out.Token)
			return nil
		},
	}
	c.Flags().StringVar(&role, "role", "", "operator or readonly (required)")
	c.Flags().StringVar(&ttl, "ttl", "", "how long the token lives: 8h, 90m, 30d... at most 400d (required)")
	c.Flags().StringVar(&comment, "comment", "", "what the token is for, shown by vmha token list")
	return c
}

func newTokenListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the API tokens: id, owner, role, created, expires, by whom, expired (never a secret)",
		Long: `List the API tokens the cluster holds, oldest first. An expired token stays
listed (EXPIRED yes) until it is revoked. Neither the secret nor its hash is
ever shown. -o json: an array of {id, owner, role, created, expires,
created_by, comment, expired}.`,
		Args: exactArgs(0, "no argument"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return read(g, api.PathTokens, func(ts []api.Token) error {
				if len(ts) == 0 {
					fmt.Fprintln(g.out, "no tokens")
					return nil
				}
				tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tOWNER\tROLE\tCREATED\tEXPIRES\tEXPIRED\tBY\tCOMMENT")
				for _, t := range ts {
					expired := "no"
					if t.Expired {
						expired = "yes"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, tabless(t.Owner), t.Role,
						t.Created.Local().Format(time.DateTime), t.Expires.Local().Format(time.DateTime), expired,
						tabless(t.CreatedBy), dash(tabless(t.Comment)))
				}
				return tw.Flush()
			})
		},
	}
}

func newTokenRevokeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an API token: no host admits it from now on, and web console sessions opened with it end",
		Args:  exactArgs(1, "ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if strings.HasPrefix(id, api.TokenPrefix) {
				// Someone pasted the whole token: never send or echo it.
				return usageError{fmt.Errorf("give the token's ID (vmha token list), not the token itself")}
			}
			ctx, cancel := g.ctx()
			defer cancel()
			if err := g.client().Do(ctx, http.MethodDelete, api.PathTokens+"/"+url.PathEscape(id), api.TokenRevoke{RequestedBy: whoAmI()}, nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(g.out, "token %s revoked\n", id)
			return nil
		},
	}
}
