package edge

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gatehouse/gatehouse/internal/config"
)

// A redirect whose Location begins with the client's path stays on the
// site: a path the client began with "//" or "/\" (which browsers read
// as another host) is not sent back as a protocol-relative URL.
func TestRedirectLocationFromThePathStaysOnTheSite(t *testing.T) {
	for _, tt := range []struct {
		name, to, raw, want string
	}{
		{"a path as sent", "{path}{query}", "/blog/post", "/post?x=1"},
		{"a path with a leading //", "{path}{query}", "/blog//evil.example/x", "/evil.example/x?x=1"},
		{"a path with a leading /\\", "{path}", "/blog/\\evil.example", "/evil.example"},
		{"a path with a leading ///", "{path}", "/blog///evil.example", "/evil.example"},
		{"the uri with a leading //", "{uri}", "//evil.example/x", "/evil.example/x"},
		{"a configured protocol-relative URL", "//cdn.example.com{path}", "/blog//x", "//cdn.example.com//x"},
		{"an absolute URL", "https://www.example.com{path}", "/blog//x", "https://www.example.com//x"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rt := compile(t, config.Route{Match: "/blog/", StripPrefix: true, Redirect: &config.Redirect{To: tt.to, Status: 301}})
			r := httptest.NewRequest("GET", "http://example.com/", nil)
			r.RequestURI = tt.raw
			w := httptest.NewRecorder()
			answered, fail := rt.Admit(context.Background(), w, &Ask{Req: r, RawPath: tt.raw, Query: "x=1"})
			if !answered || fail != nil || w.Code != http.StatusMovedPermanently {
				t.Fatalf("Admit: answered %v, fail %v, status %d; want a 301", answered, fail, w.Code)
			}
			if got := w.Header().Get("Location"); got != tt.want {
				t.Errorf("Location %q, want %q", got, tt.want)
			}
		})
	}
}
