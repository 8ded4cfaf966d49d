package adoption

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// StatusFiles are the files the shims write their app's exit status to
// (see package shim): under data_dir/run, where a gatehouse that adopts
// the app finds it.
type StatusFiles struct {
	dataDir string
	log     *slog.Logger
	// seq numbers the status files of the processes this run starts.
	seq atomic.Int64
	// warned: the log said data_dir/run cannot be written.
	warned atomic.Bool
}

// NewStatusFiles are the status files of dataDir ("": none).
func NewStatusFiles(dataDir string, log *slog.Logger) *StatusFiles {
	return &StatusFiles{dataDir: dataDir, log: log}
}

// Path is the file the shim of instance id's next process writes its
// exit status to: under data_dir/run, or the system's temporary
// directory without a data_dir or when data_dir/run cannot be written (a
// shim that cannot write the status leaves every exit unexplained).
func (s *StatusFiles) Path(id string) string {
	dir := os.TempDir()
	if s.dataDir != "" {
		run := filepath.Join(s.dataDir, "run")
		err := os.MkdirAll(run, 0o755)
		if err == nil {
			err = unix.Access(run, unix.W_OK)
		}
		if err == nil {
			dir = run
		} else if !s.warned.Swap(true) {
			s.log.Warn("cannot write exit status files under data_dir; they go to the temporary directory", "dir", run, "err", err)
		}
	}
	os.MkdirAll(dir, 0o755)
	return filepath.Join(dir, fmt.Sprintf("%s.%d.%d.exit", id, os.Getpid(), s.seq.Add(1)))
}

// Sweep removes the exit status files under data_dir/run that no adopted
// process (adopt, by app) will read: those of processes stopped as
// leftovers, or whose gatehouse never came back. Not while another
// gatehouse shares the data_dir (r.Shared): the files may be its
// processes'.
func (s *StatusFiles) Sweep(r *Records, adopt map[string][]ProcessRecord) {
	if s.dataDir == "" || r.Shared() {
		return
	}
	keep := map[string]bool{}
	for _, recs := range adopt {
		for _, rec := range recs {
			keep[rec.StatusFile] = true
		}
	}
	names, _ := filepath.Glob(filepath.Join(s.dataDir, "run", "*.exit"))
	for _, n := range names {
		if !keep[n] {
			os.Remove(n)
		}
	}
}
