package cluster

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Socket is the unix socket of the local API, bound by this vmhad. It never
// takes a socket from a live daemon and never deletes anything but a stale
// socket: a second vmhad given the same path refuses to start, and a
// `socket:` that names a file, a directory or a symbolic link is an error
// that names it. Closing it removes the socket only if the path still is
// the one this vmhad made.
type Socket struct {
	*net.UnixListener
	path     string
	dev, ino uint64
	// lock is PATH.lock, held (flock) while this vmhad owns the path, so
	// that two daemons starting at once cannot both find the old socket
	// stale and the second remove the first's new one.
	lock *os.File
	once sync.Once
	err  error
}

// ClaimSocket binds the API's unix socket at path, mode 0600 (0660 with
// group, which then owns it).
func ClaimSocket(path, group string) (*Socket, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("socket directory: %w", err)
	}
	lock, err := lockSocket(path)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			lock.Close()
		}
	}()
	if err := clearStaleSocket(path); err != nil {
		return nil, err
	}
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen on socket %s: %w", path, err)
	}
	// Close removes the path itself, only if it is still this socket.
	ul.SetUnlinkOnClose(false)
	s := &Socket{UnixListener: ul, path: path, lock: lock}
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		_ = ul.Close()
		return nil, fmt.Errorf("socket %s: %w", path, err)
	}
	s.dev, s.ino = uint64(st.Dev), uint64(st.Ino)
	if err := s.setOwner(group); err != nil {
		_ = ul.Close()
		s.removeIfOurs()
		return nil, err
	}
	ok = true
	return s, nil
}

func (s *Socket) setOwner(group string) error {
	mode := os.FileMode(0o600)
	if group != "" {
		grp, err := user.LookupGroup(group)
		if err != nil {
			return fmt.Errorf("socket_group %q: %w", group, err)
		}
		gid, _ := strconv.Atoi(grp.Gid)
		if err := os.Chown(s.path, -1, gid); err != nil {
			return fmt.Errorf("socket_group %q: %w", group, err)
		}
		mode = 0o660
	}
	return os.Chmod(s.path, mode)
}

// lockSocket takes PATH.lock. It stays on disk (removing a lock file others
// may hold open would let two daemons hold "the" lock).
func lockSocket(path string) (*os.File, error) {
	name := path + ".lock"
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("socket %s: lock file %s: %w", path, name, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("socket %s is in use by another vmhad (it holds %s): stop it first, or give this one another socket: path", path, name)
		}
		return nil, fmt.Errorf("socket %s: lock %s: %w", path, name, err)
	}
	return f, nil
}

// clearStaleSocket makes room at path: nothing there is fine; a socket
// nobody answers on (a vmhad that was killed) is removed; a socket that
// answers, or anything that is not a socket, is an error.
func clearStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("socket %s: %w", path, err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("socket %s: %s is in the way; vmhad removes nothing there but a stale socket: move it away or set socket: to another path", path, describeFile(fi))
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("socket %s is in use by another vmhad (it accepts connections): stop it first, or give this one another socket: path", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("socket %s: cannot tell whether another vmhad uses it, so it stays: %w", path, err)
	}
	// Nobody listens: the socket of a vmhad that did not stop cleanly.
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("socket %s: remove the stale socket: %w", path, err)
	}
	return nil
}

func describeFile(fi fs.FileInfo) string {
	switch t := fi.Mode().Type(); {
	case t == 0:
		return fmt.Sprintf("a regular file (%d bytes)", fi.Size())
	case t&fs.ModeDir != 0:
		return "a directory"
	case t&fs.ModeSymlink != 0:
		return "a symbolic link"
	case t&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case t&fs.ModeDevice != 0:
		return "a device node"
	default:
		return "a file of type " + t.String()
	}
}

// Path is where the socket is.
func (s *Socket) Path() string { return s.path }

// Close stops listening, removes the socket if the path still is the one
// this vmhad made (not a socket another daemon made there since), and
// releases the lock. It may be called more than once.
func (s *Socket) Close() error {
	s.once.Do(func() {
		s.err = s.UnixListener.Close()
		s.removeIfOurs()
		s.lock.Close()
	})
	return s.err
}

func (s *Socket) removeIfOurs() {
	var st syscall.Stat_t
	if err := syscall.Lstat(s.path, &st); err == nil && uint64(st.Dev) == s.dev && uint64(st.Ino) == s.ino {
		_ = os.Remove(s.path)
	}
}
