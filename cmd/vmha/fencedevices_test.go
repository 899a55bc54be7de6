package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/model"
)

const specPw = "Spec-Pw-4411"

// TestFenceDevicesCommands: set reads the spec (strictly), reads its
// passwords here and sends them with "@HOST" names; allow_unsafe needs
// --allow-unsafe, a change needs --yes without a terminal; accept posts to
// the host's accept path; the answers print as text or JSON, and a refusal
// by the cluster exits 1. vmha fence devices shows offers.
func TestFenceDevicesCommands(t *testing.T) {
	var bodies []string
	rec := model.FenceRecord{Host: "host3", Action: model.FenceDevicesSet, Requester: "alice@ws1", OK: true,
		Before: "bmc@host3 (ipmi 10.0.0.3:623)", After: "pdu@host3 (fence_apc_snmp 10.0.0.50)"}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+api.PathFence+"/{host}/devices", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies = append(bodies, string(b))
		if r.PathValue("host") == "host9" {
			w.WriteHeader(http.StatusNotFound)
			_ = json.NewEncoder(w).Encode(api.Error{Error: `unknown host "host9"`})
			return
		}
		_ = json.NewEncoder(w).Encode(rec)
	})
	mux.HandleFunc("POST "+api.PathFence+"/{host}/devices/accept", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies = append(bodies, r.PathValue("host")+" "+string(b))
		a := rec
		a.Action = model.FenceDevicesAccept
		_ = json.NewEncoder(w).Encode(a)
	})
	mux.HandleFunc("GET "+api.PathFenceDevices, func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode([]api.FenceDevice{
			{Host: "host3", Level: 1, Device: "bmc@host3 (ipmi 10.0.0.3:623)"},
			{Host: "host3", Level: 1, Device: "bmc@host3 (ipmi 10.0.0.3:623)", Offered: true, OfferedAt: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC), Note: "new password for bmc@host3"},
		})
	})
	sock := fakeDaemon(t, mux)
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pdu.pw")
	if err := os.WriteFile(pwFile, []byte(specPw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", `action: reboot
devices:
  - name: pdu
    type: agent
    params: {agent: fence_apc_snmp, ip: 10.0.0.50, plug: 3, ipport: 161}
    password_file: `+pwFile+`
levels: [[pdu]]
`)
	unsafe := write("unsafe.yaml", `devices:
  - name: mgmt
    type: libvirt
    allow_unsafe: true
    params: {uri: "qemu+ssh://root@mgmt/system"}
levels: [[mgmt]]
`)
	typo := write("typo.yaml", "devices: [{name: p, type: agent, params: {agent: fence_apc}, passwd_file: /x}]\nlevels: [[p]]\n")
	noLevels := write("nolevels.yaml", "devices: [{name: p, type: agent, params: {agent: fence_apc}}]\n")

	for _, tt := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"set without --file", []string{"fence", "devices", "set", "host3", "--yes"}, 2, "--file SPEC is required"},
		{"set without --yes", []string{"fence", "devices", "set", "host3", "--file", good}, 2, "Add --yes"},
		{"set with a mistyped key", []string{"fence", "devices", "set", "host3", "--file", typo, "--yes"}, 2, "passwd_file"},
		{"set without levels", []string{"fence", "devices", "set", "host3", "--file", noLevels, "--yes"}, 2, "needs devices and levels"},
		{"set a missing file", []string{"fence", "devices", "set", "host3", "--file", filepath.Join(dir, "none.yaml"), "--yes"}, 2, "no such file"},
		{"allow_unsafe without --allow-unsafe", []string{"fence", "devices", "set", "host3", "--file", unsafe, "--yes"}, 2, "device mgmt@host3 sets allow_unsafe"},
		{"set", []string{"fence", "devices", "set", "host3", "--file", good, "--yes"}, 0, "before: bmc@host3 (ipmi 10.0.0.3:623)\n  after:  pdu@host3"},
		{"set unsafe", []string{"fence", "devices", "set", "host3", "--file", unsafe, "--allow-unsafe", "--yes", "-o", "json"}, 0, `"action": "devices-set"`},
		{"set on an unknown host", []string{"fence", "devices", "set", "host9", "--file", good, "--yes"}, 1, `unknown host "host9"`},
		{"accept without --yes", []string{"fence", "devices", "accept", "host3"}, 2, "Add --yes"},
		{"accept", []string{"fence", "devices", "accept", "host3", "--yes"}, 0, "(devices-accept)"},
		{"devices lists offers", []string{"fence", "devices"}, 0, "OFFERED at "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCLI(append([]string{"--socket", sock}, tt.args...)...)
			if code != tt.code || !strings.Contains(out+errOut, tt.want) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d and %q", code, out, errOut, tt.code, tt.want)
			}
			if strings.Contains(out+errOut, specPw) {
				t.Fatal("the password was printed")
			}
		})
	}
	if len(bodies) != 4 {
		t.Fatalf("the daemon got %d requests, want 4 (only the well-formed ones): %v", len(bodies), bodies)
	}
	var set api.FenceDevicesSet
	if err := json.Unmarshal([]byte(bodies[0]), &set); err != nil {
		t.Fatal(err)
	}
	d := set.Fencing.Devices[0]
	if d.Name != "pdu@host3" || d.Params["plug"] != "3" || d.Params["ipport"] != "161" || string(d.Password) != specPw || set.AllowUnsafe ||
		set.Fencing.Action != "reboot" || set.Fencing.Levels[0][0] != "pdu@host3" || set.RequestedBy == "" {
		t.Fatalf("set request %s", bodies[0])
	}
	if err := json.Unmarshal([]byte(bodies[1]), &set); err != nil || !set.AllowUnsafe || !set.Fencing.Devices[0].AllowUnsafe {
		t.Fatalf("unsafe set request %s", bodies[1])
	}
	if !strings.HasPrefix(bodies[3], "host3 ") {
		t.Fatalf("accept request %s", bodies[3])
	}
}
