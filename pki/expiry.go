package pki

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"
)

// NotAfter is when the first certificate in the PEM file at path to
// expire does: the host certificate of a cert_file (and the intermediates
// bundled with it), or the earliest of the CAs in a ca_file.
func NotAfter(path string) (time.Time, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return time.Time{}, err
	}
	certs, errs := ParseCertificates(data)
	if len(errs) > 0 {
		return time.Time{}, fmt.Errorf("%s: %w", path, errs[0])
	}
	var first time.Time
	for _, c := range certs {
		if first.IsZero() || c.NotAfter.Before(first) {
			first = c.NotAfter
		}
	}
	if first.IsZero() {
		return time.Time{}, fmt.Errorf("%s: %w", path, errNoCertificate)
	}
	return first, nil
}

var errNoCertificate = errors.New("no PEM certificate in the file")

// ParseCertificates reads every CERTIFICATE block of PEM data, skipping
// other blocks; a block that does not parse is an error of its own and the
// others are still read.
func ParseCertificates(data []byte) ([]*x509.Certificate, []error) {
	var out []*x509.Certificate
	var errs []error
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return out, errs
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, c)
	}
}
