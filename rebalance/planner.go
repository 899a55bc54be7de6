package rebalance

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/vmha/vmha/placement"
)

// planner decides which VMs may move where, then climbs.
type planner struct {
	in      *placement.Input
	m       *model
	skipped map[string]string
	stick   []placement.Score
	// scores holds, per VM with host-dependent engine scores, its score on
	// each host (index order) without stickiness; nil for the others,
	// which score the same everywhere.
	scores [][]placement.Score
	// anti lists, per VM, the VMs it has a negative colocation with, both
	// ways: a move never puts them on one host.
	anti [][]int
	// byHost lists, per host, the movable VMs with neither host-dependent
	// scores nor anti-colocations, sorted so that VMs interchangeable for
	// the metric are adjacent and the first of them wins the ties.
	byHost [][]int
	// special are the other movable VMs, checked one by one.
	special []int
	open    []int // hosts that may take or give VMs
	moved   []bool
	used0   []int64 // usage before any move, for the steps
	limit   int
}

// planned is a move of the climb, by index.
type planned struct {
	v, from, to int
	gain        float64
}

func newPlanner(in *placement.Input, m *model) (*planner, error) {
	nv := len(in.VMs)
	p := &planner{
		in: in, m: m, skipped: map[string]string{},
		stick:  make([]placement.Score, nv),
		scores: make([][]placement.Score, nv),
		anti:   make([][]int, nv),
		byHost: make([][]int, len(m.hosts)),
		moved:  make([]bool, nv),
		used0:  slices.Clone(m.used),
		limit:  in.Policy.MigrationLimit,
	}
	for h := range m.hosts {
		if m.open[h] {
			p.open = append(p.open, h)
		}
	}
	vmIx := make(map[string]int, nv)
	for v, vm := range in.VMs {
		vmIx[vm.Name] = v
		p.stick[v] = in.Policy.DefaultStickiness
		if vm.Stickiness != nil {
			p.stick[v] = *vm.Stickiness
		}
	}
	together := make([]string, nv)
	for _, c := range in.Colocations {
		a, b := vmIx[c.VM], vmIx[c.With]
		switch {
		case c.Score > 0:
			// A VM that must or wants to run with another one would leave
			// it behind: rebalance moves single VMs, not groups.
			for _, x := range [][2]int{{a, b}, {b, a}} {
				if together[x[0]] == "" {
					kind := fmt.Sprintf("colocated with %s (score %s): moving it alone would break the preference", in.VMs[x[1]].Name, c.Score)
					if c.Score >= placement.Infinity {
						kind = fmt.Sprintf("mandatory colocation with %s: it may only move with it, and rebalance moves single VMs", in.VMs[x[1]].Name)
					}
					together[x[0]] = kind
				}
			}
		case c.Score < 0:
			p.anti[a] = append(p.anti[a], b)
			p.anti[b] = append(p.anti[b], a)
		}
	}
	raw, err := engineScores(in)
	if err != nil {
		return nil, err
	}
	for v, vm := range in.VMs {
		why := p.reason(v, together[v], raw)
		if why != "" {
			p.skipped[vm.Name] = why
			continue
		}
		if p.scores[v] != nil || len(p.anti[v]) > 0 {
			p.special = append(p.special, v)
		} else {
			p.byHost[m.cur[v]] = append(p.byHost[m.cur[v]], v)
		}
	}
	for _, vs := range p.byHost {
		sort.Slice(vs, func(i, j int) bool {
			a, b := vs[i], vs[j]
			if c := slices.Compare(m.util[a*m.nk:(a+1)*m.nk], m.util[b*m.nk:(b+1)*m.nk]); c != 0 {
				return c < 0
			}
			return p.first(a, b)
		})
	}
	return p, nil
}

// first orders VMs for ties: the lower stickiness (the VM that cares
// less where it runs), then the name.
func (p *planner) first(a, b int) bool {
	if p.stick[a] != p.stick[b] {
		return p.stick[a] < p.stick[b]
	}
	return p.in.VMs[a].Name < p.in.VMs[b].Name
}

// reason says why VM v may not move at all, or "" if it may.
func (p *planner) reason(v int, together string, raw map[string]map[string]placement.Score) string {
	m, vm := p.m, &p.in.VMs[v]
	a := m.cur[v]
	switch {
	case a < 0:
		return "not running"
	case !m.open[a]:
		return "runs on " + m.hosts[a].Name + ", which is " + hostState(m.hosts[a])
	case vm.Target == placement.Stopped:
		return "to be stopped"
	case vm.Unmanaged:
		return "unmanaged"
	case !vm.AllowMigrate:
		return "live migration not allowed (allow-migrate is off)"
	case p.stick[v] >= placement.Infinity:
		return "stickiness INFINITY"
	case together != "":
		return together
	case !m.balance[v]:
		return "uses none of the balanced resources (" + strings.Join(m.keys[:m.nm], ", ") + "): moving it changes nothing"
	}
	sc, ok := raw[vm.Name]
	switch {
	case ok:
		arr := make([]placement.Score, len(m.hosts))
		for h, host := range m.hosts {
			s, ok := sc[host.Name]
			if !ok {
				s = -placement.Infinity
			}
			arr[h] = s
		}
		p.scores[v] = arr
	case p.in.Policy.OptIn:
		// The engine gives a VM no location allows -INFINITY everywhere
		// in an opt-in cluster.
		return "opt-in cluster and no location constraint allows it on any host"
	default:
		return ""
	}
	cur := p.scores[v][a]
	if cur <= -placement.Infinity {
		return "banned from " + m.hosts[a].Name + " (-INFINITY): the engine moves it, not rebalance"
	}
	for _, b := range p.open {
		if b != a && p.allowed(v, a, b) {
			return ""
		}
	}
	if cur >= placement.Infinity {
		return "pinned to " + m.hosts[a].Name + " (INFINITY)"
	}
	return fmt.Sprintf("no other host scores as high as %s (%s) for it", m.hosts[a].Name, cur)
}

// allowed applies the engine's scores to a move of v from a to b: the
// target must be eligible (score >= 0, so not -INFINITY) and score at least
// as high as the current host, stickiness aside. A move therefore never
// goes against a location preference or a pin (an INFINITY location).
func (p *planner) allowed(v, a, b int) bool {
	sc := p.scores[v]
	if sc == nil {
		return true
	}
	return sc[b] >= 0 && sc[b] > -placement.Infinity && sc[b] >= sc[a]
}

func hostState(h *placement.HostInfo) string {
	switch {
	case h.Condition != placement.Usable:
		return h.Condition.String()
	case h.Maintenance:
		return "in maintenance"
	case h.Standby:
		return "in standby"
	}
	return "usable"
}

// engineScores asks the placement engine for the scores of the VMs whose
// scores depend on the host: those with location constraints or rules
// (pins arrive as INFINITY locations) and those with fail counts that may
// ban a host. It leaves out stickiness (so a score is the VM's preference
// for the host, whatever runs where) and colocations (which Plan handles
// itself). Without colocations a VM's scores do not depend on the other
// VMs, so the engine only gets the VMs that need scores: on a large
// cluster with few constraints this costs little.
func engineScores(in *placement.Input) (map[string]map[string]placement.Score, error) {
	var sub placement.Input
	zero := placement.Score(0)
	need := map[string]bool{}
	for _, l := range in.Locations {
		need[l.VM] = true
	}
	for _, r := range in.LocationRules {
		need[r.VM] = true
	}
	for _, vm := range in.VMs {
		if need[vm.Name] || (vm.MigrationThreshold > 0 && len(vm.Failures) > 0) {
			vm.Stickiness = &zero
			sub.VMs = append(sub.VMs, vm)
		}
	}
	if len(sub.VMs) == 0 {
		return nil, nil
	}
	sub.Hosts = in.Hosts
	sub.Locations = in.Locations
	sub.LocationRules = in.LocationRules
	sub.Policy = in.Policy
	sub.Policy.DefaultStickiness = 0
	sub.Now = in.Now
	res, err := placement.Solve(sub, placement.Options{Scores: true})
	if err != nil {
		return nil, fmt.Errorf("rebalance: engine scores: %w", err)
	}
	return res.Scores, nil
}

// best is the best move found so far in a climbing step.
type best struct {
	planned
	ok bool
}

// better reports whether moving v to b with gain g beats c: a larger
// gain, then (on equal gains) p.first's order, then the target's name.
func (p *planner) better(g float64, v, b int, c *best) bool {
	switch {
	case !c.ok || g > c.gain:
		return true
	case g < c.gain:
		return false
	case v != c.v:
		return p.first(v, c.v)
	}
	return b < c.to
}

// scan evaluates every target for VM v on host a.
func (p *planner) scan(st *stats, v, a int, threshold float64, c *best) {
	m := p.m
	u := m.util[v*m.nk : (v+1)*m.nk]
	check := p.scores[v] != nil || len(p.anti[v]) > 0
	l := st.leave(u, a)
	for _, b := range p.open {
		if b == a || !m.fits(v, b) {
			continue
		}
		if check && (!p.allowed(v, a, b) || p.meets(v, b)) {
			continue
		}
		g := st.gain(u, &l, b)
		if g >= threshold && p.better(g, v, b, c) {
			*c = best{planned{v, a, b, g}, true}
		}
	}
}

// meets reports whether a VM that v must not share a host with is on b.
func (p *planner) meets(v, b int) bool {
	for _, w := range p.anti[v] {
		if p.m.cur[w] == b {
			return true
		}
	}
	return false
}

// steps numbers the moves of the climb, keeping their order. A move joins
// the current step unless, counting only what arrives in the step and not
// what leaves in it (migrations of one step run at once, in any order):
// its target lacks room, a host would take part in more migrations than
// the policy's migration limit, or a VM it must avoid leaves its target
// in the same step. Then a new step starts, and the move always fits it
// because the climb checked it against the state after all earlier moves.
func (p *planner) steps(seq []planned) []Move {
	m := p.m
	nk := m.nk
	used := slices.Clone(p.used0)
	base := slices.Clone(used)
	in := make([]int64, len(used))
	count := make([]int, len(m.hosts))
	leftStep := make([]int, len(p.in.VMs))
	leftFrom := make([]int, len(p.in.VMs))
	var touched []int
	step := 1
	moves := make([]Move, 0, len(seq))
	for _, mv := range seq {
		u := m.util[mv.v*nk : (mv.v+1)*nk]
		conflict := p.limit > 0 && (count[mv.from] >= p.limit || count[mv.to] >= p.limit)
		for k, x := range u {
			if i := mv.to*nk + k; x > 0 && base[i]+in[i]+x > m.capa[i] {
				conflict = true
			}
		}
		for _, w := range p.anti[mv.v] {
			if leftStep[w] == step && leftFrom[w] == mv.to {
				conflict = true
			}
		}
		if conflict && len(touched) > 0 {
			step++
			copy(base, used)
			for _, h := range touched {
				count[h] = 0
				clear(in[h*nk : (h+1)*nk])
			}
			touched = touched[:0]
		}
		for k, x := range u {
			in[mv.to*nk+k] += x
			used[mv.to*nk+k] += x
			used[mv.from*nk+k] -= x
		}
		count[mv.from]++
		count[mv.to]++
		touched = append(touched, mv.from, mv.to)
		leftStep[mv.v], leftFrom[mv.v] = step, mv.from
		moves = append(moves, Move{
			VM: p.in.VMs[mv.v].Name, From: m.hosts[mv.from].Name, To: m.hosts[mv.to].Name,
			Gain: mv.gain, Step: step,
		})
	}
	return moves
}
