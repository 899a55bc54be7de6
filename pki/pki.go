// Package pki makes and loads the cluster's certificates: a cluster CA
// (vmha tls init), host certificates for raft and the peer API, and client
// certificates for remote operators (vmha tls issue). Every certificate is
// both a server and a client certificate, because every host is both.
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// File names inside a TLS directory.
const (
	CACert = "ca.crt"
	CAKey  = "ca.key"
)

// CAValidity and CertValidity bound the certificates vmha makes.
const (
	CAValidity   = 10 * 365 * 24 * time.Hour
	CertValidity = 2 * 365 * 24 * time.Hour
)

// InitCA creates a new CA in dir (ca.crt, ca.key with mode 0600). It
// refuses to overwrite an existing CA: replacing it would cut every host off.
func InitCA(dir, cluster string) error {
	if _, err := os.Stat(filepath.Join(dir, CAKey)); err == nil {
		return fmt.Errorf("%s already exists: a new CA would lock every host out (remove it first if you mean it)", filepath.Join(dir, CAKey))
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "vmha CA " + cluster, Organization: []string{"vmha"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(CAValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	return writePair(dir, "ca", der, key)
}

// Roles a certificate carries in its subject's organizational unit: what
// its holder may do in the cluster.
const (
	RoleHost     = "host"
	RoleOperator = "operator"
	RoleReadOnly = "readonly"
)

// ValidRole checks a role name.
func ValidRole(role string) error {
	switch role {
	case RoleHost, RoleOperator, RoleReadOnly:
		return nil
	}
	return fmt.Errorf("role %q: want host, operator or readonly", role)
}

// Issue signs a certificate for name with the given role (RoleHost for a
// host, whose name is its node_name; RoleOperator or RoleReadOnly for a
// person or a program) with the CA in dir and writes NAME.crt and NAME.key
// there. ips and dnsNames become the certificate's subject alternative
// names; the name is always one.
func Issue(dir, name, role string, ips []net.IP, dnsNames []string) (certPath, keyPath string, err error) {
	if err := ValidRole(role); err != nil {
		return "", "", err
	}
	caCert, caKey, err := loadCA(dir)
	if err != nil {
		return "", "", err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: name, Organization: []string{"vmha"}, OrganizationalUnit: []string{role}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(CertValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     append([]string{name}, dnsNames...),
		IPAddresses:  ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return "", "", err
	}
	if err := writePair(dir, name, der, key); err != nil {
		return "", "", err
	}
	return filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key"), nil
}

func loadCA(dir string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, CACert), filepath.Join(dir, CAKey))
	if err != nil {
		return nil, nil, fmt.Errorf("cluster CA in %s (vmha tls init makes one): %w", dir, err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, nil, err
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok || !cert.IsCA {
		return nil, nil, fmt.Errorf("%s is not a vmha CA", filepath.Join(dir, CACert))
	}
	return cert, key, nil
}

func writePair(dir, name string, der []byte, key *ecdsa.PrivateKey) error {
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, name+".key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name+".crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

// Files name a host's or operator's TLS material.
type Files struct {
	CA   string `mapstructure:"ca_file"`
	Cert string `mapstructure:"cert_file"`
	Key  string `mapstructure:"key_file"`
}

// Enabled reports whether any file is set.
func (f Files) Enabled() bool { return f.CA != "" || f.Cert != "" || f.Key != "" }

// Config builds one tls.Config for both sides of mutual TLS: it presents
// the certificate, requires the peer's, and trusts only the cluster CA.
// Errors name the file; a key's content never appears.
func (f Files) Config() (*tls.Config, error) {
	if f.CA == "" || f.Cert == "" || f.Key == "" {
		return nil, errors.New("tls: ca_file, cert_file and key_file must all be set")
	}
	caPEM, err := os.ReadFile(f.CA)
	if err != nil {
		return nil, fmt.Errorf("tls.ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("tls.ca_file %s: no PEM certificate in it", f.CA)
	}
	pair, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, fmt.Errorf("tls.cert_file %s / tls.key_file %s: %w", f.Cert, f.Key, err)
	}
	if fi, err := os.Stat(f.Key); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("tls.key_file %s has mode %04o: it must be readable by its owner only (chmod 600)", f.Key, fi.Mode().Perm())
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{pair},
		RootCAs:      pool,
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		// Peers are named by address in the cluster, not by DNS: the
		// chain to the cluster CA is what is verified, and the peer's
		// name (the certificate's common name) is checked by the caller
		// against the hosts it knows.
		InsecureSkipVerify: true, //nolint:gosec // verified in VerifyPeerCertificate
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			return verifyChain(raw, pool)
		},
	}, nil
}

// verifyChain checks the peer's certificate against the cluster CA (used on
// the client side, where InsecureSkipVerify turned off the name check).
func verifyChain(raw [][]byte, pool *x509.CertPool) error {
	if len(raw) == 0 {
		return errors.New("tls: the peer sent no certificate")
	}
	leaf, err := x509.ParseCertificate(raw[0])
	if err != nil {
		return err
	}
	inter := x509.NewCertPool()
	for _, r := range raw[1:] {
		if c, err := x509.ParseCertificate(r); err == nil {
			inter.AddCert(c)
		}
	}
	_, err = leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		return fmt.Errorf("tls: the peer's certificate is not from the cluster CA: %w", err)
	}
	return nil
}

// PeerRole is the role (organizational unit) of the verified peer
// certificate of a connection: "" when it has none (issued before roles).
func PeerRole(cs *tls.ConnectionState) string {
	if cs == nil || len(cs.PeerCertificates) == 0 || len(cs.PeerCertificates[0].Subject.OrganizationalUnit) == 0 {
		return ""
	}
	return cs.PeerCertificates[0].Subject.OrganizationalUnit[0]
}

// PeerName is the common name of the verified peer certificate of a
// connection, or "".
func PeerName(cs *tls.ConnectionState) string {
	if cs == nil || len(cs.PeerCertificates) == 0 {
		return ""
	}
	return cs.PeerCertificates[0].Subject.CommonName
}
