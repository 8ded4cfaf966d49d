package cli_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testutil"
)

// A second gatehouse on the data_dir of a running one refuses to start,
// naming the pid that holds it; after an upgrade the successor holds it
// (passed on in the handover), and is named.
func TestSecondGatehouseOnADataDirIsRefused(t *testing.T) {
	t.Parallel()
	r := newUpgradeRig(t, 1)
	pid := r.start(t)
	r.instances(t, 1)
	second := filepath.Join(r.dir, "second.yaml")
	yaml := fmt.Sprintf("listen: \"127.0.0.1:%d\"\nadmin: \"127.0.0.1:%d\"\ndata_dir: %q\napps:\n  web:\n    command: [%q]\n",
		testutil.FreePort(t), testutil.FreePort(t), r.dataDir, r.fault)
	if err := os.WriteFile(second, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	refusedBy := func(holder int) {
		t.Helper()
		_, stderr, code := gatehouse(t, r.dir, "run", "-c", second)
		want := fmt.Sprintf("is in use: another gatehouse (pid %d) holds %s", holder, filepath.Join(r.dataDir, "gatehouse.lock"))
		if code != 1 || !strings.Contains(stderr, want) {
			t.Errorf("a second gatehouse on the data_dir of pid %d: exit %d, stderr:\n%s\nwant exit 1 and %q", holder, code, stderr, want)
		}
	}
	refusedBy(pid)

	u := r.upgrade(t)
	if u.code != 0 || u.newPID <= 0 {
		t.Fatalf("upgrade: exit %d, new pid %d\n%s", u.code, u.newPID, u.out.String())
	}
	r.serving(t, pid, u.newPID)
	refusedBy(u.newPID)
}

// The line that says where gatehouse listens names the HTTPS listener
// too, when there is one.
func TestStartupLineNamesTheHTTPSListener(t *testing.T) {
	t.Parallel()
	ca := testutil.NewCA(t, "startup line test CA")
	certFile, keyFile := testutil.KeyPairFiles(t, ca.Issue(t, testutil.Leaf{Names: []string{"127.0.0.1"}}))
	tlsAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	f := newUpgradeFixture(t, nil, "1s", fmt.Sprintf("tls: {listen: %q, cert_file: %q, key_file: %q}", tlsAddr, certFile, keyFile))
	var line string
	for l := range strings.SplitSeq(f.g.stderr.String(), "\n") {
		if strings.Contains(l, "gatehouse running") {
			line = l
		}
	}
	if !strings.Contains(line, "listen="+f.listen) || !strings.Contains(line, "https="+tlsAddr) {
		t.Errorf("startup line %q: want listen=%s and https=%s", line, f.listen, tlsAddr)
	}
}
