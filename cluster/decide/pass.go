package decide

import "slices"

// Pass is one leader pass: wait_for_all, hosts seen alive, each host's
// lifecycle (lost, fenced, back), expired pins, moves whose source was
// fenced, evacuations, the rebalance under way, and the placement of every
// VM that needs a host, in that order. Each decision sees the ones before
// it (the pass applies its own commands to v.State, which must be a copy).
//
// It is a pure function of its arguments: no I/O, no clock, no
// randomness but v.NewID.
func Pass(v *View, mem *Memory) Plan {
	b := &builder{v: v}
	if v.Apply == nil || v.NewID == nil {
		panic("decide.Pass: the view needs Apply and NewID")
	}
	if b.waitForAll(mem) {
		return b.plan
	}
	b.markSeen()
	if b.clusterMaintenance() {
		return b.plan
	}
	for _, name := range sortedHosts(v) {
		b.host(mem, name)
	}
	b.expirePins()
	b.endMovesOfFenced()
	b.evacuations()
	b.rebalance()
	b.countFailures()
	b.followUnmanaged()
	b.holdHealth()
	b.place()
	return b.plan
}

func sortedHosts(v *View) []string {
	out := make([]string, 0, len(v.State.Config.Hosts))
	for name := range v.State.Config.Hosts {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}
