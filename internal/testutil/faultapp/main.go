// Command faultapp is the web app the gatehouse test suites run as real
// processes. Every failure the seed articles name (crashes, wrong ports,
// failing probes, hung or slow handlers, memory growth, keep-alive races,
// ignored SIGTERM, orphaned children, outbound connection exhaustion) can be
// switched on with a flag, or with the matching FAULT_<FLAG> environment
// variable so a gatehouse.yaml can set it (-health-status → FAULT_HEALTH_STATUS).
// Flags given on the command line win over the environment.
//
// Once bound it prints "listening on 127.0.0.1:PORT" to stdout. Every fault
// it acts out is logged to stderr on a recognisable line, so tests can check
// that gatehouse shows "the last stderr lines before death".
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// options are the parsed flags.
type options struct {
	listenPort   int
	ignorePort   bool
	noListen     bool
	exitAtStart  int
	startDelay   time.Duration
	healthStatus int
	healthDelay  time.Duration
	keepIdle     time.Duration
	ignoreTerm   bool
	exitOnTerm   bool
	spawnChild   bool
	child        bool
	childPidfile string
	memPerReq    int
	otlpHTTP     string
}

func main() {
	opts, err := parseOptions(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "faultapp:", err)
		os.Exit(2)
	}
	os.Exit(run(opts))
}

// parseOptions reads FAULT_* environment defaults, then the flags.
func parseOptions(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("faultapp", flag.ContinueOnError)
	fs.IntVar(&o.listenPort, "listen-port", 0, "listen on this port instead of $PORT (0 = use $PORT)")
	fs.BoolVar(&o.ignorePort, "ignore-port", false, "ignore $PORT and listen on a random port (prints it)")
	fs.BoolVar(&o.noListen, "no-listen", false, "never bind a port, but stay alive")
	fs.IntVar(&o.exitAtStart, "exit-at-start", -1, "exit with this code at once (-1 = don't)")
	fs.DurationVar(&o.startDelay, "start-delay", 0, "sleep this long before listening")
	fs.IntVar(&o.healthStatus, "health-status", 200, "status /healthz answers")
	fs.DurationVar(&o.healthDelay, "health-delay", 0, "how long /healthz sleeps before answering")
	fs.DurationVar(&o.keepIdle, "keepalive-idle", 0, "close idle keep-alive connections after this long (0 = never)")
	fs.BoolVar(&o.ignoreTerm, "ignore-sigterm", false, "ignore SIGTERM; only SIGKILL stops the process")
	fs.BoolVar(&o.exitOnTerm, "exit-on-sigterm", false, "exit at once on SIGTERM, cutting off the requests in flight (a runtime's default action)")
	fs.BoolVar(&o.spawnChild, "spawn-child", false, "start a grandchild process that sleeps forever in the same process group")
	fs.BoolVar(&o.child, "child", false, "internal: be the sleeping grandchild")
	fs.StringVar(&o.childPidfile, "child-pidfile", "", "write the grandchild's pid to this file")
	fs.IntVar(&o.memPerReq, "memory-per-request", 10, "MiB /alloc retains when ?mb= is not given")
	fs.StringVar(&o.otlpHTTP, "otlp-http", "", "export a span per request over OTLP/HTTP to this base URL, in the trace its traceparent names (\"\" = none)")
	if err := applyEnv(fs); err != nil {
		return nil, err
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return o, nil
}

// applyEnv sets each flag from FAULT_<NAME> (dashes become underscores), so
// config files that cannot add arguments can still pick a fault.
func applyEnv(fs *flag.FlagSet) error {
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		key := "FAULT_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(key); ok && err == nil {
			if e := f.Value.Set(v); e != nil {
				err = fmt.Errorf("%s=%q: %v", key, v, e)
			}
		}
	})
	return err
}

// run acts out the start-up faults, serves, and returns the exit code.
func run(o *options) int {
	if o.child {
		// The grandchild only exists to be found (or not) after its parent
		// is stopped; it never exits by itself.
		select {}
	}
	if o.exitAtStart >= 0 {
		logf("exit-at-start: exiting with code %d", o.exitAtStart)
		return o.exitAtStart
	}
	if o.spawnChild {
		if err := spawnChild(o.childPidfile); err != nil {
			logf("spawn-child: %v", err)
			return 1
		}
	}
	if o.startDelay > 0 {
		logf("start-delay: sleeping %v before listening", o.startDelay)
		time.Sleep(o.startDelay)
	}

	terms := make(chan os.Signal, 1)
	signal.Notify(terms, syscall.SIGTERM)

	if o.noListen {
		logf("no-listen: not binding any port (PORT=%s)", os.Getenv("PORT"))
		waitForTerm(terms, o.ignoreTerm)
		logf("SIGTERM received, exiting")
		return 0
	}

	ln, err := listen(o)
	if err != nil {
		logf("listen: %v", err)
		return 1
	}
	a := newApp(o)
	handler, stopTracing, err := traced(a.routes(), o.otlpHTTP, a.instance)
	if err != nil {
		logf("otlp-http: %v", err)
		return 1
	}
	defer stopTracing()
	srv := &http.Server{
		Handler: handler,
		// Go never sends a "Keep-Alive: timeout=N" header, so like Node's
		// default the proxy gets no warning before an idle close.
		IdleTimeout: o.keepIdle,
	}
	fmt.Printf("listening on %s\n", ln.Addr())

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		logf("serve: %v", err)
		return 1
	case <-waitForTermChan(terms, o.ignoreTerm):
	}
	if o.exitOnTerm {
		logf("exit-on-sigterm: SIGTERM received, exiting at once")
		return 0
	}
	logf("SIGTERM received, shutting down gracefully")
	// No deadline: in-flight requests finish however long they take, and
	// gatehouse's stop_timeout SIGKILL is what bounds it.
	if err := srv.Shutdown(context.Background()); err != nil {
		logf("shutdown: %v", err)
		return 1
	}
	logf("shutdown complete")
	return 0
}

// waitForTermChan returns a channel closed at the first SIGTERM that is
// obeyed.
func waitForTermChan(terms chan os.Signal, ignore bool) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		waitForTerm(terms, ignore)
		close(done)
	}()
	return done
}

// waitForTerm blocks until SIGTERM. With ignore it logs each SIGTERM and
// keeps waiting forever: catching the signal, rather than setting SIG_IGN,
// keeps the grandchild's disposition default.
func waitForTerm(terms chan os.Signal, ignore bool) {
	for range terms {
		if !ignore {
			return
		}
		logf("ignore-sigterm: SIGTERM received and ignored")
	}
}

// listen binds the address the flags choose.
func listen(o *options) (net.Listener, error) {
	port := os.Getenv("PORT")
	switch {
	case o.listenPort != 0:
		logf("listen-port: ignoring PORT=%s, listening on %d", port, o.listenPort)
		port = strconv.Itoa(o.listenPort)
	case o.ignorePort:
		logf("ignore-port: ignoring PORT=%s, listening on a random port", port)
		port = "0"
	case port == "":
		return nil, errors.New("PORT is not set")
	}
	return net.Listen("tcp", net.JoinHostPort("127.0.0.1", port))
}

// spawnChild re-executes this binary with -child. It stays in our process
// group and inherits stdout and stderr, like a worker a real app forks, so
// a supervisor that signals only the leader, or waits for the log pipes to
// close, is caught out.
func spawnChild(pidfile string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(self, "-child")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	// Drop FAULT_* so the child does not act out the parent's faults.
	cmd.Env = withoutFaultEnv(os.Environ())
	if err := cmd.Start(); err != nil {
		return err
	}
	go cmd.Wait() // reap it if it dies while we live
	fmt.Printf("child pid %d\n", cmd.Process.Pid)
	if pidfile == "" {
		return nil
	}
	return os.WriteFile(pidfile, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644)
}

func withoutFaultEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "FAULT_") {
			out = append(out, kv)
		}
	}
	return out
}

// logf writes one fault line to stderr.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "faultapp[%d]: %s\n", os.Getpid(), fmt.Sprintf(format, args...))
}
