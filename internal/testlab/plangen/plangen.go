// Package plangen writes the cluster.yaml and status.yaml of issue 17's
// vmha plan figures at any size: every VM has a preferred host (score 100)
// and the ping rule, the strategy is balanced with stickiness 100, the
// first host is in standby and capacity is ample. The right plan migrates
// the standby host's VMs away and nothing else. It is the shape of
// placement's benchInput, written as files. With Options.Short capacity is
// short instead, as in benchInput's short variant.
package plangen

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
)

// Options change the generated cluster.
type Options struct {
	// Short makes capacity short: each host offers 70% of the memory its
	// share of the VMs would need on average (the VMs need 1,536 MiB on
	// average), so about a tenth of the VMs cannot run. The plan then
	// stops VMs (the ones of least priority) instead of migrating only
	// the standby host's.
	Short bool
}

// Files returns cluster.yaml and status.yaml for nh hosts and nv VMs.
// VM i runs on host i mod nh and prefers host (i+1) mod nh.
func Files(nh, nv int) (cluster, status []byte) { return FilesWith(nh, nv, Options{}) }

// FilesWith is Files with options.
func FilesWith(nh, nv int, o Options) (cluster, status []byte) {
	var c, s bytes.Buffer
	perHost := int64(nv/nh+2) * 2048
	if o.Short {
		perHost = int64(nv/nh) * 2048 * 7 / 10
	}
	c.WriteString("policy:\n  default-stickiness: 100\n  placement-strategy: balanced\n\nhosts:\n")
	for i := range nh {
		fmt.Fprintf(&c, "  - name: %s\n    capacity: {memory: %d, cpu: %d}\n    attributes: {pingd: \"100\", zone: \"%d\"}\n",
			Host(i), perHost, perHost/512, i%3)
		if i == 0 {
			c.WriteString("    standby: true\n")
		}
	}
	c.WriteString("\nvms:\n")
	for i := range nv {
		fmt.Fprintf(&c, "  - name: %s\n    domain: /etc/vmha/domains/%s.xml\n    hypervisor: kvm\n    utilization: {memory: %d, cpu: %d}\n    allow-migrate: true\n    priority: %d\n",
			VM(i), VM(i), 1024+1024*(i%2), 1+i%3, i%3)
	}
	c.WriteString("\nconstraints:\n  locations:\n")
	for i := range nv {
		fmt.Fprintf(&c, "    - {vm: %s, host: %s, score: 100}\n", VM(i), Host((i+1)%nh))
		fmt.Fprintf(&c, "    - {vm: %s, rule: {score: -INFINITY, boolean-op: or, expressions: [{attribute: pingd, operation: lte, value: \"0\", type: number}, {attribute: pingd, operation: not_defined}]}}\n", VM(i))
	}
	s.WriteString("now: 2026-12-01T00:00:00Z\nhosts:\n")
	for i := range nh {
		fmt.Fprintf(&s, "  %s: {state: up}\n", Host(i))
	}
	s.WriteString("vms:\n")
	for i := range nv {
		fmt.Fprintf(&s, "  %s: {host: %s}\n", VM(i), Host(i%nh))
	}
	return c.Bytes(), s.Bytes()
}

// Host is the name of host i.
func Host(i int) string { return fmt.Sprintf("host%04d", i) }

// VM is the name of VM i.
func VM(i int) string { return fmt.Sprintf("vm%05d", i) }

// Write writes cluster.yaml and status.yaml into dir and returns their paths.
func Write(dir string, nh, nv int) (cluster, status string, err error) {
	return WriteWith(dir, nh, nv, Options{})
}

// WriteWith is Write with options.
func WriteWith(dir string, nh, nv int, o Options) (cluster, status string, err error) {
	c, s := FilesWith(nh, nv, o)
	cluster, status = filepath.Join(dir, "cluster.yaml"), filepath.Join(dir, "status.yaml")
	if err := os.WriteFile(cluster, c, 0o644); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(status, s, 0o644); err != nil {
		return "", "", err
	}
	return cluster, status, nil
}
