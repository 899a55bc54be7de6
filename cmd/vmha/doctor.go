package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/doctor"
)

// doctorTimeout is vmha doctor's wait when --timeout is not given: a run
// takes up to about 20 s on the leader (slow devices, silent hosts).
const doctorTimeout = 45 * time.Second

func newDoctorCmd(g *globals) *cobra.Command {
	var strict bool
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check the whole cluster before an incident does: fence devices, migration paths, storage, clocks, gossip keys, certificates, config drift, versions",
		Long: `Run every check from every host, through the leader, and print each with
ok, warn or fail and what to do (docs/doctor.md):

  fence    the leader queries the power status of every device on every
           level of every host's fence topology (status only, never a
           power change)
  reach    each host dials every other host's migration.libvirt_uri and
           migration.address (2 s each)
  storage  each host's cluster file systems are ready (vmha storage check)
  clock    each host's clock against the leader's: warn above
           doctor.clock_warn (500ms), fail above doctor.clock_fail (5s)
  keyring  every host has the leader's gossip keys and primary key
  cert     each host's TLS certificate and the CA: warn under 30 days,
           fail under 7 days or expired
  config   the settings the leader applies cluster-wide (alerts, migration
           caps, rebalance, admission, quorum, fencing timers) are the
           same on every host
  version  every host runs the leader's vmhad version
  answer   a host that does not answer within 15 s is a fail for it

Exit status: 0 when nothing failed (warnings alone exit 0; --strict makes
them exit 1), 1 when a check failed, 3 when vmhad or the leader is
unreachable. -o json prints the lines as an array of
{"check","host","from","status","message","fix"}. The leader also runs it
every doctor.interval (vmhad.yaml; 0: never), into the metrics
(vmha_doctor_checks) and vmha status. vmha doctor waits up to 45 s unless
--timeout is given.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("timeout") {
				g.timeout = doctorTimeout
			}
			ctx, cancel := g.ctx()
			defer cancel()
			var rep api.DoctorReport
			if err := g.client().Do(ctx, http.MethodGet, api.PathDoctor, nil, &rep, nil); err != nil {
				return err
			}
			if rep.Checks == nil {
				rep.Checks = []api.DoctorCheck{}
			}
			if g.output == "json" {
				if err := g.printJSON(rep.Checks); err != nil {
					return err
				}
			} else if err := printDoctor(g.out, &rep); err != nil {
				return err
			}
			if doctor.ExitCode(rep.Checks, strict) != 0 {
				msg := fmt.Sprintf("%d check(s) failed", rep.Fail)
				if rep.Fail == 0 {
					msg = fmt.Sprintf("%d warning(s) (--strict)", rep.Warn)
				}
				return exitStatus{code: exitFailed, msg: msg}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&strict, "strict", false, "exit 1 on warnings too")
	return cmd
}

// printDoctor prints the lines as a table, then what to do about each
// warn and fail, then a summary.
func printDoctor(w io.Writer, rep *api.DoctorReport) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tCHECK\tFROM\tSTATUS\tMESSAGE")
	for _, c := range rep.Checks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Host, c.Check, c.From, strings.ToUpper(c.Status), c.Message)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	first := true
	for _, c := range rep.Checks {
		if c.Status == api.DoctorOK || c.Fix == "" {
			continue
		}
		if first {
			fmt.Fprintln(w, "\nWhat to do:")
			first = false
		}
		fmt.Fprintf(w, "  %s %s on %s: %s\n", strings.ToUpper(c.Status), c.Check, c.Host, c.Fix)
	}
	fmt.Fprintf(w, "\ndoctor: %d ok, %d warn, %d fail (from leader %s, %s)\n", rep.OK, rep.Warn, rep.Fail, rep.Leader, rep.Duration.Round(time.Millisecond))
	return nil
}
