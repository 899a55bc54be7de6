package labcluster

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
)

// partitionSeq tells apart the iptables chains of clusters in one process.
var partitionSeq atomic.Int64

// Partition cuts the cluster into groups of hosts that cannot reach each
// other's gossip, raft and API ports (the BMCs stay reachable, as on a
// separate management network). Hosts must run as users of their own
// (Options.Users). Every packet a host's vmhad sends to a host of another
// group is dropped on loopback by an iptables owner match, in a chain of
// this cluster's own. Heal removes the cut; Close removes the chain.
func (c *Cluster) Partition(groups ...[]string) error {
	if err := c.Heal(); err != nil {
		return err
	}
	group := map[string]int{}
	for i, g := range groups {
		for _, name := range g {
			if c.Host(name) == nil {
				return fmt.Errorf("partition: unknown host %q", name)
			}
			group[name] = i + 1
		}
	}
	for _, a := range c.Hosts {
		if a.UID == 0 {
			return errors.New("partition: hosts must run as users of their own (Options.Users)")
		}
		for _, b := range c.Hosts {
			if a == b || group[a.Name] == group[b.Name] {
				continue
			}
			for _, proto := range []string{"tcp", "udp"} {
				for _, p := range b.ports {
					if err := iptables("-A", c.chain, "-o", "lo", "-m", "owner", "--uid-owner", strconv.Itoa(a.UID),
						"-p", proto, "--dport", strconv.Itoa(p), "-j", "DROP"); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// Heal lets every host reach every other again.
func (c *Cluster) Heal() error {
	if c.chain == "" {
		c.chain = fmt.Sprintf("VMHA-%d-%d", os.Getpid()%100000, partitionSeq.Add(1))
		if err := iptables("-N", c.chain); err != nil {
			return err
		}
		if err := iptables("-I", "OUTPUT", "-j", c.chain); err != nil {
			return err
		}
		return nil
	}
	return iptables("-F", c.chain)
}

// removePartition deletes the cluster's chain, if it made one.
func (c *Cluster) removePartition() {
	if c.chain == "" {
		return
	}
	_ = iptables("-D", "OUTPUT", "-j", c.chain)
	_ = iptables("-F", c.chain)
	_ = iptables("-X", c.chain)
	c.chain = ""
}

// PartitionAvailable says why Partition cannot work here, or nil.
func PartitionAvailable() error {
	if os.Geteuid() != 0 {
		return errors.New("partitions need root (iptables and per-host users)")
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		return errors.New("iptables not found")
	}
	if err := iptables("-L", "OUTPUT", "-n"); err != nil {
		return err
	}
	return nil
}

func iptables(args ...string) error {
	out, err := exec.Command("iptables", append([]string{"-w"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("iptables %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
