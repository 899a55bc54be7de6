package cluster

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"time"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/cluster/command"
	"github.com/vmha/vmha/cluster/decide"
	"github.com/vmha/vmha/hypervisor"
	"github.com/vmha/vmha/internal/xmldiff"
	"github.com/vmha/vmha/model"
)

// VM definitions: add (also adopting a domain libvirt runs), show, update,
// diff against the running domain, remove (also leaving it running). Every
// write records the authenticated principal (Command.By) in the event log.

// normalization says how vmha vm diff compares (xmldiff.Normalize).
const normalization = "the host's XML keeps only the elements and attributes the replicated XML sets " +
	"(libvirt's uuid, id, default devices, addresses and aliases are left out); memory sizes in KiB; attributes sorted"

// gatewayError is a host that could not be asked (502).
type gatewayError struct{ err error }

func (e *gatewayError) Error() string { return e.err.Error() }
func (e *gatewayError) Unwrap() error { return e.err }

// writeVMErr is writeApplyErr that also knows an unreachable host.
func writeVMErr(w http.ResponseWriter, err error) {
	var ge *gatewayError
	if errors.As(err, &ge) {
		writeErr(w, http.StatusBadGateway, "", err)
		return
	}
	writeApplyErr(w, err)
}

func (n *Node) handleAddVM(w http.ResponseWriter, r *http.Request, body []byte) {
	var req api.AddVM
	if err := decode(body, &req); err != nil {
		writeErr(w, http.StatusBadRequest, "", err)
		return
	}
	vm := &model.VM{Name: req.Name, XML: req.XML, XMLPath: req.XMLPath, Prefer: req.Prefer}
	// Validate against the current state first so bad input never
	// reaches the log; apply validates again, deterministically.
	var err error
	n.fsm.Read(func(s *model.State) {
		err = ValidateVM(s, vm)
		if h := s.Config.Hosts[req.AdoptFrom]; err == nil && req.AdoptFrom != "" && (h == nil || h.Witness) {
			err = &ValidationError{Field: "adopt_from", Err: fmt.Errorf("%q is not a host of this cluster that runs VMs", req.AdoptFrom)}
		}
	})
	if err != nil {
		writeApplyErr(w, err)
		return
	}
	if err := n.fillAndCheck(vm); err != nil {
		writeApplyErr(w, err)
		return
	}
	c := &Command{Op: OpAddVM, VM: vm, By: actor(r, "")}
	if host := req.AdoptFrom; host != "" {
		// The domain must be there; it is placed there in the same log
		// entry that adds it, so that its agent adopts it (a VM of the
		// cluster placed nowhere would be stopped).
		d, err := n.domainXMLOn(r.Context(), host, vm.Name, false)
		if err != nil {
			writeVMErr(w, err)
			return
		}
		reason := "adopted where its domain runs (vmha vm add --from-libvirt)"
		if !model.DomainState(d.State).Active() {
			reason = fmt.Sprintf("adopted from %s, where its domain is %s: started there", host, d.State)
		}
		c = &Command{Op: command.OpAdoptVM, VM: vm, By: c.By, Placements: []model.Placement{{VM: vm.Name, Host: host, Reason: reason}}}
	}
	if err := n.propose(c); err != nil {
		writeApplyErr(w, err)
		return
	}
	n.coord.poke()
	writeJSON(w, http.StatusCreated, n.vmView(n.fsm.Copy(), vm.Name))
}

// canProtect is the coordinator's check, when there is one (not in the
// handler tests).
func (n *Node) canProtect(vm *model.VM) error {
	if n.coord == nil {
		return nil
	}
	return n.coord.canProtect(vm)
}

// handleRemoveVM removes a VM from the cluster. Its host's agent then stops
// and undefines the domain; with keep_running the leader first asks that
// host's agent to release the domain (Agent.releaseDomain), so that the
// domain stays running and defined there, an operator's own from then on.
func (n *Node) handleRemoveVM(w http.ResponseWriter, r *http.Request, body []byte) {
	var req api.RemoveVM
	if len(body) > 0 {
		if err := decode(body, &req); err != nil {
			writeErr(w, http.StatusBadRequest, "", err)
			return
		}
	}
	name := r.PathValue("name")
	var host string
	var err error
	n.fsm.Read(func(s *model.State) {
		if s.Config.VMs[name] == nil {
			err = &NotFoundError{Kind: "vm", Name: name}
			return
		}
		p := s.Status.Placements[name]
		switch {
		case p != nil && p.MigrateFrom != "":
			err = &ConflictError{What: fmt.Sprintf("vm %s is moving from %s to %s: remove it once the move has ended", name, p.MigrateFrom, p.Host)}
		case p != nil && p.Host != "":
			host = p.Host
		default:
			host = observedActiveOn(s, name)
		}
	})
	if err != nil {
		writeApplyErr(w, err)
		return
	}
	if req.KeepRunning && host != "" {
		if err := n.releaseOn(r.Context(), host, name, principalOf(r)); err != nil {
			writeVMErr(w, fmt.Errorf("vm %s not removed: %w", name, err))
			return
		}
	}
	if err := n.propose(&Command{Op: OpRemoveVM, Name: name, By: actor(r, req.RequestedBy)}); err != nil {
		writeApplyErr(w, err)
		return
	}
	n.log.Info().Str("vm", name).Bool("keep_running", req.KeepRunning).Str("host", host).Str("by", actor(r, req.RequestedBy)).Msg("vm removed")
	n.coord.poke()
	w.WriteHeader(http.StatusNoContent)
}

// observedActiveOn is a host whose agent reports vm active ("" none).
func observedActiveOn(s *model.State, vm string) string {
	for _, h := range model.SortedKeys(s.Status.Observed) {
		if o := s.Status.Observed[h].VMs[vm]; model.DomainState(o.State).Active() {
			return h
		}
	}
	return ""
}

// releaseOn has host's agent release domain name (see handleRemoveVM),
// with the operator's principal p.
func (n *Node) releaseOn(ctx context.Context, host, name string, p Principal) error {
	if host == n.cfg.NodeName {
		if n.agent == nil {
			return &ConflictError{What: fmt.Sprintf("no agent runs on %s to release domain %s", host, name)}
		}
		n.agent.releaseDomain(name)
		return nil
	}
	addr, err := n.hostAddr(host)
	if err != nil {
		return err
	}
	h := http.Header{}
	h.Set(api.HeaderForwarded, n.cfg.NodeName)
	setForwardedPrincipal(h, p)
	path := api.PathLocalDomains + "/" + url.PathEscape(name) + api.PathDomainReleaseSuffix
	if err := n.peers.do(ctx, addr, 10*time.Second, http.MethodPost, path, nil, nil, h); err != nil {
		return &gatewayError{fmt.Errorf("ask %s to release domain %s: %w", host, name, err)}
	}
	return nil
}

func (n *Node) hostAddr(host string) (string, error) {
	var addr string
	var known bool
	n.fsm.Read(func(s *model.State) {
		if h := s.Config.Hosts[host]; h != nil {
			known, addr = true, h.APIAddr
		}
	})
	switch {
	case !known:
		return "", &NotFoundError{Kind: "host", Name: host}
	case addr == "":
		return "", &ConflictError{What: fmt.Sprintf("host %s has no API address yet", host)}
	}
	return addr, nil
}

// handleReleaseDomain is the host's side of keep_running (an operator's
// request, forwarded by the leader).
func (n *Node) handleReleaseDomain(w http.ResponseWriter, r *http.Request) {
	if n.agent == nil {
		writeErr(w, http.StatusServiceUnavailable, "", fmt.Errorf("no agent runs on %s", n.cfg.NodeName))
		return
	}
	n.agent.releaseDomain(r.PathValue("domain"))
	w.WriteHeader(http.StatusNoContent)
}

func (n *Node) handleShowVM(w http.ResponseWriter, r *http.Request, _ []byte) {
	members := n.members()
	var v api.VMDefinition
	var ok bool
	n.fsm.Read(func(s *model.State) { v, ok = vmDefinition(s, r.PathValue("name"), members) })
	if !ok {
		writeApplyErr(w, &NotFoundError{Kind: "vm", Name: r.PathValue("name")})
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// vmDefinition is vmha vm show's view of a VM. PendingRestart is
// model.State.RunsPreviousDefinition: the replicated flag, read as cleared
// once the VM's host reports it inactive, or active since after the update
// (it started again, with the new XML).
func vmDefinition(s *model.State, name string, members decide.Members) (api.VMDefinition, bool) {
	vm := s.Config.VMs[name]
	if vm == nil {
		return api.VMDefinition{}, false
	}
	v := api.VMDefinition{
		Name: vm.Name, MemoryMiB: vm.MemoryMiB, VCPUs: vm.VCPUs, Disks: append([]string{}, vm.Disks...),
		Prefer: vm.Prefer, XMLPath: vm.XMLPath, XML: vm.XML, Observed: []api.VMObserved{},
		UpdatedBy: vm.UpdatedBy, PreviousXML: vm.PreviousXML,
	}
	view := vmView(s, name, members)
	v.State = view.State
	if p := s.Status.Placements[name]; p != nil {
		v.PlacedOn, v.MigratingFrom = p.Host, p.MigrateFrom
	}
	for _, h := range model.SortedKeys(s.Status.Observed) {
		if o, ok := s.Status.Observed[h].VMs[name]; ok {
			v.Observed = append(v.Observed, api.VMObserved{Host: h, State: o.State, Since: o.Since, Error: o.Error})
		}
	}
	if vm.UpdatedAt.IsZero() {
		return v, true
	}
	at := vm.UpdatedAt
	v.UpdatedAt = &at
	pending := s.RunsPreviousDefinition(name)
	v.PendingRestart, v.RestartRequested = pending, pending && vm.RestartRequested
	v.Notice = fmt.Sprintf("definition changed at %s by %s", at.Format(time.RFC3339), dashIfEmpty(vm.UpdatedBy))
	if pending {
		v.Notice += "; running with the previous definition until restarted"
		if vm.RestartRequested {
			v.Notice += " (a restart was requested: the agent of " + v.PlacedOn + " restarts it)"
		}
	}
	return v, true
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// handleUpdateVM replaces a VM's definition: validated as vmha vm add
// validates (ValidateVM, its name must stay), answered with the diff, and
// with dry_run not proposed. A VM placed on a host keeps running with its
// previous definition until its next start, or with restart is restarted
// cold on its host by its agent (agent_define.go).
func (n *Node) handleUpdateVM(w http.ResponseWriter, r *http.Request, body []byte) {
	var req api.UpdateVM
	if err := decode(body, &req); err != nil {
		writeErr(w, http.StatusBadRequest, "", err)
		return
	}
	name := r.PathValue("name")
	vm := &model.VM{Name: name, XML: req.XML, XMLPath: req.XMLPath}
	var old model.VM
	var p model.Placement
	var err error
	n.fsm.Read(func(s *model.State) {
		cur := s.Config.VMs[name]
		if cur == nil {
			err = &NotFoundError{Kind: "vm", Name: name}
			return
		}
		old, vm.Prefer = *cur, cur.Prefer
		if pl := s.Status.Placements[name]; pl != nil {
			p = *pl
		}
		// ValidateVM checks a VM that joins the cluster: check the new
		// definition against the cluster without its old one.
		others := *s
		others.Config.VMs = maps.Clone(s.Config.VMs)
		delete(others.Config.VMs, name)
		err = ValidateVM(&others, vm)
	})
	if err == nil && req.Restart && p.MigrateFrom != "" {
		err = &ConflictError{What: fmt.Sprintf("vm %s is moving from %s to %s: restart it once the move has ended", name, p.MigrateFrom, p.Host)}
	}
	if err != nil {
		writeApplyErr(w, err)
		return
	}
	vm.RestartRequested = req.Restart
	if err := n.fillAndCheck(vm); err != nil {
		writeApplyErr(w, err)
		return
	}
	res := api.VMUpdateResult{VM: name, DryRun: req.DryRun, Host: p.Host, Restart: req.Restart && p.Host != ""}
	res.Diff = xmldiff.Unified(name+" (replicated)", dashIfEmpty(req.XMLPath)+" (new)", old.XML, req.XML)
	res.Changed = res.Diff != ""
	res.PendingRestart = res.Changed && p.Host != ""
	switch {
	case !res.Changed:
		res.Restart, res.Message = false, "the new XML is the replicated one: nothing to change"
		writeJSON(w, http.StatusOK, res)
		return
	case req.DryRun:
		res.Message = "dry run: the new definition is valid; nothing changed"
		writeJSON(w, http.StatusOK, res)
		return
	}
	by := actor(r, req.RequestedBy)
	if err := n.propose(&Command{Op: command.OpUpdateVM, VM: vm, By: by}); err != nil {
		writeApplyErr(w, err)
		return
	}
	switch {
	case p.Host == "":
		res.Message = fmt.Sprintf("definition of %s replaced; it is placed on no host, and starts with the new definition", name)
	case req.Restart:
		res.Message = fmt.Sprintf("definition of %s replaced; the agent of %s restarts it cold with the new definition (shut down, then started again on %s)", name, p.Host, p.Host)
	default:
		res.Message = fmt.Sprintf("definition of %s replaced; it runs on %s with the previous definition until its next start (vmha vm update --restart restarts it now)", name, p.Host)
	}
	n.log.Info().Str("vm", name).Str("host", p.Host).Bool("restart", req.Restart).Str("by", by).Msg("vm definition replaced")
	n.coord.poke()
	writeJSON(w, http.StatusOK, res)
}

// handleVMDomainDiff compares the replicated XML with the running domain's
// XML on the VM's host, both normalised (xmldiff.Normalize).
func (n *Node) handleVMDomainDiff(w http.ResponseWriter, r *http.Request, _ []byte) {
	name := r.PathValue("name")
	var xml, host string
	var err error
	n.fsm.Read(func(s *model.State) {
		vm := s.Config.VMs[name]
		if vm == nil {
			err = &NotFoundError{Kind: "vm", Name: name}
			return
		}
		xml = vm.XML
		if p := s.Status.Placements[name]; p != nil && p.MigrateFrom != "" {
			host = p.MigrateFrom // it runs there until the move ends
		} else if p != nil {
			host = p.Host
		}
		if host == "" {
			host = observedActiveOn(s, name)
		}
	})
	if err == nil && host == "" {
		err = &ConflictError{What: fmt.Sprintf("vm %s is placed on no host: there is no domain to compare", name)}
	}
	if err != nil {
		writeApplyErr(w, err)
		return
	}
	d, err := n.domainXMLOn(r.Context(), host, name, false)
	if err != nil {
		writeVMErr(w, err)
		return
	}
	ref, running, err := xmldiff.Normalize(xml, d.XML)
	if err != nil {
		writeErr(w, http.StatusInternalServerError, "", err)
		return
	}
	out := api.DomainDiff{VM: name, Host: host, State: d.State, Normalization: normalization, Replicated: ref, Running: running}
	out.Diff = xmldiff.Unified(name+" (replicated)", name+" on "+host+" ("+d.State+", libvirt)", ref, running)
	out.Same = out.Diff == ""
	writeJSON(w, http.StatusOK, out)
}

// handleHostDomainXML answers one domain's XML on any host: this host's
// own, or another's by asking it.
func (n *Node) handleHostDomainXML(w http.ResponseWriter, r *http.Request) {
	d, err := n.domainXMLOn(r.Context(), r.PathValue("host"), r.PathValue("domain"), r.URL.Query().Get("inactive") == "1")
	if err != nil {
		writeVMErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (n *Node) handleLocalDomainXML(w http.ResponseWriter, r *http.Request) {
	d, err := n.localDomainXML(r.Context(), r.PathValue("domain"), r.URL.Query().Get("inactive") == "1")
	if err != nil {
		writeVMErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// domainXMLOn is domain's XML as host's hypervisor holds it.
func (n *Node) domainXMLOn(ctx context.Context, host, domain string, inactive bool) (api.DomainXML, error) {
	if host == n.cfg.NodeName {
		return n.localDomainXML(ctx, domain, inactive)
	}
	addr, err := n.hostAddr(host)
	if err != nil {
		return api.DomainXML{}, err
	}
	path := api.PathLocalDomains + "/" + url.PathEscape(domain) + api.PathDomainXMLSuffix
	if inactive {
		path += "?inactive=1"
	}
	var d api.DomainXML
	if err := n.peers.do(ctx, addr, 10*time.Second, http.MethodGet, path, nil, &d, nil); err != nil {
		var se *api.StatusError
		if errors.As(err, &se) && se.Code == http.StatusNotFound {
			return d, &NotFoundError{Kind: "domain", Name: domain + " on " + host}
		}
		return d, &gatewayError{fmt.Errorf("ask %s for domain %s: %w", host, domain, err)}
	}
	return d, nil
}

// localDomainXML is domain's XML from this host's hypervisor.
func (n *Node) localDomainXML(ctx context.Context, domain string, inactive bool) (api.DomainXML, error) {
	me := n.cfg.NodeName
	if n.hv == nil {
		return api.DomainXML{}, &ConflictError{What: fmt.Sprintf("%s runs no hypervisor (a witness)", me)}
	}
	xr, ok := n.hv.(hypervisor.XMLReader)
	if !ok {
		return api.DomainXML{}, &ConflictError{What: fmt.Sprintf("the hypervisor of %s cannot give domain XML", me)}
	}
	x, err := xr.DomainXML(ctx, domain, inactive)
	if errors.Is(err, hypervisor.ErrNotFound) {
		return api.DomainXML{}, &NotFoundError{Kind: "domain", Name: domain + " on " + me}
	}
	if err != nil {
		return api.DomainXML{}, fmt.Errorf("hypervisor: %w", err)
	}
	d := api.DomainXML{Host: me, Domain: domain, Inactive: inactive, XML: x, State: string(hypervisor.StateUnknown)}
	if ds, err := n.hv.List(ctx); err == nil {
		for _, dom := range ds {
			if dom.Name == domain {
				d.State = string(dom.State)
			}
		}
	}
	return d, nil
}

// fillAndCheck takes vm's memory, vCPUs and disks from its (validated)
// XML, and checks that its disks are on shared storage the cluster can
// protect: the same for vm add and vm update.
func (n *Node) fillAndCheck(vm *model.VM) error {
	info, _ := model.ParseDomainXML([]byte(vm.XML))
	vm.MemoryMiB, vm.VCPUs, vm.Disks = info.MemoryMiB, info.VCPUs, info.Disks
	if err := n.checkDisks(vm); err != nil {
		return err
	}
	return n.canProtect(vm)
}
