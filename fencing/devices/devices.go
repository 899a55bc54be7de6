// Package devices opens the fence devices a fencing/spec.Spec describes
// (IPMI BMCs, libvirt management hypervisors, external fence agents) into
// fencing.Topology values, ready to run.
//
// It is apart from fencing/spec so that only the programs that fence
// (vmhad, through cluster) link the device drivers: config and the vmha CLI
// validate specs but never open a device, and the libvirt driver is cgo,
// whose shared libraries alone would slow every start of the CLI by tens of
// milliseconds. cmd/vmha's TestNoCgoBinding keeps it that way.
package devices

import (
	"errors"
	"fmt"
	"sort"
	"strconv"

	"github.com/vmha/vmha/fencing"
	"github.com/vmha/vmha/fencing/agent"
	"github.com/vmha/vmha/fencing/ipmi"
	fvirt "github.com/vmha/vmha/fencing/libvirt"
	"github.com/vmha/vmha/fencing/spec"
)

// Open validates d and returns the device that fences target. target
// selects the port of a device with a host_map (libvirt domain, agent
// plug); devices without one ignore it. A libvirt device opened here has a
// connection of its own, made on first use; Build shares one per device.
func Open(d spec.Device, target string) (fencing.Device, error) {
	return open(d, target, nil)
}

func open(d spec.Device, target string, conns map[string]*fvirt.Conn) (fencing.Device, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	if err := d.MapsHost(target); err != nil {
		return nil, err
	}
	pw, err := d.Password()
	if err != nil {
		return nil, err
	}
	wrap := func(err error) error { return fmt.Errorf("fence device %s: %w", d.Name, err) }
	switch d.Type {
	case spec.TypeIPMI:
		cfg := ipmi.Config{
			Host: d.Params["address"], User: d.Params["user"], Password: pw,
			Interface: d.Params["interface"], Timeout: d.Timeout,
		}
		// Validate checked that these parse.
		cfg.Port, _ = strconv.Atoi(orZero(d.Params["port"]))
		cfg.CipherSuite, _ = strconv.Atoi(orZero(d.Params["cipher_suite"]))
		dev, err := ipmi.New(cfg)
		if err != nil {
			return nil, wrap(err)
		}
		return dev, nil
	case spec.TypeLibvirt:
		c := conns[d.Name]
		if c == nil {
			var hm map[string]string
			if s, ok := d.Params["host_map"]; ok {
				hm, _ = fencing.ParseHostMap(s)
			}
			c, err = fvirt.New(fvirt.Config{URI: d.Params["uri"], Domains: hm, Timeout: d.Timeout})
			if err != nil {
				return nil, wrap(err)
			}
			if conns != nil {
				conns[d.Name] = c
			}
		}
		dev, err := c.Device(target)
		if err != nil {
			return nil, wrap(err)
		}
		return dev, nil
	case spec.TypeAgent:
		opts := map[string]string{}
		for k, v := range d.Params {
			if k != "agent" && k != "host_map" {
				opts[k] = v
			}
		}
		if s, ok := d.Params["host_map"]; ok {
			hm, _ := fencing.ParseHostMap(s)
			opts["plug"] = hm[target]
		}
		dev, err := agent.New(agent.Config{Agent: d.Params["agent"], Options: opts, Password: pw, Timeout: d.Timeout})
		if err != nil {
			return nil, wrap(err)
		}
		return dev, nil
	}
	return nil, wrap(fmt.Errorf("unknown type %q", d.Type))
}

func orZero(s string) string {
	if s == "" {
		return "0"
	}
	return s
}

// Set is a built spec: one topology per host, ready to Run.
type Set struct {
	// Topologies maps a host name to its topology.
	Topologies map[string]fencing.Topology
	conns      map[string]*fvirt.Conn
}

// Build validates s, reads every password and opens every device of every
// host's levels. Either all of it succeeds or nothing is returned: the
// error lists every problem, each naming its device or host.
func Build(s spec.Spec) (*Set, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	devs := map[string]spec.Device{}
	for _, d := range s.Devices {
		devs[d.Name] = d
	}
	set := &Set{Topologies: map[string]fencing.Topology{}, conns: map[string]*fvirt.Conn{}}
	var errs []error
	failed := map[string]bool{} // report a device's open error once
	for _, h := range s.Hosts {
		action, _ := fencing.ParseAction(h.Action)
		t := fencing.Topology{Host: h.Name, Action: action, Delay: h.Delay, RandomDelay: h.RandomDelay}
		for _, lvl := range h.Levels {
			var l fencing.Level
			for _, dn := range lvl {
				if failed[dn] {
					continue
				}
				dev, err := open(devs[dn], h.Name, set.conns)
				if err != nil {
					// The password and parameter errors of a device are the
					// same for every host; the host matters only for a map.
					if _, hasMap := devs[dn].Params["host_map"]; !hasMap {
						failed[dn] = true
					}
					errs = append(errs, err)
					continue
				}
				l.Devices = append(l.Devices, dev)
			}
			t.Levels = append(t.Levels, l)
		}
		set.Topologies[h.Name] = t
	}
	if len(errs) > 0 {
		_ = set.Close()
		return nil, errors.Join(errs...)
	}
	return set, nil
}

// Close releases the connections of the set's libvirt devices.
func (s *Set) Close() error {
	var errs []error
	for _, c := range s.conns {
		if err := c.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Hosts returns the host names of the set, sorted.
func (s *Set) Hosts() []string {
	out := make([]string, 0, len(s.Topologies))
	for h := range s.Topologies {
		out = append(out, h)
	}
	sort.Strings(out)
	return out
}
