package config

import (
	"errors"
	"math"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestLoadAppLimitsInherit: after Load every app holds its effective
// limits, a key the app leaves out taking the top-level value, written or
// default, wherever in the file the top-level block is.
func TestLoadAppLimitsInherit(t *testing.T) {
	def := DefaultLimits().App()
	tests := []struct {
		name string
		yaml string
		want map[string]AppLimits
	}{
		{
			name: "no limits anywhere: defaults",
			yaml: "apps:\n  web: {command: x}\n",
			want: map[string]AppLimits{"web": def},
		},
		{
			name: "top-level values written in the file are inherited",
			yaml: "limits: {request_body: 10MiB, response_head: 128KiB, body_timeout: 20s}\napps:\n  web: {command: x}\n",
			want: map[string]AppLimits{"web": {RequestBody: 10 << 20, ResponseHead: 128 << 10, BodyTimeout: Duration(20 * time.Second)}},
		},
		{
			name: "top-level block after apps",
			yaml: "apps:\n  web: {command: x}\nlimits: {body_timeout: 20s}\n",
			want: map[string]AppLimits{"web": {RequestBody: def.RequestBody, ResponseHead: def.ResponseHead, BodyTimeout: Duration(20 * time.Second)}},
		},
		{
			name: "an app overrides some keys and inherits the rest",
			yaml: "limits: {request_body: 10MiB, body_timeout: 20s}\napps:\n  web:\n    command: x\n    limits: {request_body: 1GiB}\n",
			want: map[string]AppLimits{"web": {RequestBody: 1 << 30, ResponseHead: def.ResponseHead, BodyTimeout: Duration(20 * time.Second)}},
		},
		{
			name: "an explicit 0 overrides: unlimited body for one app",
			yaml: "limits: {request_body: 10MiB}\napps:\n  web:\n    command: x\n    limits: {request_body: 0}\n",
			want: map[string]AppLimits{"web": {RequestBody: 0, ResponseHead: def.ResponseHead, BodyTimeout: def.BodyTimeout}},
		},
		{
			name: "an app's empty limits block inherits everything",
			yaml: "limits: {request_body: 10MiB}\napps:\n  web:\n    command: x\n    limits:\n",
			want: map[string]AppLimits{"web": {RequestBody: 10 << 20, ResponseHead: def.ResponseHead, BodyTimeout: def.BodyTimeout}},
		},
		{
			name: "each app on its own",
			yaml: "limits: {response_head: 32KiB}\napps:\n" +
				"  web:\n    command: x\n    routes: [/]\n    limits: {response_head: 1MiB, body_timeout: 2m}\n" +
				"  api:\n    command: y\n    routes: [/api/]\n",
			want: map[string]AppLimits{
				"web": {RequestBody: 0, ResponseHead: 1 << 20, BodyTimeout: Duration(2 * time.Minute)},
				"api": {RequestBody: 0, ResponseHead: 32 << 10, BodyTimeout: def.BodyTimeout},
			},
		},
		{
			name: "keys from a merge key count as written",
			yaml: "limits: {body_timeout: 20s}\napps:\n" +
				"  web: &base\n    command: x\n    routes: [/]\n    limits: {body_timeout: 5m}\n" +
				"  api:\n    <<: *base\n    routes: [/api/]\n",
			want: map[string]AppLimits{
				"web": {RequestBody: 0, ResponseHead: def.ResponseHead, BodyTimeout: Duration(5 * time.Minute)},
				"api": {RequestBody: 0, ResponseHead: def.ResponseHead, BodyTimeout: Duration(5 * time.Minute)},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(writeFile(t, t.TempDir(), "g.yaml", tt.yaml))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			got := map[string]AppLimits{}
			for name, app := range c.Apps {
				got[name] = app.Limits
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("effective app limits mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMaxConnections(t *testing.T) {
	c := Default()
	c.Limits.MaxConnections = 300
	if got := c.MaxConnections(); got != 300 {
		t.Errorf("configured MaxConnections() = %d, want 300", got)
	}

	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatalf("Getrlimit: %v", err)
	}
	c.Limits.MaxConnections = 0
	if got, want := c.MaxConnections(), autoMaxConnections(rl.Cur, nil); got != want {
		t.Errorf("automatic MaxConnections() = %d, want %d (RLIMIT_NOFILE %d)", got, want, rl.Cur)
	}
}

func TestAutoMaxConnections(t *testing.T) {
	tests := []struct {
		name   string
		nofile uint64
		err    error
		want   int
	}{
		{"half the limit", 1 << 20, nil, 1 << 19},
		{"usual soft limit", 1024, nil, 512},
		{"odd limit rounds down", 1025, nil, 512},
		{"floor", 100, nil, 64},
		{"zero limit", 0, nil, 64},
		{"unlimited is capped", math.MaxUint64, nil, math.MaxInt32},
		{"unreadable limit", 0, errors.New("getrlimit: operation not permitted"), 512},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := autoMaxConnections(tt.nofile, tt.err); got != tt.want {
				t.Errorf("autoMaxConnections(%d, %v) = %d, want %d", tt.nofile, tt.err, got, tt.want)
			}
		})
	}
}
