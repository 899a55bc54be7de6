package model

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseDomainXML(t *testing.T) {
	tests := []struct {
		name    string
		xml     string
		want    DomainInfo
		wantErr string
	}{
		{"test driver", `<domain type='test'><name>vm1</name><memory unit='MiB'>512</memory><vcpu>2</vcpu></domain>`,
			DomainInfo{Name: "vm1", Type: "test", MemoryMiB: 512, VCPUs: 2}, ""},
		{"default KiB rounds up", `<domain type='kvm'><name>a</name><memory>1025</memory></domain>`,
			DomainInfo{Name: "a", Type: "kvm", MemoryMiB: 2, VCPUs: 1}, ""},
		{"GiB", `<domain type='xen'><name>x</name><memory unit='GiB'>4</memory><vcpu placement='static'>4</vcpu></domain>`,
			DomainInfo{Name: "x", Type: "xen", MemoryMiB: 4096, VCPUs: 4}, ""},
		{"trailing comment ok", `<domain type='kvm'><name>a</name><memory unit='M'>1</memory></domain><!-- c -->`,
			DomainInfo{Name: "a", Type: "kvm", MemoryMiB: 1, VCPUs: 1}, ""},
		{"disks", `<domain type='kvm'><name>d</name><memory unit='MiB'>64</memory><devices>
			<disk type='file' device='disk'><source file='/shared/d.qcow2'/><target dev='vda'/></disk>
			<disk type='block' device='disk'><source dev='/dev/vg0/d-data'/></disk>
			<disk type='volume' device='disk'><source pool='san' volume='d-logs'/></disk>
			<disk type='network' device='disk'><source protocol='rbd' name='pool/d'/></disk>
			<disk type='file' device='cdrom'><target dev='hdc'/></disk></devices></domain>`,
			DomainInfo{Name: "d", Type: "kvm", MemoryMiB: 64, VCPUs: 1, Disks: []string{"/shared/d.qcow2", "/dev/vg0/d-data", "san/d-logs", "pool/d"}}, ""},
		{"empty", "  ", DomainInfo{}, "empty"},
		{"not xml", "hello", DomainInfo{}, "does not parse"},
		{"wrong root", `<network><name>n</name></network>`, DomainInfo{}, "does not parse"},
		{"unclosed", `<domain type='kvm'><name>a</name>`, DomainInfo{}, "does not parse"},
		{"no type", `<domain><name>a</name><memory>1024</memory></domain>`, DomainInfo{}, "no type"},
		{"no name", `<domain type='kvm'><memory>1024</memory></domain>`, DomainInfo{}, "<name>"},
		{"bad name", `<domain type='kvm'><name>a/b</name><memory>1024</memory></domain>`, DomainInfo{}, "<name>"},
		{"no memory", `<domain type='kvm'><name>a</name></domain>`, DomainInfo{}, "<memory>: missing"},
		{"bad unit", `<domain type='kvm'><name>a</name><memory unit='parsec'>1</memory></domain>`, DomainInfo{}, "unknown unit"},
		{"huge", `<domain type='kvm'><name>a</name><memory unit='TiB'>99999999</memory></domain>`, DomainInfo{}, "too large"},
		{"zero vcpu", `<domain type='kvm'><name>a</name><memory>1024</memory><vcpu>0</vcpu></domain>`, DomainInfo{}, "<vcpu>"},
		{"junk after", `<domain type='kvm'><name>a</name><memory>1024</memory></domain>junk`, DomainInfo{}, "after"},
		{"second root", `<domain type='kvm'><name>a</name><memory>1024</memory></domain><domain/>`, DomainInfo{}, "after"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseDomainXML([]byte(tt.xml))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func FuzzParseDomainXML(f *testing.F) {
	f.Add([]byte(`<domain type='test'><name>vm1</name><memory unit='MiB'>512</memory><vcpu>2</vcpu></domain>`))
	f.Add([]byte(`<domain type='kvm'><name>a</name><memory unit='b'>1</memory></domain>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := ParseDomainXML(data)
		if err != nil {
			return
		}
		if info.MemoryMiB == 0 || info.VCPUs == 0 || info.Type == "" {
			t.Fatalf("accepted incomplete domain %+v", info)
		}
		if ValidateName("domain", info.Name) != nil {
			t.Fatalf("accepted bad name %q", info.Name)
		}
	})
}

func TestValidateName(t *testing.T) {
	for _, ok := range []string{"a", "host-1", "vm_2.prod", strings.Repeat("x", 64)} {
		if err := ValidateName("vm", ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "-a", ".a", "a b", "a/b", "ä", strings.Repeat("x", 65)} {
		if err := ValidateName("vm", bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
