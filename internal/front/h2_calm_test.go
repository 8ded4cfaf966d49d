package front

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/gatehouse/gatehouse/internal/testutil"
)

// Clients that use HTTP/2 as browsers and API clients do keep their
// connection, over TLS and h2c: one that acknowledges each DATA frame it
// reads with a WINDOW_UPDATE for the stream and one for the connection
// (over 2000 of them for a download); one that then cancels every stream
// it may have open, at once, within a second of opening them (a page
// navigated away from) and goes on; PINGs and SETTINGS now and then.
func TestH2WellBehavedClientsKeepTheirConnection(t *testing.T) {
	const big = 16 << 20
	chunk := strings.Repeat("d", 16<<10)
	for _, way := range h2Ways {
		t.Run(way.name, func(t *testing.T) {
			st := &limStub{handle: func(w http.ResponseWriter, r *http.Request) {
				switch r.URL.Path {
				case "/big":
					for range big / len(chunk) {
						io.WriteString(w, chunk)
					}
				case "/wait":
					<-r.Context().Done()
				default:
					limAnswer(w, http.StatusOK, "ok")
				}
			}}
			s, hc := h2Dial(t, st, way.tls)
			scheme := "http"
			if way.tls {
				scheme = "https"
			}

			hc.request(1, h2Get(scheme, "/big"))
			if n, acks := hc.download(1); n != big {
				t.Fatalf("the download: %d bytes, want %d", n, big)
			} else {
				t.Logf("%d bytes read, %d WINDOW_UPDATEs sent", n, acks)
			}
			for i := range 10 {
				hc.fr.WritePing(false, [8]byte{byte(i)})
				hc.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 65535})
			}

			id := uint32(3)
			for range maxStreams {
				hc.request(id, h2Get(scheme, "/wait"))
				id += 2
			}
			testutil.WaitFor(t, 10*time.Second, "every stream handed over", func() bool {
				_, served := st.seen()
				return len(served) == 1+maxStreams
			})
			for cancel := uint32(3); cancel < id; cancel += 2 {
				hc.fr.WriteRSTStream(cancel, http2.ErrCodeCancel)
			}
			hc.request(id, h2Get(scheme, "/after"))
			if a := hc.answer(id); a.status() != "200" || a.data != "ok" {
				t.Errorf("a request after %d streams cancelled at once: %+v, want 200 ok", maxStreams, a)
			}
			if f, r := s.H2FloodsEnded(), s.H2RapidResetsEnded(); f != 0 || r != 0 {
				t.Errorf("H2FloodsEnded %d, H2RapidResetsEnded %d; want 0 and 0", f, r)
			}
		})
	}
}

// h2Dial is h2Serve, with the server.
func h2Dial(t *testing.T, h Handler, overTLS bool) (*Server, *h2Client) {
	t.Helper()
	var opts Options
	var cli *tls.Config
	if overTLS {
		opts.TLS, cli = testTLS(t, "h2")
		cli.NextProtos = []string{"h2"}
	} else {
		opts.H2C = true
	}
	s, addr := parkServe(t, h, opts)
	var c net.Conn
	var err error
	if overTLS {
		c, err = tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cli)
	} else {
		c, err = net.DialTimeout("tcp", addr, 5*time.Second)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	hc := &h2Client{t: t, c: c, fr: http2.NewFramer(c, c)}
	hc.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	hc.enc = hpack.NewEncoder(&hc.hb)
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	if err := hc.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return s, hc
}

// download reads stream id's answer, giving back the window of each DATA
// frame as it comes, for the stream and the connection; it returns the
// bytes read and the WINDOW_UPDATEs sent.
func (hc *h2Client) download(id uint32) (n, acks int) {
	hc.t.Helper()
	for {
		f, err := hc.fr.ReadFrame()
		if err != nil {
			hc.t.Fatalf("reading stream %d's answer (%d bytes so far): %v", id, n, err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				hc.fr.WriteSettingsAck()
			}
		case *http2.GoAwayFrame:
			hc.t.Fatalf("GOAWAY (%v) while stream %d was answered (%d bytes so far)", f.ErrCode, id, n)
		case *http2.RSTStreamFrame:
			hc.t.Fatalf("stream %d reset (%v) after %d bytes", f.StreamID, f.ErrCode, n)
		case *http2.DataFrame:
			if l := uint32(len(f.Data())); l > 0 {
				n += int(l)
				hc.fr.WriteWindowUpdate(id, l)
				hc.fr.WriteWindowUpdate(0, l)
				acks += 2
			}
			if f.StreamEnded() {
				return n, acks
			}
		}
	}
}
