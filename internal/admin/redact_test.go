package admin_test

import (
	"testing"

	"github.com/gatehouse/gatehouse/internal/admin"
)

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ key, value, want string }{
		{"DB_PASSWORD", "hunter2", "REDACTED"},
		{"API_KEY", "ak-123", "REDACTED"},
		{"GITHUB_TOKEN", "ghp_abc", "REDACTED"},
		{"SECRET_X", "x", "REDACTED"},
		{"DATABASE_URL", "postgres://u:p@h/db", "postgres://u:REDACTED@h/db"},
		{"REDIS_URL", "redis://:hunter2@cache:6379/0", "redis://:REDACTED@cache:6379/0"},
		{"NODE_ENV", "production", "production"},
		{"PATH", "/usr/local/bin:/usr/bin:/bin", "/usr/local/bin:/usr/bin:/bin"},
	} {
		t.Run(tc.key, func(t *testing.T) {
			if got := admin.Redact(tc.key, tc.value); got != tc.want {
				t.Errorf("Redact(%q, %q) = %q; want %q", tc.key, tc.value, got, tc.want)
			}
		})
	}
}
