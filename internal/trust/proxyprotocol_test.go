package trust

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/peek"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// ppListen listens on loopback behind ProxyProtocolListener, trusting
// ranges.
func ppListen(t *testing.T, ranges ...string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pl := ProxyProtocolListener(ln, proxies(t, ranges...), 5*time.Second)
	t.Cleanup(func() { pl.Close() })
	return pl
}

// accept dials ln, sends what, and returns both ends.
func accept(t *testing.T, ln net.Listener, what string) (client, server net.Conn) {
	t.Helper()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	if _, err := io.WriteString(client, what); err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	server.SetDeadline(time.Now().Add(5 * time.Second))
	return client, server
}

// A connection behind the listener is one the front can use as a TCP
// connection: the header's address, the bytes after the header, a socket
// to peek at (not Unknown), CloseWrite, and deadlines that allocate
// nothing once the header is read.
func TestProxyProtocolConn(t *testing.T) {
	ln := ppListen(t, "127.0.0.1/32")
	client, server := accept(t, ln, "PROXY TCP4 203.0.113.7 127.0.0.1 5555 8080\r\nhello")
	if got := server.RemoteAddr().String(); got != "203.0.113.7:5555" {
		t.Errorf("RemoteAddr = %s, want the header's 203.0.113.7:5555", got)
	}
	b := make([]byte, 5)
	if _, err := io.ReadFull(server, b); err != nil || string(b) != "hello" {
		t.Fatalf("read %q, %v; want hello", b, err)
	}
	p := peek.New(server)
	if got := p.Look(); got != peek.Quiet {
		t.Errorf("Look after the bytes were read = %v, want Quiet", got)
	}
	if n := testing.AllocsPerRun(100, func() { server.SetReadDeadline(time.Now().Add(time.Minute)) }); n != 0 {
		t.Errorf("SetReadDeadline allocates %v times", n)
	}
	server.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := server.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Errorf("CloseWrite: %v", err)
	}
	if n, err := client.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("client read after CloseWrite: %d, %v; want EOF", n, err)
	}
	client.Close()
	testutil.WaitFor(t, 5*time.Second, "the look to see the close", func() bool { return p.Look() == peek.Closed })
}

// The first read fails, and nothing of the stream is served, for a
// trusted peer without a header, an untrusted peer with one, and a header
// that names no TCP source; an untrusted peer without a header is read
// as it is.
func TestProxyProtocolPolicy(t *testing.T) {
	tests := []struct {
		name    string
		trusted string
		send    string
		want    string // what the server reads; "" for a failed read
		remote  string
	}{
		{"trusted with header", "127.0.0.1/32", "PROXY TCP4 203.0.113.7 127.0.0.1 5555 8080\r\nGET", "GET", "203.0.113.7:5555"},
		{"trusted without header", "127.0.0.1/32", "GET / HTTP/1.1\r\n", "", ""},
		{"untrusted with header", "10.0.0.0/8", "PROXY TCP4 203.0.113.7 127.0.0.1 5555 8080\r\nGET", "", ""},
		{"untrusted without header", "10.0.0.0/8", "GET", "GET", "127.0.0.1"},
		// (go-proxyproto waits for 12 bytes, a v2 signature's length, before
		// it lets a stream that starts with P or CR go: a request line is
		// longer.)
		{"untrusted, a method that starts like PROXY", "10.0.0.0/8", "PUT / HTTP/1.1\r\n", "PUT / HTTP/1.1\r\n", "127.0.0.1"},
		{"unknown keeps the peer", "127.0.0.1/32", "PROXY UNKNOWN\r\nGET", "GET", "127.0.0.1"},
		{"udp source refused", "127.0.0.1/32", string(v2Header(t, 0x12, []byte{203, 0, 113, 7, 127, 0, 0, 1, 0x15, 0xb3, 0x1f, 0x90})) + "GET", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln := ppListen(t, tt.trusted)
			client, server := accept(t, ln, tt.send)
			b := make([]byte, len(tt.want)+1)
			n, err := server.Read(b)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("read %q, want the read to fail", b[:n])
				}
				return
			}
			if err != nil || string(b[:n]) != tt.want {
				t.Fatalf("read %q, %v; want %q", b[:n], err, tt.want)
			}
			host, _, _ := net.SplitHostPort(server.RemoteAddr().String())
			if got := server.RemoteAddr().String(); got != tt.remote && host != tt.remote {
				t.Errorf("RemoteAddr = %s, want %s", got, tt.remote)
			}
			client.Close()
		})
	}
}

// v2Header is a PROXY v2 header with the PROXY command, family and
// protocol fam, and the address block addrs.
func v2Header(t *testing.T, fam byte, addrs []byte) []byte {
	t.Helper()
	h := []byte("\r\n\r\n\x00\r\nQUIT\n")
	h = append(h, 0x21, fam, byte(len(addrs)>>8), byte(len(addrs)))
	return append(h, addrs...)
}

// ProxyProtocol leaves the listener alone when proxy_protocol is off.
func TestProxyProtocolOff(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := config.Default()
	cfg.TrustedProxies = []string{"127.0.0.1"}
	if got := ProxyProtocol(ln, cfg); got != ln {
		t.Errorf("proxy_protocol off: listener wrapped as %T", got)
	}
	cfg.ProxyProtocol = true
	if got := ProxyProtocol(ln, cfg); got == ln {
		t.Error("proxy_protocol on: listener not wrapped")
	}
}
