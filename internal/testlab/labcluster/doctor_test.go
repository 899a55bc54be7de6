package labcluster

import (
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/internal/gossipkey"
)

// vmha doctor on three real vmhad processes with mutual TLS, encrypted
// gossip and ipmi_sim BMCs: every check passes (exit 0), each host's BMC
// answering its status query from the leader. Then one host's BMC goes
// silent: doctor exits 1 and names that host's fence device, and the run
// shows in the leader's metrics and vmha status.
func TestDoctor(t *testing.T) {
	key, _ := gossipkey.New()
	c := startClusterWith(t, Options{TLS: true, GossipKey: key})
	s := mustStatus(t, c)
	via := c.Hosts[0]
	if via.Name == s.Leader {
		via = c.Hosts[1] // through a follower: forwarded to the leader
	}
	doctorJSON := func() ([]api.DoctorCheck, int, time.Duration) {
		t.Helper()
		start := time.Now()
		out, err := exec.Command(binDir+"/vmha", "--socket", via.Socket, "doctor", "-o", "json").Output()
		took := time.Since(start)
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		var cs []api.DoctorCheck
		if err := json.Unmarshal(out, &cs); err != nil {
			t.Fatalf("doctor -o json (exit %d): %v\n%s", code, err, out)
		}
		return cs, code, took
	}

	cs, code, took := doctorJSON()
	t.Logf("healthy cluster: %d lines in %s", len(cs), took)
	fenceOK := map[string]bool{}
	for _, c := range cs {
		if c.Status != api.DoctorOK {
			t.Errorf("healthy cluster: %+v", c)
		}
		if c.Check == "fence" && c.Status == api.DoctorOK && c.From == s.Leader {
			fenceOK[c.Host] = true
		}
	}
	if code != 0 || len(fenceOK) != 3 {
		t.Fatalf("healthy cluster: exit %d, fence devices answering %v", code, fenceOK)
	}
	for _, check := range []string{"clock", "keyring", "cert", "config", "version"} {
		if !anyLine(cs, func(c api.DoctorCheck) bool { return c.Check == check }) {
			t.Errorf("no %s line", check)
		}
	}

	victim := c.Hosts[2]
	if victim.Name == s.Leader {
		victim = c.Hosts[1]
	}
	if err := victim.BMC.Pause(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = victim.BMC.Resume() }()
	cs, code, took = doctorJSON()
	t.Logf("silent BMC of %s: %d lines in %s", victim.Name, len(cs), took)
	var failed []api.DoctorCheck
	for _, c := range cs {
		if c.Status == api.DoctorFail {
			failed = append(failed, c)
		}
	}
	if code != 1 || len(failed) != 1 || failed[0].Check != "fence" || failed[0].Host != victim.Name || failed[0].Fix == "" {
		t.Fatalf("silent BMC of %s: exit %d, failed %+v", victim.Name, code, failed)
	}
	out, err := c.vmha(via, "doctor")
	t.Logf("vmha doctor:\n%s", out)
	if err == nil || !strings.Contains(string(out), "FAIL fence on "+victim.Name) || !strings.Contains(string(out), "1 fail") {
		t.Fatalf("doctor text: %v\n%s", err, out)
	}
	leader := c.Host(s.Leader)
	m, err := leader.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m, `vmha_doctor_checks{check="fence",status="fail"} 1`) || !strings.Contains(m, "vmha_doctor_last_run_timestamp_seconds") {
		t.Fatalf("metrics:\n%s", grepLines(m, "vmha_doctor"))
	}
	st := mustStatus(t, c)
	if !hasProblem(st, "vmha doctor") || !hasProblem(st, "fence on "+victim.Name) {
		t.Fatalf("vmha status: %q", st.Problems)
	}
}

func anyLine(cs []api.DoctorCheck, f func(api.DoctorCheck) bool) bool {
	for _, c := range cs {
		if f(c) {
			return true
		}
	}
	return false
}

func grepLines(s, part string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, part) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
