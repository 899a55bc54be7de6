package rebalance

import "math"

// stats keeps, per balanced key, the sums over the counted hosts of their
// usage ratios and of the squares, so that the score change of a move,
// which alters two hosts' ratios, costs O(keys) instead of O(hosts).
// Ratios are stored minus the initial mean of their key: the variance is
// then a difference of small numbers, which keeps its rounding error far
// below any gain worth a migration.
type stats struct {
	m     *model
	nm    int
	count []bool    // host*nm + key: the host counts for the key
	inv   []float64 // host*nm + key: 1 / capacity
	x     []float64 // host*nm + key: usage ratio - shift[key]
	shift []float64
	n     []float64 // per key: counted hosts
	s, q  []float64 // per key: sum of x, sum of x²
	sd    []float64 // per key: population standard deviation
}

func newStats(m *model) *stats {
	nh := len(m.hosts)
	st := &stats{
		m: m, nm: m.nm,
		count: make([]bool, nh*m.nm), inv: make([]float64, nh*m.nm), x: make([]float64, nh*m.nm),
		shift: make([]float64, m.nm), n: make([]float64, m.nm),
		s: make([]float64, m.nm), q: make([]float64, m.nm), sd: make([]float64, m.nm),
	}
	for h := 0; h < nh; h++ {
		for k := 0; k < m.nm; k++ {
			if c := m.capa[h*m.nk+k]; m.open[h] && c > 0 {
				st.count[h*m.nm+k] = true
				st.inv[h*m.nm+k] = 1 / float64(c)
			}
		}
		st.refresh(h)
	}
	// Shift by the mean so that the sums stay small.
	for h := 0; h < nh; h++ {
		for k := 0; k < m.nm; k++ {
			if st.count[h*m.nm+k] {
				st.n[k]++
				st.shift[k] += st.x[h*m.nm+k]
			}
		}
	}
	for k := range st.shift {
		if st.n[k] > 0 {
			st.shift[k] /= st.n[k]
		}
	}
	for h := 0; h < nh; h++ {
		st.refresh(h)
	}
	st.resum()
	return st
}

// refresh recomputes host h's shifted ratios from its usage.
func (st *stats) refresh(h int) {
	m := st.m
	for k := 0; k < st.nm; k++ {
		i := h*st.nm + k
		if st.count[i] {
			st.x[i] = float64(m.used[h*m.nk+k])*st.inv[i] - st.shift[k]
		}
	}
}

// resum recomputes the sums from scratch, so that rounding errors of the
// incremental updates never accumulate over many moves.
func (st *stats) resum() {
	nh := len(st.m.hosts)
	for k := 0; k < st.nm; k++ {
		st.s[k], st.q[k] = 0, 0
		for h := 0; h < nh; h++ {
			if i := h*st.nm + k; st.count[i] {
				st.s[k] += st.x[i]
				st.q[k] += st.x[i] * st.x[i]
			}
		}
		st.sd[k] = stddev(st.n[k], st.s[k], st.q[k])
	}
}

func stddev(n, s, q float64) float64 {
	if n == 0 {
		return 0
	}
	mean := s / n
	v := q/n - mean*mean
	if v <= 0 {
		return 0
	}
	return math.Sqrt(v)
}

func (st *stats) score() float64 {
	var t float64
	for _, s := range st.sd {
		t += s
	}
	return t
}

// leave is the part of a move's change to the sums that comes from the
// source host: computed once per VM, reused for every target.
type leave struct {
	ds, dq [maxKeys]float64
}

// maxKeys bounds the balanced keys gain handles without allocating.
const maxKeys = 8

func (st *stats) leave(u []int64, a int) (l leave) {
	for k := 0; k < st.nm; k++ {
		if i := a*st.nm + k; u[k] != 0 && st.count[i] {
			d := float64(u[k]) * st.inv[i]
			l.dq[k] = d*d - 2*st.x[i]*d
			l.ds[k] = -d
		}
	}
	return l
}

// gain is how much the score drops when a VM using u (per key), which
// leaves its host as l says, arrives on host b. Only the two hosts'
// ratios change, so the new variance of each key follows from the sums
// in O(1).
func (st *stats) gain(u []int64, l *leave, b int) float64 {
	var g float64
	for k := 0; k < st.nm; k++ {
		uk := u[k]
		if uk == 0 {
			continue
		}
		ds, dq := l.ds[k], l.dq[k]
		if i := b*st.nm + k; st.count[i] {
			d := float64(uk) * st.inv[i]
			dq += d*d + 2*st.x[i]*d
			ds += d
		}
		g += st.sd[k] - stddev(st.n[k], st.s[k]+ds, st.q[k]+dq)
	}
	return g
}

// moved updates the statistics after a VM left host a for host b (the
// model's usage is already updated).
func (st *stats) moved(a, b int) {
	st.refresh(a)
	st.refresh(b)
	st.resum()
}
