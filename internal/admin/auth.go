package admin

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"html/template"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// sessionCookie carries a browser's proof of the admin token, so that the
// dashboard (whose page loads and event streams cannot send an
// Authorization header) works where a token is required.
const sessionCookie = "gatehouse_session"

// sessionValue is what the cookie holds for token: an HMAC of a fixed
// text keyed by the token, so that the cookie opens the admin API as the
// token does but does not reveal it. Changing the token ends every
// session.
func sessionValue(token string) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("gatehouse admin session v1"))
	return hex.EncodeToString(m.Sum(nil))
}

// requireToken guards every route but /healthz and the sign-in page with
// a bearer token or the session cookie, compared in constant time. A
// browser asking for the dashboard without either is sent to sign in.
func requireToken(token string, next http.Handler) http.Handler {
	want, wantSession := []byte(token), []byte(sessionValue(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" || r.URL.Path == "/login" || strings.HasPrefix(r.URL.Path, "/static/") {
			next.ServeHTTP(w, r)
			return
		}
		got, bearer := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if bearer && subtle.ConstantTimeCompare([]byte(got), want) == 1 {
			next.ServeHTTP(w, r)
			return
		}
		if c, err := r.Cookie(sessionCookie); err == nil && subtle.ConstantTimeCompare([]byte(c.Value), wantSession) == 1 {
			next.ServeHTTP(w, r)
			return
		}
		if r.URL.Path == "/" && r.Method == http.MethodGet {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "admin token required: send Authorization: Bearer TOKEN (admin_token or GATEHOUSE_ADMIN_TOKEN), or sign in to the dashboard"})
	})
}

var loginTmpl = template.Must(template.ParseFS(webFS, "web/login.html"))

// loginFailDelay slows down guessing the token through the sign-in form:
// failed attempts wait in turn (failMu), so that guessing in parallel is
// no faster. A right token never waits.
const loginFailDelay = time.Second

var failMu sync.Mutex

// registerLogin serves the dashboard's sign-in: GET /login shows a form
// for the token, POST /login checks it and sets the session cookie
// (HttpOnly, SameSite=Strict, Secure over HTTPS), POST /logout clears it.
// The cross-origin check on the mux applies to both POSTs.
func registerLogin(mux *http.ServeMux, token string) {
	want := []byte(token)
	show := func(w http.ResponseWriter, status int, msg string) {
		pageHeaders(w)
		w.WriteHeader(status)
		loginTmpl.Execute(w, msg)
	}
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) { show(w, http.StatusOK, "") })
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
		if subtle.ConstantTimeCompare([]byte(r.PostFormValue("token")), want) != 1 {
			failMu.Lock()
			time.Sleep(loginFailDelay)
			failMu.Unlock()
			show(w, http.StatusUnauthorized, "That is not the admin token.")
			return
		}
		http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: sessionValue(token), Path: "/", HttpOnly: true,
			SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
		http.Redirect(w, r, "/login", http.StatusSeeOther)
	})
}

// IsLoopback reports whether addr (host:port) only listens on loopback.
// An empty host (":9901") listens everywhere.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
