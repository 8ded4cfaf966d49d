package extpool

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/config"
)

// The wanted members are the static entries and each DNS entry's last
// answer, every address once: a static entry wins over a name that has
// it too, and a name not answered yet adds nothing.
func TestWantedMembers(t *testing.T) {
	app := config.NewApp("web")
	app.Upstreams = []string{"10.0.0.1:80", "dns://a.test:80", "dns://b.test:80"}
	tests := []struct {
		name string
		last map[string][]string
		want []Member
	}{
		{"no answers yet", nil, []Member{{Addr: "10.0.0.1:80"}}},
		{"answers", map[string][]string{"dns://a.test:80": {"10.0.0.2:80"}, "dns://b.test:80": {"10.0.0.3:80"}},
			[]Member{{Addr: "10.0.0.1:80"}, {"10.0.0.2:80", "dns://a.test:80"}, {"10.0.0.3:80", "dns://b.test:80"}}},
		{"static wins, then the first name", map[string][]string{"dns://a.test:80": {"10.0.0.1:80", "10.0.0.2:80"},
			"dns://b.test:80": {"10.0.0.2:80"}},
			[]Member{{Addr: "10.0.0.1:80"}, {"10.0.0.2:80", "dns://a.test:80"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, Wanted(app, tt.last)); diff != "" {
				t.Errorf("Wanted (-want +got):\n%s", diff)
			}
		})
	}
}
