package gateway

import (
	"bufio"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

func FuzzZZResp(f *testing.F) {
	f.Add("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello", false)
	f.Add("HTTP/1.1 404\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", false)
	f.Add("HTTP/1.1 201 Created\r\nset-cookie: a=1\r\nSet-Cookie: b=2\r\nx-y:  spaced  \r\nContent-Length: 1\r\n\r\nx", true)
	f.Fuzz(func(t *testing.T, raw string, head bool) {
		const next = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext"
		type read struct {
			Status     string
			Code       int
			Header     http.Header
			Length     int64
			Close      bool
			Body, Rest string
			Err        bool
		}
		m := "GET"
		if head {
			m = "HEAD"
		}
		do := func(parse bool) (read, bool) {
			br := bufio.NewReaderSize(strings.NewReader(raw+next), 4096)
			br.Peek(1)
			req := &http.Request{Method: m}
			var resp *http.Response
			var err error
			st := getState()
			defer putState(st)
			if parse {
				resp, err = readResponse(br, req, st)
			} else {
				resp, err = http.ReadResponse(br, req)
			}
			if err != nil {
				return read{Err: true}, false
			}
			b, berr := io.ReadAll(resp.Body)
			rest, _ := io.ReadAll(br)
			return read{resp.Status, resp.StatusCode, resp.Header.Clone(), resp.ContentLength, resp.Close, string(b) + func() string { if berr != nil { return "ERR" }; return "" }(), string(rest), false}, resp == &st.resp
		}
		want, _ := do(false)
		got, parsed := do(true)
		if !reflect.DeepEqual(want, got) {
			t.Errorf("parsed=%v raw %q\nwant %+v\ngot  %+v", parsed, raw, want, got)
		}
	})
}
