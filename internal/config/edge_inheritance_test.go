package config

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// A route's own edge key replaces the app's; "off" (and false, and an
// explicit empty list) turns the app's off on that route.
func TestRouteKeysReplaceTheAppsOnes(t *testing.T) {
	c, err := Parse("g.yaml", []byte(`
apps:
  web:
    command: ./web
    compress: true
    security_headers: true
    deny: [10.0.0.0/8]
    rate_limit: {rate: 10/s}
    routes:
      - /
      - match: /open/
        compress: false
        security_headers: false
        deny: []
        rate_limit: off
      - match: /strict/
        security_headers: force
        rate_limit: {rate: 1/s, burst: 2}
`))
	if err != nil {
		t.Fatal(err)
	}
	a := c.Apps["web"]
	type view struct {
		Compress, RateLimit bool
		Burst, IPv6Prefix   int
		Security            string
		Deny                []string
	}
	of := func(e Edge) view {
		v := view{Compress: e.Compress != nil, RateLimit: e.RateLimit != nil, Security: e.SecurityHeaders, Deny: e.Deny}
		if e.RateLimit != nil {
			v.Burst, v.IPv6Prefix = e.RateLimit.Burst, e.RateLimit.IPv6Prefix
		}
		return v
	}
	got := []view{of(EdgeOf(a, &a.Routes[0])), of(EdgeOf(a, &a.Routes[1])), of(EdgeOf(a, &a.Routes[2]))}
	want := []view{
		{Compress: true, RateLimit: true, Burst: 10, IPv6Prefix: 64, Security: SecurityOn, Deny: []string{"10.0.0.0/8"}},
		{Deny: []string{}},
		{Compress: true, RateLimit: true, Burst: 2, IPv6Prefix: 64, Security: SecurityForce, Deny: []string{"10.0.0.0/8"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("edge keys in effect per route (-want +got):\n%s", diff)
	}
}
