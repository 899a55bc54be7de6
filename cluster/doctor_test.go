package cluster

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/serf"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/config"
	"github.com/vmha/vmha/doctor"
	"github.com/vmha/vmha/internal/gossipkey"
	"github.com/vmha/vmha/model"
)

func doctorCall(t *testing.T, srv http.Handler, path string, st *tls.ConnectionState) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest("GET", path, nil)
	r.TLS = st
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, r)
	return w
}

// The doctor on a real (in-memory) leader: h1 is this host, h2 does not
// answer (nothing listens at its API address), h3 answers from a peer
// with its clock an hour ahead, other settings and another version, and
// its fence device is silent. Each is a line of the report, the run is
// bounded, and it shows in the metrics and in vmha status. Only operators
// run it; hosts and operators read a host's own facts.
func TestDoctorHandlers(t *testing.T) {
	cfg := &config.Daemon{NodeName: "h1", Admission: "open"}
	cfg.Fencing.Timeout, cfg.Fencing.CallTimeout = time.Second, 300*time.Millisecond
	n := newMemNode(t, cfg)
	defer func() { _ = n.raft.Shutdown().Error() }()
	peer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != api.PathLocalDoctor {
			http.NotFound(w, r)
			return
		}
		writeJSON(w, http.StatusOK, api.DoctorFacts{Host: "h3", Time: time.Now().Add(time.Hour), Version: "v0.0.1",
			Settings: map[string]string{"admission": "closed"}, SettingsHash: "other"})
	}))
	defer peer.Close()
	// A fence device at a UDP port where no BMC listens.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	bmcPort := pc.LocalAddr().(*net.UDPAddr).Port
	_ = pc.Close()
	if err := n.propose(&Command{Op: OpRegisterHost, Host: &model.Host{Name: "h3", APIAddr: strings.TrimPrefix(peer.URL, "http://"), MemoryMiB: 8192, CPUs: 8},
		Fencing: &model.FenceTopology{
			Devices: []model.FenceDevice{{Name: "bmc@h3", Type: "ipmi", Params: map[string]string{"address": "127.0.0.1", "port": strconv.Itoa(bmcPort), "user": "u", "cipher_suite": "3"}, Password: "pw"}},
			Levels:  [][]string{{"bmc@h3"}},
		}}); err != nil {
		t.Fatal(err)
	}
	n.tls = &tls.Config{} // roles come from the certificates below
	srv := n.authenticate(false, n.Handler(false))

	if w := doctorCall(t, srv, api.PathDoctor, certState("ro", "readonly")); w.Code != http.StatusForbidden {
		t.Fatalf("read-only may not run the doctor: %d %s", w.Code, w.Body)
	}
	if w := doctorCall(t, srv, api.PathDoctor, certState("h2", "host")); w.Code != http.StatusForbidden {
		t.Fatalf("a host may not run the doctor: %d %s", w.Code, w.Body)
	}
	if w := doctorCall(t, srv, api.PathLocalDoctor, certState("ro", "readonly")); w.Code != http.StatusForbidden {
		t.Fatalf("read-only may not read a host's facts: %d", w.Code)
	}
	w := doctorCall(t, srv, api.PathLocalDoctor, certState("h2", "host"))
	var f api.DoctorFacts
	if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &f) != nil || f.Host != "h1" || f.SettingsHash == "" || f.Time.IsZero() {
		t.Fatalf("local facts: %d %s", w.Code, w.Body)
	}

	start := time.Now()
	w = doctorCall(t, srv, api.PathDoctor, certState("alice", "operator"))
	took := time.Since(start)
	var rep api.DoctorReport
	if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &rep) != nil {
		t.Fatalf("doctor: %d %s", w.Code, w.Body)
	}
	t.Logf("doctor took %s: %d ok, %d warn, %d fail", took, rep.OK, rep.Warn, rep.Fail)
	find := func(check, host string) api.DoctorCheck {
		for _, c := range rep.Checks {
			if c.Check == check && c.Host == host {
				return c
			}
		}
		t.Fatalf("no %s line for %s in %+v", check, host, rep.Checks)
		return api.DoctorCheck{}
	}
	for _, want := range []struct{ check, host, status, in string }{
		{"fence", "h1", api.DoctorFail, "no fence device"},
		{"answer", "h2", api.DoctorFail, "127.0.0.1:2"},
		{"fence", "h3", api.DoctorFail, "level 1 ipmi 127.0.0.1:" + strconv.Itoa(bmcPort) + ": ipmi status"},
		{"clock", "h3", api.DoctorFail, "ahead of h1"},
		{"config", "h3", api.DoctorWarn, "admission closed (h1: open)"},
		{"version", "h3", api.DoctorWarn, "v0.0.1"},
		{"keyring", "h1", api.DoctorWarn, "not encrypted"},
	} {
		c := find(want.check, want.host)
		if c.Status != want.status || !strings.Contains(c.Message, want.in) || c.Fix == "" {
			t.Errorf("%s %s: %+v, want %s with %q", want.check, want.host, c, want.status, want.in)
		}
	}
	if rep.Leader != "h1" || rep.Fail == 0 || took > doctorBudget {
		t.Fatalf("report %+v took %s", rep, took)
	}

	if v := doctorMetric(t, n, "fence", "fail"); v != 3 {
		t.Fatalf("vmha_doctor_checks{check=fence,status=fail} = %v, want 3 (h1 and h2 have no device)", v)
	}
	st := &api.Status{}
	n.addDoctorIssue(st)
	found := false
	for _, p := range st.ProblemDetails {
		found = found || (p.Code == "doctor_failed" && strings.Contains(p.Message, "fence on h3"))
	}
	if !found {
		t.Fatalf("vmha status does not report the failed doctor run: %+v", st.ProblemDetails)
	}
}

// doctorMetric gathers vmha_doctor_checks{check,status} from n's registry.
func doctorMetric(t *testing.T, n *Node, check, status string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(&doctorCollector{n: n})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "vmha_doctor_checks" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["check"] == check && labels["status"] == status {
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no vmha_doctor_checks{check=%q,status=%q}", check, status)
	return 0
}

// The doctor's keyring checks against real serf agents in this process
// (encrypted gossip on loopback): the leader's keyring file and serf's
// keyring query of every member agree, and a member that gossips under
// another primary key is caught.
func TestDoctorKeyring(t *testing.T) {
	k1, _ := gossipkey.New()
	raw, _ := gossipkey.Decode(k1)
	keyrings := map[string]*memberlist.Keyring{}
	start := func(name string, join string) *serf.Serf {
		t.Helper()
		kr, err := memberlist.NewKeyring([][]byte{raw}, raw)
		keyrings[name] = kr
		if err != nil {
			t.Fatal(err)
		}
		sc := serf.DefaultConfig()
		sc.NodeName = name
		sc.LogOutput = io.Discard
		mc := memberlist.DefaultLANConfig()
		mc.Name, mc.BindAddr, mc.BindPort, mc.AdvertisePort = name, "127.0.0.1", 0, 0
		mc.Keyring, mc.LogOutput = kr, io.Discard
		mc.ProbeInterval, mc.ProbeTimeout, mc.GossipInterval = 200*time.Millisecond, 100*time.Millisecond, 50*time.Millisecond
		sc.MemberlistConfig = mc
		s, err := serf.Create(sc)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Shutdown() })
		if join != "" {
			if _, err := s.Join([]string{join}, true); err != nil {
				t.Fatal(err)
			}
		}
		return s
	}
	s1 := start("h1", "")
	addr := fmt.Sprintf("127.0.0.1:%d", s1.LocalMember().Port)
	start("h2", addr)
	start("h3", addr)
	for deadline := time.Now().Add(10 * time.Second); s1.NumNodes() < 3; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the agents did not join")
		}
	}

	cfg := &config.Daemon{NodeName: "h1", Admission: "open", DataDir: t.TempDir()}
	n := newMemNode(t, cfg)
	defer func() { _ = n.raft.Shutdown().Error() }()
	n.serf, n.gossipEncrypted = s1, true
	b, _ := json.Marshal([]string{k1})
	if err := os.WriteFile(filepath.Join(cfg.DataDir, "serf.keyring"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err := n.RunDoctor(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, c := range rep.Checks {
		if c.Check == "keyring" && c.Host == "h1" {
			lines = append(lines, c.Status+" "+c.Message)
		}
	}
	fp := gossipkey.Fingerprint(raw)
	want := []string{"ok 1 key(s), primary " + fp, "ok serf keyring query: 3 of 3 members answered, 1 key(s) on all, primary " + fp + " on all"}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("keyring lines:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}

	// h1 installs and uses a second key alone (its own keyring only):
	// the others cannot read its query, so they do not answer it.
	k2, _ := gossipkey.New()
	raw2, _ := gossipkey.Decode(k2)
	if err := keyrings["h1"].AddKey(raw2); err != nil {
		t.Fatal(err)
	}
	if err := keyrings["h1"].UseKey(raw2); err != nil {
		t.Fatal(err)
	}
	gk, err := n.GossipKeys()
	if err != nil && gk == nil {
		t.Fatal(err)
	}
	if c := doctor.LiveKeyring("h1", gk, ""); c.Status != api.DoctorFail || !strings.Contains(c.Message, "1 of 3 alive members answered") {
		t.Fatalf("a primary key only h1 has: %+v (%+v)", c, gk)
	}
}
