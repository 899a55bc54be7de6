// Package alerts tells people what the cluster did: every event of the
// replicated event log (a host lost and fenced, a VM recovered, an
// operator's change) is handed to each configured alert target, once, by
// the leader. A target is an executable called as a Pacemaker alert agent
// (the CRM_alert_* environment, so that Pacemaker's sample alert_smtp.sh
// and alert_snmp.sh work unchanged), or a webhook that receives the event
// as JSON.
package alerts

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/vmha/vmha/model"
)

// Version is CRM_alert_version: the Pacemaker alert interface vmha
// follows (scripts check that it is set, and some that it is recent).
const Version = "2.1.0"

// Pacemaker's alert kinds, and vmha's own for what Pacemaker has no kind.
const (
	KindNode      = "node"
	KindFencing   = "fencing"
	KindResource  = "resource"
	KindAttribute = "attribute"
	KindCluster   = "cluster"
	KindRules     = "rules"
	KindRebalance = "rebalance"
)

// Kinds are every alert kind, in the order docs list them.
var Kinds = []string{KindNode, KindFencing, KindResource, KindAttribute, KindCluster, KindRules, KindRebalance}

// KindOf is the alert kind of an event.
func KindOf(e *model.Event) string {
	switch e.Kind {
	case model.EventHost:
		if strings.HasPrefix(e.Action, "attr-") {
			return KindAttribute
		}
		return KindNode
	case model.EventFence:
		return KindFencing
	case model.EventVM:
		return KindResource
	case model.EventRules:
		return KindRules
	case model.EventRebalance:
		return KindRebalance
	}
	return KindCluster
}

// Target is one place alerts go.
type Target struct {
	Name string
	// Path is an executable (an alert agent); Webhook a URL. One is set.
	Path    string
	Webhook string
	// Recipient is CRM_alert_recipient (an address, a file, a trap host).
	Recipient string
	// Kinds limits the alerts to these kinds (empty: all).
	Kinds []string
	// Env are extra variables, as Pacemaker's instance attributes.
	Env map[string]string
	// Timeout bounds one call; Retries are the webhook's extra tries.
	Timeout time.Duration
	Retries int
	// TimestampFormat is CRM_alert_timestamp's format (strftime, with
	// Pacemaker's %N for fractions of a second).
	TimestampFormat string
	// Token, when set, is sent as a bearer token to the webhook (read
	// from a file; never logged).
	Token  string
	Client *http.Client
	// Backoff is the wait before the first retry (doubled each time).
	Backoff time.Duration
}

// DefaultTimestampFormat is Pacemaker's.
const DefaultTimestampFormat = "%H:%M:%S.%06N"

// Wants reports whether t takes events of kind.
func (t *Target) Wants(kind string) bool {
	return len(t.Kinds) == 0 || slices.Contains(t.Kinds, kind)
}

// Env is the environment an alert agent gets for e: Pacemaker's CRM_alert_*
// variables, vmha's VMHA_* ones, and the target's own.
func Env(t *Target, e *model.Event, cluster string) []string {
	kind := KindOf(e)
	ts := e.At.Local()
	format := t.TimestampFormat
	if format == "" {
		format = DefaultTimestampFormat
	}
	rc := "0"
	if e.Result == "failed" {
		rc = "1"
	}
	vars := map[string]string{
		"CRM_alert_version":         Version,
		"CRM_alert_recipient":       t.Recipient,
		"CRM_alert_node_sequence":   strconv.FormatUint(e.Seq, 10),
		"CRM_alert_timestamp":       Strftime(format, ts),
		"CRM_alert_timestamp_epoch": strconv.FormatInt(ts.Unix(), 10),
		"CRM_alert_timestamp_usec":  strconv.Itoa(ts.Nanosecond() / 1000),
		"CRM_alert_kind":            kind,
		"CRM_alert_desc":            desc(e),
		"CRM_alert_node":            node(e),
		"CRM_alert_nodeid":          "",
		"CRM_alert_task":            e.Action,
		"CRM_alert_rc":              rc,
		// A resource alert's shell tests these without quoting them.
		"CRM_alert_interval":   "0",
		"CRM_alert_target_rc":  "0",
		"CRM_alert_status":     rc,
		"VMHA_event_seq":       strconv.FormatUint(e.Seq, 10),
		"VMHA_event_kind":      e.Kind,
		"VMHA_event_object":    e.Object,
		"VMHA_event_action":    e.Action,
		"VMHA_event_result":    e.Result,
		"VMHA_event_principal": e.Principal,
		"VMHA_event_reason":    e.Reason,
		"VMHA_recovery_id":     e.RecoveryID,
		"VMHA_cluster":         cluster,
	}
	switch kind {
	case KindResource:
		vars["CRM_alert_rsc"] = e.Object
	case KindAttribute:
		name, value, _ := strings.Cut(e.Reason, "=")
		vars["CRM_alert_attribute_name"], vars["CRM_alert_attribute_value"] = name, value
	}
	out := make([]string, 0, len(vars)+len(t.Env))
	for k, v := range t.Env {
		if _, ours := vars[k]; !ours {
			out = append(out, k+"="+v)
		}
	}
	for k, v := range vars {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

// node is the host an event is about.
func node(e *model.Event) string {
	switch e.Kind {
	case model.EventHost, model.EventFence:
		return e.Object
	}
	return e.Host
}

// desc is CRM_alert_desc: for a node, its new state in Pacemaker's words
// (member, lost); for a fence, the operation and its result; else what
// happened and why.
func desc(e *model.Event) string {
	switch KindOf(e) {
	case KindNode:
		switch e.Action {
		case "alive", "joined", "register", "re-register":
			return "member"
		case "lost", "fenced", "fence-failed", "remove":
			return "lost"
		}
		return e.Action
	case KindFencing:
		res := "OK"
		if e.Result == "failed" {
			res = "Error"
		}
		s := fmt.Sprintf("Operation %s of %s by %s: %s", e.Action, e.Object, e.Principal, res)
		if e.Reason != "" {
			s += " (" + e.Reason + ")"
		}
		return s
	}
	s := e.Action
	if e.Result != "" {
		s += " " + e.Result
	}
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s
}

// Payload is the JSON a webhook receives.
type Payload struct {
	Cluster string      `json:"cluster"`
	Kind    string      `json:"alert_kind"`
	Desc    string      `json:"desc"`
	Event   model.Event `json:"event"`
	// Test is set for vmha alert test.
	Test bool `json:"test,omitempty"`
}

// Deliver hands e to t: runs the agent, or posts to the webhook with
// retries and a backoff. It returns the last error.
func Deliver(ctx context.Context, t *Target, e *model.Event, cluster string, test bool) error {
	if t.Path != "" {
		return runAgent(ctx, t, e, cluster)
	}
	body, err := json.Marshal(Payload{Cluster: cluster, Kind: KindOf(e), Desc: desc(e), Event: *e, Test: test})
	if err != nil {
		return err
	}
	first := t.Backoff
	if first <= 0 {
		first = time.Second
	}
	// Exponential with jitter (several hosts' webhooks must not retry in
	// step), at most 1+Retries tries, ended early by ctx.
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = first, time.Minute
	_, err = backoff.Retry(ctx, func() (struct{}, error) {
		err := post(ctx, t, body)
		var perm *permanentError
		if errors.As(err, &perm) {
			return struct{}{}, backoff.Permanent(err)
		}
		return struct{}{}, err
	}, backoff.WithBackOff(b), backoff.WithMaxTries(uint(t.Retries)+1), backoff.WithMaxElapsedTime(0))
	return err
}

// permanentError is an answer that a retry will not change (a 4xx but
// 408 and 429).
type permanentError struct{ error }

// maxOutput bounds what an agent's output is kept of (for the log).
const maxOutput = 4 << 10

func runAgent(ctx context.Context, t *Target, e *model.Event, cluster string) error {
	ctx, cancel := context.WithTimeout(ctx, t.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, t.Path)
	cmd.Env = append(baseEnv(), Env(t, e, cluster)...)
	cmd.Stdin = nil
	var out limitedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	switch {
	case ctx.Err() == context.DeadlineExceeded:
		return fmt.Errorf("alert agent %s did not finish within %s", t.Path, t.Timeout)
	case err != nil:
		return fmt.Errorf("alert agent %s: %w: %s", t.Path, err, strings.TrimSpace(out.String()))
	}
	return nil
}

// baseEnv is what an agent inherits: a PATH to find its tools, nothing
// of vmhad's own environment (which may hold secrets).
func baseEnv() []string {
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	return []string{"PATH=" + path, "LANG=C.UTF-8"}
}

func post(ctx context.Context, t *Target, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, t.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.Webhook, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "vmhad-alerts")
	if t.Token != "" {
		req.Header.Set("Authorization", "Bearer "+t.Token)
	}
	c := t.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("webhook %s: %w", t.Name, errors.Unwrap(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode/100 == 2:
	case resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests:
		return &permanentError{fmt.Errorf("webhook %s: answered %s", t.Name, resp.Status)}
	default:
		return fmt.Errorf("webhook %s: answered %s", t.Name, resp.Status)
	}
	return nil
}

// Client is an HTTP client for a webhook: the system's CAs, or caFile's
// when set (PEM).
func Client(caFile string) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no PEM certificate in it", caFile)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	// Never follow a redirect with the token to another place.
	return &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, nil
}

type limitedBuffer struct{ bytes.Buffer }

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := maxOutput - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
