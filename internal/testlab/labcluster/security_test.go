package labcluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/internal/gossipkey"
	"github.com/vmha/vmha/internal/testlab/testenv"
	"github.com/vmha/vmha/model"
	"github.com/vmha/vmha/pki"
)

// The security suite: each attack of the trust issue, run against real vmhad
// processes over mutual TLS with encrypted gossip, asserting that it is
// refused and that nothing changed.

// secureCluster starts 3 hosts with mutual TLS and a gossip key, and two
// VMs.
func secureCluster(t *testing.T) (*Cluster, string) {
	t.Helper()
	key, err := gossipkey.New()
	if err != nil {
		t.Fatal(err)
	}
	c := startClusterWith(t, Options{TLS: true, GossipKey: key})
	addVMs(t, c, "s1", "s2")
	return c, key
}

// certClient is an API client to host h's peer port holding a new
// certificate of the cluster CA with the given name and role.
func certClient(t *testing.T, c *Cluster, h *Host, name, role string) *api.Client {
	t.Helper()
	crt, key, err := pki.Issue(c.CADir(), name, role, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return filesClient(t, h, pki.Files{CA: filepath.Join(c.CADir(), pki.CACert), Cert: crt, Key: key})
}

func filesClient(t *testing.T, h *Host, f pki.Files) *api.Client {
	t.Helper()
	tc, err := f.Config()
	if err != nil {
		t.Fatal(err)
	}
	return api.NewTCPClient(h.APIAddr, 5*time.Second, tc)
}

// hostClient speaks with host from's own certificate.
func hostClient(t *testing.T, from, to *Host) *api.Client {
	t.Helper()
	return filesClient(t, to, pki.Files{CA: filepath.Join(from.Dir, "ca.crt"), Cert: filepath.Join(from.Dir, "tls.crt"), Key: filepath.Join(from.Dir, "tls.key")})
}

// refused asserts err is an HTTP 403 whose message contains want.
func refused(t *testing.T, what string, err error, want string) {
	t.Helper()
	var se *api.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusForbidden || !strings.Contains(se.Error(), want) {
		t.Fatalf("%s: %v; want 403 containing %q", what, err, want)
	}
}

// stateOf is the parts of the cluster's state an attack must not change.
func stateOf(t *testing.T, c *Cluster) string {
	t.Helper()
	s := mustStatus(t, c)
	var b strings.Builder
	for _, h := range s.Hosts {
		fmt.Fprintf(&b, "%s %s %s fence=%s maint=%v;", h.Name, h.State, h.APIAddr, h.FenceDev, h.Maintenance != nil)
	}
	for _, v := range s.VMs {
		fmt.Fprintf(&b, "%s@%s=%s;", v.Name, v.Host, v.State)
	}
	fmt.Fprintf(&b, "voters=%v", s.Quorum.Voters)
	return b.String()
}

func TestSecurityIdentityAndRoles(t *testing.T) {
	c, gossipKey := secureCluster(t)
	ctx := context.Background()
	s := mustStatus(t, c)
	leader := c.Host(s.Leader)
	var others []*Host
	for _, h := range c.Hosts {
		if h.Name != s.Leader {
			others = append(others, h)
		}
	}
	h2, h3 := others[0], others[1]
	before := stateOf(t, c)
	if sec := s.Security; sec.Insecure || !sec.MutualTLS || !sec.GossipEncrypted {
		t.Fatalf("a cluster with mutual TLS and a gossip key reports %+v", sec)
	}
	if m, err := leader.Metrics(); err != nil || !strings.Contains(m, "vmha_insecure 0") {
		t.Fatalf("metrics: %v, vmha_insecure 0 missing", err)
	}

	t.Run("no certificate, no plain HTTP", func(t *testing.T) {
		resp, err := (&http.Client{Timeout: 3 * time.Second}).Post("http://"+leader.APIAddr+api.PathFence+"/"+h3.Name, "application/json", strings.NewReader(`{}`))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 400 {
				t.Fatalf("plain HTTP fence answered %d", resp.StatusCode)
			}
		}
		noCert := &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the attacker's client
		if err := api.NewTCPClient(leader.APIAddr, 3*time.Second, noCert).Do(ctx, "POST", api.PathFence+"/"+h3.Name, api.FenceRequest{}, nil, nil); err == nil {
			t.Fatal("a client without a certificate fenced a host")
		}
	})

	t.Run("read-only certificate reads and changes nothing", func(t *testing.T) {
		ro := certClient(t, c, leader, "auditor", pki.RoleReadOnly)
		if _, err := ro.Status(ctx); err != nil {
			t.Fatalf("read-only status: %v", err)
		}
		refused(t, "read-only fence", ro.Do(ctx, "POST", api.PathFence+"/"+h3.Name, api.FenceRequest{}, nil, nil), "needs the operator role")
		refused(t, "read-only fence-policy", ro.Do(ctx, "POST", api.PathFencePolicy, api.FencePolicy{AcknowledgeDoubleRunRisk: true, RequestedBy: "x"}, nil, nil), "needs the operator role")
		refused(t, "read-only vm remove", ro.Do(ctx, "DELETE", api.PathVMs+"/s1", nil, nil, nil), "needs the operator role")
	})

	t.Run("a host certificate is not an operator's", func(t *testing.T) {
		hc := hostClient(t, h2, leader)
		refused(t, "host fences", hc.Do(ctx, "POST", api.PathFence+"/"+h3.Name, api.FenceRequest{}, nil, nil), "needs the operator role")
		refused(t, "host removes a VM", hc.Do(ctx, "DELETE", api.PathVMs+"/s1", nil, nil, nil), "needs the operator role")
	})

	t.Run("a host speaks only for itself", func(t *testing.T) {
		hc := hostClient(t, h2, leader)
		forged := model.Observation{Host: h3.Name, VMs: map[string]model.VMObserve{"s1": {State: "crashed"}, "s2": {State: "crashed"}}}
		refused(t, "observation for another host", hc.Do(ctx, "POST", api.PathObserve, forged, nil, nil), "speaks only for itself")
		reg := api.Register{Host: model.Host{Name: h3.Name, APIAddr: "127.0.0.1:1"}}
		refused(t, "registration as another host", hc.Do(ctx, "POST", api.PathRegister, reg, nil, nil), "speaks only for itself")
		reg.Host.Name = "host9"
		refused(t, "registration of a made-up host", hc.Do(ctx, "POST", api.PathRegister, reg, nil, nil), "speaks only for itself")
		// A host may not pass itself off as an operator by forwarding.
		h := http.Header{}
		h.Set(api.HeaderForwarded, h3.Name)
		refused(t, "forwarding in another host's name", hc.Do(ctx, "POST", api.PathFence+"/"+h3.Name, api.FenceRequest{}, nil, h), "forwards in the name of")
		h.Set(api.HeaderForwarded, h2.Name)
		h.Set("X-Vmha-Principal", h3.Name)
		h.Set("X-Vmha-Principal-Role", "host")
		refused(t, "forwarding a host principal", hc.Do(ctx, "POST", api.PathObserve, forged, nil, h), "only operators' and read-only requests are forwarded")
	})

	t.Run("fence configuration from a peer runs nothing", func(t *testing.T) { peerFenceConfigRunsNothing(t, c, h2, leader) })

	// Every refusal above changed nothing (the offer changed no device).
	if after := stateOf(t, c); after != before {
		t.Fatalf("refused attacks changed the state:\nbefore %s\nafter  %s", before, after)
	}

	t.Run("the recorded actor is the authenticated one", func(t *testing.T) { recordedActorIsAuthenticated(t, c, h2, h3) })

	t.Run("a stranger with the gossip key but no certificate of the cluster never votes", func(t *testing.T) { strangerNeverVotes(t, c, leader, gossipKey) })
}

// peerFenceConfigRunsNothing registers h2 with fence devices that would
// run commands on the leader (refused, nothing runs), then with a valid
// other topology (only an offer).
func peerFenceConfigRunsNothing(t *testing.T, c *Cluster, h2, leader *Host) {
	ctx := context.Background()
	hc := hostClient(t, h2, leader)
	pwned := filepath.Join(t.TempDir(), "pwned")
	me := hostOf(mustStatus(t, c), h2.Name)
	self := model.Host{Name: h2.Name, APIAddr: me.APIAddr, MemoryMiB: me.MemoryMiB, CPUs: me.CPUs}
	for _, tc := range []struct {
		name string
		dev  model.FenceDevice
		want string
	}{
		{"fence_virsh with ssh_path", model.FenceDevice{Name: "d@" + h2.Name, Type: "agent", Params: map[string]string{
			"agent": "fence_virsh", "ip": "127.0.0.1", "ssh_path": "/bin/sh -c 'touch " + pwned + "' --"}}, "ssh_path"},
		{"libvirt over ext", model.FenceDevice{Name: "d@" + h2.Name, Type: "libvirt", Params: map[string]string{
			"uri": "qemu+ext:///system?command=/bin/touch%20" + pwned}}, "ext"},
		{"allow_unsafe from a host", model.FenceDevice{Name: "d@" + h2.Name, Type: "agent", AllowUnsafe: true, Params: map[string]string{
			"agent": "/bin/sh", "ip": "127.0.0.1"}}, "allow_unsafe"},
	} {
		reg := api.Register{Host: self, Fencing: &model.FenceTopology{Devices: []model.FenceDevice{tc.dev}, Levels: [][]string{{tc.dev.Name}}}}
		err := hc.Do(ctx, "POST", api.PathRegister, reg, nil, nil)
		var se *api.StatusError
		if !errors.As(err, &se) || se.Code != http.StatusBadRequest || !strings.Contains(se.Error(), tc.want) {
			t.Fatalf("%s: %v; want 400 naming %q", tc.name, err, tc.want)
		}
	}
	// A valid but different topology from the host itself is only an
	// offer: the devices the cluster fences it with stay.
	offer := model.FenceDevice{Name: "other@" + h2.Name, Type: "agent", Params: map[string]string{"agent": "fence_ipmilan", "ip": "127.0.0.1", "ipport": "1", "username": "x"}, Password: "pw"}
	reg := api.Register{Host: self, Fencing: &model.FenceTopology{Devices: []model.FenceDevice{offer}, Levels: [][]string{{offer.Name}}}}
	if err := hc.Do(ctx, "POST", api.PathRegister, reg, nil, nil); err != nil {
		t.Fatalf("re-registration with other devices: %v", err)
	}
	s := mustStatus(t, c)
	if !hasProblem(s, h2.Name+" offers other fence devices") {
		t.Fatalf("the offer is not shown: %v", s.Problems)
	}
	time.Sleep(3 * time.Second) // device checks ran meanwhile
	if _, err := os.Stat(pwned); err == nil {
		t.Fatal("a peer's fence configuration ran a command on the leader")
	}
}

// recordedActorIsAuthenticated sets h3's maintenance with an operator
// certificate through h2, and over h2's socket, each claiming another name:
// the recorded actor is the authenticated one.
func recordedActorIsAuthenticated(t *testing.T, c *Cluster, h2, h3 *Host) {
	ctx := context.Background()
	op := certClient(t, c, h2, "alice", pki.RoleOperator)
	if err := op.Do(ctx, "POST", api.PathHostAction+"/"+h3.Name+"/maintenance", api.HostOp{On: true, RequestedBy: "root"}, nil, nil); err != nil {
		t.Fatal(err)
	}
	by := hostOf(mustStatus(t, c), h3.Name).Maintenance
	if by == nil || !strings.HasPrefix(by.By, "alice (operator certificate) via "+h2.Name) || !strings.Contains(by.By, `[says "root"]`) {
		t.Fatalf("maintenance recorded as %+v; want alice's certificate (via %s), the claimed root only as a comment", by, h2.Name)
	}
	if err := op.Do(ctx, "POST", api.PathHostAction+"/"+h3.Name+"/maintenance", api.HostOp{On: false}, nil, nil); err != nil {
		t.Fatal(err)
	}
	// The local socket: the kernel's word for who the user is.
	cmd := exec.Command(filepath.Join(binDir, "vmha"), "--socket", h2.Socket, "host", "maintenance", h3.Name)
	cmd.Env = append(os.Environ(), "SUDO_USER=mallory")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("maintenance over the socket: %v %s", err, out)
	}
	by = hostOf(mustStatus(t, c), h3.Name).Maintenance
	want := fmt.Sprintf("root (uid %d) on %s", syscall.Getuid(), h2.Name)
	if by == nil || !strings.HasPrefix(by.By, want) || !strings.Contains(by.By, `[says "mallory`) {
		t.Fatalf("maintenance over the socket recorded as %+v; want %q first, mallory only as a comment", by, want)
	}
	if out, err := c.vmha(h2, "host", "maintenance", h3.Name, "--off"); err != nil {
		t.Fatalf("%v %s", err, out)
	}
}

// strangerNeverVotes starts a vmhad that has the gossip key but no
// certificate of the cluster: it joins gossip, but never registers or
// votes.
func strangerNeverVotes(t *testing.T, c *Cluster, leader *Host, gossipKey string) {
	ctx := context.Background()
	stranger := startStranger(t, c, gossipKey)
	// It joins gossip (it has the key) ...
	if _, err := c.WaitFor(ctx, 30*time.Second, "the stranger in gossip", func(s *api.Status) bool {
		return gossipMembers(t, c) == 4
	}); err != nil {
		t.Fatal(err)
	}
	// ... but over several coordinator passes it neither registers
	// nor gets a raft vote.
	time.Sleep(8 * time.Second)
	s := mustStatus(t, c)
	if slices.Contains(s.Quorum.Voters, "stranger") || hostOf(s, "stranger").Name != "" {
		t.Fatalf("the stranger became a voter or a host: voters %v", s.Quorum.Voters)
	}
	if len(s.Quorum.Voters) != 3 {
		t.Fatalf("voters %v, want the three hosts", s.Quorum.Voters)
	}
	out, err := c.vmha(leader, "host", "remove", "stranger", "--yes")
	if err == nil || !strings.Contains(string(out), "rotate the key") {
		t.Fatalf("host remove of a live stranger: %v %s", err, out)
	}
	_ = stranger.Process.Kill()
	_, _ = stranger.Process.Wait()
}

// gossipMembers counts the gossip members (the keyring listing asks every
// member).
func gossipMembers(t *testing.T, c *Cluster) int {
	t.Helper()
	var keys api.GossipKeys
	if err := c.Alive()[0].Client().Do(context.Background(), "GET", api.PathGossipKeys, nil, &keys, nil); err != nil {
		t.Fatal(err)
	}
	return keys.Members
}

// startStranger starts a vmhad that has the cluster's gossip key but a
// certificate of another CA, joined to host1's gossip.
func startStranger(t *testing.T, c *Cluster, gossipKey string) *exec.Cmd {
	t.Helper()
	dir := t.TempDir()
	other := filepath.Join(dir, "ca")
	if err := pki.InitCA(other, "evil"); err != nil {
		t.Fatal(err)
	}
	crt, key, err := pki.Issue(other, "stranger", pki.RoleHost, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ports, err := testenv.FreePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	kf := filepath.Join(dir, "gossip.key")
	if err := os.WriteFile(kf, []byte(gossipKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`node_name: stranger
bind_addr: 127.0.0.1
ports: {serf: %d, raft: %d, api: %d}
join: [%s]
bootstrap_expect: 3
data_dir: %s
socket: %s
hypervisor_uri: test:///default
tls: {ca_file: %s, cert_file: %s, key_file: %s}
gossip:
  encrypt_key_file: %s
`, ports[0], ports[1], ports[2], c.Hosts[0].SerfAddr, filepath.Join(dir, "data"), filepath.Join(dir, "s.sock"),
		filepath.Join(other, pki.CACert), crt, key, kf)
	p := filepath.Join(dir, "vmhad.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "vmhad.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(binDir, "vmhad"), "--config", p)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
		logf.Close()
	})
	return cmd
}
