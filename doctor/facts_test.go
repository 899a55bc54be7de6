package doctor

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/config"
	"github.com/vmha/vmha/internal/gossipkey"
	"github.com/vmha/vmha/pki"
)

func TestLibvirtDialAddr(t *testing.T) {
	for _, tc := range []struct{ uri, want, err string }{
		{"qemu+tcp://10.0.0.2/system", "10.0.0.2:16509", ""},
		{"qemu+tcp://127.0.0.1:16600/system", "127.0.0.1:16600", ""},
		{"qemu+tls://host2.example/system", "host2.example:16514", ""},
		{"qemu://host2.example/system", "host2.example:16514", ""},
		{"qemu+ssh://root@host2/system", "host2:22", ""},
		{"xen+libssh2://host2/", "host2:22", ""},
		{"qemu+tcp://[fd00::2]/system", "[fd00::2]:16509", ""},
		{"qemu:///system", "", "names no remote host"},
		{"test:///default", "", "names no remote host"},
		{"qemu+unix:///system", "", "names no remote host"},
		{"qemu+ext://host2/system?command=/bin/sh", "", "names no remote host"},
		{"qemu+pigeon://host2/system", "", "unknown libvirt transport"},
		{"host2", "", "not a libvirt URI"},
	} {
		got, err := LibvirtDialAddr(tc.uri)
		if got != tc.want || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: %q, %v; want %q, %q", tc.uri, got, err, tc.want, tc.err)
		}
	}
}

func TestMigrationDialAddr(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{"tcp://10.0.0.2", "10.0.0.2:49152"},
		{"tcp://10.0.0.2:49200", "10.0.0.2:49200"},
		{"tcp://host2.example/", "host2.example:49152"},
		{"tcp://[fd00::2]", "[fd00::2]:49152"},
		{"udp://10.0.0.2", ""},
		{"tcp://", ""},
	} {
		got, err := MigrationDialAddr(tc.addr)
		if got != tc.want || (err == nil) != (tc.want != "") {
			t.Errorf("%s: %q, %v; want %q", tc.addr, got, err, tc.want)
		}
	}
}

// Dial against real sockets: a listening libvirt port answers; a closed
// port refuses, which is a failure for libvirt but proof of reachability
// for a migration address (its port opens during a migration only).
func TestDial(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	open := l.Addr().String()
	l2, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := l2.Addr().String()
	_ = l2.Close()
	ctx := context.Background()
	if r := Dial(ctx, "h2", "libvirt", "qemu+tcp://"+open+"/system", time.Second); !r.OK || r.Dialed != open {
		t.Fatalf("open libvirt port: %+v", r)
	}
	if r := Dial(ctx, "h2", "libvirt", "qemu+tcp://"+closed+"/system", time.Second); r.OK || !strings.Contains(r.Error, "refused") {
		t.Fatalf("closed libvirt port: %+v", r)
	}
	if r := Dial(ctx, "h2", "migration", "tcp://"+closed, time.Second); !r.OK {
		t.Fatalf("a refusal proves the migration address reachable: %+v", r)
	}
	if r := Dial(ctx, "h2", "libvirt", "qemu:///system", time.Second); r.OK || r.Dialed != "" {
		t.Fatalf("a local URI: %+v", r)
	}
}

func TestReadKeyring(t *testing.T) {
	dir := t.TempDir()
	k1, _ := gossipkey.New()
	k2, _ := gossipkey.New()
	b, _ := json.Marshal([]string{k1, k2})
	p := filepath.Join(dir, "serf.keyring")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	fps, err := ReadKeyring(p)
	if err != nil || len(fps) != 2 {
		t.Fatalf("%v %v", fps, err)
	}
	raw, _ := gossipkey.Decode(k1)
	if fps[0] != gossipkey.Fingerprint(raw) || strings.Contains(strings.Join(fps, ""), k1) {
		t.Fatalf("fingerprints %v: the primary first, never a key", fps)
	}
	_ = os.WriteFile(p, []byte(`{"not":"a list"}`), 0o600)
	if _, err := ReadKeyring(p); err == nil {
		t.Fatal("a bad keyring file is an error")
	}
}

func TestReadCerts(t *testing.T) {
	dir := t.TempDir()
	if err := pki.InitCA(dir, "lab"); err != nil {
		t.Fatal(err)
	}
	cert, key, err := pki.Issue(dir, "h1", pki.RoleHost, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	certs := ReadCerts(pki.Files{CA: filepath.Join(dir, "ca.crt"), Cert: cert, Key: key})
	if len(certs) != 2 || certs[0].Kind != "cert" || certs[0].Subject != "h1" || certs[1].Kind != "ca" || certs[0].NotAfter.Before(time.Now()) {
		t.Fatalf("%+v", certs)
	}
	got := Certs("h1", true, certs, time.Now())
	for _, c := range got {
		if c.Status != api.DoctorOK {
			t.Fatalf("fresh certificates: %+v", c)
		}
	}
	bad := ReadCerts(pki.Files{Cert: filepath.Join(dir, "missing.crt")})
	if len(bad) != 1 || bad[0].Error == "" {
		t.Fatalf("%+v", bad)
	}
}

func TestSettings(t *testing.T) {
	var d config.Daemon
	d.Admission, d.Migration.MaxPerTarget = "auto", 2
	d.Alerts = []config.Alert{{Name: "chat", Webhook: "https://hooks.example.com/secret-path", TokenFile: "/etc/vmha/token"}}
	m1, h1 := Settings(&d)
	if m1["migration.max_per_target"] != "2" || m1["doctor.clock_warn"] != "500ms" || !strings.HasPrefix(m1["alerts"], "chat ") {
		t.Fatalf("%v", m1)
	}
	for _, v := range m1 {
		if strings.Contains(v, "secret-path") || strings.Contains(v, "token") {
			t.Fatalf("a webhook URL or token file in the settings: %v", m1)
		}
	}
	d.Migration.MaxPerTarget = 3
	if _, h2 := Settings(&d); h2 == h1 {
		t.Fatal("a changed cap must change the hash")
	}
	d.NodeName, d.BindAddr = "other", "10.0.0.9"
	d.Migration.MaxPerTarget = 2
	if _, h3 := Settings(&d); h3 != h1 {
		t.Fatal("host-specific settings are not part of the hash")
	}
	if v := BuildVersion(); v == "" {
		t.Fatal("no version")
	}
}
