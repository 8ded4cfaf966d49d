package config

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestUpgradesParsed: after Parse an app's upgrades are the effective
// list: the default when the key is left out (or written with no value),
// what was written otherwise, and an explicit [] stays empty, not the
// default.
func TestUpgradesParsed(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"default", web, []string{"websocket"}},
		{"no value keeps the default", web + "    upgrades:\n", []string{"websocket"}},
		{"explicit list", web + "    upgrades: [WebSocket, connect-udp]\n", []string{"WebSocket", "connect-udp"}},
		{"empty list: none", web + "    upgrades: []\n", []string{}},
		{"from a merge key", "apps:\n  web: &base\n    command: x\n    routes: [/]\n    upgrades: []\n" +
			"  api:\n    <<: *base\n    routes: [/api/]\n", []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("g.yaml", []byte(tt.yaml))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			for name, a := range c.Apps {
				// cmp tells nil from empty: [] must not read as "not set".
				if diff := cmp.Diff(tt.want, a.Upgrades); diff != "" {
					t.Errorf("apps.%s.upgrades mismatch (-want +got):\n%s", name, diff)
				}
			}
		})
	}
}

// TestNewAppUpgrades: each app gets its own default list, so that
// changing one app's list in code changes no other's.
func TestNewAppUpgrades(t *testing.T) {
	a, b := NewApp("a"), NewApp("b")
	a.Upgrades[0] = "x"
	if diff := cmp.Diff([]string{"websocket"}, b.Upgrades); diff != "" {
		t.Errorf("NewApp upgrades mismatch (-want +got):\n%s", diff)
	}
}

func TestAllowsUpgrade(t *testing.T) {
	tests := []struct {
		name     string
		upgrades []string
		proto    string
		want     bool
	}{
		{"default websocket", []string{"websocket"}, "websocket", true},
		{"case-insensitive", []string{"websocket"}, "WebSocket", true},
		{"upper-case entry", []string{"WEBSOCKET"}, "websocket", true},
		{"a version is ignored", []string{"websocket"}, "websocket/13", true},
		{"a version in another case", []string{"websocket"}, "WEBSOCKET/13", true},
		{"an empty version", []string{"websocket"}, "websocket/", true},
		{"another protocol", []string{"websocket"}, "connect-udp", false},
		{"second entry", []string{"websocket", "connect-udp"}, "Connect-UDP", true},
		{"a prefix is not a match", []string{"websocket"}, "web", false},
		{"a longer name is not a match", []string{"websocket"}, "websockets", false},
		{"the version is not the name", []string{"13"}, "websocket/13", false},
		{"empty", []string{"websocket"}, "", false},
		{"only a version", []string{"websocket"}, "/13", false},
		{"empty list allows none", []string{}, "websocket", false},
		{"nil allows none", nil, "websocket", false},
		{"h2c never, even when listed", []string{"h2c"}, "h2c", false},
		{"H2C never", []string{"websocket", "h2c"}, "H2C", false},
		{"no Unicode folding", []string{"websocket"}, "webſocket", false},
		{"Kelvin sign is not k", []string{"k"}, "\u212a", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := NewApp("web")
			a.Upgrades = tt.upgrades
			if got := a.AllowsUpgrade(tt.proto); got != tt.want {
				t.Errorf("AllowsUpgrade(%q) with upgrades %q = %v, want %v", tt.proto, tt.upgrades, got, tt.want)
			}
		})
	}
}

// TestAllowsUpgradeAllocs: the gateway asks once per Upgrade request.
func TestAllowsUpgradeAllocs(t *testing.T) {
	a := NewApp("web")
	a.Upgrades = []string{"connect-udp", "websocket"}
	var ok bool
	if n := testing.AllocsPerRun(100, func() { ok = a.AllowsUpgrade("WebSocket/13") }); n != 0 || !ok {
		t.Errorf("AllowsUpgrade: %v allocations, allowed %v; want 0, true", n, ok)
	}
}

// TestValidateUpgradesInCode: a list set in code is checked as one read
// from a file, without lines.
func TestValidateUpgradesInCode(t *testing.T) {
	tests := []struct {
		name     string
		upgrades []string
		want     []string
	}{
		{"default", []string{"websocket"}, nil},
		{"nil", nil, nil},
		{"h2c", []string{"h2c"},
			[]string{`apps.web.upgrades[0]: "h2c" is never forwarded: a client could then speak HTTP/2 to the app past every route and limit (for HTTP/2 to gatehouse itself without TLS, set the top-level h2c: true)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := FromCommand([]string{"x"})
			c.Apps["web"].Upgrades = tt.upgrades
			if diff := cmp.Diff(tt.want, errLines(c.Validate())); diff != "" {
				t.Errorf("errors mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
