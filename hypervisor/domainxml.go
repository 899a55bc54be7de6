package hypervisor

import (
	"context"
	"fmt"

	"libvirt.org/go/libvirt"
)

// XMLReader is a Hypervisor that gives a domain's XML as the hypervisor
// holds it (vmha vm diff, vmha vm add --from-libvirt). It is an interface of
// its own so that the simulated hypervisors of the test labs need not
// implement it.
type XMLReader interface {
	// DomainXML returns the domain's XML: with inactive, its persistent
	// definition (what its next start uses); else the running
	// definition when it runs (the persistent one when it does not). A
	// missing domain gives ErrNotFound (wrapped). Secrets (graphics
	// passwords) are never included.
	DomainXML(ctx context.Context, name string, inactive bool) (string, error)
}

var _ XMLReader = (*Libvirt)(nil)

// DomainXML implements XMLReader.
func (l *Libvirt) DomainXML(ctx context.Context, name string, inactive bool) (string, error) {
	if err := l.acquire(ctx); err != nil {
		return "", err
	}
	defer l.release()
	dom, err := l.conn.LookupDomainByName(name)
	if err != nil {
		if isCode(err, libvirt.ERR_NO_DOMAIN) {
			return "", fmt.Errorf("domain %q on %s: %w", name, l.uri, ErrNotFound)
		}
		return "", fmt.Errorf("look up domain %q on %s: %w", name, l.uri, wrapLibvirtErr(err))
	}
	defer dom.Free()
	var flags libvirt.DomainXMLFlags
	if inactive {
		flags |= libvirt.DOMAIN_XML_INACTIVE
	}
	s, err := dom.GetXMLDesc(flags)
	if err != nil {
		if isCode(err, libvirt.ERR_NO_DOMAIN) {
			return "", fmt.Errorf("domain %q on %s: %w", name, l.uri, ErrNotFound)
		}
		return "", fmt.Errorf("XML of domain %q on %s: %w", name, l.uri, wrapLibvirtErr(err))
	}
	return s, nil
}
