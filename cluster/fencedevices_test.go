package cluster

import (
	"encoding/json"
	"errors"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/cluster/decide"
	"github.com/vmha/vmha/config"
	"github.com/vmha/vmha/model"
)

const offerPw = "Offer-Pw-7c1e"

// bmcTopo is a one-device IPMI topology of host.
func bmcTopo(host, addr string) *model.FenceTopology {
	return &model.FenceTopology{
		Devices: []model.FenceDevice{{Name: "bmc@" + host, Type: "ipmi", Params: map[string]string{"address": addr, "user": "u"}, Password: "pw"}},
		Levels:  [][]string{{"bmc@" + host}},
	}
}

// The attack's devices.
func sshPathTopo(host string) *model.FenceTopology {
	return &model.FenceTopology{
		Devices: []model.FenceDevice{{Name: "v@" + host, Type: "agent", Params: map[string]string{"agent": "fence_virsh", "ip": "10.9.9.9", "ssh_path": "/bin/sh -c 'touch /tmp/pwned' --"}}},
		Levels:  [][]string{{"v@" + host}},
	}
}

func extTopo(host string) *model.FenceTopology {
	return &model.FenceTopology{
		Devices: []model.FenceDevice{{Name: "lv@" + host, Type: "libvirt", Params: map[string]string{"uri": "qemu+ext:///system?command=/tmp/x.sh"}}},
		Levels:  [][]string{{"lv@" + host}},
	}
}

// fakeLibvirt is a device that passes the allow-list but is not the host's:
// a re-registration must not swap it in.
func fakeLibvirt(host string) *model.FenceTopology {
	return &model.FenceTopology{
		Devices: []model.FenceDevice{{Name: "lv@" + host, Type: "libvirt", Params: map[string]string{"uri": "qemu+tcp://10.9.9.9/system"}}},
		Levels:  [][]string{{"lv@" + host}},
	}
}

func withUnsafe(t *model.FenceTopology) *model.FenceTopology {
	cp := cloneTopology(t)
	for i := range cp.Devices {
		cp.Devices[i].AllowUnsafe = true
	}
	return cp
}

// h2Topo is h2's topology in baseFSM.
func h2Topo() *model.FenceTopology { return bmcTopo("h2", "127.0.0.1") }

// TestRegistrationNeverChangesFencing: only the first registration of a
// host brings its fence devices (and only devices the allow-lists accept,
// without allow_unsafe); a re-registration never replaces or drops them. It
// leaves a different topology (even one that differs only in a password) as
// a pending offer, keeps an offer's time when it is made again, and
// withdraws it when the host offers the topology in use, or none.
func TestRegistrationNeverChangesFencing(t *testing.T) {
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	reg := func(name string, ft *model.FenceTopology, dt time.Duration) *Command {
		return &Command{Op: OpRegisterHost, At: at.Add(dt), Host: &model.Host{Name: name, APIAddr: "127.0.0.1:9", MemoryMiB: 1}, Fencing: ft}
	}
	inUse := h2Topo()
	newPw := cloneTopology(inUse)
	newPw.Devices[0].Password = "rotated"
	other := bmcTopo("h2", "10.0.0.99")

	for _, tc := range []struct {
		name   string
		cmds   []*Command
		host   string
		fence  *model.FenceTopology // the topology in use afterwards
		offer  *model.FenceTopology // the pending offer afterwards (nil: none)
		offerT time.Time
	}{
		{"first registration brings its devices", []*Command{reg("h3", bmcTopo("h3", "10.0.0.3"), 0)}, "h3", bmcTopo("h3", "10.0.0.3"), nil, time.Time{}},
		{"first registration with ssh_path: no devices", []*Command{reg("h3", sshPathTopo("h3"), 0)}, "h3", nil, nil, time.Time{}},
		{"first registration with libvirt ext: no devices", []*Command{reg("h3", extTopo("h3"), 0)}, "h3", nil, nil, time.Time{}},
		{"first registration with allow_unsafe: no devices", []*Command{reg("h3", withUnsafe(fakeLibvirt("h3")), 0)}, "h3", nil, nil, time.Time{}},
		{"re-registration with other devices: an offer", []*Command{reg("h2", fakeLibvirt("h2"), time.Minute)}, "h2", inUse, fakeLibvirt("h2"), at.Add(time.Minute)},
		{"re-registration with a new password: an offer", []*Command{reg("h2", newPw, time.Minute)}, "h2", inUse, newPw, at.Add(time.Minute)},
		{"re-registration with another BMC: an offer", []*Command{reg("h2", other, time.Minute)}, "h2", inUse, other, at.Add(time.Minute)},
		{"re-registration without devices drops none", []*Command{reg("h2", nil, time.Minute)}, "h2", inUse, nil, time.Time{}},
		{"re-registration with an empty topology drops none", []*Command{reg("h2", &model.FenceTopology{}, time.Minute)}, "h2", inUse, nil, time.Time{}},
		{"re-registration with ssh_path: no offer", []*Command{reg("h2", sshPathTopo("h2"), time.Minute)}, "h2", inUse, nil, time.Time{}},
		{"the same offer again keeps its time", []*Command{reg("h2", fakeLibvirt("h2"), time.Minute), reg("h2", fakeLibvirt("h2"), time.Hour)}, "h2", inUse, fakeLibvirt("h2"), at.Add(time.Minute)},
		{"a new offer replaces the old one", []*Command{reg("h2", fakeLibvirt("h2"), time.Minute), reg("h2", newPw, time.Hour)}, "h2", inUse, newPw, at.Add(time.Hour)},
		{"offering the devices in use withdraws the offer", []*Command{reg("h2", fakeLibvirt("h2"), time.Minute), reg("h2", inUse, time.Hour)}, "h2", inUse, nil, time.Time{}},
		{"offering none withdraws the offer", []*Command{reg("h2", fakeLibvirt("h2"), time.Minute), reg("h2", nil, time.Hour)}, "h2", inUse, nil, time.Time{}},
		{"a host without devices gets none from a re-registration", []*Command{reg("h1", bmcTopo("h1", "10.0.0.1"), time.Minute)}, "h1", nil, bmcTopo("h1", "10.0.0.1"), at.Add(time.Minute)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := baseFSM(t)
			for i, r := range applyAll(t, f, tc.cmds...) {
				if r != nil {
					t.Fatalf("command %d: %v", i, r)
				}
			}
			st := f.Copy()
			if st.Config.Hosts[tc.host] == nil || st.Config.Hosts[tc.host].APIAddr != "127.0.0.1:9" {
				t.Fatalf("host %s not registered or not updated: %+v", tc.host, st.Config.Hosts[tc.host])
			}
			if got := st.Config.Fencing[tc.host]; !got.Same(tc.fence) {
				t.Fatalf("fencing in use: %s, want %s", got.Describe(), tc.fence.Describe())
			}
			o := st.Status.FenceOffers[tc.host]
			switch {
			case tc.offer == nil && o != nil:
				t.Fatalf("offer %s, want none", o.Topology.Describe())
			case tc.offer != nil && (o == nil || !o.Topology.Same(tc.offer) || !o.At.Equal(tc.offerT)):
				t.Fatalf("offer %+v, want %s at %s", o, tc.offer.Describe(), tc.offerT)
			}
		})
	}
}

// setDevicesAt is when setDevices' commands are proposed.
var setDevicesAt = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// setDevices is the operator's set_fence_devices command for host.
func setDevices(host string, ft *model.FenceTopology, action string) *Command {
	return &Command{Op: OpSetFenceDevices, At: setDevicesAt, Name: host, Fencing: ft, Fence: &model.FenceRecord{Action: action, Requester: "alice@ws1"}}
}

// offeredTopo is the topology h2 offers in its registration.
func offeredTopo() *model.FenceTopology {
	offered := bmcTopo("h2", "10.0.0.99")
	offered.Devices[0].Password = offerPw
	return offered
}

// TestSetFenceDevicesRefusals: refusals change nothing.
func TestSetFenceDevicesRefusals(t *testing.T) {
	set, offered := setDevices, offeredTopo()
	for _, tc := range []struct {
		name string
		cmd  *Command
		want string
		err  any
	}{
		{"unknown host", set("h9", bmcTopo("h9", "10.0.0.9"), model.FenceDevicesSet), `unknown host "h9"`, &NotFoundError{}},
		{"unsafe without allow_unsafe", set("h2", sshPathTopo("h2"), model.FenceDevicesSet), "fencing: fence device v@h2: param ssh_path: refused", &ValidationError{}},
		{"libvirt ext without allow_unsafe", set("h2", extTopo("h2"), model.FenceDevicesSet), "transport +ext is refused", &ValidationError{}},
		{"no level", set("h2", &model.FenceTopology{Devices: offered.Devices}, model.FenceDevicesSet), "no level", &ValidationError{}},
		{"accept without an offer", set("h2", offered, model.FenceDevicesAccept), "offers no other fence devices", &ConflictError{}},
		{"no topology", set("h2", nil, model.FenceDevicesSet), "no topology", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := baseFSM(t)
			before := f.Copy()
			err, _ := applyAll(t, f, tc.cmd)[0].(error)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v, want %q", err, tc.want)
			}
			if tc.err != nil && !errors.As(err, reflect.New(reflect.TypeOf(tc.err)).Interface()) {
				t.Fatalf("error %T, want %T", err, tc.err)
			}
			if !equalJSON(before, f.Copy()) {
				t.Fatal("a refused command changed the state")
			}
		})
	}
}

// TestSetFenceDevices: the operator's command sets the devices (honouring
// allow_unsafe) or accepts the pending offer (which must still be the same
// and allow-listed), clears the offer, and records who did it and the
// devices before and after, never a password.
func TestSetFenceDevices(t *testing.T) {
	at, set, offered := setDevicesAt, setDevices, offeredTopo()
	withOffer := func(t *testing.T) *FSM {
		f := baseFSM(t)
		if r := applyAll(t, f, &Command{Op: OpRegisterHost, At: at, Host: &model.Host{Name: "h2"}, Fencing: offered})[0]; r != nil {
			t.Fatal(r)
		}
		return f
	}
	t.Run("accept a changed offer", func(t *testing.T) {
		f := withOffer(t)
		before := f.Copy()
		err, _ := applyAll(t, f, set("h2", fakeLibvirt("h2"), model.FenceDevicesAccept))[0].(error)
		if err == nil || !strings.Contains(err.Error(), "changed its offer meanwhile") || !equalJSON(before, f.Copy()) {
			t.Fatalf("%v", err)
		}
	})
	t.Run("accept", func(t *testing.T) {
		f := withOffer(t)
		if r := applyAll(t, f, set("h2", offered, model.FenceDevicesAccept))[0]; r != nil {
			t.Fatal(r)
		}
		st := f.Copy()
		if !st.Config.Fencing["h2"].Same(offered) || st.Status.FenceOffers["h2"] != nil {
			t.Fatalf("fencing %s, offer %+v", st.Config.Fencing["h2"].Describe(), st.Status.FenceOffers["h2"])
		}
		rec := st.Status.FenceHistory[len(st.Status.FenceHistory)-1]
		if rec.Host != "h2" || rec.Action != model.FenceDevicesAccept || rec.Requester != "alice@ws1" || !rec.OK ||
			rec.Before != "bmc@h2 (ipmi 127.0.0.1:623)" || !strings.HasPrefix(rec.After, "bmc@h2 (ipmi 10.0.0.99:623)") || !rec.Started.Equal(at) {
			t.Fatalf("record %+v", rec)
		}
		if b, _ := json.Marshal(rec); strings.Contains(string(b), offerPw) {
			t.Fatalf("the record holds the password: %s", b)
		}
	})
	t.Run("accept a new password", func(t *testing.T) {
		f := baseFSM(t)
		rotated := h2Topo()
		rotated.Devices[0].Password = offerPw
		applyAll(t, f, &Command{Op: OpRegisterHost, Host: &model.Host{Name: "h2"}, Fencing: rotated})
		if r := applyAll(t, f, set("h2", rotated, model.FenceDevicesAccept))[0]; r != nil {
			t.Fatal(r)
		}
		st := f.Copy()
		rec := st.Status.FenceHistory[len(st.Status.FenceHistory)-1]
		if st.Config.Fencing["h2"].Devices[0].Password != offerPw || rec.After != "bmc@h2 (ipmi 127.0.0.1:623); new password for bmc@h2" {
			t.Fatalf("record %+v", rec)
		}
	})
	t.Run("set with allow_unsafe, discarding the offer", func(t *testing.T) {
		f := withOffer(t)
		if r := applyAll(t, f, set("h2", withUnsafe(extTopo("h2")), model.FenceDevicesSet))[0]; r != nil {
			t.Fatal(r)
		}
		st := f.Copy()
		if !st.Config.Fencing["h2"].Devices[0].AllowUnsafe || st.Status.FenceOffers["h2"] != nil {
			t.Fatalf("%+v %+v", st.Config.Fencing["h2"], st.Status.FenceOffers["h2"])
		}
		rec := st.Status.FenceHistory[len(st.Status.FenceHistory)-1]
		if rec.Action != model.FenceDevicesSet || rec.After != "lv@h2 (libvirt qemu+ext:///system?command=/tmp/x.sh) [allow_unsafe]" {
			t.Fatalf("record %+v", rec)
		}
		// The operator's device stays through the host's next
		// registration, which offers its own again.
		applyAll(t, f, &Command{Op: OpRegisterHost, Host: &model.Host{Name: "h2"}, Fencing: offered})
		if st := f.Copy(); !st.Config.Fencing["h2"].Devices[0].AllowUnsafe || st.Status.FenceOffers["h2"] == nil {
			t.Fatal("a registration replaced the operator's devices")
		}
	})
	t.Run("witness", func(t *testing.T) {
		f := baseFSM(t)
		applyAll(t, f, &Command{Op: OpRegisterHost, Host: &model.Host{Name: "w", Witness: true}})
		err, _ := applyAll(t, f, set("w", bmcTopo("w", "10.0.0.5"), model.FenceDevicesSet))[0].(error)
		if err == nil || !strings.Contains(err.Error(), "witness") {
			t.Fatalf("%v", err)
		}
	})
	t.Run("remove host forgets its offer", func(t *testing.T) {
		f := withOffer(t)
		applyAll(t, f, &Command{Op: OpRemoveHost, Name: "h2"})
		if st := f.Copy(); st.Status.FenceOffers["h2"] != nil {
			t.Fatal("offer kept")
		}
	})
}

// TestFenceDevicesCommand: the operator's confirmation of allow_unsafe,
// and accept of an offer that is not there, are refused before the log.
func TestFenceDevicesCommand(t *testing.T) {
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	st := baseFSM(t).Copy()
	_, err := fenceDevicesCommand(st, "h2", withUnsafe(extTopo("h2")), false, false, "alice", now)
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Field != "allow_unsafe" || !strings.Contains(err.Error(), "fence device lv@h2 sets allow_unsafe") {
		t.Fatalf("without --allow-unsafe: %v", err)
	}
	c, err := fenceDevicesCommand(baseFSM(t).Copy(), "h2", withUnsafe(extTopo("h2")), false, true, "alice", now)
	if err != nil || c.Op != OpSetFenceDevices || c.Fence.Action != model.FenceDevicesSet || !c.At.IsZero() {
		t.Fatalf("with --allow-unsafe: %+v %v", c, err)
	}
	if _, err := fenceDevicesCommand(baseFSM(t).Copy(), "h2", nil, true, false, "alice", now); err == nil || !strings.Contains(err.Error(), "offers no other fence devices") {
		t.Fatalf("accept without offer: %v", err)
	}
	if _, err := fenceDevicesCommand(baseFSM(t).Copy(), "h9", nil, true, false, "alice", now); !errors.As(err, new(*NotFoundError)) {
		t.Fatalf("unknown host: %v", err)
	}
	if _, err := fenceDevicesCommand(baseFSM(t).Copy(), "h2", sshPathTopo("h2"), false, true, "alice", now); err == nil || !strings.Contains(err.Error(), "param ssh_path") {
		t.Fatalf("unsafe device without its allow_unsafe: %v", err)
	}
}

// handlerNode is a Node with a state machine and no raft, serf or
// coordinator: its handlers apply their commands to the local state.
func handlerNode(t *testing.T) *Node {
	return &Node{cfg: &config.Daemon{NodeName: "h1", Admission: "open"}, fsm: baseFSM(t), log: zerolog.Nop(), peers: newPeerClients(nil)}
}

func post(t *testing.T, h handlerFunc, path, host string, body any) *httptest.ResponseRecorder {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("POST", path, nil)
	if host != "" {
		req.SetPathValue("host", host)
	}
	// An insecure cluster's principal: may speak for any host, so that what
	// is tested here is the allow-lists (identity: auth_test.go).
	req = req.WithContext(contextWithPrincipal(req, Principal{Name: "127.0.0.1:1", Role: RoleOperator, How: "none"}))
	rec := httptest.NewRecorder()
	h(rec, req, b)
	return rec
}

// TestRegisterHandlerRefusesUnsafeDevices: the attack's registrations are
// refused with the device, the param and why; nothing reaches the state.
func TestRegisterHandlerRefusesUnsafeDevices(t *testing.T) {
	for _, tc := range []struct {
		name string
		reg  api.Register
		want []string
	}{
		{"made-up host, fence_virsh ssh_path", api.Register{Host: model.Host{Name: "evil", APIAddr: "10.9.9.9:7948"}, Fencing: sshPathTopo("evil")},
			[]string{"fence devices of host evil", "fence device v@evil: param ssh_path: refused: it names a program the agent runs"}},
		{"made-up host, libvirt ext", api.Register{Host: model.Host{Name: "evil", APIAddr: "10.9.9.9:7948"}, Fencing: extTopo("evil")},
			[]string{"fence device lv@evil: param uri: transport +ext is refused", "parameter command= is refused"}},
		{"allow_unsafe from a host", api.Register{Host: model.Host{Name: "evil"}, Fencing: withUnsafe(extTopo("evil"))},
			[]string{"fence device lv@evil: allow_unsafe is honoured only when an operator sets the device"}},
		{"known host, ssh_path", api.Register{Host: model.Host{Name: "h2", APIAddr: "127.0.0.1:2", MemoryMiB: 4096}, Fencing: sshPathTopo("h2")},
			[]string{"fence device v@h2: param ssh_path: refused"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := handlerNode(t)
			before := n.fsm.Copy()
			rec := post(t, n.handleRegister, api.PathRegister, "", tc.reg)
			var e api.Error
			_ = json.Unmarshal(rec.Body.Bytes(), &e)
			if rec.Code != 400 || e.Field != "fencing" {
				t.Fatalf("%d %s", rec.Code, rec.Body)
			}
			for _, w := range tc.want {
				if !strings.Contains(e.Error, w) {
					t.Errorf("error lacks %q: %s", w, e.Error)
				}
			}
			if !equalJSON(before, n.fsm.Copy()) {
				t.Fatal("a refused registration changed the state")
			}
		})
	}
}

// TestOfferAcceptHandlers: a known host's re-registration with a fake
// device leaves its devices alone and shows as an offer (in vmha fence
// devices and vmha status, without its password); the operator's accept
// takes it and records it; set refuses allow_unsafe without the
// confirmation.
func TestOfferAcceptHandlers(t *testing.T) {
	n := handlerNode(t)
	offer := fakeLibvirt("h2")
	if rec := post(t, n.handleRegister, api.PathRegister, "", api.Register{Host: model.Host{Name: "h2", APIAddr: "127.0.0.1:2", MemoryMiB: 4096}, Fencing: offer}); rec.Code != 204 {
		t.Fatalf("re-registration: %d %s", rec.Code, rec.Body)
	}
	st := n.fsm.Copy()
	if !st.Config.Fencing["h2"].Same(h2Topo()) || st.Status.FenceOffers["h2"] == nil {
		t.Fatalf("fencing %s, offers %v", st.Config.Fencing["h2"].Describe(), st.Status.FenceOffers)
	}

	rec := httptest.NewRecorder()
	n.handleFenceDevices(rec, httptest.NewRequest("GET", api.PathFenceDevices, nil), nil)
	var rows []api.FenceDevice
	if err := json.Unmarshal(rec.Body.Bytes(), &rows); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rows {
		got = append(got, r.Host+"|"+r.Device+"|"+map[bool]string{true: "offered", false: "in use"}[r.Offered])
	}
	if want := "h1||in use,h2|bmc@h2 (ipmi 127.0.0.1:623)|in use,h2|lv@h2 (libvirt qemu+tcp://10.9.9.9/system)|offered"; strings.Join(got, ",") != want {
		t.Fatalf("rows %v\nwant %s", got, want)
	}

	s := buildStatus(n.fsm.Copy(), nil, "h1", "h1", 1, nil, nil, nil)
	if p := strings.Join(s.Problems, "\n"); !strings.Contains(p, "host h2 offers other fence devices than the cluster uses; vmha fence devices accept h2 uses them (offered at ") ||
		!strings.Contains(p, "lv@h2 (libvirt qemu+tcp://10.9.9.9/system); in use: bmc@h2 (ipmi 127.0.0.1:623))") {
		t.Fatalf("problems:\n%s", p)
	}

	// set: a device with allow_unsafe needs the confirmation.
	rec = post(t, n.handleFenceDevicesSet, api.PathFence+"/h2/devices", "h2", api.FenceDevicesSet{Fencing: withUnsafe(extTopo("h2")), RequestedBy: "alice@ws1"})
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), `"field": "allow_unsafe"`) {
		t.Fatalf("set without --allow-unsafe: %d %s", rec.Code, rec.Body)
	}

	rec = post(t, n.handleFenceDevicesAccept, api.PathFence+"/h2/devices/accept", "h2", api.FenceDevicesAccept{RequestedBy: "alice@ws1"})
	if rec.Code != 200 {
		t.Fatalf("accept: %d %s", rec.Code, rec.Body)
	}
	var hist model.FenceRecord
	if err := json.Unmarshal(rec.Body.Bytes(), &hist); err != nil {
		t.Fatal(err)
	}
	if hist.Action != model.FenceDevicesAccept || hist.Requester != `unauthenticated 127.0.0.1:1 [says "alice@ws1"]` || hist.Before != "bmc@h2 (ipmi 127.0.0.1:623)" || hist.After != "lv@h2 (libvirt qemu+tcp://10.9.9.9/system)" {
		t.Fatalf("record %+v", hist)
	}
	if st := n.fsm.Copy(); !st.Config.Fencing["h2"].Same(offer) || st.Status.FenceOffers["h2"] != nil {
		t.Fatal("accept did not take the offer")
	}
	rec = post(t, n.handleFenceDevicesAccept, api.PathFence+"/h2/devices/accept", "h2", api.FenceDevicesAccept{})
	if rec.Code != 409 {
		t.Fatalf("second accept: %d %s", rec.Code, rec.Body)
	}
}

// TestNeverSeenAlive: a registered host gossip never reported alive is
// neither device-checked nor declared lost and fenced by the coordinator;
// status says so. Once seen (one command for all such hosts), it is.
func TestNeverSeenAlive(t *testing.T) {
	n := handlerNode(t)
	n.cfg.Fencing.RetryInterval = time.Hour
	// h2 answers no probe: only gossip's word and registration count.
	mem := decide.Memory{LeaderSince: time.Now().Add(-time.Hour), Probes: map[string]decide.ProbeAnswer{"h2": {At: time.Now(), OK: false}}}

	st := n.fsm.Copy()
	if hosts, unseen := checkedHosts(st); len(hosts) != 0 || strings.Join(unseen, ",") != "h2" {
		t.Fatalf("checked %v, unseen %v", hosts, unseen)
	}
	s := buildStatus(st, nil, "h1", "h1", 1, nil, nil, nil)
	if p := strings.Join(s.Problems, "\n"); !strings.Contains(p, "host h2 has not been seen alive in gossip since it registered: its fence devices are not checked and the cluster does not fence it on its own; vmha fence h2 --yes still does") {
		t.Fatalf("problems:\n%s", p)
	}
	// Failed in gossip, or never there: not lost, not fenced.
	for _, m := range []decide.Members{members(map[string]decide.MemberStatus{"h2": decide.MemberFailed}), {}} {
		decideOn(t, n, m, mem)
		if hs := n.fsm.Copy().Status.Hosts["h2"]; hs.State != model.HostAlive {
			t.Fatalf("a host never seen alive became %s", hs.State)
		}
	}
	// Seen: h1 and h2 in one command; h3 is not alive.
	applyAll(t, n.fsm, &Command{Op: OpRegisterHost, Host: &model.Host{Name: "h3"}})
	alive := members(map[string]decide.MemberStatus{"h1": decide.MemberAlive, "h2": decide.MemberAlive, "h3": decide.MemberFailed})
	plan := decideOn(t, n, alive, mem)
	if got := plan.String(); !strings.HasPrefix(got, "commit host_seen h1,h2\n") {
		t.Fatalf("plan:\n%s", got)
	}
	after := n.fsm.Copy()
	if !after.Status.Hosts["h1"].SeenAlive || !after.Status.Hosts["h2"].SeenAlive || after.Status.Hosts["h3"].SeenAlive || after.Status.Hosts["h2"].SeenAliveAt.IsZero() {
		t.Fatalf("seen: %+v %+v %+v", after.Status.Hosts["h1"], after.Status.Hosts["h2"], after.Status.Hosts["h3"])
	}
	if hosts, _ := checkedHosts(after); strings.Join(hosts, ",") != "h2" {
		t.Fatalf("checked %v", hosts)
	}
	if s := buildStatus(after, nil, "h1", "h1", 1, nil, nil, nil); strings.Contains(strings.Join(s.Problems, "\n"), "host h2 has not been seen alive") {
		t.Fatal("the problem stays after the host was seen")
	}

	// A seen host that fails is lost (and would be fenced).
	plan = decideOn(t, n, members(map[string]decide.MemberStatus{"h1": decide.MemberAlive, "h2": decide.MemberFailed}), mem)
	if !strings.Contains(plan.String(), "fence h2 action=default") {
		t.Fatalf("a seen host that failed is not fenced:\n%s", plan)
	}
	if hs := n.fsm.Copy().Status.Hosts["h2"]; hs.State != model.HostLost {
		t.Fatalf("a seen host that failed is %s, want lost", hs.State)
	}
	// A removed and re-registered host is new again.
	applyAll(t, n.fsm, &Command{Op: OpRemoveHost, Name: "h3"}, &Command{Op: OpRegisterHost, Host: &model.Host{Name: "h3"}})
	if n.fsm.Copy().Status.Hosts["h3"].SeenAlive {
		t.Fatal("re-registered host counts as seen")
	}
}

// decideOn runs one leader pass on n's state and applies its commits to
// n's state machine (as the runner's proposals would).
func decideOn(t *testing.T, n *Node, m decide.Members, mem decide.Memory) decide.Plan {
	t.Helper()
	plan := decide.Pass(n.view(n.fsm.Copy(), m), &mem)
	for _, s := range plan.Steps {
		if s.Kind == decide.Commit {
			applyAll(t, n.fsm, s.Command)
		}
	}
	return plan
}
