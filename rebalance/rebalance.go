// Package rebalance plans live migrations that even out resource use
// across the cluster's hosts, as Ganeti's hbal does. It is pure: it takes
// the placement engine's Input and returns moves with the reasons for the
// VMs it leaves alone; the coordinator and the migration executor run them.
//
// The metric is Ganeti's cluster score restricted to memory and CPU (see
// Score and docs/rebalance.md); the planner is a greedy hill climb that at
// each step takes the single live migration that lowers the score most.
package rebalance

import (
	"errors"
	"fmt"
	"math"
	"sort"

	"github.com/vmha/vmha/placement"
)

// defaultKeys are the utilization keys the metric balances unless
// Options.Keys says otherwise: Ganeti balances free memory and the
// virtual-to-physical CPU ratio.
var defaultKeys = []string{"memory", "cpu"}

// Options tune a plan.
type Options struct {
	// MaxMoves caps the number of migrations; 0 means no limit.
	MaxMoves int
	// MinGain is the least decrease of the cluster score a migration must
	// bring; a migration costs time and network, so tiny gains are not
	// worth one. Zero still requires a positive gain (above rounding).
	MinGain float64
	// Keys are the utilization keys the metric balances; empty means
	// "memory" and "cpu". Capacity is checked on every key a VM uses,
	// balanced or not.
	Keys []string
}

// Move is one live migration of a plan.
type Move struct {
	VM   string `json:"vm"`
	From string `json:"from"`
	To   string `json:"to"`
	// Gain is how much the cluster score drops with this move, given the
	// moves before it.
	Gain float64 `json:"gain"`
	// Step groups moves that may run at once: a step starts when the
	// previous one is complete. Within a step every target has room for
	// all its incoming VMs before any VM leaves.
	Step int `json:"step"`
}

// Result is a plan.
type Result struct {
	// Before and After are the cluster scores before and after all moves.
	Before float64 `json:"before"`
	After  float64 `json:"after"`
	// Moves are in execution order (Step never decreases).
	Moves []Move `json:"moves"`
	// Skipped says, for every VM the plan may not move at all, why.
	Skipped map[string]string `json:"skipped,omitempty"`
}

// gainFloor is the least gain that counts as one: smaller differences are
// floating-point noise, and accepting them could move VMs for nothing.
const gainFloor = 1e-12

// Score is the cluster score (lower is better balanced) of in with the VMs
// that where names placed on the given hosts; the other VMs count where
// in says they run (VMInfo.Current). A host named in where that in does
// not know is ignored, as is a VM placed on no host.
//
// The score is the sum, over the balanced keys ("memory" and "cpu" unless
// keys are given), of the population standard deviation of the hosts'
// usage ratios (used / capacity). Only hosts that can take or give VMs
// count: usable, neither in standby nor in maintenance, with a nonzero
// capacity for the key. These are Ganeti's free_mem_cv and vcpu_ratio_cv
// components (Ganeti names them cv for historical reasons; they are
// standard deviations), whose weights add up to 1 each.
func Score(in placement.Input, where map[string]string, keys ...string) float64 {
	if len(keys) == 0 {
		keys = defaultKeys
	}
	m := newModel(&in, keys)
	for v, vm := range in.VMs {
		h, ok := where[vm.Name]
		if !ok {
			continue
		}
		m.place(v, m.hostIx(h))
	}
	return newStats(m).score()
}

// Plan computes the live migrations that lower the cluster score most,
// one at a time, until no migration gains at least opt.MinGain or
// opt.MaxMoves are planned. Each VM moves at most once; every move keeps
// every host within capacity at every point of the plan. It returns an
// error when the options or the input are invalid.
func Plan(in placement.Input, opt Options) (*Result, error) {
	return plan(in, opt, (*planner).climb)
}

// plan is Plan with the climb given, so that tests can run the reference
// climb (a scan of every candidate at every step) on the same input.
func plan(in placement.Input, opt Options, climb func(*planner, *stats, Options) []planned) (*Result, error) {
	if err := checkOptions(opt); err != nil {
		return nil, err
	}
	if err := placement.Validate(&in); err != nil {
		return nil, fmt.Errorf("rebalance: invalid input: %w", err)
	}
	keys := opt.Keys
	if len(keys) == 0 {
		keys = defaultKeys
	}
	m := newModel(&in, keys)
	var errs []error
	for _, vm := range in.VMs {
		if vm.Current != "" && m.hostIx(vm.Current) < 0 {
			errs = append(errs, fmt.Errorf("vm %q runs on unknown host %q", vm.Name, vm.Current))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("rebalance: invalid input: %w", err)
	}
	p, err := newPlanner(&in, m)
	if err != nil {
		return nil, err
	}
	res := &Result{Skipped: p.skipped}
	st := newStats(m)
	res.Before = st.score()
	seq := climb(p, st, opt)
	res.Moves = p.steps(seq)
	res.After = newStats(m).score()
	return res, nil
}

func checkOptions(opt Options) error {
	var errs []error
	if opt.MaxMoves < 0 {
		errs = append(errs, fmt.Errorf("max moves %d is negative: want 0 (no limit) or more", opt.MaxMoves))
	}
	if len(opt.Keys) > maxKeys {
		errs = append(errs, fmt.Errorf("%d utilization keys to balance: at most %d", len(opt.Keys), maxKeys))
	}
	if math.IsNaN(opt.MinGain) || math.IsInf(opt.MinGain, 0) || opt.MinGain < 0 {
		errs = append(errs, fmt.Errorf("min gain %v: want a finite number >= 0", opt.MinGain))
	}
	seen := map[string]bool{}
	for _, k := range opt.Keys {
		switch {
		case k == "":
			errs = append(errs, errors.New("empty utilization key"))
		case seen[k]:
			errs = append(errs, fmt.Errorf("utilization key %q given twice", k))
		}
		seen[k] = true
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("rebalance: %w", err)
	}
	return nil
}

// model is the cluster as dense arrays: hosts in name order (so index
// order is name order and ties break by name), keys with the balanced ones
// first, and per-host usage that moves update.
type model struct {
	hosts   []*placement.HostInfo
	ix      map[string]int
	open    []bool // may take or give VMs: usable, not standby, not maintenance
	keys    []string
	nm      int     // keys[:nm] are balanced
	nk      int     // len(keys)
	capa    []int64 // host*nk + key
	used    []int64 // host*nk + key
	util    []int64 // vm*nk + key
	cur     []int   // host of each VM, -1 if none
	balance []bool  // per VM: uses some balanced key
}

func newModel(in *placement.Input, balanced []string) *model {
	m := &model{ix: map[string]int{}, nm: len(balanced)}
	for i := range in.Hosts {
		m.hosts = append(m.hosts, &in.Hosts[i])
	}
	sort.SliceStable(m.hosts, func(i, j int) bool { return m.hosts[i].Name < m.hosts[j].Name })
	m.open = make([]bool, len(m.hosts))
	for i, h := range m.hosts {
		if _, dup := m.ix[h.Name]; !dup {
			m.ix[h.Name] = i
		}
		m.open[i] = h.Condition == placement.Usable && !h.Standby && !h.Maintenance
	}
	m.keys = append(m.keys, balanced...)
	keyIx := map[string]int{}
	for i, k := range balanced {
		keyIx[k] = i
	}
	// Capacity is checked on every key a VM uses, balanced or not.
	var extra []string
	for _, vm := range in.VMs {
		for k, u := range vm.Utilization {
			if _, ok := keyIx[k]; !ok && u > 0 {
				keyIx[k] = -1
				extra = append(extra, k)
			}
		}
	}
	sort.Strings(extra)
	for _, k := range extra {
		keyIx[k] = len(m.keys)
		m.keys = append(m.keys, k)
	}
	m.nk = len(m.keys)
	m.capa = make([]int64, len(m.hosts)*m.nk)
	m.used = make([]int64, len(m.hosts)*m.nk)
	for h, host := range m.hosts {
		for k, c := range host.Capacity {
			if i, ok := keyIx[k]; ok {
				m.capa[h*m.nk+i] = c
			}
		}
	}
	m.util = make([]int64, len(in.VMs)*m.nk)
	m.cur = make([]int, len(in.VMs))
	m.balance = make([]bool, len(in.VMs))
	for v, vm := range in.VMs {
		for k, u := range vm.Utilization {
			if i, ok := keyIx[k]; ok && u > 0 {
				m.util[v*m.nk+i] = u
				if i < m.nm {
					m.balance[v] = true
				}
			}
		}
		m.cur[v] = -1
		m.place(v, m.hostIx(vm.Current))
	}
	return m
}

func (m *model) hostIx(name string) int {
	if h, ok := m.ix[name]; ok && name != "" {
		return h
	}
	return -1
}

// place moves VM v to host h (-1: nowhere), updating usage.
func (m *model) place(v, h int) {
	u := m.util[v*m.nk : (v+1)*m.nk]
	if old := m.cur[v]; old >= 0 {
		for k, x := range u {
			m.used[old*m.nk+k] -= x
		}
	}
	if h >= 0 {
		for k, x := range u {
			m.used[h*m.nk+k] += x
		}
	}
	m.cur[v] = h
}

// fits reports whether host h has room for VM v now. A key the host does
// not list has no capacity, as in the engine's utilization strategies.
func (m *model) fits(v, h int) bool {
	u := m.util[v*m.nk : (v+1)*m.nk]
	for k, x := range u {
		if x > 0 && m.used[h*m.nk+k]+x > m.capa[h*m.nk+k] {
			return false
		}
	}
	return true
}
