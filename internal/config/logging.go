package config

import (
	"path/filepath"
	"strings"
	"time"
)

// Log formats of gatehouse's own lines on the terminal (LogFormat).
const (
	// LogFormatText is one human line per message or event: "15:04:05
	// WHO WHAT key=value".
	LogFormatText = "text"
	// LogFormatJSON is one JSON object per line (log/slog's JSON
	// handler: time, level, msg and the attributes), for log collectors.
	LogFormatJSON = "json"
)

// Values of AccessLog other than a path.
const (
	// AccessLogStdout writes the access log to gatehouse's standard
	// output, where a container runtime (docker logs, kubectl logs)
	// collects it.
	AccessLogStdout = "stdout"
	// AccessLogOff writes no access log.
	AccessLogOff = "off"
)

// Defaults of LogFiles.
const (
	// DefaultLogMaxSize is the size at which a log file is rotated.
	DefaultLogMaxSize Size = 100 << 20
	// DefaultLogMaxFiles is how many rotated files of one log are kept.
	DefaultLogMaxFiles = 5
	// DefaultLogMaxAge is how long rotated files, and the logs of
	// instances that no longer exist, are kept: 14 days.
	DefaultLogMaxAge = Duration(14 * 24 * time.Hour)
)

// LogFiles is the log_files: block: the rotation and retention of the
// log files gatehouse writes in data_dir, the instances' output
// (logs/APP/INSTANCE.log) and the access log when it goes to a file. A
// file is rotated when it reaches MaxSize: it is renamed with the time of
// the rotation in UTC (web-1-2006-01-02T15-04-05.000-size.log) and a new
// one is started. events.log keeps its fixed rotation (100MB, 5 files).
type LogFiles struct {
	// MaxSize is the size at which a log file is rotated. Unit: bytes,
	// written as a size ("100MB", "512MiB"). Default 100MB (0 or absent);
	// an explicit 0 is an error. Rotation rounds it to whole megabytes
	// (MiB), at least one.
	MaxSize Size `yaml:"max_size" secret:"false"`
	// MaxFiles is how many rotated files of one log are kept besides the
	// one being written; older ones are removed. Unit: files. Default 5
	// (0 or absent); an explicit 0 is an error.
	MaxFiles int `yaml:"max_files" secret:"false"`
	// MaxAge is how long rotated files are kept, and how long the log of
	// an instance that no longer exists (an app removed from the config,
	// web-7 after a scale-in) is kept after its last write before it is
	// removed. Unit: a duration ("336h"), at least 1m; rotated files
	// are aged in whole days, rounded up. nil (absent) means 14 days
	// (336h); 0 means forever: rotated files are bounded by MaxFiles
	// only, and gone instances' logs are never removed.
	MaxAge *Duration `yaml:"max_age" secret:"false"`
}

// RotateMB is MaxSize in whole MiB (at least 1), as the rotation takes
// it; MaxSize 0 means DefaultLogMaxSize.
func (l LogFiles) RotateMB() int {
	s := l.MaxSize
	if s <= 0 {
		s = DefaultLogMaxSize
	}
	return max(int((s+(1<<20)-1)>>20), 1)
}

// Backups is MaxFiles, or DefaultLogMaxFiles when it is 0.
func (l LogFiles) Backups() int {
	if l.MaxFiles <= 0 {
		return DefaultLogMaxFiles
	}
	return l.MaxFiles
}

// Retention is MaxAge as a time.Duration: DefaultLogMaxAge when it is
// absent, 0 (keep forever) when it was written as 0.
func (l LogFiles) Retention() time.Duration {
	if l.MaxAge == nil {
		return DefaultLogMaxAge.D()
	}
	return l.MaxAge.D()
}

// RetainDays is Retention in whole days, rounded up, as the rotation
// ages rotated files; 0 keeps them whatever their age.
func (l LogFiles) RetainDays() int {
	d := l.Retention()
	if d <= 0 {
		return 0
	}
	return int((d + 24*time.Hour - 1) / (24 * time.Hour))
}

// TerminalJSON reports whether gatehouse's own lines on the terminal are
// JSON (log_format: json).
func (c *Config) TerminalJSON() bool { return c.LogFormat == LogFormatJSON }

// AccessLogPath is the file the access log is written to: data_dir's
// access.log when AccessLog is "", AccessLog itself when it is a path
// (a relative one is relative to data_dir), "" when it goes to stdout or
// is off.
func (c *Config) AccessLogPath() string {
	switch c.AccessLog {
	case "":
		return filepath.Join(c.DataDir, "access.log")
	case AccessLogStdout, AccessLogOff:
		return ""
	}
	if filepath.IsAbs(c.AccessLog) {
		return c.AccessLog
	}
	return filepath.Join(c.DataDir, c.AccessLog)
}

// logging checks log_format, access_log and log_files.
func (v *validator) logging(c *Config) {
	switch c.LogFormat {
	case "", LogFormatText, LogFormatJSON:
	default:
		v.errorf("log_format", "must be %q or %q, got %q", LogFormatText, LogFormatJSON, c.LogFormat)
	}
	if v.has("access_log") && strings.TrimSpace(c.AccessLog) == "" {
		v.errorf("access_log", "must not be empty: leave it out for data_dir/access.log, or write %q, %q or a file path", AccessLogStdout, AccessLogOff)
	} else if strings.HasSuffix(c.AccessLog, "/") {
		v.errorf("access_log", "%q is a directory: name a file, e.g. %q", c.AccessLog, c.AccessLog+"access.log")
	}
	l := c.LogFiles
	if l.MaxSize < 0 || (l.MaxSize == 0 && v.has("log_files.max_size")) {
		v.errorf("log_files.max_size", "must be > 0 (e.g. 100MB), got %s", l.MaxSize)
	}
	if l.MaxFiles < 0 || (l.MaxFiles == 0 && v.has("log_files.max_files")) {
		v.errorf("log_files.max_files", "must be ≥ 1, got %d", l.MaxFiles)
	}
	if l.MaxAge != nil && *l.MaxAge != 0 && l.MaxAge.D() < time.Minute {
		v.errorf("log_files.max_age", "must be 0 (keep forever) or at least 1m, got %s", l.MaxAge.D())
	}
}
