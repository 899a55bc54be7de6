package pacemaker

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
)

// UnsafeSettings lists the settings of a CIB that would leave a cluster
// unsafe, each with what vmha does instead: vmha import pacemaker prints
// them. They do not change a placement (ReadCIB's warnings do), so the
// plan does not repeat them.
func UnsafeSettings(data []byte) ([]string, error) {
	var c xCIB
	if fastCIB(data, &c) != nil {
		c = xCIB{}
		if err := xml.NewDecoder(bytes.NewReader(data)).Decode(&c); err != nil {
			return nil, fmt.Errorf("CIB does not parse: %w", err)
		}
	}
	sets := c.Config.CRM.Sets
	crm := setsMap(sets)
	var w []string
	if v, ok := crm["stonith-enabled"]; ok && isFalse(v) {
		w = append(w, fmt.Sprintf("crm_config %s=%s: fencing is off, so a lost node's resources may run twice; vmha always fences a lost host (its BMC or fence devices) before it restarts the host's VMs elsewhere, and fencing cannot be turned off", nvID(sets, "stonith-enabled"), v))
	}
	if v := crm["no-quorum-policy"]; strings.EqualFold(v, "ignore") {
		w = append(w, fmt.Sprintf("crm_config %s=%s: a partition without quorum would keep starting resources; vmha never acts without quorum (a raft majority, or quorum.two_node with a confirmed fence of the other host)", nvID(sets, "no-quorum-policy"), v))
	}
	return w, nil
}

// CorosyncQuorum is the quorum section of a corosync.conf and the size of
// its nodelist.
type CorosyncQuorum struct {
	Provider      string
	ExpectedVotes int
	TwoNode       bool
	WaitForAll    bool
	Nodes         int
}

// MaxCorosync bounds the corosync.conf we read.
const MaxCorosync = 1 << 20

// ParseCorosync reads the quorum section and counts the nodes of a
// corosync.conf: sections are "name {" ... "}", options "key: value",
// comments start with #.
func ParseCorosync(data []byte) (CorosyncQuorum, error) {
	var q CorosyncQuorum
	if len(data) > MaxCorosync {
		return q, fmt.Errorf("corosync.conf is %d bytes, more than the %d allowed", len(data), MaxCorosync)
	}
	var stack []string
	for n, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		switch {
		case line == "":
		case strings.HasSuffix(line, "{"):
			name := strings.TrimSpace(strings.TrimSuffix(line, "{"))
			if name == "" || strings.ContainsAny(name, "{}:") {
				return q, fmt.Errorf("corosync.conf line %d: a section wants a name", n+1)
			}
			stack = append(stack, name)
			if name == "node" && len(stack) == 2 && stack[0] == "nodelist" {
				q.Nodes++
			}
		case line == "}":
			if len(stack) == 0 {
				return q, fmt.Errorf("corosync.conf line %d: } closes no section", n+1)
			}
			stack = stack[:len(stack)-1]
		default:
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				return q, fmt.Errorf("corosync.conf line %d: want key: value", n+1)
			}
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			if len(stack) != 1 || stack[0] != "quorum" {
				continue
			}
			switch k {
			case "provider":
				q.Provider = v
			case "expected_votes":
				x, err := strconv.Atoi(v)
				if err != nil || x < 0 {
					return q, fmt.Errorf("corosync.conf line %d: expected_votes %q is not a count", n+1, v)
				}
				q.ExpectedVotes = x
			case "two_node":
				q.TwoNode = v == "1"
			case "wait_for_all":
				q.WaitForAll = v == "1"
			}
		}
	}
	if len(stack) > 0 {
		return q, fmt.Errorf("corosync.conf: section %s is not closed", stack[len(stack)-1])
	}
	return q, nil
}

// Unsafe lists the quorum settings that cannot hold, each with what vmha
// does instead.
func (q CorosyncQuorum) Unsafe() []string {
	var w []string
	votes := q.ExpectedVotes
	if votes == 0 {
		votes = q.Nodes
	}
	if q.Provider != "" && q.Provider != "corosync_votequorum" {
		w = append(w, fmt.Sprintf("corosync quorum provider %s: not corosync_votequorum; vmha uses its own raft majority", q.Provider))
	}
	if q.Provider == "" {
		w = append(w, "corosync.conf has no quorum provider: the cluster has no quorum at all; vmha always requires a raft majority (or quorum.two_node with fencing)")
	}
	if votes == 2 && !q.TwoNode {
		w = append(w, "corosync quorum expected_votes 2 without two_node: 1: the loss of either node leaves the other without quorum, so nothing is recovered; vmha's quorum.two_node: true (with fence devices on both hosts) lets the survivor fence the other and take over, or add a witness host")
	}
	if q.TwoNode && votes != 2 {
		w = append(w, fmt.Sprintf("corosync quorum two_node: 1 with %d votes: two_node holds only for exactly two nodes; vmha refuses quorum.two_node unless bootstrap_expect is 2", votes))
	}
	if q.ExpectedVotes > 0 && q.Nodes > 0 && q.ExpectedVotes != q.Nodes {
		w = append(w, fmt.Sprintf("corosync quorum expected_votes %d but the nodelist has %d nodes: quorum is computed from a size the cluster does not have; vmha counts its raft voters", q.ExpectedVotes, q.Nodes))
	}
	return w
}
