package admin

import (
	"net/http"
	"strconv"
)

// Health is what /livez and /readyz report. Each check returns whether
// it passes and one word why (for people; probes read the status).
type Health interface {
	// Live: gatehouse itself serves.
	Live() (bool, string)
	// Ready: gatehouse should be sent requests.
	Ready() (bool, string)
	// Draining: out of rotation on purpose (drain, or stopping).
	Draining() bool
}

// withProbes answers /livez and /readyz ahead of next: without the admin
// token and whatever the Host (a kubelet probes the pod's address), as
// their answers reveal nothing.
func withProbes(h Health, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/livez":
			WriteHealth(w, r, h.Live)
		case "/readyz":
			WriteHealth(w, r, h.Ready)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// WriteHealth answers a GET or HEAD of /livez or /readyz with what check
// says: 200 and "ok", or 503 and why not.
func WriteHealth(w http.ResponseWriter, r *http.Request, check func() (bool, string)) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	ok, why := check()
	body := why + "\n"
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	code := http.StatusOK
	if !ok {
		code = http.StatusServiceUnavailable
	}
	w.WriteHeader(code)
	if r.Method != http.MethodHead {
		w.Write([]byte(body))
	}
}
