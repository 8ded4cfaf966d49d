package cli_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// A gatehouse told to stop (SIGTERM: systemctl stop) while an upgrade it
// started waits for its successor stops, as a stop does, whichever way the
// upgrade began: it does not leave its apps running with no gatehouse (the
// old one gone, the successor unable to say it is ready to a process that
// exited), and no successor serves on after it.
func TestSIGTERMDuringAnUpgradeStops(t *testing.T) {
	t.Parallel()
	for _, trigger := range []string{"gatehouse upgrade", "SIGUSR2"} {
		t.Run(trigger, func(t *testing.T) {
			t.Parallel()
			f := newUpgradeFixture(t, nil, "1s")
			pid := f.instancePID(t)
			// A successor slow to start: the old process waits for it. Its
			// sleep holds none of the sockets handed to it (from fd 3 on),
			// which would accept after gatehouse stopped.
			pidFile := filepath.Join(f.dir, "successor.pid")
			f.successor(t, "echo $$ > "+pidFile+"; sleep 3 3<&- 4<&- 5<&- 6<&- 7<&-")
			var op <-chan opResult
			if trigger == "SIGUSR2" {
				f.g.signal(t, syscall.SIGUSR2)
			} else {
				op = f.upgrade(t)
			}
			testutil.WaitFor(t, 10*time.Second, "upgrade begin", func() bool {
				return strings.Contains(f.g.stderr.String(), "upgrade begin")
			})
			succ := waitPIDFile(t, pidFile, "the successor to start")
			f.stop(t, 30*time.Second)
			if op != nil {
				if r := waitOp(t, op, 30*time.Second, "gatehouse upgrade"); r.code == 0 {
					t.Errorf("gatehouse upgrade exit 0 although gatehouse stopped instead:\n%s", r.out)
				}
			}
			// The slow successor (the same pid once it execs gatehouse) must
			// not come up: it is gone, or nothing would stop it serving.
			if !testutil.Eventually(10*time.Second, func() bool { return !testutil.ProcessAlive(succ) }) {
				t.Errorf("the successor (pid %d) still runs after gatehouse stopped", succ)
			}
			if testutil.ProcessAlive(pid) {
				t.Errorf("the app (pid %d) still runs after gatehouse stopped; something serves: %v",
					pid, answers(f.c, f.listen))
			}
			if !refused(f.listen) {
				t.Errorf("%s still accepts connections after gatehouse stopped", f.listen)
			}
		})
	}
}

// A successor that cannot take over (its config fails, its listen address
// is taken, it is stopped before it is ready) is killed, and the old
// gatehouse serves on with the same app processes, which it has taken
// back: `gatehouse upgrade` exits 1 with the reason, and a later stop
// stops those processes.
func TestUpgradeRefusedByTheSuccessorServesOn(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		env  map[string]string
		// probeTimeout is the app's health timeout.
		probeTimeout string
		// prepare breaks the successor; during, if set, acts while the
		// upgrade waits for it.
		prepare func(t *testing.T, f *fixture)
		during  func(t *testing.T, f *fixture)
		reason  string
	}{
		{
			name: "config fails validation", probeTimeout: "1s",
			prepare: func(t *testing.T, f *fixture) {
				f.writeConfig(t, f.listen, f.config(t)+"bogus: [\n")
			},
			reason: "invalid YAML",
		},
		{
			name: "listen address taken", probeTimeout: "1s",
			prepare: func(t *testing.T, f *fixture) {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { ln.Close() })
				f.writeConfig(t, ln.Addr().String(), f.config(t))
			},
			reason: "address already in use",
		},
		{
			// The probe of each adopted instance takes 1.5s: the
			// successor is stopped while it waits for it.
			name: "successor stopped before it is ready", probeTimeout: "5s",
			env: map[string]string{"FAULT_HEALTH_DELAY": "1500ms"},
			prepare: func(t *testing.T, f *fixture) {
				f.successor(t, "echo $$ > "+filepath.Join(f.dir, "successor.pid"))
			},
			during: func(t *testing.T, f *fixture) {
				testutil.WaitFor(t, 20*time.Second, "the successor adopting", func() bool {
					return strings.Contains(f.g.stderr.String(), "adopted without a restart")
				})
				syscall.Kill(waitPIDFile(t, filepath.Join(f.dir, "successor.pid"), "the successor's pid"), syscall.SIGTERM)
			},
			reason: "did not take over",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newUpgradeFixture(t, tc.env, tc.probeTimeout)
			pid := f.instancePID(t)
			tc.prepare(t, f)
			op := f.upgrade(t)
			if tc.during != nil {
				tc.during(t, f)
			}
			r := waitOp(t, op, 70*time.Second, "gatehouse upgrade")
			if r.code != 1 || !strings.Contains(r.out, tc.reason) {
				t.Errorf("gatehouse upgrade: exit %d, want 1 with %q:\n%s", r.code, tc.reason, r.out)
			}
			select {
			case <-f.g.done:
				t.Fatalf("the old gatehouse exited (%v)", f.g.cmd.ProcessState)
			default:
			}
			waitReady(t, f.c, f.adminURL, "web", 1, f.g)
			if got := f.instancePID(t); got != pid {
				t.Errorf("instance pid %d after the failed upgrade, want %d (not restarted)", got, pid)
			}
			if !answers(f.c, f.listen) {
				t.Errorf("the old gatehouse does not answer on %s after the failed upgrade", f.listen)
			}
			// The event reaches events.log through its writer's queue, a
			// moment after gatehouse upgrade has its answer.
			var events []byte
			if !testutil.Eventually(5*time.Second, func() bool {
				events, _ = os.ReadFile(filepath.Join(f.dir, "data", "events.log"))
				return strings.Contains(string(events), "upgrade_abort")
			}) {
				t.Errorf("no upgrade_abort in events.log:\n%s", events)
			}
			// The instances are the old gatehouse's again: its stop stops them.
			f.g.cmd.Process.Signal(syscall.SIGTERM)
			if code := f.g.wait(t, 30*time.Second); code != 0 {
				t.Errorf("exit %d after SIGTERM, want 0", code)
			}
			testutil.WaitFor(t, 10*time.Second, "the app to be stopped", func() bool { return !testutil.ProcessAlive(pid) })
		})
	}
}

// stream reads one streamed answer to its end in the background.
type stream struct {
	body string
	err  error // nil: it ended with its terminating chunk
	done chan struct{}
	// first is closed when its first event arrived.
	first chan struct{}
}

func openStream(t *testing.T, c *http.Client, url string) *stream {
	t.Helper()
	s := &stream{done: make(chan struct{}), first: make(chan struct{})}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	go func() {
		defer close(s.done)
		defer resp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(buf)
			b.Write(buf[:n])
			if n > 0 && b.Len() == n {
				close(s.first)
			}
			if err != nil {
				if err != io.EOF {
					s.err = err
				}
				s.body = b.String()
				return
			}
		}
	}()
	select {
	case <-s.first:
	case <-time.After(20 * time.Second):
		t.Fatalf("no first event from %s", url)
	}
	return s
}

func (s *stream) wait(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(d):
		t.Fatalf("the stream did not end within %v", d)
	}
}

// Across an upgrade the old process ends its event streams the way an app
// would, with the terminating chunk after a whole event (their clients
// reconnect, to the new process), while another chunked answer in flight
// is not ended early as if complete: it completes, or is cut off where its
// client can see it.
func TestUpgradeEndsEventStreamsCleanly(t *testing.T) {
	t.Parallel()
	f := newUpgradeFixture(t, nil, "1s")
	// No client-side timeout: the streams outlive the fixture's 20s.
	c := &http.Client{Transport: &http.Transport{}}
	defer c.CloseIdleConnections()
	events := openStream(t, c, "http://"+f.listen+"/sse?n=100000&every=50ms")
	// 30 parts over 1.5s: within the drain (stop_timeout 2s).
	chunked := openStream(t, c, "http://"+f.listen+"/sse?n=30&every=50ms&type=text/plain")
	// 400 parts over 20s: longer than the drain.
	long := openStream(t, c, "http://"+f.listen+"/sse?n=400&every=50ms&type=text/plain")
	if r := waitOp(t, f.upgrade(t), 70*time.Second, "gatehouse upgrade"); r.code != 0 {
		t.Fatalf("gatehouse upgrade: exit %d\n%s", r.code, r.out)
	}
	if code := f.g.wait(t, 30*time.Second); code != 0 {
		t.Errorf("the old gatehouse exit %d, want 0", code)
	}
	events.wait(t, 10*time.Second)
	if events.err != nil {
		t.Errorf("the event stream was cut off (%v) instead of ended; it had %q", events.err, tail(events.body))
	}
	if !strings.HasSuffix(events.body, "\n\n") {
		t.Errorf("the event stream ended within an event: %q", tail(events.body))
	}
	chunked.wait(t, 30*time.Second)
	if n := strings.Count(chunked.body, "data: "); chunked.err == nil && n != 30 {
		t.Errorf("the chunked answer ended cleanly with %d of its 30 parts: a truncation its client cannot see", n)
	}
	long.wait(t, 30*time.Second)
	if n := strings.Count(long.body, "data: "); long.err == nil && n != 400 {
		t.Errorf("the long chunked answer ended cleanly with %d of its 400 parts: a truncation its client cannot see", n)
	}
	// A client that reconnects is served, by the new process.
	again := openStream(t, c, "http://"+f.listen+"/sse?n=2&every=50ms")
	again.wait(t, 20*time.Second)
	if again.err != nil || strings.Count(again.body, "data: ") != 2 {
		t.Errorf("the reconnected stream: %v, %q", again.err, again.body)
	}
}

// Keep-alive clients sending POSTs (which a client does not send again on
// its own) through three upgrades in a row see no failed request: every
// connection the old process accepted is answered, the last answers say
// Connection: close, and the next connection goes to the new process.
func TestUpgradeUnderKeepAlivePOSTsFailsNone(t *testing.T) {
	t.Parallel()
	f := newUpgradeFixture(t, nil, "1s")
	// Slow answers (the app sleeps 0-40ms) and streamed ones (their head
	// out at once, their end 60ms later) keep requests in flight as each
	// old process drains.
	const clients = 16
	stop := make(chan struct{})
	type tally struct {
		ok   int
		errs []string
	}
	results := make(chan tally, clients)
	var answered atomic.Int64
	for i := range clients {
		go func() {
			tr := &http.Transport{MaxIdleConnsPerHost: 1}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr, Timeout: 20 * time.Second}
			var tl tally
			for n := 0; ; n++ {
				select {
				case <-stop:
					results <- tl
					return
				default:
				}
				body := fmt.Sprintf("client %d request %d", i, n)
				url := fmt.Sprintf("http://%s/echo?d=%dms", f.listen, n%5*10)
				if n%3 == 0 {
					url = fmt.Sprintf("http://%s/sleep?d=%dms", f.listen, n%5*10)
				}
				if n%4 == 1 {
					// A streamed answer, the connection then reused at once.
					url = fmt.Sprintf("http://%s/sse?n=3&every=30ms&type=text/plain", f.listen)
				}
				resp, err := c.Post(url, "text/plain", strings.NewReader(body))
				if err != nil {
					tl.errs = append(tl.errs, err.Error())
					continue
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch {
				case err != nil:
					tl.errs = append(tl.errs, "reading the answer: "+err.Error())
				case resp.StatusCode != http.StatusOK:
					tl.errs = append(tl.errs, fmt.Sprintf("%d %s", resp.StatusCode, b))
				case n%3 != 0 && n%4 != 1 && string(b) != body:
					tl.errs = append(tl.errs, fmt.Sprintf("echo %q, want %q", b, body))
				default:
					tl.ok++
					answered.Add(1)
				}
			}
		}()
	}
	olds := []int{f.g.cmd.Process.Pid}
	progress(t, &answered, 50, "answers before the first upgrade")
	for i := range 3 {
		r := waitOp(t, f.upgrade(t), 70*time.Second, "gatehouse upgrade")
		if r.code != 0 {
			t.Errorf("upgrade %d: exit %d\n%s", i+1, r.code, r.out)
		}
		if m := upgradedRE.FindStringSubmatch(r.out); m != nil && i < 2 {
			pid, _ := strconv.Atoi(m[1])
			olds = append(olds, pid)
		}
		progress(t, &answered, 50, fmt.Sprintf("answers after upgrade %d", i+1))
	}
	// Past the last idle grace: every old process has answered what it
	// accepted, and is gone.
	testutil.WaitFor(t, 30*time.Second, fmt.Sprintf("the old gatehouses %v to exit", olds), func() bool {
		return !slices.ContainsFunc(olds, testutil.ProcessAlive)
	})
	close(stop)
	var ok int
	var errs []string
	for range clients {
		tl := <-results
		ok += tl.ok
		errs = append(errs, tl.errs...)
	}
	t.Logf("%d requests answered, %d failed", ok, len(errs))
	if len(errs) > 0 {
		t.Errorf("%d of %d POSTs failed across the upgrades; first: %q", len(errs), ok+len(errs), errs[:min(5, len(errs))])
	}
	if ok == 0 {
		t.Errorf("no request was answered")
	}
	// The old gatehouse handed over; its successors are left to cleanup.
	f.g.wait(t, 30*time.Second)
}

// The HTTPS listener goes across an upgrade like the plain one: the new
// process answers with the same certificate, and clients in the middle of
// it, HTTP/2 ones told GOAWAY by the old process among them, see no failed
// request.
func TestUpgradeHandsOverTheHTTPSListener(t *testing.T) {
	t.Parallel()
	ca := testutil.NewCA(t, "upgrade test CA")
	cert := ca.Issue(t, testutil.Leaf{Names: []string{"127.0.0.1"}})
	certFile, keyFile := testutil.KeyPairFiles(t, cert)
	tlsAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	f := newUpgradeFixture(t, nil, "1s", fmt.Sprintf("tls: {listen: %q, cert_file: %q, key_file: %q}", tlsAddr, certFile, keyFile))
	type seen struct {
		proto string
		leaf  []byte
	}
	client := func(h2 bool) *http.Client {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}, Protocols: new(http.Protocols)}
		tr.Protocols.SetHTTP1(!h2)
		tr.Protocols.SetHTTP2(h2)
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr, Timeout: 20 * time.Second}
	}
	get := func(c *http.Client) (seen, error) {
		resp, err := c.Get("https://" + tlsAddr + "/pid")
		if err != nil {
			return seen{}, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return seen{}, fmt.Errorf("status %d", resp.StatusCode)
		}
		return seen{resp.Proto, resp.TLS.PeerCertificates[0].Raw}, nil
	}
	stop := make(chan struct{})
	type tally struct {
		ok     int
		protos map[string]int
		errs   []string
		other  int // answers with another certificate
	}
	results := make(chan tally, 8)
	var answered atomic.Int64
	for i := range 8 {
		go func() {
			c := client(i%2 == 0)
			tl := tally{protos: map[string]int{}}
			for {
				select {
				case <-stop:
					results <- tl
					return
				default:
				}
				s, err := get(c)
				switch {
				case err != nil:
					tl.errs = append(tl.errs, err.Error())
				case !bytes.Equal(s.leaf, cert.Certificate[0]):
					tl.other++
				default:
					tl.ok++
					tl.protos[s.proto]++
					answered.Add(1)
				}
			}
		}()
	}
	progress(t, &answered, 50, "HTTPS answers before the upgrade")
	if r := waitOp(t, f.upgrade(t), 70*time.Second, "gatehouse upgrade"); r.code != 0 {
		t.Errorf("gatehouse upgrade: exit %d\n%s", r.code, r.out)
	}
	if code := f.g.wait(t, 30*time.Second); code != 0 {
		t.Errorf("the old gatehouse exit %d, want 0", code)
	}
	progress(t, &answered, 50, "HTTPS answers from the new process alone")
	close(stop)
	var ok, other int
	var errs []string
	protos := map[string]int{}
	for range 8 {
		tl := <-results
		ok, other, errs = ok+tl.ok, other+tl.other, append(errs, tl.errs...)
		for p, n := range tl.protos {
			protos[p] += n
		}
	}
	t.Logf("%d answered (%v), %d failed", ok, protos, len(errs))
	if len(errs) > 0 {
		t.Errorf("%d HTTPS requests failed across the upgrade; first: %q", len(errs), errs[:min(5, len(errs))])
	}
	if other > 0 {
		t.Errorf("%d answers came with another certificate", other)
	}
	if protos["HTTP/2.0"] == 0 || protos["HTTP/1.1"] == 0 {
		t.Errorf("answers by protocol %v: want both", protos)
	}
}

// The admin API answers throughout an upgrade, and, once the new process
// serves, it is the new process that answers: a client that keeps its
// connection alive (a dashboard, a metrics scraper) is not answered for
// seconds more by the old process as it drains, whose supervisor has let
// go of every instance (and on which an operation would act on nothing).
func TestUpgradeKeepsTheAdminAPIAnswering(t *testing.T) {
	t.Parallel()
	for _, keepAlive := range []bool{true, false} {
		t.Run(fmt.Sprintf("keep-alive %v", keepAlive), func(t *testing.T) {
			t.Parallel()
			f := newUpgradeFixture(t, nil, "1s")
			tr := &http.Transport{DisableKeepAlives: !keepAlive}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			var polls, missing int
			poll := func() *admin.StatusResponse {
				polls++
				st := status(c, f.adminURL)
				if st == nil {
					missing++
				}
				return st
			}
			// A public client idle on its keep-alive connection: the old
			// process's drain keeps it for the idle grace.
			pub, err := net.Dial("tcp", f.listen)
			if err != nil {
				t.Fatal(err)
			}
			defer pub.Close()
			io.WriteString(pub, "GET /pid HTTP/1.1\r\nHost: x\r\n\r\n")
			pub.Read(make([]byte, 4096))
			poll()
			op := f.upgrade(t)
			var r opResult
		wait:
			for {
				select {
				case r = <-op:
					break wait
				case <-time.After(5 * time.Millisecond):
					poll()
				}
			}
			handedOver := time.Now()
			if r.code != 0 {
				t.Fatalf("gatehouse upgrade: exit %d\n%s", r.code, r.out)
			}
			old := f.g.cmd.Process.Pid
			// The new process serves: from now on (after a poll the old
			// one may still be answering) it answers, for as long as the
			// old one drains, its public client kept for the idle grace.
			var wrong []string
			testutil.Eventually(30*time.Second, func() bool {
				st := poll()
				if st != nil && (len(st.Apps) != 1 || len(st.Apps[0].Instances) != 1) && time.Since(handedOver) > 200*time.Millisecond {
					wrong = append(wrong, fmt.Sprintf("%+v", st.Apps))
				}
				return !testutil.ProcessAlive(old)
			})
			if missing > 0 {
				t.Errorf("%d of %d admin requests got no answer", missing, polls)
			}
			if len(wrong) > 0 {
				t.Errorf("%d answers after the handover from a process without the instances (the old one): %s", len(wrong), wrong[0])
			}
		})
	}
}

// While an upgrade waits for its successor, the old process serves every
// request through its instances; the admin API (gatehouse status, the
// metrics) must still show them, not an app with no instance for as long
// as the successor takes to adopt them (up to 60s).
func TestAdminStatusDuringAnUpgradeShowsTheInstances(t *testing.T) {
	t.Parallel()
	// Each adopted instance's probe takes 1.5s: the window is that long.
	f := newUpgradeFixture(t, map[string]string{"FAULT_HEALTH_DELAY": "1500ms"}, "5s")
	pid := f.instancePID(t)
	op := f.upgrade(t)
	testutil.WaitFor(t, 20*time.Second, "the successor adopting", func() bool {
		return strings.Contains(f.g.stderr.String(), "adopted without a restart")
	})
	st := status(f.c, f.adminURL)
	if r := waitOp(t, op, 70*time.Second, "gatehouse upgrade"); r.code != 0 {
		t.Fatalf("gatehouse upgrade: exit %d\n%s", r.code, r.out)
	}
	if st == nil || len(st.Apps) != 1 || len(st.Apps[0].Instances) != 1 || st.Apps[0].Instances[0].PID != pid {
		var apps any
		if st != nil {
			apps = st.Apps
		}
		t.Errorf("status during the upgrade: %+v; want web's one instance, pid %d", apps, pid)
	}
}

// An upgrade cannot carry a data_dir change: the new process would look
// for the running instances in the new data_dir, find none, and start a
// second set, while the first runs on with no gatehouse (two of every
// worker, ports and memory held for ever). An upgrade, or a reload that
// would apply another change through one, refuses it and says to stop and
// start; the old process serves on with its instances.
func TestUpgradeRefusesAMovedDataDir(t *testing.T) {
	t.Parallel()
	for _, op := range []string{"upgrade", "reload"} {
		t.Run(op, func(t *testing.T) {
			t.Parallel()
			f := newUpgradeFixture(t, nil, "1s")
			pid := f.instancePID(t)
			listen := f.listen
			if op == "reload" {
				// A change only an upgrade applies, with the data_dir's.
				listen = fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
			}
			f.writeConfig(t, listen, strings.Replace(f.config(t), "data_dir: data\n", "data_dir: data2\n", 1))
			r := waitOp(t, runAsync(t, f.real, f.dir, op, "--admin", f.admin), 70*time.Second, op)
			if r.code != 1 || !strings.Contains(r.out, "data_dir") {
				t.Errorf("gatehouse %s: exit %d, want 1 naming data_dir:\n%s", op, r.code, r.out)
			}
			select {
			case <-f.g.done:
				t.Fatalf("the old gatehouse exited: a new one took over with data_dir data2")
			default:
			}
			// A reload rolls the app's processes (its config is the same:
			// the program may be new) before it tries the upgrade.
			now := f.instancePID(t)
			if op == "upgrade" && now != pid {
				t.Errorf("instance pid %d, want %d", now, pid)
			}
			if !answers(f.c, f.listen) {
				t.Errorf("the old gatehouse does not answer on %s", f.listen)
			}
			f.g.cmd.Process.Signal(syscall.SIGTERM)
			f.g.wait(t, 30*time.Second)
			testutil.WaitFor(t, 10*time.Second, "the app to be stopped", func() bool {
				return !testutil.ProcessAlive(pid) && !testutil.ProcessAlive(now)
			})
		})
	}
}

// gatehouse as the first process of its PID namespace (a container's
// entrypoint) cannot hand over: when it exits, the kernel kills every
// process of the namespace, the new gatehouse and every app with it. The
// upgrade is refused, with the reason, and gatehouse serves on, rather
// than reporting success before the container dies.
func TestUpgradeRefusedAsAContainersFirstProcess(t *testing.T) {
	t.Parallel()
	testutil.SkipInShort(t)
	if err := exec.Command("unshare", "-fp", "--mount-proc", "true").Run(); err != nil {
		t.Skipf("cannot make a PID namespace here: %v", err)
	}
	f := prepareUpgradeFixture(t, nil, "1s")
	f.start(t, "unshare", "-fp", "--mount-proc", f.real, "run", "-c", f.cfgFile)
	r := waitOp(t, f.upgrade(t), 70*time.Second, "gatehouse upgrade")
	if r.code != 1 || !strings.Contains(r.out, "PID 1") {
		t.Errorf("gatehouse upgrade: exit %d, want 1 naming PID 1:\n%s", r.code, r.out)
	}
	// A first process that handed over regardless would take the
	// container down as it exits, a moment after the answer: time must
	// pass for that to show.
	time.Sleep(2 * time.Second)
	if !answers(f.c, f.listen) {
		t.Errorf("nothing answers on %s after the upgrade", f.listen)
	}
}

// --listen and --admin on the command line are not config changes: a
// reload compares the re-read file with them applied, and does not replace
// the gatehouse process (an upgrade) on every reload.
func TestReloadWithCommandLineAddressesDoesNotUpgrade(t *testing.T) {
	t.Parallel()
	f := prepareUpgradeFixture(t, nil, "1s")
	// The file's addresses are not the ones served (two of them: one
	// address for both is a config error).
	closed, closedAdmin := testutil.ClosedAddr(t), testutil.ClosedAddr(t)
	for closedAdmin == closed {
		closedAdmin = testutil.ClosedAddr(t)
	}
	f.writeConfig(t, closed, strings.Replace(f.config(t), f.admin, closedAdmin, 1))
	f.start(t, f.real, "run", "-c", f.cfgFile, "--listen", f.listen, "--admin", f.admin)
	r := waitOp(t, runAsync(t, f.real, f.dir, "reload", "--admin", f.admin), 70*time.Second, "gatehouse reload")
	if r.code != 0 || strings.Contains(r.out, "new gatehouse process") {
		t.Errorf("gatehouse reload: exit %d, want 0 without an upgrade:\n%s", r.code, r.out)
	}
	select {
	case <-f.g.done:
		t.Errorf("gatehouse exited: it upgraded on a reload that changed nothing")
	default:
	}
}

// A reload that moves `listen` applies it through an upgrade: the new
// process serves on the new address as soon as the reload returns (no
// connection refused there), and the old address is released once the old
// process is gone; the app process is the same.
func TestReloadMovesTheListenAddress(t *testing.T) {
	t.Parallel()
	f := newUpgradeFixture(t, nil, "1s")
	moved := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	f.writeConfig(t, moved, f.config(t))
	r := waitOp(t, runAsync(t, f.real, f.dir, "reload", "--admin", f.admin), 70*time.Second, "gatehouse reload")
	if r.code != 0 || !strings.Contains(r.out, "new gatehouse process") {
		t.Fatalf("gatehouse reload: exit %d, want 0 with an upgrade:\n%s", r.code, r.out)
	}
	if !answers(f.c, moved) {
		t.Errorf("nothing answers on the new address %s once the reload returned", moved)
	}
	if code := f.g.wait(t, 30*time.Second); code != 0 {
		t.Errorf("the old gatehouse exit %d, want 0", code)
	}
	if !refused(f.listen) {
		t.Errorf("the old address %s still accepts connections", f.listen)
	}
	if !answers(f.c, moved) {
		t.Errorf("nothing answers on %s after the old process exited", moved)
	}
}

// An upgrade hands the node to the successor, which serves: the node
// stays in rotation throughout. The old process answers one more request
// on each of its idle keep-alive connections (with Connection: close),
// and a load balancer's health check that keeps its connection (Envoy's
// does) sends its next /readyz there: it must pass, or the balancer
// takes the node out for the upgrade it was meant not to notice.
func TestReadyzPassesOnTheOldProcessAfterAnUpgrade(t *testing.T) {
	t.Parallel()
	f := newUpgradeFixture(t, nil, "1s", "health_prefix: /.gatehouse")
	type check struct {
		name, addr, path string
		conn             net.Conn
		br               *bufio.Reader
	}
	checks := []*check{
		{name: "public listener", addr: f.listen, path: "/.gatehouse/readyz"},
		{name: "admin listener", addr: f.admin, path: "/readyz"},
	}
	get := func(c *check) (int, string, error) {
		c.conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c.conn, "GET "+c.path+" HTTP/1.1\r\nHost: "+c.addr+"\r\n\r\n"); err != nil {
			return 0, "", err
		}
		resp, err := http.ReadResponse(c.br, nil)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b)), nil
	}
	for _, c := range checks {
		conn, err := net.Dial("tcp", c.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		c.conn, c.br = conn, bufio.NewReader(conn)
		if code, body, err := get(c); err != nil || code != 200 {
			t.Fatalf("%s: /readyz before the upgrade: %d %q %v", c.name, code, body, err)
		}
	}
	if r := waitOp(t, f.upgrade(t), 60*time.Second, "the upgrade"); r.code != 0 {
		t.Fatalf("upgrade exited %d:\n%s", r.code, r.out)
	}
	// The old process is into its shutdown once it has closed its
	// listening socket, which the successor holds on (it answers idle
	// connections for 2 s more).
	ln := listeningInode(t, f.listen)
	testutil.WaitFor(t, 10*time.Second, "the old gatehouse to close its listening socket", func() bool {
		return !holdsSocket(f.g.cmd.Process.Pid, ln)
	})
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			code, body, err := get(c)
			if err != nil {
				// Closed rather than answered: the client reconnects, to
				// the successor.
				t.Logf("the old process closed the kept-alive connection: %v", err)
				return
			}
			if code != 200 {
				t.Errorf("/readyz on a kept-alive connection after the upgrade: %d %q, want 200", code, body)
			}
		})
	}
}

// listeningInode is the inode of the socket listening on addr (an IPv4
// address), as /proc/net/tcp has it.
func listeningInode(t *testing.T, addr string) string {
	t.Helper()
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	ip := ap.Addr().As4()
	local := fmt.Sprintf("%02X%02X%02X%02X:%04X", ip[3], ip[2], ip[1], ip[0], ap.Port())
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
		if f := strings.Fields(l); len(f) > 9 && f[1] == local && f[3] == "0A" {
			return f[9]
		}
	}
	t.Fatalf("no socket listens on %s", addr)
	return ""
}

// holdsSocket reports whether pid has a descriptor of the socket inode.
func holdsSocket(pid int, inode string) bool {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if l, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && l == "socket:["+inode+"]" {
			return true
		}
	}
	return false
}

// A gatehouse killed (SIGKILL) in the middle of `gatehouse upgrade`,
// while its successor is still taking over, leaves the successor
// serving: it holds the listening sockets and adopts the instances (the
// same processes, not restarted), finds nobody to tell it is ready, says
// so in an upgrade_predecessor_gone event, and serves on as the one
// gatehouse, whose stop stops the apps.
func TestUpgradeWhoseOldProcessIsKilledLeavesTheSuccessorServing(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// killWhen is what the test waits for before it kills the old
		// process: the successor has started, or it is probing the
		// instances it adopted (each probe takes 1.5s).
		killWhen string
	}{
		{name: "as the successor starts", killWhen: "started"},
		{name: "while the successor probes the adopted instances", killWhen: "adopted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newUpgradeFixture(t, map[string]string{"FAULT_HEALTH_DELAY": "1500ms"}, "5s")
			instance := f.instancePID(t)
			old := f.g.cmd.Process.Pid
			pidFile := filepath.Join(f.dir, "successor.pid")
			f.successor(t, "echo $$ > "+pidFile)
			op := f.upgrade(t)

			succ := waitPIDFile(t, pidFile, "the successor to start")
			if tc.killWhen == "adopted" {
				testutil.WaitFor(t, 20*time.Second, "the successor to adopt the instance", func() bool {
					return strings.Contains(f.g.stderr.String(), "adopted without a restart")
				})
				if strings.Contains(f.g.stderr.String(), "took over from the previous gatehouse") {
					t.Fatal("the successor was ready before the old gatehouse was killed: the handover window is too narrow on this machine")
				}
			}
			if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-f.g.done
			// The upgrade command loses the process it asked; it must end.
			r := waitOp(t, op, 30*time.Second, "gatehouse upgrade")
			t.Logf("gatehouse upgrade, its gatehouse killed: exit %d:\n%s", r.code, r.out)

			c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			testutil.WaitFor(t, 30*time.Second, "the successor to answer with the adopted instance", func() bool {
				if !testutil.ProcessAlive(succ) {
					t.Fatalf("the successor (pid %d) exited after the old gatehouse was killed:\n%s", succ, tail(f.g.stderr.String()))
				}
				resp, err := c.Get("http://" + f.listen + "/pid")
				if err != nil {
					return false
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				return resp.StatusCode == http.StatusOK && string(b) == strconv.Itoa(instance)
			})
			st := status(c, f.adminURL)
			if st == nil || len(st.Apps) != 1 || len(st.Apps[0].Instances) != 1 ||
				st.Apps[0].Instances[0].PID != instance || st.Apps[0].Instances[0].State != "ready" {
				t.Errorf("the successor's status: %+v; want web's one instance, pid %d, ready", st, instance)
			}
			b, err := os.ReadFile(filepath.Join(f.dir, "data", "processes.json"))
			var rec processesDoc
			if err == nil {
				err = json.Unmarshal(b, &rec)
			}
			if err != nil || rec.Gatehouse.PID != succ {
				t.Errorf("processes.json names gatehouse pid %d (%v), want the successor, %d", rec.Gatehouse.PID, err, succ)
			}
			var gone []telemetry.Event
			testutil.WaitFor(t, 10*time.Second, "an upgrade_predecessor_gone event", func() bool {
				gone = nil
				begun := false
				for _, ev := range readEvents(t, filepath.Join(f.dir, "data", "events.log")) {
					begun = begun || ev.Type == telemetry.EventUpgradeBegin
					switch {
					case ev.Type == telemetry.EventUpgradePredecessorGone:
						gone = append(gone, ev)
					case begun && (ev.Type == telemetry.EventStart || ev.Type == telemetry.EventRestart || ev.Type == telemetry.EventExit):
						t.Fatalf("a %s event since the upgrade began: %+v; want the instance adopted as it runs", ev.Type, ev)
					}
				}
				return len(gone) > 0
			})
			if len(gone) != 1 || gone[0].PID != succ || !strings.Contains(gone[0].Detail, strconv.Itoa(old)) {
				t.Errorf("upgrade_predecessor_gone events %+v; want one, from pid %d, naming pid %d", gone, succ, old)
			}
			// The instance is the successor's: its stop stops it.
			if err := syscall.Kill(succ, syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			testutil.WaitFor(t, 30*time.Second, "the successor to stop, and the app with it", func() bool {
				return !testutil.ProcessAlive(succ) && !testutil.ProcessAlive(instance)
			})
		})
	}
}

// A gatehouse drained for maintenance stays drained through an upgrade
// (drain, upgrade, undrain): the new process's /readyz fails until
// undrain.
func TestDrainedGatehouseStaysDrainedThroughAnUpgrade(t *testing.T) {
	t.Parallel()
	f := newUpgradeFixture(t, nil, "1s")
	if out, errOut, code := gatehouse(t, f.dir, "drain", "--admin", f.adminURL); code != 0 {
		t.Fatalf("gatehouse drain: exit %d\n%s%s", code, out, errOut)
	}
	if r := waitOp(t, f.upgrade(t), 60*time.Second, "the upgrade"); r.code != 0 {
		t.Fatalf("upgrade exited %d:\n%s", r.code, r.out)
	}
	if code := f.g.wait(t, 30*time.Second); code != 0 {
		t.Errorf("the old gatehouse exited %d, want 0", code)
	}
	c := httpClient(t, 5*time.Second)
	readyz := func() (int, string) {
		resp, err := c.Get(f.adminURL + "/readyz")
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	if code, body := readyz(); code != http.StatusServiceUnavailable || body != "draining" {
		t.Errorf("the new gatehouse's /readyz = %d %q, want 503 draining", code, body)
	}
	if out, errOut, code := gatehouse(t, f.dir, "undrain", "--admin", f.adminURL); code != 0 {
		t.Fatalf("gatehouse undrain: exit %d\n%s%s", code, out, errOut)
	}
	testutil.WaitFor(t, 10*time.Second, "/readyz to pass after undrain", func() bool {
		code, _ := readyz()
		return code == http.StatusOK
	})
	// The variable went no further than the new gatehouse: not to the app.
	resp, err := c.Get("http://" + f.listen + "/env")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(b), "GATEHOUSE_DRAINED") {
		t.Errorf("the app's environment has GATEHOUSE_DRAINED")
	}
}

// The successor of an upgrade adopts the instances within the time the
// upgrade gives it (--timeout), not within its own default of a minute:
// with a longer --timeout, an app slower than a minute to answer its
// first probe would otherwise be given up on by the successor while its
// predecessor still waited. The bound is as the successor logs it; the
// variable that carries it goes no further than the successor.
func TestUpgradeTimeoutBoundsTheSuccessorsAdoption(t *testing.T) {
	t.Parallel()
	r := newUpgradeRig(t, 1)
	r.start(t)
	r.instances(t, 1)
	u := r.upgrade(t, "--timeout", "97s")
	if u.code != 0 || u.newPID <= 0 {
		t.Fatalf("upgrade --timeout 97s: exit %d, new pid %d\n%s", u.code, u.newPID, u.out.String())
	}
	log, err := os.ReadFile(r.logPath)
	if err != nil {
		t.Fatal(err)
	}
	var adopting []string
	for _, l := range strings.Split(string(log), "\n") {
		if strings.Contains(l, "adopting the previous gatehouse's instances") {
			adopting = append(adopting, l)
		}
	}
	if len(adopting) != 1 || !strings.Contains(adopting[0], "1m37s") {
		t.Errorf("the successor's adoption lines %q; want one, within 1m37s", adopting)
	}
	c := httpClient(t, 5*time.Second)
	resp, err := c.Get("http://" + r.listen + "/env")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(b), "GATEHOUSE_UPGRADE_TIMEOUT") {
		t.Errorf("the app's environment has GATEHOUSE_UPGRADE_TIMEOUT")
	}
}
