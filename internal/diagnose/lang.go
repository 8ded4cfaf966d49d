package diagnose

import (
	"debug/buildinfo"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// Runtimes an app's command is recognised as; "" is one not recognised,
// whose fixes stay runtime-neutral.
const (
	RuntimeNode   = "node"
	RuntimePython = "python"
	RuntimeRuby   = "ruby"
	RuntimeJava   = "java"
	RuntimeGo     = "go"
)

// runtimeOfName maps a program's base name, its version suffix removed
// (python3.12 → python), to its runtime.
var runtimeOfName = map[string]string{
	"node": RuntimeNode, "nodejs": RuntimeNode, "npm": RuntimeNode, "npx": RuntimeNode, "yarn": RuntimeNode,
	"pnpm": RuntimeNode, "bun": RuntimeNode, "bunx": RuntimeNode, "deno": RuntimeNode, "ts-node": RuntimeNode,
	"tsx": RuntimeNode, "nodemon": RuntimeNode, "pm2": RuntimeNode, "pm2-runtime": RuntimeNode,

	"python": RuntimePython, "py": RuntimePython, "pypy": RuntimePython, "gunicorn": RuntimePython,
	"uvicorn": RuntimePython, "hypercorn": RuntimePython, "flask": RuntimePython, "django-admin": RuntimePython,
	"waitress-serve": RuntimePython, "daphne": RuntimePython, "uwsgi": RuntimePython, "granian": RuntimePython,
	"fastapi": RuntimePython, "pipenv": RuntimePython, "poetry": RuntimePython,

	"ruby": RuntimeRuby, "puma": RuntimeRuby, "rails": RuntimeRuby, "bundle": RuntimeRuby, "bundler": RuntimeRuby,
	"rackup": RuntimeRuby, "unicorn": RuntimeRuby, "thin": RuntimeRuby, "falcon": RuntimeRuby,

	"java": RuntimeJava, "javaw": RuntimeJava, "kotlin": RuntimeJava, "mvn": RuntimeJava, "mvnw": RuntimeJava,
	"gradle": RuntimeJava, "gradlew": RuntimeJava,

	"go": RuntimeGo,
}

// wrappers run the rest of their arguments as the command.
var wrappers = map[string]bool{"env": true, "exec": true, "nohup": true, "tini": true, "dumb-init": true,
	"nice": true, "time": true, "setsid": true, "chpst": true, "--": true}

var shells = map[string]bool{"sh": true, "bash": true, "dash": true, "zsh": true, "ash": true}

// DetectRuntime names the runtime an app's command runs: from the program
// (and what a shell or wrapper runs), else, for a binary, whether it was
// built by Go. dir resolves a relative program; "" leaves binaries
// unexamined unless their path is absolute or on PATH.
func DetectRuntime(argv []string, dir string) string {
	return detect(argv, dir, 0)
}

func detect(argv []string, dir string, depth int) string {
	if depth > 3 {
		return ""
	}
	for len(argv) > 0 {
		w := argv[0]
		name := programName(w)
		switch {
		case wrappers[name]:
			argv = argv[1:]
			// The wrapper's own flags and settings (env -i A=b, nice -n 10).
			for len(argv) > 0 && (strings.HasPrefix(argv[0], "-") || assignment(argv[0]) || numeric(argv[0])) {
				argv = argv[1:]
			}
			continue
		case assignment(w):
			argv = argv[1:] // A=b cmd, in a shell script
			continue
		case shells[name]:
			for i, a := range argv {
				if a == "-c" && i+1 < len(argv) {
					return detectScript(argv[i+1], dir, depth+1)
				}
			}
			return "" // a script file: what it runs is not known
		}
		if rt := runtimeOfName[name]; rt != "" {
			return rt
		}
		// A script run by its shebang line.
		switch filepath.Ext(strings.ToLower(w)) {
		case ".js", ".mjs", ".cjs", ".ts":
			return RuntimeNode
		case ".py":
			return RuntimePython
		case ".rb", ".ru":
			return RuntimeRuby
		case ".jar":
			return RuntimeJava
		}
		if goBinary(w, dir) {
			return RuntimeGo
		}
		return ""
	}
	return ""
}

func assignment(w string) bool {
	i := strings.IndexByte(w, '=')
	return i > 0 && !strings.ContainsAny(w[:i], "/-.")
}

func numeric(w string) bool { return w != "" && strings.Trim(w, "0123456789") == "" }

// detectScript looks at each simple command of a sh -c script and returns
// the first runtime it recognises.
func detectScript(script, dir string, depth int) string {
	cmds := strings.FieldsFunc(script, func(r rune) bool { return r == ';' || r == '&' || r == '|' || r == '\n' })
	for _, c := range cmds {
		words := strings.Fields(c)
		for i, w := range words {
			words[i] = strings.Trim(w, `"'`)
		}
		if len(words) == 0 || words[0] == "test" || words[0] == "[" || words[0] == "echo" || words[0] == "cd" {
			continue
		}
		if rt := detect(words, dir, depth); rt != "" {
			return rt
		}
	}
	return ""
}

// programName is a program's base name without a version suffix:
// /usr/bin/python3.12 → python, node18 → node.
func programName(p string) string {
	n := strings.ToLower(filepath.Base(p))
	n = strings.TrimSuffix(n, ".exe")
	trimmed := strings.TrimRight(n, "0123456789.")
	if trimmed != "" {
		n = trimmed
	}
	return n
}

var goBinaries sync.Map // resolved path, size, mtime → bool

// goBinary reports whether program (resolved against dir, or PATH) is a
// binary the Go toolchain built.
func goBinary(program, dir string) bool {
	path := program
	if !strings.Contains(program, "/") {
		p, err := exec.LookPath(program)
		if err != nil {
			return false
		}
		path = p
	} else if !filepath.IsAbs(program) {
		if dir == "" {
			return false
		}
		path = filepath.Join(dir, program)
	}
	fi, err := os.Stat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return false
	}
	// Keyed by size and time too: a deploy may replace the binary.
	key := fmt.Sprintf("%s\x00%d\x00%d", path, fi.Size(), fi.ModTime().UnixNano())
	if v, ok := goBinaries.Load(key); ok {
		return v.(bool)
	}
	_, err = buildinfo.ReadFile(path)
	goBinaries.Store(key, err == nil)
	return err == nil
}

// runtimeOf is the runtime of app: as the snapshot recorded it, else as
// its command shows.
func (ev *Evidence) runtimeOf(app string) string {
	a := ev.app(app)
	if a == nil {
		return ""
	}
	if a.Runtime != "" {
		return a.Runtime
	}
	return DetectRuntime(a.Command, "")
}

// hints are the runtime-specific parts of fixes. The zero runtime's are
// neutral: they name no language, framework or API.
type hints struct {
	// crash: how an error in request code should end, instead of the process.
	crash string
	// port: how to read PORT.
	port string
	// keepalive: the setting for the server's idle keep-alive timeout.
	keepalive string
	// outbound: how to pool outbound connections.
	outbound string
	// blocked: what a CPU-bound operation blocks.
	blocked string
}

var hintsFor = map[string]hints{
	"": {
		crash:     "catch errors in request code and answer 500 instead of exiting; on a fatal error stop accepting new requests and let in-flight ones finish before the process exits",
		port:      "read the PORT environment variable and listen on it",
		keepalive: "raise the app server's keep-alive (idle connection) timeout",
		outbound:  "keep one client with a bounded connection pool per process for each service the app calls, and one database pool per process",
		blocked:   "blocks the app's request workers",
	},
	RuntimeNode: {
		crash:     "in Node handle 'uncaughtException'/'unhandledRejection' by logging and shutting down gracefully (server.close()), so that in-flight requests finish",
		port:      "Node: app.listen(process.env.PORT)",
		keepalive: "Node: server.keepAliveTimeout = 65000; server.headersTimeout = 66000",
		outbound:  "Node: new https.Agent({keepAlive: true, maxSockets: 100}); an undici Agent for fetch; one database pool per process",
		blocked:   "blocks the event loop",
	},
	RuntimePython: {
		crash:     "in Python let the framework turn an exception in a view into a 500 (Flask/Django/FastAPI error handlers) rather than calling sys.exit() or os._exit() in request code; gunicorn restarts a worker that died, uvicorn does not",
		port:      "Python: int(os.environ['PORT']); gunicorn --bind 0.0.0.0:$PORT; uvicorn --port $PORT",
		keepalive: "Python: gunicorn --keep-alive 75; uvicorn --timeout-keep-alive 75",
		outbound:  "Python: one requests.Session (HTTPAdapter pool_maxsize) or httpx.Client per process instead of one per request; one database pool per process",
		blocked:   "blocks the worker (a sync worker serves one request at a time; CPU-bound Python code holds the GIL)",
	},
	RuntimeRuby: {
		crash:     "in Ruby rescue errors in request code (Rack middleware, rescue_from in Rails) and answer 500 instead of letting them end the process; look for exit or abort in request code",
		port:      "Ruby: ENV.fetch('PORT'); puma -p $PORT (config/puma.rb: port ENV.fetch('PORT'))",
		keepalive: "Ruby: puma persistent_timeout 75",
		outbound:  "Ruby: persistent connections (net-http-persistent, a Faraday adapter with a pool) and the connection_pool gem; one database pool per process",
		blocked:   "blocks puma's threads (and the GVL)",
	},
	RuntimeJava: {
		crash:     "in Java look for System.exit() or an Error (OutOfMemoryError, StackOverflowError) escaping a thread; log it with Thread.setDefaultUncaughtExceptionHandler and let the server's error handling answer 500",
		port:      "Java: Integer.parseInt(System.getenv(\"PORT\")); Spring Boot: server.port=${PORT}",
		keepalive: "Java: the server's keep-alive timeout (Spring Boot: server.tomcat.keep-alive-timeout=75s)",
		outbound:  "Java: one shared HttpClient (or Apache HttpClient PoolingHttpClientConnectionManager) per process; one database pool (HikariCP)",
		blocked:   "blocks the server's request threads (a Java thread dump, jstack, shows where)",
	},
	RuntimeGo: {
		crash:     "in Go net/http recovers a panic only in the handler's own goroutine: recover in goroutines you start, and return errors instead of calling log.Fatal or os.Exit in request code",
		port:      "Go: http.ListenAndServe(\":\"+os.Getenv(\"PORT\"), handler)",
		keepalive: "Go: http.Server{IdleTimeout: 75 * time.Second}",
		outbound:  "Go: one shared http.Client whose Transport bounds MaxConnsPerHost and keeps MaxIdleConnsPerHost, closing every response body; one sql.DB per process with SetMaxOpenConns",
		blocked:   "starves the process's goroutines (GOMAXPROCS cores busy)",
	},
}

func (ev *Evidence) hints(app string) hints { return hintsOf(ev.runtimeOf(app)) }

func hintsOf(runtime string) hints {
	if h, ok := hintsFor[runtime]; ok {
		return h
	}
	return hintsFor[""]
}
