package admin

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"html/template"
	"net/http"
	"strings"
	"sync"
	"time"
)

// sessionCookie carries a browser's dashboard session, so that the
// dashboard (whose page loads and event streams cannot send an
// Authorization header) works where a token is required. Browsers send
// a cookie to every port of its host, the app's too: the gateway removes
// this one from what it forwards (gateway.AdminSessionCookie, the same
// name).
const sessionCookie = "gatehouse_session"

// A session lasts sessionTTL from its sign-in; at most maxSessions are
// kept (the oldest goes first).
const (
	sessionTTL  = 12 * time.Hour
	maxSessions = 256
)

// sessions are the signed-in browsers: random ids, kept in memory only,
// so that signing out ends one for good and a gatehouse restart or
// upgrade ends them all (the browser signs in again). The id reveals
// nothing of the token.
type sessions struct {
	mu sync.Mutex
	m  map[string]time.Time // id → expiry
}

func newSessions() *sessions { return &sessions{m: map[string]time.Time{}} }

func (s *sessions) create() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand's contract)
	id := hex.EncodeToString(b)
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, exp := range s.m {
		if now.After(exp) {
			delete(s.m, k)
		}
	}
	if len(s.m) >= maxSessions {
		var oldest string
		for k, exp := range s.m {
			if oldest == "" || exp.Before(s.m[oldest]) {
				oldest = k
			}
		}
		delete(s.m, oldest)
	}
	s.m[id] = now.Add(sessionTTL)
	return id
}

func (s *sessions) valid(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.m[id]
	return ok && time.Now().Before(exp)
}

func (s *sessions) revoke(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
}

// requireToken guards every route but /healthz, the sign-in page, the
// page's static files and its icon with a bearer token (compared in
// constant time) or a session. A browser asking for the dashboard
// without either is sent to sign in.
func requireToken(token string, s *sessions, next http.Handler) http.Handler {
	want := []byte(token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" || r.URL.Path == "/login" || r.URL.Path == "/favicon.ico" || strings.HasPrefix(r.URL.Path, "/static/") {
			next.ServeHTTP(w, r)
			return
		}
		got, bearer := bearerToken(r.Header.Get("Authorization"))
		if bearer && subtle.ConstantTimeCompare([]byte(got), want) == 1 {
			next.ServeHTTP(w, r)
			return
		}
		if c, err := r.Cookie(sessionCookie); err == nil && s.valid(c.Value) {
			next.ServeHTTP(w, r)
			return
		}
		if r.URL.Path == "/" && r.Method == http.MethodGet {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		// A wrong token and none at all call for different fixes (the
		// token's source, or sending one): the answer says which.
		msg := "admin token required: send Authorization: Bearer TOKEN (admin_token or GATEHOUSE_ADMIN_TOKEN), or sign in to the dashboard"
		if bearer {
			msg = "admin token not accepted: the Bearer token sent is not this gatehouse's admin token (admin_token or GATEHOUSE_ADMIN_TOKEN where it runs)"
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": msg})
	})
}

// bearerToken is the token of an Authorization header of the Bearer
// scheme, whose name is case-insensitive (RFC 9110 section 11.1): curl
// -H "Authorization: bearer …" and clients that write it so are no less
// bearers of it.
func bearerToken(h string) (string, bool) {
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimLeft(token, " "), true
}

var loginTmpl = template.Must(template.ParseFS(webFS, "web/login.html"))

// A failed sign-in waits loginFailDelay before its answer, so that
// guessing the token through the form is slow; at most maxFailing wait
// at once, and a failure beyond that is answered 429 at once, so that
// nobody can queue failures to keep a user's typo waiting.
const (
	loginFailDelay = time.Second
	maxFailing     = 4
)

// registerLogin serves the dashboard's sign-in: GET /login shows a form
// for the token, POST /login checks it and starts a session (an HttpOnly,
// SameSite=Strict cookie), POST /logout ends it. The cross-origin check
// on the mux applies to both POSTs. The failures waiting are counted per
// mux: one admin listener's guesser does not lock out another's users.
func registerLogin(mux *http.ServeMux, token string, s *sessions) {
	want := []byte(token)
	failing := make(chan struct{}, maxFailing)
	show := func(w http.ResponseWriter, status int, msg string) {
		pageHeaders(w)
		w.WriteHeader(status)
		loginTmpl.Execute(w, msg)
	}
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) { show(w, http.StatusOK, "") })
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
		if subtle.ConstantTimeCompare([]byte(r.PostFormValue("token")), want) != 1 {
			select {
			case failing <- struct{}{}:
				time.Sleep(loginFailDelay)
				<-failing
				show(w, http.StatusUnauthorized, "That is not the admin token.")
			default:
				show(w, http.StatusTooManyRequests, "Too many failed sign-ins at once; try again in a moment.")
			}
			return
		}
		http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: s.create(), Path: "/", HttpOnly: true,
			SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil, MaxAge: int(sessionTTL / time.Second)})
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie(sessionCookie); err == nil {
			s.revoke(c.Value)
		}
		http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
		http.Redirect(w, r, "/login", http.StatusSeeOther)
	})
}
