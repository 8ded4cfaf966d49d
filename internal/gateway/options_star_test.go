package gateway_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// OPTIONS * (RFC 9110 §9.3.7) asks about the server, not a resource: no
// app is asked, gatehouse answers it itself, 200 with an Allow field and
// an empty body, and logs it like any request.
//
// And it is no way around the front's checks: whatever follows an
// OPTIONS * on the connection gets exactly what it gets on a connection
// of its own (both Content-Length and Transfer-Encoding,
// Transfer-Encoding on HTTP/1.0, bare LF line ends are TestAttacks'
// refusals: 400 bad_request, the connection closed), and the app sees
// nothing of them. (nginx refuses OPTIONS * with 400; answering it is as
// safe, as long as the connection stays the front's.)

// optionsStar is an OPTIONS * that keeps the connection open.
const optionsStar = "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"

// optionsStarCase is one row: the bytes sent on one connection, most
// after an OPTIONS *, and what must come of them.
type optionsStarCase struct {
	name string
	send string
	// want is the outcome of the whole exchange, an OPTIONS * answer
	// (any cause) first.
	want  outcome
	check func(t *testing.T, r *attackRun)
}

// afterOptions: OPTIONS * answered 200, then the outcome o of what
// followed it.
func afterOptions(o outcome) outcome {
	return outcome{Statuses: append([]int{200}, o.Statuses...), Causes: append([]string{anyCause}, o.Causes...), Closed: o.Closed, App: o.App}
}

// optionsCLTE is an OPTIONS * with both framings, whose chunked body
// (Transfer-Encoding wins over Content-Length for net/http) ends before
// the request hidden in it.
var optionsCLTE = fmt.Sprintf("OPTIONS * HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n%s", len(clBody), clBody)

var optionsStarCases = []optionsStarCase{
	{
		name:  "then CL.TE",
		send:  optionsStar + fmt.Sprintf("POST /clte HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n%s", len(clBody), clBody),
		want:  afterOptions(rejected()),
		check: entryIs("/clte", 400, "bad_request"),
	},
	{
		name: "then TE on HTTP 1.0",
		send: optionsStar + "POST /te10 HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" + smuggled,
		want: afterOptions(rejected()),
	},
	{
		name: "then bare LF head",
		send: optionsStar + "GET /lf HTTP/1.1\nHost: x\n\n" + smuggled,
		want: afterOptions(rejected()),
	},
	{
		name: "then OPTIONS * with CL.TE hiding a request",
		send: optionsStar + optionsCLTE,
		want: afterOptions(rejected()),
	},
	{
		// The same first on the connection: the front refuses it (the
		// reference for the one above).
		name: "OPTIONS * with CL.TE first on the connection",
		send: optionsCLTE,
		want: rejected(),
	},
	{
		// Keep-alive after OPTIONS *: a plain request is served.
		name: "then a plain GET is served",
		send: optionsStar + "GET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		want: afterOptions(served("GET /after")),
	},
}

// TestOptionsStarAnswered: OPTIONS * alone, over each protocol, is
// answered by gatehouse: 200, Allow, Content-Length 0 and an empty body,
// no app asked, one access entry.
func TestOptionsStarAnswered(t *testing.T) {
	t.Parallel()
	eachWireInParallel(t, []wire{wireH1, wireH1TLS, wireH2TLS, wireH2C}, func(t *testing.T, w wire) {
		app := newRecApp(t, nil)
		d := directWith(t, app.addr, w.frontOptions(), nil)
		var (
			status int
			header http.Header
			body   string
		)
		if w.h2 {
			h, err := dialH2(t, d.addr, w.tls)
			if err != nil {
				t.Fatal(err)
			}
			if err := h.start(); err != nil {
				t.Fatal(err)
			}
			h.headers(1, true, ":method", "OPTIONS", ":scheme", h.scheme, ":authority", "x", ":path", "*")
			v, ok := h.await(h2Patience, settled(1))
			if !ok || v.Streams[1] == nil || v.Streams[1].Status == 0 {
				t.Fatalf("OPTIONS * over %s: %s (settled %v); want a 200 answer", w.name, v.outcome(1), ok)
			}
			st := v.Streams[1]
			status, header, body = st.Status, st.Header, string(st.Body)
		} else {
			r := sendH1(w, d.addr, "OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			if r.err != nil {
				t.Fatalf("exchange: %v", r.err)
			}
			if len(r.answers) != 1 {
				t.Fatalf("client got %.400q: want one answer", r.raw)
			}
			a := r.answers[0]
			status, header, body = a.status, a.header, a.body
		}
		if status != 200 || header.Get("Allow") == "" || header.Get("Content-Length") != "0" || body != "" {
			t.Errorf("OPTIONS * answered %d, Allow %q, Content-Length %q, body %q; want 200, an Allow field, Content-Length 0, no body",
				status, header.Get("Allow"), header.Get("Content-Length"), body)
		}
		if reqs := app.settle(d); len(reqs) != 0 {
			t.Errorf("the app got %v: OPTIONS * is gatehouse's to answer", reqs)
		}
		if e, ok := d.anyEntry(); !ok || e.Method != "OPTIONS" || e.Status != 200 {
			t.Errorf("access entry %+v (found %v); want OPTIONS * logged with status 200", e, ok)
		}
	})
}

// TestOptionsStarThenChecks sends, after an OPTIONS * on the same
// connection, what the front refuses on a connection of its own, over
// HTTP/1.1 on the plain and the HTTPS listener.
func TestOptionsStarThenChecks(t *testing.T) {
	eachWire(t, h1Wires, func(t *testing.T, w wire) {
		runs := make([]*attackRun, len(optionsStarCases))
		for i, c := range optionsStarCases {
			app := newRecApp(t, nil)
			runs[i] = &attackRun{d: directWith(t, app.addr, w.frontOptions(), nil), app: app, send: []string{c.send}}
		}
		exchangeAll(w, runs)
		for i, c := range optionsStarCases {
			t.Run(c.name, func(t *testing.T) {
				runs[i].verdict(t, []outcome{c.want}, c.check, "\naccess log: "+entriesString(runs[i].d))
			})
		}
	})
}

// entriesString lists d's access entries, for a failure's message.
func entriesString(d *direct) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var s []string
	for _, e := range d.entries {
		s = append(s, fmt.Sprintf("%s %q %d %q", e.Method, e.Path, e.Status, e.Cause))
	}
	return "[" + strings.Join(s, ", ") + "]"
}
