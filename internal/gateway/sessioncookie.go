package gateway

import (
	"net/http"
	"strings"
)

// AdminSessionCookie is the admin dashboard's session cookie (package
// admin names it too). Browsers send a cookie to every port of the host
// that set it, so one signed in to the dashboard on 127.0.0.1:9901 sends
// it to the gateway on 127.0.0.1:8080 as well: no app may see it, or the
// app, its logs and its tracing would hold a key to the admin API.
const AdminSessionCookie = "gatehouse_session"

// stripSessionCookie removes AdminSessionCookie from the Cookie fields,
// keeping every other cookie as sent. A request without it (nearly all)
// costs a substring search and allocates nothing.
func stripSessionCookie(h http.Header) {
	fields := h["Cookie"]
	found := false
	for _, f := range fields {
		if strings.Contains(f, AdminSessionCookie) {
			found = true
			break
		}
	}
	if !found {
		return
	}
	kept := fields[:0:0]
	for _, f := range fields {
		var parts []string
		for part := range strings.SplitSeq(f, ";") {
			name, _, _ := strings.Cut(strings.TrimSpace(part), "=")
			if strings.TrimSpace(name) == AdminSessionCookie {
				continue
			}
			if p := strings.TrimSpace(part); p != "" {
				parts = append(parts, p)
			}
		}
		if len(parts) > 0 {
			kept = append(kept, strings.Join(parts, "; "))
		}
	}
	if len(kept) == 0 {
		delete(h, "Cookie")
		return
	}
	h["Cookie"] = kept
}
