package gateway_test

import (
	"net/http"
	"testing"
)

// originFields are fields through which frameworks learn where a
// request came from and how (Rack reads X-Forwarded-Ssl before
// X-Forwarded-Proto, ASP.NET behind ARR reads X-ARR-SSL, many read
// X-Real-IP): a client that is no trusted proxy must not be able to set
// them, or a plain-HTTP client passes for HTTPS, or for another address.
var originFields = []string{
	"X-Forwarded-Ssl", "X-Forwarded-Port", "X-Forwarded-Scheme", "X-Url-Scheme", "Front-End-Https", "X-Arr-Ssl",
	"X-Real-Ip", "True-Client-Ip", "X-Client-Ip", "Cf-Connecting-Ip", "X-Forwarded-Prefix", "X-Original-Url",
	"X-Original-Host", "X-Rewrite-Url",
}

// TestOriginFieldsFromClientsDropped: over every protocol, what an
// untrusted client sent in the origin fields never reaches the app; the
// app is told the client's address in X-Real-IP by gatehouse itself.
func TestOriginFieldsFromClientsDropped(t *testing.T) {
	t.Parallel()
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		app := newNetApp(t, nil)
		d := directWith(t, app.addr, protoOptions(t, proto), nil)
		req, err := http.NewRequest("GET", protoURL(proto, d.addr)+"/p", nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range originFields {
			req.Header.Set(f, "on")
		}
		resp, err := protoClient(t, proto).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d, cause %q", resp.StatusCode, resp.Header.Get("Gatehouse-Cause"))
		}
		seen := app.settle(d)
		if len(seen) != 1 {
			t.Fatalf("the app got %d requests, want 1", len(seen))
		}
		for _, f := range originFields {
			if f == "X-Real-Ip" {
				continue
			}
			if v, ok := seen[0].Header[f]; ok {
				t.Errorf("the app got %s: %q from an untrusted client", f, v)
			}
		}
		if got := seen[0].Header.Values("X-Real-Ip"); len(got) != 1 || got[0] != "127.0.0.1" {
			t.Errorf("the app got X-Real-IP %q, want gatehouse's own \"127.0.0.1\" (the client's address)", got)
		}
	})
}
