package server

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/gatehouse/gatehouse/internal/handover"
)

// LockFile is the file in data_dir that one gatehouse at a time holds an
// flock on, for as long as it runs, with its pid in it: two on one
// data_dir would write the same logs and each take the other's record of
// processes for a predecessor's.
const LockFile = "gatehouse.lock"

// lockKey is the data_dir lock's name in a handover.
const lockKey = "data_dir lock"

// DataDirInUseError is a gatehouse refused because another holds the lock
// on its data_dir.
type DataDirInUseError struct {
	Path string
	// PID is the holder's, as written in the file; 0 when it could not
	// be read (the holder has yet to write it).
	PID int
}

func (e *DataDirInUseError) Error() string {
	holder := "another gatehouse"
	if e.PID > 0 {
		holder = fmt.Sprintf("another gatehouse (pid %d)", e.PID)
	}
	return fmt.Sprintf("data_dir %s is in use: %s holds %s; stop it, or give this one another data_dir",
		filepath.Dir(e.Path), holder, e.Path)
}

// dataDirLock is this gatehouse's hold on LockFile; a nil one (the file
// could not be opened: no data_dir, which costs the logs anyway) holds
// nothing.
type dataDirLock struct{ f *os.File }

// lockDataDir takes the lock on dir, or refuses with DataDirInUseError.
// An upgrade's successor does not take it: its predecessor, which holds
// it until it exits, passes its descriptor on in the handover (see
// handedSockets), and the flock, which belongs to the open file, is then
// held by both until the predecessor exits, with no moment between the
// two when a third gatehouse could take it.
func lockDataDir(dir string, inherit *handover.Inherited, log *slog.Logger) (*dataDirLock, error) {
	path := filepath.Join(dir, LockFile)
	if inherit != nil {
		if f, ok := inherit.File(lockKey, path); ok {
			return &dataDirLock{f: f}, nil
		}
		// A predecessor of a version without the lock: it holds none.
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		log.Warn("cannot lock data_dir: another gatehouse on it would not be refused", "file", path, "err", err)
		return nil, nil
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			b, _ := os.ReadFile(path)
			pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
			return nil, &DataDirInUseError{Path: path, PID: pid}
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	l := &dataDirLock{f: f}
	l.claim()
	return l, nil
}

// claim writes this process's pid into the lock file, for a gatehouse
// refused to name: at the start, as an upgrade's successor once it has
// adopted the instances, and as its predecessor again when it takes them
// back.
func (l *dataDirLock) claim() {
	if l == nil {
		return
	}
	if err := l.f.Truncate(0); err == nil {
		l.f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
}

// handover is the lock for a successor (see lockDataDir); false without
// one.
func (l *dataDirLock) handover(path string) (handover.Listener, bool) {
	if l == nil {
		return handover.Listener{}, false
	}
	return handover.Listener{Key: lockKey, Addr: path, Ln: l.f}, true
}

// release lets go of the lock, at the end of this server; a successor it
// was passed to holds it on.
func (l *dataDirLock) release() {
	if l != nil {
		l.f.Close()
	}
}
