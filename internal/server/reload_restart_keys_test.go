package server_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

// Reload says that a tls: change (here cert_file and key_file pointed at
// a new pair) takes a restart, rather than re-reading the old files
// silently.
func TestReloadReportsTLSChange(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gatehouse.yaml")
	bin, _ := json.Marshal(testutil.BuildBinary(t, testutil.FaultAppPkg))
	dd, _ := json.Marshal(filepath.Join(dir, "data"))
	ca := testutil.NewCA(t, "reload CA")
	oldCert, oldKey := testutil.KeyPairFiles(t, ca.Issue(t, testutil.Leaf{Names: []string{"127.0.0.1", "old.example"}}))
	newCert, newKey := testutil.KeyPairFiles(t, ca.Issue(t, testutil.Leaf{Names: []string{"127.0.0.1", "new.example"}}))
	write := func(cert, key string) {
		c, _ := json.Marshal(cert)
		k, _ := json.Marshal(key)
		yaml := fmt.Sprintf("listen: \"127.0.0.1:0\"\nadmin: \"127.0.0.1:0\"\ndata_dir: %s\ntls:\n  listen: \"127.0.0.1:0\"\n  redirect_http: false\n  cert_file: %s\n  key_file: %s\napps:\n  web:\n    command: [%s]\n    health: {path: /healthz}\n", dd, c, k, bin)
		if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(oldCert, oldKey)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	g := harness.Start(t, cfg)
	g.WaitReady(t, "web", 1, 20*time.Second)

	write(newCert, newKey)
	var said []string
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := g.Srv.Reload(ctx, "", func(format string, args ...any) { said = append(said, fmt.Sprintf(format, args...)) }); err != nil {
		t.Fatalf("reload: %v", err)
	}
	c, err := tls.Dial("tcp", g.Srv.TLSAddr(), &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	names := c.ConnectionState().PeerCertificates[0].DNSNames
	c.Close()
	t.Logf("reload said %q; HTTPS serves %v", said, names)
	if !slices.ContainsFunc(said, func(m string) bool { return strings.Contains(m, "tls") }) {
		t.Errorf("tls.cert_file/key_file changed, reload said nothing (the doc says it reports a tls: change); the listener still serves %v", names)
	}
}
