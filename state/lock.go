package state

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// processLocks records the directories of vfs.Default that DBs of this
// process hold. Pebble's lock on the default filesystem reports a second
// lock from the same process with an error that can only be told apart by
// its text; this table detects that case first.
var processLocks struct {
	sync.Mutex
	dirs map[string]struct{}
}

// dirLock is a held database directory lock.
type dirLock struct {
	pebble *pebble.Lock
	key    string // key in processLocks, or "" when not registered
}

// lockDir acquires the Pebble lock of dir, wrapping ErrLocked when another
// DB holds it.
func lockDir(dir string, fsys vfs.FS) (*dirLock, error) {
	key, err := registerProcessLock(dir, fsys)
	if err != nil {
		return nil, err
	}
	pl, err := pebble.LockDirectory(dir, fsys)
	if err != nil {
		unregisterProcessLock(key)
		if isLockContention(err) {
			return nil, fmt.Errorf("locking directory: %w (%w)", ErrLocked, err)
		}
		return nil, fmt.Errorf("locking directory: %w", err)
	}
	return &dirLock{pebble: pl, key: key}, nil
}

// Close releases the lock.
func (l *dirLock) Close() error {
	defer unregisterProcessLock(l.key)
	return l.pebble.Close()
}

// registerProcessLock claims dir in processLocks when fsys is the default
// filesystem, returning the claimed key.
func registerProcessLock(dir string, fsys vfs.FS) (string, error) {
	if fsys != vfs.Default {
		return "", nil
	}
	key, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("resolving directory: %w", err)
	}
	// fcntl locks belong to the process, so two spellings of one directory
	// would both lock it: key on the resolved path.
	if resolved, err := filepath.EvalSymlinks(key); err == nil {
		key = resolved
	}
	processLocks.Lock()
	defer processLocks.Unlock()
	if _, held := processLocks.dirs[key]; held {
		return "", fmt.Errorf("locking directory: %w (held by this process)", ErrLocked)
	}
	if processLocks.dirs == nil {
		processLocks.dirs = make(map[string]struct{})
	}
	processLocks.dirs[key] = struct{}{}
	return key, nil
}

func unregisterProcessLock(key string) {
	if key == "" {
		return
	}
	processLocks.Lock()
	defer processLocks.Unlock()
	delete(processLocks.dirs, key)
}

// isLockContention reports whether err from vfs.FS.Lock means that another
// holder has the lock: fcntl(F_SETLK) fails with EAGAIN or EACCES (and
// vfs.MemFS mimics EAGAIN). Errors from creating the lock file come as
// *fs.PathError and are not contention.
func isLockContention(err error) bool {
	var pathErr *fs.PathError
	if errors.As(err, &pathErr) {
		return false
	}
	return errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EACCES)
}
