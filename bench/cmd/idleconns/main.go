// Command idleconns holds many idle keep-alive connections open to one
// proxy, so that the proxy's memory per idle connection can be measured
// (see bench/idle.sh).
//
// It opens -n connections to -addr, -c at a time; on each it sends one
// `GET / HTTP/1.1` request and reads the whole response (Content-Length
// framed), then leaves the connection idle. With -proto h2c it speaks
// HTTP/2 with prior knowledge instead: the preface and SETTINGS, one GET
// on a stream and a PING, and it reads the answer, the PING's
// acknowledgement and whatever the proxy sent before them (its SETTINGS,
// acknowledged, and window updates). -proto https and h2 do the same
// over TLS (the certificate is not verified), with ALPN http/1.1 and h2. When all are open it prints
//
//	ready conns=8000 failed=0 elapsed=1.52s
//
// and waits for SIGINT, SIGTERM or SIGUSR1 (or, with -stdin, for its
// standard input to close), or for -max to pass. Then it looks at every
// connection without blocking (a peek: still open and quiet, closed by the
// proxy, or sent something unasked), sends one more request on -check of
// them spread evenly over the set, and prints
//
//	alive conns=8000 open=8000 closed=0 unexpected=0
//	check requests=100 ok=100 failed=0
//
// It exits 0 only when every connection opened, stayed open and every check
// succeeded. With -sources K>1 the connections are spread over the source
// addresses 127.0.0.1 to 127.0.0.K, each with its own ephemeral ports.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const request = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "proxy address (host:port)")
	n := flag.Int("n", 8000, "connections to open and hold")
	conc := flag.Int("c", 64, "connections being opened at once")
	sources := flag.Int("sources", 1, "spread the connections over source addresses 127.0.0.1 to 127.0.0.K")
	check := flag.Int("check", 100, "connections that send one more request at the end (0: none)")
	timeout := flag.Duration("timeout", 30*time.Second, "bound on each connect and each request")
	maxWait := flag.Duration("max", 5*time.Minute, "hold at most this long, then check and exit anyway")
	stdin := flag.Bool("stdin", false, "also stop holding when standard input closes")
	proto := flag.String("proto", "http", "http (HTTP/1.1), h2c (HTTP/2 with prior knowledge), https (HTTP/1.1 over TLS) or h2 (HTTP/2 over TLS)")
	flag.Parse()
	if *n < 1 || *conc < 1 || *sources < 1 || *sources > 254 || *check < 0 || !validProto(*proto) {
		fmt.Fprintln(os.Stderr, "idleconns: -n and -c must be ≥ 1, -sources 1 to 254, -check ≥ 0, -proto http, h2c, https or h2")
		os.Exit(2)
	}

	start := time.Now()
	conns, failed, firstErr := openAll(*addr, *n, *conc, *sources, *proto, *timeout)
	fmt.Printf("ready conns=%d failed=%d elapsed=%.2fs\n", len(conns), failed, time.Since(start).Seconds())
	if firstErr != nil {
		fmt.Printf("first error: %v\n", firstErr)
	}

	waitForRelease(*maxWait, *stdin)

	open, closed, unexpected := peekAll(conns)
	fmt.Printf("alive conns=%d open=%d closed=%d unexpected=%d\n", len(conns), open, closed, unexpected)
	ok, bad, checkErr := checkSome(conns, *check, *timeout)
	fmt.Printf("check requests=%d ok=%d failed=%d\n", ok+bad, ok, bad)
	if checkErr != nil {
		fmt.Printf("first check error: %v\n", checkErr)
	}
	for _, c := range conns {
		c.Close()
	}
	if failed > 0 || closed > 0 || unexpected > 0 || bad > 0 {
		os.Exit(1)
	}
}

// openAll opens n connections, conc at a time, each with one request answered;
// it returns those that succeeded, how many failed and the first error.
func openAll(addr string, n, conc, sources int, proto string, timeout time.Duration) ([]net.Conn, int, error) {
	conns := make([]net.Conn, n)
	var next atomic.Int64
	var failed atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range min(conc, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				c, err := openOne(addr, i%sources, proto, timeout)
				if err != nil {
					failed.Add(1)
					once.Do(func() { firstErr = fmt.Errorf("connection %d: %w", i, err) })
					continue
				}
				conns[i] = c
			}
		})
	}
	wg.Wait()
	held := conns[:0]
	for _, c := range conns {
		if c != nil {
			held = append(held, c)
		}
	}
	return held, int(failed.Load()), firstErr
}

// validProto reports whether proto is one idleconns speaks.
func validProto(proto string) bool {
	switch proto {
	case "http", "h2c", "https", "h2":
		return true
	}
	return false
}

// speak makes c a connection of proto: a TLS handshake first for https
// (ALPN http/1.1) and h2 (ALPN h2, which the proxy must choose), and
// HTTP/2's framing for h2c and h2.
func speak(c net.Conn, proto string, timeout time.Duration) (net.Conn, error) {
	if proto == "https" || proto == "h2" {
		alpn := "http/1.1"
		if proto == "h2" {
			alpn = "h2"
		}
		tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{alpn}}) // a benchmark's self-signed certificate
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err == nil && tc.ConnectionState().NegotiatedProtocol != alpn {
			err = fmt.Errorf("the proxy chose ALPN %q, want %q", tc.ConnectionState().NegotiatedProtocol, alpn)
		}
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("TLS handshake: %w", err)
		}
		c = tc
	}
	if proto == "h2c" || proto == "h2" {
		c = &h2Conn{Conn: c}
	}
	return c, nil
}

// socketOf is the TCP connection under c's TLS and HTTP/2 layers.
func socketOf(c net.Conn) net.Conn {
	if hc, ok := c.(*h2Conn); ok {
		c = hc.Conn
	}
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	return c
}

// openOne connects from source address 127.0.0.(src+1) and makes one
// request. A second or later source is bound with IP_BIND_ADDRESS_NO_PORT,
// so that the kernel picks the port at connect time, per destination, as it
// does for an unbound socket.
func openOne(addr string, src int, proto string, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	if src > 0 {
		d.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(src+1))}
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
			})
			return errors.Join(err, serr)
		}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	if c, err = speak(c, proto, timeout); err != nil {
		return nil, err
	}
	if err := roundTrip(c, timeout); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// roundTrip sends the request on c and reads the whole answer, which must be
// a 200 framed by Content-Length that keeps the connection open. Nothing of
// it is left buffered, so c can go idle holding no reader.
func roundTrip(c net.Conn, timeout time.Duration) error {
	if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	if hc, ok := c.(*h2Conn); ok {
		if err := hc.roundTrip(); err != nil {
			return err
		}
		return c.SetDeadline(time.Time{})
	}
	if _, err := io.WriteString(c, request); err != nil {
		return fmt.Errorf("write request: %w", err)
	}
	br := bufio.NewReaderSize(c, 1024)
	status, err := br.ReadString('\n')
	if err != nil {
		return fmt.Errorf("read status line: %w", err)
	}
	if !strings.HasPrefix(status, "HTTP/1.1 200 ") {
		return fmt.Errorf("status line %q, want HTTP/1.1 200", strings.TrimSpace(status))
	}
	length := -1
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return fmt.Errorf("read header: %w", err)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			break
		}
		name, value, _ := strings.Cut(line, ":")
		value = strings.TrimSpace(value)
		switch strings.ToLower(name) {
		case "content-length":
			if length, err = strconv.Atoi(value); err != nil || length < 0 {
				return fmt.Errorf("content-length %q", value)
			}
		case "transfer-encoding":
			return fmt.Errorf("transfer-encoding %q, want a Content-Length answer", value)
		case "connection":
			if strings.EqualFold(value, "close") {
				return errors.New("the proxy answered Connection: close")
			}
		}
	}
	if length < 0 {
		return errors.New("answer without Content-Length")
	}
	if _, err := io.CopyN(io.Discard, br, int64(length)); err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	if br.Buffered() > 0 {
		return fmt.Errorf("%d bytes after the answer", br.Buffered())
	}
	return c.SetDeadline(time.Time{})
}

// waitForRelease blocks until a signal, -max, or (with stdin) the end of
// standard input.
func waitForRelease(maxWait time.Duration, stdin bool) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGUSR1)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, maxWait)
	defer cancel()
	if stdin {
		// This reader outlives the wait when a signal ends it; it ends
		// with the process, which exits right after the checks.
		go func() {
			io.Copy(io.Discard, os.Stdin)
			cancel()
		}()
	}
	<-ctx.Done()
}

// peekAll looks at every connection without blocking and without consuming
// anything (recv with MSG_PEEK|MSG_DONTWAIT): EAGAIN is a connection still
// open and quiet, 0 bytes one the proxy closed, and data or another error
// something unexpected.
func peekAll(conns []net.Conn) (open, closed, unexpected int) {
	buf := make([]byte, 1)
	for _, c := range conns {
		sc, ok := socketOf(c).(syscall.Conn)
		if !ok {
			unexpected++
			continue
		}
		rc, err := sc.SyscallConn()
		if err != nil {
			unexpected++
			continue
		}
		var n int
		var perr error
		if err := rc.Control(func(fd uintptr) {
			n, _, perr = unix.Recvfrom(int(fd), buf, unix.MSG_PEEK|unix.MSG_DONTWAIT)
		}); err != nil {
			unexpected++
			continue
		}
		switch {
		case errors.Is(perr, unix.EAGAIN):
			open++
		case perr == nil && n == 0:
			closed++
		case errors.Is(perr, unix.ECONNRESET):
			closed++
		default:
			unexpected++
		}
	}
	return open, closed, unexpected
}

// checkSome sends one more request on k connections spread evenly over
// conns, one at a time.
func checkSome(conns []net.Conn, k int, timeout time.Duration) (ok, bad int, firstErr error) {
	k = min(k, len(conns))
	for j := range k {
		i := j * len(conns) / k
		if err := roundTrip(conns[i], timeout); err != nil {
			bad++
			if firstErr == nil {
				firstErr = fmt.Errorf("connection %d: %w", i, err)
			}
			continue
		}
		ok++
	}
	return ok, bad, firstErr
}
