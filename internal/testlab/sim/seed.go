package sim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/vmha/vmha/cluster"
	"github.com/vmha/vmha/cluster/decide"
	"github.com/vmha/vmha/fencing/devices"
	"github.com/vmha/vmha/fencing/spec"
	"github.com/vmha/vmha/model"
	"github.com/vmha/vmha/placement"
)

// seedTerm and the seed's log index are those of the snapshot the voters
// start from.
const seedTerm = 1

// vmXML is a VM's domain definition: a name, a size and one disk on shared
// storage (the kind of disk that makes running twice a data-loss bug).
func vmXML(name string, memMiB uint64) string {
	return fmt.Sprintf(`<domain type='kvm'><name>%s</name><memory unit='MiB'>%d</memory><vcpu>1</vcpu><os><type>hvm</type></os>`+
		`<devices><disk type='file' device='disk'><source file='/shared/vms/%s.qcow2'/><target dev='vda'/></disk></devices></domain>`, name, memMiB, name)
}

// fenceTopology is a simulated host's fence topology as an operator sets
// it (vmha fence devices set; device names get "@host" as vmhad's do): one
// level, one device of type agent that runs the simulation's fence script.
// The script is no agent of the allow-list and takes an option of its own
// (simdir), so the device carries allow_unsafe, which only an operator's
// command may put in the state (docs/fencing.md).
func (c *Cluster) fenceTopology(host string) (*model.FenceTopology, error) {
	d := spec.Device{Name: "sim", Type: spec.TypeAgent, Timeout: 10 * time.Second, AllowUnsafe: true,
		Params: map[string]string{"agent": c.script, "plug": host, "simdir": c.fenceDir}}
	sp := spec.Spec{Devices: []spec.Device{d}, Hosts: []spec.Host{{Name: host, Levels: [][]string{{"sim"}}}}}
	// Build opens the device as the leader will: a bad script path or
	// option fails here, not during the fence.
	set, err := devices.Build(sp)
	if err != nil {
		return nil, err
	}
	_ = set.Close()
	return &model.FenceTopology{
		Devices: []model.FenceDevice{{Name: "sim@" + host, Type: d.Type, Params: d.Params, Timeout: d.Timeout, AllowUnsafe: true}},
		Levels:  [][]string{{"sim@" + host}},
	}, nil
}

// registration is what a simulated host sends to POST /v1/peer/register:
// no fence devices (the operator's, set in the seed, stay).
func (c *Cluster) registration(h *Host) *model.Host {
	return &model.Host{Name: h.Name, APIAddr: c.sinkAddr, MemoryMiB: c.opts.HostMemoryMiB, CPUs: c.opts.HostCPUs}
}

// seedState builds the cluster's starting state with the real state
// machine: every host registered, every VM added (with the size the API
// parses from its XML), and one placement pass of the real engine over
// them, as the coordinator would make it with every host alive. Only the
// transport is skipped (see docs/scale.md: adding 50,000 VMs one POST at a
// time costs a full state copy each). It returns the FSM and the index of
// its last entry.
func (c *Cluster) seedState() (*cluster.FSM, uint64, error) {
	f := cluster.NewFSM()
	var idx uint64
	apply := func(cmd *cluster.Command) error {
		idx++
		cmd.At, cmd.Term = time.Now().UTC(), seedTerm
		b, err := json.Marshal(cmd)
		if err != nil {
			return err
		}
		if r := f.Apply(&raft.Log{Index: idx, Term: seedTerm, Type: raft.LogCommand, Data: b}); r != nil {
			if err, ok := r.(error); ok && err != nil {
				return fmt.Errorf("seed %s: %w", cmd.Op, err)
			}
		}
		return nil
	}
	members := decide.Members{}
	for _, h := range c.hosts {
		topo, err := c.fenceTopology(h.Name)
		if err != nil {
			return nil, 0, err
		}
		if err := apply(&cluster.Command{Op: cluster.OpRegisterHost, Host: c.registration(h)}); err != nil {
			return nil, 0, err
		}
		if err := apply(&cluster.Command{Op: cluster.OpSetFenceDevices, Name: h.Name, Fencing: topo,
			Fence: &model.FenceRecord{Action: model.FenceDevicesSet, Requester: "sim seed"}}); err != nil {
			return nil, 0, err
		}
		members[h.Name] = decide.Member{Name: h.Name, Status: decide.MemberAlive}
	}
	// The replica follows the log as a raft non-voter; only a registered
	// host may (the log holds every BMC password), so it is registered as a
	// witness: a member that runs no VM.
	if err := apply(&cluster.Command{Op: cluster.OpRegisterHost, Host: &model.Host{Name: "sim-replica", APIAddr: c.sinkAddr, Witness: true}}); err != nil {
		return nil, 0, err
	}
	for i := 1; i <= c.opts.VMs; i++ {
		name := fmt.Sprintf("vm%05d", i)
		vm := &model.VM{Name: name, XML: vmXML(name, c.opts.VMMemoryMiB)}
		info, err := model.ParseDomainXML([]byte(vm.XML))
		if err != nil {
			return nil, 0, err
		}
		vm.MemoryMiB, vm.VCPUs, vm.Disks = info.MemoryMiB, info.VCPUs, info.Disks
		if err := apply(&cluster.Command{Op: cluster.OpAddVM, VM: vm}); err != nil {
			return nil, 0, err
		}
	}
	// The leader builds this input from the same state (decide.EngineInput)
	// and explains only the VMs it places; the seed asks the same engine
	// for the placement alone.
	in, err := decide.EngineInput(&decide.View{State: f.Copy(), Members: members})
	if err != nil {
		return nil, 0, fmt.Errorf("seed placement: %w", err)
	}
	res, err := placement.Solve(in, placement.Options{})
	if err != nil {
		return nil, 0, fmt.Errorf("seed placement: %w", err)
	}
	var ps []model.Placement
	for _, vm := range in.VMs {
		ps = append(ps, model.Placement{VM: vm.Name, Host: res.Placement[vm.Name], Reason: "placed by the simulation's seed (placement.Solve, balanced)"})
	}
	if err := apply(&cluster.Command{Op: cluster.OpPlace, Placements: ps}); err != nil {
		return nil, 0, err
	}
	unplaced := 0
	f.Read(func(s *model.State) {
		for _, p := range s.Status.Placements {
			if p.Host == "" {
				unplaced++
			}
		}
	})
	if unplaced > 0 {
		return nil, 0, fmt.Errorf("seed: %d VMs found no host (capacity?)", unplaced)
	}
	return f, idx, nil
}

// writeSeed stores the seed as a raft snapshot in each voter's data
// directory, with the voters as the configuration: the voters start as a
// cluster restarting from disk would.
func (c *Cluster) writeSeed(f *cluster.FSM, index uint64) error {
	snap, err := f.Snapshot()
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := snap.Persist(&bufSink{Buffer: &buf}); err != nil {
		return err
	}
	var conf raft.Configuration
	for _, v := range c.voters {
		conf.Servers = append(conf.Servers, raft.Server{ID: raft.ServerID(v.name), Address: raft.ServerAddress(v.raftAddr), Suffrage: raft.Voter})
	}
	_, trans := raft.NewInmemTransport("")
	defer func() { _ = trans.Close() }()
	for _, v := range c.voters {
		dir := filepath.Join(v.dir, "data")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		// A member's raft.db beside its snapshot (vmhad refuses a
		// snapshot without one: a lost log), holding the seed's term.
		db, err := raftboltdb.NewBoltStore(filepath.Join(dir, "raft.db"))
		if err != nil {
			return err
		}
		err = db.SetUint64([]byte("CurrentTerm"), seedTerm)
		if cerr := db.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		store, err := raft.NewFileSnapshotStore(dir, 2, io.Discard)
		if err != nil {
			return err
		}
		sink, err := store.Create(raft.SnapshotVersionMax, index, seedTerm, conf, 1, trans)
		if err != nil {
			return err
		}
		if _, err := sink.Write(buf.Bytes()); err != nil {
			_ = sink.Cancel()
			return err
		}
		if err := sink.Close(); err != nil {
			return err
		}
	}
	c.seedBytes = buf.Len()
	return nil
}

// bufSink collects a snapshot in memory.
type bufSink struct{ *bytes.Buffer }

func (b *bufSink) ID() string    { return "seed" }
func (b *bufSink) Cancel() error { return nil }
func (b *bufSink) Close() error  { return nil }
