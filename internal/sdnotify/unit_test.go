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

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/testutil"
)

// unitFile is the systemd unit gatehouse ships: the other side of the
// talk this package holds.
const unitFile = "../../dist/systemd/gatehouse.service"

// socketUnits are the optional socket units that hold gatehouse's
// listeners across its restarts, with the FileDescriptorName= each
// passes (the listener gatehouse takes it for) and its address.
var socketUnits = []struct{ file, name, listen string }{
	{"../../dist/systemd/gatehouse.socket", "public", "80"},
	{"../../dist/systemd/gatehouse-https.socket", "https", "443"},
	{"../../dist/systemd/gatehouse-admin.socket", "admin", "127.0.0.1:9901"},
}

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
// And the hardening: a fixed unprivileged user, one capability, a
// read-only system, an open-file limit that fixes max_connections. A
// key wanted nil must be absent: PrivateTmp= would delete /tmp from under
// the apps that outlive a gatehouse crash, DynamicUser= would release
// their uid and remove their IPC objects.
func TestUnitFile(t *testing.T) {
	text, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	u := parseUnit(t, text)
	for _, tc := range []struct {
		key  string
		want []string
	}{
		{"Service.Type", []string{"notify"}},
		{"Service.NotifyAccess", []string{"all"}},
		{"Service.KillMode", []string{"process"}},
		{"Service.ExecStart", []string{"/usr/local/bin/gatehouse run -c /etc/gatehouse/gatehouse.yaml"}},
		{"Service.ExecReload", []string{"/bin/kill -HUP $MAINPID"}},
		{"Service.TimeoutStopSec", []string{"100s"}},
		{"Service.Restart", []string{"on-failure"}},
		{"Service.WatchdogSec", []string{"30s"}},
		{"Service.StateDirectory", []string{"gatehouse"}},
		{"Service.WorkingDirectory", []string{"/var/lib/gatehouse"}},
		{"Service.User", []string{"gatehouse"}},
		{"Service.Group", []string{"gatehouse"}},
		{"Service.DynamicUser", nil},
		{"Service.AmbientCapabilities", []string{"CAP_NET_BIND_SERVICE"}},
		{"Service.CapabilityBoundingSet", []string{"CAP_NET_BIND_SERVICE"}},
		{"Service.NoNewPrivileges", []string{"yes"}},
		{"Service.ProtectSystem", []string{"strict"}},
		{"Service.ReadWritePaths", []string{"/tmp /var/tmp"}},
		{"Service.PrivateTmp", nil},
		{"Service.ProtectHome", []string{"yes"}},
		{"Service.LimitNOFILE", []string{"65536"}},
		// The socket units are optional: they name the service, not
		// the service them.
		{"Service.Sockets", nil},
		{"Unit.Requires", nil},
		{"Install.WantedBy", []string{"multi-user.target"}},
	} {
		t.Run(tc.key, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, u[tc.key]); diff != "" {
				t.Errorf("%s (-want +got):\n%s", tc.key, diff)
			}
		})
	}
}

// Each socket unit passes one listener, named for gatehouse (a
// FileDescriptorName= is the whole unit's), to gatehouse.service, one
// socket for all connections (Accept=no, the default).
func TestSocketUnitFiles(t *testing.T) {
	for _, su := range socketUnits {
		text, err := os.ReadFile(su.file)
		if err != nil {
			t.Fatal(err)
		}
		u := parseUnit(t, text)
		for _, tc := range []struct {
			key  string
			want []string
		}{
			{"Socket.ListenStream", []string{su.listen}},
			{"Socket.FileDescriptorName", []string{su.name}},
			{"Socket.Service", []string{"gatehouse.service"}},
			{"Socket.Accept", nil},
			{"Install.WantedBy", []string{"sockets.target"}},
		} {
			t.Run(filepath.Base(su.file)+"/"+tc.key, func(t *testing.T) {
				if diff := cmp.Diff(tc.want, u[tc.key]); diff != "" {
					t.Errorf("%s (-want +got):\n%s", tc.key, diff)
				}
			})
		}
	}
}

// systemd-analyze verify accepts the unit and the socket units, where it
// is installed: a key misspelt or a value systemd cannot parse (verify
// exits 0 on those, ignoring them, so any output fails), or a socket
// unit's Service= that is not the service beside it. verify checks that
// ExecStart's binary exists, so the copy it reads runs this test binary
// instead.
func TestUnitFileVerifies(t *testing.T) {
	testutil.SkipInShort(t)
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed")
	}
	text, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "gatehouse.service")
	text = bytes.ReplaceAll(text, []byte("/usr/local/bin/gatehouse"), []byte(self))
	if err := os.WriteFile(path, text, 0o644); err != nil {
		t.Fatal(err)
	}
	paths := []string{path}
	for _, su := range socketUnits {
		text, err := os.ReadFile(su.file)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.Base(su.file))
		if err := os.WriteFile(p, text, 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, analyze, append([]string{"verify"}, paths...)...).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
