package model

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"libvirt.org/go/libvirtxml"
)

func TestParseDomainXML(t *testing.T) {
	const u = "0d4c6a4e-7b43-4f4e-9c1e-1f2a3b4c5d6e"
	tests := []struct {
		name    string
		xml     string
		want    DomainInfo
		wantErr string
	}{
		{"test driver", `<domain type='test'><name>vm1</name><memory unit='MiB'>512</memory><vcpu>2</vcpu></domain>`,
			DomainInfo{Name: "vm1", Type: "test", MemoryKiB: 512 << 10, MemoryMiB: 512, VCPUs: 2}, ""},
		{"default KiB rounds up", `<domain type='kvm'><name>a</name><memory>1025</memory></domain>`,
			DomainInfo{Name: "a", Type: "kvm", MemoryKiB: 1025, MemoryMiB: 2, VCPUs: 1}, ""},
		{"GiB", `<domain type='xen'><name>x</name><memory unit='GiB'>4</memory><vcpu placement='static'>4</vcpu></domain>`,
			DomainInfo{Name: "x", Type: "xen", MemoryKiB: 4 << 20, MemoryMiB: 4096, VCPUs: 4}, ""},
		{"bytes round up to KiB", `<domain type='kvm'><name>a</name><memory unit='b'>1025</memory></domain>`,
			DomainInfo{Name: "a", Type: "kvm", MemoryKiB: 2, MemoryMiB: 1, VCPUs: 1}, ""},
		{"decimal unit", `<domain type='kvm'><name>a</name><memory unit='MB'>1</memory></domain>`,
			DomainInfo{Name: "a", Type: "kvm", MemoryKiB: 977, MemoryMiB: 1, VCPUs: 1}, ""},
		{"unit case and byte", `<domain type='kvm'><name>a</name><memory unit='BYTE'>1048576</memory></domain>`,
			DomainInfo{Name: "a", Type: "kvm", MemoryKiB: 1024, MemoryMiB: 1, VCPUs: 1}, ""},
		{"single letter unit", `<domain type='kvm'><name>a</name><memory unit='g'>1</memory></domain>`,
			DomainInfo{Name: "a", Type: "kvm", MemoryKiB: 1 << 20, MemoryMiB: 1024, VCPUs: 1}, ""},
		{"PiB is known", `<domain type='kvm'><name>a</name><memory unit='PiB'>1</memory></domain>`,
			DomainInfo{Name: "a", Type: "kvm", MemoryKiB: 1 << 40, MemoryMiB: 1 << 30, VCPUs: 1}, ""},
		{"leading space in a number", "<domain type='kvm'><name>a</name><memory>\n  1024</memory><vcpu> 2</vcpu></domain>",
			DomainInfo{Name: "a", Type: "kvm", MemoryKiB: 1024, MemoryMiB: 1, VCPUs: 2}, ""},
		{"uuid canonical", `<domain type='kvm'><name>a</name><uuid> 0D4C6A4E-7B43-4F4E-9C1E-1F2A3B4C5D6E </uuid><memory>1024</memory></domain>`,
			DomainInfo{Name: "a", UUID: u, Type: "kvm", MemoryKiB: 1024, MemoryMiB: 1, VCPUs: 1}, ""},
		{"current vcpus below max: max counts", `<domain type='kvm'><name>a</name><memory>1024</memory><vcpu current='1'>4</vcpu></domain>`,
			DomainInfo{Name: "a", Type: "kvm", MemoryKiB: 1024, MemoryMiB: 1, VCPUs: 4}, ""},
		{"trailing comment ok", `<domain type='kvm'><name>a</name><memory unit='M'>1</memory></domain><!-- c -->`,
			DomainInfo{Name: "a", Type: "kvm", MemoryKiB: 1024, MemoryMiB: 1, VCPUs: 1}, ""},
		{"declaration, BOM, comments and CDATA", "\ufeff<?xml version='1.0' encoding='UTF-8'?>\n<!-- c --><domain type='kvm'><name><![CDATA[a]]></name><memory>1<!-- x -->024</memory></domain>\n",
			DomainInfo{Name: "a", Type: "kvm", MemoryKiB: 1024, MemoryMiB: 1, VCPUs: 1}, ""},
		{"repeatable and extension elements", `<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'><name>a</name><memory>1024</memory>
			<seclabel type='dynamic' model='selinux'/><seclabel type='none' model='dac'/><sysinfo type='smbios'/><sysinfo type='fwcfg'/>
			<metadata><app:x xmlns:app='urn:app'><app:name>meta</app:name><app:name>again</app:name></app:x></metadata>
			<qemu:commandline><qemu:arg value='-a'/><qemu:arg value='-b'/></qemu:commandline></domain>`,
			DomainInfo{Name: "a", Type: "kvm", MemoryKiB: 1024, MemoryMiB: 1, VCPUs: 1}, ""},
		{"numa cells and memory devices agree", `<domain type='kvm'><name>a</name><memory unit='MiB'>3072</memory><vcpu>2</vcpu>
			<cpu><numa><cell id='0' cpus='0' memory='1' unit='GiB'/><cell id='1' cpus='1' memory='1048576'/></numa></cpu>
			<devices><memory model='dimm'><target><size unit='GiB'>1</size><node>0</node></target></memory></devices></domain>`,
			DomainInfo{Name: "a", Type: "kvm", MemoryKiB: 3 << 20, MemoryMiB: 3072, VCPUs: 2}, ""},
		{"memory devices within memory", `<domain type='kvm'><name>a</name><memory unit='GiB'>2</memory>
			<devices><memory model='dimm'><target><size unit='GiB'>1</size></target></memory></devices></domain>`,
			DomainInfo{Name: "a", Type: "kvm", MemoryKiB: 2 << 20, MemoryMiB: 2048, VCPUs: 1}, ""},
		{"disks", `<domain type='kvm'><name>d</name><memory unit='MiB'>64</memory><devices>
			<disk type='file' device='disk'><source file='/shared/d.qcow2'/><target dev='vda'/></disk>
			<disk type='block' device='disk'><source dev='/dev/vg0/d-data'/></disk>
			<disk type='volume' device='disk'><source pool='san' volume='d-logs'/></disk>
			<disk type='network' device='disk'><source protocol='rbd' name='pool/d'/></disk>
			<disk device='disk'><source file='/shared/d-notype.img'/></disk>
			<disk type='block' device='disk'><source file='/not/read/by/libvirt'/></disk>
			<disk type='file' device='cdrom'><target dev='hdc'/></disk></devices></domain>`,
			DomainInfo{Name: "d", Type: "kvm", MemoryKiB: 64 << 10, MemoryMiB: 64, VCPUs: 1,
				Disks: []string{"/shared/d.qcow2", "/dev/vg0/d-data", "san/d-logs", "pool/d", "/shared/d-notype.img", "(disk without source)"}}, ""},

		// Refusals: each error names the element (or says the file is broken).
		{"empty", "  ", DomainInfo{}, "empty"},
		{"too big", "<domain>" + strings.Repeat(" ", MaxDomainXML) + "</domain>", DomainInfo{}, "more than the"},
		{"not xml", "hello", DomainInfo{}, "does not parse"},
		{"wrong root", `<network><name>n</name></network>`, DomainInfo{}, "does not parse: the root element is <network>"},
		{"unclosed", `<domain type='kvm'><name>a</name>`, DomainInfo{}, "does not parse"},
		{"no type", `<domain><name>a</name><memory>1024</memory></domain>`, DomainInfo{}, "no type"},
		{"no name", `<domain type='kvm'><memory>1024</memory></domain>`, DomainInfo{}, "<name>"},
		{"bad name", `<domain type='kvm'><name>a/b</name><memory>1024</memory></domain>`, DomainInfo{}, "<name>"},
		{"name with spaces around", `<domain type='kvm'><name> a </name><memory>1024</memory></domain>`, DomainInfo{}, `<name>: domain name " a "`},
		{"name with a line break", "<domain type='kvm'><name>a\n</name><memory>1024</memory></domain>", DomainInfo{}, "<name>"},
		{"no memory", `<domain type='kvm'><name>a</name></domain>`, DomainInfo{}, "<memory>: missing"},
		{"empty memory", `<domain type='kvm'><name>a</name><memory></memory></domain>`, DomainInfo{}, "<memory>: empty"},
		{"zero memory", `<domain type='kvm'><name>a</name><memory unit='GiB'>0</memory></domain>`, DomainInfo{}, "<memory>: must be more than zero"},
		{"bad unit", `<domain type='kvm'><name>a</name><memory unit='parsec'>1</memory></domain>`, DomainInfo{}, "<memory>: unknown unit"},
		{"unit with space", `<domain type='kvm'><name>a</name><memory unit=' MiB'>1</memory></domain>`, DomainInfo{}, "<memory>: unknown unit"},
		{"unit iB alone", `<domain type='kvm'><name>a</name><memory unit='iB'>1</memory></domain>`, DomainInfo{}, "<memory>: unknown unit"},
		{"unit Kelvin sign", "<domain type='kvm'><name>a</name><memory unit='\u212aiB'>1</memory></domain>", DomainInfo{}, "<memory>: unknown unit"},
		{"unit with a tab", "<domain type='kvm'><name>a</name><memory unit='Mi\tB'>1</memory></domain>", DomainInfo{}, "attribute unit of <memory>"},
		{"huge", `<domain type='kvm'><name>a</name><memory unit='TiB'>99999999</memory></domain>`, DomainInfo{}, "<memory>: 99999999 TiB is too large"},
		{"beyond 64 bits", `<domain type='kvm'><name>a</name><memory>99999999999999999999999</memory></domain>`, DomainInfo{}, "<memory>: \"99999999999999999999999\" is too large"},
		{"memory not a number", `<domain type='kvm'><name>a</name><memory>lots</memory></domain>`, DomainInfo{}, "<memory>: \"lots\" is not a number"},
		{"memory with a sign", `<domain type='kvm'><name>a</name><memory>+1024</memory></domain>`, DomainInfo{}, "<memory>: \"+1024\" is not a number"},
		{"memory with trailing space", `<domain type='kvm'><name>a</name><memory>1024 </memory></domain>`, DomainInfo{}, "<memory>: \"1024 \" is not a number"},
		{"zero vcpu", `<domain type='kvm'><name>a</name><memory>1024</memory><vcpu>0</vcpu></domain>`, DomainInfo{}, "<vcpu>"},
		{"empty vcpu", `<domain type='kvm'><name>a</name><memory>1024</memory><vcpu/></domain>`, DomainInfo{}, "<vcpu>"},
		{"vcpu trailing space", `<domain type='kvm'><name>a</name><memory>1024</memory><vcpu>2 </vcpu></domain>`, DomainInfo{}, "<vcpu>"},
		{"too many vcpus", `<domain type='kvm'><name>a</name><memory>1024</memory><vcpu>65536</vcpu></domain>`, DomainInfo{}, "<vcpu>"},
		{"bad uuid", `<domain type='kvm'><name>a</name><uuid>not-a-uuid</uuid><memory>1024</memory></domain>`, DomainInfo{}, "<uuid>"},
		{"uuid without dashes", `<domain type='kvm'><name>a</name><uuid>0d4c6a4e7b434f4e9c1e1f2a3b4c5d6e</uuid><memory>1024</memory></domain>`, DomainInfo{}, "<uuid>"},
		{"empty uuid", `<domain type='kvm'><name>a</name><uuid></uuid><memory>1024</memory></domain>`, DomainInfo{}, "<uuid>: empty"},
		{"junk after", `<domain type='kvm'><name>a</name><memory>1024</memory></domain>junk`, DomainInfo{}, "after"},
		{"second root", `<domain type='kvm'><name>a</name><memory>1024</memory></domain><domain/>`, DomainInfo{}, "after"},
		{"text before", `junk<domain type='kvm'><name>a</name><memory>1024</memory></domain>`, DomainInfo{}, "before <domain>"},

		// The attack: libvirt reads the first of each, encoding/xml the last.
		{"two names", `<domain type='kvm'><name>big</name><name>a</name><memory>1024</memory></domain>`, DomainInfo{}, "<name> appears 2 times; libvirt reads only the first"},
		{"two memories", `<domain type='kvm'><name>a</name><memory unit='GiB'>7</memory><memory unit='MiB'>64</memory></domain>`, DomainInfo{}, "<memory> appears 2 times; libvirt reads only the first"},
		{"three vcpus", `<domain type='kvm'><name>a</name><memory>1024</memory><vcpu>8</vcpu><vcpu>1</vcpu><vcpu>1</vcpu></domain>`, DomainInfo{}, "<vcpu> appears 3 times"},
		{"two uuids", `<domain type='kvm'><name>a</name><uuid>` + u + `</uuid><uuid>` + u + `</uuid><memory>1024</memory></domain>`, DomainInfo{}, "<uuid> appears 2 times"},
		{"two devices", `<domain type='kvm'><name>a</name><memory>1024</memory><devices/><devices/></domain>`, DomainInfo{}, "<devices> appears 2 times"},
		{"two cpus", `<domain type='kvm'><name>a</name><memory>1024</memory><cpu/><cpu/></domain>`, DomainInfo{}, "<cpu> appears 2 times"},
		{"two os", `<domain type='kvm'><name>a</name><memory>1024</memory><os/><os/></domain>`, DomainInfo{}, "<os> appears 2 times"},
		{"two currentMemory", `<domain type='kvm'><name>a</name><memory>1024</memory><currentMemory>1</currentMemory><currentMemory>2</currentMemory></domain>`, DomainInfo{}, "<currentMemory> appears 2 times"},
		{"two maxMemory", `<domain type='kvm'><name>a</name><memory>1024</memory><maxMemory>1</maxMemory><maxMemory>2</maxMemory></domain>`, DomainInfo{}, "<maxMemory> appears 2 times"},
		{"two on_crash", `<domain type='kvm'><name>a</name><memory>1024</memory><on_crash>destroy</on_crash><on_crash>restart</on_crash></domain>`, DomainInfo{}, "<on_crash> appears 2 times"},
		{"two metadata", `<domain type='kvm'><name>a</name><memory>1024</memory><metadata/><metadata/></domain>`, DomainInfo{}, "<metadata> appears 2 times"},
		{"unknown element twice", `<domain type='kvm'><name>a</name><memory>1024</memory><future/><future/></domain>`, DomainInfo{}, "<future> appears 2 times"},
		{"two numa", `<domain type='kvm'><name>a</name><memory unit='GiB'>1</memory><cpu><numa><cell id='0' cpus='0' memory='1' unit='GiB'/></numa><numa><cell id='1' cpus='0' memory='7' unit='GiB'/></numa></cpu></domain>`, DomainInfo{}, "<numa> appears 2 times in <cpu>"},
		{"two disk sources", `<domain type='kvm'><name>a</name><memory>1024</memory><devices><disk type='file' device='disk'><source file='/a'/><source file='/b'/></disk></devices></domain>`, DomainInfo{}, "<source> appears 2 times in <devices><disk>"},
		{"two memory device sizes", `<domain type='kvm'><name>a</name><memory unit='GiB'>8</memory><devices><memory model='dimm'><target><size unit='GiB'>1</size><size unit='GiB'>7</size></target></memory></devices></domain>`, DomainInfo{}, "<size> appears 2 times in <devices><memory><target>"},
		{"two memory device targets", `<domain type='kvm'><name>a</name><memory unit='GiB'>8</memory><devices><memory model='dimm'><target/><target/></memory></devices></domain>`, DomainInfo{}, "<target> appears 2 times in <devices><memory>"},
		{"attribute twice", `<domain type='kvm'><name>a</name><memory unit='GiB' unit='KiB'>7</memory></domain>`, DomainInfo{}, "<memory> has the attribute unit twice"},
		{"type twice", `<domain type='xen' type='kvm'><name>a</name><memory>7</memory></domain>`, DomainInfo{}, "<domain> has the attribute type twice"},
		{"namespaced unit", `<domain type='kvm' xmlns:x='urn:x'><name>a</name><memory x:unit='GiB'>7</memory></domain>`, DomainInfo{}, "<memory> has the attribute unit in namespace"},
		{"namespaced name", `<domain type='kvm'><name xmlns='urn:x'>big</name><name>a</name><memory>7</memory></domain>`, DomainInfo{}, "<name> in <domain> is in namespace"},
		{"prefixed name", `<domain type='kvm' xmlns:x='urn:x'><x:name>a</x:name><memory>7</memory></domain>`, DomainInfo{}, "<name> in <domain> is in namespace"},
		{"prefix bound to no namespace, attribute", `<domain type='kvm'><name>a</name><memory x:unit='GiB' xmlns:x=''>7</memory></domain>`, DomainInfo{}, "<memory> binds the prefix x to no namespace"},
		{"prefix bound to no namespace, element", `<domain type='kvm'><name>b</name><x:memory xmlns:x=''>7</x:memory><memory>1</memory></domain>`, DomainInfo{}, "binds the prefix x to no namespace"},
		{"undeclared prefix", `<domain type='kvm'><name>a</name><memory x:unit='GiB'>7</memory></domain>`, DomainInfo{}, "<memory> has the attribute unit in namespace \"x\""},
		{"namespaced disk", `<domain type='kvm'><name>a</name><memory>7</memory><devices><disk xmlns='urn:x' type='file'><source file='/a'/></disk></devices></domain>`, DomainInfo{}, "<disk> in <devices> is in namespace"},
		{"domain in a namespace", `<domain xmlns='urn:x' type='kvm'><name>a</name><memory>7</memory></domain>`, DomainInfo{}, "<domain> is in namespace"},
		{"element in name", `<domain type='kvm'><name>a<b/>c</name><memory>7</memory></domain>`, DomainInfo{}, "<name> contains the element <b>"},
		{"element in memory", `<domain type='kvm'><name>a</name><memory>1<x>0</x>24</memory></domain>`, DomainInfo{}, "<memory> contains the element <x>"},
		{"doctype", `<!DOCTYPE domain [<!ATTLIST memory unit CDATA 'GiB'>]><domain type='kvm'><name>a</name><memory>7</memory></domain>`, DomainInfo{}, "DOCTYPE"},
		{"numa cells more than memory", `<domain type='kvm'><name>a</name><memory unit='MiB'>64</memory><vcpu>2</vcpu><cpu><numa><cell id='0' cpus='0-1' memory='7' unit='GiB'/></numa></cpu></domain>`, DomainInfo{}, "<memory>: 65536 KiB, but the <cpu><numa> cells (7340032 KiB)"},
		{"numa cell bad unit", `<domain type='kvm'><name>a</name><memory unit='MiB'>64</memory><cpu><numa><cell id='0' cpus='0' memory='64' unit='parsec'/></numa></cpu></domain>`, DomainInfo{}, "<cpu><numa> cell 0 memory: unknown unit"},
		{"numa cell memory not a number", `<domain type='kvm'><name>a</name><memory unit='MiB'>64</memory><cpu><numa><cell id='0' cpus='0' memory='64 '/></numa></cpu></domain>`, DomainInfo{}, "<cpu><numa><cell memory>"},
		{"numa cell without memory", `<domain type='kvm'><name>a</name><memory>1</memory><cpu><numa><cell/></numa></cpu></domain>`, DomainInfo{}, "<cpu><numa><cell> has no memory"},
		{"numa cell with empty memory", `<domain type='kvm'><name>a</name><memory>1</memory><cpu><numa><cell memory=''/></numa></cpu></domain>`, DomainInfo{}, "<cpu><numa><cell memory>: empty"},
		{"memory devices more than memory", `<domain type='kvm'><name>a</name><memory unit='MiB'>64</memory><devices><memory model='dimm'><target><size unit='GiB'>7</size></target></memory></devices></domain>`, DomainInfo{}, "<memory>: 65536 KiB is less than its memory devices' 7340032 KiB"},
		{"empty memory device size", `<domain type='kvm'><name>a</name><memory>1</memory><devices><memory model='dimm'><target><size></size></target></memory></devices></domain>`, DomainInfo{}, "<devices><memory><target><size>: empty"},
		{"memory device size unit", `<domain type='kvm'><name>a</name><memory unit='MiB'>64</memory><devices><memory model='dimm'><target><size unit='x'>7</size></target></memory></devices></domain>`, DomainInfo{}, "<devices><memory> 0 <size>: unknown unit"},
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
			checkAgreement(t, []byte(tt.xml), got)
		})
	}
}

func TestUnitBytes(t *testing.T) {
	for unit, want := range map[string]uint64{
		"": 1024, "b": 1, "B": 1, "byte": 1, "Bytes": 1,
		"k": 1 << 10, "KiB": 1 << 10, "kib": 1 << 10, "KB": 1000, "kb": 1000,
		"M": 1 << 20, "MiB": 1 << 20, "MB": 1e6, "G": 1 << 30, "GiB": 1 << 30, "GB": 1e9,
		"T": 1 << 40, "TiB": 1 << 40, "TB": 1e12, "P": 1 << 50, "PiB": 1 << 50, "PB": 1e15,
		"E": 1 << 60, "EiB": 1 << 60, "EB": 1e18,
	} {
		if got, ok := unitBytes(unit); !ok || got != want {
			t.Errorf("unitBytes(%q) = %d, %v; want %d", unit, got, ok, want)
		}
	}
	for _, bad := range []string{"x", "kibi", "Ki", "ki b", "KiBB", "Z", "ZiB", "bits", "iB", " k", "\u212a"} {
		if got, ok := unitBytes(bad); ok {
			t.Errorf("unitBytes(%q) = %d, want unknown", bad, got)
		}
	}
}

// domainSeeds are inputs for the fuzz tests: ordinary domains and the
// ways a document can mean one thing to libvirt and another to
// encoding/xml.
var domainSeeds = []string{
	`<domain type='test'><name>vm1</name><memory unit='MiB'>512</memory><vcpu>2</vcpu></domain>`,
	`<domain type='kvm'><name>a</name><memory unit='b'>1</memory></domain>`,
	`<domain type='kvm'><name>a</name><uuid>0d4c6a4e-7b43-4f4e-9c1e-1f2a3b4c5d6e</uuid><memory unit='KB'>1500</memory><vcpu current='1'>3</vcpu><os><type>hvm</type></os></domain>`,
	// The attack: two names and two memories (libvirt: big, 7 GiB).
	`<domain type='kvm'><name>big</name><name>a</name><memory unit='GiB'>7</memory><memory unit='MiB'>64</memory></domain>`,
	`<domain type='kvm'><name>a</name><memory>7</memory><memory unit='GiB'>64</memory></domain>`,
	`<domain type='kvm'><name>a</name><memory>1024</memory><vcpu>8</vcpu><vcpu>1</vcpu></domain>`,
	`<domain type='kvm' xmlns:x='urn:x'><name>a</name><memory x:unit='GiB'>7</memory></domain>`,
	`<domain type='kvm'><name xmlns='urn:x'>big</name><name>a</name><memory>7</memory></domain>`,
	`<domain type='kvm'><name>a<b>c</b></name><memory>7</memory></domain>`,
	`<domain type='kvm'><name> a </name><memory>7</memory></domain>`,
	`<domain type='kvm'><name>a</name><memory unit='GiB' unit='KiB'>7</memory></domain>`,
	`<!DOCTYPE domain [<!ATTLIST memory unit CDATA 'GiB'>]><domain type='kvm'><name>a</name><memory>7</memory></domain>`,
	`<domain type='kvm'><name>a</name><memory unit='MiB'>64</memory><vcpu>2</vcpu><cpu><numa><cell id='0' cpus='0-1' memory='7' unit='GiB'/></numa></cpu></domain>`,
	`<domain type='kvm'><name>a</name><memory unit='GiB'>1</memory><cpu><numa><cell id='0' cpus='0' memory='1' unit='GiB'/></numa><numa><cell id='1' cpus='0' memory='7' unit='GiB'/></numa></cpu></domain>`,
	`<domain type='kvm'><name>a</name><memory unit='MiB'>3072</memory><vcpu>2</vcpu><cpu><numa><cell id='0' cpus='0' memory='1' unit='GiB'/><cell id='1' cpus='1' memory='1048576'/></numa></cpu><devices><memory model='dimm'><target><size unit='GiB'>1</size><node>0</node></target></memory></devices></domain>`,
	`<domain type='kvm'><name>a</name><memory unit='GiB'>8</memory><devices><memory model='dimm'><target><size unit='GiB'>1</size><size unit='GiB'>7</size></target></memory></devices></domain>`,
	`<domain type='kvm'><name>a</name><memory>1024</memory><devices><disk type='file' device='disk'><source file='/a'/><source file='/b'/></disk></devices></domain>`,
	// A prefix bound to no namespace: encoding/xml reads x:unit as unit.
	`<domain type='kvm'><name>a</name><memory x:unit='GiB' xmlns:x=''>7</memory></domain>`,
	`<domain type='kvm'><x:name xmlns:x=''>b</x:name><name>a</name><memory>7</memory></domain>`,
	// Found by the fuzzer: a cell without memory (libvirt requires it).
	`<domain type='0'><name>0</name><memory>01</memory><cpu><numa><cell/></numa></cpu></domain>`,
	`<domain type='0'><name>0</name><memory>1</memory><devices><memory><target><size></size></target></memory></devices></domain>`,
	"\ufeff<?xml version='1.0'?><domain type='kvm'><name><![CDATA[a]]></name><memory>\n1<!-- x -->024</memory></domain>",
	`<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'><name>a</name><memory>1024</memory><metadata><m:name xmlns:m='urn:m'>x</m:name></metadata><qemu:commandline><qemu:arg value='-a'/></qemu:commandline></domain>`,
}

func FuzzParseDomainXML(f *testing.F) {
	for _, s := range domainSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := ParseDomainXML(data)
		if err != nil {
			return
		}
		if info.MemoryMiB == 0 || info.MemoryKiB == 0 || info.VCPUs == 0 || info.Type == "" {
			t.Fatalf("accepted incomplete domain %+v", info)
		}
		if info.MemoryMiB != (info.MemoryKiB+1023)/1024 {
			t.Fatalf("MemoryMiB %d is not MemoryKiB %d rounded up", info.MemoryMiB, info.MemoryKiB)
		}
		if ValidateName("domain", info.Name) != nil {
			t.Fatalf("accepted bad name %q", info.Name)
		}
	})
}

// FuzzDomainXMLMatchesLibvirtxml is a differential check: whatever vmha
// accepts, libvirtxml (encoding/xml: last element wins, lists merge) and a
// model of libvirt's own reading (XPath: first element wins, namespaced
// nodes ignored, an element's text includes its descendants') read with
// the same name, UUID, memory in KiB and vCPU count.
func FuzzDomainXMLMatchesLibvirtxml(f *testing.F) {
	for _, s := range domainSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := ParseDomainXML(data)
		if err != nil {
			return
		}
		checkAgreement(t, data, info)
	})
}

// reading is what one parser makes of a domain.
type reading struct {
	Name      string
	UUID      string // canonical
	MemoryKiB uint64
	VCPUs     uint
}

func checkAgreement(t *testing.T, data []byte, info DomainInfo) {
	t.Helper()
	want := reading{info.Name, info.UUID, info.MemoryKiB, info.VCPUs}
	lx, err := libvirtxmlReading(data)
	if err != nil {
		t.Fatalf("vmha accepted %q (%+v) but libvirtxml: %v", data, info, err)
	}
	if lx != want {
		t.Fatalf("vmha accepted %q as %+v, libvirtxml reads %+v", data, want, lx)
	}
	lv, err := libvirtReading(data)
	if err != nil {
		t.Fatalf("vmha accepted %q (%+v) but libvirt would refuse it: %v", data, info, err)
	}
	if lv != want {
		t.Fatalf("vmha accepted %q as %+v, libvirt reads %+v", data, want, lv)
	}
}

func libvirtxmlReading(data []byte) (reading, error) {
	var d libvirtxml.Domain
	if err := xml.Unmarshal(bytes.TrimPrefix(data, []byte("\ufeff")), &d); err != nil {
		return reading{}, err
	}
	r := reading{Name: d.Name, VCPUs: 1}
	if d.UUID != "" {
		u, err := libvirtUUID(d.UUID)
		if err != nil {
			return r, err
		}
		r.UUID = u
	}
	if d.Memory == nil {
		return r, fmt.Errorf("no memory")
	}
	mem, err := testKiB(uint64(d.Memory.Value), d.Memory.Unit)
	if err != nil {
		return r, err
	}
	var numa, dev uint64
	if d.CPU != nil && d.CPU.Numa != nil {
		for _, c := range d.CPU.Numa.Cell {
			k, err := testKiB(uint64(c.Memory), c.Unit)
			if err != nil {
				return r, err
			}
			numa += k
		}
	}
	if d.Devices != nil {
		for _, m := range d.Devices.Memorydevs {
			if m.Target != nil && m.Target.Size != nil {
				k, err := testKiB(uint64(m.Target.Size.Value), m.Target.Size.Unit)
				if err != nil {
					return r, err
				}
				dev += k
			}
		}
	}
	r.MemoryKiB = mem
	if numa > 0 { // as libvirt's qemu driver
		r.MemoryKiB = numa + dev
	}
	if d.VCPU != nil {
		r.VCPUs = d.VCPU.Value
	}
	return r, nil
}

// libvirtReading models how libvirt reads the same fields
// (virDomainDefParseXML and virDomainDefPostParseMemory with ABI updates,
// as the qemu driver defines): XPath ./name[1], ./memory[1] and its unit,
// ./vcpu[1], ./cpu/numa[1]/cell, ./devices/memory with ./target/size.
func libvirtReading(data []byte) (reading, error) {
	root, err := parseTree(data)
	if err != nil {
		return reading{}, err
	}
	r := reading{VCPUs: 1}
	if n := root.first("name"); n != nil {
		r.Name = n.text()
	}
	if u := root.first("uuid"); u != nil && u.text() != "" {
		if r.UUID, err = libvirtUUID(u.text()); err != nil {
			return r, err
		}
	}
	if r.MemoryKiB, err = libvirtMemory(root); err != nil {
		return r, err
	}
	if v := root.first("vcpu"); v != nil {
		n, err := strtoull(v.text())
		if err != nil || n > 1<<32-1 {
			return r, fmt.Errorf("vcpu %q", v.text())
		}
		r.VCPUs = uint(n)
	}
	return r, nil
}

// libvirtMemory is the domain's memory as libvirt's qemu driver counts it:
// ./memory[1], or the sum of the NUMA cells' memory when there are cells,
// plus the memory devices' target sizes.
func libvirtMemory(root *tnode) (uint64, error) {
	var mem uint64
	var err error
	if m := root.first("memory"); m != nil && m.text() != "" {
		if mem, err = libvirtKiB(m, ""); err != nil {
			return 0, err
		}
	}
	var numa, dev uint64
	for _, cpu := range root.all("cpu") {
		nm := cpu.first("numa")
		if nm == nil {
			continue
		}
		for _, c := range nm.all("cell") {
			k, err := libvirtKiB(c, "memory")
			if err != nil {
				return 0, err
			}
			numa += k
		}
	}
	for _, devs := range root.all("devices") {
		for _, m := range devs.all("memory") {
			k, ok, err := libvirtTargetSize(m)
			if err != nil {
				return 0, err
			}
			if ok {
				dev += k
			}
		}
	}
	if numa > 0 {
		return numa + dev, nil
	}
	return mem, nil
}

// libvirtTargetSize reads a memory device's ./target/size, if it has one.
func libvirtTargetSize(m *tnode) (uint64, bool, error) {
	tg := m.first("target")
	if tg == nil {
		return 0, false, nil
	}
	sz := tg.first("size")
	if sz == nil {
		return 0, false, nil
	}
	k, err := libvirtKiB(sz, "")
	return k, true, err
}

// libvirtKiB reads a memory size in KiB from n's text, or from its
// attribute valueAttr when that is set, with n's unit attribute.
func libvirtKiB(n *tnode, valueAttr string) (uint64, error) {
	var v string
	if valueAttr != "" {
		v, _ = n.attr(valueAttr)
	} else {
		v = n.text()
	}
	num, err := strtoull(v)
	if err != nil {
		return 0, err
	}
	unit, _ := n.attr("unit")
	return testKiB(num, unit)
}

// tnode is an element of a minimal document tree, built from raw tokens
// so that namespaces are resolved here, as libxml2 does, not as
// encoding/xml does: an element is in no namespace when it has no prefix
// and no default namespace is in scope; an attribute when it has no
// prefix.
type tnode struct {
	name  xml.Name // Space is the prefix
	null  bool     // in no namespace
	attrs []xml.Attr
	kids  []any // *tnode or string
}

func parseTree(data []byte) (*tnode, error) {
	dec := xml.NewDecoder(bytes.NewReader(bytes.TrimPrefix(data, []byte("\ufeff"))))
	var stack []*tnode
	var defaults []string // the default namespace in scope, per open element
	var root *tnode
	for {
		tok, err := dec.RawToken()
		if err == io.EOF {
			return root, nil
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			def := ""
			if len(defaults) > 0 {
				def = defaults[len(defaults)-1]
			}
			for _, a := range t.Attr {
				if a.Name.Space == "" && a.Name.Local == "xmlns" {
					def = a.Value
				}
			}
			n := &tnode{name: t.Name, null: t.Name.Space == "" && def == "", attrs: append([]xml.Attr(nil), t.Attr...)}
			if len(stack) == 0 {
				if root != nil {
					return nil, fmt.Errorf("second root")
				}
				root = n
			} else {
				p := stack[len(stack)-1]
				p.kids = append(p.kids, n)
			}
			stack = append(stack, n)
			defaults = append(defaults, def)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
			defaults = defaults[:len(defaults)-1]
		case xml.CharData:
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.kids = append(p.kids, string(t))
			}
		}
	}
}

// first and all match elements in no namespace, as XPath without a prefix
// does.
func (n *tnode) first(local string) *tnode {
	if all := n.all(local); len(all) > 0 {
		return all[0]
	}
	return nil
}

func (n *tnode) all(local string) []*tnode {
	var out []*tnode
	for _, k := range n.kids {
		if e, ok := k.(*tnode); ok && e.null && e.name.Local == local {
			out = append(out, e)
		}
	}
	return out
}

// text is XPath's string value: the text of every descendant.
func (n *tnode) text() string {
	var b strings.Builder
	for _, k := range n.kids {
		switch k := k.(type) {
		case string:
			b.WriteString(k)
		case *tnode:
			b.WriteString(k.text())
		}
	}
	return b.String()
}

func (n *tnode) attr(local string) (string, bool) {
	for _, a := range n.attrs {
		if a.Name.Space == "" && a.Name.Local == local {
			return a.Value, true
		}
	}
	return "", false
}

// strtoull reads a number as libvirt's virStrToLong_ull: leading white
// space, an optional sign, digits, nothing after.
func strtoull(s string) (uint64, error) {
	t := strings.TrimLeft(s, " \t\n\r")
	t = strings.TrimPrefix(t, "+")
	if t == "" {
		return 0, fmt.Errorf("%q: no digits", s)
	}
	var n uint64
	for _, c := range []byte(t) {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q: not a number", s)
		}
		if n > (1<<64-1-uint64(c-'0'))/10 {
			return 0, fmt.Errorf("%q: out of range", s)
		}
		n = n*10 + uint64(c-'0')
	}
	return n, nil
}

// testKiB converts a size to KiB the way libvirt does, written apart from
// unitBytes: the unit's multiplier, then bytes rounded up to KiB.
func testKiB(n uint64, unit string) (uint64, error) {
	mult := map[string]uint64{"": 1024, "b": 1, "byte": 1, "bytes": 1}
	p1024, p1000 := uint64(1), uint64(1)
	for _, c := range "kmgtpe" {
		p1024 *= 1024
		p1000 *= 1000
		mult[string(c)] = p1024
		mult[string(c)+"ib"] = p1024
		mult[string(c)+"b"] = p1000
	}
	lower := strings.Map(func(r rune) rune {
		if r >= 'A' && r <= 'Z' {
			return r + 32
		}
		return r
	}, unit)
	m, ok := mult[lower]
	if !ok {
		return 0, fmt.Errorf("unit %q", unit)
	}
	if n != 0 && n > (1<<63-1)/m {
		return 0, fmt.Errorf("%d %s overflows", n, unit)
	}
	return (n*m + 1023) / 1024, nil
}

// libvirtUUID parses a UUID as libvirt's virUUIDParse (white space around,
// '-' or ' ' between digit pairs) and prints it as virUUIDFormat.
func libvirtUUID(s string) (string, error) {
	cur := strings.TrimLeft(s, " \t\n\r")
	var out []byte
	for len(out) < 16 {
		if cur == "" {
			return "", fmt.Errorf("uuid %q too short", s)
		}
		if cur[0] == '-' || cur[0] == ' ' {
			cur = cur[1:]
			continue
		}
		if len(cur) < 2 {
			return "", fmt.Errorf("uuid %q", s)
		}
		b, err := strconv.ParseUint(cur[:2], 16, 8)
		if err != nil {
			return "", fmt.Errorf("uuid %q", s)
		}
		out = append(out, byte(b))
		cur = cur[2:]
	}
	if strings.TrimLeft(cur, " \t\n\r") != "" {
		return "", fmt.Errorf("uuid %q: trailing %q", s, cur)
	}
	return fmt.Sprintf("%x-%x-%x-%x-%x", out[0:4], out[4:6], out[6:8], out[8:10], out[10:16]), nil
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

// TestParseDomainXMLPathological feeds the largest documents of the worst
// shapes (deep nesting, many attributes, many elements): parsing them must
// stay about linear in their size.
func TestParseDomainXMLPathological(t *testing.T) {
	if testing.Short() {
		t.Skip("parses a few MiB")
	}
	head := `<domain type='kvm'><name>a</name><memory>1024</memory>`
	fill := func(unit string, n int) string { return strings.Repeat(unit, n) }
	room := MaxDomainXML - len(head) - 64
	var attrs strings.Builder
	for i := 0; attrs.Len() < room-16; i++ {
		fmt.Fprintf(&attrs, " a%d=''", i)
	}
	for name, doc := range map[string]string{
		"deep":          head + fill("<a>", room/7) + fill("</a>", room/7) + "</domain>",
		"deep devices":  head + "<devices>" + fill("<a>", room/7) + fill("</a>", room/7) + "</devices></domain>",
		"attributes":    head + "<devices" + attrs.String() + "/></domain>",
		"many elements": head + "<devices>" + fill("<disk/>", room/7) + "</devices></domain>",
		"many top":      head + fill("<seclabel/>", room/11) + "</domain>",
	} {
		start := time.Now()
		_, err := ParseDomainXML([]byte(doc))
		t.Logf("%s: %d bytes, %v, %v", name, len(doc), time.Since(start), err)
	}
}
