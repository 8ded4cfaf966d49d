package h2

import (
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2/hpack"
)

// Server holds the settings every connection is served with, and the
// connections being served, so that GoAway reaches them all. The zero
// value of each setting is its default.
type Server struct {
	// MaxConcurrentStreams bounds the streams a client may have open at
	// once (250).
	MaxConcurrentStreams uint32
	// MaxHeaderListSize bounds a request's header list, as HPACK counts
	// it (RFC 9113 §6.5.2); a larger one is answered 431 (1 MiB).
	MaxHeaderListSize uint32
	// HandleRefused hands a request the server refuses to the handler,
	// with no fields and no body, for it to answer (the writer's Refused
	// says with what) and log as it logs the others; else the server
	// answers it, unseen. Only a header list past MaxHeaderListSize is.
	HandleRefused bool
	// MaxReadFrameSize is the largest frame read (16 KiB, the protocol's
	// least): the read buffer is as large as the largest frame read.
	MaxReadFrameSize uint32
	// StreamWindow and ConnWindow are how many request body bytes a
	// client may send ahead of the handlers' reads, per stream and per
	// connection (256 KiB and 1 MiB); never less than the protocol's
	// initial 65535, which a client may send on a stream before it has
	// heard the server's SETTINGS, and on the connection, whose window
	// only WINDOW_UPDATE changes and only widens.
	StreamWindow uint32
	ConnWindow   uint32
	// IdleTimeout ends a connection with no open stream for that long
	// (none: never).
	IdleTimeout time.Duration
	// WriteTimeout bounds every write to the connection: a client that
	// stops reading cannot hold the connection's writers for ever.
	WriteTimeout time.Duration
	// PrefaceTimeout bounds the client's preface and first SETTINGS (10s).
	PrefaceTimeout time.Duration
	// ErrorLog, if set, hears of handler panics other than
	// http.ErrAbortHandler.
	ErrorLog func(format string, args ...any)

	mu    sync.Mutex
	conns map[*conn]struct{}

	// bufs are the connections' write buffers (outBuffer), each held
	// from a connection's first frame after a flush to the next flush;
	// readers their read buffers, given back by idle connections.
	bufs    sync.Pool
	readers sync.Pool

	dates    atomic.Pointer[dateStamp] // the server's own (date)
	appDates atomic.Pointer[dateStamp] // the last other one an app sent twice (dateField)
	// missedDate, under dateMu, is the last Date dateField had none for.
	dateMu     sync.Mutex
	missedDate string
}

// The defaults.
const (
	defaultMaxStreams     = 250
	defaultMaxHeaderList  = 1 << 20
	defaultMaxFrame       = 16 << 10
	defaultStreamWindow   = 256 << 10
	defaultConnWindow     = 1 << 20
	defaultPrefaceTimeout = 10 * time.Second
	// initialWindow is the protocol's window before SETTINGS say
	// otherwise (RFC 9113 §6.9.2).
	initialWindow = 65535
	// maxWindow is the largest a flow-control window may be.
	maxWindow = 1<<31 - 1
	// goAwayLinger is how long a connection that sent GOAWAY and has no
	// stream left reads on before it closes: closing with the client's
	// frames unread would reset the connection and could lose the
	// GOAWAY and the last answers on their way.
	goAwayLinger = time.Second
)

func (s *Server) maxStreams() uint32 { return or(s.MaxConcurrentStreams, defaultMaxStreams) }
func (s *Server) maxHeaderList() uint32 {
	return or(s.MaxHeaderListSize, defaultMaxHeaderList)
}
func (s *Server) maxFrame() uint32     { return or(s.MaxReadFrameSize, defaultMaxFrame) }
func (s *Server) streamWindow() uint32 { return window(s.StreamWindow, defaultStreamWindow) }
func (s *Server) connWindow() uint32   { return window(s.ConnWindow, defaultConnWindow) }
func (s *Server) prefaceTimeout() time.Duration {
	if s.PrefaceTimeout > 0 {
		return s.PrefaceTimeout
	}
	return defaultPrefaceTimeout
}

func or(v, d uint32) uint32 {
	if v == 0 {
		return d
	}
	return v
}

// window is a receive window of size v (d if 0), within what the
// protocol allows it to be.
func window(v, d uint32) uint32 { return min(max(or(v, d), initialWindow), maxWindow) }

// ServeConn serves nc as HTTP/2 until it ends, each stream's request to
// h; nc's next bytes are the client's connection preface. ctx is the
// parent of every request's context.
func (s *Server) ServeConn(ctx context.Context, nc net.Conn, h http.Handler) {
	s.ServeParkable(ctx, nc, h, nil)
}

// Parking lets an idle connection give up its goroutine. Once idle past
// its read grace (no stream open, nothing buffered, its read buffer
// given back), a connection asks Park to hold its socket rather than
// wait on it.
type Parking interface {
	// Park holds the connection's socket until the client sends on it
	// or closes it, or until Unpark: then it calls wake, on a goroutine
	// of its own, which serves the connection on until it ends or parks
	// again, and reports whether it ended. False: the socket cannot be
	// held, and the connection waits on its goroutine. Called with the
	// connection's lock held: it must not call back.
	Park(wake func() (ended bool)) bool
	// Unpark has the wake of a parked connection called at once: the
	// connection has something to do (linger after its GOAWAY, end).
	// Nothing, for a connection not parked. Called with the
	// connection's lock held.
	Unpark()
}

// ServeParkable is ServeConn for a connection that parks with p (nil:
// it never does). It returns when the connection ends (true) or parks
// (false): it is then p's to wake.
func (s *Server) ServeParkable(ctx context.Context, nc net.Conn, h http.Handler, p Parking) (ended bool) {
	c := newConn(ctx, s, nc, h)
	c.parking = p
	s.mu.Lock()
	if s.conns == nil {
		s.conns = map[*conn]struct{}{}
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	return c.read(true)
}

// forget takes an ended connection out of those GoAway reaches.
func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// GoAway tells every connection being served to finish its open streams
// and close (GOAWAY with NO_ERROR); a connection told before does
// nothing again.
func (s *Server) GoAway() {
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.goAway()
	}
}

// dateStamp is a Date field's value and the field as a header block
// carries it, encoded once for every answer that sends it: the value of
// second sec, or one an app sent (sec 0).
type dateStamp struct {
	sec   int64
	val   string
	field []byte
}

func newDateStamp(sec int64, val string) *dateStamp {
	var e blockEncoder
	e.field(hpack.HeaderField{Name: "date", Value: val})
	return &dateStamp{sec: sec, val: val, field: e.buf}
}

// date is the Date of now, made once a second.
func (s *Server) date() *dateStamp {
	now := time.Now()
	if d := s.dates.Load(); d != nil && d.sec == now.Unix() {
		return d
	}
	d := newDateStamp(now.Unix(), now.UTC().Format(http.TimeFormat))
	s.dates.Store(d)
	return d
}

// dateField is a Date field of value v, encoded: the server's own of
// this second when it has v, which it most often has (apps answer with
// the current second's), or the last other value an app sent twice in a
// row, kept apart so that the two do not push each other out. nil when
// neither has v: the caller encodes it (answers whose Dates differ, as
// stored answers' do, cost no stamp each). It reads no clock.
func (s *Server) dateField(v string) []byte {
	if d := s.dates.Load(); d != nil && d.val == v {
		return d.field
	}
	if d := s.appDates.Load(); d != nil && d.val == v {
		return d.field
	}
	s.dateMu.Lock()
	again := s.missedDate == v
	s.missedDate = v
	s.dateMu.Unlock()
	if !again {
		return nil
	}
	d := newDateStamp(0, v)
	s.appDates.Store(d)
	return d.field
}
