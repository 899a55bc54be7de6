package placement

import (
	"fmt"
	"sort"
	"strings"
)

// diffMaps returns a readable difference between two string maps, or "".
func diffMaps(want, got map[string]string) string {
	keys := map[string]bool{}
	for k := range want {
		keys[k] = true
	}
	for k := range got {
		keys[k] = true
	}
	var ks []string
	for k := range keys {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	var b strings.Builder
	for _, k := range ks {
		w, wok := want[k]
		g, gok := got[k]
		if w != g || wok != gok {
			fmt.Fprintf(&b, "  %s: want %q, got %q\n", k, w, g)
		}
	}
	return b.String()
}
