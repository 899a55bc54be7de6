package cluster

import (
	"crypto/tls"
	"net"
	"time"

	"github.com/hashicorp/raft"

	"github.com/vmha/vmha/model"
	"github.com/vmha/vmha/pki"
)

// knownPeer reports whether name (a verified certificate's common name) is
// a host of this cluster: configured in the replicated state, or a gossip
// member (a host joining for the first time registers over the peer API).
func (n *Node) knownPeer(name string) bool {
	if name == "" {
		return false
	}
	known := false
	n.fsm.Read(func(s *model.State) { _, known = s.Config.Hosts[name] })
	if known {
		return true
	}
	_, known = n.members()[name]
	return known
}

// tlsStream carries raft over mutual TLS. Accept completes the handshake
// and drops connections whose certificate names no host of this cluster, so
// raft never reads a byte from a stranger.
type tlsStream struct {
	net.Listener
	n    *Node
	adv  net.Addr
	conf *tls.Config
}

func (s *tlsStream) Accept() (net.Conn, error) {
	for {
		c, err := s.Listener.Accept()
		if err != nil {
			return nil, err
		}
		tc := c.(*tls.Conn)
		_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
		if err := tc.Handshake(); err != nil {
			s.n.log.Warn().Err(err).Str("remote", c.RemoteAddr().String()).Msg("raft: TLS handshake refused")
			_ = c.Close()
			continue
		}
		_ = tc.SetDeadline(time.Time{})
		cs := tc.ConnectionState()
		if name := pki.PeerName(&cs); !s.n.knownPeer(name) {
			s.n.log.Warn().Str("peer", name).Str("remote", c.RemoteAddr().String()).Msg("raft: refused a certificate that names no host of this cluster")
			_ = c.Close()
			continue
		}
		return c, nil
	}
}

func (s *tlsStream) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return tls.DialWithDialer(&net.Dialer{Timeout: timeout}, "tcp", string(address), s.conf)
}

func (s *tlsStream) Addr() net.Addr { return s.adv }
