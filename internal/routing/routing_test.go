package routing_test

import (
	"testing"

	"github.com/gatehouse/gatehouse/internal/routing"
)

func TestMatch(t *testing.T) {
	table := func(specs ...[2]string) *routing.Table[string] {
		var rs []routing.Route[string]
		for _, s := range specs {
			rs = append(rs, routing.Route[string]{Host: s[0], Prefix: s[1], Value: s[0] + s[1]})
		}
		return routing.New(rs)
	}
	type req struct{ host, path, want string } // want "" for no route
	tests := []struct {
		name   string
		routes *routing.Table[string]
		reqs   []req
	}{
		{"one route for everything", table([2]string{"", "/"}), []req{
			{"any.test", "/", "/"},
			{"", "/x/y", "/"},
		}},
		{"longest prefix wins", table([2]string{"", "/"}, [2]string{"", "/api/"}, [2]string{"", "/api/v2/"}), []req{
			{"h", "/api/v2/x", "/api/v2/"},
			{"h", "/api/v1/x", "/api/"},
			{"h", "/apix", "/"},
		}},
		{"a route with a host before a longer one without", table([2]string{"", "/api/"}, [2]string{"example.com", "/"}), []req{
			{"example.com", "/api/x", "example.com/"},
			{"EXAMPLE.com.", "/api/x", "example.com/"},
			{"example.com:8443", "/api/x", "example.com/"},
			{"other.test", "/api/x", "/api/"},
		}},
		{"IPv6 host", table([2]string{"::1", "/"}, [2]string{"", "/"}), []req{
			{"[::1]:8080", "/x", "::1/"},
			{"[::1]", "/x", "::1/"},
			{"[::2]", "/x", "/"},
		}},
		{"no route", table([2]string{"", "/api/"}, [2]string{"example.com", "/"}), []req{
			{"other.test", "/", ""},
			{"other.test", "/ap", ""},
		}},
		{"slashes merged in the path and the prefix", table([2]string{"", "/"}, [2]string{"", "/admin//"}), []req{
			{"h", "//admin/users", "/admin//"},
			{"h", "/admin///x", "/admin//"},
		}},
		{"a path that is a prefix but its last slash", table([2]string{"", "/"}, [2]string{"", "/admin/"}), []req{
			{"h", "/admin", "/admin/"},
			{"h", "//admin", "/admin/"},
			{"h", "/admi", "/"},
		}},
		{"the path itself as a prefix takes it from the slashed route", table([2]string{"", "/"}, [2]string{"", "/admin/"}, [2]string{"", "/admin"}), []req{
			{"h", "/admin", "/admin"},
			{"h", "/admin/x", "/admin/"},
		}},
		{"a slashed route of the host over the path's route of none", table([2]string{"", "/admin"}, [2]string{"example.com", "/admin/"}, [2]string{"", "/"}), []req{
			{"example.com", "/admin", "example.com/admin/"},
			{"other.test", "/admin", "/admin"},
		}},
		{"path parameters left out", table([2]string{"", "/"}, [2]string{"", "/admin/"}), []req{
			{"h", "/admin;x/secret", "/admin/"},
			{"h", "/admin;jsessionid=1/", "/admin/"},
			{"h", "/admin;", "/admin/"},
			{"h", "/;x/admin/secret", "/admin/"},
			{"h", "/;/admin/secret", "/admin/"},
			{"h", "/adm;in/x", "/"},
			{"h", "/x;/admin/", "/"},
		}},
		{"the slashed route, with no route for the path", table([2]string{"example.com", "/admin/"}), []req{
			{"example.com", "/admin", "example.com/admin/"},
			{"other.test", "/admin", ""},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, r := range tt.reqs {
				got := ""
				if rt := tt.routes.Match(r.host, r.path); rt != nil {
					got = rt.Value
				}
				if got != r.want {
					t.Errorf("Match(%q, %q) = %q; want %q", r.host, r.path, got, r.want)
				}
			}
		})
	}
}
