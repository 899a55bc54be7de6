package model

import "fmt"

// CheckFits refuses a VM that no host of the cluster could ever hold: one
// that needs more memory or more vCPUs than any single host that runs VMs
// has in all (not free: what is free changes, what is installed does not
// until a bigger host joins). vm is the domain as ParseDomainXML read it
// (only Name, MemoryMiB and VCPUs count); hosts is Config.Hosts.
//
// Witness hosts run no VMs and do not count. A host that has not reported
// a capacity (zero) could be any size, so it is taken to hold the VM in
// that dimension; with no host that runs VMs there is nothing to measure
// against and the VM passes. The reason names the largest host and its
// numbers: by memory, by CPUs, or both when no host is large in both at
// once.
func CheckFits(vm DomainInfo, hosts map[string]*Host) error {
	var bigMem, bigCPU *Host // the largest by memory and by CPUs, ties to the first name
	for _, name := range SortedKeys(hosts) {
		h := hosts[name]
		if h == nil || h.Witness {
			continue
		}
		memOK := h.MemoryMiB == 0 || h.MemoryMiB >= vm.MemoryMiB
		cpuOK := h.CPUs == 0 || h.CPUs >= vm.VCPUs
		if memOK && cpuOK {
			return nil
		}
		if bigMem == nil || h.MemoryMiB > bigMem.MemoryMiB {
			bigMem = h
		}
		if bigCPU == nil || h.CPUs > bigCPU.CPUs {
			bigCPU = h
		}
	}
	if bigMem == nil {
		return nil
	}
	what := fmt.Sprintf("vm %s needs %d MiB and %d vCPUs", vm.Name, vm.MemoryMiB, vm.VCPUs)
	memTooBig := vm.MemoryMiB > bigMem.MemoryMiB
	cpuTooBig := vm.VCPUs > bigCPU.CPUs
	switch {
	case memTooBig && cpuTooBig && bigMem == bigCPU:
		return fmt.Errorf("%s, more than the largest host, %s, has (%d MiB, %d CPUs)", what, bigMem.Name, bigMem.MemoryMiB, bigMem.CPUs)
	case memTooBig && cpuTooBig:
		return fmt.Errorf("%s: the host with the most memory, %s, has %d MiB, and the host with the most CPUs, %s, has %d CPUs", what, bigMem.Name, bigMem.MemoryMiB, bigCPU.Name, bigCPU.CPUs)
	case memTooBig:
		return fmt.Errorf("%s, more memory than the largest host, %s, has (%d MiB)", what, bigMem.Name, bigMem.MemoryMiB)
	case cpuTooBig:
		return fmt.Errorf("%s, more vCPUs than the host with the most CPUs, %s, has (%d CPUs)", what, bigCPU.Name, bigCPU.CPUs)
	default:
		// Enough memory on one host, enough CPUs on another, both on none.
		return fmt.Errorf("%s: no host has both; the host with the most memory, %s, has %d MiB and %d CPUs, the host with the most CPUs, %s, has %d MiB and %d CPUs",
			what, bigMem.Name, bigMem.MemoryMiB, bigMem.CPUs, bigCPU.Name, bigCPU.MemoryMiB, bigCPU.CPUs)
	}
}
