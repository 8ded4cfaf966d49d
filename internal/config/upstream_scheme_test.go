package config

import "testing"

// "HTTPS://host" is https:// (a scheme is case-insensitive, RFC 3986
// §3.1): the pool speaks TLS, never cleartext to the HTTPS port.
func TestUpperCaseHTTPSScheme(t *testing.T) {
	for _, u := range []string{"HTTPS://10.0.0.5", "Https://api.internal"} {
		c, err := Parse("g.yaml", []byte("apps:\n  api:\n    upstreams: [\""+u+"\"]\n"))
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		a := c.Apps["api"]
		if a.UpstreamTLS == nil {
			t.Errorf("%s: accepted as %q with no upstream_tls: plain HTTP to the HTTPS port", u, a.Upstreams[0])
		}
	}
}
