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
			yaml: "limits: {request_body: 10MiB, response_head: 128KiB, body_timeout: 20s, tunnel_idle_timeout: 10m}\napps:\n  web: {command: x}\n",
			want: map[string]AppLimits{"web": {RequestBody: 10 << 20, ResponseHead: 128 << 10, BodyTimeout: Duration(20 * time.Second), TunnelIdleTimeout: Duration(10 * time.Minute), ResponseBuffer: def.ResponseBuffer, RequestBuffer: def.RequestBuffer}},
		},
		{
			name: "top-level block after apps",
			yaml: "apps:\n  web: {command: x}\nlimits: {body_timeout: 20s, tunnel_idle_timeout: 30s}\n",
			want: map[string]AppLimits{"web": {RequestBody: def.RequestBody, ResponseHead: def.ResponseHead, BodyTimeout: Duration(20 * time.Second), TunnelIdleTimeout: Duration(30 * time.Second), ResponseBuffer: def.ResponseBuffer, RequestBuffer: def.RequestBuffer}},
		},
		{
			name: "an app overrides some keys and inherits the rest",
			yaml: "limits: {request_body: 10MiB, body_timeout: 20s}\napps:\n  web:\n    command: x\n    limits: {request_body: 1GiB}\n",
			want: map[string]AppLimits{"web": {RequestBody: 1 << 30, ResponseHead: def.ResponseHead, BodyTimeout: Duration(20 * time.Second), TunnelIdleTimeout: def.TunnelIdleTimeout, ResponseBuffer: def.ResponseBuffer, RequestBuffer: def.RequestBuffer}},
		},
		{
			name: "an explicit 0 overrides: unlimited body for one app",
			yaml: "limits: {request_body: 10MiB}\napps:\n  web:\n    command: x\n    limits: {request_body: 0}\n",
			want: map[string]AppLimits{"web": {RequestBody: 0, ResponseHead: def.ResponseHead, BodyTimeout: def.BodyTimeout, TunnelIdleTimeout: def.TunnelIdleTimeout, ResponseBuffer: def.ResponseBuffer, RequestBuffer: def.RequestBuffer}},
		},
		{
			name: "an app's empty limits block inherits everything",
			yaml: "limits: {request_body: 10MiB, tunnel_idle_timeout: 2m}\napps:\n  web:\n    command: x\n    limits:\n",
			want: map[string]AppLimits{"web": {RequestBody: 10 << 20, ResponseHead: def.ResponseHead, BodyTimeout: def.BodyTimeout, TunnelIdleTimeout: Duration(2 * time.Minute), ResponseBuffer: def.ResponseBuffer, RequestBuffer: def.RequestBuffer}},
		},
		{
			// A key with no value keeps its default, as everywhere in the
			// file: for an app's limit, the top-level one.
			name: "an app's key with no value inherits",
			yaml: "limits: {request_body: 10MiB, body_timeout: 20s}\napps:\n  web:\n    command: x\n    limits: {request_body: , body_timeout: null}\n",
			want: map[string]AppLimits{"web": {RequestBody: 10 << 20, ResponseHead: def.ResponseHead, BodyTimeout: Duration(20 * time.Second), TunnelIdleTimeout: def.TunnelIdleTimeout, ResponseBuffer: def.ResponseBuffer, RequestBuffer: def.RequestBuffer}},
		},
		{
			name: "each app on its own",
			yaml: "limits: {response_head: 32KiB}\napps:\n" +
				"  web:\n    command: x\n    routes: [/]\n    limits: {response_head: 1MiB, body_timeout: 2m}\n" +
				"  api:\n    command: y\n    routes: [/api/]\n",
			want: map[string]AppLimits{
				"web": {RequestBody: 0, ResponseHead: 1 << 20, BodyTimeout: Duration(2 * time.Minute), TunnelIdleTimeout: def.TunnelIdleTimeout, ResponseBuffer: def.ResponseBuffer, RequestBuffer: def.RequestBuffer},
				"api": {RequestBody: 0, ResponseHead: 32 << 10, BodyTimeout: def.BodyTimeout, TunnelIdleTimeout: def.TunnelIdleTimeout, ResponseBuffer: def.ResponseBuffer, RequestBuffer: def.RequestBuffer},
			},
		},
		{
			name: "keys from a merge key count as written",
			yaml: "limits: {body_timeout: 20s, tunnel_idle_timeout: 20s}\napps:\n" +
				"  web: &base\n    command: x\n    routes: [/]\n    limits: {body_timeout: 5m, tunnel_idle_timeout: 1h}\n" +
				"  api:\n    <<: *base\n    routes: [/api/]\n",
			want: map[string]AppLimits{
				"web": {RequestBody: 0, ResponseHead: def.ResponseHead, BodyTimeout: Duration(5 * time.Minute), TunnelIdleTimeout: Duration(time.Hour), ResponseBuffer: def.ResponseBuffer, RequestBuffer: def.RequestBuffer},
				"api": {RequestBody: 0, ResponseHead: def.ResponseHead, BodyTimeout: Duration(5 * time.Minute), TunnelIdleTimeout: Duration(time.Hour), ResponseBuffer: def.ResponseBuffer, RequestBuffer: def.RequestBuffer},
			},
		},
		{
			// The merged block's key with no value is written again
			// beside the merge key, with one: the value written wins.
			name: "a value beside a merge key whose key has none",
			yaml: "limits: {request_body: 10MiB, body_timeout: 20s}\napps:\n" +
				"  web:\n    command: x\n    routes: [/]\n    limits: &lim {request_body: , body_timeout: 5m}\n" +
				"  api:\n    command: y\n    routes: [/api/]\n    limits:\n      <<: *lim\n      request_body: 1MiB\n",
			want: map[string]AppLimits{
				"web": {RequestBody: 10 << 20, ResponseHead: def.ResponseHead, BodyTimeout: Duration(5 * time.Minute), TunnelIdleTimeout: def.TunnelIdleTimeout, ResponseBuffer: def.ResponseBuffer, RequestBuffer: def.RequestBuffer},
				"api": {RequestBody: 1 << 20, ResponseHead: def.ResponseHead, BodyTimeout: Duration(5 * time.Minute), TunnelIdleTimeout: def.TunnelIdleTimeout, ResponseBuffer: def.ResponseBuffer, RequestBuffer: def.RequestBuffer},
			},
		},
		{
			name: "tunnel_idle_timeout: an app overrides it, another inherits the top-level one",
			yaml: "limits: {tunnel_idle_timeout: 90s}\napps:\n" +
				"  web:\n    command: x\n    routes: [/]\n" +
				"  chat:\n    command: y\n    routes: [/ws/]\n    limits: {tunnel_idle_timeout: 1h}\n",
			want: map[string]AppLimits{
				"web":  {RequestBody: 0, ResponseHead: def.ResponseHead, BodyTimeout: def.BodyTimeout, TunnelIdleTimeout: Duration(90 * time.Second), ResponseBuffer: def.ResponseBuffer, RequestBuffer: def.RequestBuffer},
				"chat": {RequestBody: 0, ResponseHead: def.ResponseHead, BodyTimeout: def.BodyTimeout, TunnelIdleTimeout: Duration(time.Hour), ResponseBuffer: def.ResponseBuffer, RequestBuffer: def.RequestBuffer},
			},
		},
		{
			name: "buffers: an app overrides one and inherits the other",
			yaml: "limits: {response_buffer: 1MiB, request_buffer: 0}\napps:\n" +
				"  web:\n    command: x\n    routes: [/]\n    limits: {response_buffer: 0}\n" +
				"  api:\n    command: y\n    routes: [/api/]\n    limits: {request_buffer: 2MiB}\n",
			want: map[string]AppLimits{
				"web": {ResponseHead: def.ResponseHead, BodyTimeout: def.BodyTimeout, TunnelIdleTimeout: def.TunnelIdleTimeout, ResponseBuffer: 0, RequestBuffer: 0},
				"api": {ResponseHead: def.ResponseHead, BodyTimeout: def.BodyTimeout, TunnelIdleTimeout: def.TunnelIdleTimeout, ResponseBuffer: 1 << 20, RequestBuffer: 2 << 20},
			},
		},
		{
			name: "tunnel_idle_timeout: an app overrides the default",
			yaml: "apps:\n  web:\n    command: x\n    limits: {tunnel_idle_timeout: 10s}\n",
			want: map[string]AppLimits{"web": {RequestBody: 0, ResponseHead: def.ResponseHead, BodyTimeout: def.BodyTimeout, TunnelIdleTimeout: Duration(10 * time.Second), ResponseBuffer: def.ResponseBuffer, RequestBuffer: def.RequestBuffer}},
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

// TestTunnelIdleTimeoutDefault: 60s, nginx's proxy_read_timeout, at the
// top level and for an app that writes no limits.
func TestTunnelIdleTimeoutDefault(t *testing.T) {
	want := Duration(60 * time.Second)
	if got := DefaultLimits().TunnelIdleTimeout; got != want {
		t.Errorf("DefaultLimits().TunnelIdleTimeout = %s, want %s", got, want)
	}
	if got := NewApp("web").Limits.TunnelIdleTimeout; got != want {
		t.Errorf("NewApp().Limits.TunnelIdleTimeout = %s, want %s", got, want)
	}
	c, err := Parse("g.yaml", []byte(web))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Limits.TunnelIdleTimeout; got != want {
		t.Errorf("parsed limits.tunnel_idle_timeout = %s, want %s", got, want)
	}
	if got := c.Apps["web"].Limits.TunnelIdleTimeout; got != want {
		t.Errorf("parsed apps.web.limits.tunnel_idle_timeout = %s, want %s", got, want)
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

// MaxConnectionsPerIP is the key's value, or a quarter of
// max_connections, at least 1.
func TestMaxConnectionsPerIP(t *testing.T) {
	for _, tc := range []struct{ max, perIP, want int }{
		{300, 0, 75}, {300, 10, 10}, {8, 0, 2}, {3, 0, 1}, {8, 8, 8},
	} {
		c := Default()
		c.Limits.MaxConnections, c.Limits.MaxConnectionsPerIP = tc.max, tc.perIP
		if got := c.MaxConnectionsPerIP(); got != tc.want {
			t.Errorf("max_connections %d, max_connections_per_ip %d: MaxConnectionsPerIP() = %d, want %d", tc.max, tc.perIP, got, tc.want)
		}
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
