package gateway

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestAffinityCookies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		fields []string
		want   [2]string
	}{
		{"none", nil, [2]string{}},
		{"other cookies", []string{"a=1; b=2"}, [2]string{}},
		{"plain", []string{"ARRAffinity=v1"}, [2]string{"v1", ""}},
		{"both, among others", []string{"a=1; ARRAffinity=v1; b=2; ARRAffinitySameSite=v2; c=3"}, [2]string{"v1", "v2"}},
		{"only the twin", []string{"ARRAffinitySameSite=v2"}, [2]string{"", "v2"}},
		{"several fields (HTTP/2)", []string{"a=1", "ARRAffinitySameSite=v2", "ARRAffinity=v1"}, [2]string{"v1", "v2"}},
		{"spaces and tabs", []string{" \tARRAffinity=v1 ;  ARRAffinitySameSite=v2\t"}, [2]string{"v1", "v2"}},
		{"quoted", []string{`ARRAffinity="v1"; ARRAffinitySameSite="v2"`}, [2]string{"v1", "v2"}},
		{"the first of a name", []string{"ARRAffinity=v1; ARRAffinity=v3"}, [2]string{"v1", ""}},
		{"names are case-sensitive", []string{"arraffinity=v1; ARRAFFINITYSAMESITE=v2"}, [2]string{}},
		{"longer names", []string{"ARRAffinityX=v1; ARRAffinitySameSiteX=v2; XARRAffinity=v3"}, [2]string{}},
		{"no value", []string{"ARRAffinity; ARRAffinitySameSite="}, [2]string{}},
		{"empty parts", []string{";;ARRAffinity=v1;;"}, [2]string{"v1", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, s := affinityCookies(tt.fields, "ARRAffinity")
			if diff := cmp.Diff(tt.want, [2]string{p, s}); diff != "" {
				t.Errorf("(plain, sameSite) mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestAffinityCookiesAllocs: reading the cookies costs no allocation.
func TestAffinityCookiesAllocs(t *testing.T) {
	fields := []string{"_ga=GA1.2.3; theme=dark; ARRAffinity=0123456789abcdef0123456789abcdef; ARRAffinitySameSite=0123456789abcdef0123456789abcdef"}
	if n := testing.AllocsPerRun(100, func() { affinityCookies(fields, "ARRAffinity") }); n != 0 {
		t.Errorf("%v allocations per call, want 0", n)
	}
}
