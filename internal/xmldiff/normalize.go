package xmldiff

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// Normalize makes the XML a hypervisor holds for a domain (host)
// comparable with the definition vmha replicates for it (ref), and
// returns both as canonical text, one element or attribute set per line:
//
//   - host keeps only what ref mentions: libvirt adds a uuid, the domain's
//     id, default devices (controllers, USB, memballoon, ...), PCI
//     addresses, aliases, seclabels, machine types. vmha owns the fields
//     the operator wrote, so those are compared and libvirt's additions are
//     not. Children are matched by tag, in order (the second <disk> of
//     one with the second <disk> of the other); an attribute is kept when
//     the matching element of ref has it.
//   - memory sizes (memory, currentMemory, maxMemory) are in KiB on both
//     sides (libvirt rewrites every unit as KiB).
//   - attributes are sorted, text is trimmed, indentation is two spaces.
//
// So a field the operator changed, added or removed shows; what libvirt
// only filled in does not. (The alternative, having libvirt format the
// replicated XML too, would need a define on some hypervisor just to
// read it back.)
func Normalize(ref, host string) (refOut, hostOut string, err error) {
	r, err := parse(ref)
	if err != nil {
		return "", "", fmt.Errorf("replicated XML: %w", err)
	}
	h, err := parse(host)
	if err != nil {
		return "", "", fmt.Errorf("hypervisor's XML: %w", err)
	}
	unitsToKiB(r)
	unitsToKiB(h)
	prune(h, r)
	return render(r), render(h), nil
}

// Canonical is xml in Normalize's canonical text, without pruning: for a
// diff of two definitions written by people (vmha vm update shows the
// lines of the files as written instead).
func Canonical(s string) (string, error) {
	n, err := parse(s)
	if err != nil {
		return "", err
	}
	return render(n), nil
}

type node struct {
	name     string
	attrs    map[string]string
	text     string
	children []*node
}

func parse(s string) (*node, error) {
	dec := xml.NewDecoder(strings.NewReader(s))
	var stack []*node
	var root *node
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			n := &node{name: qname(t.Name), attrs: map[string]string{}}
			for _, a := range t.Attr {
				n.attrs[qname(a.Name)] = a.Value
			}
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.children = append(p.children, n)
			} else if root == nil {
				root = n
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text += string(t)
			}
		}
	}
	if root == nil {
		return nil, errors.New("no root element")
	}
	return root, nil
}

func qname(n xml.Name) string {
	if n.Space != "" {
		return n.Space + ":" + n.Local
	}
	return n.Local
}

var kib = map[string]uint64{
	"k": 1, "kib": 1, "m": 1 << 10, "mib": 1 << 10,
	"g": 1 << 20, "gib": 1 << 20, "t": 1 << 30, "tib": 1 << 30,
}

// unitsToKiB rewrites memory sizes in KiB, as libvirt does.
func unitsToKiB(n *node) {
	switch n.name {
	case "memory", "currentMemory", "maxMemory":
		v, err := strconv.ParseUint(strings.TrimSpace(n.text), 10, 64)
		if err != nil {
			break
		}
		unit := strings.ToLower(n.attrs["unit"])
		switch f, ok := kib[unit]; {
		case unit == "":
			// KiB already.
		case unit == "b" || unit == "bytes":
			v /= 1024
		case unit == "kb":
			v = v * 1000 / 1024
		case unit == "mb":
			v = v * 1000 * 1000 / 1024
		case unit == "gb":
			v = v * 1000 * 1000 * 1000 / 1024
		case ok:
			v *= f
		default:
			return
		}
		n.text = strconv.FormatUint(v, 10)
		n.attrs["unit"] = "KiB"
	}
	for _, c := range n.children {
		unitsToKiB(c)
	}
}

// prune keeps of h what ref mentions (see Normalize).
func prune(h, ref *node) {
	for k := range h.attrs {
		if _, ok := ref.attrs[k]; !ok {
			delete(h.attrs, k)
		}
	}
	if strings.TrimSpace(ref.text) == "" && len(ref.children) > 0 {
		h.text = ""
	}
	used := make([]bool, len(h.children))
	var kept []*node
	for _, rc := range ref.children {
		for i, hc := range h.children {
			if !used[i] && hc.name == rc.name {
				used[i] = true
				prune(hc, rc)
				kept = append(kept, hc)
				break
			}
		}
	}
	// In the hypervisor's order, which matches ref's for what both have.
	order := map[*node]int{}
	for i, c := range h.children {
		order[c] = i
	}
	sort.SliceStable(kept, func(i, j int) bool { return order[kept[i]] < order[kept[j]] })
	h.children = kept
}

func render(n *node) string {
	var sb strings.Builder
	write(&sb, n, 0)
	return sb.String()
}

func write(sb *strings.Builder, n *node, depth int) {
	ind := strings.Repeat("  ", depth)
	sb.WriteString(ind + "<" + n.name)
	keys := make([]string, 0, len(n.attrs))
	for k := range n.attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(sb, " %s=%q", k, n.attrs[k])
	}
	text := strings.TrimSpace(n.text)
	switch {
	case len(n.children) == 0 && text == "":
		sb.WriteString("/>\n")
	case len(n.children) == 0:
		sb.WriteString(">" + escape(text) + "</" + n.name + ">\n")
	default:
		sb.WriteString(">\n")
		if text != "" {
			sb.WriteString(ind + "  " + escape(text) + "\n")
		}
		for _, c := range n.children {
			write(sb, c, depth+1)
		}
		sb.WriteString(ind + "</" + n.name + ">\n")
	}
}

func escape(s string) string {
	var sb strings.Builder
	_ = xml.EscapeText(&sb, []byte(s))
	return sb.String()
}
