package cluster

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/model"
	"github.com/vmha/vmha/placement"
	"github.com/vmha/vmha/sharedfs"
	"github.com/vmha/vmha/storage"
)

// storageOn reports whether the cluster has shared storage configured.
func (n *Node) storageOn() bool {
	c := n.cfg.Storage.Config
	return len(c.Filesystems) > 0 || len(c.VolumeGroups) > 0
}

// storageLoop checks, every storage.interval, that this host's cluster
// file systems are ready (mounted with the right type, lock manager up, a
// write-then-read probe answering), publishes the result as host
// attributes through gossip (storage.NAME = ready | not-ready), and writes
// the storage heartbeat on every ready file system, which tells the others
// this host still reaches the shared disk.
func (n *Node) storageLoop(ctx context.Context) {
	chk := storage.HostCheck{Host: n.cfg.NodeName, Cluster: n.cfg.ClusterName, Runner: sharedfs.ExecRunner{}, MountsFile: n.cfg.Storage.MountsFile}
	last := map[string]string{}
	for {
		rs := chk.Check(ctx, n.cfg.Storage.Config)
		for k, v := range storage.HostAttributes(rs) {
			if last[k] != v {
				n.setAttrTag(k, v)
				last[k] = v
			}
		}
		for _, r := range rs {
			if !r.Ready && last["why:"+r.Name] != strings.Join(r.Reasons, "; ") {
				last["why:"+r.Name] = strings.Join(r.Reasons, "; ")
				n.log.Warn().Str("filesystem", r.Name).Strs("reasons", r.Reasons).Msg("storage not ready on this host")
			}
		}
		for i, r := range rs {
			if !r.Ready {
				continue
			}
			fs := n.cfg.Storage.Filesystems[i]
			if _, err := (sharedfs.Heartbeat{Root: fs.MountPoint, Host: n.cfg.NodeName}).Write(); err != nil {
				n.log.Warn().Err(err).Str("filesystem", fs.Name).Msg("storage heartbeat")
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(n.cfg.Storage.Interval):
		}
	}
}

// CheckStorage is `vmha storage check` on this host: readiness of each
// cluster file system and its on-disk format for the cluster's size.
func (n *Node) CheckStorage(ctx context.Context) api.StorageCheck {
	out := api.StorageCheck{Host: n.cfg.NodeName, FileSystems: []api.StorageFS{}}
	n.fsm.Read(func(s *model.State) {
		for _, h := range s.Config.Hosts {
			if !h.Witness {
				out.Hosts++
			}
		}
	})
	r := sharedfs.ExecRunner{}
	chk := storage.HostCheck{Host: n.cfg.NodeName, Cluster: n.cfg.ClusterName, Runner: r, MountsFile: n.cfg.Storage.MountsFile}
	rs := chk.Check(ctx, n.cfg.Storage.Config)
	for i, fs := range n.cfg.Storage.Filesystems {
		v := api.StorageFS{Name: fs.Name, Ready: rs[i].Ready, Reasons: rs[i].Reasons, FormatOK: true}
		if err := storage.CheckFilesystem(ctx, r, fs, n.cfg.ClusterName, out.Hosts); err != nil {
			v.FormatOK, v.FormatError = false, err.Error()
		}
		out.FileSystems = append(out.FileSystems, v)
	}
	return out
}

// checkDisks refuses a VM whose disks are not on the cluster's storage
// (with storage configured): such a VM could not start anywhere else.
func (n *Node) checkDisks(vm *model.VM) error {
	if !n.storageOn() || len(vm.Disks) == 0 {
		return nil
	}
	if _, err := n.cfg.Storage.MapDisks(vm.Name, vm.Disks); err != nil {
		return &ValidationError{Field: "xml", Err: err}
	}
	return nil
}

// storageRules turns each VM's storage into placement rules: a VM may run
// only where every cluster file system holding its disks is ready, which
// vmha explain shows as the rule "storage.NAME ne ready or storage.NAME
// not_defined" at -INFINITY.
func storageRules(cfg storage.Config, st *model.State) []placement.LocationRule {
	if len(cfg.Filesystems) == 0 {
		return nil
	}
	var out []placement.LocationRule
	for _, name := range model.SortedKeys(st.Config.VMs) {
		vm := st.Config.VMs[name]
		rs, err := cfg.MapDisks(name, vm.Disks)
		if err != nil {
			continue // refused at vm add; a config change is reported by status
		}
		for _, fs := range storage.Filesystems(rs) {
			attr := storage.AttrPrefix + fs
			out = append(out, placement.LocationRule{VM: name, Rule: placement.Rule{
				Score: -placement.Infinity, BoolOp: "or",
				Expressions: []placement.Expression{
					{Attribute: attr, Operation: "ne", Value: "ready", Type: "string"},
					{Attribute: attr, Operation: "not_defined"},
				},
			}})
		}
	}
	return out
}

// heartbeatVeto refuses `vmha fence confirm` for a host that still writes
// its storage heartbeat: it is alive and cut off, not down, and its VMs
// may still write to their disks.
func (c *Coordinator) heartbeatVeto(host string) error {
	fss := c.n.cfg.Storage.Filesystems
	if len(fss) == 0 {
		return nil
	}
	window := 3 * c.n.cfg.Storage.Interval
	now := time.Now()
	for _, fs := range fss {
		beats := sharedfs.ReadHeartbeats(fs.MountPoint, []string{host})
		c.mu.Lock()
		if c.beats == nil {
			c.beats = map[string]*sharedfs.Tracker{}
		}
		tr := c.beats[fs.Name]
		if tr == nil {
			tr = &sharedfs.Tracker{}
			c.beats[fs.Name] = tr
		}
		seen := tr.Observe(now, beats)
		c.mu.Unlock()
		for _, b := range seen {
			if b.Host == host && sharedfs.Classify(b, now, window) == sharedfs.Writing {
				return &ConflictError{What: fmt.Sprintf("host %s still writes its storage heartbeat on %s: it is alive and cut off, not down; its VMs may still be writing. Fence it (vmha fence %s) instead", host, fs.Name, host)}
			}
		}
	}
	return nil
}
