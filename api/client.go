package api

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// Client calls a vmhad over its unix socket or peer address.
type Client struct {
	base string
	hc   *http.Client
	// Target describes where the client connects, for error messages.
	Target string
}

// NewUnixClient talks to the local vmhad through its socket. Every call
// opens and closes its own connection (a unix socket costs nothing to
// open), so that a client made per call, as the CLI does, leaves no idle
// connection behind in vmhad, whose socket takes a bounded number.
func NewUnixClient(socket string, timeout time.Duration) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		DisableKeepAlives: true,
	}
	return &Client{base: "http://vmhad", hc: &http.Client{Transport: tr, Timeout: timeout}, Target: socket}
}

// NewTCPClient talks to a peer's API address (host:port), over mutual TLS
// when tc is not nil. It is for the CLI and tests: over TLS every call
// opens and closes its own connection, so that a client made per call
// leaves nothing open. vmhad itself keeps one client per peer (NewPeerClient).
func NewTCPClient(addr string, timeout time.Duration, tc *tls.Config) *Client {
	if tc == nil {
		return &Client{base: "http://" + addr, hc: &http.Client{Timeout: timeout}, Target: addr}
	}
	tr := &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: false, DisableKeepAlives: true, TLSHandshakeTimeout: 10 * time.Second}
	return &Client{base: "https://" + addr, hc: &http.Client{Timeout: timeout, Transport: tr}, Target: addr}
}

// NewPeerClient talks to a peer's API address over hc, which the caller
// owns and reuses (its transport keeps the connections). secure says
// whether hc's transport speaks TLS. hc should have no Timeout: each call's
// context bounds it.
func NewPeerClient(addr string, hc *http.Client, secure bool) *Client {
	scheme := "http://"
	if secure {
		scheme = "https://"
	}
	return &Client{base: scheme + addr, hc: hc, Target: addr}
}

// UnreachableError means the daemon could not be reached at all.
type UnreachableError struct {
	Target string
	Err    error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach vmhad at %s: %v", e.Target, e.Err)
}
func (e *UnreachableError) Unwrap() error { return e.Err }

// StatusError is a non-2xx answer.
type StatusError struct {
	Code  int
	Body  Error
	Route string
}

func (e *StatusError) Error() string {
	if e.Body.Error == "" {
		return fmt.Sprintf("%s: HTTP %d", e.Route, e.Code)
	}
	return e.Body.Error
}

// Do sends a request with an optional JSON body and decodes a JSON answer
// into out (if not nil). header may be nil.
func (c *Client) Do(ctx context.Context, method, path string, in, out any, header http.Header) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return &UnreachableError{Target: c.Target, Err: errors.Unwrap(err)}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return &UnreachableError{Target: c.Target, Err: err}
	}
	if resp.StatusCode/100 != 2 {
		se := &StatusError{Code: resp.StatusCode, Route: method + " " + path}
		if json.Unmarshal(data, &se.Body) != nil {
			se.Body.Error = strings.TrimSpace(string(data))
		}
		return se
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: bad answer: %w", method, path, err)
		}
	}
	return nil
}

// Status fetches the cluster status.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var s Status
	return &s, c.Do(ctx, http.MethodGet, PathStatus, nil, &s, nil)
}
