package compress

import (
	"errors"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestAppliesFollowsStatusMethodHeaderAndSizeRules(t *testing.T) {
	def := mustNew(t, Options{})
	noMin := mustNew(t, Options{MinSize: -1})
	onlyCSV := mustNew(t, Options{Types: []string{"Text/CSV"}})
	html := func(kv ...string) http.Header {
		h := http.Header{"Content-Type": {"text/html; charset=utf-8"}}
		for i := 0; i+1 < len(kv); i += 2 {
			h.Add(kv[i], kv[i+1])
		}
		return h
	}
	typ := func(ct string) http.Header { return http.Header{"Content-Type": {ct}} }
	tests := []struct {
		name   string
		c      *Compressor
		status int
		method string
		h      http.Header
		length int64
		want   bool
	}{
		{"200 GET html unknown length", def, 200, "GET", html(), -1, true},
		{"100 continue", def, 100, "GET", html(), -1, false},
		{"101 switching protocols", def, 101, "GET", html(), -1, false},
		{"103 early hints", def, 103, "GET", html(), -1, false},
		{"204 no content", def, 204, "GET", html(), -1, false},
		{"304 not modified", def, 304, "GET", html(), -1, false},
		{"206 partial content", def, 206, "GET", html(), -1, false},
		{"404 page", def, 404, "GET", html(), -1, true},
		{"500 page", def, 500, "POST", html(), -1, true},
		{"HEAD judged like GET", def, 200, "HEAD", html(), 5000, true},
		{"HEAD below min size", def, 200, "HEAD", html(), 100, false},
		{"CONNECT tunnel", def, 200, "CONNECT", html(), -1, false},
		{"already gzip", def, 200, "GET", html("Content-Encoding", "gzip"), -1, false},
		{"already encoded on a second line", def, 200, "GET", html("Content-Encoding", "", "Content-Encoding", "br"), -1, false},
		{"empty Content-Encoding", def, 200, "GET", html("Content-Encoding", ""), -1, true},
		{"no-transform", def, 200, "GET", html("Cache-Control", "no-transform"), -1, false},
		{"No-Transform among directives", def, 200, "GET", html("Cache-Control", "public, No-Transform, max-age=60"), -1, false},
		{"no-transform on a second line", def, 200, "GET", html("Cache-Control", "public", "Cache-Control", "no-transform"), -1, false},
		{"other cache directives", def, 200, "GET", html("Cache-Control", "public, max-age=60, no-cache"), -1, true},
		{"Content-Range on a 200", def, 200, "GET", html("Content-Range", "bytes */1000"), -1, false},
		{"no content type", def, 200, "GET", http.Header{}, -1, false},
		{"empty content type", def, 200, "GET", typ(""), -1, false},
		{"png", def, 200, "GET", typ("image/png"), -1, false},
		{"woff2", def, 200, "GET", typ("font/woff2"), -1, false},
		{"octet-stream", def, 200, "GET", typ("application/octet-stream"), -1, false},
		{"upper case type", def, 200, "GET", typ("TEXT/HTML"), -1, true},
		{"event stream via text/*", def, 200, "GET", typ("text/event-stream"), -1, true},
		{"json", def, 200, "GET", typ("application/json"), -1, true},
		{"problem+json via suffix", def, 200, "GET", typ("application/problem+json; charset=utf-8"), -1, true},
		{"atom+xml via suffix", def, 200, "GET", typ("application/atom+xml"), -1, true},
		{"javascript", def, 200, "GET", typ("application/javascript"), -1, true},
		{"svg", def, 200, "GET", typ("image/svg+xml"), -1, true},
		{"wasm", def, 200, "GET", typ("application/wasm"), -1, true},
		{"type with spaces before params", def, 200, "GET", typ(" application/json ; charset=utf-8"), -1, true},
		{"text/ with no subtype", def, 200, "GET", typ("text/"), -1, false},
		{"length below min", def, 200, "GET", html(), 1023, false},
		{"length at min", def, 200, "GET", html(), 1024, true},
		{"zero length", def, 200, "GET", html(), 0, false},
		{"zero length without min", noMin, 200, "GET", html(), 0, true},
		{"configured exact type", onlyCSV, 200, "GET", typ("text/csv"), -1, true},
		{"configured exact type only", onlyCSV, 200, "GET", typ("text/html"), -1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.c.Applies(tt.status, tt.method, tt.h, tt.length); got != tt.want {
				t.Errorf("Applies(%d, %s, %v, %d) = %v, want %v", tt.status, tt.method, tt.h, tt.length, got, tt.want)
			}
		})
	}
}

func TestPrepareRewritesHeaderForEncodedBody(t *testing.T) {
	tests := []struct {
		name string
		in   http.Header
		want http.Header
	}{
		{
			name: "plain answer",
			in:   http.Header{"Content-Type": {"text/html"}, "Content-Length": {"5000"}, "Accept-Ranges": {"bytes"}},
			want: http.Header{"Content-Type": {"text/html"}, "Content-Encoding": {"br"}, "Vary": {"Accept-Encoding"}},
		},
		{
			name: "strong etag becomes weak",
			in:   http.Header{"Etag": {`"abc"`}},
			want: http.Header{"Etag": {`W/"abc"`}, "Content-Encoding": {"br"}, "Vary": {"Accept-Encoding"}},
		},
		{
			name: "weak etag stays",
			in:   http.Header{"Etag": {`W/"abc"`}},
			want: http.Header{"Etag": {`W/"abc"`}, "Content-Encoding": {"br"}, "Vary": {"Accept-Encoding"}},
		},
		{
			name: "existing vary is merged",
			in:   http.Header{"Vary": {"Origin"}},
			want: http.Header{"Vary": {"Origin, Accept-Encoding"}, "Content-Encoding": {"br"}},
		},
		{
			name: "vary already names accept-encoding",
			in:   http.Header{"Vary": {"origin, accept-encoding"}},
			want: http.Header{"Vary": {"origin, accept-encoding"}, "Content-Encoding": {"br"}},
		},
		{
			name: "digests of the identity body go",
			in:   http.Header{"Content-Md5": {"x"}, "Content-Digest": {"sha-256=:x:"}, "Repr-Digest": {"sha-256=:x:"}},
			want: http.Header{"Content-Encoding": {"br"}, "Vary": {"Accept-Encoding"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			Prepare(tt.in, Brotli)
			if d := cmp.Diff(tt.want, tt.in); d != "" {
				t.Errorf("header after Prepare (-want +got):\n%s", d)
			}
		})
	}
}

func TestAddVaryAddsAcceptEncodingOnce(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{"no vary", nil, []string{"Accept-Encoding"}},
		{"other field", []string{"Origin"}, []string{"Origin, Accept-Encoding"}},
		{"already there, other case", []string{"accept-encoding"}, []string{"accept-encoding"}},
		{"already there in a list", []string{"Origin,Accept-Encoding , Cookie"}, []string{"Origin,Accept-Encoding , Cookie"}},
		{"already on another line", []string{"Accept-Encoding", "Origin"}, []string{"Accept-Encoding", "Origin"}},
		{"star covers it", []string{"*"}, []string{"*"}},
		{"two lines, appended to the last", []string{"Origin", "Cookie"}, []string{"Origin", "Cookie, Accept-Encoding"}},
		{"blank last line", []string{"Origin", " "}, []string{"Origin", "Accept-Encoding"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.in != nil {
				h["Vary"] = append([]string(nil), tt.in...)
			}
			AddVary(h)
			AddVary(h) // a second call changes nothing
			if d := cmp.Diff(tt.want, h["Vary"]); d != "" {
				t.Errorf("Vary (-want +got):\n%s", d)
			}
		})
	}
}

func TestNewRejectsInvalidOptions(t *testing.T) {
	tests := []struct {
		name string
		o    Options
	}{
		{"unknown encoding", Options{Encodings: []string{"deflate"}}},
		{"x-gzip is not a name to offer", Options{Encodings: []string{"x-gzip"}}},
		{"duplicate encoding", Options{Encodings: []string{"gzip", "GZIP"}}},
		{"level above 9", Options{Level: 10}},
		{"negative level", Options{Level: -1}},
		{"type without slash", Options{Types: []string{"text"}}},
		{"any type", Options{Types: []string{"*/*"}}},
		{"type with parameters", Options{Types: []string{"text/html; charset=utf-8"}}},
		{"wildcard in the middle", Options{Types: []string{"text/h*ml"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.o)
			if !errors.Is(err, ErrInvalidOptions) {
				t.Errorf("New(%+v) error = %v, want ErrInvalidOptions", tt.o, err)
			}
		})
	}
}

func TestNewDefaults(t *testing.T) {
	c := mustNew(t, Options{})
	if d := cmp.Diff([]string{"zstd", "gzip", "br"}, c.Encodings()); d != "" {
		t.Errorf("default encodings (-want +got):\n%s", d)
	}
	if got := c.MinSize(); got != DefaultMinSize {
		t.Errorf("default MinSize = %d, want %d", got, DefaultMinSize)
	}
	for lvl := 1; lvl <= 9; lvl++ {
		mustNew(t, Options{Level: lvl})
	}
}

func TestPrepareNotModifiedSaysWhatTheRevalidatedAnswerSaid(t *testing.T) {
	c := mustNew(t, Options{})
	tests := []struct {
		name    string
		in      http.Header
		path    string // a static route's request path; "" for an app's
		ae, inm []string
		want    http.Header
	}{
		{
			name: "client holds the compressed answer",
			in:   http.Header{"Etag": {`"abc"`}, "Cache-Control": {"max-age=60"}},
			ae:   []string{"gzip, br"}, inm: []string{`W/"abc"`},
			want: http.Header{"Etag": {`W/"abc"`}, "Cache-Control": {"max-age=60"}, "Vary": {"Accept-Encoding"}},
		},
		{
			name: "weak form among other tags and lines",
			in:   http.Header{"Etag": {`"abc"`}},
			ae:   []string{"zstd"}, inm: []string{`"x,y"`, ` "old" ,W/"abc"`},
			want: http.Header{"Etag": {`W/"abc"`}, "Vary": {"Accept-Encoding"}},
		},
		{
			name: "both forms: the one this client is sent",
			in:   http.Header{"Etag": {`"abc"`}},
			ae:   []string{"gzip"}, inm: []string{`"abc", W/"abc"`},
			want: http.Header{"Etag": {`W/"abc"`}, "Vary": {"Accept-Encoding"}},
		},
		{
			name: "client holds the identity answer",
			in:   http.Header{"Etag": {`"abc"`}},
			ae:   []string{"gzip"}, inm: []string{`"abc"`},
			want: http.Header{"Etag": {`"abc"`}, "Vary": {"Accept-Encoding"}},
		},
		{
			name: "client takes no coding offered: the 200 is identity",
			in:   http.Header{"Etag": {`"abc"`}},
			ae:   []string{"deflate"}, inm: []string{`W/"abc"`},
			want: http.Header{"Etag": {`"abc"`}, "Vary": {"Accept-Encoding"}},
		},
		{
			name: "revalidated by date",
			in:   http.Header{"Etag": {`"abc"`}, "Last-Modified": {"Tue, 02 Jan 2024 03:04:05 GMT"}},
			ae:   []string{"gzip"},
			want: http.Header{"Etag": {`"abc"`}, "Last-Modified": {"Tue, 02 Jan 2024 03:04:05 GMT"}, "Vary": {"Accept-Encoding"}},
		},
		{
			name: "weak tag of the app's own",
			in:   http.Header{"Etag": {`W/"abc"`}},
			ae:   []string{"gzip"}, inm: []string{`W/"abc"`},
			want: http.Header{"Etag": {`W/"abc"`}, "Vary": {"Accept-Encoding"}},
		},
		{
			name: "existing Vary gains Accept-Encoding",
			in:   http.Header{"Vary": {"Origin"}},
			ae:   []string{"gzip"},
			want: http.Header{"Vary": {"Origin, Accept-Encoding"}},
		},
		{
			name: "compressible type shown",
			in:   http.Header{"Etag": {`"abc"`}, "Content-Type": {"text/html"}},
			ae:   []string{"gzip"}, inm: []string{`W/"abc"`},
			want: http.Header{"Etag": {`W/"abc"`}, "Content-Type": {"text/html"}, "Vary": {"Accept-Encoding"}},
		},
		{
			name: "type never compressed",
			in:   http.Header{"Etag": {`"abc"`}, "Content-Type": {"image/png"}},
			ae:   []string{"gzip"}, inm: []string{`W/"abc"`},
			want: http.Header{"Etag": {`"abc"`}, "Content-Type": {"image/png"}},
		},
		{
			name: "no type shown, a static path of a type never compressed",
			in:   http.Header{"Etag": {`"abc"`}},
			path: "/img/logo.png",
			ae:   []string{"gzip"}, inm: []string{`"abc"`},
			want: http.Header{"Etag": {`"abc"`}},
		},
		{
			name: "no type shown, a static path of a compressible type",
			in:   http.Header{"Etag": {`"abc"`}},
			path: "/js/app.js",
			ae:   []string{"gzip"}, inm: []string{`W/"abc"`},
			want: http.Header{"Etag": {`W/"abc"`}, "Vary": {"Accept-Encoding"}},
		},
		{
			name: "no type shown, an app's answer",
			in:   http.Header{"Etag": {`"abc"`}},
			ae:   []string{"gzip"}, inm: []string{`"abc"`},
			want: http.Header{"Etag": {`"abc"`}, "Vary": {"Accept-Encoding"}},
		},
		{
			name: "no type shown, a static path of no known type",
			in:   http.Header{"Etag": {`"abc"`}},
			path: "/users/42.unknown-ext",
			ae:   []string{"gzip"}, inm: []string{`"abc"`},
			want: http.Header{"Etag": {`"abc"`}, "Vary": {"Accept-Encoding"}},
		},
		{
			name: "a type shown wins over the path's",
			in:   http.Header{"Etag": {`"abc"`}, "Content-Type": {"text/plain"}},
			path: "/export.png",
			ae:   []string{"gzip"}, inm: []string{`"abc"`},
			want: http.Header{"Etag": {`"abc"`}, "Content-Type": {"text/plain"}, "Vary": {"Accept-Encoding"}},
		},
		{
			name: "the app's own coding",
			in:   http.Header{"Etag": {`"abc"`}, "Content-Encoding": {"gzip"}},
			ae:   []string{"gzip"}, inm: []string{`W/"abc"`},
			want: http.Header{"Etag": {`"abc"`}, "Content-Encoding": {"gzip"}},
		},
		{
			name: "no-transform",
			in:   http.Header{"Etag": {`"abc"`}, "Cache-Control": {"public, no-transform"}},
			ae:   []string{"gzip"}, inm: []string{`W/"abc"`},
			want: http.Header{"Etag": {`"abc"`}, "Cache-Control": {"public, no-transform"}},
		},
		{
			name: "malformed If-None-Match names nothing",
			in:   http.Header{"Etag": {`"abc"`}},
			ae:   []string{"gzip"}, inm: []string{`W/"abc`},
			want: http.Header{"Etag": {`"abc"`}, "Vary": {"Accept-Encoding"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.PrepareNotModified(tt.in, tt.path, tt.ae, tt.inm)
			if d := cmp.Diff(tt.want, tt.in); d != "" {
				t.Errorf("304's header (-want +got):\n%s", d)
			}
		})
	}
}

func TestPreparePartialVariesWhenTheWholeWouldBeCompressed(t *testing.T) {
	c := mustNew(t, Options{})
	part := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i+1 < len(kv); i += 2 {
			h.Add(kv[i], kv[i+1])
		}
		return h
	}
	tests := []struct {
		name string
		in   http.Header
		want []string // Vary
	}{
		{"part of a large page", part("Content-Type", "text/html", "Content-Range", "bytes 0-9/5000"), []string{"Accept-Encoding"}},
		{"whole of unknown length", part("Content-Type", "text/html", "Content-Range", "bytes 0-9/*"), []string{"Accept-Encoding"}},
		{"whole at min size", part("Content-Type", "application/json", "Content-Range", "bytes 0-9/1024"), []string{"Accept-Encoding"}},
		{"whole under min size", part("Content-Type", "text/html", "Content-Range", "bytes 0-9/1023"), nil},
		{"existing Vary gains it", part("Content-Type", "text/html", "Content-Range", "bytes 0-9/5000", "Vary", "Origin"), []string{"Origin, Accept-Encoding"}},
		{"several parts", part("Content-Type", "multipart/byteranges; boundary=x"), []string{"Accept-Encoding"}},
		{"type never compressed", part("Content-Type", "video/mp4", "Content-Range", "bytes 0-9/5000000"), nil},
		{"no type", part("Content-Range", "bytes 0-9/5000"), nil},
		{"part of an encoded representation", part("Content-Type", "text/html", "Content-Encoding", "gzip", "Content-Range", "bytes 0-9/5000"), nil},
		{"no-transform", part("Content-Type", "text/html", "Cache-Control", "no-transform", "Content-Range", "bytes 0-9/5000"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.PreparePartial(tt.in)
			if d := cmp.Diff(tt.want, tt.in["Vary"]); d != "" {
				t.Errorf("206's Vary (-want +got):\n%s", d)
			}
		})
	}
}
