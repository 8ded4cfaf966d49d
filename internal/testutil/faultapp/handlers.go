package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// app holds the state handlers share: what /healthz answers (changeable at
// run time through /set-health) and what /alloc and /connect-out retain.
type app struct {
	instance     string
	memPerReq    int
	healthStatus atomic.Int64
	healthDelay  atomic.Int64 // nanoseconds

	mu       sync.Mutex
	retained [][]byte
	conns    []net.Conn

	// serialNow counts /serial requests in progress; serialMax and
	// serialOverlaps record the most seen at once and how many requests
	// began while another was in progress. The app, not the proxy,
	// detects overlap: that is what a one-request-at-a-time worker
	// would suffer.
	serialNow, serialMax, serialOverlaps atomic.Int64

	// frozen is true while /freeze blocks the whole server; every other
	// handler waits on thawed until it is false before it starts, so a
	// frozen app answers nothing, /healthz included: a blocked event
	// loop. freezeMu guards frozen and is thawed's lock.
	freezeMu sync.Mutex
	frozen   bool
	thawed   *sync.Cond

	// work serialises /work: one at a time per process, so that its
	// latency grows with the concurrency an instance is given.
	work sync.Mutex
}

func newApp(o *options) *app {
	a := &app{instance: os.Getenv("GATEHOUSE_INSTANCE"), memPerReq: o.memPerReq}
	a.thawed = sync.NewCond(&a.freezeMu)
	a.healthStatus.Store(int64(o.healthStatus))
	a.healthDelay.Store(int64(o.healthDelay))
	return a
}

func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", a.root)
	mux.HandleFunc("/healthz", a.healthz)
	mux.HandleFunc("/set-health", a.setHealth)
	mux.HandleFunc("/echo", a.echo)
	mux.HandleFunc("/headers", a.headers)
	mux.HandleFunc("/sleep", a.sleep)
	mux.HandleFunc("/crash", a.crash)
	mux.HandleFunc("/crash-after", a.crashAfter)
	mux.HandleFunc("/crash-once", a.crashOnce)
	mux.HandleFunc("/status", a.status)
	mux.HandleFunc("/alloc", a.alloc)
	mux.HandleFunc("/sse", a.sse)
	mux.HandleFunc("/hang", a.hang)
	mux.HandleFunc("/truncate", a.truncate)
	mux.HandleFunc("/garbage", a.garbage)
	mux.HandleFunc("/pid", a.pid)
	mux.HandleFunc("/ws", a.ws)
	mux.HandleFunc("/busy", a.busy)
	mux.HandleFunc("/work", a.doWork)
	mux.HandleFunc("/connect-out", a.connectOut)
	mux.HandleFunc("/env", a.env)
	mux.HandleFunc("/print", a.print)
	mux.HandleFunc("/freeze", a.freeze)
	mux.HandleFunc("/serial", a.serial)
	mux.HandleFunc("/bytes", a.bytes)
	return a.gate(mux)
}

// gate makes every handler but /freeze wait while the app is frozen.
func (a *app) gate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/freeze" {
			a.freezeMu.Lock()
			for a.frozen {
				a.thawed.Wait()
			}
			a.freezeMu.Unlock()
		}
		next.ServeHTTP(w, r)
	})
}

// freeze models a blocked single-threaded event loop: for d (?d=, default
// 5s) no handler starts, /healthz included, while one core spins. It
// answers once the freeze has begun, so the caller knows it is in effect;
// handlers already running finish normally.
func (a *app) freeze(w http.ResponseWriter, r *http.Request) {
	d, err := duration(r, "d", 5*time.Second)
	if err != nil {
		a.text(w, http.StatusBadRequest, "d: %v", err)
		return
	}
	a.freezeMu.Lock()
	for a.frozen { // one freeze at a time: this one follows
		a.thawed.Wait()
	}
	a.frozen = true
	a.freezeMu.Unlock()
	go func() {
		logf("freeze: blocking every handler and spinning the CPU for %v", d)
		n := spin(d)
		a.freezeMu.Lock()
		a.frozen = false
		a.thawed.Broadcast()
		a.freezeMu.Unlock()
		logf("freeze: thawed after %v (%d iterations)", d, n)
	}()
	a.text(w, http.StatusOK, "frozen for %v", d)
}

// print writes ?msg= to stdout as one line, so tests can watch output
// travel to the log stream and the instance's log file.
func (a *app) print(w http.ResponseWriter, r *http.Request) {
	msg := r.URL.Query().Get("msg")
	fmt.Println(msg)
	a.text(w, http.StatusOK, "printed %q", msg)
}

// text answers status with a plain-text body and the X-Instance header, so
// every test can tell which instance served it.
func (a *app) text(w http.ResponseWriter, status int, format string, args ...any) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Instance", a.instance)
	w.WriteHeader(status)
	fmt.Fprintf(w, format, args...)
}

// duration reads query parameter key as a duration, with a default.
func duration(r *http.Request, key string, def time.Duration) (time.Duration, error) {
	v := r.URL.Query().Get(key)
	if v == "" {
		return def, nil
	}
	return time.ParseDuration(v)
}

// integer reads query parameter key as an int, with a default.
func integer(r *http.Request, key string, def int) (int, error) {
	v := r.URL.Query().Get(key)
	if v == "" {
		return def, nil
	}
	return strconv.Atoi(v)
}

// pause waits d or until the client goes away; it reports whether the full
// time passed.
func pause(r *http.Request, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

func (a *app) root(w http.ResponseWriter, r *http.Request) {
	a.text(w, http.StatusOK, "%s %d", a.instance, os.Getpid())
}

func (a *app) healthz(w http.ResponseWriter, r *http.Request) {
	if d := time.Duration(a.healthDelay.Load()); d > 0 && !pause(r, d) {
		return
	}
	code := int(a.healthStatus.Load())
	if code >= 200 && code < 400 {
		a.text(w, code, "ok")
		return
	}
	logf("health-status: /healthz answering %d", code)
	a.text(w, code, "unhealthy: %d", code)
}

// setHealth changes /healthz at run time (?status=503&delay=3s), so a test
// can make a ready instance fail its probes without restarting it.
func (a *app) setHealth(w http.ResponseWriter, r *http.Request) {
	code, err := integer(r, "status", int(a.healthStatus.Load()))
	if err != nil {
		a.text(w, http.StatusBadRequest, "status: %v", err)
		return
	}
	d, err := duration(r, "delay", time.Duration(a.healthDelay.Load()))
	if err != nil {
		a.text(w, http.StatusBadRequest, "delay: %v", err)
		return
	}
	a.healthStatus.Store(int64(code))
	a.healthDelay.Store(int64(d))
	logf("set-health: /healthz now answers %d after %v", code, d)
	a.text(w, http.StatusOK, "health %d delay %v", code, d)
}

// echo answers with the request body; the method comes back in X-Method.
func (a *app) echo(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		a.text(w, http.StatusBadRequest, "read body: %v", err)
		return
	}
	w.Header().Set("X-Method", r.Method)
	a.text(w, http.StatusOK, "%s", body)
}

// headers answers the request's headers as JSON (plus "Host"), so gateway
// tests can see X-Forwarded-* and X-Request-Id as the app received them.
func (a *app) headers(w http.ResponseWriter, r *http.Request) {
	h := r.Header.Clone()
	h.Set("Host", r.Host)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Instance", a.instance)
	json.NewEncoder(w).Encode(h)
}

func (a *app) sleep(w http.ResponseWriter, r *http.Request) {
	d, err := duration(r, "d", 2*time.Second)
	if err != nil {
		a.text(w, http.StatusBadRequest, "d: %v", err)
		return
	}
	if !pause(r, d) {
		logf("sleep: client went away before %v passed", d)
		return
	}
	a.text(w, http.StatusOK, "slept %v", d)
}

// serial models a worker that serves one request at a time (a sync Python
// or Ruby process): it sleeps d (?d=, default 100ms) and answers what it
// saw, "instance web-1 concurrent 1 max 1 overlaps 0": how many /serial
// requests were in progress as this one began (itself included), the
// most ever, and how many began while another was in progress. Health
// probes are not counted: they bypass any limit on purpose.
// bytes answers n bytes (?n=5000), with their length, or chunked with
// ?chunked=1.
func (a *app) bytes(w http.ResponseWriter, r *http.Request) {
	n, err := integer(r, "n", 1024)
	if err != nil || n < 0 {
		a.text(w, http.StatusBadRequest, "bad n %q", r.URL.Query().Get("n"))
		return
	}
	if r.URL.Query().Get("chunked") == "" {
		w.Header().Set("Content-Length", strconv.Itoa(n))
	}
	w.Header().Set("X-Instance", a.instance)
	w.Write([]byte(strings.Repeat("x", n)))
}

func (a *app) serial(w http.ResponseWriter, r *http.Request) {
	d, err := duration(r, "d", 100*time.Millisecond)
	if err != nil {
		a.text(w, http.StatusBadRequest, "d: %v", err)
		return
	}
	now := a.serialNow.Add(1)
	defer a.serialNow.Add(-1)
	if now > 1 {
		a.serialOverlaps.Add(1)
		logf("serial: %d requests at once", now)
	}
	for {
		m := a.serialMax.Load()
		if now <= m || a.serialMax.CompareAndSwap(m, now) {
			break
		}
	}
	if !pause(r, d) {
		return
	}
	a.text(w, http.StatusOK, "instance %s concurrent %d max %d overlaps %d", a.instance, now, a.serialMax.Load(), a.serialOverlaps.Load())
}

// crash models an unhandled exception: the request has been read, nothing
// is answered, and the process dies with a panic-like line on stderr.
func (a *app) crash(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	// A line that names this process, so that tests can tell its output
	// from an earlier process's of the same instance.
	logf("crash: exiting with code 3 on %s %s", r.Method, r.URL.Path)
	fmt.Fprintf(os.Stderr, "panic: crash requested on %s\n", r.URL.Path)
	os.Exit(3)
}

func (a *app) crashAfter(w http.ResponseWriter, r *http.Request) {
	d, err := duration(r, "d", 100*time.Millisecond)
	if err != nil {
		a.text(w, http.StatusBadRequest, "d: %v", err)
		return
	}
	logf("crash-after: exiting with code 3 in %v", d)
	time.Sleep(d) // deliberately ignores the client: the crash must happen
	fmt.Fprintf(os.Stderr, "panic: crash requested on %s after %v\n", r.URL.Path, d)
	os.Exit(3)
}

func (a *app) status(w http.ResponseWriter, r *http.Request) {
	code, err := integer(r, "code", http.StatusInternalServerError)
	if err != nil || code < 100 || code > 999 {
		a.text(w, http.StatusBadRequest, "bad code %q", r.URL.Query().Get("code"))
		return
	}
	if code >= 500 {
		logf("status: answering %d", code)
	}
	a.text(w, code, "status %d", code)
}

// alloc retains mb MiB for the life of the process, touching every page so
// that the resident set (what procstat reads) really grows.
func (a *app) alloc(w http.ResponseWriter, r *http.Request) {
	mb, err := integer(r, "mb", a.memPerReq)
	if err != nil || mb < 0 {
		a.text(w, http.StatusBadRequest, "bad mb %q", r.URL.Query().Get("mb"))
		return
	}
	buf := make([]byte, mb<<20)
	for i := 0; i < len(buf); i += 4096 {
		buf[i] = 1
	}
	a.mu.Lock()
	a.retained = append(a.retained, buf)
	total := 0
	for _, b := range a.retained {
		total += len(b)
	}
	a.mu.Unlock()
	logf("alloc: retained %d MiB more, %d MiB in total", mb, total>>20)
	a.text(w, http.StatusOK, "retained %d MiB", total>>20)
}

// sse sends n events, one every `every`, flushing each so a buffering proxy
// would be caught.
func (a *app) sse(w http.ResponseWriter, r *http.Request) {
	n, err := integer(r, "n", 5)
	if err != nil {
		a.text(w, http.StatusBadRequest, "n: %v", err)
		return
	}
	every, err := duration(r, "every", 200*time.Millisecond)
	if err != nil {
		a.text(w, http.StatusBadRequest, "every: %v", err)
		return
	}
	// ?type= streams the same events under another content type: a
	// chunked answer that is not an event stream.
	ct := r.URL.Query().Get("type")
	if ct == "" {
		ct = "text/event-stream"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Instance", a.instance)
	rc := http.NewResponseController(w)
	for i := 1; i <= n; i++ {
		if i > 1 && !pause(r, every) {
			return
		}
		fmt.Fprintf(w, "data: event %d\n\n", i)
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

func (a *app) hang(w http.ResponseWriter, r *http.Request) {
	logf("hang: never answering %s", r.URL.Path)
	<-r.Context().Done()
	logf("hang: client went away")
}

// hijack takes the raw connection, for answers net/http would refuse to
// write.
func (a *app) hijack(w http.ResponseWriter) (net.Conn, *bufio.ReadWriter, bool) {
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		a.text(w, http.StatusInternalServerError, "hijack: %v", err)
		return nil, nil, false
	}
	return conn, rw, true
}

// truncate promises 1000 bytes, sends 100 and closes the connection.
func (a *app) truncate(w http.ResponseWriter, r *http.Request) {
	conn, _, ok := a.hijack(w)
	if !ok {
		return
	}
	defer conn.Close()
	logf("truncate: sending 100 of 1000 promised bytes, then closing")
	fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\nX-Instance: %s\r\n\r\n", a.instance)
	io.WriteString(conn, strings.Repeat("x", 100))
}

func (a *app) garbage(w http.ResponseWriter, r *http.Request) {
	conn, _, ok := a.hijack(w)
	if !ok {
		return
	}
	defer conn.Close()
	logf("garbage: answering something that is not HTTP")
	io.WriteString(conn, "NOT HTTP\r\n\r\n")
}

func (a *app) pid(w http.ResponseWriter, r *http.Request) {
	a.text(w, http.StatusOK, "%d", os.Getpid())
}

// ws upgrades like a WebSocket server would, then echoes raw bytes; no
// framing, since tests only check that bytes pass both ways.
func (a *app) ws(w http.ResponseWriter, r *http.Request) {
	conn, rw, ok := a.hijack(w)
	if !ok {
		return
	}
	defer conn.Close()
	fmt.Fprintf(conn, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Instance: %s\r\n\r\n", a.instance)
	// Read through rw: it may already hold bytes the client sent early.
	io.Copy(conn, rw.Reader)
}

// busy spins the CPU in the handler. Go keeps serving other goroutines, so
// this models CPU load rather than a frozen single-threaded event loop; to
// freeze probes too, combine it with -health-delay or /set-health.
func (a *app) busy(w http.ResponseWriter, r *http.Request) {
	d, err := duration(r, "d", 2*time.Second)
	if err != nil {
		a.text(w, http.StatusBadRequest, "d: %v", err)
		return
	}
	logf("busy: spinning the CPU for %v", d)
	n := spin(d)
	a.text(w, http.StatusOK, "spun %v (%d iterations)", d, n)
}

// doWork models a process that serves one request at a time (a
// single-threaded worker): each /work takes d (default 20ms) once its
// turn comes, so with c requests at once on an instance the last waits
// c × d. Its answer is 200 with the instance in X-Instance.
func (a *app) doWork(w http.ResponseWriter, r *http.Request) {
	d, err := duration(r, "d", 20*time.Millisecond)
	if err != nil {
		a.text(w, http.StatusBadRequest, "d: %v", err)
		return
	}
	a.work.Lock()
	ok := pause(r, d)
	a.work.Unlock()
	if !ok {
		return
	}
	a.text(w, http.StatusOK, "worked %v", d)
}

// spin burns CPU until d has passed and returns the iteration count, so the
// compiler cannot drop the loop.
func spin(d time.Duration) uint64 {
	var n uint64
	for end := time.Now().Add(d); time.Now().Before(end); {
		for i := 0; i < 10000; i++ {
			n++
		}
	}
	return n
}

// connectOut opens n TCP connections to addr and holds them for the life of
// the process, as a leaking HTTP client would (SNAT port exhaustion).
func (a *app) connectOut(w http.ResponseWriter, r *http.Request) {
	addr := r.URL.Query().Get("addr")
	n, err := integer(r, "n", 50)
	if addr == "" || err != nil || n < 0 {
		a.text(w, http.StatusBadRequest, "need addr=HOST:PORT and n>=0")
		return
	}
	opened := 0
	for ; opened < n; opened++ {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			logf("connect-out: %d of %d connections to %s opened: %v", opened, n, addr, err)
			a.text(w, http.StatusBadGateway, "opened %d of %d: %v", opened, n, err)
			return
		}
		a.mu.Lock()
		a.conns = append(a.conns, c)
		a.mu.Unlock()
	}
	a.mu.Lock()
	held := len(a.conns)
	a.mu.Unlock()
	logf("connect-out: opened %d connections to %s, holding %d", n, addr, held)
	a.text(w, http.StatusOK, "opened %d, holding %d", n, held)
}

func (a *app) env(w http.ResponseWriter, r *http.Request) {
	a.text(w, http.StatusOK, "%s", os.Getenv(r.URL.Query().Get("key")))
}
