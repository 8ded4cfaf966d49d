package sdnotify_test

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// unitFile is the systemd unit gatehouse ships: the other side of the
// talk this package holds.
const unitFile = "../../dist/systemd/gatehouse.service"

// unit is a unit file's assignments by "Section.Key", each key's values
// in order (a key may be repeated).
type unit map[string][]string

// parseUnit reads the subset of systemd's INI syntax the shipped unit
// uses: [Section] headers, Key=Value lines, # and ; comments.
func parseUnit(t *testing.T, text []byte) unit {
	t.Helper()
	u := unit{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(text))
	for line := 1; sc.Scan(); line++ {
		l := strings.TrimSpace(sc.Text())
		switch {
		case l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, ";"):
		case strings.HasPrefix(l, "[") && strings.HasSuffix(l, "]"):
			section = l[1 : len(l)-1]
		default:
			k, v, ok := strings.Cut(l, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: %q is neither a section nor Key=Value", unitFile, line, l)
			}
			key := section + "." + strings.TrimSpace(k)
			u[key] = append(u[key], strings.TrimSpace(v))
		}
	}
	return u
}

// The keys the design depends on: readiness and reload by notify, an
// upgrade's successor allowed to take over MAINPID, gatehouse draining
// its apps itself, a stop timeout longer than theirs, the watchdog.
func TestUnitFile(t *testing.T) {
	text, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	u := parseUnit(t, text)
	for _, tc := range []struct {
		key, want string
	}{
		{"Service.Type", "notify"},
		{"Service.NotifyAccess", "all"},
		{"Service.KillMode", "process"},
		{"Service.ExecStart", "/usr/local/bin/gatehouse run -c /etc/gatehouse/gatehouse.yaml"},
		{"Service.ExecReload", "/bin/kill -HUP $MAINPID"},
		{"Service.TimeoutStopSec", "100s"},
		{"Service.Restart", "on-failure"},
		{"Service.WatchdogSec", "30s"},
		{"Service.StateDirectory", "gatehouse"},
		{"Service.WorkingDirectory", "/var/lib/gatehouse"},
		{"Install.WantedBy", "multi-user.target"},
	} {
		t.Run(tc.key, func(t *testing.T) {
			got := u[tc.key]
			if len(got) != 1 || got[0] != tc.want {
				t.Errorf("%s = %q, want exactly %q", tc.key, got, tc.want)
			}
		})
	}
	verifyUnit(t, text)
}

// verifyUnit runs systemd-analyze verify on the unit, where it is
// installed. It checks that ExecStart's binary exists, so the copy runs
// this test binary instead; any warning fails (verify exits 0 on a key it
// ignores).
func verifyUnit(t *testing.T, text []byte) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze not installed: verify skipped")
		return
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "gatehouse.service")
	text = bytes.ReplaceAll(text, []byte("/usr/local/bin/gatehouse"), []byte(self))
	if err := os.WriteFile(path, text, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, analyze, "verify", path).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
