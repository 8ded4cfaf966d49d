package gateway_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

// serialSeen matches the fault app's /serial answer: what the app itself
// saw of concurrency, so that overlap is detected by the app, not by
// gatehouse's own count.
var serialSeen = regexp.MustCompile(`^instance (\S+) concurrent (\d+) max (\d+) overlaps (\d+)$`)

// burst sends clients × each GETs of path from clients goroutines at once.
func burst(c *client, clients, each int, path string) []result {
	var mu sync.Mutex
	var out []result
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for range each {
				r := c.get(path)
				mu.Lock()
				out = append(out, r)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return out
}

// checkSerial fails the test for a 200 whose app saw another request in
// progress, and returns the 200s per instance.
func checkSerial(t *testing.T, r result) string {
	t.Helper()
	m := serialSeen.FindStringSubmatch(r.body)
	if m == nil {
		t.Errorf("%v: not a /serial answer", r)
		return ""
	}
	if m[2] != "1" || m[3] != "1" || m[4] != "0" {
		t.Errorf("%v: the app saw %s requests at once (most %s, %s overlaps) under max_inflight 1", r, m[2], m[3], m[4])
	}
	return m[1]
}

// TestMaxInflight: an app that serves one request at a time, behind
// max_inflight 1, is never sent two at once; eight clients' requests queue
// and all succeed within hold_timeout; with a small queue_size the rest
// get 503 queue_full at once, and diagnose names overload first with the
// limit and the figures.
func TestMaxInflight(t *testing.T) {
	t.Parallel()
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		for _, n := range []int{1, 2} {
			t.Run(fmt.Sprintf("%d instances", n), func(t *testing.T) {
				t.Parallel()
				t.Run("queue", func(t *testing.T) {
					t.Parallel()
					g := startFaultFor(t, proto, n, func(a *config.App) {
						a.MaxInflight = 1
						a.HoldTimeout = config.Duration(30 * time.Second)
						a.RequestTimeout = config.Duration(30 * time.Second)
					})
					c := newClientFor(t, g, proto, 60*time.Second)
					rs := burst(c, 8, 3, "/serial?d=40ms")
					served := map[string]int{}
					for _, r := range rs {
						if r.err != nil || r.status != 200 {
							t.Errorf("%v: want 200 (held, then served)", r)
							continue
						}
						served[checkSerial(t, r)]++
					}
					if len(served) != n {
						t.Errorf("answers came from %d instances (%v), want %d", len(served), served, n)
					}
					held := 0
					for _, r := range rs {
						if e, ok := accessFor(t, g, r.id); ok && e.Held > 0 {
							held++
						}
					}
					if held < 8-n {
						t.Errorf("%d of %d requests were held; with 8 clients and %d slots at least %d must wait", held, len(rs), n, 8-n)
					}
					checkCauses(t, g, c.all())
				})
				t.Run("queue_full", func(t *testing.T) {
					t.Parallel()
					since := time.Now()
					g := startFaultFor(t, proto, n, func(a *config.App) {
						a.MaxInflight = 1
						a.QueueSize = 2
						a.HoldTimeout = config.Duration(30 * time.Second)
						a.RequestTimeout = config.Duration(30 * time.Second)
					})
					c := newClientFor(t, g, proto, 60*time.Second)
					// Each request takes a second: the eight arrive while the
					// first n are in the app and two wait.
					rs := burst(c, 8, 1, "/serial?d=1s")
					full := 0
					for _, r := range rs {
						switch {
						case r.err != nil:
							t.Errorf("%v", r)
						case r.status == 200:
							checkSerial(t, r)
						case r.status == 503 && r.cause == "queue_full":
							full++
							if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 {
								t.Errorf("%v: Retry-After %q", r, r.header.Get("Retry-After"))
							}
							if !strings.Contains(r.body, "busy at max_inflight 1") {
								t.Errorf("%v: the error page does not say the instances are busy at max_inflight 1", r)
							}
						default:
							t.Errorf("%v: want 200 or 503 queue_full", r)
						}
					}
					if ok := len(rs) - full; full == 0 || ok < n+2 {
						t.Errorf("%d served, %d queue_full; want at least %d served (%d in the app, 2 queued) and the rest queue_full", ok, full, n+2, n)
					}
					checkCauses(t, g, c.all())
					rep, err := g.Srv.Diagnose(since)
					if err != nil {
						t.Fatal(err)
					}
					if len(rep.Findings) == 0 {
						t.Fatal("diagnose found nothing")
					}
					f := rep.Findings[0]
					wantTitle := fmt.Sprintf("%d requests were refused while %d instance", full, n)
					if f.ID != "overload" || !strings.Contains(f.Title, wantTitle) || !strings.Contains(f.Title, "max_inflight 1") || f.RequestsAffected != full {
						t.Errorf("first finding: %+v\nwant overload naming %q and max_inflight 1, %d requests affected", f, wantTitle, full)
					}
					evd := strings.Join(f.Evidence, "\n")
					for _, want := range []string{fmt.Sprintf("%d × 503 queue_full", full), "queue_size 2", "requests were held"} {
						if !strings.Contains(evd, want) {
							t.Errorf("overload evidence lacks %q:\n%s", want, evd)
						}
					}
					if !strings.Contains(f.Fix, "max_inflight") || !strings.Contains(f.Fix, "autoscale") {
						t.Errorf("overload fix: %q; want it to suggest instances (autoscale) or max_inflight", f.Fix)
					}
				})
			})
		}
		// Held past hold_timeout while the one instance is busy: 503
		// instances_busy (not no_ready_instance: nothing is down) with
		// Retry-After, whose detail and hint say busy.
		t.Run("hold_timeout busy", func(t *testing.T) {
			t.Parallel()
			g := startFaultFor(t, proto, 1, func(a *config.App) {
				a.MaxInflight = 1
				a.HoldTimeout = config.Duration(300 * time.Millisecond)
			})
			c := newClientFor(t, g, proto, 30*time.Second)
			rs := burst(c, 3, 1, "/serial?d=1s")
			busy := 0
			for _, r := range rs {
				switch {
				case r.status == 200:
					checkSerial(t, r)
				case r.status == 503 && r.cause == "instances_busy":
					busy++
					e, _ := accessFor(t, g, r.id)
					if !strings.Contains(e.Detail, "1 instance busy at max_inflight 1") || !strings.Contains(r.body, "add instances") {
						t.Errorf("%v: access detail %q; want the instance named busy at max_inflight 1, and a hint to add instances", r, e.Detail)
					}
					if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 {
						t.Errorf("%v: Retry-After %q", r, r.header.Get("Retry-After"))
					}
				default:
					t.Errorf("%v: want 200 or 503 instances_busy", r)
				}
			}
			if busy != 2 {
				t.Errorf("%d instances_busy, want 2 (one served, two held past 300ms)", busy)
			}
			checkCauses(t, g, c.all())
		})
	})
}

// max_inflight is reloaded live: the instance keeps running (same pid),
// and from the reload on the app is no longer sent two requests at once.
func TestMaxInflightReload(t *testing.T) {
	t.Parallel()
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		dir := t.TempDir()
		path := filepath.Join(dir, "gatehouse.yaml")
		bin, _ := json.Marshal(testutil.BuildBinary(t, testutil.FaultAppPkg))
		dd, _ := json.Marshal(filepath.Join(dir, "data"))
		// The listeners for proto, as startFor makes them.
		var listeners string
		var roots *x509.CertPool
		switch proto {
		case "h2":
			tc := config.Default()
			roots = harness.TLS(t, tc)
			cf, _ := json.Marshal(tc.TLS.CertFile)
			kf, _ := json.Marshal(tc.TLS.KeyFile)
			listeners = fmt.Sprintf("tls:\n  listen: \"127.0.0.1:0\"\n  cert_file: %s\n  key_file: %s\n  redirect_http: false\n", cf, kf)
		case "h2c":
			listeners = "h2c: true\n"
		}
		write := func(limit int) {
			yaml := fmt.Sprintf("listen: \"127.0.0.1:0\"\nadmin: \"127.0.0.1:0\"\ndata_dir: %s\n%sapps:\n  web:\n    command: [%s]\n    health: {path: /healthz}\n    max_inflight: %d\n", dd, listeners, bin, limit)
			if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		write(0)
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		g := harness.Start(t, cfg)
		g.H2Roots = roots
		g.WaitReady(t, "web", 1, 20*time.Second)
		pid := g.Instances("web")[0].PID
		c := newClientFor(t, g, proto, 60*time.Second)
		overlapped := false
		for _, r := range burst(c, 4, 1, "/serial?d=300ms") {
			if m := serialSeen.FindStringSubmatch(r.body); m != nil && m[2] != "1" {
				overlapped = true
			}
		}
		if !overlapped {
			t.Fatal("without max_inflight four requests at once never overlapped in the app: the test cannot tell the limit's effect")
		}

		write(1)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := g.Srv.Reload(ctx, "", func(string, ...any) {}); err != nil {
			t.Fatalf("reload: %v", err)
		}
		if in := g.Instances("web"); len(in) != 1 || in[0].PID != pid {
			t.Fatalf("after reloading max_inflight the instances are %+v; want the same process %d", in, pid)
		}
		for _, r := range burst(c, 4, 2, "/serial?d=30ms") {
			if r.err != nil || r.status != 200 {
				t.Errorf("%v: want 200", r)
				continue
			}
			m := serialSeen.FindStringSubmatch(r.body)
			if m == nil || m[2] != "1" {
				t.Errorf("%v: the app had other requests at once after max_inflight 1 was reloaded", r)
			}
		}
	})
}

// A request held at max_inflight is not given the slot of an attempt
// that just failed on a dying instance: the failed member is taken out of
// rotation before its slot is freed, so the held request waits for the
// replacement instead of being sent into the dead process (connect
// refused: with max_attempts 1 a 502 for a request that was only held).
func TestMaxInflightNoHandOverFromFailedAttempt(t *testing.T) {
	t.Parallel()
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		g := startFaultFor(t, proto, 1, func(a *config.App) {
			a.MaxInflight = 1
			a.MaxAttempts = 1
			a.HoldTimeout = config.Duration(30 * time.Second)
			a.RequestTimeout = config.Duration(30 * time.Second)
		})
		c := newClientFor(t, g, proto, 60*time.Second)
		p := g.Srv.Supervisor().App("web").Pool()
		crashed := make(chan result, 1)
		go func() { crashed <- c.get("/crash-after?d=1s") }()
		testutil.WaitFor(t, 10*time.Second, "the crashing request in the instance", func() bool { return p.Inflight() == 1 })
		held := make(chan result, 1)
		go func() { held <- c.get("/") }()
		testutil.WaitFor(t, 10*time.Second, "the second request held at the limit", func() bool { return p.Waiting() == 1 })
		if r := <-crashed; r.status != 502 {
			t.Errorf("%v: want 502 from the request the instance died under", r)
		}
		r := <-held
		if r.err != nil || r.status != 200 {
			t.Fatalf("%v: want 200 from the replacement (the request was only held)", r)
		}
		if e, ok := accessFor(t, g, r.id); !ok || e.Attempts != 1 || len(e.RetriedCauses) > 0 {
			t.Errorf("held request's access entry %+v: want one attempt, on the replacement", e)
		}
	})
}
