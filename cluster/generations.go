package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"sync"

	"github.com/rs/zerolog"

	"github.com/vmha/vmha/model"
)

// generations is a host's floor of placement generations, kept on disk: for
// every VM that has been placed on this host, the highest generation of its
// placement (wherever it pointed) that this host has seen. The agent
// refuses to start a VM under a lower generation, whatever its state
// machine says: that placement has been superseded, so the state it came
// from is the past (a log being replayed, a data directory restored from a
// backup). It is defence in depth behind the read index, which is what
// keeps a replaying host from acting in the first place.
type generations struct {
	mu   sync.Mutex
	path string
	log  zerolog.Logger
	seen map[string]uint64
}

func loadGenerations(path string, log zerolog.Logger) *generations {
	g := &generations{path: path, log: log, seen: map[string]uint64{}}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		log.Warn().Err(err).Str("file", path).Msg("read placement generations")
	default:
		if err := json.Unmarshal(b, &g.seen); err != nil {
			// Refusing to start would make the host useless; the read
			// index still guards every start.
			log.Warn().Err(err).Str("file", path).Msg("placement generations file is corrupt; starting from none")
			g.seen = map[string]uint64{}
		}
	}
	return g
}

// note raises the floor from a state copy. A VM enters the floor when it is
// placed on (or moving to or from) host; after that every newer placement of
// it counts, wherever it points, so the floor knows when it left. Only a
// state known to be current (caught up with a leader's read index) drops
// the VMs it no longer has: an older state may simply predate them.
func (g *generations) note(st *model.State, host string, current bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	changed := false
	for vm, p := range st.Status.Placements {
		old, ok := g.seen[vm]
		if !ok && p.Host != host && p.MigrateFrom != host {
			continue
		}
		if !ok || p.Generation > old {
			g.seen[vm] = p.Generation
			changed = true
		}
	}
	if current {
		for vm := range g.seen {
			if _, ok := st.Config.VMs[vm]; !ok {
				delete(g.seen, vm)
				changed = true
			}
		}
	}
	if changed {
		g.save()
	}
}

// names are the VMs with a floor here.
func (g *generations) names() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Collect(maps.Keys(g.seen))
}

// check refuses generation gen for vm when a newer one was seen here.
func (g *generations) check(vm string, gen uint64) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if seen := g.seen[vm]; gen < seen {
		return fmt.Errorf("placement generation %d of %s is older than generation %d this host has already seen: refusing to start from a superseded placement (the cluster state went back in time; if the whole cluster was rebuilt on purpose, delete %s)", gen, vm, seen, g.path)
	}
	return nil
}

func (g *generations) save() {
	b, err := json.Marshal(g.seen)
	if err != nil {
		return
	}
	tmp := g.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		g.log.Warn().Err(err).Str("file", g.path).Msg("save placement generations")
		return
	}
	if err := os.Rename(tmp, g.path); err != nil {
		g.log.Warn().Err(err).Str("file", g.path).Msg("save placement generations")
	}
}
