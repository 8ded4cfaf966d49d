package cli_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testutil"
)

// A FastAPI app whose routes start at / is served under /api/ with
// strip_prefix, under /legacy/ through a rewrite, and /old-docs/
// redirects: the config a user moving off nginx writes, run by the real
// gatehouse binary with uvicorn.
func TestRouteRulesInFrontOfFastAPI(t *testing.T) {
	t.Parallel()
	testutil.SkipInShort(t)
	dir := t.TempDir()
	t.Cleanup(func() { killUnder(dir) })
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("testdata", "routes", "fastapi"))); err != nil {
		t.Fatal(err)
	}
	env := needRuntime(t, dir, pythonServer("uvicorn", "fastapi"))
	listen := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	admin := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	writeAppFile(t, filepath.Join(dir, "gatehouse.yaml"), fmt.Sprintf(`listen: %q
admin: %q
apps:
  api:
    command: uvicorn main:app --host 127.0.0.1 --port $PORT
    health: {path: /items}
    routes:
      - match: /api/
        strip_prefix: true
      - match: /legacy/
        rewrite: {from: "^/legacy/(.*)$", to: "/items/$1"}
      - match: /old-docs/
        strip_prefix: true
        redirect: {to: "/api/items{path}{query}", status: 301}
`, listen, admin))
	if stdout, stderr, code := gatehouse(t, dir, "validate"); code != 0 {
		t.Fatalf("gatehouse validate: exit %d\n%s%s", code, stdout, stderr)
	}
	bin := testutil.BuildBinary(t, gatehousePkg)
	g := startGatehouseAt(t, bin, dir, env, "run")
	c := httpClient(t, 10*time.Second)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	testutil.WaitFor(t, 60*time.Second, "the FastAPI app to answer through gatehouse", func() bool {
		select {
		case <-g.done:
			t.Fatalf("gatehouse exited early (%v)\nstderr:\n%s", g.cmd.ProcessState, g.stderr)
		default:
		}
		resp, err := c.Get("http://" + listen + "/api/items")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	for _, tc := range []struct {
		path   string
		status int
		want   map[string]string // fields of the app's JSON answer, or Location
	}{
		{"/api/items", 200, map[string]string{"path": "/items", "prefix": "/api"}},
		{"/api/items/7", 200, map[string]string{"path": "/items/7", "item": "7"}},
		{"/legacy/42", 200, map[string]string{"path": "/items/42", "item": "42"}},
		{"/old-docs/9?x=1", 301, map[string]string{"Location": "/api/items/9?x=1"}},
	} {
		resp, err := c.Get("http://" + listen + tc.path)
		if err != nil {
			t.Fatalf("GET %s: %v", tc.path, err)
		}
		body := readBody(t, resp)
		if resp.StatusCode != tc.status {
			t.Errorf("GET %s: %d %q, want %d", tc.path, resp.StatusCode, body, tc.status)
			continue
		}
		got := map[string]string{}
		if loc := resp.Header.Get("Location"); loc != "" {
			got["Location"] = loc
		} else {
			var m map[string]any
			if err := json.Unmarshal([]byte(body), &m); err != nil {
				t.Errorf("GET %s: %q is not the app's JSON: %v", tc.path, body, err)
			}
			for k := range tc.want {
				got[k] = fmt.Sprint(m[k])
			}
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("GET %s: %s = %q, want %q (answer %q)", tc.path, k, got[k], v, strings.TrimSpace(body))
			}
		}
	}
	g.signal(t, syscall.SIGTERM)
	if code := g.wait(t, 45*time.Second); code != 0 {
		t.Errorf("gatehouse exit %d after SIGTERM, want 0\nstderr:\n%s", code, g.stderr)
	}
}
