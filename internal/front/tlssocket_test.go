package front

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/peek"
)

// The socket under TLS follows the record framing across reads that cut
// headers and bodies anywhere: whether a record is begun (mid), and
// whether TLS can hold nothing beyond the record the last read ended
// (drained).
func TestTLSSocketFollowsRecords(t *testing.T) {
	// Two records: 3 body bytes, then 258 (a length over a byte).
	one := []byte{23, 3, 3, 0, 3, 'a', 'b', 'c'}
	two := append([]byte{23, 3, 3, 1, 2}, make([]byte, 258)...)
	stream := append(append([]byte(nil), one...), two...)
	empty := []byte{23, 3, 3, 0, 0}
	tests := []struct {
		name   string
		stream []byte
		cuts   []int // read boundaries in stream
		// mid and drained, after each read.
		mid, drained []bool
	}{
		{"whole records", stream, []int{len(one), len(stream)}, []bool{false, false}, []bool{true, true}},
		{"header cut", stream, []int{2, len(one), len(one) + 4, len(stream)},
			[]bool{true, false, true, false}, []bool{false, true, false, true}},
		{"body cut", stream, []int{6, len(one) + 100, len(stream)}, []bool{true, true, false}, []bool{false, false, true}},
		{"both in one read", stream, []int{len(stream)}, []bool{false}, []bool{false}},
		{"the end of one and all of another", stream, []int{6, len(stream)}, []bool{true, false}, []bool{false, false}},
		{"an empty record", empty, []int{len(empty)}, []bool{false}, []bool{true}},
		{"an empty record after one", append(one[:len(one):len(one)], empty...), []int{len(one) + len(empty)},
			[]bool{false}, []bool{false}},
		// TLS 1.2's alerts come in the clear; after one, TLS may hold
		// the plaintext of what followed it.
		{"an alert in the clear, then records", append(append([]byte{21, 3, 3, 0, 2, 1, 90}, one...), one...),
			[]int{7, 7 + len(one), 7 + 2*len(one)}, []bool{false, false, false}, []bool{false, false, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s tlsSocket
			from := 0
			for i, to := range tt.cuts {
				s.follow(tt.stream[from:to])
				from = to
				if got := s.mid.Load(); got != tt.mid[i] {
					t.Errorf("after reading to %d: mid-record %v, want %v", to, got, tt.mid[i])
				}
				if got := s.drained(); got != tt.drained[i] {
					t.Errorf("after reading to %d: drained %v, want %v", to, got, tt.drained[i])
				}
			}
		})
	}
}

// A read that takes as much as it asked for may have left the next
// record on the socket, where a wait that begins after it would not see
// it: such a read does not leave TLS drained, however it ended.
func TestTLSSocketReadThatFillsItsBuffer(t *testing.T) {
	record := []byte{23, 3, 3, 0, 3, 'a', 'b', 'c'}
	for _, tc := range []struct {
		name    string
		buf     int
		drained bool
	}{
		{"the record and room to spare", len(record) + 1, true},
		{"the record filling the buffer", len(record), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := net.Pipe()
			defer a.Close()
			defer b.Close()
			go b.Write(record)
			s := &tlsSocket{Conn: a}
			p := make([]byte, tc.buf)
			if n, err := s.Read(p); err != nil || n != len(record) {
				t.Fatalf("read %d, %v; want the record's %d", n, err, len(record))
			}
			if got := s.drained(); got != tc.drained {
				t.Errorf("drained %v, want %v", got, tc.drained)
			}
		})
	}
}

// Following the record framing read by read says what a walk over the
// whole stream says, wherever the reads cut it.
func FuzzTLSSocketFollowsRecords(f *testing.F) {
	f.Add([]byte{23, 3, 3, 0, 3, 'a', 'b', 'c', 23, 3, 3, 0, 0}, []byte{2, 5})
	f.Add([]byte{22, 3, 1, 1, 0}, []byte{1, 1, 1})
	f.Fuzz(func(t *testing.T, stream, cuts []byte) {
		var s tlsSocket
		// Read follows only what a read returned: never nothing.
		from, last := 0, 0
		read := func(to int) {
			if to > from {
				s.follow(stream[from:to])
				last, from = from, to
			}
		}
		for _, c := range cuts {
			read(min(from+int(c), len(stream)))
		}
		read(len(stream))
		if got, want := s.mid.Load(), endsMidRecord(stream); got != want {
			t.Errorf("mid-record %v, want %v, for % x cut at %v", got, want, stream, cuts)
		}
		if len(stream) == 0 {
			return
		}
		ends := recordEnds(stream)
		inLast := 0
		for _, e := range ends {
			if e > last {
				inLast++
			}
		}
		want := inLast == 1 && !endsMidRecord(stream) && !hasAlert(stream)
		if got := s.drained(); got != want {
			t.Errorf("drained %v, want %v, for % x cut at %v (last read from %d, records end at %v)", got, want, stream, cuts, last, ends)
		}
	})
}

// hasAlert reports whether a record of stream whose header is whole is
// an alert.
func hasAlert(stream []byte) bool {
	for at := 0; len(stream)-at >= recordHeader; at += recordHeader + (int(stream[at+3])<<8 | int(stream[at+4])) {
		if stream[at] == recordAlert {
			return true
		}
	}
	return false
}

// recordEnds walks stream record by record: where each whole record ends.
func recordEnds(stream []byte) []int {
	var ends []int
	at := 0
	for len(stream)-at >= recordHeader {
		n := recordHeader + (int(stream[at+3])<<8 | int(stream[at+4]))
		if len(stream)-at < n {
			break
		}
		at += n
		ends = append(ends, at)
	}
	return ends
}

// endsMidRecord walks stream record by record: whether it ends inside a
// header or a body.
func endsMidRecord(stream []byte) bool {
	for len(stream) > 0 {
		if len(stream) < recordHeader {
			return true
		}
		n := recordHeader + (int(stream[3])<<8 | int(stream[4]))
		if len(stream) < n {
			return true
		}
		stream = stream[n:]
	}
	return false
}

// Every write through a tlsSocket ends within its bound: a deadline set
// for it while still ahead, else send (and half again) from when it
// starts, so that neither a deadline long past nor one of its own nearly
// spent cuts a write begun now; a deadline already past when it is set
// stops writes at once.
func TestTLSSocketBoundsEveryWrite(t *testing.T) {
	t.Parallel()
	const send = time.Second
	for _, tc := range []struct {
		name string
		// before acts on the socket before the write.
		before func(t *testing.T, s *tlsSocket, peer net.Conn)
		// readAfter: the peer starts taking what is written that long
		// after the write begins; 0: it never does.
		readAfter time.Duration
		// within bounds how long the write may take, fail whether it
		// fails.
		within time.Duration
		fail   bool
	}{
		{"no deadline, a peer that never reads", func(*testing.T, *tlsSocket, net.Conn) {}, 0, 5 * send, true},
		{"a deadline set ahead stands", func(_ *testing.T, s *tlsSocket, _ net.Conn) {
			// Ahead still when the write starts, on a busy machine too;
			// the write's own bound would be send and a half.
			s.SetWriteDeadline(time.Now().Add(send / 2))
		}, 0, send + send/4, true},
		{"a deadline long past is not this write's", func(_ *testing.T, s *tlsSocket, _ net.Conn) {
			s.SetWriteDeadline(time.Now().Add(send / 20))
			time.Sleep(send / 10) // it passes
		}, send / 10, 5 * send, false},
		{"its own deadline nearly spent is renewed", func(t *testing.T, s *tlsSocket, peer net.Conn) {
			go peer.Read(make([]byte, 64))
			if _, err := s.Write([]byte("first")); err != nil {
				t.Fatal(err)
			}
			// Less than send is left of the first write's deadline, less
			// than readAfter.
			time.Sleep(send * 9 / 10)
		}, send, 5 * send, false},
		{"a deadline set in the past stops it", func(_ *testing.T, s *tlsSocket, _ net.Conn) {
			s.SetWriteDeadline(time.Unix(1, 0))
		}, send / 10, send / 2, true},
		{"SetDeadline in the past stops it too", func(_ *testing.T, s *tlsSocket, _ net.Conn) {
			s.SetDeadline(time.Now().Add(-time.Second))
		}, send / 10, send / 2, true},
		{"cleared, it is bounded again", func(_ *testing.T, s *tlsSocket, _ net.Conn) {
			s.SetWriteDeadline(time.Unix(1, 0))
			s.SetWriteDeadline(time.Time{})
		}, 0, 5 * send, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, b := net.Pipe()
			defer a.Close()
			defer b.Close()
			s := &tlsSocket{Conn: a, send: send}
			tc.before(t, s, b)
			if tc.readAfter > 0 {
				time.AfterFunc(tc.readAfter, func() { io.Copy(io.Discard, b) })
			}
			start := time.Now()
			done := make(chan error, 1)
			go func() {
				_, err := s.Write([]byte("record"))
				done <- err
			}()
			var err error
			select {
			case err = <-done:
			case <-time.After(tc.within):
				t.Fatalf("the write did not end within %v", tc.within)
			}
			if took := time.Since(start); took > tc.within {
				t.Errorf("the write took %v, want within %v", took, tc.within)
			}
			if fail := err != nil; fail != tc.fail {
				t.Errorf("write error %v, want failure %v", err, tc.fail)
			}
			if tc.fail && !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("write error %v, want a deadline's", err)
			}
		})
	}
}

// tlsSocketPair makes a TLS connection over loopback, its handshake
// done: the server's tls.Conn on a tlsSocket over the accepted socket
// (wrapped by under, if set), and the client's tls.Conn, bounded to a minute.
// small fixes both ends' socket buffers at 32 KiB, so that a large write
// cannot go in one send however fast the client reads.
func tlsSocketPair(t *testing.T, under func(net.Conn) net.Conn, small bool) (*tls.Conn, *tlsSocket, *tls.Conn) {
	t.Helper()
	return tlsSocketPairOver(t, under, nil, small)
}

// tlsSocketPairOver is tlsSocketPair with the server's TLS over
// over(sock), a layer a test puts between TLS and its socket, when set.
func tlsSocketPairOver(t *testing.T, under func(net.Conn) net.Conn, over func(*tlsSocket) net.Conn, small bool) (*tls.Conn, *tlsSocket, *tls.Conn) {
	t.Helper()
	srvCfg, cliCfg := testTLS(t, "http/1.1")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var d net.Dialer
	if small {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 32<<10) })
			return nil
		}
	}
	raw, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	var srvRaw net.Conn
	if srvRaw, err = ln.Accept(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srvRaw.Close() })
	if small {
		srvRaw.(*net.TCPConn).SetWriteBuffer(32 << 10)
	}
	if under != nil {
		srvRaw = under(srvRaw)
	}
	// Bounds for a whole test, not for what a test times: generous, as
	// the -race suite runs beside the plain one on two cores.
	// As the server makes it: a plain socket is read and written raw.
	sock := newTLSSocket(srvRaw, 30*time.Second)
	var tlsOver net.Conn = sock
	if over != nil {
		tlsOver = over(sock)
	}
	sc := tls.Server(tlsOver, srvCfg)
	cc := tls.Client(raw, cliCfg)
	cc.SetDeadline(time.Now().Add(time.Minute))
	done := make(chan error, 1)
	go func() { done <- cc.Handshake() }()
	sc.SetDeadline(time.Now().Add(time.Minute))
	if err := sc.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	sc.SetDeadline(time.Time{})
	return sc, sock, cc
}

// sendWait writes an answer's records in one send and waits for what the
// client sends next; an answer the socket does not take whole is written
// to its end the usual way, unwaited. Either way the client reads the
// answer whole, and the server then reads what followed it.
func TestTLSSocketSendWait(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		size   int
		waited bool
	}{
		{"an answer the socket takes", 300, true},
		{"records of an answer the socket takes", 20 << 10, true},
		// 1 MiB, sixteen times the 64 KiB the two small buffers hold.
		{"an answer larger than the socket takes", 1 << 20, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sc, sock, cc := tlsSocketPair(t, nil, true)
			answer := bytes.Repeat([]byte("0123456789abcdef"), tc.size/16)
			client := make(chan error, 1)
			go func() {
				got := make([]byte, len(answer))
				if _, err := io.ReadFull(cc, got); err != nil {
					client <- fmt.Errorf("reading the answer: %w", err)
					return
				}
				if !bytes.Equal(got, answer) {
					client <- errors.New("the answer came altered")
					return
				}
				if tc.waited {
					// The records have gone, and the wait for what
					// comes next holds neither their buffer nor the
					// socket's other writes (a KeyUpdate's reply).
					sending := true
					for end := time.Now().Add(10 * time.Second); sending && time.Now().Before(end); {
						sock.wmu.Lock()
						sending = sock.sending
						sock.wmu.Unlock()
						runtime.Gosched()
					}
					if sending {
						client <- errors.New("the records' buffer was held through the wait for the next request")
						return
					}
				}
				_, err := cc.Write([]byte("next"))
				client <- err
			}()
			given := 0
			// Bounds the wait when the client never sends (it failed).
			sc.SetReadDeadline(time.Now().Add(30 * time.Second))
			n, waited, err := sock.sendWait(sc, peek.New(sock.Conn), answer, func([]byte) { given++ })
			if err != nil || n != len(answer) || waited != tc.waited {
				t.Errorf("sendWait: %d, waited %v, %v; want %d, waited %v", n, waited, err, len(answer), tc.waited)
			}
			if given != 1 {
				t.Errorf("the answer was given back %d times; want once, as its records were made", given)
			}
			if err := <-client; err != nil {
				t.Fatalf("client: %v", err)
			}
			next := make([]byte, 4)
			sc.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.ReadFull(sc, next); err != nil || string(next) != "next" {
				t.Errorf("after the answer the server read %q, %v; want next", next, err)
			}
		})
	}
}

// Another goroutine may write through the socket while a write's
// records are gathered and sent (a KeyUpdate's reply, from inside a
// read): its writes see the gathering state under the socket's lock,
// which the race detector checks here, with writes of nothing;
// TestTLSSocketGatheredRecordsGoFirst checks their order.
func TestTLSSocketGatheringBesideAnotherWriter(t *testing.T) {
	t.Parallel()
	sc, sock, cc := tlsSocketPair(t, nil, false)
	go func() {
		buf := make([]byte, 4<<10)
		for {
			if _, err := cc.Read(buf); err != nil {
				return
			}
			if _, err := cc.Write([]byte("n")); err != nil {
				return
			}
		}
	}()
	stop := make(chan struct{})
	other := make(chan struct{})
	defer func() { close(stop); <-other }()
	go func() {
		defer close(other)
		for {
			select {
			case <-stop:
				return
			default:
				sock.Write(nil) // writes nothing, but looks at the state
				runtime.Gosched()
			}
		}
	}()
	pk := peek.New(sock.Conn)
	sc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for range 50 {
		if _, _, err := sock.sendWait(sc, pk, []byte("answer"), nil); err != nil {
			t.Fatal(err)
		}
		if _, err := sc.Read(make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
	}
}

// countingWrites counts the writes made to its Conn.
type countingWrites struct {
	net.Conn
	n atomic.Int64
}

func (c *countingWrites) Write(p []byte) (int, error) {
	c.n.Add(1)
	return c.Conn.Write(p)
}

// At a connection's start TLS makes small records, each written on its
// own; writeGathered puts them in one write a gatherPiece, and the
// client reads the same bytes either way.
func TestTLSSocketWriteGathered(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		size     int
		gathered bool
		writes   int64 // 0: more than one
	}{
		{"16 KiB, TLS alone", 16 << 10, false, 0},
		{"16 KiB, gathered", 16 << 10, true, 1},
		{"a piece and a half, gathered", gatherPiece * 3 / 2, true, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			payload := bytes.Repeat([]byte("0123456789abcdef"), tc.size/16)
			var cw *countingWrites
			sc, sock, cc := tlsSocketPair(t, func(c net.Conn) net.Conn { cw = &countingWrites{Conn: c}; return cw }, false)
			got := make(chan []byte, 1)
			go func() {
				b := make([]byte, len(payload))
				io.ReadFull(cc, b)
				got <- b
			}()
			before := cw.n.Load()
			var n int
			var err error
			if tc.gathered {
				n, err = sock.writeGathered(sc, payload)
			} else {
				n, err = sc.Write(payload)
			}
			if err != nil || n != len(payload) {
				t.Fatalf("write: %d, %v", n, err)
			}
			writes := cw.n.Load() - before
			switch {
			case tc.writes != 0 && writes != tc.writes:
				t.Errorf("%d writes to the socket, want %d", writes, tc.writes)
			case tc.writes == 0 && writes < 2:
				t.Errorf("TLS alone made %d writes; the case wants small records at the start", writes)
			}
			if b := <-got; !bytes.Equal(b, payload) {
				t.Error("the client read other bytes than were written")
			}
		})
	}
}

// Records gathered go out before anything another goroutine writes
// after TLS made them (a KeyUpdate's reply, written from inside a read):
// its write waits until they are sent.
func TestTLSSocketGatheredRecordsGoFirst(t *testing.T) {
	t.Parallel()
	sc, sock, cc := tlsSocketPair(t, nil, false)
	raw := cc.NetConn() // read raw: what the server sends next
	// Whatever TLS sent after its handshake (session tickets), first.
	raw.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	io.Copy(io.Discard, raw)

	out, release, _, err := sock.gather(sc, []byte("the answer"))
	if err != nil {
		t.Fatal(err)
	}
	marker := []byte("another goroutine's write")
	other := make(chan error, 1)
	go func() {
		_, err := sock.Write(marker)
		other <- err
	}()
	// Nothing reaches the client before the gathered records are sent.
	raw.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, _ := raw.Read(make([]byte, 64)); n > 0 {
		t.Fatalf("%d bytes reached the client before the gathered records were sent", n)
	}
	// out is the pool's again after release.
	want := append(append([]byte(nil), out...), marker...)
	if _, err := sock.writeOwn(out); err != nil {
		t.Fatal(err)
	}
	release(nil)
	if err := <-other; err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(want))
	raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(raw, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("the client got the other write out of turn:\n got % x\nwant % x", got, want)
	}
}

// A gathered write that fails (here, its deadline passed) leaves TLS
// counting records that never went out: nothing may follow them, as
// nothing follows TLS's own failed write.
func TestTLSSocketNothingAfterAFailedGatheredWrite(t *testing.T) {
	t.Parallel()
	sc, sock, cc := tlsSocketPair(t, nil, false)
	raw := cc.NetConn() // read raw: what the server sends next
	raw.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	io.Copy(io.Discard, raw) // what TLS sent after its handshake

	sock.SetWriteDeadline(time.Unix(1, 0))
	if _, err := sock.writeGathered(sc, bytes.Repeat([]byte("x"), 4<<10)); err == nil {
		t.Fatal("a gathered write past its deadline succeeded")
	}
	sock.SetWriteDeadline(time.Time{})
	if _, err := sc.Write([]byte("after")); err == nil {
		t.Error("a write after a failed gathered write succeeded")
	}
	raw.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, _ := raw.Read(make([]byte, 64)); n > 0 {
		t.Errorf("%d bytes reached the client after the failed write", n)
	}
}

// A connection's last answer and its close_notify go out in one write;
// the client reads the answer and then a clean end (the alert), and TLS
// writes nothing after it, its Close included.
func TestTLSSocketWriteClosing(t *testing.T) {
	t.Parallel()
	for _, size := range []int{100, 16 << 10} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			t.Parallel()
			payload := bytes.Repeat([]byte("x"), size)
			var cw *countingWrites
			sc, sock, cc := tlsSocketPair(t, func(c net.Conn) net.Conn { cw = &countingWrites{Conn: c}; return cw }, false)
			type read struct {
				b   []byte
				err error
			}
			got := make(chan read, 1)
			go func() {
				b, err := io.ReadAll(cc) // to the close_notify: io.EOF, taken as the end
				got <- read{b, err}
			}()
			before := cw.n.Load()
			if n, err := sock.writeClosing(sc, payload); err != nil || n != len(payload) {
				t.Fatalf("writeClosing: %d, %v", n, err)
			}
			if writes := cw.n.Load() - before; writes != 1 {
				t.Errorf("%d writes to the socket, want 1", writes)
			}
			r := <-got
			if r.err != nil || !bytes.Equal(r.b, payload) {
				t.Errorf("the client read %d bytes and %v, want %d and a clean end", len(r.b), r.err, size)
			}
			if _, err := sc.Write([]byte("more")); err == nil {
				t.Error("a write after the close_notify went through")
			}
			if _, err := sock.Write([]byte("a record of TLS's own")); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("a write to the socket after the close_notify: %v, want a deadline exceeded", err)
			}
			tried := cw.n.Load()
			sc.Close()
			if cw.n.Load() != tried {
				t.Error("Close wrote to the socket after the close_notify")
			}
		})
	}
}

// The last answer's send keeps the write deadline the socket had: one
// already past (Shutdown's cut) stops it, as it stops any write.
func TestTLSSocketWriteClosingKeepsACut(t *testing.T) {
	t.Parallel()
	sc, sock, _ := tlsSocketPair(t, nil, false)
	sock.SetWriteDeadline(time.Now().Add(-time.Second))
	if _, err := sock.writeClosing(sc, []byte("answer")); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("writeClosing on a socket cut: %v, want a deadline exceeded", err)
	}
}

// A record TLS writes after the close_notify of a connection's last
// answer was gathered, before the gathered send (a KeyUpdate's reply,
// from a read that took TLS's write lock as the alert let go of it),
// fails as a write after the alert fails once the send is done: it does
// not go out behind the alert.
func TestTLSSocketWriteClosingGathersNothingAfterTheAlert(t *testing.T) {
	t.Parallel()
	own := []byte("a record of TLS's own")
	var wire *recordingWrites
	var late error
	sc, sock, cc := tlsSocketPairOver(t,
		func(c net.Conn) net.Conn { wire = &recordingWrites{Conn: c}; return wire },
		func(s *tlsSocket) net.Conn {
			return &afterStop{tlsSocket: s, then: func() {
				_, late = s.Write(own)
			}}
		}, false)
	got := make(chan error, 1)
	go func() {
		_, err := io.ReadAll(cc) // to the close_notify
		got <- err
	}()
	if n, err := sock.writeClosing(sc, []byte("answer")); err != nil || n != len("answer") {
		t.Fatalf("writeClosing: %d, %v", n, err)
	}
	if err := <-got; err != nil {
		t.Errorf("the client read the answer and %v, want a clean end", err)
	}
	if !errors.Is(late, os.ErrDeadlineExceeded) {
		t.Errorf("a record written after the alert, while it was gathered: %v, want a deadline exceeded", late)
	}
	if bytes.Contains(wire.bytes(), own) {
		t.Error("a record written after the alert went out behind it")
	}
}

// afterStop calls then once, after the first write deadline set through
// it that has passed already: crypto/tls's, once it has written its
// close_notify.
type afterStop struct {
	*tlsSocket
	then func()
}

func (a *afterStop) SetWriteDeadline(t time.Time) error {
	err := a.tlsSocket.SetWriteDeadline(t)
	if then := a.then; then != nil && !t.IsZero() && !t.After(time.Now()) {
		a.then = nil
		then()
	}
	return err
}

// recordingWrites keeps what is written to its Conn.
type recordingWrites struct {
	net.Conn
	mu  sync.Mutex
	buf []byte
}

func (c *recordingWrites) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.mu.Lock()
	c.buf = append(c.buf, p[:n]...)
	c.mu.Unlock()
	return n, err
}

func (c *recordingWrites) bytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]byte(nil), c.buf...)
}
