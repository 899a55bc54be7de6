package cluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/cluster/decide"
	"github.com/vmha/vmha/fencing"
	"github.com/vmha/vmha/hypervisor"
	"github.com/vmha/vmha/model"
)

// maxBody bounds request bodies: a domain XML is the largest thing sent.
const maxBody = model.MaxDomainXML + 64<<10

// Handler returns the HTTP API. The unix socket (local: true) serves every
// path; the peer port serves what peers and forwarded requests need, but not
// the calls that act on this host alone from the operator's seat (the gossip
// keyring, formatting storage), which only the socket's owner may make.
// Every route names the roles it admits (authenticate finds the principal
// first): reads admit every role, changes only operators, peer calls only
// hosts, each speaking for itself.
func (n *Node) Handler(local bool) http.Handler {
	mux := http.NewServeMux()
	read := []Role{RoleReadOnly, RoleHost, RoleOperator}
	op := []Role{RoleOperator}
	peer := []Role{RoleHost}
	// Domain XML may say more than the state does: hosts and operators.
	hostOrOp := []Role{RoleHost, RoleOperator}
	// Every route gets its roles (allow), its budget (routeBudget) and, on
	// the peer port, the peer writes a rate limit per peer.
	add := func(pattern string, h http.HandlerFunc, roles []Role) {
		var hh http.Handler = allow(h, roles...)
		if !local && peerWrites[pattern] {
			hh = n.limitPeerWrites(hh)
		}
		mux.Handle(pattern, budgeted(n.routeBudget(pattern), hh))
	}
	if local {
		add("GET "+api.PathGossipKeys, n.handleGossipKeys, op)
		add("POST "+api.PathGossipKeys, n.handleGossipKeyOp, op)
		// Formatting destroys a device: only from this host's own seat.
		add("POST "+api.PathLocalStorageInit, n.handleStorageInit, op)
	}
	add("GET "+api.PathStatus, n.leaderRead(n.handleStatus), read)
	add("GET "+api.PathHosts, n.leaderRead(n.handleHosts), read)
	add("GET "+api.PathFenceHistory, n.leaderRead(n.handleFenceHistory), read)
	add("GET "+api.PathFenceDevices, n.leaderRead(n.handleFenceDevices), read)
	add("POST "+api.PathHostAction+"/{host}/evacuate", n.leaderWrite(n.handleEvacuate), op)
	add("POST "+api.PathHostAction+"/{host}/online", n.leaderWrite(n.handleHostOnline), op)
	add("POST "+api.PathHostAction+"/{host}/attr", n.leaderWrite(n.handleHostAttr), op)
	add("POST "+api.PathHostAction+"/{host}/maintenance", n.leaderWrite(jsonCall(func(r *http.Request, req api.HostOp) (any, error) {
		return nil, n.coord.SetMaintenance(r.PathValue("host"), req.On, req.Reason, actor(r, req.RequestedBy))
	})), op)
	add("POST "+api.PathHostAction+"/{host}/expect", n.leaderWrite(jsonCall(func(r *http.Request, req api.HostOp) (any, error) {
		return nil, n.coord.ExpectHost(r.PathValue("host"), req.On, actor(r, req.RequestedBy))
	})), op)
	add("DELETE "+api.PathHostAction+"/{host}", n.leaderWrite(jsonCall(func(r *http.Request, req api.HostOp) (any, error) {
		return nil, n.coord.RemoveHost(r.PathValue("host"), actor(r, req.RequestedBy))
	})), op)
	add("GET "+api.PathRules, n.leaderRead(n.handleGetRules), read)
	add("POST "+api.PathRules, n.leaderWrite(n.handleSetRules), op)
	add("GET "+api.PathRulesHistory, n.leaderRead(n.handleRulesHistory), read)
	add("GET "+api.PathRulesHistory+"/{version}", n.leaderRead(n.handleRulesVersion), read)
	add("GET "+api.PathExplain+"/{vm}", n.leaderRead(n.handleExplain), read)
	add("GET "+api.PathPins, n.leaderRead(n.handlePins), read)
	add("GET "+api.PathRebalance, n.leaderRead(n.handleRebalances), read)
	add("POST "+api.PathRebalance, n.leaderWrite(jsonCall(func(r *http.Request, req api.RebalanceRequest) (any, error) {
		return nilIfErr(n.coord.StartRebalance(req, actor(r, req.RequestedBy)))
	})), op)
	add("POST "+api.PathRebalance+"/cancel", n.leaderWrite(jsonCall(func(r *http.Request, req api.HostOp) (any, error) {
		return nilIfErr(n.coord.CancelRebalance(actor(r, req.RequestedBy)))
	})), op)
	add("POST "+api.PathPins+"/clear", n.leaderWrite(n.handleClearPins), op)
	add("POST "+api.PathFencePolicy, n.leaderWrite(n.handleFencePolicy), op)
	add("POST "+api.PathFence+"/{host}", n.leaderWrite(n.handleFence), op)
	add("POST "+api.PathFence+"/{host}/confirm", n.leaderWrite(n.handleFenceConfirm), op)
	add("POST "+api.PathFence+"/{host}/test", n.leaderWrite(n.handleFenceTest), op)
	// Fence configuration runs as root on the leader: operators only.
	add("POST "+api.PathFence+"/{host}/devices", n.leaderWrite(n.handleFenceDevicesSet), op)
	add("POST "+api.PathFence+"/{host}/devices/accept", n.leaderWrite(n.handleFenceDevicesAccept), op)
	add("POST "+api.PathVMs, n.leaderWrite(n.handleAddVM), op)
	add("DELETE "+api.PathVMs+"/{name}", n.leaderWrite(n.handleRemoveVM), op)
	// VM definitions (vms.go).
	add("GET "+api.PathVMs+"/{name}", n.leaderRead(n.handleShowVM), read)
	add("POST "+api.PathVMs+"/{name}"+api.PathVMUpdateSuffix, n.leaderWrite(n.handleUpdateVM), op)
	add("GET "+api.PathVMs+"/{name}"+api.PathVMDomainSuffix, n.leaderRead(n.handleVMDomainDiff), hostOrOp)
	add("GET "+api.PathHostAction+"/{host}/domains/{domain}"+api.PathDomainXMLSuffix, n.handleHostDomainXML, hostOrOp)
	add("GET "+api.PathLocalDomains+"/{domain}"+api.PathDomainXMLSuffix, n.handleLocalDomainXML, hostOrOp)
	add("POST "+api.PathLocalDomains+"/{domain}"+api.PathDomainReleaseSuffix, n.handleReleaseDomain, op)
	add("POST "+api.PathVMs+"/{name}/migrate", n.leaderWrite(n.handleMigrate), op)
	add("POST "+api.PathMigrationResult, n.leaderWrite(n.handleMigrationResult), peer)
	add("POST "+api.PathRegister, n.leaderWrite(n.handleRegister), peer)
	add("POST "+api.PathObserve, n.leaderWrite(n.handleObserve), peer)
	n.lifecycleRoutes(add, read, op)
	n.tokenRoutes(add, op)
	n.whatIfRoutes(add, read)
	n.doctorRoutes(add) // vmha doctor (doctor.go)
	add("GET "+api.PathLocalDomains, n.handleLocalDomains, read)
	add("GET "+api.PathLocalStorage, n.handleLocalStorage, read)
	add("GET "+api.PathLocalMigrations, n.handleLocalMigrations, read)
	add("GET "+api.PathHostAction+"/{host}/migrations", n.handleHostMigrations, read)
	add("GET "+api.PathReadIndex, n.handleReadIndex, peer)
	add("POST "+api.PathNudge, n.handleNudge, peer)
	add("POST "+api.PathPeerLVM, n.handlePeerLVM, peer)
	add("GET "+api.PathAlive, func(w http.ResponseWriter, _ *http.Request) {
		n.tagsMu.Lock()
		boot := n.tags[tagBoot]
		n.tagsMu.Unlock()
		writeJSON(w, http.StatusOK, api.Alive{Node: n.cfg.NodeName, Boot: boot})
	}, read)
	// Anything else is answered in the API's own error shape.
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeErr(w, http.StatusNotFound, "", fmt.Errorf("no API call %s %s", r.Method, r.URL.Path))
	})
	return mux
}

// peerWrites are the routes a peer's agent writes through: rate-limited per
// peer on the peer port (limitPeerWrites).
var peerWrites = map[string]bool{
	"POST " + api.PathRegister:        true,
	"POST " + api.PathObserve:         true,
	"POST " + api.PathMigrationResult: true,
	"POST " + api.PathPeerLVM:         true,
}

// Serve serves the API on the unix socket (mode 0600: root only; claimed
// by ClaimSocket before the node started, or here) and on the peer port
// until ctx is done. Both listeners are bounded: connections (a cap each),
// time (newServer, routeBudget) and sizes (maxHeaderBytes, maxBody).
func (n *Node) Serve(ctx context.Context) error {
	sock := n.socket
	if sock == nil {
		var err error
		if sock, err = ClaimSocket(n.cfg.Socket, n.cfg.SocketGroup); err != nil {
			return err
		}
	}
	// Closing removes the socket only if it still is ours.
	defer func() { _ = sock.Close() }()
	bind := net.JoinHostPort(n.cfg.BindAddr, fmt.Sprint(n.cfg.Ports.API))
	tcp, err := net.Listen("tcp", bind)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", bind, err)
	}
	// The cap counts connections before their TLS handshake, which
	// readHeaderTimeout bounds.
	var tl net.Listener = newLimitListener(tcp, "peer "+bind, n.peerConnCap, n.log)
	if n.tls != nil {
		tl = tls.NewListener(tl, n.tls)
	}
	ul := newLimitListener(sock, "socket "+sock.Path(), func() int { return socketConnCap }, n.log)
	srvs := []*http.Server{
		newServer(n.authenticate(true, n.Handler(true))),
		newServer(n.authenticate(false, n.Handler(false))),
	}
	// The socket's principal is its peer's uid, read from the connection.
	srvs[0].ConnContext = peerCredContext
	errc := make(chan error, 2)
	go func() { errc <- srvs[0].Serve(ul) }()
	go func() { errc <- srvs[1].Serve(tl) }()
	var serveErr error
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			serveErr = err
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, s := range srvs {
		_ = s.Shutdown(sctx)
	}
	return serveErr
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, body []byte)

// nilIfErr turns a (pointer, error) result into jsonCall's (any, error)
// without a typed nil: an error answers with the error alone.
func nilIfErr[T any](v *T, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	return v, nil
}

// jsonCall is a handler in one piece: decode the body into T (a malformed
// body is a 400 naming what is wrong, and calls nothing), call fn, and
// answer its result as JSON (nil: 204) or its error with the status the
// error's kind calls for.
func jsonCall[T any](fn func(r *http.Request, req T) (any, error)) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, body []byte) {
		var req T
		if len(body) > 0 {
			if err := decode(body, &req); err != nil {
				writeErr(w, http.StatusBadRequest, "", err)
				return
			}
		}
		out, err := fn(r, req)
		switch {
		case err != nil:
			writeApplyErr(w, err)
		case out == nil:
			w.WriteHeader(http.StatusNoContent)
		default:
			writeJSON(w, http.StatusOK, out)
		}
	}
}

// leaderWrite runs h on the leader; a follower forwards the request once.
func (n *Node) leaderWrite(h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := readBody(w, r, maxBody)
		if err != nil {
			writeBodyErr(w, err)
			return
		}
		if n.IsLeader() {
			h(w, r, body)
			return
		}
		n.proxy(w, r, body)
	}
}

// leaderRead answers from the leader's view when there is a leader, so
// that `vmha status` on any host shows the deciding host's picture; with no
// leader it answers locally and says so.
func (n *Node) leaderRead(h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if n.IsLeader() || r.Header.Get(api.HeaderForwarded) != "" || r.URL.Query().Get("local") == "1" {
			h(w, r, nil)
			return
		}
		if _, addr := n.Leader(); addr == "" {
			h(w, r, nil)
			return
		}
		n.proxy(w, r, nil)
	}
}

func (n *Node) proxy(w http.ResponseWriter, r *http.Request, body []byte) {
	if r.Header.Get(api.HeaderForwarded) != "" {
		writeErr(w, http.StatusServiceUnavailable, "", errors.New("leadership changed while forwarding; retry"))
		return
	}
	name, addr := n.Leader()
	if addr == "" {
		writeErr(w, http.StatusServiceUnavailable, "", errNoLeader)
		return
	}
	scheme := "http://"
	if n.tls != nil {
		scheme = "https://"
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, scheme+addr+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		writeErr(w, http.StatusInternalServerError, "", err)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(api.HeaderForwarded, n.cfg.NodeName)
	setForwardedPrincipal(req.Header, principalOf(r))
	// r's context carries the route's budget.
	resp, err := n.peers.get(addr).hc.Do(req)
	if err != nil {
		writeErr(w, http.StatusServiceUnavailable, "", fmt.Errorf("forward to leader %s at %s: %w", name, addr, err))
		return
	}
	defer resp.Body.Close()
	w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// forwardWrite sends a write to the leader's API (which may be this host).
func (n *Node) forwardWrite(ctx context.Context, method, path string, in, out any) error {
	name, addr := n.Leader()
	return n.toLeader(ctx, name, addr, method, path, in, out)
}

// toLeader makes this host's own call to the leader name at addr (marked
// as forwarded, so that a follower that is no longer the leader does not
// forward it again).
func (n *Node) toLeader(ctx context.Context, name, addr, method, path string, in, out any) error {
	if addr == "" {
		return errNoLeader
	}
	h := http.Header{}
	h.Set(api.HeaderForwarded, n.cfg.NodeName)
	if err := n.peers.do(ctx, addr, 10*time.Second, method, path, in, out, h); err != nil {
		return fmt.Errorf("leader %s: %w", name, err)
	}
	return nil
}

// forwardRead gets path from the leader.
func (n *Node) forwardRead(ctx context.Context, path string, out any) error {
	return n.forwardWrite(ctx, http.MethodGet, path, nil, out)
}

// readBody reads a request's body, at most limit bytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	return io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
}

// writeBodyErr answers a body that could not be read: too large (413), or
// too slow or cut off (408; the connection is then closed).
func writeBodyErr(w http.ResponseWriter, err error) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		writeErr(w, http.StatusRequestEntityTooLarge, "", fmt.Errorf("request body: larger than %d bytes", mbe.Limit))
		return
	}
	writeErr(w, http.StatusRequestTimeout, "", fmt.Errorf("request body: %w", err))
}

// indentUpTo is the largest answer writeJSON indents for people reading it
// with curl: a status of 50,000 VMs is tens of megabytes, and indenting it
// cost 0.7 s of the leader's CPU (BenchmarkConsoleSnapshot).
const indentUpTo = 1 << 20

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	b, err := json.Marshal(v)
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = fmt.Fprintf(w, "{\"error\": %q}\n", "encode the answer: "+err.Error())
		return
	}
	w.WriteHeader(code)
	if len(b) <= indentUpTo {
		var buf bytes.Buffer
		if json.Indent(&buf, b, "", "  ") == nil {
			b = buf.Bytes()
		}
	}
	_, _ = w.Write(append(b, '\n'))
}

func writeErr(w http.ResponseWriter, code int, field string, err error) {
	writeJSON(w, code, api.Error{Error: err.Error(), Field: field})
}

// writeApplyErr maps a state-machine rejection to an HTTP answer.
func writeApplyErr(w http.ResponseWriter, err error) {
	var ve *ValidationError
	var nf *NotFoundError
	var ce *ConflictError
	switch {
	case errors.As(err, &ve):
		writeErr(w, http.StatusBadRequest, ve.Field, err)
	case errors.As(err, &nf):
		writeErr(w, http.StatusNotFound, "", err)
	case errors.As(err, &ce):
		writeErr(w, http.StatusConflict, "", err)
	case errors.Is(err, errNoLeader):
		writeErr(w, http.StatusServiceUnavailable, "", err)
	default:
		writeErr(w, http.StatusInternalServerError, "", err)
	}
}

func decode(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("request body is not valid JSON for this call: %w", err)
	}
	return nil
}

func (n *Node) handleMigrate(w http.ResponseWriter, r *http.Request, body []byte) {
	var req api.MigrateRequest
	if err := decode(body, &req); err != nil {
		writeErr(w, http.StatusBadRequest, "", err)
		return
	}
	p, err := n.coord.StartMigration(r.PathValue("name"), req, actor(r, req.RequestedBy))
	if err != nil {
		writeApplyErr(w, err)
		return
	}
	if req.DryRun {
		writeJSON(w, http.StatusOK, dryRunOf(p))
		return
	}
	writeJSON(w, http.StatusAccepted, n.vmView(n.fsm.Copy(), p.VM))
}

func (n *Node) handleMigrationResult(w http.ResponseWriter, r *http.Request, body []byte) {
	var req api.MigrationResult
	if err := decode(body, &req); err != nil {
		writeErr(w, http.StatusBadRequest, "", err)
		return
	}
	// Only the source of the move reports its end.
	var source string
	n.fsm.Read(func(s *model.State) {
		if p := s.Status.Placements[req.VM]; p != nil && p.MigrationID == req.MigrationID {
			source = p.MigrateFrom
		}
	})
	if source != "" {
		if err := speaksFor(r, source); err != nil {
			n.refusePeer(w, r, err)
			return
		}
	}
	if err := n.coord.MigrationResult(req); err != nil {
		writeApplyErr(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (n *Node) handleRegister(w http.ResponseWriter, r *http.Request, body []byte) {
	var req api.Register
	if err := decode(body, &req); err != nil {
		writeErr(w, http.StatusBadRequest, "", err)
		return
	}
	// Checked before anything else, so that a bad name never reaches the
	// log (apply refuses it too).
	if err := model.ValidateName("host", req.Host.Name); err != nil {
		writeErr(w, http.StatusBadRequest, "host.name", err)
		return
	}
	if err := speaksFor(r, req.Host.Name); err != nil {
		n.refusePeer(w, r, err)
		return
	}
	admitted, closed := true, ""
	n.fsm.Read(func(s *model.State) {
		closed = admissionClosed(n.cfg.Admission, n.cfg.BootstrapExpect, s)
		_, known := s.Config.Hosts[req.Host.Name]
		_, expected := s.Config.Expected[req.Host.Name]
		admitted = closed == "" || known || expected
	})
	if !admitted {
		n.log.Warn().Str("host", req.Host.Name).Str("api", req.Host.APIAddr).Str("admission", closed).Msg("registration refused: admission is closed and the host was not announced")
		writeErr(w, http.StatusForbidden, "host", fmt.Errorf("host %q is not a member and was not announced: admission is closed (%s; vmha host add %s first)", req.Host.Name, closed, req.Host.Name))
		return
	}
	if req.Fencing != nil {
		// A registration is a peer's message: its fence devices must pass
		// the allow-lists, and allow_unsafe is refused. The state machine
		// would drop them; saying why here keeps the host from being
		// registered without the devices it meant to bring.
		if err := checkTopology(req.Host.Name, req.Fencing, false); err != nil {
			n.log.Warn().Str("host", req.Host.Name).Str("api", req.Host.APIAddr).Str("error", err.Error()).Msg("registration refused: its fence devices are not allowed")
			writeErr(w, http.StatusBadRequest, "fencing", fmt.Errorf("fence devices of host %s: %w", req.Host.Name, err))
			return
		}
	}
	var outcome, inUse string
	n.fsm.Read(func(s *model.State) {
		outcome = registerOutcome(s, req.Host.Name, req.Fencing)
		inUse = s.Config.Fencing[req.Host.Name].Describe()
	})
	if err := n.propose(&Command{Op: OpRegisterHost, Host: &req.Host, Fencing: req.Fencing}); err != nil {
		writeApplyErr(w, err)
		return
	}
	if outcome == "offer" {
		n.log.Warn().Str("host", req.Host.Name).Str("offered", req.Fencing.Describe()).Str("in_use", inUse).
			Msg("host offers other fence devices than the cluster uses: the cluster keeps its own; vmha fence devices accept HOST uses the offered ones")
	}
	n.log.Info().Str("host", req.Host.Name).Str("api", req.Host.APIAddr).Bool("fencing", req.Fencing != nil).Bool("first", outcome == "first").Msg("host registered")
	if n.coord != nil {
		n.coord.poke()
	}
	w.WriteHeader(http.StatusNoContent)
}

func (n *Node) handleObserve(w http.ResponseWriter, r *http.Request, body []byte) {
	var obs model.Observation
	if err := decode(body, &obs); err != nil {
		writeErr(w, http.StatusBadRequest, "", err)
		return
	}
	if err := speaksFor(r, obs.Host); err != nil {
		n.refusePeer(w, r, err)
		return
	}
	var same bool
	n.fsm.Read(func(s *model.State) { same = sameReport(s.Status.Observed[obs.Host], &obs) })
	if same {
		// Nothing new to commit, but the agent takes this answer as
		// proof that the cluster has a quorum (setQuorate): only a
		// leader a quorum still follows may give it.
		if err := n.raft.VerifyLeader().Error(); err != nil {
			writeErr(w, http.StatusServiceUnavailable, "", fmt.Errorf("%w: leadership not confirmed by a quorum: %v", errNoLeader, err))
			return
		}
	} else if err := n.propose(&Command{Op: OpObserve, Observation: &obs}); err != nil {
		writeApplyErr(w, err)
		return
	}
	n.heard.note(obs.Host, obs.At)
	n.coord.noteRecoveries(&obs)
	w.WriteHeader(http.StatusNoContent)
}

// admissionClosed says why a new host may not register now ("" when it
// may): admission closed, or auto once bootstrap_expect hosts registered
// (the cluster formed: from then on a new host is announced first).
func admissionClosed(mode string, expect int, s *model.State) string {
	switch mode {
	case "open":
		return ""
	case "closed":
		return "admission: closed"
	}
	if n := len(s.Config.Hosts); n >= expect {
		return fmt.Sprintf("the cluster formed with %d hosts (admission: auto)", n)
	}
	return ""
}

// refusePeer answers a peer call that speaks for another host, and logs it:
// a host certificate used that way is a compromised or misconfigured host.
func (n *Node) refusePeer(w http.ResponseWriter, r *http.Request, err error) {
	n.log.Warn().Err(err).Str("remote", r.RemoteAddr).Str("path", r.URL.Path).Msg("refused a peer call")
	writeErr(w, http.StatusForbidden, "", err)
}

func (n *Node) handleReadIndex(w http.ResponseWriter, _ *http.Request) {
	if !n.IsLeader() {
		writeErr(w, http.StatusServiceUnavailable, "", errors.New("not the leader"))
		return
	}
	term := n.raft.CurrentTerm()
	// A barrier commits through a quorum (a deposed leader cannot answer)
	// and returns once this host's state machine has applied everything
	// committed before it: the index it then reports is the last command
	// the asking agent must have applied too. Raft's own indexes would not
	// do: they count no-ops and barriers that no state machine sees, and
	// entries queued but not yet applied.
	if err := n.raft.Barrier(applyTimeout).Error(); err != nil {
		writeErr(w, http.StatusServiceUnavailable, "", fmt.Errorf("leadership not confirmed by a quorum: %w", err))
		return
	}
	if n.raft.CurrentTerm() != term {
		writeErr(w, http.StatusServiceUnavailable, "", errors.New("leadership changed during the read index"))
		return
	}
	writeJSON(w, http.StatusOK, api.ReadIndex{Term: term, Index: n.fsm.AppliedIndex()})
}

func (n *Node) handleNudge(w http.ResponseWriter, r *http.Request) {
	var req api.Nudge
	body, err := readBody(w, r, 4096)
	if err != nil {
		writeBodyErr(w, err)
		return
	}
	if err := decode(body, &req); err != nil {
		writeErr(w, http.StatusBadRequest, "", err)
		return
	}
	if n.agent == nil {
		writeErr(w, http.StatusServiceUnavailable, "", errors.New("agent not running"))
		return
	}
	if err := n.agent.Nudge(req.Term); err != nil {
		writeErr(w, http.StatusConflict, "term", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (n *Node) handleLocalStorage(w http.ResponseWriter, r *http.Request) {
	if !n.storageOn() {
		writeErr(w, http.StatusConflict, "", errors.New("no shared storage is configured on this host (storage: in vmhad.yaml)"))
		return
	}
	writeJSON(w, http.StatusOK, n.CheckStorage(r.Context()))
}

func (n *Node) handleStorageInit(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r, maxBody)
	if err != nil {
		writeBodyErr(w, err)
		return
	}
	var req api.StorageInit
	if err := decode(body, &req); err != nil {
		writeErr(w, http.StatusBadRequest, "", err)
		return
	}
	res, err := n.InitStorage(r.Context(), req)
	if err != nil {
		writeApplyErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (n *Node) handleLocalMigrations(w http.ResponseWriter, _ *http.Request) {
	if n.agent == nil {
		writeJSON(w, http.StatusOK, []api.MigrationJob{})
		return
	}
	writeJSON(w, http.StatusOK, n.agent.Jobs())
}

// handleHostMigrations answers for any host: its own jobs locally, another
// host's by asking that host (the source of a migration holds its job
// statistics; they are too frequent for the replicated log).
func (n *Node) handleHostMigrations(w http.ResponseWriter, r *http.Request) {
	host := r.PathValue("host")
	if host == n.cfg.NodeName {
		n.handleLocalMigrations(w, r)
		return
	}
	var addr string
	n.fsm.Read(func(s *model.State) {
		if h := s.Config.Hosts[host]; h != nil {
			addr = h.APIAddr
		}
	})
	if addr == "" {
		writeErr(w, http.StatusNotFound, "host", fmt.Errorf("unknown host %q, or it has no API address yet", host))
		return
	}
	var jobs []api.MigrationJob
	if err := n.peers.do(r.Context(), addr, 5*time.Second, http.MethodGet, api.PathLocalMigrations, nil, &jobs, nil); err != nil {
		writeErr(w, http.StatusBadGateway, "", fmt.Errorf("ask %s for its migrations: %w", host, err))
		return
	}
	writeJSON(w, http.StatusOK, jobs)
}

func (n *Node) handleLocalDomains(w http.ResponseWriter, r *http.Request) {
	if n.hv == nil {
		writeJSON(w, http.StatusOK, []hypervisor.Domain{}) // a witness
		return
	}
	ds, err := n.hv.List(r.Context())
	if err != nil {
		writeErr(w, http.StatusInternalServerError, "", fmt.Errorf("hypervisor: %w", err))
		return
	}
	if ds == nil {
		ds = []hypervisor.Domain{}
	}
	writeJSON(w, http.StatusOK, ds)
}

func (n *Node) handleStatus(w http.ResponseWriter, _ *http.Request, _ []byte) {
	writeJSON(w, http.StatusOK, n.Status())
}

func (n *Node) handleHosts(w http.ResponseWriter, _ *http.Request, _ []byte) {
	writeJSON(w, http.StatusOK, n.Status().Hosts)
}

func (n *Node) handleFenceHistory(w http.ResponseWriter, _ *http.Request, _ []byte) {
	var h []model.FenceRecord
	n.fsm.Read(func(s *model.State) { h = append(h, s.Status.FenceHistory...) })
	if h == nil {
		h = []model.FenceRecord{}
	}
	writeJSON(w, http.StatusOK, h)
}

// requester names who asked: the operator's own words (user@host from the
// CLI), and the host whose socket or API the request came in through.
func (n *Node) handleFence(w http.ResponseWriter, r *http.Request, body []byte) {
	var req api.FenceRequest
	if err := decode(body, &req); err != nil {
		writeErr(w, http.StatusBadRequest, "", err)
		return
	}
	if req.Action == "" {
		req.Action = ActionOff
	}
	// The fence outlives a CLI that gives up: it must not stop half-way.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), n.cfg.Fencing.Timeout+10*time.Second)
	defer cancel()
	rec, err := n.coord.ManualFence(ctx, r.PathValue("host"), req.Action, actor(r, req.RequestedBy))
	switch {
	case err != nil && rec.Device == "":
		writeApplyErr(w, err)
	case err != nil:
		// The device was tried and failed: recovery stays blocked.
		writeErr(w, http.StatusBadGateway, "", fmt.Errorf("fence of %s failed: %w; its VMs stay where they are until a fence succeeds or an operator runs vmha fence confirm", rec.Host, err))
	default:
		writeJSON(w, http.StatusOK, rec)
	}
}

func (n *Node) handleEvacuate(w http.ResponseWriter, r *http.Request, body []byte) {
	var req api.EvacuateRequest
	if err := decode(body, &req); err != nil {
		writeErr(w, http.StatusBadRequest, "", err)
		return
	}
	plan, err := n.coord.StartEvacuation(req, r.PathValue("host"), actor(r, req.RequestedBy))
	if err != nil {
		writeApplyErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, plan)
}

func (n *Node) handleHostAttr(w http.ResponseWriter, r *http.Request, body []byte) {
	var req api.HostAttr
	if err := decode(body, &req); err != nil {
		writeErr(w, http.StatusBadRequest, "", err)
		return
	}
	host := r.PathValue("host")
	a := &HostAttr{Host: host, Key: req.Key, Value: req.Value, Transient: req.Transient}
	if req.Transient {
		m, ok := n.members()[host]
		if !ok || m.Status != decide.MemberAlive {
			writeErr(w, http.StatusConflict, "", fmt.Errorf("host %s is not alive: a transient attribute lives only while its vmhad runs", host))
			return
		}
		a.Boot = m.Tags[tagBoot]
	}
	if err := n.propose(&Command{Op: OpHostAttr, Attr: a, By: actor(r, "")}); err != nil {
		writeApplyErr(w, err)
		return
	}
	n.log.Info().Str("host", host).Str("attribute", req.Key).Str("value", req.Value).Bool("transient", req.Transient).Str("by", actor(r, "")).Msg("host attribute set")
	n.coord.poke()
	w.WriteHeader(http.StatusNoContent)
}

func (n *Node) handleHostOnline(w http.ResponseWriter, r *http.Request, body []byte) {
	var req api.HostOnline
	if len(bytes.TrimSpace(body)) > 0 && string(bytes.TrimSpace(body)) != "null" {
		if err := decode(body, &req); err != nil {
			writeErr(w, http.StatusBadRequest, "", err)
			return
		}
	}
	if err := n.coord.HostOnline(r.PathValue("host"), req.EvacuationID, actor(r, "")); err != nil {
		writeApplyErr(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (n *Node) handleRebalances(w http.ResponseWriter, _ *http.Request, _ []byte) {
	out := []*model.Rebalance{}
	n.fsm.Read(func(s *model.State) {
		for _, r := range s.Status.Rebalances {
			cp := *r
			cp.Moves = append([]model.RebalanceMove(nil), r.Moves...)
			out = append(out, &cp)
		}
	})
	writeJSON(w, http.StatusOK, out)
}

func (n *Node) handlePins(w http.ResponseWriter, _ *http.Request, _ []byte) {
	out := []api.Pin{}
	now := time.Now()
	n.fsm.Read(func(s *model.State) {
		for _, vm := range model.SortedKeys(s.Status.Pins) {
			p := s.Status.Pins[vm]
			if !p.Active(now) {
				continue // expired; the leader drops it on its next pass
			}
			pv := api.Pin{Pin: *p}
			if pl := s.Status.Placements[vm]; pl != nil {
				pv.RunningOn = pl.Host
			}
			out = append(out, pv)
		}
	})
	writeJSON(w, http.StatusOK, out)
}

func (n *Node) handleClearPins(w http.ResponseWriter, r *http.Request, body []byte) {
	var req api.ClearPins
	if err := decode(body, &req); err != nil {
		writeErr(w, http.StatusBadRequest, "", err)
		return
	}
	if req.All == (len(req.VMs) > 0) {
		writeErr(w, http.StatusBadRequest, "vms", errors.New("name the VMs whose pins go, or ask for all, not both"))
		return
	}
	names := req.VMs
	if req.All {
		n.fsm.Read(func(s *model.State) { names = model.SortedKeys(s.Status.Pins) })
		if len(names) == 0 {
			writeJSON(w, http.StatusOK, []string{})
			return
		}
	}
	if err := n.propose(&Command{Op: OpPin, Names: names, By: actor(r, req.RequestedBy)}); err != nil {
		writeApplyErr(w, err)
		return
	}
	n.log.Info().Strs("vms", names).Str("by", actor(r, req.RequestedBy)).Msg("pins cleared")
	n.coord.poke()
	writeJSON(w, http.StatusOK, names)
}

func (n *Node) handleExplain(w http.ResponseWriter, r *http.Request, _ []byte) {
	ex, err := n.coord.Explain(r.PathValue("vm"))
	if err != nil {
		writeApplyErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ex)
}

func (n *Node) handleFencePolicy(w http.ResponseWriter, r *http.Request, body []byte) {
	var req api.FencePolicy
	if err := decode(body, &req); err != nil {
		writeErr(w, http.StatusBadRequest, "", err)
		return
	}
	c := &Command{Op: OpSetFencing, By: actor(r, req.RequestedBy)}
	if !req.Enabled {
		if !req.AcknowledgeDoubleRunRisk {
			writeErr(w, http.StatusBadRequest, "acknowledge_double_run_risk", errors.New("turning fencing off needs the explicit acknowledgement that VMs may then run twice"))
			return
		}
		c.FencingOff = &model.FencingOff{By: actor(r, req.RequestedBy), At: time.Now().UTC()}
	}
	if err := n.propose(c); err != nil {
		writeApplyErr(w, err)
		return
	}
	n.log.Warn().Bool("enabled", req.Enabled).Str("by", actor(r, req.RequestedBy)).Msg("fencing policy changed")
	w.WriteHeader(http.StatusNoContent)
}

func (n *Node) handleFenceConfirm(w http.ResponseWriter, r *http.Request, body []byte) {
	var req api.FenceConfirm
	if err := decode(body, &req); err != nil {
		writeErr(w, http.StatusBadRequest, "", err)
		return
	}
	rec, err := n.coord.ConfirmFenced(r.PathValue("host"), actor(r, req.RequestedBy))
	if err != nil {
		writeApplyErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

func (n *Node) handleFenceTest(w http.ResponseWriter, r *http.Request, body []byte) {
	var req api.FenceTest
	if err := decode(body, &req); err != nil {
		writeErr(w, http.StatusBadRequest, "", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), n.cfg.Fencing.Timeout+10*time.Second)
	defer cancel()
	res, err := n.coord.TestDevice(ctx, r.PathValue("host"), req.PowerCycle, actor(r, req.RequestedBy))
	switch {
	case err != nil && len(res.Devices) == 0:
		writeApplyErr(w, err)
	case err != nil:
		writeErr(w, http.StatusBadGateway, "", fmt.Errorf("power cycle of %s failed: %w", res.Host, err))
	case !res.Check.OK:
		writeErr(w, http.StatusBadGateway, "", fmt.Errorf("no fence level of %s answered in full: %s", res.Host, res.Check.Error))
	default:
		writeJSON(w, http.StatusOK, res)
	}
}

func (n *Node) handleFenceDevices(w http.ResponseWriter, _ *http.Request, _ []byte) {
	var checks map[string][]fencing.DeviceCheck
	if n.coord != nil && n.IsLeader() {
		checks = n.coord.Checks()
	}
	out := []api.FenceDevice{}
	n.fsm.Read(func(s *model.State) {
		for _, h := range model.SortedKeys(s.Config.Hosts) {
			out = append(out, deviceRows(h, s.Config.Fencing[h], checks[h])...)
			out = append(out, offerRows(s, h)...)
		}
	})
	writeJSON(w, http.StatusOK, out)
}

// deviceRows lists a host's devices level by level, with the checks (which
// Topology.Check returns in the same order) beside them.
func deviceRows(host string, t *model.FenceTopology, checks []fencing.DeviceCheck) []api.FenceDevice {
	if t == nil || len(t.Levels) == 0 {
		return []api.FenceDevice{{Host: host}}
	}
	var out []api.FenceDevice
	k := 0
	for i, l := range t.Levels {
		for _, name := range l {
			row := api.FenceDevice{Host: host, Level: i + 1, Device: name}
			if d := t.Device(name); d != nil {
				row.Device = d.Describe()
			}
			if k < len(checks) && checks[k].Level == i+1 {
				row.Check = ptr(checkView(checks[k]))
			}
			k++
			out = append(out, row)
		}
	}
	return out
}

func (n *Node) handleGossipKeys(w http.ResponseWriter, _ *http.Request) {
	v, err := n.GossipKeys()
	if err != nil {
		writeApplyErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (n *Node) handleGossipKeyOp(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r, 4096)
	if err != nil {
		writeBodyErr(w, err)
		return
	}
	var req api.GossipKeyOp
	if err := decode(body, &req); err != nil {
		writeErr(w, http.StatusBadRequest, "", err)
		return
	}
	v, err := n.ChangeGossipKey(req.Op, req.Key)
	switch {
	case err != nil && v == nil:
		writeApplyErr(w, err)
	case err != nil:
		writeJSON(w, http.StatusBadGateway, struct {
			*api.GossipKeys
			Error string `json:"error"`
		}{v, err.Error()})
	default:
		writeJSON(w, http.StatusOK, v)
	}
}

// trimErr keeps long error strings readable in tables.
func trimErr(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}
