package gateway_test

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/pool"
)

// Two apps reloaded at once (two `gatehouse reload APP` at the same
// time) each get their own new rules: neither reload puts back the
// other app's routes as they were before it.
func TestRouteRulesOfAppsReloadedAtOnceAreBothKept(t *testing.T) {
	app := newEdgeApp(t)
	cfg := config.Default()
	pools := map[string]*pool.Pool{}
	gen := func(name string, i int) *config.App {
		ac := config.NewApp(name)
		ac.Routes = []config.Route{{Match: "/" + name + "/"}}
		ac.ResponseHeaders = &config.HeaderOps{Set: map[string]string{"X-Generation": strconv.Itoa(i)}}
		return ac
	}
	for _, name := range []string{"a", "b"} {
		p := pool.New(name, 100)
		m := pool.NewMember(name+"-1", app.addr)
		p.Add(m)
		m.SetState(pool.Ready)
		t.Cleanup(func() { p.Remove(m) })
		pools[name] = p
	}
	cfg.Apps = map[string]*config.App{"a": gen("a", 0), "b": gen("b", 0)}
	cfg.Order = []string{"a", "b"}
	gw := gateway.New(cfg, pools, gateway.Options{})
	t.Cleanup(gw.Close)
	addr := serve(t, "h1", gw)
	c := protoClient(t, "h1")
	generation := func(name string) string {
		resp, err := c.Get(fmt.Sprintf("http://%s/%s/x", addr, name))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("/%s/x: %d", name, resp.StatusCode)
		}
		return resp.Header.Get("X-Generation")
	}
	for i := 1; i <= 200; i++ {
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for j, name := range []string{"a", "b"} {
			wg.Go(func() { errs[j] = gw.UpdateApp(gen(name, i)) })
		}
		wg.Wait()
		for j, name := range []string{"a", "b"} {
			if errs[j] != nil {
				t.Fatalf("reload %d of %s: %v", i, name, errs[j])
			}
			if got, want := generation(name), strconv.Itoa(i); got != want {
				t.Fatalf("after reload %d of both apps, app %s answers with the rules of reload %s", i, name, got)
			}
		}
	}
}
