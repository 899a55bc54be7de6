package alerts

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmha/vmha/internal/testlab/testenv"
	"github.com/vmha/vmha/model"
)

var at = time.Date(2026, 12, 5, 3, 12, 7, 123456789, time.Local)

// agentScript is an alert agent written the way Pacemaker's samples are:
// it refuses to run without CRM_alert_version, switches on the kind, tests
// CRM_alert_interval and CRM_alert_target_rc unquoted (as alert_smtp.sh
// does, so they must be set), and appends one line to the recipient.
const agentScript = `#!/bin/sh
if [ -z ${CRM_alert_version} ]; then echo "needs Pacemaker 1.1.15 or later"; exit 1; fi
if [ -z "${CRM_alert_recipient}" ]; then echo "no recipient"; exit 1; fi
case ${CRM_alert_kind} in
  node) line="${CRM_alert_timestamp} Node '${CRM_alert_node}' is now '${CRM_alert_desc}'" ;;
  fencing) line="${CRM_alert_timestamp} Fencing ${CRM_alert_desc}" ;;
  resource)
    if [ ${CRM_alert_interval} = "0" ]; then CRM_alert_interval=""; fi
    if [ ${CRM_alert_target_rc} = "0" ]; then CRM_alert_target_rc=""; fi
    line="${CRM_alert_timestamp} Resource operation '${CRM_alert_task}${CRM_alert_interval}' for '${CRM_alert_rsc}' on '${CRM_alert_node}': ${CRM_alert_desc}${CRM_alert_target_rc}" ;;
  attribute) line="${CRM_alert_timestamp} The '${CRM_alert_attribute_name}' attribute of the '${CRM_alert_node}' node was updated in '${CRM_alert_attribute_value}'" ;;
  *) line="${CRM_alert_timestamp} Unhandled ${CRM_alert_kind} alert" ;;
esac
echo "${CRM_alert_node_sequence} ${line} [${cluster_name}] secret=${VMHA_TEST_SECRET}" >> "${CRM_alert_recipient}"
`

func TestAgentGetsPacemakersEnvironment(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "alert.sh")
	if err := os.WriteFile(script, []byte(agentScript), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("VMHA_TEST_SECRET", "hunter2") // vmhad's environment must not reach the agent
	out := filepath.Join(dir, "alerts.log")
	tg := &Target{Name: "file", Path: script, Recipient: out, Timeout: 5 * time.Second, Env: map[string]string{"cluster_name": "prod"}}
	for _, e := range []model.Event{
		{Seq: 7, At: at, Kind: model.EventHost, Object: "h2", Action: "lost", Principal: "cluster", Reason: "gossip declared the host failed"},
		{Seq: 8, At: at, Kind: model.EventFence, Object: "h2", Action: "off", Result: "ok", Principal: "cluster", Reason: "device bmc@h2"},
		{Seq: 9, At: at, Kind: model.EventVM, Object: "web1", Action: "recover", Host: "h1", Principal: "cluster", Reason: "h1 wins"},
		{Seq: 10, At: at, Kind: model.EventHost, Object: "h1", Action: "attr-set", Principal: "alice", Reason: "zone=a"},
		{Seq: 11, At: at, Kind: model.EventRules, Object: "rules", Action: "apply", Principal: "alice"},
	} {
		if err := Deliver(context.Background(), tg, &e, "prod", false); err != nil {
			t.Fatalf("event %d: %v", e.Seq, err)
		}
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"7 03:12:07.123456 Node 'h2' is now 'lost' [prod] secret=",
		"8 03:12:07.123456 Fencing Operation off of h2 by cluster: OK (device bmc@h2) [prod] secret=",
		"9 03:12:07.123456 Resource operation 'recover' for 'web1' on 'h1': recover: h1 wins [prod] secret=",
		"10 03:12:07.123456 The 'zone' attribute of the 'h1' node was updated in 'a' [prod] secret=",
		"11 03:12:07.123456 Unhandled rules alert [prod] secret=",
	}, "\n") + "\n"
	if string(got) != want {
		t.Fatalf("the agent wrote:\n%s\nwant:\n%s", got, want)
	}

	// A failing or hanging agent is an error that says so.
	tg.Path = filepath.Join(dir, "fails.sh")
	_ = os.WriteFile(tg.Path, []byte("#!/bin/sh\necho cannot send mail >&2\nexit 3\n"), 0o755)
	if err := Deliver(context.Background(), tg, &model.Event{Seq: 1, At: at}, "prod", false); err == nil || !strings.Contains(err.Error(), "cannot send mail") {
		t.Fatalf("failing agent: %v", err)
	}
	tg.Path, tg.Timeout = filepath.Join(dir, "hangs.sh"), 200*time.Millisecond
	_ = os.WriteFile(tg.Path, []byte("#!/bin/sh\nsleep 30\n"), 0o755)
	start := time.Now()
	if err := Deliver(context.Background(), tg, &model.Event{Seq: 1, At: at}, "prod", false); err == nil || !strings.Contains(err.Error(), "did not finish within") {
		t.Fatalf("hanging agent: %v", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatal("a hanging agent was waited for past its timeout")
	}
}

// A webhook gets the event as JSON over TLS (the cluster's own CA file
// trusted), with the bearer token; a failing receiver is retried with a
// backoff; a redirect is not followed with the token.
func TestWebhook(t *testing.T) {
	var calls atomic.Int32
	var got Payload
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		if r.Header.Get("Authorization") != "Bearer s3cret" || r.Header.Get("Content-Type") != "application/json" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if n < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_ = json.NewDecoder(r.Body).Decode(&got)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	_ = os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600)
	client, err := Client(ca)
	if err != nil {
		t.Fatal(err)
	}
	tg := &Target{Name: "hook", Webhook: srv.URL, Timeout: 2 * time.Second, Retries: 3, Token: "s3cret", Client: client, Backoff: 10 * time.Millisecond}
	e := model.Event{Seq: 42, At: at, Kind: model.EventFence, Object: "h2", Action: "off", Result: "ok", Principal: "cluster", RecoveryID: "rcv-1"}
	if err := Deliver(context.Background(), tg, &e, "prod", false); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 3 || got.Event.Seq != 42 || got.Kind != KindFencing || got.Cluster != "prod" || got.Event.RecoveryID != "rcv-1" {
		t.Fatalf("%d calls, payload %+v", calls.Load(), got)
	}
	// Without the CA the server's certificate is refused.
	plain, _ := Client("")
	tg.Client, tg.Retries = plain, 0
	if err := Deliver(context.Background(), tg, &e, "prod", false); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted certificate: %v", err)
	}
	// A refusal a retry will not change (401) is not retried; the error
	// carries no secret.
	tg.Client, tg.Retries, tg.Token = client, 2, "wrong"
	calls.Store(0)
	err = Deliver(context.Background(), tg, &e, "prod", false)
	if err == nil || calls.Load() != 1 || strings.Contains(err.Error(), "wrong") || !strings.Contains(err.Error(), "401") {
		t.Fatalf("%d calls, error %v", calls.Load(), err)
	}
	// Retries end: the last error comes back.
	tg.Token = "s3cret"
	calls.Store(-10) // every answer a 503
	err = Deliver(context.Background(), tg, &e, "prod", false)
	if err == nil || calls.Load() != -7 || !strings.Contains(err.Error(), "503") {
		t.Fatalf("%d calls, error %v", calls.Load()+10, err)
	}
	redirect := httptest.NewTLSServer(http.RedirectHandler(srv.URL, http.StatusFound))
	defer redirect.Close()
	tg.Webhook, tg.Token, tg.Retries = redirect.URL, "s3cret", 0
	tg.Client, _ = Client("")
	tg.Client.Transport.(*http.Transport).TLSClientConfig.InsecureSkipVerify = true
	calls.Store(0)
	if err := Deliver(context.Background(), tg, &e, "prod", false); err == nil || calls.Load() != 0 {
		t.Fatalf("a redirect was followed (%d calls to the target): %v", calls.Load(), err)
	}
}

func TestStrftime(t *testing.T) {
	for f, want := range map[string]string{
		"%H:%M:%S.%06N":          "03:12:07.123456",
		"%Y-%m-%d,%H:%M:%S.%01N": "2026-12-05,03:12:07.1",
		"%N":                     "123456789",
		"100%% %q %":             "100% %q %",
		"%F %T":                  "2026-12-05 03:12:07",
	} {
		if got := Strftime(f, at); got != want {
			t.Errorf("%q: %q, want %q", f, got, want)
		}
	}
}

func TestKindsAndWants(t *testing.T) {
	tg := &Target{Kinds: []string{KindFencing, KindNode}}
	for kind, e := range map[string]model.Event{
		KindNode: {Kind: model.EventHost, Action: "lost"}, KindAttribute: {Kind: model.EventHost, Action: "attr-set"},
		KindFencing: {Kind: model.EventFence}, KindResource: {Kind: model.EventVM}, KindCluster: {Kind: model.EventCluster},
	} {
		if KindOf(&e) != kind {
			t.Errorf("%+v: kind %s, want %s", e, KindOf(&e), kind)
		}
		if tg.Wants(kind) != (kind == KindFencing || kind == KindNode) {
			t.Errorf("wants %s: %v", kind, tg.Wants(kind))
		}
	}
}

// Pacemaker's own sample agent, as Debian installs it, run unchanged.
func TestPacemakersSampleAgent(t *testing.T) {
	const sample = "/usr/share/pacemaker/alerts/alert_file.sh.sample"
	src, err := os.ReadFile(sample)
	if err != nil {
		testenv.Missing(t, "Pacemaker's sample alert agents (Debian package pacemaker-common): "+err.Error())
	}
	dir := t.TempDir()
	agent := filepath.Join(dir, "alert_file.sh")
	if err := os.WriteFile(agent, src, 0o755); err != nil { // a copy only to make it executable
		t.Fatal(err)
	}
	out := filepath.Join(dir, "alerts.log")
	tg := &Target{Name: "file", Path: agent, Recipient: out, Timeout: 5 * time.Second}
	for _, e := range []model.Event{
		{Seq: 1, At: at, Kind: model.EventHost, Object: "h2", Action: "lost"},
		{Seq: 2, At: at, Kind: model.EventFence, Object: "h2", Action: "off", Result: "ok", Principal: "cluster"},
		{Seq: 3, At: at, Kind: model.EventVM, Object: "web1", Action: "recover", Host: "h1", Principal: "cluster"},
		{Seq: 4, At: at, Kind: model.EventHost, Object: "h1", Action: "attr-set", Reason: "zone=a"},
	} {
		if err := Deliver(context.Background(), tg, &e, "prod", false); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := os.ReadFile(out)
	want := "03:12:07.123456: Node 'h2' is now 'lost'\n" +
		"03:12:07.123456: Fencing Operation off of h2 by cluster: OK\n" +
		"03:12:07.123456: Resource operation 'recover' for 'web1' on 'h1': recover\n" +
		"03:12:07.123456: Attribute 'zone' on node 'h1' was updated to 'a'\n"
	if string(got) != want {
		t.Fatalf("Pacemaker's alert_file.sh wrote:\n%s\nwant:\n%s", got, want)
	}
}
