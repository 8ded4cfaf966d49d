package cli_test

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testutil"
)

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

// Zero config: `gatehouse run -- CMD` runs CMD as app "web" with a PORT of
// its own and serves it through the gateway.
func TestRunZeroConfig(t *testing.T) {
	dir := t.TempDir()
	fault := testutil.BuildBinary(t, testutil.FaultAppPkg)
	testutil.BuildBinary(t, gatehousePkg)
	listen := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	adminAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	g := startGatehouse(t, dir, "run", "--listen", listen, "--admin", adminAddr, "--", fault)
	c := httpClient(t, 5*time.Second)
	base := "http://" + listen

	var body string
	testutil.WaitFor(t, 15*time.Second, "GET / through the gateway", func() bool {
		select {
		case <-g.done:
			t.Fatalf("gatehouse exited early\nstderr:\n%s", g.stderr)
		default:
		}
		resp, err := c.Get(base + "/")
		if err != nil {
			return false
		}
		body = readBody(t, resp)
		return resp.StatusCode == 200
	})
	var id string
	var pid int
	if _, err := fmt.Sscanf(body, "%s %d", &id, &pid); err != nil || id != "web-1" || pid <= 0 {
		t.Fatalf("GET / = %q, want \"web-1 PID\"", body)
	}
	g.track([]int{pid}, nil)

	env := func(key string) string {
		resp, err := c.Get(base + "/env?key=" + key)
		if err != nil {
			t.Fatal(err)
		}
		return readBody(t, resp)
	}
	port, err := strconv.Atoi(env("PORT"))
	_, listenPort, _ := net.SplitHostPort(listen)
	if err != nil || port <= 0 || strconv.Itoa(port) == listenPort {
		t.Errorf("instance PORT = %q; want a port of its own, not the gateway's %s", env("PORT"), listenPort)
	}
	if got := env("WEBSITES_PORT"); got != strconv.Itoa(port) {
		t.Errorf("WEBSITES_PORT = %q, want %d", got, port)
	}
	if got := env("GATEHOUSE_APP"); got != "web" {
		t.Errorf("GATEHOUSE_APP = %q, want web", got)
	}

	if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := g.wait(t, 15*time.Second); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
	testutil.WaitFor(t, 2*time.Second, "the app process to be gone", func() bool { return !testutil.ProcessAlive(pid) })
	// The default data_dir is ./.gatehouse of the working directory.
	if _, err := os.Stat(filepath.Join(dir, ".gatehouse", "access.log")); err != nil {
		t.Errorf("no access log in the default data_dir: %v", err)
	}
}
