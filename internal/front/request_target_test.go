package front

import (
	"net/http"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/cause"
)

// targetEcho answers with the URL the handler was handed, path and query
// apart.
func targetEcho(x *Exchange, h *handed) {
	readAll(x, h)
	limAnswer(x.W, http.StatusOK, "path="+x.Req.URL.Path+" query="+x.Req.URL.RawQuery)
}

// targetCase is a request line the front serves (want.Reject == "") or
// refuses 400 as bad_request.
type targetCase struct {
	name string
	send string
	want handed
	url  string // the answer targetEcho gives, for one served
}

// checkTargets sends each case on its own connection, and checks the
// answer and what the handler was handed: a served request is answered
// and its connection kept; a refused one is answered 400 and its
// connection closed.
func checkTargets(t *testing.T, cases []targetCase) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := newXStub(targetEcho)
			lc := limDial(t, limServe(t, st, Options{}))
			lc.send(tc.send)
			resp, body := lc.mustResponse(5 * time.Second)
			if tc.want.Reject != "" {
				if resp.StatusCode != http.StatusBadRequest || !resp.Close {
					t.Errorf("answer %d %q close=%v, want 400 with Connection: close", resp.StatusCode, body, resp.Close)
				}
				if got := st.next(t); got.Reject != tc.want.Reject {
					t.Errorf("the handler was handed %+v, want a refusal %s", got, tc.want.Reject)
				}
				if _, ok := lc.closed(5 * time.Second); !ok {
					t.Error("the connection stays open after the refusal")
				}
				st.noMore(t)
				return
			}
			// (An HTTP/1.0 request is answered once.)
			if wantClose := tc.want.Proto == "HTTP/1.0"; resp.StatusCode != 200 || body != tc.url || resp.Close != wantClose {
				t.Errorf("answer %d %q close=%v, want 200 %q close=%v", resp.StatusCode, body, resp.Close, tc.url, wantClose)
			}
			st.nextIs(t, tc.want)
		})
	}
}

// An absolute-form target (RFC 9112 §3.2.2) names the request's host,
// whatever the Host field says (or without one, on HTTP/1.0), and the
// handler is handed its origin form ("/" for an empty path). One with
// userinfo, another scheme than http(s), or no authority is refused.
func TestAbsoluteFormTarget(t *testing.T) {
	t.Parallel()
	refused := handed{Reject: string(cause.BadRequest)}
	checkTargets(t, []targetCase{
		{"path and query", "GET http://example.com/p?q HTTP/1.1\r\nHost: other\r\n\r\n",
			handed{Method: "GET", RequestURI: "/p?q", Host: "example.com", Proto: "HTTP/1.1"}, "path=/p query=q"},
		{"empty path", "GET http://example.com HTTP/1.1\r\nHost: other\r\n\r\n",
			handed{Method: "GET", RequestURI: "/", Host: "example.com", Proto: "HTTP/1.1"}, "path=/ query="},
		{"empty path with a query", "GET https://example.com:8443?x=1 HTTP/1.1\r\nHost: other\r\n\r\n",
			handed{Method: "GET", RequestURI: "/?x=1", Host: "example.com:8443", Proto: "HTTP/1.1"}, "path=/ query=x=1"},
		{"scheme in upper case", "GET HTTP://Example.COM/a/b HTTP/1.1\r\nHost: other\r\n\r\n",
			handed{Method: "GET", RequestURI: "/a/b", Host: "Example.COM", Proto: "HTTP/1.1"}, "path=/a/b query="},
		{"IPv6 literal", "GET http://[::1]:8080/v6 HTTP/1.1\r\nHost: other\r\n\r\n",
			handed{Method: "GET", RequestURI: "/v6", Host: "[::1]:8080", Proto: "HTTP/1.1"}, "path=/v6 query="},
		{"with a body", "POST http://example.com/post HTTP/1.1\r\nHost: other\r\nContent-Length: 2\r\n\r\nhi",
			handed{Method: "POST", RequestURI: "/post", Host: "example.com", Proto: "HTTP/1.1", ContentLength: 2, Body: "hi"}, "path=/post query="},
		{"HTTP/1.0 without Host", "GET http://example.com/old HTTP/1.0\r\n\r\n",
			handed{Method: "GET", RequestURI: "/old", Host: "example.com", Proto: "HTTP/1.0"}, "path=/old query="},
		{"userinfo", "GET http://user:pw@example.com/p HTTP/1.1\r\nHost: example.com\r\n\r\n", refused, ""},
		{"userinfo without a password", "GET http://user@example.com/p HTTP/1.1\r\nHost: example.com\r\n\r\n", refused, ""},
		{"ftp scheme", "GET ftp://example.com/p HTTP/1.1\r\nHost: example.com\r\n\r\n", refused, ""},
		{"ws scheme", "GET ws://example.com/p HTTP/1.1\r\nHost: example.com\r\n\r\n", refused, ""},
		{"no authority", "GET http:///p HTTP/1.1\r\nHost: example.com\r\n\r\n", refused, ""},
		{"no scheme separator", "GET http:/example.com/p HTTP/1.1\r\nHost: example.com\r\n\r\n", refused, ""},
		{"authority form", "GET example.com:80 HTTP/1.1\r\nHost: example.com\r\n\r\n", refused, ""},
		{"bad authority", "GET http://exa<mple.com/p HTTP/1.1\r\nHost: example.com\r\n\r\n", refused, ""},
	})
}

// OPTIONS * is handed to the handler with RequestURI "*"; "*" with any
// other method, and CONNECT (gatehouse is no forward proxy), are refused.
func TestAsteriskAndConnect(t *testing.T) {
	t.Parallel()
	refused := handed{Reject: string(cause.BadRequest)}
	checkTargets(t, []targetCase{
		{"OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
			handed{Method: "OPTIONS", RequestURI: "*", Host: "a", Proto: "HTTP/1.1"}, "path=* query="},
		{"OPTIONS * on HTTP/1.0", "OPTIONS * HTTP/1.0\r\nHost: a\r\n\r\n",
			handed{Method: "OPTIONS", RequestURI: "*", Host: "a", Proto: "HTTP/1.0"}, "path=* query="},
		{"OPTIONS on a path", "OPTIONS /p HTTP/1.1\r\nHost: a\r\n\r\n",
			handed{Method: "OPTIONS", RequestURI: "/p", Host: "a", Proto: "HTTP/1.1"}, "path=/p query="},
		{"GET *", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", refused, ""},
		{"POST *", "POST * HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", refused, ""},
		{"options * in lower case", "options * HTTP/1.1\r\nHost: a\r\n\r\n", refused, ""},
		{"CONNECT authority", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", refused, ""},
		{"CONNECT path", "CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n", refused, ""},
	})
}
