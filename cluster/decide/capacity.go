package decide

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/vmha/vmha/model"
)

// EvacuationShortfall says why evacuating host as e would leave VMs with
// nowhere to go, or "" when the other usable hosts can take them: host is
// the last usable host, or the memory of its VMs (plus that of the VMs
// still on hosts whose evacuation is under way, which need the same
// hosts) exceeds the free memory of the hosts that stay usable (alive, not
// evacuated, not in maintenance). It counts memory only; the plan
// (PlanEvacuation) says which VM fits where.
func EvacuationShortfall(v *View, host string, e *model.Evacuation) string {
	st := v.State
	var others []string
	var free uint64
	for _, h := range model.SortedKeys(st.Config.Hosts) {
		if h == host || !Usable(st, v.Members, h) || st.Status.Maintenance[h] != nil {
			continue
		}
		if o := st.Status.Evacuations[h]; o != nil && o.Storage == "" {
			continue
		}
		others = append(others, h)
		free += FreeMiB(st, h)
	}
	n, need := leaving(st, host, e)
	if len(others) == 0 {
		if e.Storage != "" && n == 0 {
			return ""
		}
		return fmt.Sprintf("%s is the last usable host: no other host is alive, out of maintenance and not evacuated, so %s's %d VM(s) (%s) would have nowhere to go", host, host, n, GiB(need))
	}
	what := fmt.Sprintf("%s's %d VM(s) need %s", host, n, GiB(need))
	var also []string
	for _, h := range model.SortedKeys(st.Status.Evacuations) {
		o := st.Status.Evacuations[h]
		if h == host || o.Storage != "" || o.Done {
			continue
		}
		if k, m := leaving(st, h, o); k > 0 {
			n, need = n+k, need+m
			also = append(also, fmt.Sprintf("%s's %d VM(s) (%s)", h, k, GiB(m)))
		}
	}
	if len(also) > 0 {
		what += fmt.Sprintf(", and with the evacuation of %s under way, %d VM(s) need %s", strings.Join(also, ", "), n, GiB(need))
	}
	if need <= free {
		return ""
	}
	return fmt.Sprintf("%s; the other usable hosts (%s) have %s free", what, strings.Join(others, ", "), GiB(free))
}

// leaving counts the VMs evacuation e moves off host and their memory.
func leaving(st *model.State, host string, e *model.Evacuation) (n int, mib uint64) {
	for vm, p := range st.Status.Placements {
		if p.Host != host || p.MigrateFrom != "" || (e != nil && !e.Covers(vm)) {
			continue
		}
		if c := st.Config.VMs[vm]; c != nil {
			n++
			mib += c.MemoryMiB
		}
	}
	return n, mib
}

// GiB shows an amount of MiB in GiB, to a tenth ("48 GiB", "1.5 GiB").
func GiB(mib uint64) string {
	s := strconv.FormatFloat(float64(mib)/1024, 'f', 1, 64)
	return strings.TrimSuffix(s, ".0") + " GiB"
}
