package sim

import (
	"fmt"
	"time"

	"github.com/vmha/vmha/model"
)

// Failure is the timeline of one host failure.
type Failure struct {
	Host string
	// VMs is how many VMs the host ran when it failed.
	VMs int
	// Killed is when its power was cut. Lost and Fenced are the committed
	// host states (stamped by the leader when it proposed them: same
	// process, same clock). Placed is when the replica first held a new
	// host for each of its VMs; Recovered when every one of them was
	// active on another host's hypervisor.
	Killed, Lost, Fenced, Placed, Recovered time.Time
	// OthersLost counts hosts other than Host that left the alive state
	// meanwhile (false suspicions that went as far as the log).
	OthersLost int
}

// Detect is kill → lost committed.
func (f *Failure) Detect() time.Duration { return f.Lost.Sub(f.Killed) }

// FenceTime is lost → fenced committed.
func (f *Failure) FenceTime() time.Duration { return f.Fenced.Sub(f.Lost) }

// Recover is fenced → every VM running elsewhere.
func (f *Failure) Recover() time.Duration { return f.Recovered.Sub(f.Fenced) }

// Total is kill → running.
func (f *Failure) Total() time.Duration { return f.Recovered.Sub(f.Killed) }

func (f *Failure) String() string {
	return fmt.Sprintf("%s (%d VMs): detected %v, fenced %v later, placed %v after kill, running elsewhere %v after the fence; total %v",
		f.Host, f.VMs, f.Detect().Round(time.Millisecond), f.FenceTime().Round(time.Millisecond), f.Placed.Sub(f.Killed).Round(time.Millisecond),
		f.Recover().Round(time.Millisecond), f.Total().Round(time.Millisecond))
}

// FailHost cuts a host's power (no leave, no last words) and waits until
// the cluster has detected, fenced and recovered it, or limit passes.
func (c *Cluster) FailHost(name string, limit time.Duration) (*Failure, error) {
	h := c.byName[name]
	if h == nil {
		return nil, fmt.Errorf("sim: no host %s", name)
	}
	victims := h.HV.Active()
	f := &Failure{Host: name, VMs: len(victims)}
	f.Killed = time.Now()
	h.PowerOff()
	err := c.waitFor(limit, "host "+name+" to be detected, fenced and its VMs recovered", func() bool {
		now := time.Now()
		placed := c.readFailure(f, victims)
		if f.Placed.IsZero() && placed {
			f.Placed = now
		}
		if !placed || !c.runningElsewhere(h, victims) {
			return false
		}
		f.Recovered = now
		return !f.Fenced.IsZero()
	})
	c.replica.fsm.Read(func(s *model.State) {
		for hn, hs := range s.Status.Hosts {
			if hn != name && c.byName[hn] != nil && hs.State != model.HostAlive {
				f.OthersLost++
			}
		}
	})
	return f, err
}

// readFailure stamps f with the committed lost and fenced times of its
// host, once they are there, and reports whether every one of victims is
// placed on another host.
func (c *Cluster) readFailure(f *Failure, victims []string) (placed bool) {
	name := f.Host
	placed = true
	c.replica.fsm.Read(func(s *model.State) {
		if hs := s.Status.Hosts[name]; hs != nil {
			if f.Lost.IsZero() && hs.LostAt.After(f.Killed) {
				f.Lost = hs.LostAt
			}
			if f.Fenced.IsZero() && hs.State == model.HostFenced && hs.FencedAt.After(f.Killed) {
				f.Fenced = hs.FencedAt
			}
		}
		for _, vm := range victims {
			if p := s.Status.Placements[vm]; p == nil || p.Host == "" || p.Host == name {
				placed = false
				return
			}
		}
	})
	return placed
}

// runningElsewhere reports whether every one of vms is active on a host
// other than h.
func (c *Cluster) runningElsewhere(h *Host, vms []string) bool {
	for _, vm := range vms {
		running := false
		for _, o := range c.hosts {
			if o == h {
				continue
			}
			if d, ok := o.HV.Lookup(vm); ok && d.State.Active() {
				running = true
				break
			}
		}
		if !running {
			return false
		}
	}
	return true
}
