package front

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/http2"
)

// An HTTP/2 connection's first SETTINGS carry the front's limits, which
// the h2 server then enforces: frames of at most the protocol's initial
// 16 KiB (the framer keeps a read buffer as large as the largest frame
// read, for the connection's life) and maxStreams streams at once.
func TestH2AdvertisesItsLimits(t *testing.T) {
	t.Parallel()
	addr := limServe(t, protoStub(), Options{H2C: true})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	f, err := fr.ReadFrame()
	if err != nil {
		t.Fatalf("reading the server's first frame: %v", err)
	}
	sf, ok := f.(*http2.SettingsFrame)
	if !ok || sf.IsAck() {
		t.Fatalf("the server's first frame is %v; want its SETTINGS", f)
	}
	got := map[http2.SettingID]uint32{}
	sf.ForeachSetting(func(s http2.Setting) error {
		if s.ID == http2.SettingMaxFrameSize || s.ID == http2.SettingMaxConcurrentStreams {
			got[s.ID] = s.Val
		}
		return nil
	})
	want := map[http2.SettingID]uint32{
		http2.SettingMaxFrameSize:         16 << 10,
		http2.SettingMaxConcurrentStreams: maxStreams,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("SETTINGS (-want +got):\n%s", diff)
	}
}
