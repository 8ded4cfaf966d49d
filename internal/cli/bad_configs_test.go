package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/testutil"
)

// What gatehouse run refuses to start on, gatehouse validate reports, and
// both say it the same way: one FILE:LINE: KEY: MESSAGE line and exit 2,
// with run starting nothing. The configs that run accepts, validate
// accepts too.
func TestValidateAndRunRefuseBadConfigsAlike(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// file is in testdata/preflight, or absent when it is not there.
		file string
		// wantPrefix starts the one stderr line, up to the message;
		// wantText is in the message. An empty wantPrefix means a good
		// config: validate says ok (run would serve it, so is not run).
		wantPrefix, wantText string
	}{
		{name: "cert_file missing", file: "tls_cert_missing.yaml",
			wantPrefix: "tls_cert_missing.yaml:8: tls.cert_file: cannot read ", wantText: "absent.pem: no such file or directory"},
		{name: "certificate as key_file", file: "tls_cert_as_key.yaml",
			wantPrefix: "tls_cert_as_key.yaml:9: tls.key_file: ", wantText: "cert.pem has no PEM private key"},
		{name: "key of another certificate", file: "tls_key_mismatch.yaml",
			wantPrefix: "tls_key_mismatch.yaml:9: tls.key_file: ", wantText: "other.key does not go with "},
		{name: "acme ca_roots missing", file: "acme_ca_roots_missing.yaml",
			wantPrefix: "acme_ca_roots_missing.yaml:10: tls.acme.ca_roots: cannot read ", wantText: "absent.pem: no such file or directory"},
		{name: "admin off loopback without a token", file: "admin_without_token.yaml",
			wantPrefix: `admin_without_token.yaml:2: admin: "0.0.0.0:0" is not a loopback address`, wantText: "set admin_token"},
		{name: "config file missing", file: "absent.yaml",
			wantPrefix: "gatehouse: read config: open absent.yaml: ", wantText: "no such file or directory"},
		{name: "good certificate and key", file: "tls_good.yaml"},
		{name: "certificate and key in one file", file: "tls_one_file_good.yaml"},
	}
	ca := testutil.NewCA(t, "preflight CA")
	site := ca.Issue(t, testutil.Leaf{Names: []string{"localhost"}})
	certFile, keyFile := testutil.KeyPairFiles(t, site)
	_, otherKey := testutil.KeyPairFiles(t, ca.Issue(t, testutil.Leaf{Names: []string{"localhost"}}))
	fixtures := map[string][]byte{
		"cert.pem":  mustRead(t, certFile),
		"key.pem":   mustRead(t, keyFile),
		"other.key": mustRead(t, otherKey),
		"both.pem":  append(mustRead(t, certFile), mustRead(t, keyFile)...),
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.file == "admin_without_token.yaml" && os.Getenv("GATEHOUSE_ADMIN_TOKEN") != "" {
				t.Skip("GATEHOUSE_ADMIN_TOKEN is set here: an admin off loopback has a token")
			}
			dir := t.TempDir()
			for name, data := range fixtures {
				writeTestFile(t, filepath.Join(dir, name), data)
			}
			if data, err := os.ReadFile(filepath.Join("testdata", "preflight", tc.file)); err == nil {
				writeTestFile(t, filepath.Join(dir, tc.file), data)
			}
			stdout, stderr, code := gatehouse(t, dir, "validate", "-c", tc.file)
			if tc.wantPrefix == "" {
				if code != 0 || stderr != "" || !strings.HasSuffix(stdout, ": ok, 1 app(s)\n") {
					t.Fatalf("validate: exit code %d, want 0\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
				}
				return
			}
			if code != 2 {
				t.Errorf("validate: exit code = %d, want 2\nstderr:\n%s", code, stderr)
			}
			checkOneProblem(t, "validate", stderr, tc.wantPrefix, tc.wantText)
			runOut, runErr, runCode := gatehouse(t, dir, "run", "-c", tc.file)
			if runCode != 2 {
				t.Errorf("run: exit code = %d, want 2\nstdout:\n%s\nstderr:\n%s", runCode, runOut, runErr)
			}
			if diff := cmp.Diff(stderr, runErr); diff != "" {
				t.Errorf("run says it differently from validate (-validate +run):\n%s", diff)
			}
			if _, err := os.Stat(filepath.Join(dir, ".gatehouse")); err == nil {
				t.Errorf("run made its data_dir: it started before refusing the config")
			}
		})
	}
}

// checkOneProblem checks that stderr is one line: prefix, then a message
// with text in it.
func checkOneProblem(t *testing.T, cmd, stderr, prefix, text string) {
	t.Helper()
	line, rest, _ := strings.Cut(stderr, "\n")
	if rest != "" {
		t.Errorf("%s: stderr has more than the one problem:\n%s", cmd, stderr)
	}
	if !strings.HasPrefix(line, prefix) || !strings.Contains(strings.TrimPrefix(line, prefix), text) {
		t.Errorf("%s: stderr = %q, want %q then a message with %q", cmd, line, prefix, text)
	}
}

func writeTestFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// gatehouse run checks the --listen and --admin it is given as it checks
// the file's listen and admin, and names the flag: a clash with another
// listener is refused before anything starts, not met at bind.
func TestRunRefusesListenerFlagsAsTheFile(t *testing.T) {
	t.Parallel()
	const cfg = "listen: \"127.0.0.1:0\"\nadmin: \"127.0.0.1:19907\"\napps:\n  web:\n    command: [\"true\"]\n"
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"listen on admin's address", []string{"--listen", "127.0.0.1:19907"},
			`--listen: "127.0.0.1:19907" is also admin's address ("127.0.0.1:19907"): each listener needs a port of its own`},
		{"admin on listen's address, spelt another way", []string{"--listen", "[::]:19908", "--admin", "[0:0::0]:019908"},
			`--admin: "[0:0::0]:019908" is also listen's address ("[::]:19908"): each listener needs a port of its own`},
		{"admin not host:port", []string{"--admin", "19909"},
			`--admin: "19909" must be host:port, e.g. ":8080" or "127.0.0.1:9901"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeTestFile(t, filepath.Join(dir, "g.yaml"), []byte(cfg))
			stdout, stderr, code := gatehouse(t, dir, append([]string{"run", "-c", "g.yaml"}, tc.args...)...)
			if code != 2 {
				t.Errorf("run: exit code = %d, want 2\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
			}
			if diff := cmp.Diff(tc.want+"\n", stderr); diff != "" {
				t.Errorf("run's stderr (-want +got):\n%s", diff)
			}
			if _, err := os.Stat(filepath.Join(dir, ".gatehouse")); err == nil {
				t.Errorf("run made its data_dir: it started before refusing the flags")
			}
		})
	}
}
