package model

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// DomainInfo is what vmha reads from a libvirt domain XML before storing it:
// enough to validate it and to account for its size in placement.
type DomainInfo struct {
	Name      string
	Type      string
	MemoryMiB uint64
	VCPUs     uint
	// Disks are the sources of the domain's disks (file paths, block
	// devices, volumes, network names), in document order. A VM with disks
	// keeps them on storage every host reaches, so running it twice
	// corrupts them.
	Disks []string
}

type domainXML struct {
	XMLName xml.Name `xml:"domain"`
	Type    string   `xml:"type,attr"`
	Name    string   `xml:"name"`
	Memory  struct {
		Unit  string `xml:"unit,attr"`
		Value string `xml:",chardata"`
	} `xml:"memory"`
	VCPU    string `xml:"vcpu"`
	Devices struct {
		Disks []struct {
			Device string `xml:"device,attr"`
			Source struct {
				File   string `xml:"file,attr"`
				Dev    string `xml:"dev,attr"`
				Name   string `xml:"name,attr"`
				Pool   string `xml:"pool,attr"`
				Volume string `xml:"volume,attr"`
				Dir    string `xml:"dir,attr"`
			} `xml:"source"`
		} `xml:"disk"`
	} `xml:"devices"`
}

// MaxDomainXML bounds the size of a domain XML we accept: real ones are a few
// KiB, and the text lives in the replicated log.
const MaxDomainXML = 256 << 10

// ParseDomainXML checks that data is a libvirt <domain> with a name, a
// hypervisor type, a memory size and a vCPU count, and returns them.
func ParseDomainXML(data []byte) (DomainInfo, error) {
	if len(data) > MaxDomainXML {
		return DomainInfo{}, fmt.Errorf("domain XML is %d bytes, more than the %d allowed", len(data), MaxDomainXML)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return DomainInfo{}, errors.New("domain XML is empty")
	}
	var d domainXML
	dec := xml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&d); err != nil {
		return DomainInfo{}, fmt.Errorf("domain XML does not parse: %w", err)
	}
	// Anything but whitespace or comments after the root is a broken file.
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		switch t := tok.(type) {
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return DomainInfo{}, errors.New("domain XML has text after </domain>")
			}
		case xml.Comment, xml.ProcInst:
		default:
			return DomainInfo{}, errors.New("domain XML has content after </domain>")
		}
	}
	info := DomainInfo{Name: strings.TrimSpace(d.Name), Type: d.Type}
	for _, disk := range d.Devices.Disks {
		src := disk.Source
		s := src.File + src.Dev + src.Name + src.Dir
		if src.Pool != "" || src.Volume != "" {
			s = src.Pool + "/" + src.Volume
		}
		// A cdrom or floppy without media holds no data.
		if s == "" && (disk.Device == "cdrom" || disk.Device == "floppy") {
			continue
		}
		if s == "" {
			s = "(disk without source)"
		}
		info.Disks = append(info.Disks, s)
	}
	if info.Type == "" {
		return info, errors.New("domain XML: <domain> has no type attribute (kvm, qemu, xen or test)")
	}
	if err := ValidateName("domain", info.Name); err != nil {
		return info, fmt.Errorf("domain XML <name>: %w", err)
	}
	mem, err := memoryMiB(strings.TrimSpace(d.Memory.Value), d.Memory.Unit)
	if err != nil {
		return info, fmt.Errorf("domain XML <memory>: %w", err)
	}
	info.MemoryMiB = mem
	v := strings.TrimSpace(d.VCPU)
	if v == "" {
		info.VCPUs = 1 // libvirt's default
	} else {
		n, err := strconv.ParseUint(v, 10, 16)
		if err != nil || n == 0 {
			return info, fmt.Errorf("domain XML <vcpu>: %q is not a positive count", v)
		}
		info.VCPUs = uint(n)
	}
	return info, nil
}

// memoryMiB converts libvirt's memory element (default unit KiB) to MiB,
// rounding up so that placement never undercounts.
func memoryMiB(v, unit string) (uint64, error) {
	if v == "" {
		return 0, errors.New("missing")
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", v)
	}
	per, ok := unitBytes[strings.ToLower(unit)]
	if !ok {
		return 0, fmt.Errorf("unknown unit %q", unit)
	}
	const maxBytes = 1 << 60 // an exbibyte: far beyond any host
	if n > maxBytes/per {
		return 0, fmt.Errorf("%s %s is too large", v, unit)
	}
	mib := (n*per + (1<<20 - 1)) >> 20
	if mib == 0 {
		return 0, errors.New("must be more than zero")
	}
	return mib, nil
}

// unitBytes are libvirt's memory units; an empty unit means KiB.
var unitBytes = map[string]uint64{
	"b": 1, "bytes": 1,
	"": 1 << 10, "k": 1 << 10, "kib": 1 << 10, "kb": 1000,
	"m": 1 << 20, "mib": 1 << 20, "mb": 1000 * 1000,
	"g": 1 << 30, "gib": 1 << 30, "gb": 1000 * 1000 * 1000,
	"t": 1 << 40, "tib": 1 << 40, "tb": 1000 * 1000 * 1000 * 1000,
}
