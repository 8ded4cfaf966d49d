package gateway

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The dashboard's session cookie is taken out of what is forwarded, and
// every other cookie is kept as sent.
func TestStripSessionCookie(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   []string
		want []string // nil: no Cookie field left
	}{
		{"none", []string{"a=1; b=2"}, []string{"a=1; b=2"}},
		{"only it", []string{"gatehouse_session=abc"}, nil},
		{"in the middle", []string{"a=1; gatehouse_session=abc; b=2"}, []string{"a=1; b=2"}},
		{"last, with spaces", []string{"a=1 ;  gatehouse_session = abc "}, []string{"a=1"}},
		{"two fields", []string{"gatehouse_session=x", "c=3"}, []string{"c=3"}},
		{"a longer name is another cookie", []string{"gatehouse_session2=x; my_gatehouse_session=y"}, []string{"gatehouse_session2=x; my_gatehouse_session=y"}},
		{"in a value is kept", []string{"note=gatehouse_session"}, []string{"note=gatehouse_session"}},
		{"twice", []string{"gatehouse_session=a; gatehouse_session=b; z=9"}, []string{"z=9"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{"Cookie": tt.in}
			stripSessionCookie(h)
			if diff := cmp.Diff(tt.want, h["Cookie"]); diff != "" {
				t.Errorf("Cookie (-want +got):\n%s", diff)
			}
		})
	}
}

// A request without the session cookie costs no allocation.
func TestStripSessionCookieAllocatesNothing(t *testing.T) {
	h := http.Header{"Cookie": {"a=1; b=2; theme=dark"}}
	if n := testing.AllocsPerRun(1000, func() { stripSessionCookie(h) }); n != 0 {
		t.Errorf("stripSessionCookie allocates %.0f times for a request without the session", n)
	}
}
