package rebalance

import (
	"slices"

	"github.com/vmha/vmha/placement"
)

// climbRef is the climb as it was before the upper bounds (issue 17): at
// every step it evaluates every allowed (VM class, target) pair. It is the
// reference the equivalence tests hold climb to: same moves, same gains
// to the bit, same final score.
func (p *planner) climbRef(st *stats, opt Options) []planned {
	m := p.m
	threshold := max(opt.MinGain, gainFloor)
	var seq []planned
	for opt.MaxMoves == 0 || len(seq) < opt.MaxMoves {
		var c best
		for _, a := range p.open {
			var prev []int64
			for _, v := range p.byHost[a] {
				if p.moved[v] {
					continue
				}
				u := m.util[v*m.nk : (v+1)*m.nk]
				if prev != nil && slices.Equal(prev, u) {
					continue
				}
				prev = u
				p.scan(st, v, a, threshold, &c)
			}
		}
		for _, v := range p.special {
			if !p.moved[v] {
				p.scan(st, v, m.cur[v], threshold, &c)
			}
		}
		if !c.ok {
			break
		}
		m.place(c.v, c.to)
		st.moved(c.from, c.to)
		p.moved[c.v] = true
		seq = append(seq, c.planned)
	}
	return seq
}

// planRef is Plan with the reference climb.
func planRef(in placement.Input, opt Options) (*Result, error) {
	return plan(in, opt, (*planner).climbRef)
}
