package hypervisor

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/vmha/vmha/model"
)

// TestDomainXML: the running definition of a domain redefined while it
// runs is the old one, its persistent definition the new one (what vmha vm
// update --at-next-start relies on); what libvirt gives back parses as vmha
// reads domain XML (vmha vm add --from-libvirt).
func TestDomainXML(t *testing.T) {
	l := openHost(t, "")
	ctx := context.Background()
	mustDefine(t, l, "vm1")
	mustStart(t, l, "vm1")
	if _, err := l.Define(ctx, domainXML("vm1", 1024)); err != nil {
		t.Fatal(err)
	}
	live, err := l.DomainXML(ctx, "vm1", false)
	if err != nil {
		t.Fatal(err)
	}
	next, err := l.DomainXML(ctx, "vm1", true)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what, xml string
		mib       uint64
	}{{"running", live, 512}, {"persistent", next, 1024}} {
		info, err := model.ParseDomainXML([]byte(c.xml))
		if err != nil {
			t.Fatalf("%s XML does not parse as vmha reads it: %v\n%s", c.what, err, c.xml)
		}
		if info.Name != "vm1" || info.MemoryMiB != c.mib {
			t.Errorf("%s definition: %s with %d MiB, want vm1 with %d MiB", c.what, info.Name, info.MemoryMiB, c.mib)
		}
	}
	if !strings.Contains(live, "<uuid>") {
		t.Errorf("libvirt's XML has no uuid:\n%s", live)
	}
	if _, err := l.DomainXML(ctx, "nosuch", false); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing domain: %v, want ErrNotFound", err)
	}
}
