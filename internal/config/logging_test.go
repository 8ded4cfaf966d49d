package config

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestValidateLogging(t *testing.T) {
	checkParses(t, []parseCase{
		{"log_format text", "log_format: text\n" + web, nil},
		{"log_format json", "log_format: json\n" + web, nil},
		{"log_format other", "log_format: logfmt\n" + web,
			[]string{`g.yaml:1: log_format: must be "text" or "json", got "logfmt"`}},
		{"access_log stdout", "access_log: stdout\n" + web, nil},
		{"access_log off", "access_log: off\n" + web, nil},
		{"access_log path", "access_log: /var/log/gatehouse/access.log\n" + web, nil},
		{"access_log empty", "access_log: \"\"\n" + web,
			[]string{`g.yaml:1: access_log: must not be empty: leave it out for data_dir/access.log, or write "stdout", "off" or a file path`}},
		{"access_log directory", "access_log: logs/\n" + web,
			[]string{`g.yaml:1: access_log: "logs/" is a directory: name a file, e.g. "logs/access.log"`}},
		{"log_files", "log_files: {max_size: 10MB, max_files: 2, max_age: 72h}\n" + web, nil},
		{"log_files max_age 0 keeps forever", "log_files:\n  max_age: 0\n" + web, nil},
		{"log_files zeros", "log_files:\n  max_size: 0\n  max_files: 0\n" + web,
			[]string{
				`g.yaml:2: log_files.max_size: must be > 0 (e.g. 100MB), got 0`,
				`g.yaml:3: log_files.max_files: must be ≥ 1, got 0`,
			}},
		{"log_files negative files", "log_files: {max_files: -1}\n" + web,
			[]string{`g.yaml:1: log_files.max_files: must be ≥ 1, got -1`}},
		{"log_files max_age too short", "log_files:\n  max_age: 30s\n" + web,
			[]string{`g.yaml:2: log_files.max_age: must be 0 (keep forever) or at least 1m, got 30s`}},
		{"log_files max_age needs a unit", "log_files:\n  max_age: 14\n" + web,
			[]string{`g.yaml:2: log_files.max_age: "14" needs a unit, e.g. 30s`}},
		{"log_files unknown key", "log_files:\n  max_backups: 3\n" + web,
			[]string{`g.yaml:2: log_files.max_backups: unknown key`}},
	})
}

func TestLoggingDefaults(t *testing.T) {
	zero := Duration(0)
	tests := []struct {
		name       string
		cfg        Config
		wantMB     int
		wantFiles  int
		wantRetain time.Duration
		wantDays   int
		wantAccess string
	}{
		{"absent", Config{DataDir: "/d"}, 100, 5, 14 * 24 * time.Hour, 14, "/d/access.log"},
		{"set", Config{DataDir: "/d", AccessLog: "a/x.log", LogFiles: LogFiles{MaxSize: 1500 << 10, MaxFiles: 2, MaxAge: new(Duration(36 * time.Hour))}},
			2, 2, 36 * time.Hour, 2, "/d/a/x.log"},
		{"forever, to stdout", Config{DataDir: "/d", AccessLog: AccessLogStdout, LogFiles: LogFiles{MaxAge: &zero}}, 100, 5, 0, 0, ""},
		{"absolute path", Config{DataDir: "/d", AccessLog: "/var/log/a.log"}, 100, 5, 14 * 24 * time.Hour, 14, "/var/log/a.log"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := tt.cfg.LogFiles
			got := []any{l.RotateMB(), l.Backups(), l.Retention(), l.RetainDays(), filepath.ToSlash(tt.cfg.AccessLogPath())}
			want := []any{tt.wantMB, tt.wantFiles, tt.wantRetain, tt.wantDays, tt.wantAccess}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
