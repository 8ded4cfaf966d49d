package admin

import (
	"net"
	"net/http"
	"strings"
)

// loopbackHostOnly refuses requests whose Host is not a loopback name or
// address. Without a token the admin API trusts whoever can reach
// loopback; a web page that points a DNS name at 127.0.0.1 (DNS
// rebinding) could otherwise read it from the operator's browser.
func loopbackHostOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !loopbackHost(r.Host) {
			writeJSON(w, http.StatusForbidden, map[string]string{
				"error": "the admin API without a token answers only to loopback host names (127.0.0.1, [::1], localhost); set admin_token to serve other names"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
