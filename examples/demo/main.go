// Command demo is the small web app gatehouse's README starts first. It
// behaves like a well-written app (binds $PORT, answers /healthz, drains on
// SIGTERM) and has a route for each failure gatehouse is built to survive or
// explain, so you can trigger them by hand and watch `gatehouse status`,
// `gatehouse logs` and `gatehouse diagnose`.
package main

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// shutdownTimeout bounds how long in-flight requests may take after SIGTERM.
const shutdownTimeout = 10 * time.Second

var (
	instance = envOr("GATEHOUSE_INSTANCE", "local") // run outside gatehouse
	port     = envOr("PORT", "8080")
)

func main() {
	// Catch SIGTERM before listening so a stop that comes early still drains.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, os.Interrupt)

	// Bind before saying so: the log line is then proof the port is open.
	ln, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		log.Fatalf("demo %s: %v", instance, err)
	}
	srv := &http.Server{Handler: routes()}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Printf("demo %s listening on %s\n", instance, ln.Addr())

	select {
	case err := <-served:
		log.Fatalf("demo %s: %v", instance, err)
	case sig := <-stop:
		fmt.Printf("demo %s: %v received, finishing in-flight requests\n", instance, sig)
	}
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "demo %s: shutdown: %v\n", instance, err)
	}
	fmt.Printf("demo %s: stopped\n", instance)
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// routeList is what the index page lists.
var routeList = []struct{ path, about string }{
	{"/healthz", "health probe: 200 ok"},
	{"/crash", "unhandled exception: the process exits mid-request"},
	{"/slow?d=3s", "answers after d"},
	{"/leak?mb=50", "retains mb MiB more memory"},
	{"/error", "answers 500"},
	{"/events", "server-sent events: 10 ticks, one every 500ms"},
	{"/block?d=5s", "spins the CPU for d"},
}

func routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", index)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
	mux.HandleFunc("/crash", crash)
	mux.HandleFunc("/slow", slow)
	mux.HandleFunc("/leak", leak)
	mux.HandleFunc("/error", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "something went wrong (on purpose)", http.StatusInternalServerError)
	})
	mux.HandleFunc("/events", events)
	mux.HandleFunc("/block", block)
	return mux
}

func index(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, "<!doctype html><title>demo %s</title>\n", instance)
	fmt.Fprintf(w, "<h1>Hello from %s (pid %d)</h1>\n<ul>\n", instance, os.Getpid())
	for _, rt := range routeList {
		fmt.Fprintf(w, "<li><a href=%q>%s</a>: %s</li>\n", rt.path, rt.path, rt.about)
	}
	fmt.Fprint(w, "</ul>\n")
}

// crash dies the way an unhandled exception does: no response, a trace on
// stderr, a non-zero exit. gatehouse answers the client (retrying an
// idempotent request elsewhere) and restarts the instance.
func crash(w http.ResponseWriter, r *http.Request) {
	fmt.Fprintf(os.Stderr, "panic: unhandled exception in %s %s (demo /crash)\n\ngoroutine 1 [running]:\nmain.crash()\n", r.Method, r.URL.Path)
	os.Exit(2)
}

// queryDuration reads ?d=, falling back to def.
func queryDuration(w http.ResponseWriter, r *http.Request, def time.Duration) (time.Duration, bool) {
	v := r.URL.Query().Get("d")
	if v == "" {
		return def, true
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		http.Error(w, "bad d: "+err.Error(), http.StatusBadRequest)
		return 0, false
	}
	return d, true
}

func slow(w http.ResponseWriter, r *http.Request) {
	d, ok := queryDuration(w, r, 3*time.Second)
	if !ok {
		return
	}
	select {
	case <-time.After(d):
		fmt.Fprintf(w, "%s answered after %v\n", instance, d)
	case <-r.Context().Done():
		// The client (or gatehouse's request_timeout) gave up; stop working.
	}
}

// leaked holds memory for the life of the process, like a cache that never
// evicts.
var (
	leakMu sync.Mutex
	leaked [][]byte
	total  int
)

func leak(w http.ResponseWriter, r *http.Request) {
	mb, err := 50, error(nil)
	if v := r.URL.Query().Get("mb"); v != "" {
		mb, err = strconv.Atoi(v)
	}
	if err != nil || mb < 0 {
		http.Error(w, "bad mb", http.StatusBadRequest)
		return
	}
	buf := make([]byte, mb<<20)
	// Write to every page: untouched pages are never backed by RAM, and RSS
	// is what gatehouse's memory trigger reads.
	for i := 0; i < len(buf); i += 4096 {
		buf[i] = 1
	}
	leakMu.Lock()
	leaked = append(leaked, buf)
	total += mb
	retained := total
	leakMu.Unlock()
	fmt.Fprintf(w, "%s now retains %d MiB\n", instance, retained)
}

func events(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	rc := http.NewResponseController(w)
	for n := 1; n <= 10; n++ {
		fmt.Fprintf(w, "data: tick %d\n\n", n)
		// Flush each event so it reaches the client now, not when the
		// buffer fills.
		if err := rc.Flush(); err != nil {
			return
		}
		select {
		case <-time.After(500 * time.Millisecond):
		case <-r.Context().Done():
			return
		}
	}
}

// block spins the CPU for d inside the handler. In Node or Python this
// would freeze the one event loop, and health probes would time out. Go's
// scheduler keeps running other goroutines (including /healthz), so here it
// models CPU load rather than a frozen loop.
func block(w http.ResponseWriter, r *http.Request) {
	d, ok := queryDuration(w, r, 5*time.Second)
	if !ok {
		return
	}
	var spins uint64
	for end := time.Now().Add(d); time.Now().Before(end); {
		spins++
	}
	fmt.Fprintf(w, "%s spun the CPU for %v (%d checks of the clock)\n", instance, d, spins)
}
