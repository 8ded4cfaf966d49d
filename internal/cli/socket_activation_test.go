package cli_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/fds"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// systemdSocket binds addr as systemd binds a socket unit's
// ListenStream=, and returns the descriptor it passes on, which the test
// holds, as systemd does, until it ends.
func systemdSocket(t *testing.T, addr, name string) *os.File {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := fds.Dup(ln.(syscall.Conn), name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// activatedCommand is `exe run -c cfg` started as systemd starts a
// socket-activated service: the sockets from descriptor 3 on, LISTEN_FDS
// and LISTEN_FDNAMES, and LISTEN_PID set to the pid that then execs
// gatehouse (systemd sets it in the child, after the fork).
func activatedCommand(ctx context.Context, exe, dir, cfg string, sockets []*os.File) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", `LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@"`, exe, "run", "-c", cfg)
	cmd.Dir = dir
	var names []string
	for _, f := range sockets {
		names = append(names, f.Name())
	}
	cmd.Env = append(os.Environ(), fmt.Sprintf("LISTEN_FDS=%d", len(sockets)), "LISTEN_FDNAMES="+strings.Join(names, ":"))
	cmd.ExtraFiles = sockets
	return cmd
}

// startActivated starts the rig's gatehouse with sockets (see
// activatedCommand) in its own process group, followed by the rig's
// cleanup, and returns its pid and a channel closed once it is reaped.
func (r *upgradeRig) startActivated(t *testing.T, sockets []*os.File) (int, <-chan struct{}) {
	t.Helper()
	return r.startCmd(t, activatedCommand(context.Background(), r.exe, r.dir, r.cfgFile, sockets))
}

// freshLoad is clients sending GET / each on a new connection, so that a
// connection refused shows as such, recording when each request began
// and ended and how it failed.
type freshLoad struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	tr     *http.Transport

	mu   sync.Mutex
	reqs []loadRequest
}

type loadRequest struct {
	start, end time.Time
	refused    bool
	err        string // "" for a 2xx answer read whole
}

func startFreshLoad(t *testing.T, url string, clients int) *freshLoad {
	l := &freshLoad{tr: &http.Transport{DisableKeepAlives: true}}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	// Long enough for a request that waits in the backlog through the
	// restart and the adoption.
	c := &http.Client{Transport: l.tr, Timeout: 60 * time.Second}
	for range clients {
		l.wg.Go(func() { l.client(c, url) })
	}
	t.Cleanup(l.stop)
	return l
}

func (l *freshLoad) client(c *http.Client, url string) {
	for l.ctx.Err() == nil {
		r := loadRequest{start: time.Now()}
		resp, err := c.Get(url)
		if err == nil {
			var body []byte
			body, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil && (resp.StatusCode/100 != 2 || !rootBody.Match(body)) {
				err = fmt.Errorf("%s %.80q", resp.Status, body)
			}
		}
		r.end = time.Now()
		if err != nil {
			r.err, r.refused = err.Error(), errors.Is(err, syscall.ECONNREFUSED)
		}
		l.mu.Lock()
		l.reqs = append(l.reqs, r)
		l.mu.Unlock()
		// A pause, so that the connections in TIME_WAIT stay well within
		// the ephemeral ports.
		t := time.NewTimer(5 * time.Millisecond)
		select {
		case <-l.ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
}

func (l *freshLoad) stop() {
	l.cancel()
	l.wg.Wait()
	l.tr.CloseIdleConnections()
}

// answeredSince counts the requests begun after from that were answered.
func (l *freshLoad) answeredSince(from time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.reqs {
		if r.err == "" && r.start.After(from) {
			n++
		}
	}
	return n
}

func (l *freshLoad) requests() []loadRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]loadRequest(nil), l.reqs...)
}

// restartGap is how long a killed gatehouse stays down: the unit's
// RestartSec=.
const restartGap = 2 * time.Second

// Under socket activation the listening sockets are systemd's: a
// gatehouse killed with SIGKILL under 32 clients, each request on a new
// connection, and started again with the same sockets, refuses no
// connection. The connections made meanwhile wait in the kernel's
// backlog, and the new gatehouse, which adopts the running instances,
// answers them; only the requests in flight at the kill may fail. The
// app processes hold none of the sockets.
func TestSocketActivatedGatehouseKilledUnderLoadRefusesNone(t *testing.T) {
	t.Parallel()
	r := newUpgradeRig(t, 2)
	sockets := []*os.File{systemdSocket(t, r.listen, "public"), systemdSocket(t, r.admin, "admin")}
	pid, done := r.startActivated(t, sockets)
	before := r.instances(t, 2)

	load := startFreshLoad(t, "http://"+r.listen+"/", 32)
	began := time.Now()
	testutil.WaitFor(t, 30*time.Second, "2s and 200 answered requests of load before the kill", func() bool {
		return time.Since(began) >= 2*time.Second && load.answeredSince(began) >= 200
	})
	killAt := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-done
	reapedAt := time.Now()
	// As systemd waits RestartSec= before it starts gatehouse again: the
	// gap the connections wait through (not a wait for an event).
	<-time.After(restartGap)
	r.startActivated(t, sockets)
	testutil.WaitFor(t, 60*time.Second, "2s and 200 answered requests of load after the restart", func() bool {
		return time.Since(reapedAt) >= 2*time.Second && load.answeredSince(reapedAt) >= 200
	})
	load.stop()
	if got := r.instances(t, 2); !maps.Equal(got, before) {
		t.Errorf("after the restart the instances are %v, want the same processes, adopted: %v", got, before)
	}

	// In flight at the kill: begun before gatehouse was gone, not over
	// when the kill was sent.
	var total, inFlight, failed, refused int
	var problems []string
	var firstAnswer time.Time
	var slowest time.Duration
	for _, q := range load.requests() {
		total++
		during := q.start.Before(reapedAt) && q.end.After(killAt)
		if during {
			inFlight++
		}
		if q.err == "" {
			if q.end.After(reapedAt) && (firstAnswer.IsZero() || q.end.Before(firstAnswer)) {
				firstAnswer = q.end
			}
			slowest = max(slowest, q.end.Sub(q.start))
			continue
		}
		failed++
		if q.refused {
			refused++
		}
		if q.refused || !during {
			problems = append(problems, fmt.Sprintf("%s (begun %v after the kill, in flight at it: %v)",
				q.err, q.start.Sub(killAt).Round(time.Millisecond), during))
		}
	}
	t.Logf("%d requests, %d failed (%d refused), %d in flight at the kill; gatehouse gone %v after SIGKILL, restarted %v later and answering %v after the kill; slowest answer %v",
		total, failed, refused, inFlight, reapedAt.Sub(killAt).Round(time.Millisecond), restartGap,
		firstAnswer.Sub(killAt).Round(time.Millisecond), slowest.Round(time.Millisecond))
	if refused > 0 || len(problems) > 0 {
		t.Errorf("%d connections refused; %d failures of requests not in flight at the kill, or refused:\n%s",
			refused, len(problems), strings.Join(problems[:min(len(problems), 20)], "\n"))
	}
	if failed > inFlight {
		t.Errorf("%d requests failed, more than the %d in flight at the kill", failed, inFlight)
	}

	// Close-on-exec: no app process, nor its shim, holds a listening
	// socket.
	pf, err := r.processes()
	if err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{r.listen, r.admin} {
		inode := listeningInode(t, addr)
		for _, p := range pf.Processes {
			for _, holder := range []int{p.PID, p.ShimPID} {
				if holdsSocket(holder, inode) {
					t.Errorf("%s's process %d holds the listening socket on %s", p.ID, holder, addr)
				}
			}
		}
	}
}

// A passed socket that is none of gatehouse's listeners stops gatehouse
// at once, naming it, before any app starts.
func TestSocketActivationRefusesAnUnmatchedSocket(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.writeApps(t, f.webApp(1, nil, "1s", "2s"))
	sockets := []*os.File{systemdSocket(t, f.listen, "public"), systemdSocket(t, "127.0.0.1:0", "metrics")}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := activatedCommand(ctx, f.real, f.dir, f.cfgFile, sockets).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("gatehouse run with an unmatched socket: %v, want exit 1\n%s", err, out)
	}
	if want := `systemd passed the socket "metrics" on 127.0.0.1:`; !strings.Contains(string(out), want) {
		t.Errorf("output does not say %q:\n%s", want, out)
	}
	if st := status(f.c, f.adminURL); st != nil {
		t.Errorf("the admin API answers after the failed start: %+v", st)
	}
}

// An upgrade of a gatehouse started with systemd's sockets hands the
// same sockets to its successor through the handover: the successor
// serves on them and never sees LISTEN_FDS, LISTEN_PID or LISTEN_FDNAMES.
func TestSocketActivatedGatehouseUpgradesThroughTheHandover(t *testing.T) {
	t.Parallel()
	r := newUpgradeRig(t, 1)
	sockets := []*os.File{systemdSocket(t, r.listen, "public"), systemdSocket(t, r.admin, "admin")}
	old, _ := r.startActivated(t, sockets)
	r.instances(t, 1)
	inodes := map[string]string{r.listen: listeningInode(t, r.listen), r.admin: listeningInode(t, r.admin)}

	u := r.upgrade(t)
	if u.code != 0 || u.newPID <= 0 {
		t.Fatalf("gatehouse upgrade: exit %d\n%s", u.code, u.out.String())
	}
	r.serving(t, old, u.newPID)
	for addr, inode := range inodes {
		if got := listeningInode(t, addr); got != inode || !holdsSocket(u.newPID, inode) {
			t.Errorf("after the upgrade %s is socket %s, held by the new gatehouse: %v; want systemd's, %s",
				addr, got, holdsSocket(u.newPID, inode), inode)
		}
	}
	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", u.newPID))
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range strings.Split(string(environ), "\x00") {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "LISTEN_") {
			t.Errorf("the new gatehouse (pid %d) was started with %s", u.newPID, kv)
		}
	}
	resp, err := r.c.Get("http://" + r.listen + "/")
	if err != nil {
		t.Fatalf("GET / after the upgrade: %v", err)
	}
	if body := readBody(t, resp); resp.StatusCode != 200 || !rootBody.MatchString(body) {
		t.Errorf("GET / after the upgrade: %s %q", resp.Status, body)
	}
}
