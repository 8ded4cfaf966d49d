package server

import (
	"context"
	"io"
	"path/filepath"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/process"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// pruneInterval is how often the logs of gone instances are looked for:
// retention is counted in days, so hourly is prompt enough.
const pruneInterval = time.Hour

// instanceLogFiles is the rotation of logs/APP/INSTANCE.log as log_files:
// sets it.
func instanceLogFiles(cfg *config.Config) process.FileOptions {
	return process.FileOptions{MaxSizeMB: cfg.LogFiles.RotateMB(), MaxBackups: cfg.LogFiles.Backups(), MaxAgeDays: cfg.LogFiles.RetainDays()}
}

// newAccessWriter is the access log's writer as access_log: says: a file
// (data_dir/access.log by default) rotated as log_files: says, stdout
// (the console, which the instances' output shares without their lines
// mixing: see Options.Console), or nowhere.
func newAccessWriter(cfg *config.Config, console io.Writer) *telemetry.AsyncWriter {
	opt := telemetry.WriterOptions{MaxSizeMB: cfg.LogFiles.RotateMB(), MaxBackups: cfg.LogFiles.Backups(), MaxAgeDays: cfg.LogFiles.RetainDays()}
	path := cfg.AccessLogPath()
	switch cfg.AccessLog {
	case config.AccessLogStdout:
		opt.Out, path = console, "stdout"
		if console == nil {
			opt.Out = io.Discard
		}
	case config.AccessLogOff:
		opt.Out, path = io.Discard, "off"
	}
	return telemetry.NewAsyncWriter(path, opt)
}

// pruneLogs removes the logs of instances gone for longer than
// log_files.max_age, at start and then every pruneInterval, until ctx
// ends.
func (s *Server) pruneLogs(ctx context.Context) {
	// Not before the supervisor has the instances it adopted (a
	// successor's, or those a gatehouse killed hard left running): until
	// then a live instance beyond the configured count (web-3 after a
	// reload replaced web-1) would look gone, and a quiet one's log be
	// removed.
	if s.sup.AwaitAdopted(ctx) != nil {
		return
	}
	t := time.NewTicker(pruneInterval)
	defer t.Stop()
	for {
		s.pruneOnce(time.Now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// pruneOnce removes, as of now, the logs of instances that neither run
// nor are configured to.
func (s *Server) pruneOnce(now time.Time) {
	live := map[string]bool{}
	for _, a := range s.sup.Apps() {
		for i := 1; i <= a.Config().Instances; i++ {
			live[a.Name()+"-"+strconv.Itoa(i)] = true
		}
	}
	for _, a := range s.sup.Status() {
		for _, in := range a.Instances {
			live[in.ID] = true
		}
	}
	removed, err := process.PruneLogs(filepath.Join(s.cfg.DataDir, "logs"), func(_, id string) bool { return live[id] },
		s.cfg.LogFiles.Retention(), now)
	if err != nil {
		s.log.Warn("old instance logs not all removed", "err", err)
	}
	if len(removed) > 0 {
		s.log.Info("removed the logs of instances gone for longer than log_files.max_age", "files", len(removed), "max_age", s.cfg.LogFiles.Retention())
	}
}
