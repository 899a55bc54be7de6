package pkgtest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/vmha/vmha/internal/testlab/testenv"
)

// systemPath is the PATH of dpkg and of the maintainer scripts it runs
// chrooted in the private root (where /bin holds busybox and the fake
// systemctl).
const systemPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// fakeSystemctl stands in for systemctl inside the private root: it
// records its arguments, and says no unit is active.
const fakeSystemctl = `#!/bin/sh
echo "$*" >>/systemctl.log
[ "$1" = is-active ] && exit 3
exit 0
`

// unitsArgs are the units the maintainer scripts name to systemctl.
const unitsArgs = "vmhad.service vmhad-witness.service"

// TestDebianPackage builds the package with scripts/deb.sh (what make deb
// runs) and takes it through the life an operator gives it, with the real
// dpkg on a private root (dpkg --root: its own database, the maintainer
// scripts run chrooted into it with a static busybox as /bin/sh and a fake
// systemctl that records what it is asked):
//
//   - install while "systemd runs": files and modes, /var/lib/vmha 0700,
//     the vmha group (a fake addgroup), only systemctl daemon-reload
//     (vmhad never enabled or started), the installed vmha and vmhad run
//     and print the package's version, the man pages render, the units
//     pass systemd-analyze verify, and the installed vmhad starts (not
//     chrooted) and answers the installed vmha status;
//   - the operator edits the config, the package is installed again: the
//     edit stays;
//   - dpkg -r: the programs go, the config (a conffile) stays, a running
//     vmhad is stopped;
//   - dpkg -P: the config goes, /var/lib/vmha stays;
//   - install again with systemd not running: no systemctl call at all, and
//     a 0755 /var/lib/vmha is made 0700.
func TestDebianPackage(t *testing.T) {
	t.Parallel()
	for _, c := range []string{"dpkg", "dpkg-deb", "dpkg-query", "dpkg-shlibdeps"} {
		testenv.NeedCommand(t, c)
	}
	if os.Geteuid() != 0 {
		testenv.Missing(t, "dpkg --root runs the maintainer scripts chrooted, which needs root")
	}
	busybox := staticBusybox(t)
	repo := repoRoot(t)
	work := t.TempDir()

	deb := buildDeb(t, repo, work)
	depends := checkControl(t, deb)
	root := privateRoot(t, work, busybox, depends)

	// Install, with systemd running.
	if err := os.MkdirAll(filepath.Join(root, "run/systemd/system"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := dpkg(t, root, "-i", deb)
	if !strings.Contains(out, "not enabled or started") {
		t.Errorf("the install does not tell the operator that vmhad is not started:\n%s", out)
	}
	checkSystemctl(t, root, "install", []string{"daemon-reload"})
	checkInstalled(t, repo, root)
	checkStatus(t, root, "install ok installed")
	t.Run("programs run", func(t *testing.T) { checkPrograms(t, root) })
	t.Run("programs carry the package's version", func(t *testing.T) { checkVersion(t, repo, root) })
	checkGroup(t, root, "install", 1)
	t.Run("units verify", func(t *testing.T) { checkUnits(t, root) })
	t.Run("vmhad starts", func(t *testing.T) { checkStarts(t, root) })
	t.Run("man pages render", func(t *testing.T) { checkManPages(t, root) })

	// The operator edits the config; installing the package again keeps it.
	conf := filepath.Join(root, "etc/vmha/vmhad.yaml")
	edited := append(readFile(t, conf), "# the operator's edit\n"...)
	if err := os.WriteFile(conf, edited, 0o640); err != nil {
		t.Fatal(err)
	}
	dpkg(t, root, "-i", deb)
	checkSystemctl(t, root, "reinstall", []string{"daemon-reload", "is-active --quiet " + unitsArgs})
	if got := readFile(t, conf); !bytes.Equal(got, edited) {
		t.Errorf("reinstalling replaced the operator's %s", conf)
	}
	checkGroup(t, root, "reinstall", 0)

	// Remove: the programs go, the conffile stays.
	dpkg(t, root, "-r", "vmha")
	checkSystemctl(t, root, "remove", []string{"stop " + unitsArgs, "daemon-reload"})
	checkStatus(t, root, "deinstall ok config-files")
	for _, p := range []string{"usr/bin/vmha", "usr/sbin/vmhad", "usr/lib/systemd/system/vmhad.service", "usr/share/man/man8/vmhad.8.gz"} {
		if _, err := os.Lstat(filepath.Join(root, p)); err == nil {
			t.Errorf("dpkg -r left /%s", p)
		}
	}
	if got := readFile(t, conf); !bytes.Equal(got, edited) {
		t.Errorf("dpkg -r changed or removed the config %s", conf)
	}

	// Purge, systemd not running: the conffile goes, the state stays.
	if err := os.RemoveAll(filepath.Join(root, "run/systemd")); err != nil {
		t.Fatal(err)
	}
	dpkg(t, root, "-P", "vmha")
	checkSystemctl(t, root, "purge", nil)
	if _, err := os.Lstat(conf); err == nil {
		t.Errorf("dpkg -P left the config %s", conf)
	}
	if _, err := os.Stat(filepath.Join(root, "var/lib/vmha")); err != nil {
		t.Errorf("dpkg -P removed /var/lib/vmha (the cluster state): %v", err)
	}
	if out, err := dpkgCmd(root, "-s", "vmha").CombinedOutput(); err == nil {
		t.Errorf("vmha still known after dpkg -P:\n%s", out)
	}

	// Install again, systemd not running: no systemctl at all, and the
	// postinst makes an existing, too open /var/lib/vmha 0700.
	if err := os.Chmod(filepath.Join(root, "var/lib/vmha"), 0o755); err != nil {
		t.Fatal(err)
	}
	dpkg(t, root, "-i", deb)
	checkSystemctl(t, root, "install without systemd", nil)
	checkGroup(t, root, "install after purge", 0)
	checkMode(t, root, "var/lib/vmha", fs.ModeDir|0o700)
}

// staticBusybox is the path of a statically linked busybox (Debian's
// busybox-static), which runs in a chroot with no libraries.
func staticBusybox(t *testing.T) string {
	t.Helper()
	p := testenv.NeedCommand(t, "busybox")
	f, err := elf.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			testenv.Missing(t, p+" is linked dynamically: the package test needs busybox-static")
		}
	}
	return p
}

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = parent
	}
}

// binDir holds vmha and vmhad, built once for the tests of the package.
var binDir struct {
	once sync.Once
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir.dir != "" {
		_ = os.RemoveAll(binDir.dir)
	}
	os.Exit(code)
}

// buildBinaries builds vmha and vmhad once, with make binaries (make
// build's go build, with its version stamp).
func buildBinaries(t *testing.T, repo string) string {
	t.Helper()
	binDir.once.Do(func() {
		if binDir.dir, binDir.err = os.MkdirTemp("", "vmha-pkgtest-bin"); binDir.err != nil {
			return
		}
		if _, err := exec.LookPath("make"); err != nil {
			binDir.err = err
			return
		}
		cmd := exec.Command("make", "--no-print-directory", "binaries", "BIN="+binDir.dir)
		cmd.Dir = repo
		if out, err := cmd.CombinedOutput(); err != nil {
			binDir.err = fmt.Errorf("make binaries: %w\n%s", err, out)
		}
	})
	if binDir.err != nil {
		t.Fatal(binDir.err)
	}
	return binDir.dir
}

// buildDeb packs the binaries with scripts/deb.sh as make package runs
// it (the package and the tarball), checking the names they get and that
// the tarball holds the package's files; it returns the package.
func buildDeb(t *testing.T, repo, work string) string {
	t.Helper()
	bin := buildBinaries(t, repo)
	out := strings.Fields(run(t, repo, []string{"BIN=" + bin, "OUT=" + work, "DEB_COMPRESS=none", "TARBALL=yes"}, "scripts/deb.sh"))
	version := strings.TrimSpace(run(t, repo, nil, "scripts/version.sh"))
	arch := strings.TrimSpace(run(t, repo, nil, "dpkg", "--print-architecture"))
	want := []string{filepath.Join(work, "vmha_"+version+"_"+arch+".deb"), filepath.Join(work, "vmha-"+version+"-linux-"+arch+".tar.gz")}
	if !slices.Equal(out, want) {
		t.Fatalf("scripts/deb.sh made %q, want %q", out, want)
	}
	checkTarball(t, want[0], want[1])
	return want[0]
}

// checkTarball checks that the tarball holds the package's files: the
// same names, types, modes, owners and contents as the package's data.
func checkTarball(t *testing.T, deb, tarball string) {
	t.Helper()
	data, err := exec.Command("dpkg-deb", "--fsys-tarfile", deb).Output()
	if err != nil {
		t.Fatalf("dpkg-deb --fsys-tarfile %s: %v", deb, err)
	}
	f, err := os.Open(tarball)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", tarball, err)
	}
	fromDeb, fromTar := tarEntries(t, bytes.NewReader(data)), tarEntries(t, zr)
	if len(fromDeb) < 20 {
		t.Fatalf("the package holds only %d entries", len(fromDeb))
	}
	if !slices.Equal(fromDeb, fromTar) {
		t.Errorf("the tarball's entries differ from the package's:\npackage:\n%s\ntarball:\n%s", strings.Join(fromDeb, "\n"), strings.Join(fromTar, "\n"))
	}
}

// tarEntries lists a tar stream's entries: name, type, mode, owner and a
// hash of the contents, one string each, sorted.
func tarEntries(t *testing.T, r io.Reader) []string {
	t.Helper()
	tr := tar.NewReader(r)
	var list []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.New()
		if _, err := io.Copy(sum, tr); err != nil {
			t.Fatal(err)
		}
		name := "./" + strings.TrimPrefix(h.Name, "./")
		list = append(list, fmt.Sprintf("%s %c %o %d:%d %s %x", name, h.Typeflag, h.Mode, h.Uid, h.Gid, h.Linkname, sum.Sum(nil)[:8]))
	}
	slices.Sort(list)
	return list
}

// checkControl checks the package's control fields and conffiles, and
// returns the names of the packages it depends on.
func checkControl(t *testing.T, deb string) []string {
	t.Helper()
	fields := run(t, "", nil, "dpkg-deb", "-f", deb, "Depends", "Recommends")
	if !strings.Contains(fields, "adduser") || !strings.Contains(fields, "libvirt0") || !strings.Contains(fields, "Recommends: libvirt-daemon-system, ipmitool") {
		t.Errorf("control fields:\n%s\nwant Depends on adduser (the postinst's addgroup) and libvirt0 (the cgo binding) and Recommends ipmitool", fields)
	}
	if got := run(t, "", nil, "dpkg-deb", "-I", deb, "conffiles"); got != "/etc/vmha/vmhad.yaml\n" {
		t.Errorf("conffiles %q, want /etc/vmha/vmhad.yaml", got)
	}
	var names []string
	for _, dep := range strings.Split(run(t, "", nil, "dpkg-deb", "-f", deb, "Depends"), ",") {
		name, _, _ := strings.Cut(strings.TrimSpace(dep), " ")
		names = append(names, name)
	}
	return names
}

// privateRoot makes an empty system for dpkg --root: an initialized
// database holding this machine's entries of the packages vmha depends on
// (so dpkg checks the Depends for real, versions included), and /bin with
// busybox's shell and tools and the fake systemctl.
func privateRoot(t *testing.T, work, busybox string, depends []string) string {
	t.Helper()
	root := filepath.Join(work, "root")
	admin := filepath.Join(root, "var/lib/dpkg")
	// dev/: the scripts' >/dev/null then writes a plain file there
	// rather than failing the redirection (and skipping the command).
	for _, d := range []string{filepath.Join(admin, "updates"), filepath.Join(admin, "info"), filepath.Join(root, "bin"), filepath.Join(root, "dev")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// dpkg-query -s prints the entries as the status file holds them;
	// a dependency this machine lacks fails here, naming it.
	status := run(t, "", nil, "dpkg-query", append([]string{"-s"}, depends...)...)
	writeFile(t, filepath.Join(admin, "status"), status, 0o644)
	writeFile(t, filepath.Join(admin, "available"), "", 0o644)
	for _, name := range strings.Fields(run(t, "", nil, "dpkg-query", append([]string{"-W", "-f=${binary:Package}\n"}, depends...)...)) {
		writeFile(t, filepath.Join(admin, "info", name+".list"), "", 0o644)
	}
	b, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(root, "bin/busybox"), string(b), 0o755)
	for _, applet := range []string{"sh", "mkdir", "chmod", "rm", "rmdir", "cat", "ls", "grep"} {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", applet)); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(root, "bin/systemctl"), fakeSystemctl, 0o755)
	writeFile(t, filepath.Join(root, "bin/addgroup"), fakeAddgroup, 0o755)
	return root
}

func dpkgCmd(root string, args ...string) *exec.Cmd {
	// --path-include undoes a path-exclude of the machine's dpkg.cfg.d
	// (minimal images drop man pages and docs), which would hide what the
	// package ships.
	cmd := exec.Command("dpkg", append([]string{"--root=" + root, "--log=" + root + ".log", "--path-include=/*"}, args...)...)
	cmd.Env = append(os.Environ(), "PATH="+systemPath)
	return cmd
}

// dpkg runs dpkg on the private root and returns its output.
func dpkg(t *testing.T, root string, args ...string) string {
	t.Helper()
	out, err := dpkgCmd(root, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// checkSystemctl checks what the maintainer scripts asked systemctl since
// the last check.
func checkSystemctl(t *testing.T, root, step string, want []string) {
	t.Helper()
	log := filepath.Join(root, "systemctl.log")
	b, err := os.ReadFile(log)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	_ = os.Remove(log)
	var got []string
	if s := strings.TrimSuffix(string(b), "\n"); s != "" {
		got = strings.Split(s, "\n")
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s: the maintainer scripts ran systemctl %q, want %q", step, got, want)
	}
}

func checkStatus(t *testing.T, root, want string) {
	t.Helper()
	out, err := dpkgCmd(root, "-s", "vmha").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Status: "+want+"\n") {
		t.Errorf("dpkg -s vmha (%v):\n%s\nwant Status: %s", err, out, want)
	}
}

// checkInstalled checks the installed files and their modes.
func checkInstalled(t *testing.T, repo, root string) {
	t.Helper()
	files := []struct {
		path     string
		mode     fs.FileMode
		contains string
	}{
		{"usr/bin/vmha", 0o755, ""},
		{"usr/sbin/vmhad", 0o755, ""},
		{"usr/lib/systemd/system/vmhad.service", 0o644, "\nExecStart=/usr/sbin/vmhad\n"},
		{"usr/lib/systemd/system/vmhad-witness.service", 0o644, "\nExecStart=/usr/sbin/vmhad --witness\n"},
		{"etc/vmha/vmhad.yaml", 0o640, "node_name:"},
		{"usr/share/doc/vmha/examples/vmhad.yaml", 0o644, "node_name:"},
		{"usr/share/doc/vmha/README.md", 0o644, "dpkg -i"},
		{"usr/share/man/man1/vmha.1.gz", 0o644, ""},
		{"usr/share/man/man1/vmha-vm-stop.1.gz", 0o644, ""},
		{"usr/share/man/man1/vmha-completion-bash.1.gz", 0o644, ""},
		{"usr/share/man/man5/vmhad.yaml.5.gz", 0o644, ""},
		{"usr/share/man/man8/vmhad.8.gz", 0o644, ""},
		{"usr/share/bash-completion/completions/vmha", 0o644, "__complete"},
		{"usr/share/zsh/vendor-completions/_vmha", 0o644, "__complete"},
		{"usr/share/fish/vendor_completions.d/vmha.fish", 0o644, "__complete"},
	}
	for _, f := range files {
		checkMode(t, root, f.path, f.mode)
		if f.contains != "" && !strings.Contains(string(readFile(t, filepath.Join(root, f.path))), f.contains) {
			t.Errorf("/%s lacks %q", f.path, f.contains)
		}
	}
	checkMode(t, root, "var/lib/vmha", fs.ModeDir|0o700)
	if !bytes.Equal(readFile(t, filepath.Join(root, "etc/vmha/vmhad.yaml")), readFile(t, filepath.Join(repo, "configs/vmhad.yaml"))) {
		t.Error("/etc/vmha/vmhad.yaml is not the annotated sample configs/vmhad.yaml")
	}
	for _, p := range []string{"etc/systemd/system/multi-user.target.wants/vmhad.service", "etc/systemd/system/multi-user.target.wants/vmhad-witness.service"} {
		if _, err := os.Lstat(filepath.Join(root, p)); err == nil {
			t.Errorf("the install enabled a unit: /%s", p)
		}
	}
}

func checkMode(t *testing.T, root, path string, want fs.FileMode) {
	t.Helper()
	fi, err := os.Lstat(filepath.Join(root, path))
	if err != nil {
		t.Errorf("/%s: %v", path, err)
		return
	}
	if got := fi.Mode() & (fs.ModeType | fs.ModePerm); got != want {
		t.Errorf("/%s: mode %v, want %v", path, got, want)
	}
}

// checkPrograms runs the installed vmha and vmhad.
func checkPrograms(t *testing.T, root string) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"usr/bin/vmha", "--help"}, "Exit codes"},
		{[]string{"usr/bin/vmha", "completion", "--help"}, "bash"},
		{[]string{"usr/sbin/vmhad", "--help"}, "--check-config"},
	} {
		out := run(t, "", nil, filepath.Join(root, c.args[0]), c.args[1:]...)
		if !strings.Contains(out, c.want) {
			t.Errorf("/%s: no %q in\n%s", strings.Join(c.args, " "), c.want, out)
		}
	}
}

// checkVersion checks that vmha version and vmhad --version print the
// package's version (make binaries' linker stamp) and the commit.
func checkVersion(t *testing.T, repo, root string) {
	version := strings.TrimSpace(run(t, repo, nil, "scripts/version.sh"))
	commit := strings.TrimSpace(run(t, repo, nil, "git", "rev-parse", "HEAD"))
	for _, c := range [][]string{{"usr/bin/vmha", "version"}, {"usr/sbin/vmhad", "--version"}} {
		out := run(t, "", nil, filepath.Join(root, c[0]), c[1:]...)
		want := filepath.Base(c[0]) + " " + version + ", " + commit + ", go"
		if !strings.HasPrefix(out, want) {
			t.Errorf("/%s: %q, want it to start with %q", strings.Join(c, " "), out, want)
		}
	}
}

// checkManPages renders the installed pages with man -l, which must print
// the page and no groff warning.
func checkManPages(t *testing.T, root string) {
	testenv.NeedCommand(t, "man")
	for _, p := range []struct{ file, want string }{
		{"usr/share/man/man1/vmha.1.gz", "vmha - Keep KVM and Xen VMs running"},
		{"usr/share/man/man1/vmha-vm-stop.1.gz", "vmha vm stop VM"},
		{"usr/share/man/man8/vmhad.8.gz", "--check-config"},
		{"usr/share/man/man5/vmhad.yaml.5.gz", "/usr/share/doc/vmha/examples/vmhad.yaml"},
	} {
		cmd := exec.Command("man", "--warnings", "-l", filepath.Join(root, p.file))
		cmd.Env = append(os.Environ(), "MANPAGER=cat", "PAGER=cat", "MANWIDTH=200", "LANG=C.UTF-8")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil || stderr.Len() > 0 {
			t.Errorf("man -l /%s: %v\n%s", p.file, err, stderr.String())
		}
		if !strings.Contains(stdout.String(), p.want) {
			t.Errorf("man -l /%s: no %q in\n%s", p.file, p.want, stdout.String())
		}
	}
}

// run runs name in dir with env added and returns its stdout, failing the
// test with its output if it fails.
func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t *testing.T, path, content string, mode fs.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}
