package api

import "time"

// VM definitions (vmha vm show, update, diff, add --from-libvirt, remove
// --keep-running). Paths under PathVMs+"/{name}":
//
//	GET    /v1/vms/{name}          VMDefinition (vmha vm show)
//	POST   /v1/vms/{name}/update   UpdateVM → VMUpdateResult
//	GET    /v1/vms/{name}/domain   DomainDiff: the replicated XML against
//	                               the running domain's (vmha vm diff)
//	DELETE /v1/vms/{name}          RemoveVM (optional body)
//
// and, for one domain's XML on one host (host or operator role):
//
//	GET /v1/hosts/{host}/domains/{domain}/xml  DomainXML, forwarded to host
//	GET /v1/local/domains/{domain}/xml         DomainXML, this host's own
const (
	// PathVMUpdateSuffix follows PathVMs+"/{name}".
	PathVMUpdateSuffix = "/update"
	// PathVMDomainSuffix follows PathVMs+"/{name}".
	PathVMDomainSuffix = "/domain"
	// PathDomainXMLSuffix follows PathLocalDomains+"/{domain}" or
	// PathHostAction+"/{host}/domains/{domain}"; ?inactive=1 asks for the
	// persistent definition rather than the running one.
	PathDomainXMLSuffix = "/xml"
	// PathDomainReleaseSuffix follows PathLocalDomains+"/{domain}": the
	// host's agent stops treating the domain as one it manages, so that
	// removing its VM from the cluster leaves it running and defined
	// (vmha vm remove --keep-running; the leader calls it, with the
	// operator's principal, on the host that runs the VM).
	PathDomainReleaseSuffix = "/release"
)

// VMDefinition is one VM's replicated definition and where it runs: the
// answer of vmha vm show (-o json prints it as is; docs/json.md).
type VMDefinition struct {
	Name      string   `json:"name"`
	MemoryMiB uint64   `json:"memory_mib"`
	VCPUs     uint     `json:"vcpus"`
	Disks     []string `json:"disks"`
	Prefer    string   `json:"prefer,omitempty"`
	XMLPath   string   `json:"xml_path,omitempty"`
	// XML is the domain XML exactly as replicated.
	XML string `json:"xml"`
	// PlacedOn is the host the cluster placed it on ("" nowhere);
	// MigratingFrom is the source of a move under way.
	PlacedOn      string `json:"placed_on"`
	MigratingFrom string `json:"migrating_from,omitempty"`
	// State is as vmha status shows it.
	State string `json:"state"`
	// Observed is what each host's agent last reported about it.
	Observed []VMObserved `json:"observed"`
	// UpdatedAt and UpdatedBy: its definition's last replacement (vmha
	// vm update), absent when never replaced.
	UpdatedAt *time.Time `json:"updated_at,omitempty"`
	UpdatedBy string     `json:"updated_by,omitempty"`
	// PendingRestart: it runs with the previous definition until it next
	// starts; RestartRequested: the update asked for that restart.
	PendingRestart   bool `json:"pending_restart"`
	RestartRequested bool `json:"restart_requested,omitempty"`
	// PreviousXML is the definition the last update replaced.
	PreviousXML string `json:"previous_xml,omitempty"`
	// Notice says the above in words ("" when there is nothing to say).
	Notice string `json:"notice,omitempty"`
}

// VMObserved is one host's latest report about a VM.
type VMObserved struct {
	Host  string    `json:"host"`
	State string    `json:"state"`
	Since time.Time `json:"since,omitzero"`
	Error string    `json:"error,omitempty"`
}

// UpdateVM replaces a VM's definition (vmha vm update).
type UpdateVM struct {
	XML     string `json:"xml"`
	XMLPath string `json:"xml_path,omitempty"`
	// Restart has the VM restarted cold on its host with the new
	// definition; without it the running domain keeps its definition
	// until its next start.
	Restart bool `json:"restart,omitempty"`
	// DryRun validates and answers the diff; nothing changes.
	DryRun      bool   `json:"dry_run,omitempty"`
	RequestedBy string `json:"requested_by,omitempty"`
}

// VMUpdateResult is the answer to UpdateVM.
type VMUpdateResult struct {
	VM string `json:"vm"`
	// Changed: the new XML differs from the replicated one (with DryRun:
	// would differ). An equal XML changes nothing.
	Changed bool `json:"changed"`
	DryRun  bool `json:"dry_run,omitempty"`
	// Diff is the unified line diff from the replicated XML to the new.
	Diff string `json:"diff,omitempty"`
	// Host is where the VM is placed ("" nowhere); PendingRestart: it
	// runs there with the previous definition until it next starts
	// (Restart: the agent restarts it now).
	Host           string `json:"host,omitempty"`
	PendingRestart bool   `json:"pending_restart"`
	Restart        bool   `json:"restart,omitempty"`
	Message        string `json:"message"`
}

// RemoveVM is the optional body of DELETE /v1/vms/{name}.
type RemoveVM struct {
	// KeepRunning leaves the domain running and defined on its host: the
	// host's agent releases it before the VM leaves the cluster.
	KeepRunning bool   `json:"keep_running,omitempty"`
	RequestedBy string `json:"requested_by,omitempty"`
}

// DomainXML is one domain's XML as a host's hypervisor holds it.
type DomainXML struct {
	Host   string `json:"host"`
	Domain string `json:"domain"`
	State  string `json:"state"`
	// Inactive: XML is the persistent definition, not the running one.
	Inactive bool   `json:"inactive,omitempty"`
	XML      string `json:"xml"`
}

// DomainDiff compares a VM's replicated XML with its domain on the host
// it is placed on (vmha vm diff), both normalised (see Normalization).
type DomainDiff struct {
	VM    string `json:"vm"`
	Host  string `json:"host"`
	State string `json:"state"`
	// Same: no difference in the fields the replicated XML sets.
	Same bool `json:"same"`
	// Diff is the unified diff from the replicated XML to the host's.
	Diff string `json:"diff,omitempty"`
	// Normalization says how both were normalised before the diff.
	Normalization string `json:"normalization"`
	// Replicated and Running are the normalised texts.
	Replicated string `json:"replicated"`
	Running    string `json:"running"`
}
