package admin_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// Dumps are taken, listed, downloaded and removed only with the admin
// token, and only on the admin listener: the public one forwards the
// same paths to the app.
func TestDumpsNeedTheTokenAndStayOffThePublicListener(t *testing.T) {
	if _, err := exec.LookPath("gcore"); err != nil {
		if os.Getenv("GATEHOUSE_DUMP_TESTS") == "1" {
			t.Fatal("gcore (gdb) not installed, and GATEHOUSE_DUMP_TESTS=1 needs it")
		}
		t.Skip("gcore (gdb) not installed")
	}
	t.Parallel()
	g, _ := startForExec(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, token := range []string{"", "wrong"} {
		cl := admin.NewClient(g.AdminURL, token)
		_, err := cl.Dump(ctx, "/api/apps/web/dump", "core", false)
		refused401(t, "dump with token "+token, err)
		_, err = cl.Dumps(ctx)
		refused401(t, "list with token "+token, err)
	}
	if evs := g.Events(telemetry.EventDumpStarted); len(evs) != 0 {
		t.Fatalf("a refused dump began: %+v", evs)
	}
	cl := admin.NewClient(g.AdminURL, execToken)
	m, err := cl.Dump(ctx, "/api/apps/web/dump", "core", false)
	if err != nil {
		t.Fatal(err)
	}
	if m.Runtime != "go" || m.Tool != "gcore" || m.Exe == "" || m.Size == 0 {
		t.Errorf("core of the Go fault app: %+v", m)
	}
	for _, token := range []string{"", "wrong"} {
		_, err := admin.NewClient(g.AdminURL, token).DownloadDump(ctx, m.Name, io.Discard)
		refused401(t, "download with token "+token, err)
		refused401(t, "remove with token "+token, admin.NewClient(g.AdminURL, token).RemoveDump(ctx, m.Name))
	}
	var core bytes.Buffer
	if _, err := cl.DownloadDump(ctx, m.Name, &core); err != nil {
		t.Fatal(err)
	}
	if _, err := gzip.NewReader(&core); err != nil {
		t.Errorf("the download is not gzip: %v", err)
	}
	// The public listener has no such route: the app answers it.
	resp, err := http.Get(g.URL + "/api/dumps/" + m.Name)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK || bytes.HasPrefix(body, []byte{0x1f, 0x8b}) {
		t.Errorf("the public listener answered %d with %d bytes for a dump", resp.StatusCode, len(body))
	}
	if err := cl.RemoveDump(ctx, m.Name); err != nil {
		t.Fatal(err)
	}
	left, err := cl.Dumps(ctx)
	if err != nil || len(left) != 0 {
		t.Errorf("after the remove: %+v, %v", left, err)
	}
	if evs := g.Events(telemetry.EventDumpRemoved); len(evs) != 1 || !strings.Contains(evs[0].Detail, "admin token holder") {
		t.Errorf("dump_removed events %+v, want one naming who removed it", evs)
	}
}

func refused401(t *testing.T, what string, err error) {
	t.Helper()
	var he *admin.HTTPError
	if !errors.As(err, &he) || he.Status != http.StatusUnauthorized {
		t.Errorf("%s: %v, want a 401", what, err)
	}
}
