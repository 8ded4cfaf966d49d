package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/fds"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// passSocket binds addr as systemd binds a socket unit's ListenStream=
// and returns the descriptor as systemd passes it, named name, and the
// address bound. The test's own listener is closed: the descriptor
// keeps the socket.
func passSocket(t *testing.T, addr, name string) (*os.File, string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := fds.Dup(ln.(syscall.Conn), name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, ln.Addr().String()
}

// The passed sockets are the listeners by their FileDescriptorName=, else
// by the configured address they are bound to; a socket that is neither
// is refused, named, with every passed socket closed.
func TestActivatedSocketsMatchTheListeners(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// sockets are the passed sockets' names; "=listen" and "=admin"
		// are unnamed ones bound to that configured address.
		sockets []string
		tls     bool
		want    map[string]int // listener key → index of the socket
		refused string         // the name of the socket refused
	}{
		{name: "by name", sockets: []string{"admin", "public"}, want: map[string]int{"admin listen": 0, "listen": 1}},
		{name: "by name with tls", sockets: []string{"public", "https", "admin"}, tls: true,
			want: map[string]int{"listen": 0, "tls listen": 1, "admin listen": 2}},
		{name: "public only", sockets: []string{"public"}, want: map[string]int{"listen": 0}},
		{name: "by address", sockets: []string{"=admin", "=listen"}, want: map[string]int{"admin listen": 0, "listen": 1}},
		{name: "one by name, one by address", sockets: []string{"public", "=admin"}, want: map[string]int{"listen": 0, "admin listen": 1}},
		{name: "unmatched address", sockets: []string{"public", "other"}, refused: "other"},
		{name: "https without a tls block", sockets: []string{"public", "https"}, refused: "https"},
		{name: "two named public", sockets: []string{"public", "public"}, refused: "public"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := config.Default()
			cfg.Listen = fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
			cfg.Admin = fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
			if tc.tls {
				cfg.TLS = &config.TLS{Listen: "127.0.0.1:0"}
			}
			var files []*os.File
			var addrs []string
			for _, s := range tc.sockets {
				addr, name := "127.0.0.1:0", s
				switch s {
				case "=listen":
					addr, name = cfg.Listen, "gatehouse.socket"
				case "=admin":
					addr, name = cfg.Admin, "gatehouse.socket"
				}
				f, a := passSocket(t, addr, name)
				files, addrs = append(files, f), append(addrs, a)
			}
			act, err := matchActivated(files, cfg, slog.New(slog.DiscardHandler))
			if tc.refused != "" {
				var u *UnmatchedSocketError
				if !errors.As(err, &u) || u.Name != tc.refused {
					t.Fatalf("matchActivated: %v; want an UnmatchedSocketError naming %q", err, tc.refused)
				}
				// None left listening: a connection is refused.
				for _, a := range addrs {
					if c, err := net.Dial("tcp", a); err == nil {
						c.Close()
						t.Errorf("a passed socket on %s still listens after the error", a)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer act.close()
			got := map[string]int{}
			for key, ln := range act {
				got[key] = slices.Index(addrs, ln.Addr().String())
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("listeners by passed socket (-want +got):\n%s", diff)
			}
		})
	}
}

// A server given passed sockets serves on them and binds the others.
func TestNewServesOnThePassedSockets(t *testing.T) {
	t.Parallel()
	cfg := bareConfig(t)
	f, addr := passSocket(t, "127.0.0.1:0", "public")
	s, err := New(cfg, Options{Activated: []*os.File{f}})
	if err != nil {
		t.Fatal(err)
	}
	defer discard(s)
	if s.Addr() != addr {
		t.Errorf("public listener on %s, want the passed socket's %s", s.Addr(), addr)
	}
	if s.AdminAddr() == "" || s.AdminAddr() == addr {
		t.Errorf("admin listener on %q, want one bound anew", s.AdminAddr())
	}
}

// A passed socket that is no listener fails New with its name.
func TestNewRefusesAnUnmatchedPassedSocket(t *testing.T) {
	t.Parallel()
	cfg := bareConfig(t)
	f, _ := passSocket(t, "127.0.0.1:0", "metrics")
	s, err := New(cfg, Options{Activated: []*os.File{f}})
	if err == nil {
		discard(s)
		t.Fatal("New with an unmatched passed socket succeeded")
	}
	var u *UnmatchedSocketError
	if !errors.As(err, &u) || u.Name != "metrics" {
		t.Errorf("New: %v; want an UnmatchedSocketError naming \"metrics\"", err)
	}
}

// boundTo compares a socket's address with a configured one as binding
// that address would: the wildcard for an empty or unspecified host.
func TestBoundTo(t *testing.T) {
	t.Parallel()
	v4 := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}
	any6 := &net.TCPAddr{IP: net.IPv6unspecified, Port: 80}
	for _, tc := range []struct {
		got  net.Addr
		addr string
		want bool
	}{
		{v4, "127.0.0.1:8080", true},
		{v4, "localhost:8080", true},
		{v4, "127.0.0.1:8081", false},
		{v4, ":8080", false},
		{v4, "127.0.0.2:8080", false},
		{v4, "127.0.0.1:0", false},
		{any6, ":80", true},
		{any6, "0.0.0.0:80", true},
		{any6, "[::]:80", true},
		{any6, ":http", true},
		{any6, "127.0.0.1:80", false},
	} {
		t.Run(tc.got.String()+" "+tc.addr, func(t *testing.T) {
			if got := boundTo(tc.got, tc.addr); got != tc.want {
				t.Errorf("boundTo(%s, %q) = %v, want %v", tc.got, tc.addr, got, tc.want)
			}
		})
	}
}

// A passed socket gatehouse cannot accept on (a connection, as a socket
// unit with Accept=yes passes; a datagram socket; a unix socket) is
// refused at start, rather than served on and failing at the first
// accept, and nothing is left open.
func TestActivatedSocketsRefuseWhatCannotBeAcceptedOn(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// socket opens the socket; the test closes it.
		socket func(t *testing.T) syscall.Conn
	}{
		{"a connected TCP socket", func(t *testing.T) syscall.Conn {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			return c.(*net.TCPConn)
		}},
		{"a UDP socket", func(t *testing.T) syscall.Conn {
			c, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			return c.(*net.UDPConn)
		}},
		{"a unix socket", func(t *testing.T) syscall.Conn {
			ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "s"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
			return ln.(*net.UnixListener)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := config.Default()
			cfg.Listen = fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
			// matchActivated closes the descriptor it is passed: a copy.
			f, err := fds.Dup(tc.socket(t), "public")
			if err != nil {
				t.Fatal(err)
			}
			act, err := matchActivated([]*os.File{f}, cfg, slog.New(slog.DiscardHandler))
			if err == nil {
				act.close()
				t.Fatalf("matchActivated took %s as the public listener", tc.name)
			}
		})
	}
}
