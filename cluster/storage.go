package cluster

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/model"
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

// heartbeatVeto refuses `vmha fence confirm` for a host that still writes
// its storage heartbeat: it is alive and cut off, not down, and its VMs
// may still write to their disks.
func (c *Coordinator) heartbeatVeto(host string) error {
	lv := c.observeHeartbeats([]string{host})
	if l := lv[host]; l.Liveness == sharedfs.Writing {
		return &ConflictError{What: fmt.Sprintf("host %s still writes its storage heartbeat on %s: it is alive and cut off, not down; its VMs may still be writing. Fence it (vmha fence %s) instead", host, l.FS, host)}
	}
	return nil
}

// hostBeat is the storage heartbeat's verdict on one host: Writing on FS
// when it writes on any file system, else Silent or Never.
type hostBeat struct {
	Liveness sharedfs.Liveness
	FS       string
}

// observeHeartbeats reads the storage heartbeats of hosts on every cluster
// file system this host mounts and returns each host's verdict. Called on
// every coordinator pass so that the trackers see the files change (by
// this host's clock) and status can tell a dead host from an isolated one.
func (c *Coordinator) observeHeartbeats(hosts []string) map[string]hostBeat {
	fss := c.n.cfg.Storage.Filesystems
	out := map[string]hostBeat{}
	if len(fss) == 0 {
		return out
	}
	// Three write periods, plus slack for a host whose readiness check
	// (mount table, lock manager, I/O probe) runs slow under load: a
	// longer window only makes "still writing" stick longer, which is
	// the safe side (it vetoes a confirm and keeps a recovery waiting).
	window := 3*c.n.cfg.Storage.Interval + 5*time.Second
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.beats == nil {
		c.beats = map[string]*sharedfs.Tracker{}
	}
	if c.liveness == nil {
		c.liveness = map[string]hostBeat{}
	}
	for _, fs := range fss {
		tr := c.beats[fs.Name]
		if tr == nil {
			tr = &sharedfs.Tracker{}
			c.beats[fs.Name] = tr
		}
		for _, b := range tr.Observe(now, sharedfs.ReadHeartbeats(fs.MountPoint, hosts)) {
			l := sharedfs.Classify(b, now, window)
			cur, seen := out[b.Host]
			switch {
			case !seen, l == sharedfs.Writing && cur.Liveness != sharedfs.Writing, l == sharedfs.Silent && cur.Liveness == sharedfs.Never:
				out[b.Host] = hostBeat{Liveness: l, FS: fs.Name}
			}
		}
	}
	for h, b := range out {
		c.liveness[h] = b
	}
	return out
}

// Liveness is the last storage-heartbeat verdict per host (empty without
// cluster file systems), for vmha status.
func (c *Coordinator) Liveness() map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]string{}
	for h, b := range c.liveness {
		out[h] = string(b.Liveness)
	}
	return out
}

// InitStorage is `vmha storage init FS`: it formats one of this host's
// configured cluster file systems with journals or slots for the cluster
// and its lock table or cluster name. Beyond what storage.Init refuses
// (no --yes, a device mounted here, a signature without --force), it
// refuses while any other host publishes the file system ready: it is
// mounted there, and formatting it would destroy a live file system.
func (n *Node) InitStorage(ctx context.Context, req api.StorageInit) (api.StorageInitResult, error) {
	var fs *storage.Filesystem
	var names []string
	for i := range n.cfg.Storage.Filesystems {
		names = append(names, n.cfg.Storage.Filesystems[i].Name)
		if n.cfg.Storage.Filesystems[i].Name == req.FileSystem {
			fs = &n.cfg.Storage.Filesystems[i]
		}
	}
	if fs == nil {
		return api.StorageInitResult{}, &ValidationError{Field: "filesystem", Err: fmt.Errorf("%q is not in this host's storage.filesystems (configured: %v)", req.FileSystem, names)}
	}
	hosts := 0
	n.fsm.Read(func(s *model.State) {
		for _, h := range s.Config.Hosts {
			if !h.Witness {
				hosts++
			}
		}
	})
	journals := max(hosts, 1)
	if req.Journals != 0 {
		if req.Journals < hosts {
			return api.StorageInitResult{}, &ValidationError{Field: "journals", Err: fmt.Errorf("%d is fewer than the cluster's %d hosts: every host needs its own journal or slot", req.Journals, hosts)}
		}
		journals = req.Journals
	}
	ir := storage.InitRequest{FS: *fs, Cluster: n.cfg.ClusterName, Hosts: journals, Yes: req.Yes, Force: req.Force, MountsFile: n.cfg.Storage.MountsFile}
	name, args, err := storage.MkfsCommand(ir)
	if err != nil {
		return api.StorageInitResult{}, &ValidationError{Field: "filesystem", Err: err}
	}
	res := api.StorageInitResult{FileSystem: fs.Name, Device: fs.Device, Type: fs.Type, Journals: journals, Command: sharedfs.CommandLine(name, args)}
	if !req.Yes {
		return res, &ValidationError{Field: "yes", Err: fmt.Errorf("formatting %s destroys everything on it; pass --yes to confirm (it would run: %s)", fs.Device, res.Command)}
	}
	var mountedOn []string
	attr := storage.AttrPrefix + fs.Name
	for name, m := range n.members() {
		if name != n.cfg.NodeName && m.Tags[tagAttr+attr] == "ready" {
			mountedOn = append(mountedOn, name)
		}
	}
	if len(mountedOn) > 0 {
		sort.Strings(mountedOn)
		return api.StorageInitResult{}, &ConflictError{What: fmt.Sprintf("storage init %s: it is mounted and in use on %s; unmount it on every host first", fs.Name, strings.Join(mountedOn, ", "))}
	}
	if err := storage.Init(ctx, sharedfs.ExecRunner{}, ir); err != nil {
		return res, &ConflictError{What: err.Error()}
	}
	n.log.Warn().Str("filesystem", fs.Name).Str("device", fs.Device).Int("journals", journals).Str("command", res.Command).Msg("cluster file system formatted")
	return res, nil
}
