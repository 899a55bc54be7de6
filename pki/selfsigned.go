package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"time"
)

// SelfSigned is a server certificate for name that nobody signed: the web
// console's when neither web.cert_file nor the cluster's certificates are
// configured. It is made once and kept in dir as NAME.crt/NAME.key (the
// key mode 0600), so a browser's exception for it survives a restart; a
// kept one that expires within a month is made anew.
func SelfSigned(dir, name string, ips []net.IP, dnsNames []string) (certPath, keyPath string, err error) {
	certPath, keyPath = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if pair, err := tls.LoadX509KeyPair(certPath, keyPath); err == nil {
		if c, err := x509.ParseCertificate(pair.Certificate[0]); err == nil && time.Until(c.NotAfter) > 30*24*time.Hour {
			return certPath, keyPath, nil
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: name, Organization: []string{"vmha (self-signed)"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(CertValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     append([]string{name, "localhost"}, dnsNames...),
		IPAddresses:  append([]net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, ips...),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", err
	}
	if err := writePair(dir, name, der, key); err != nil {
		return "", "", fmt.Errorf("self-signed certificate in %s: %w", dir, err)
	}
	return certPath, keyPath, nil
}

// Fingerprint is the SHA-256 fingerprint of a PEM certificate file's first
// certificate, as browsers show it (AB:CD:...).
func Fingerprint(certPath string) (string, error) {
	pair, err := tls.LoadX509KeyPair(certPath, strings.TrimSuffix(certPath, ".crt")+".key")
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(pair.Certificate[0])
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String(), nil
}
