package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/config"
	"github.com/vmha/vmha/model"
)

// certState is a verified connection whose client certificate is cn/ou.
func certState(cn, ou string) *tls.ConnectionState {
	sub := pkix.Name{CommonName: cn}
	if ou != "" {
		sub.OrganizationalUnit = []string{ou}
	}
	return &tls.ConnectionState{PeerCertificates: []*x509.Certificate{{Subject: sub}}}
}

// authNode is a node with TLS on (a non-nil config) and the hosts of
// baseFSM (h1, h2), serving a recorder of the principal each call reached.
func authNode(t *testing.T) (*Node, http.Handler, *[]Principal) {
	n := &Node{cfg: &config.Daemon{NodeName: "h1"}, fsm: baseFSM(t), log: zerolog.Nop(), tls: &tls.Config{}}
	var seen []Principal
	mux := http.NewServeMux()
	mux.HandleFunc("GET /read", allow(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, principalOf(r))
	}, RoleReadOnly, RoleHost, RoleOperator))
	mux.HandleFunc("POST /op", allow(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, principalOf(r))
	}, RoleOperator))
	mux.HandleFunc("POST /peer/{host}", allow(func(w http.ResponseWriter, r *http.Request) {
		if err := speaksFor(r, r.PathValue("host")); err != nil {
			writeErr(w, http.StatusForbidden, "", err)
			return
		}
		seen = append(seen, principalOf(r))
	}, RoleHost))
	return n, mux, &seen
}

// Every request is authenticated before a handler runs, and each route
// admits only its roles; a host speaks only for itself; forwarded
// principals are believed only from hosts.
func TestAuthenticateAndAuthorize(t *testing.T) {
	type call struct {
		name    string
		method  string
		path    string
		tls     *tls.ConnectionState
		header  map[string]string
		code    int
		wantWho string
	}
	fwd := func(via, name, role string) map[string]string {
		return map[string]string{api.HeaderForwarded: via, headerPrincipal: name, headerPrincipalRole: role, headerPrincipalHow: "certificate"}
	}
	for _, c := range []call{
		{"no certificate", "GET", "/read", nil, nil, 403, ""},
		{"readonly reads", "GET", "/read", certState("ro", "readonly"), nil, 200, "ro (readonly certificate)"},
		{"readonly may not change", "POST", "/op", certState("ro", "readonly"), nil, 403, ""},
		{"operator changes", "POST", "/op", certState("alice", "operator"), nil, 200, "alice (operator certificate)"},
		{"operator may not make peer calls", "POST", "/peer/h2", certState("alice", "operator"), nil, 403, ""},
		{"host speaks for itself", "POST", "/peer/h2", certState("h2", "host"), nil, 200, "h2 (host certificate)"},
		{"host may not speak for another", "POST", "/peer/h1", certState("h2", "host"), nil, 403, ""},
		{"host certificate of no host", "GET", "/read", certState("h9", "host"), nil, 403, ""},
		{"host may not change as operator", "POST", "/op", certState("h2", "host"), nil, 403, ""},
		{"legacy certificate of a host", "POST", "/peer/h2", certState("h2", ""), nil, 200, "h2 (host certificate)"},
		{"legacy certificate of no host is read-only", "POST", "/op", certState("bob", ""), nil, 403, ""},
		{"unknown role", "GET", "/read", certState("x", "root"), nil, 403, ""},
		{"operator forwarded by a host", "POST", "/op", certState("h2", "host"), fwd("h2", "alice", "operator"), 200, "alice (operator certificate) via h2"},
		{"forwarded operator may not make peer calls", "POST", "/peer/h2", certState("h2", "host"), fwd("h2", "alice", "operator"), 403, ""},
		{"host forwarding as another host", "POST", "/op", certState("h2", "host"), fwd("h1", "alice", "operator"), 403, ""},
		{"operator may not forward", "POST", "/op", certState("alice", "operator"), fwd("alice", "root", "operator"), 403, ""},
		{"forwarded host role is refused", "POST", "/peer/h1", certState("h2", "host"), fwd("h2", "h1", "host"), 403, ""},
		{"host's own forwarded call", "POST", "/peer/h2", certState("h2", "host"), map[string]string{api.HeaderForwarded: "h2"}, 200, "h2 (host certificate)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			n, mux, seen := authNode(t)
			r := httptest.NewRequest(c.method, c.path, nil)
			r.TLS = c.tls
			for k, v := range c.header {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			n.authenticate(false, mux).ServeHTTP(w, r)
			if w.Code != c.code {
				t.Fatalf("status %d, want %d: %s", w.Code, c.code, w.Body.String())
			}
			if c.code == 200 {
				if len(*seen) != 1 || (*seen)[0].String() != c.wantWho {
					t.Fatalf("principal %v, want %q", *seen, c.wantWho)
				}
			} else if len(*seen) != 0 {
				t.Fatalf("a refused call reached the handler as %v", *seen)
			}
		})
	}
}

// The local socket's principal is the kernel's word (SO_PEERCRED), and
// what the client says about itself is only a comment.
func TestSocketPrincipalAndActor(t *testing.T) {
	n, mux, seen := authNode(t)
	r := httptest.NewRequest("POST", "/op", nil)
	r = r.WithContext(contextWithCred(r, syscall.Ucred{Uid: 0}))
	w := httptest.NewRecorder()
	n.authenticate(true, mux).ServeHTTP(w, r)
	if w.Code != 200 || len(*seen) != 1 {
		t.Fatalf("socket call: %d %s", w.Code, w.Body.String())
	}
	p := (*seen)[0]
	if p.How != "socket" || !strings.HasPrefix(p.Name, "root (uid 0)") || p.On != "h1" {
		t.Fatalf("socket principal %+v", p)
	}
	// A socket connection without credentials is refused.
	w = httptest.NewRecorder()
	n.authenticate(true, mux).ServeHTTP(w, httptest.NewRequest("POST", "/op", nil))
	if w.Code != 403 {
		t.Fatalf("no credentials: %d", w.Code)
	}
	rr := httptest.NewRequest("POST", "/op", nil)
	rr = rr.WithContext(contextWithPrincipal(rr, p))
	if got := actor(rr, "mallory"); !strings.HasPrefix(got, "root (uid 0) on h1") || !strings.Contains(got, `[says "mallory"]`) {
		t.Fatalf("actor = %q: the claimed name must be a comment after the authenticated one", got)
	}
}

// A forged observation for another host changes nothing.
func TestObservationOnlyFromItsHost(t *testing.T) {
	n, _, _ := authNode(t)
	body, _ := json.Marshal(model.Observation{Host: "h1", VMs: map[string]model.VMObserve{"vm1": {State: "crashed"}}})
	r := httptest.NewRequest("POST", api.PathObserve, nil)
	r = r.WithContext(contextWithPrincipal(r, Principal{Name: "h2", Role: RoleHost, How: "certificate"}))
	w := httptest.NewRecorder()
	before := n.fsm.Copy()
	n.handleObserve(w, r, body)
	if w.Code != 403 || !strings.Contains(w.Body.String(), "speaks only for itself") {
		t.Fatalf("forged observation: %d %s", w.Code, w.Body.String())
	}
	if !equalJSON(before, n.fsm.Copy()) {
		t.Fatal("a forged observation changed the state")
	}
}

func contextWithCred(r *http.Request, c syscall.Ucred) context.Context {
	return context.WithValue(r.Context(), peerCredKey{}, c)
}

func contextWithPrincipal(r *http.Request, p Principal) context.Context {
	return context.WithValue(r.Context(), principalKey{}, p)
}

func TestMetricsDefaultToLoopback(t *testing.T) {
	for in, want := range map[string]string{":9464": "127.0.0.1:9464", "192.0.2.1:9464": "192.0.2.1:9464", "[::1]:9": "[::1]:9"} {
		if got := MetricsListenAddr(in); got != want {
			t.Errorf("%s listens on %s, want %s", in, got, want)
		}
	}
}

// The socket's principal comes from the kernel, through the connection cap's
// wrapper: a real unix socket, accepted by the capped listener.
func TestPeerCredThroughTheCappedListener(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	ul, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	l := newLimitListener(ul, "socket", func() int { return 4 }, zerolog.Nop())
	defer func() { _ = l.Close() }()
	go func() {
		c, err := net.Dial("unix", path)
		if err == nil {
			defer c.Close()
			time.Sleep(200 * time.Millisecond)
		}
	}()
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cred, ok := peerCredContext(context.Background(), c).Value(peerCredKey{}).(syscall.Ucred)
	if !ok || int(cred.Uid) != os.Getuid() || int(cred.Pid) != os.Getpid() {
		t.Fatalf("peer credentials %+v (found %v), want this process", cred, ok)
	}
}
