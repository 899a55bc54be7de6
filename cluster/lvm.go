package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/cluster/decide"
	"github.com/vmha/vmha/clvm"
	"github.com/vmha/vmha/migration"
	"github.com/vmha/vmha/model"
	"github.com/vmha/vmha/sharedfs"
	"github.com/vmha/vmha/storage"
	"github.com/vmha/vmha/storage/hooks"
)

// Logical volumes of shared volume groups follow their VM: exclusive on
// the host that starts it, shared on both ends during a live migration
// (storage/hooks), deactivated where it stopped. lvmlockd's locks are the
// guard; asking every other host first (clvm.Manager.Start) turns a lock
// conflict into an error that names the VM, the LV and the host.

// peerLVM runs clvm's commands: on this host directly, on another host
// through that host's agent (POST /v1/peer/lvm, mutual TLS when on).
type peerLVM struct {
	n *Node
	// local runs this host's commands (sharedfs.ExecRunner by default; a
	// recording runner in tests).
	local sharedfs.Runner
}

func (p peerLVM) Run(ctx context.Context, host, name string, args ...string) ([]byte, error) {
	if host == p.n.cfg.NodeName {
		return clvm.LocalRunner{Host: host, Exec: p.local}.Run(ctx, host, name, args...)
	}
	var addr string
	p.n.fsm.Read(func(s *model.State) {
		if h := s.Config.Hosts[host]; h != nil {
			addr = h.APIAddr
		}
	})
	if addr == "" {
		return nil, fmt.Errorf("%s on %s: unknown host or no API address", sharedfs.CommandLine(name, args), host)
	}
	var out api.LVMOutput
	if err := p.n.peers.do(ctx, addr, 30*time.Second, http.MethodPost, api.PathPeerLVM, api.PeerLVM{Name: name, Args: args}, &out, nil); err != nil {
		return nil, fmt.Errorf("%s on %s: %w", sharedfs.CommandLine(name, args), host, err)
	}
	return []byte(out.Output), nil
}

// handlePeerLVM runs a peer's LVM command here, only the ones clvm sends.
func (n *Node) handlePeerLVM(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r, 64<<10)
	if err != nil {
		writeBodyErr(w, err)
		return
	}
	var req api.PeerLVM
	if err := decode(body, &req); err != nil {
		writeErr(w, http.StatusBadRequest, "", err)
		return
	}
	if len(n.cfg.Storage.VolumeGroups) == 0 {
		writeErr(w, http.StatusConflict, "", errors.New("this host has no shared volume groups configured"))
		return
	}
	if err := clvm.CheckPeerCommand(req.Name, req.Args); err != nil {
		n.log.Warn().Err(err).Str("from", r.RemoteAddr).Msg("peer LVM command refused")
		writeErr(w, http.StatusBadRequest, "", err)
		return
	}
	out, err := n.lvmRunner().local.Run(r.Context(), req.Name, req.Args...)
	if err != nil {
		writeErr(w, http.StatusBadGateway, "", err)
		return
	}
	writeJSON(w, http.StatusOK, api.LVMOutput{Output: string(out)})
}

func (n *Node) lvmRunner() peerLVM {
	if n.lvmExec == nil {
		return peerLVM{n: n, local: sharedfs.ExecRunner{}}
	}
	return peerLVM{n: n, local: n.lvmExec}
}

// lvmManager is a clvm.Manager over every host that runs VMs.
func (n *Node) lvmManager(st *model.State) *clvm.Manager {
	m := &clvm.Manager{Run: n.lvmRunner()}
	for _, h := range model.SortedKeys(st.Config.Hosts) {
		if !st.Config.Hosts[h].Witness {
			m.Hosts = append(m.Hosts, h)
		}
	}
	return m
}

// vmLVs are the VM's logical volumes on shared volume groups ("VG/LV").
func (n *Node) vmLVs(vm *model.VM) ([]string, error) {
	if len(n.cfg.Storage.VolumeGroups) == 0 || len(vm.Disks) == 0 {
		return nil, nil
	}
	rs, err := n.cfg.Storage.MapDisks(vm.Name, vm.Disks)
	if err != nil {
		return nil, err
	}
	return storage.LVs(rs), nil
}

// downHosts are the hosts Start need not ask: fenced ones, and ones gossip
// does not see alive (they cannot answer; lvmlockd still refuses an LV
// that such a host holds locked).
func downHosts(st *model.State, members decide.Members) []string {
	var out []string
	for _, h := range model.SortedKeys(st.Config.Hosts) {
		hs := st.Status.Hosts[h]
		m, ok := members[h]
		if (hs != nil && hs.State == model.HostFenced) || !ok || m.Status != decide.MemberAlive {
			out = append(out, h)
		}
	}
	return out
}

// activateLVs activates vm's LVs exclusively here before it starts; an LV
// active on another host refuses the start.
func (a *Agent) activateLVs(ctx context.Context, vm *model.VM) error {
	lvs, err := a.n.vmLVs(vm)
	if err != nil || len(lvs) == 0 {
		return err
	}
	st := a.n.fsm.HostSlice(a.n.cfg.NodeName, nil) // the hosts and their states
	if err := a.n.lvmManager(st).Start(ctx, vm.Name, a.n.cfg.NodeName, lvs, clvm.StartOptions{Down: downHosts(st, a.n.members())}); err != nil {
		return err
	}
	a.log.Info().Str("vm", vm.Name).Strs("lvs", lvs).Msg("logical volumes active exclusively here")
	return nil
}

// deactivateLVs releases vm's LVs here after it stopped, so that another
// host can take them.
func (a *Agent) deactivateLVs(ctx context.Context, vm *model.VM) {
	lvs, err := a.n.vmLVs(vm)
	if err != nil || len(lvs) == 0 {
		if err != nil {
			a.log.Warn().Err(err).Str("vm", vm.Name).Msg("logical volumes of a stopped VM")
		}
		return
	}
	st := a.n.fsm.HostSlice(a.n.cfg.NodeName, nil) // the hosts
	if err := a.n.lvmManager(st).Stop(ctx, vm.Name, a.n.cfg.NodeName, lvs); err != nil {
		a.setErr(vm.Name, err)
		a.log.Error().Err(err).Str("vm", vm.Name).Msg("deactivate logical volumes")
		return
	}
	a.log.Info().Str("vm", vm.Name).Strs("lvs", lvs).Msg("logical volumes deactivated here")
}

// migrationHooks prepares a VM's storage around a live migration: its LVs
// shared on both ends during the move, and the target's cluster file
// systems ready (as the target publishes them) before it starts.
func (a *Agent) migrationHooks(st *model.State) migration.Hooks {
	if !a.n.storageOn() {
		return migration.NoHooks{}
	}
	cfg := a.n.cfg.Storage.Config
	return &hooks.Hooks{
		LVM: a.n.lvmManager(st),
		LVs: func(_ context.Context, vm string) ([]string, error) {
			v := st.Config.VMs[vm]
			if v == nil {
				return nil, &NotFoundError{Kind: "vm", Name: vm}
			}
			return a.n.vmLVs(v)
		},
		TargetReady: func(_ context.Context, vm, host string) error {
			v := st.Config.VMs[vm]
			if v == nil || len(v.Disks) == 0 || len(cfg.Filesystems) == 0 {
				return nil
			}
			rs, err := cfg.MapDisks(vm, v.Disks)
			if err != nil {
				return err
			}
			m := a.n.members()[host]
			for _, fs := range storage.Filesystems(rs) {
				if got := m.Tags[tagAttr+storage.AttrPrefix+fs]; got != "ready" {
					return fmt.Errorf("%s publishes %s as %q, not ready", host, fs, got)
				}
			}
			return nil
		},
	}
}
