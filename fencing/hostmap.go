package fencing

import (
	"fmt"
	"strings"
)

// ParseHostMap parses a host → port map written like Pacemaker's
// pcmk_host_map or external/libvirt's hostlist: "h1:dom1;h2:dom2", with
// ";", "," or white space between entries and "=" accepted for ":". An
// entry without a separator maps a host to the port (domain, plug) of the
// same name. Errors name the bad entry.
func ParseHostMap(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, e := range strings.FieldsFunc(s, func(r rune) bool {
		return r == ';' || r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
	}) {
		h, d, ok := strings.Cut(e, ":")
		if !ok {
			h, d, ok = strings.Cut(e, "=")
		}
		if !ok {
			d = h
		}
		if h == "" || d == "" {
			return nil, fmt.Errorf("host map entry %q is not HOST:PORT", e)
		}
		if prev, dup := out[h]; dup {
			return nil, fmt.Errorf("host map names host %s twice (%s and %s)", h, prev, d)
		}
		out[h] = d
	}
	return out, nil
}
