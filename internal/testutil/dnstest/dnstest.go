// Package dnstest runs a real DNS server on loopback (UDP and TCP on one
// port) whose records a test changes while it runs: the resolvers under
// test speak to it exactly as to CoreDNS.
package dnstest

import (
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
)

// Server is a DNS server for tests; it is shut down at the end of the test.
type Server struct {
	// Addr is the server's 127.0.0.1:port, for UDP and TCP alike.
	Addr string

	mu       sync.Mutex
	records  map[string][]dns.RR // by lower-case owner name
	rcode    int                 // answered to every question when not 0
	silent   bool                // no answer at all: the client times out
	truncate bool                // UDP answers are truncated and empty
	noExtra  bool                // SRV answers without an additional section
	rewrite  func(*dns.Msg)      // changes each reply before it is sent

	queries, tcpQueries atomic.Int64
}

// Start starts a server with no records: every name is NXDOMAIN.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{records: map[string][]dns.RR{}}
	s.Addr = Serve(t, dns.HandlerFunc(s.serve))
	return s
}

// Serve serves h over UDP and TCP on one loopback port until the test
// ends, and returns the port's 127.0.0.1:port: for a test that answers
// with a handler of its own rather than with a Server's records.
func Serve(t testing.TB, h dns.Handler) string {
	t.Helper()
	pc, ln := listen(t)
	for _, srv := range []*dns.Server{{PacketConn: pc}, {Listener: ln}} {
		started := make(chan struct{})
		srv.Handler = h
		srv.NotifyStartedFunc = func() { close(started) }
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = srv.ActivateAndServe()
		}()
		<-started
		t.Cleanup(func() {
			_ = srv.Shutdown()
			<-done
		})
	}
	return pc.LocalAddr().String()
}

// listen opens UDP and TCP on one loopback port.
func listen(t testing.TB) (net.PacketConn, net.Listener) {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln
		}
		pc.Close()
	}
	t.Fatal("no loopback port free for both UDP and TCP")
	return nil, nil
}

// Set replaces every record of the owner names it mentions with rrs, in
// zone-file form ("web.test. 5 IN A 127.0.0.2"). Set(name) with no
// record makes name NXDOMAIN again.
func (s *Server) Set(t testing.TB, name string, rrs ...string) {
	t.Helper()
	var parsed []dns.RR
	for _, r := range rrs {
		rr, err := dns.NewRR(r)
		if err != nil {
			t.Fatalf("record %q: %v", r, err)
		}
		parsed = append(parsed, rr)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := strings.ToLower(dns.Fqdn(name))
	delete(s.records, key)
	for _, rr := range parsed {
		k := strings.ToLower(rr.Header().Name)
		if k != key {
			t.Fatalf("record %q is not for %s", rr, name)
		}
		s.records[k] = append(s.records[k], rr)
	}
}

// Fail makes the server answer every question with rcode (e.g.
// dns.RcodeServerFailure); 0 answers again.
func (s *Server) Fail(rcode int) { s.mu.Lock(); s.rcode = rcode; s.mu.Unlock() }

// Silence makes the server read questions and answer none (true), or
// answer again (false).
func (s *Server) Silence(on bool) { s.mu.Lock(); s.silent = on; s.mu.Unlock() }

// Truncate makes UDP answers truncated (and empty), as a large answer
// is: the client must ask again over TCP.
func (s *Server) Truncate(on bool) { s.mu.Lock(); s.truncate = on; s.mu.Unlock() }

// NoExtra leaves the additional section out of SRV answers: the client
// must look the targets up itself.
func (s *Server) NoExtra(on bool) { s.mu.Lock(); s.noExtra = on; s.mu.Unlock() }

// Rewrite makes f change every reply before it is sent (nil: no more),
// for the answers a plain zone does not give: a CNAME chain, records of
// another name, a question that is not the one asked.
func (s *Server) Rewrite(f func(reply *dns.Msg)) { s.mu.Lock(); s.rewrite = f; s.mu.Unlock() }

// Queries is how many questions the server got, and over TCP.
func (s *Server) Queries() (all, tcp int64) { return s.queries.Load(), s.tcpQueries.Load() }

func (s *Server) serve(w dns.ResponseWriter, q *dns.Msg) {
	s.queries.Add(1)
	_, tcp := w.RemoteAddr().(*net.TCPAddr)
	if tcp {
		s.tcpQueries.Add(1)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.silent || len(q.Question) != 1 {
		return
	}
	m := new(dns.Msg)
	m.SetReply(q)
	m.Authoritative = true
	question := q.Question[0]
	name := strings.ToLower(question.Name)
	switch {
	case s.rcode != 0:
		m.Rcode = s.rcode
	case s.truncate && !tcp:
		m.Truncated = true
	case s.records[name] == nil:
		m.Rcode = dns.RcodeNameError
	default:
		for _, rr := range s.records[name] {
			if rr.Header().Rrtype != question.Qtype {
				continue
			}
			m.Answer = append(m.Answer, rr)
			if srv, ok := rr.(*dns.SRV); ok && !s.noExtra {
				m.Extra = append(m.Extra, s.records[strings.ToLower(srv.Target)]...)
			}
		}
	}
	if s.rewrite != nil {
		s.rewrite(m)
	}
	if !tcp {
		// As real servers do: an answer larger than the client's UDP
		// size (512 bytes without EDNS0) is cut and marked truncated.
		size := dns.MinMsgSize
		if opt := q.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
		}
		m.Truncate(size)
	}
	_ = w.WriteMsg(m)
}
