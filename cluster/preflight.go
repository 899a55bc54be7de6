package cluster

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"syscall"
	"time"
)

// The checks below are vmhad --check-config's view of what NewNode and
// ClaimSocket do at start, without doing it: they create, lock, remove and
// bind nothing, so that they can run beside a live vmhad.

// ErrInUse says that a live vmhad holds the data_dir or the socket: the
// config may well be the one it runs with, but a second vmhad with it
// would not start.
var ErrInUse = errors.New("in use by a running vmhad")

// CheckDataDir checks what NewNode needs of data_dir: a directory (or a
// path where one can be made) this process may write, and contents that
// NewNode accepts (a raft store that is present and sound where a cluster
// existed: the same verdict, without changing anything). A data_dir locked
// by a running vmhad gives an error wrapping ErrInUse, and its contents
// are not read. Warnings are what NewNode would log and start anyway.
func CheckDataDir(dir, host string) (warnings []string, err error) {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, creatable("data_dir", dir)
	case err != nil:
		return nil, fmt.Errorf("data_dir %s: %w", dir, err)
	case !fi.IsDir():
		return nil, fmt.Errorf("data_dir %s is not a directory", dir)
	}
	if err := syscall.Access(dir, 0o3); err != nil { // W_OK|X_OK
		return nil, fmt.Errorf("data_dir %s: vmhad cannot write there: %w", dir, err)
	}
	lock := filepath.Join(dir, lockFileName)
	if f, err := os.Open(lock); err == nil {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
		if err == nil {
			_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		}
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("data_dir %s is %w (pid %s): its contents are not checked", dir, ErrInUse, lockHolder(lock))
		}
	}
	f := inspectDataDir(dir, host, boltOpenTimeout)
	if warnings, err = f.verdict(); err != nil {
		return warnings, err
	}
	if f.RaftDB == raftDBPresent {
		ro, err := openBoltStore(f.path(raftDBName), boltOpenTimeout, true)
		if err != nil {
			f.RaftDBErr = err
		} else {
			f.readStore(ro)
			_ = ro.Close()
		}
		return f.verdict()
	}
	return warnings, nil
}

// CheckSocket checks what ClaimSocket needs: a directory for the socket
// (or a path where one can be made), nothing at path but a socket (a
// stale one is replaced at start), and the socket group. A socket a live
// vmhad answers on gives an error wrapping ErrInUse.
func CheckSocket(path, group string) error {
	dir := filepath.Dir(path)
	if fi, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := creatable("socket directory", dir); err != nil {
			return err
		}
	} else if err != nil {
		return fmt.Errorf("socket directory %s: %w", dir, err)
	} else if !fi.IsDir() {
		return fmt.Errorf("socket %s: %s is not a directory", path, dir)
	}
	if group != "" {
		if _, err := user.LookupGroup(group); err != nil {
			return fmt.Errorf("socket_group %q: %w", group, err)
		}
	}
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("socket %s: %w", path, err)
	case fi.Mode().Type() != fs.ModeSocket:
		return fmt.Errorf("socket %s: %s is in the way; vmhad removes nothing there but a stale socket: move it away or set socket: to another path", path, describeFile(fi))
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		_ = c.Close()
		return fmt.Errorf("socket %s is %w (it accepts connections)", path, ErrInUse)
	}
	return nil
}

// creatable checks that path, which does not exist, can be made: its
// nearest existing ancestor is a directory this process may write.
func creatable(label, path string) error {
	for p := filepath.Dir(filepath.Clean(path)); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) && p != filepath.Dir(p) {
			continue
		}
		if err != nil {
			return fmt.Errorf("%s %s: %w", label, path, err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("%s %s cannot be made: %s is not a directory", label, path, p)
		}
		if err := syscall.Access(p, 0o3); err != nil {
			return fmt.Errorf("%s %s cannot be made in %s: %w", label, path, p, err)
		}
		return nil
	}
}
