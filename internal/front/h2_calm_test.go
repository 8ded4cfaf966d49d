package front

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/gatehouse/gatehouse/internal/testutil"
)

// Clients that use HTTP/2 as browsers and API clients do keep their
// connection, over TLS and h2c: one that acknowledges each DATA frame it
// reads with a WINDOW_UPDATE for the stream and one for the connection
// (over 2000 of them for a download); one that then cancels every stream
// it may have open, at once, within a second of opening them (a page
// navigated away from) and goes on; PINGs and SETTINGS now and then.
func TestH2WellBehavedClientsKeepTheirConnection(t *testing.T) {
	t.Parallel()
	const big = 16 << 20
	chunk := strings.Repeat("d", 16<<10)
	for _, way := range h2Ways {
		t.Run(way.name, func(t *testing.T) {
			t.Parallel()
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
				hc.Framer.WritePing(false, [8]byte{byte(i)})
				hc.Framer.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 65535})
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
				hc.Framer.WriteRSTStream(cancel, http2.ErrCodeCancel)
			}
			if a := hc.exchange(id, h2Get(scheme, "/after")); a.status() != "200" || a.data != "ok" {
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
	opts, cli := h2Options(t, Options{}, overTLS)
	s, addr := parkServe(t, h, opts)
	return s, h2Open(t, addr, cli)
}

// download reads stream id's answer, giving back the window of each DATA
// frame as it comes, for the stream and the connection; it returns the
// bytes read and the WINDOW_UPDATEs sent.
func (hc *h2Client) download(id uint32) (n, acks int) {
	hc.t.Helper()
	for {
		switch f := hc.next(id, fmt.Sprintf("%d bytes", n)).(type) {
		case *http2.RSTStreamFrame:
			hc.t.Fatalf("stream %d reset (%v) after %d bytes", f.StreamID, f.ErrCode, n)
		case *http2.DataFrame:
			if l := uint32(len(f.Data())); l > 0 {
				n += int(l)
				hc.Framer.WriteWindowUpdate(id, l)
				hc.Framer.WriteWindowUpdate(0, l)
				acks += 2
			}
			if f.StreamEnded() {
				return n, acks
			}
		}
	}
}
