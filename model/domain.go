package model

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"libvirt.org/go/libvirtxml"
)

// DomainInfo is what vmha reads from a libvirt domain XML before storing it:
// enough to validate it and to account for its size in placement. Every
// field means what libvirt makes of the same XML (see ParseDomainXML).
type DomainInfo struct {
	Name string
	// UUID is the <uuid> in libvirt's canonical form (lower case,
	// 8-4-4-4-12); empty when the XML has none and libvirt picks one.
	UUID string
	Type string
	// MemoryKiB is the memory libvirt gives the domain, in KiB, libvirt's
	// own unit (a size in bytes is rounded up to whole KiB, as libvirt
	// does); MemoryMiB is the same rounded up to whole MiB, so that
	// placement never undercounts.
	MemoryKiB uint64
	MemoryMiB uint64
	// VCPUs is the maximum vCPU count (<vcpu>; libvirt's default 1).
	VCPUs uint
	// Disks are the sources of the domain's disks (file paths, block
	// devices, volumes, network names), in document order. A VM with disks
	// keeps them on storage every host reaches, so running it twice
	// corrupts them.
	Disks []string
}

// MaxDomainXML bounds the size of a domain XML we accept: real ones are a few
// KiB, and the text lives in the replicated log.
const MaxDomainXML = 256 << 10

// maxMemoryBytes bounds any memory size: an exbibyte, far beyond any host
// (libvirt's own limit is 2^63 bytes).
const maxMemoryBytes = 1 << 60

// maxVCPUs bounds <vcpu>; libvirt's drivers allow at most a few thousand.
const maxVCPUs = 1<<16 - 1

// ParseDomainXML checks that data is a libvirt <domain> with a name, a
// hypervisor type, a memory size and a vCPU count, and returns them.
//
// The XML must mean to vmha exactly what it means to libvirt. libvirt reads
// a document with XPath and takes the first of repeated elements (the first
// <memory>, the first <numa> of <cpu>, the first <source> of a disk) and
// ignores elements and attributes in other namespaces; encoding/xml, and so
// libvirtxml, takes the last one, merges repeated lists and matches any
// namespace. So before libvirtxml reads the values, the document's shape is
// checked so that both readings can only agree: each element libvirt reads
// once appears at most once, the elements vmha reads hold text only, no
// namespaced element or attribute stands where libvirt's own are expected,
// and no DTD can add defaults. Numbers and units follow libvirt's rules (a
// number with nothing after it; units b, bytes, k/KiB/KB up to e/EiB/EB,
// case-insensitive). A domain whose <memory> disagrees with its NUMA cells
// and memory devices is refused: libvirt's qemu driver takes the sum of the
// cells, other drivers <memory>.
func ParseDomainXML(data []byte) (DomainInfo, error) {
	if len(data) > MaxDomainXML {
		return DomainInfo{}, fmt.Errorf("domain XML is %d bytes, more than the %d allowed", len(data), MaxDomainXML)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a UTF-8 byte order mark
	if len(bytes.TrimSpace(data)) == 0 {
		return DomainInfo{}, errors.New("domain XML is empty")
	}
	shape, err := checkDomainShape(data)
	if err != nil {
		return DomainInfo{}, err
	}
	var d libvirtxml.Domain
	if err := xml.Unmarshal(data, &d); err != nil {
		return DomainInfo{}, fmt.Errorf("domain XML does not parse: %w", err)
	}
	info := DomainInfo{Name: d.Name, Type: d.Type, Disks: domainDisks(&d)}
	if info.Type == "" {
		return info, errors.New("domain XML: <domain> has no type attribute (kvm, qemu, xen or test)")
	}
	// No trimming: libvirt takes the text as it is, so " vm1 " is a
	// different domain from "vm1", and ValidateName refuses it.
	if err := ValidateName("domain", info.Name); err != nil {
		return info, fmt.Errorf("domain XML <name>: %w", err)
	}
	if shape.count["uuid"] > 0 {
		u, err := canonicalUUID(d.UUID)
		if err != nil {
			return info, fmt.Errorf("domain XML <uuid>: %w", err)
		}
		info.UUID = u
	}
	if d.Memory == nil {
		return info, errors.New("domain XML <memory>: missing")
	}
	kib, err := memoryKiB(uint64(d.Memory.Value), d.Memory.Unit)
	if err != nil {
		return info, fmt.Errorf("domain XML <memory>: %w", err)
	}
	if kib == 0 {
		return info, errors.New("domain XML <memory>: must be more than zero")
	}
	if err := checkMemoryParts(&d, kib); err != nil {
		return info, err
	}
	info.MemoryKiB = kib
	info.MemoryMiB = (kib + 1023) / 1024
	info.VCPUs = 1 // libvirt's default
	if d.VCPU != nil {
		if d.VCPU.Value == 0 || d.VCPU.Value > maxVCPUs {
			return info, fmt.Errorf("domain XML <vcpu>: %q is not a positive count (at most %d)", strings.TrimSpace(shape.text["vcpu"]), maxVCPUs)
		}
		info.VCPUs = d.VCPU.Value
	}
	return info, nil
}

// domainDisks lists the disk sources the way libvirt reads them: by the
// disk's type (file when none is given), so that <disk type='block'> with a
// file attribute has no source, as it has none to libvirt.
func domainDisks(d *libvirtxml.Domain) []string {
	if d.Devices == nil {
		return nil
	}
	var out []string
	for _, disk := range d.Devices.Disks {
		var s string
		if src := disk.Source; src != nil {
			switch {
			case src.File != nil:
				s = src.File.File
			case src.Block != nil:
				s = src.Block.Dev
			case src.Dir != nil:
				s = src.Dir.Dir
			case src.Network != nil:
				s = src.Network.Name
			case src.Volume != nil:
				if src.Volume.Pool != "" || src.Volume.Volume != "" {
					s = src.Volume.Pool + "/" + src.Volume.Volume
				}
			}
		}
		// A cdrom or floppy without media holds no data.
		if s == "" && (disk.Device == "cdrom" || disk.Device == "floppy") {
			continue
		}
		if s == "" {
			s = "(disk without source)"
		}
		out = append(out, s)
	}
	return out
}

// checkMemoryParts refuses a <memory> that disagrees with the domain's NUMA
// cells and memory devices. libvirt's qemu driver (and any that defines
// with ABI updates) replaces <memory> by the sum of the NUMA cells plus the
// memory devices; the test driver keeps <memory>. Only when they agree do
// all drivers mean the same size. Without NUMA cells, memory devices larger
// than <memory> are an error to libvirt too.
func checkMemoryParts(d *libvirtxml.Domain, memKiB uint64) error {
	const maxKiB = maxMemoryBytes / 1024
	var numaKiB, devKiB uint64
	if d.CPU != nil && d.CPU.Numa != nil {
		for i, c := range d.CPU.Numa.Cell {
			k, err := memoryKiB(uint64(c.Memory), c.Unit)
			if err != nil {
				return fmt.Errorf("domain XML <cpu><numa> cell %d memory: %w", i, err)
			}
			if numaKiB += k; numaKiB > maxKiB {
				return errors.New("domain XML <cpu><numa>: the cells' memory adds up to too much")
			}
		}
	}
	if d.Devices != nil {
		for i, m := range d.Devices.Memorydevs {
			if m.Target == nil || m.Target.Size == nil {
				continue
			}
			k, err := memoryKiB(uint64(m.Target.Size.Value), m.Target.Size.Unit)
			if err != nil {
				return fmt.Errorf("domain XML <devices><memory> %d <size>: %w", i, err)
			}
			if devKiB += k; devKiB > maxKiB {
				return errors.New("domain XML <devices><memory>: the memory devices add up to too much")
			}
		}
	}
	switch {
	case numaKiB > 0 && numaKiB+devKiB != memKiB:
		return fmt.Errorf("domain XML <memory>: %d KiB, but the <cpu><numa> cells (%d KiB) and memory devices (%d KiB) add up to %d KiB; libvirt's qemu driver takes the sum, other drivers <memory>: make them agree",
			memKiB, numaKiB, devKiB, numaKiB+devKiB)
	case devKiB > memKiB:
		return fmt.Errorf("domain XML <memory>: %d KiB is less than its memory devices' %d KiB", memKiB, devKiB)
	}
	return nil
}

// memoryKiB converts a libvirt memory size to KiB as libvirt does: to bytes
// by the unit (virScaleInteger), then rounded up to whole KiB.
func memoryKiB(n uint64, unit string) (uint64, error) {
	per, ok := unitBytes(unit)
	if !ok {
		return 0, fmt.Errorf("unknown unit %q (libvirt knows b, bytes, and k, KiB, KB up to e, EiB, EB)", unit)
	}
	if n > maxMemoryBytes/per {
		if unit == "" {
			unit = "KiB"
		}
		return 0, fmt.Errorf("%d %s is too large", n, unit)
	}
	return (n*per + 1023) / 1024, nil
}

// unitBytes returns the bytes in one libvirt memory unit, following
// libvirt's virScaleInteger: ASCII case-insensitive; "" is KiB (the default
// of every element vmha reads); b, byte, bytes; a single letter k, m, g, t,
// p or e, or one followed by "iB", is a power of 1024; one followed by "B"
// a power of 1000.
func unitBytes(unit string) (uint64, bool) {
	u := asciiLower(unit)
	switch u {
	case "":
		return 1 << 10, true
	case "b", "byte", "bytes":
		return 1, true
	}
	var base uint64
	switch {
	case len(u) == 1, u[1:] == "ib":
		base = 1024
	case u[1:] == "b":
		base = 1000
	default:
		return 0, false
	}
	exp := strings.IndexByte("kmgtpe", u[0]) + 1
	if exp == 0 {
		return 0, false
	}
	per := uint64(1)
	for range exp {
		per *= base
	}
	return per, true
}

// asciiLower lowers ASCII letters only, as libvirt's c_tolower: Unicode
// case folding would accept units libvirt does not know ("\u212aiB").
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// canonicalUUID checks a <uuid> and returns it as libvirt prints it. libvirt
// ignores surrounding white space and accepts '-' or ' ' between any two
// digits; vmha takes only the usual 8-4-4-4-12 form, in either case.
func canonicalUUID(s string) (string, error) {
	t := strings.Trim(s, " \t\n\r")
	if t == "" {
		return "", errors.New("empty (leave the element out to let libvirt choose one)")
	}
	if len(t) != 36 {
		return "", fmt.Errorf("%q is not a UUID (8-4-4-4-12 hexadecimal digits)", s)
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return "", fmt.Errorf("%q is not a UUID (8-4-4-4-12 hexadecimal digits)", s)
			}
		default:
			if isHex := '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'; !isHex {
				return "", fmt.Errorf("%q is not a UUID (8-4-4-4-12 hexadecimal digits)", s)
			}
		}
	}
	return asciiLower(t), nil
}

// repeatable are the elements directly under <domain> that libvirt reads as
// a list. Every other element there is read once (libvirt takes the first,
// libvirtxml the last or a merge), so it may appear only once: name, uuid,
// genid, title, description, metadata, maxMemory, memory, currentMemory,
// blkiotune, memtune, memoryBacking, vcpu, vcpus, iothreads, cputune,
// numatune, resource, os, idmap, features, cpu, clock, on_poweroff,
// on_reboot, on_crash, on_lockfailure, pm, perf, devices, keywrap,
// launchSecurity and any element this libvirt does not know yet.
var repeatable = map[string]bool{"seclabel": true, "sysinfo": true}

// coreElements are the names of libvirt's own elements under <domain>
// (those of libvirtxml's Domain). Under another name, a namespaced element
// there is a hypervisor extension (qemu:commandline, ...) that vmha leaves
// alone; under one of these names it would be read by libvirtxml and
// ignored by libvirt.
var coreElements = map[string]bool{
	"name": true, "uuid": true, "hwuuid": true, "genid": true, "title": true, "description": true,
	"metadata": true, "maxMemory": true, "memory": true, "currentMemory": true, "blkiotune": true,
	"memtune": true, "memoryBacking": true, "vcpu": true, "vcpus": true, "iothreads": true,
	"iothreadids": true, "defaultiothread": true, "cputune": true, "numatune": true, "iommufd": true,
	"resource": true, "sysinfo": true, "bootloader": true, "bootloader_args": true, "os": true,
	"idmap": true, "throttlegroups": true, "features": true, "cpu": true, "clock": true,
	"on_poweroff": true, "on_reboot": true, "on_crash": true, "on_lockfailure": true, "pm": true,
	"perf": true, "devices": true, "seclabel": true, "keywrap": true, "launchSecurity": true,
}

// singleChild lists, below <domain>, the elements vmha reads through a
// parent that libvirt reads only the first of: a second one would count for
// libvirtxml but not for libvirt.
var singleChild = map[string]map[string]bool{
	"domain/cpu":                   {"numa": true},
	"domain/devices/disk":          {"source": true},
	"domain/devices/memory":        {"target": true},
	"domain/devices/memory/target": {"size": true},
}

// textOnly are the elements whose text vmha reads. libvirt reads the text
// of every descendant, encoding/xml only the element's own, so they may
// not contain elements; numeric ones must hold a number as libvirt's
// strtoull reads it: optional leading white space, digits, nothing after.
var textOnly = map[string]bool{
	"domain/name": false, "domain/uuid": false,
	"domain/memory": true, "domain/vcpu": true, "domain/devices/memory/target/size": true,
}

// domainShape is what checkDomainShape learned beyond the checks.
type domainShape struct {
	count map[string]int    // elements directly under <domain> (no namespace)
	text  map[string]string // raw text of the top-level textOnly elements
}

// maxShapeDepth is the depth of the deepest path checkDomainShape checks.
const maxShapeDepth = 5

type shapeFrame struct {
	path     string
	free     bool // inside <metadata> or an extension element: libvirt does not read it
	children map[string]int
	text     *strings.Builder
}

// checkDomainShape walks the tokens of data and refuses whatever libvirt
// and encoding/xml would read differently (see ParseDomainXML).
func checkDomainShape(data []byte) (domainShape, error) {
	w := shapeWalker{shape: domainShape{count: map[string]int{}, text: map[string]string{}}}
	dec := xml.NewDecoder(bytes.NewReader(data))
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return w.shape, fmt.Errorf("domain XML does not parse: %w", err)
		}
		if err := w.token(tok); err != nil {
			return w.shape, err
		}
	}
	return w.shape, w.finish()
}

// shapeWalker is checkDomainShape's state between tokens.
type shapeWalker struct {
	shape    domainShape
	order    []string // top-level names in order of first appearance
	stack    []*shapeFrame
	rootDone bool
}

func (w *shapeWalker) token(tok xml.Token) error {
	switch t := tok.(type) {
	case xml.Directive:
		return errors.New("domain XML has a <!DOCTYPE> or other declaration: its defaults and entities would change what libvirt reads")
	case xml.CharData:
		return w.charData(t)
	case xml.EndElement:
		return w.end()
	case xml.StartElement:
		return w.start(t)
	}
	return nil // comments and processing instructions
}

func (w *shapeWalker) charData(t xml.CharData) error {
	if len(w.stack) == 0 {
		if len(bytes.TrimSpace(t)) != 0 {
			if w.rootDone {
				return errors.New("domain XML has text after </domain>")
			}
			return errors.New("domain XML does not parse: text before <domain>")
		}
		return nil
	}
	if f := w.stack[len(w.stack)-1]; f.text != nil {
		f.text.Write(t)
	}
	return nil
}

func (w *shapeWalker) end() error {
	f := w.stack[len(w.stack)-1]
	w.stack = w.stack[:len(w.stack)-1]
	if f.text != nil && len(w.stack) == 1 {
		w.shape.text[strings.TrimPrefix(f.path, "domain/")] = f.text.String()
	}
	if f.text != nil && textOnly[f.path] {
		if err := checkNumber(f.path, f.text.String()); err != nil {
			return err
		}
	}
	if len(w.stack) == 0 {
		w.rootDone = true
	}
	return nil
}

func (w *shapeWalker) start(t xml.StartElement) error {
	if w.rootDone {
		return errors.New("domain XML has content after </domain>")
	}
	if len(w.stack) == 0 {
		return w.startRoot(t)
	}
	parent := w.stack[len(w.stack)-1]
	f := &shapeFrame{free: parent.free}
	// Only paths up to domain/devices/memory/target/size are
	// checked; deeper ones stay "" so that deep nesting costs no
	// more than the document itself.
	if parent.path != "" && len(w.stack) < maxShapeDepth {
		f.path = parent.path + "/" + t.Name.Local
	}
	if err := w.placeChild(parent, f, t); err != nil {
		return err
	}
	if err := checkAttrs(t.Name.Local, t.Attr, f.free); err != nil {
		return err
	}
	if !f.free {
		if err := openReadFrame(f, t); err != nil {
			return err
		}
	}
	w.stack = append(w.stack, f)
	return nil
}

func (w *shapeWalker) startRoot(t xml.StartElement) error {
	if t.Name.Local != "domain" {
		return fmt.Errorf("domain XML does not parse: the root element is <%s>, not <domain>", t.Name.Local)
	}
	if t.Name.Space != "" {
		return fmt.Errorf("domain XML: <domain> is in namespace %q, where libvirt reads none of its elements", t.Name.Space)
	}
	if err := checkAttrs("domain", t.Attr, false); err != nil {
		return err
	}
	w.stack = append(w.stack, &shapeFrame{path: "domain", children: map[string]int{}})
	return nil
}

// placeChild checks element t, about to open frame f under parent: where
// libvirt reads it, in which namespace, and how often; it marks f free when
// libvirt does not read inside it.
func (w *shapeWalker) placeChild(parent, f *shapeFrame, t xml.StartElement) error {
	switch {
	case parent.free:
	case parent.text != nil:
		return fmt.Errorf("domain XML: <%s> contains the element <%s>; libvirt would read its text as part of the value", elemName(parent.path), t.Name.Local)
	case t.Name.Space != "" && len(w.stack) == 1 && !coreElements[t.Name.Local]:
		f.free = true // a hypervisor extension such as qemu:commandline
	case t.Name.Space != "":
		return fmt.Errorf("domain XML: <%s> in <%s> is in namespace %q; libvirt reads only <%s> without a namespace there",
			t.Name.Local, elemName(parent.path), t.Name.Space, t.Name.Local)
	case len(w.stack) == 1:
		n := t.Name.Local
		if w.shape.count[n] == 0 {
			w.order = append(w.order, n)
		}
		w.shape.count[n]++
		if n == "metadata" {
			f.free = true // namespaced application data, not read by libvirt
		}
	case singleChild[parent.path][t.Name.Local]:
		parent.children[t.Name.Local]++
		if c := parent.children[t.Name.Local]; c > 1 {
			return fmt.Errorf("domain XML: <%s> appears %d times in <%s>; libvirt reads only the first", t.Name.Local, c, elemName(parent.path))
		}
	}
	return nil
}

// openReadFrame prepares frame f of an element libvirt reads: a text
// buffer for the text-only elements, child counts where only one child of
// a name is read, and the memory attribute of a NUMA cell.
func openReadFrame(f *shapeFrame, t xml.StartElement) error {
	if _, ok := textOnly[f.path]; ok {
		f.text = &strings.Builder{}
	}
	if singleChild[f.path] != nil {
		f.children = map[string]int{}
	}
	if f.path == "domain/cpu/numa/cell" {
		// libvirt requires the cell's memory.
		v, ok := attrValue(t.Attr, "memory")
		if !ok {
			return errors.New("domain XML: a <cpu><numa><cell> has no memory attribute")
		}
		if err := checkNumber("domain/cpu/numa/cell memory", v); err != nil {
			return err
		}
	}
	return nil
}

// finish checks the document as a whole once every token is read.
func (w *shapeWalker) finish() error {
	if !w.rootDone {
		if len(w.stack) > 0 {
			return errors.New("domain XML does not parse: unexpected end of document")
		}
		return errors.New("domain XML does not parse: no <domain> element")
	}
	for _, n := range w.order {
		if c := w.shape.count[n]; c > 1 && !repeatable[n] {
			return fmt.Errorf("domain XML: <%s> appears %d times; libvirt reads only the first", n, c)
		}
	}
	return nil
}

// checkAttrs refuses an attribute given twice (libvirt's parser refuses the
// document, encoding/xml takes the last), a prefix bound to no namespace,
// and, where libvirt reads the
// element, a namespaced attribute (libvirt ignores it, encoding/xml matches
// it by local name) or a value with a tab or line break (libvirt's parser
// turns them into spaces, encoding/xml keeps them).
func checkAttrs(elem string, attrs []xml.Attr, free bool) error {
	var seen map[xml.Name]bool
	if len(attrs) > 8 {
		seen = make(map[xml.Name]bool, len(attrs))
	}
	for i, a := range attrs {
		dup := false
		if seen != nil {
			dup = seen[a.Name]
			seen[a.Name] = true
		} else {
			for _, b := range attrs[:i] {
				dup = dup || a.Name == b.Name
			}
		}
		if dup {
			return fmt.Errorf("domain XML: <%s> has the attribute %s twice", elem, attrName(a.Name))
		}
		// xmlns:x='' is not allowed in XML: libvirt's parser keeps x:name
		// apart from name, encoding/xml reads it as name.
		if a.Name.Space == "xmlns" && a.Value == "" {
			return fmt.Errorf("domain XML: <%s> binds the prefix %s to no namespace", elem, a.Name.Local)
		}
		if free {
			continue
		}
		if a.Name.Space != "" && a.Name.Space != "xmlns" {
			return fmt.Errorf("domain XML: <%s> has the attribute %s in namespace %q, which libvirt ignores", elem, a.Name.Local, a.Name.Space)
		}
		if strings.ContainsAny(a.Value, "\t\n\r") {
			return fmt.Errorf("domain XML: attribute %s of <%s> holds a tab or line break, which libvirt reads as a space", attrName(a.Name), elem)
		}
	}
	return nil
}

func attrName(n xml.Name) string {
	if n.Space == "" {
		return n.Local
	}
	return n.Space + ":" + n.Local
}

func attrValue(attrs []xml.Attr, local string) (string, bool) {
	for _, a := range attrs {
		if a.Name.Space == "" && a.Name.Local == local {
			return a.Value, true
		}
	}
	return "", false
}

// elemName turns a path such as "domain/devices/memory/target" into
// "devices><memory><target", to be shown as <devices><memory><target>.
func elemName(path string) string {
	switch path {
	case "domain":
		return path
	case "":
		return "..." // deeper than the paths vmha checks
	}
	return strings.ReplaceAll(strings.TrimPrefix(path, "domain/"), "/", "><")
}

// checkNumber checks a number the way libvirt's virStrToLong_ull reads it
// (leading white space, decimal digits, nothing after) while refusing what
// encoding/xml would read differently (a sign, trailing space). An empty
// value is refused too: libvirt takes an empty <memory> for a missing one
// and refuses an empty <vcpu> or <size>, encoding/xml reads 0.
func checkNumber(what, v string) error {
	if v == "" {
		return fmt.Errorf("domain XML <%s>: empty", elemName(what))
	}
	t := strings.TrimLeft(v, " \t\n\r")
	if t == "" {
		return fmt.Errorf("domain XML <%s>: %q is not a number", elemName(what), v)
	}
	for i := 0; i < len(t); i++ {
		if t[i] < '0' || t[i] > '9' {
			return fmt.Errorf("domain XML <%s>: %q is not a number", elemName(what), v)
		}
	}
	if _, err := strconv.ParseUint(t, 10, 64); err != nil {
		return fmt.Errorf("domain XML <%s>: %q is too large", elemName(what), v)
	}
	return nil
}
