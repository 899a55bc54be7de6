package storage

import (
	"errors"
	"fmt"
	"sort"

	"github.com/vmha/vmha/sharedfs"
)

// CheckVMs maps the disks of every VM (name → disks as
// model.ParseDomainXML lists them) and reports every disk on no known
// storage, VMs in name order: the config validation of VMs against the
// storage config.
func (c Config) CheckVMs(vms map[string][]string) (map[string][]Resource, error) {
	names := make([]string, 0, len(vms))
	for n := range vms {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make(map[string][]Resource, len(vms))
	var errs []error
	for _, n := range names {
		rs, err := c.MapDisks(n, vms[n])
		out[n] = rs
		errs = append(errs, err)
	}
	return out, errors.Join(errs...)
}

// MayRecover answers the coordinator's question for a host that
// membership lost: may its VMs be started elsewhere? Never while the
// storage heartbeat says the host still writes to the shared disk (it is
// isolated, not dead, and its VMs may still be writing too) unless it was
// fenced; fencing is required anyway before recovery (DESIGN: fence
// before recover), this is the storage's extra veto that explains itself.
func MayRecover(host string, l sharedfs.Liveness, fenced bool) error {
	if fenced {
		return nil
	}
	switch l {
	case sharedfs.Writing:
		return fmt.Errorf("host %s still writes its storage heartbeat: it is cut off from the cluster, not dead; its VMs are not recovered until it is fenced", host)
	case sharedfs.Silent, sharedfs.Never:
		return fmt.Errorf("host %s is silent on storage too, but is not fenced: fence it (or confirm by hand) before its VMs are recovered", host)
	}
	return fmt.Errorf("host %s: unknown storage liveness %q", host, l)
}
