package admin_test

import (
	"net/http"
	"testing"
)

// Without a token, the admin API answers only to loopback host names, so
// a DNS name rebound to 127.0.0.1 cannot read it from a browser.
func TestAdminRefusesForeignHostWithoutToken(t *testing.T) {
	g := start(t, 1, nil)
	c := client(t)
	for _, tc := range []struct {
		host string
		want int
	}{
		{"", http.StatusOK}, // the URL's own 127.0.0.1:PORT
		{"localhost", http.StatusOK},
		{"[::1]:9901", http.StatusOK},
		{"evil.example:9901", http.StatusForbidden},
		{"10.0.0.1", http.StatusForbidden},
	} {
		t.Run(tc.host, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, g.AdminURL+"/api/env?app=web", nil)
			if tc.host != "" {
				req.Host = tc.host
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("Host %q: status %d, want %d", tc.host, resp.StatusCode, tc.want)
			}
		})
	}
}
