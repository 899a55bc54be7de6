package pkgtest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmha/vmha/internal/testlab/testenv"
)

// fakeAddgroup stands in for adduser's addgroup inside the private root
// (busybox-static has none): it records its arguments and adds the group
// to /etc/group as addgroup --system does, refusing what the postinst
// must not ask.
const fakeAddgroup = `#!/bin/sh
echo "$*" >>/addgroup.log
if [ $# != 2 ] || [ "$1" != --system ]; then echo "addgroup: want --system GROUP, got: $*" >&2; exit 1; fi
if grep -q "^$2:" /etc/group 2>/dev/null; then echo "addgroup: the group '$2' already exists" >&2; exit 1; fi
mkdir -p /etc
echo "$2:x:999:" >>/etc/group
`

// checkGroup checks that the vmha group is in the root's /etc/group and
// what the maintainer scripts asked addgroup since the last check.
func checkGroup(t *testing.T, root, step string, wantCalls int) {
	t.Helper()
	log := filepath.Join(root, "addgroup.log")
	b, err := os.ReadFile(log)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	_ = os.Remove(log)
	if got := strings.Count(string(b), "--system vmha\n"); got != wantCalls || len(b) != wantCalls*len("--system vmha\n") {
		t.Errorf("%s: the maintainer scripts ran addgroup %q, want --system vmha %d times", step, b, wantCalls)
	}
	group, err := os.ReadFile(filepath.Join(root, "etc/group"))
	n := 0
	for _, l := range strings.Split(string(group), "\n") {
		if strings.HasPrefix(l, "vmha:") {
			n++
		}
	}
	if err != nil || n != 1 {
		t.Errorf("%s: /etc/group (%v) should hold the group vmha once:\n%s", step, err, group)
	}
}

// checkUnits runs systemd-analyze verify on the installed units, which
// needs no running systemd. It checks ExecStart's program on the running
// system and the Documentation= pages with man, so the units are verified
// with /usr/sbin/vmhad turned into the private root's and man reading the
// package's pages.
func checkUnits(t *testing.T, root string) {
	analyze := testenv.NeedCommand(t, "systemd-analyze")
	testenv.NeedCommand(t, "man")
	dir := t.TempDir()
	var units []string
	for _, u := range []string{"vmhad.service", "vmhad-witness.service"} {
		b := readFile(t, filepath.Join(root, "usr/lib/systemd/system", u))
		p := filepath.Join(dir, u)
		writeFile(t, p, strings.ReplaceAll(string(b), "/usr/sbin/vmhad", filepath.Join(root, "usr/sbin/vmhad")), 0o644)
		units = append(units, p)
	}
	cmd := exec.Command(analyze, append([]string{"verify"}, units...)...)
	cmd.Env = append(os.Environ(), "MANPATH="+filepath.Join(root, "usr/share/man"), "SYSTEMD_LOG_COLOR=0")
	if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify of the installed units: %v\n%s", err, out)
	}
}

// checkStarts starts the installed vmhad from the private root (not
// chrooted: it needs libvirt's library) as a one-host cluster on loopback
// with libvirt's test driver, waits until the installed vmha status
// answers on its socket, and stops it with SIGTERM, as systemd does.
func checkStarts(t *testing.T, root string) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "run", "vmhad.sock")
	cfg := fmt.Sprintf(`node_name: pkghost
bind_addr: 127.0.0.1
bootstrap_expect: 1
hypervisor_uri: test:///default
data_dir: %s
socket: %s
ports: {serf: %d, raft: %d, api: %d}
`, filepath.Join(dir, "data"), sock, testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t))
	conf := filepath.Join(dir, "vmhad.yaml")
	writeFile(t, conf, cfg, 0o600)

	var log bytes.Buffer
	d := exec.Command(filepath.Join(root, "usr/sbin/vmhad"), "--config", conf)
	d.Stdout, d.Stderr = &log, &log
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- d.Wait() }()
	stopped := false
	defer func() {
		if !stopped {
			_ = d.Process.Kill()
			t.Logf("vmhad killed: %v", <-exited)
		}
	}()

	// vmha status answers once the daemon has claimed its socket and
	// elected itself; the daemon is another process, so this polls.
	vmha := filepath.Join(root, "usr/bin/vmha")
	deadline := time.Now().Add(30 * time.Second)
	var status []byte
	for {
		var err error
		status, err = exec.Command(vmha, "--socket", sock, "--timeout", "2s", "status").CombinedOutput()
		if err == nil && bytes.Contains(status, []byte("pkghost")) {
			break
		}
		select {
		case err := <-exited:
			stopped = true
			t.Fatalf("the installed vmhad exited before vmha status answered: %v\n%s", err, log.String())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the installed vmha status did not answer within 30s: %s\nvmhad:\n%s", status, log.String())
		}
	}

	if err := d.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Errorf("vmhad after SIGTERM: %v\n%s", err, log.String())
		}
	case <-time.After(30 * time.Second):
		t.Errorf("vmhad did not stop within 30s of SIGTERM (the unit's TimeoutStopSec)\n%s", log.String())
	}
	if _, err := os.Lstat(sock); err == nil {
		t.Errorf("vmhad left its socket %s after a clean stop", sock)
	}
}
