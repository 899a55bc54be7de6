package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/pki"
	"github.com/vmha/vmha/web"
)

// console is the node as the web console's backend: tokens checked
// against the replicated state, the API called in process as the token's
// owner (the same routes, roles and event log as the CLI's).
type console struct {
	n    *Node
	once sync.Once
	api  http.Handler
}

// Console is the node's web console backend.
func (n *Node) Console() web.Backend { return &console{n: n} }

func (c *console) Self() string { return c.n.cfg.NodeName }

func (c *console) Login(token string) (web.Identity, error) {
	p, err := c.n.TokenPrincipal(token)
	if err != nil {
		return web.Identity{}, web.ErrBadToken
	}
	return identityOf(p), nil
}

func (c *console) Check(tokenID string) (web.Identity, bool) {
	p, ok := c.n.TokenValid(tokenID)
	if !ok {
		return web.Identity{}, false
	}
	return identityOf(p), true
}

func identityOf(p Principal) web.Identity {
	return web.Identity{Name: p.Name, Role: string(p.Role), TokenID: p.TokenID}
}

// API calls the peer port's handler in process with id as the principal:
// a follower forwards to the leader as it does for any client, naming id.
func (c *console) API(id web.Identity) *api.Client {
	c.once.Do(func() { c.api = c.n.Handler(false) })
	p := Principal{Name: id.Name, Role: Role(id.Role), How: "token", TokenID: id.TokenID}
	if id.TokenID == "" {
		// The console's own status reads: read-only, named for what
		// they are.
		p = Principal{Name: id.Name, Role: RoleReadOnly, How: "console"}
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.api.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
	return api.NewHandlerClient(h, "the API of "+c.n.cfg.NodeName)
}

// webTLS is the console's certificate: web.cert_file, else the host's
// cluster certificate, else a self-signed one kept in data_dir.
func (n *Node) webTLS() (*tls.Config, error) {
	w := n.cfg.Web
	cert, key, what := w.CertFile, w.KeyFile, "web.cert_file"
	if cert == "" && n.cfg.TLS.Cert != "" {
		cert, key, what = n.cfg.TLS.Cert, n.cfg.TLS.Key, "tls.cert_file"
	}
	if cert == "" {
		var ips []net.IP
		for _, a := range []string{n.cfg.BindAddr, n.cfg.AdvertiseAddr} {
			if ip := net.ParseIP(a); ip != nil {
				ips = append(ips, ip)
			}
		}
		var err error
		if cert, key, err = pki.SelfSigned(n.cfg.DataDir, "web", ips, []string{n.cfg.NodeName}); err != nil {
			return nil, err
		}
		fp, _ := pki.Fingerprint(cert)
		n.log.Warn().Str("cert", cert).Str("sha256_fingerprint", fp).Msg("web console: no web.cert_file and no cluster certificate; serving a self-signed certificate (check its fingerprint in the browser)")
		what = "self-signed " + cert
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return nil, fmt.Errorf("web console certificate (%s): %w", what, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
}

// webConnCap bounds the console's connections (live pages hold one each).
const webConnCap = 512

// ServeWeb serves the web console on web.addr over HTTPS until ctx is
// done.
func (n *Node) ServeWeb(ctx context.Context) error {
	w := n.cfg.Web
	tc, err := n.webTLS()
	if err != nil {
		return err
	}
	srv, err := web.New(web.Options{Backend: n.Console(), Log: n.log, SessionIdle: w.SessionIdle, SessionMax: w.SessionMax})
	if err != nil {
		return err
	}
	addr := MetricsListenAddr(w.Addr) // ":PORT" is loopback, as for metrics
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("web.addr %s: %w", addr, err)
	}
	l = tls.NewListener(newLimitListener(l, "web "+addr, func() int { return webConnCap }, n.log), tc)
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       30 * time.Second,
		// No write timeout: a live page's event stream stays open, and
		// sets its own deadline for each write.
		IdleTimeout:    idleTimeout,
		MaxHeaderBytes: maxHeaderBytes,
		ErrorLog:       nil,
	}
	n.log.Info().Str("addr", addr).Msg("web console listening (https)")
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	if err := hs.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
