package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/user"
	"strconv"
	"strings"
	"syscall"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/pki"
)

// Role is what a principal may do. Roles are not ordered: each route names
// the roles it admits (see Handler).
type Role string

// Roles.
const (
	// RoleOperator changes the cluster: VMs, hosts, fencing, rules.
	RoleOperator Role = "operator"
	// RoleHost is a host of the cluster: it makes peer calls for itself
	// only, forwards its own clients' requests, and reads.
	RoleHost Role = "host"
	// RoleReadOnly reads the cluster's state and nothing else.
	RoleReadOnly Role = "readonly"
)

// Principal is who made a request, as authenticated: the name a
// certificate the cluster CA signed carries, or the user the kernel gives
// for a unix-socket peer (SO_PEERCRED). Never a name the client sends: that
// is kept apart as a comment.
type Principal struct {
	Name string
	Role Role
	// How the principal was authenticated: "certificate", "socket",
	// "token" (an API token, tokens.go), or "none" (a plain TCP client
	// on a cluster that runs insecure).
	How string
	// TokenID is the API token's ID (How "token").
	TokenID string
	// Via is the host that forwarded the request (the follower the client
	// spoke to), "" when the client spoke to this host.
	Via string
	// On is the host whose socket the client used (How "socket").
	On string
}

// String is the principal as recorded: fence history, logs, config
// history.
func (p Principal) String() string {
	var s string
	switch p.How {
	case "socket":
		s = p.Name + " on " + p.On
	case "certificate":
		s = p.Name + " (" + string(p.Role) + " certificate)"
	case "token":
		s = p.Name + " (" + string(p.Role) + " token " + p.TokenID + ")"
	case "console":
		// The web console's own status reads (cluster/web.go).
		s = p.Name
	default:
		s = "unauthenticated " + p.Name
	}
	if p.Via != "" && (p.How != "socket" || p.Via != p.On) {
		s += " via " + p.Via
	}
	return s
}

type principalKey struct{}
type peerCredKey struct{}

// principalOf is the request's authenticated principal (set by
// authenticate).
func principalOf(r *http.Request) Principal {
	p, _ := r.Context().Value(principalKey{}).(Principal)
	return p
}

// actor is the principal to record for r, with what the client said about
// itself (SUDO_USER, --requested-by) as a comment when it adds anything.
func actor(r *http.Request, said string) string {
	p := principalOf(r)
	s := p.String()
	if said = strings.TrimSpace(said); said != "" && said != p.Name && !strings.HasPrefix(p.Name, said+" ") {
		s += fmt.Sprintf(" [says %q]", said)
	}
	return s
}

// Headers a host sets when it forwards a client's request to the leader:
// the client's principal as that host authenticated it. The leader trusts
// them only from a host certificate (a host already holds every secret of
// the replicated state, so it could act as an operator anyway); the
// recorded actor is then "NAME via HOST".
const (
	headerPrincipal     = "X-Vmha-Principal"
	headerPrincipalRole = "X-Vmha-Principal-Role"
	headerPrincipalHow  = "X-Vmha-Principal-How"
	headerPrincipalOn   = "X-Vmha-Principal-On"
	headerPrincipalTok  = "X-Vmha-Principal-Token"
)

// setForwardedPrincipal marks a request this host forwards with the
// principal of the client it came from.
func setForwardedPrincipal(h http.Header, p Principal) {
	h.Set(headerPrincipal, p.Name)
	h.Set(headerPrincipalRole, string(p.Role))
	h.Set(headerPrincipalHow, p.How)
	h.Set(headerPrincipalOn, p.On)
	h.Set(headerPrincipalTok, p.TokenID)
}

// peerCredContext stores the unix-socket peer's credentials in the
// connection's context (http.Server.ConnContext).
func peerCredContext(ctx context.Context, c net.Conn) context.Context {
	// The socket's listener wraps its connections (the connection cap).
	for {
		w, ok := c.(interface{ Unwrap() net.Conn })
		if !ok {
			break
		}
		c = w.Unwrap()
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return ctx
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return ctx
	}
	var cred *syscall.Ucred
	_ = raw.Control(func(fd uintptr) {
		cred, err = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	})
	if err != nil || cred == nil {
		return ctx
	}
	return context.WithValue(ctx, peerCredKey{}, *cred)
}

// socketPrincipal names the local user behind a socket connection.
func socketPrincipal(cred syscall.Ucred, host string) Principal {
	name := "uid " + strconv.Itoa(int(cred.Uid))
	if u, err := user.LookupId(strconv.Itoa(int(cred.Uid))); err == nil {
		name = u.Username + " (uid " + strconv.Itoa(int(cred.Uid)) + ")"
	}
	// Whoever can open the socket (mode 0600, or 0660 with socket_group)
	// is an operator of this host's cluster.
	return Principal{Name: name, Role: RoleOperator, How: "socket", On: host}
}

// certPrincipal is the principal of a verified client certificate: its
// common name, with the role of its organizational unit (pki.Role). A
// certificate of the host role must name a host of this cluster. A
// certificate without a role (issued before roles existed) is a host's
// when it names one, else read-only.
func (n *Node) certPrincipal(cs *tls.ConnectionState) (Principal, error) {
	name := pki.PeerName(cs)
	if name == "" {
		return Principal{}, errors.New("no verified client certificate")
	}
	p := Principal{Name: name, How: "certificate"}
	switch pki.PeerRole(cs) {
	case pki.RoleOperator:
		p.Role = RoleOperator
	case pki.RoleReadOnly:
		p.Role = RoleReadOnly
	case pki.RoleHost:
		if !n.knownPeer(name) {
			return Principal{}, fmt.Errorf("certificate %q is a host certificate, but %s is not a host of this cluster", name, name)
		}
		p.Role = RoleHost
	case "":
		if n.knownPeer(name) {
			p.Role = RoleHost
		} else {
			p.Role = RoleReadOnly
		}
	default:
		return Principal{}, fmt.Errorf("certificate %q has an unknown role %q", name, pki.PeerRole(cs))
	}
	return p, nil
}

// authenticate finds the principal of every request before any handler
// runs: the socket's peer (local), or the verified certificate (TCP with
// mutual TLS), or, on a cluster that runs insecure, an unauthenticated
// client with every role. A request forwarded by a host carries its
// client's principal, which only a host may vouch for.
func (n *Node) authenticate(local bool, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p Principal
		switch {
		case local:
			cred, ok := r.Context().Value(peerCredKey{}).(syscall.Ucred)
			if !ok {
				writeErr(w, http.StatusForbidden, "", errors.New("no peer credentials on the socket connection"))
				return
			}
			p = socketPrincipal(cred, n.cfg.NodeName)
		case n.tls != nil:
			var err error
			if r.TLS == nil {
				writeErr(w, http.StatusForbidden, "", errors.New("a client certificate of the cluster CA is required"))
				return
			}
			p, err = n.certPrincipal(r.TLS)
			if err != nil {
				n.log.Warn().Err(err).Str("remote", r.RemoteAddr).Str("path", r.URL.Path).Msg("refused a request")
				writeErr(w, http.StatusForbidden, "", err)
				return
			}
		default:
			// Insecure (a lab on loopback, or insecure: true): nothing
			// is authenticated, so anyone may claim any host.
			p = Principal{Name: r.RemoteAddr, Role: RoleOperator, How: "none"}
		}
		if via := r.Header.Get(api.HeaderForwarded); via != "" && !local {
			switch {
			case p.How == "certificate" && p.Role != RoleHost:
				writeErr(w, http.StatusForbidden, "", fmt.Errorf("certificate %q is not a host of this cluster: it cannot forward requests", p.Name))
				return
			case p.How == "certificate" && via != p.Name:
				writeErr(w, http.StatusForbidden, "", fmt.Errorf("host %s forwards in the name of %s", p.Name, via))
				return
			}
			if name := r.Header.Get(headerPrincipal); name != "" {
				// A client's request, forwarded by host via.
				fp := Principal{Name: name, Role: Role(r.Header.Get(headerPrincipalRole)), How: r.Header.Get(headerPrincipalHow), On: r.Header.Get(headerPrincipalOn), Via: via}
				fp.TokenID = r.Header.Get(headerPrincipalTok)
				if err := n.recheckToken(fp); err != nil { // tokens.go
					writeErr(w, http.StatusForbidden, "", err)
					return
				}
				if fp.Role != RoleOperator && fp.Role != RoleReadOnly {
					writeErr(w, http.StatusForbidden, "", fmt.Errorf("forwarded principal %q has role %q: only operators' and read-only requests are forwarded", name, fp.Role))
					return
				}
				p = fp
			} else if p.How == "none" {
				// The host's own call (an agent's report): insecure, so
				// it is taken at its word.
				p = Principal{Name: via, Role: RoleHost, How: "none"}
			}
		}
		ctx := context.WithValue(r.Context(), principalKey{}, p)
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

// allow admits the roles given to h; an unauthenticated client of an
// insecure cluster is admitted everywhere.
func allow(h http.HandlerFunc, roles ...Role) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p := principalOf(r)
		if p.How == "none" && p.Role != "" {
			h(w, r)
			return
		}
		for _, role := range roles {
			if p.Role == role {
				h(w, r)
				return
			}
		}
		writeErr(w, http.StatusForbidden, "", fmt.Errorf("%s may not %s %s (needs the %s role)", p, r.Method, r.URL.Path, rolesText(roles)))
	}
}

func rolesText(roles []Role) string {
	s := make([]string, len(roles))
	for i, r := range roles {
		s[i] = string(r)
	}
	return strings.Join(s, " or ")
}

// speaksFor reports whether the request's principal may make a peer call
// about host: only host itself (a host speaks only for itself), or anyone
// on an insecure cluster.
func speaksFor(r *http.Request, host string) error {
	p := principalOf(r)
	if p.How == "none" {
		return nil
	}
	if p.Role == RoleHost && p.Name == host && p.Via == "" {
		return nil
	}
	return fmt.Errorf("%s may not speak for host %s: a host speaks only for itself", p, host)
}
