package cluster

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/vmha/vmha/api"
)

// Calls to other hosts' APIs (writes forwarded to the leader, nudges, probes
// of lost hosts, LVM commands, migration statistics) go through one client
// per peer address, kept for the daemon's life: its transport reuses a few
// keep-alive connections and closes them when idle. A transport made per
// call, as before, kept its idle TLS connection open for ever: an idle
// leader gained about 16 sockets a minute.
const (
	// peerIdleConnTimeout is shorter than the server's idleTimeout, so
	// that the caller, not the peer, closes an idle connection (a request
	// sent on a connection the server is closing would fail).
	peerIdleConnTimeout = 20 * time.Second
	// peerMaxIdle bounds the idle connections kept to one peer; the
	// agent's calls to the leader are sequential, a few more cover the
	// leader's concurrent nudges and forwarded requests.
	peerMaxIdle = 4
	// peerMaxConns bounds the connections open to one peer at once: more
	// concurrent calls wait for one (within their own deadline).
	peerMaxConns    = 32
	peerDialTimeout = 5 * time.Second
)

// peerClients holds a client per peer API address.
type peerClients struct {
	tls *tls.Config

	mu      sync.Mutex
	clients map[string]*peerClient
	closed  bool
}

type peerClient struct {
	hc  *http.Client
	tr  *http.Transport
	api *api.Client
}

func newPeerClients(tc *tls.Config) *peerClients {
	return &peerClients{tls: tc, clients: map[string]*peerClient{}}
}

func (p *peerClients) newClient(addr string, keepAlive bool) *peerClient {
	tr := &http.Transport{
		// Peers talk directly: an HTTP proxy of the environment has no
		// business between them.
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: peerDialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   peerDialTimeout,
		MaxIdleConns:          peerMaxIdle,
		MaxIdleConnsPerHost:   peerMaxIdle,
		MaxConnsPerHost:       peerMaxConns,
		IdleConnTimeout:       peerIdleConnTimeout,
		ExpectContinueTimeout: time.Second,
		DisableKeepAlives:     !keepAlive,
	}
	if p.tls != nil {
		tr.TLSClientConfig = p.tls.Clone()
	}
	hc := &http.Client{Transport: tr}
	return &peerClient{hc: hc, tr: tr, api: api.NewPeerClient(addr, hc, p.tls != nil)}
}

// get returns the client of the peer at addr, made on first use. After
// close, a call (a nudge still under way at shutdown) gets a client that
// keeps nothing open.
func (p *peerClients) get(addr string) *peerClient {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return p.newClient(addr, false)
	}
	c := p.clients[addr]
	if c == nil {
		c = p.newClient(addr, true)
		p.clients[addr] = c
	}
	return c
}

// do makes one call to the peer at addr; timeout bounds all of it.
func (p *peerClients) do(ctx context.Context, addr string, timeout time.Duration, method, path string, in, out any, h http.Header) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return p.get(addr).api.Do(ctx, method, path, in, out, h)
}

// forget drops the client of a peer that left the cluster and closes its
// idle connections (a call under way finishes; its connection is then
// closed when it idles).
func (p *peerClients) forget(addr string) {
	p.mu.Lock()
	c := p.clients[addr]
	delete(p.clients, addr)
	p.mu.Unlock()
	if c != nil {
		c.tr.CloseIdleConnections()
	}
}

// close drops every client, at shutdown.
func (p *peerClients) close() {
	p.mu.Lock()
	cs := p.clients
	p.clients, p.closed = map[string]*peerClient{}, true
	p.mu.Unlock()
	for _, c := range cs {
		c.tr.CloseIdleConnections()
	}
}

// size is the number of peers with a client (tests).
func (p *peerClients) size() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.clients)
}
