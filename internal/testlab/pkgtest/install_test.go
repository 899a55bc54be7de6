package pkgtest

import (
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInstallScript runs make install's script into a staged tree
// (DESTDIR) with another PREFIX over an operator's config, then make
// uninstall's: the config is kept, the units and pages name the prefix,
// and uninstall leaves nothing but the config.
func TestInstallScript(t *testing.T) {
	t.Parallel()
	repo := repoRoot(t)
	bin := buildBinaries(t, repo)
	dest := t.TempDir()
	conf := filepath.Join(dest, "etc/vmha/vmhad.yaml")
	if err := os.MkdirAll(filepath.Dir(conf), 0o750); err != nil {
		t.Fatal(err)
	}
	mine := []byte("node_name: mine\n")
	writeFile(t, conf, string(mine), 0o600)
	env := []string{"DESTDIR=" + dest, "PREFIX=/opt/vmha", "BIN=" + bin, "VERSION=1.2.3"}

	out := run(t, repo, env, "scripts/install.sh", "install")
	if !strings.Contains(out, "keeping "+conf) {
		t.Errorf("install does not say it kept the config:\n%s", out)
	}
	if got := readFile(t, conf); !bytes.Equal(got, mine) {
		t.Errorf("install replaced the operator's config with:\n%s", got)
	}
	checkMode(t, dest, "etc/vmha/vmhad.yaml", 0o600)
	checkMode(t, dest, "etc/vmha", fs.ModeDir|0o750)
	for path, want := range map[string]string{
		"opt/vmha/lib/systemd/system/vmhad.service":         "\nExecStart=/opt/vmha/sbin/vmhad\n",
		"opt/vmha/lib/systemd/system/vmhad-witness.service": "\nExecStartPre=/opt/vmha/sbin/vmhad --witness --check-config\n",
		"opt/vmha/share/zsh/site-functions/_vmha":           "__complete",
		"opt/vmha/share/man/man5/vmhad.yaml.5.gz":           "/opt/vmha/share/doc/vmha/examples/vmhad.yaml",
		"opt/vmha/share/man/man8/vmhad.8.gz":                `"vmha 1.2.3"`,
		"opt/vmha/share/man/man1/vmha-migrate.1.gz":         `"vmha 1.2.3"`,
	} {
		if got := readMaybeGzip(t, filepath.Join(dest, path)); !strings.Contains(got, want) {
			t.Errorf("/%s lacks %q", path, want)
		}
	}
	checkMode(t, dest, "opt/vmha/bin/vmha", 0o755)
	checkMode(t, dest, "opt/vmha/sbin/vmhad", 0o755)
	if _, err := os.Stat(filepath.Join(dest, "var/lib/vmha")); err == nil {
		t.Error("a staged install (DESTDIR) made /var/lib/vmha: the package's postinst does")
	}

	run(t, repo, env, "scripts/install.sh", "uninstall")
	var left []string
	_ = filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			left = append(left, strings.TrimPrefix(p, dest))
		}
		return err
	})
	if len(left) != 1 || left[0] != "/etc/vmha/vmhad.yaml" {
		t.Errorf("after uninstall: %q, want only the config", left)
	}
}

func readMaybeGzip(t *testing.T, path string) string {
	t.Helper()
	b := readFile(t, path)
	if !strings.HasSuffix(path, ".gz") {
		return string(b)
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}
