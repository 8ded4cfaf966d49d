package discovery_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
	"go.uber.org/goleak"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/discovery"
	"github.com/gatehouse/gatehouse/internal/testutil/dnstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func resolver(t *testing.T, timeout time.Duration, servers ...string) *discovery.Resolver {
	t.Helper()
	d := config.NewDNS()
	d.Resolvers, d.Timeout = servers, config.Duration(timeout)
	d.MinRefresh, d.MaxRefresh = config.Duration(2*time.Second), config.Duration(30*time.Second)
	r, err := discovery.New(d)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func entry(t *testing.T, s string) config.DNSUpstream {
	t.Helper()
	u, err := config.ParseDNSUpstream(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// Answers, as a headless Service or a SRV-publishing registry gives them,
// become members; an empty answer is no members, not a failure.
func TestLookup(t *testing.T) {
	srv := dnstest.Start(t)
	srv.Set(t, "web.test", "web.test. 10 IN A 127.0.0.3", "web.test. 5 IN A 127.0.0.2", "web.test. 7 IN AAAA ::1")
	srv.Set(t, "a.test", "a.test. 20 IN A 127.0.0.4")
	srv.Set(t, "b.test", "b.test. 20 IN A 127.0.0.5", "b.test. 20 IN AAAA fd00::5")
	srv.Set(t, "_http._tcp.web.test", "_http._tcp.web.test. 15 IN SRV 0 0 8080 a.test.", "_http._tcp.web.test. 15 IN SRV 0 0 9090 b.test.")
	srv.Set(t, "_none._tcp.web.test", "_none._tcp.web.test. 15 IN SRV 0 0 0 .")
	srv.Set(t, "short.test", "short.test. 0 IN A 127.0.0.6")
	srv.Set(t, "long.test", "long.test. 86400 IN A 127.0.0.7")
	srv.Set(t, "v6only.test", "v6only.test. 9 IN AAAA ::1")
	srv.Set(t, "empty.test", "empty.test. 60 IN TXT \"no address\"")
	tests := []struct {
		name, entry string
		noExtra     bool
		want        discovery.Answer
	}{
		{"A and AAAA, smallest TTL", "dns://web.test:8080", false,
			discovery.Answer{Addrs: []string{"127.0.0.2:8080", "127.0.0.3:8080", "[::1]:8080"}, TTL: 5 * time.Second}},
		{"SRV with additional section", "dns+srv://_http._tcp.web.test", false,
			discovery.Answer{Addrs: []string{"127.0.0.4:8080", "127.0.0.5:9090", "[fd00::5]:9090"}, TTL: 15 * time.Second}},
		{"SRV without additional section", "dns+srv://_http._tcp.web.test", true,
			discovery.Answer{Addrs: []string{"127.0.0.4:8080", "127.0.0.5:9090", "[fd00::5]:9090"}, TTL: 15 * time.Second}},
		{"SRV target . is no service", "dns+srv://_none._tcp.web.test", false, discovery.Answer{TTL: 2 * time.Second}},
		{"NXDOMAIN is no members", "dns://gone.test:8080", false, discovery.Answer{TTL: 2 * time.Second}},
		{"NOERROR without addresses is no members", "dns://empty.test:8080", false, discovery.Answer{TTL: 2 * time.Second}},
		{"SRV NXDOMAIN is no members", "dns+srv://_http._tcp.gone.test", false, discovery.Answer{TTL: 2 * time.Second}},
		{"TTL 0 is raised to min_refresh", "dns://short.test:80", false, discovery.Answer{Addrs: []string{"127.0.0.6:80"}, TTL: 2 * time.Second}},
		{"a long TTL is lowered to max_refresh", "dns://long.test:80", false, discovery.Answer{Addrs: []string{"127.0.0.7:80"}, TTL: 30 * time.Second}},
		{"IPv6 only", "dns://v6only.test:80", false, discovery.Answer{Addrs: []string{"[::1]:80"}, TTL: 9 * time.Second}},
		{"names are case-insensitive", "dns://WEB.Test:1", false,
			discovery.Answer{Addrs: []string{"127.0.0.2:1", "127.0.0.3:1", "[::1]:1"}, TTL: 5 * time.Second}},
	}
	r := resolver(t, 2*time.Second, srv.Addr)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv.NoExtra(tt.noExtra)
			defer srv.NoExtra(false)
			before, _ := srv.Queries()
			got, err := r.Lookup(context.Background(), entry(t, tt.entry))
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("answer (-want +got):\n%s", d)
			}
			if after, _ := srv.Queries(); tt.entry == "dns+srv://_http._tcp.web.test" && !tt.noExtra && after-before != 1 {
				t.Errorf("%d queries for an SRV answer with its additional section, want 1", after-before)
			}
		})
	}
}

// A server that fails is a failure, not an empty pool; the next server
// is asked; a truncated answer is asked again over TCP.
func TestLookupFailures(t *testing.T) {
	good, bad := dnstest.Start(t), dnstest.Start(t)
	for _, s := range []*dnstest.Server{good, bad} {
		s.Set(t, "web.test", "web.test. 5 IN A 127.0.0.2")
	}
	dead := deadServer(t)
	web := entry(t, "dns://web.test:80")
	ok := discovery.Answer{Addrs: []string{"127.0.0.2:80"}, TTL: 5 * time.Second}
	tests := []struct {
		name    string
		setup   func()
		servers []string
		want    discovery.Answer
		wantErr func(error) bool
	}{
		{"SERVFAIL", func() { bad.Fail(dns.RcodeServerFailure) }, []string{bad.Addr}, discovery.Answer{}, rcode(dns.RcodeServerFailure)},
		{"REFUSED", func() { bad.Fail(dns.RcodeRefused) }, []string{bad.Addr}, discovery.Answer{}, rcode(dns.RcodeRefused)},
		{"timeout", func() { bad.Silence(true) }, []string{bad.Addr}, discovery.Answer{}, timeout},
		{"no server listening", func() {}, []string{dead}, discovery.Answer{}, func(err error) bool { return err != nil }},
		{"every server fails: the last one is named", func() { bad.Fail(dns.RcodeServerFailure) }, []string{dead, bad.Addr}, discovery.Answer{}, rcode(dns.RcodeServerFailure)},
		{"failover after SERVFAIL", func() { bad.Fail(dns.RcodeServerFailure) }, []string{bad.Addr, good.Addr}, ok, nil},
		{"failover after timeout", func() { bad.Silence(true) }, []string{bad.Addr, good.Addr}, ok, nil},
		{"failover after no server", func() {}, []string{dead, good.Addr}, ok, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.setup()
			defer func() { bad.Fail(0); bad.Silence(false) }()
			got, err := resolver(t, 300*time.Millisecond, tt.servers...).Lookup(context.Background(), web)
			if tt.wantErr != nil {
				var de *discovery.Error
				if !errors.As(err, &de) || !tt.wantErr(err) || de.Server != tt.servers[len(tt.servers)-1] {
					t.Fatalf("error %v (%T), want a *discovery.Error of the right kind naming the last server", err, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("answer (-want +got):\n%s", d)
			}
		})
	}
	t.Run("truncated over UDP, asked again over TCP", func(t *testing.T) {
		good.Truncate(true)
		defer good.Truncate(false)
		got, err := resolver(t, 2*time.Second, good.Addr).Lookup(context.Background(), web)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(ok, got); d != "" {
			t.Errorf("answer (-want +got):\n%s", d)
		}
		if _, tcp := good.Queries(); tcp != 2 { // A and AAAA
			t.Errorf("%d questions over TCP, want 2", tcp)
		}
	})
}

func rcode(want int) func(error) bool {
	return func(err error) bool {
		var re *discovery.RcodeError
		return errors.As(err, &re) && re.Rcode == want
	}
}

func timeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// deadServer is a loopback address where nothing answers DNS: a UDP port
// that was closed (ICMP port unreachable, or a read timeout).
func deadServer(t *testing.T) string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	return addr
}

// Without dns.resolvers, the nameservers of resolv.conf are asked.
func TestResolvConf(t *testing.T) {
	r, err := discovery.New(config.NewDNS())
	if err != nil {
		t.Skipf("this machine's resolv.conf: %v", err)
	}
	if len(r.Servers()) == 0 {
		t.Fatal("no servers")
	}
	for _, s := range r.Servers() {
		if _, _, err := net.SplitHostPort(s); err != nil {
			t.Errorf("server %q is not host:port", s)
		}
	}
}

// Answers a plain zone does not give: only the records of the name asked
// (and of the CNAME chain from it) count, an answer to another question
// is no answer, and an address no member can be dialed at is left out.
func TestLookupOddAnswers(t *testing.T) {
	srv := dnstest.Start(t)
	srv.Set(t, "web.test", "web.test. 5 IN A 127.0.0.2")
	srv.Set(t, "_http._tcp.web.test", "_http._tcp.web.test. 15 IN SRV 0 0 0 web.test.", "_http._tcp.web.test. 15 IN SRV 0 0 8080 web.test.")
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	onA := func(f func(m *dns.Msg)) func(m *dns.Msg) {
		return func(m *dns.Msg) {
			if m.Question[0].Qtype == dns.TypeA {
				f(m)
			}
		}
	}
	tests := []struct {
		name    string
		entry   string
		rewrite func(m *dns.Msg)
		want    []string
		wantErr bool
	}{
		{"a CNAME chain, as for a Service of type ExternalName", "dns://web.test:80", onA(func(m *dns.Msg) {
			m.Answer = []dns.RR{rr("web.test. 5 IN CNAME mid.test."), rr("mid.test. 5 IN CNAME end.test."), rr("end.test. 5 IN A 127.0.0.9")}
		}), []string{"127.0.0.9:80"}, false},
		{"records of a name off the chain are not members", "dns://web.test:80", onA(func(m *dns.Msg) {
			m.Answer = append(m.Answer, rr("other.test. 5 IN A 127.0.0.66"))
		}), []string{"127.0.0.2:80"}, false},
		{"an answer to another name is no answer", "dns://web.test:80", onA(func(m *dns.Msg) {
			m.Question[0].Name = "other.test."
			m.Answer = []dns.RR{rr("other.test. 5 IN A 127.0.0.66")}
		}), nil, true},
		{"an answer to another type is no answer", "dns://web.test:80", onA(func(m *dns.Msg) {
			m.Question[0].Qtype = dns.TypeMX
		}), nil, true},
		{"an answer without the question is no answer", "dns://web.test:80", onA(func(m *dns.Msg) {
			m.Question = nil
		}), nil, true},
		{"unspecified, multicast, broadcast and zone-less link-local addresses are left out", "dns://web.test:80", func(m *dns.Msg) {
			if m.Question[0].Qtype == dns.TypeA {
				m.Answer = append(m.Answer, rr("web.test. 5 IN A 0.0.0.0"), rr("web.test. 5 IN A 224.0.0.1"), rr("web.test. 5 IN A 255.255.255.255"))
			} else {
				m.Answer = append(m.Answer, rr("web.test. 5 IN AAAA ::"), rr("web.test. 5 IN AAAA ff02::1"), rr("web.test. 5 IN AAAA fe80::1"))
			}
		}, []string{"127.0.0.2:80"}, false},
		{"an SRV record with port 0 is no member", "dns+srv://_http._tcp.web.test", nil, []string{"127.0.0.2:8080"}, false},
		{"SRV records of another name are not members", "dns+srv://_http._tcp.web.test", func(m *dns.Msg) {
			if m.Question[0].Qtype == dns.TypeSRV {
				m.Answer = append(m.Answer, rr("_http._tcp.other.test. 15 IN SRV 0 0 9999 web.test."))
			}
		}, []string{"127.0.0.2:8080"}, false},
	}
	r := resolver(t, 2*time.Second, srv.Addr)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv.Rewrite(tt.rewrite)
			defer srv.Rewrite(nil)
			got, err := r.Lookup(context.Background(), entry(t, tt.entry))
			if tt.wantErr {
				var de *discovery.Error
				if !errors.As(err, &de) {
					t.Fatalf("answer %v, error %v: want a *discovery.Error", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, got.Addrs); d != "" {
				t.Errorf("members (-want +got):\n%s", d)
			}
		})
	}
}

// A lookup waiting on a server that does not answer ends when its context
// does, not a dns.timeout later: a reload and a stop wait for it.
func TestLookupCancelled(t *testing.T) {
	srv := dnstest.Start(t)
	srv.Silence(true)
	r := resolver(t, 30*time.Second, srv.Addr)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err := r.Lookup(ctx, entry(t, "dns://web.test:80"))
	if err == nil {
		t.Fatal("no error")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the cancelled lookup returned after %s, want well within the 30s timeout", d)
	}
}

// A large answer, as a headless Service over many pods gives, comes over
// TCP once it passes 1232 bytes (DNS Flag Day 2020): a larger UDP answer
// is fragmented, and overlay networks and firewalls often drop the
// fragments, which would be a timeout on every lookup.
func TestLookupLargeAnswer(t *testing.T) {
	srv := dnstest.Start(t)
	var rrs, want []string
	for i := range 150 { // about 2.4 KB of answer
		ip := fmt.Sprintf("127.0.%d.%d", 1+i/200, 1+i%200)
		rrs = append(rrs, "big.test. 5 IN A "+ip)
		want = append(want, ip+":80")
	}
	srv.Set(t, "big.test", rrs...)
	got, err := resolver(t, 2*time.Second, srv.Addr).Lookup(context.Background(), entry(t, "dns://big.test:80"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(want)
	if d := cmp.Diff(want, got.Addrs); d != "" {
		t.Errorf("members (-want +got):\n%s", d)
	}
	if _, tcp := srv.Queries(); tcp != 1 {
		t.Errorf("%d questions over TCP, want 1 (the A answer is larger than 1232 bytes)", tcp)
	}
}
