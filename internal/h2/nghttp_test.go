package h2_test

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/h2"
)

// nghttp2's client holds a server to RFC 7541's table size rules more
// strictly than x/net's: having lowered SETTINGS_HEADER_TABLE_SIZE, it
// fails a header block that does not begin with a size update. nghttp
// reads answers, several on a connection, with the table it asks for.
func TestNghttpReadsAnswers(t *testing.T) {
	if testing.Short() {
		t.Skip("runs nghttp")
	}
	if _, err := exec.LookPath("nghttp"); err != nil {
		if os.Getenv("GATEHOUSE_NGHTTP_TESTS") == "1" {
			t.Fatal("GATEHOUSE_NGHTTP_TESTS=1 but nghttp is missing (Debian's nghttp2-client)")
		}
		t.Skip("nghttp is missing (Debian's nghttp2-client)")
	}
	t.Parallel()
	ts := startServer(t, &h2.Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Request-Id", r.URL.Path)
		w.Header().Set("Set-Cookie", "s=1")
		w.Header().Set("Cache-Control", "no-store")
		w.Write([]byte("ok"))
	}), nil)
	for _, size := range []string{"4096", "0", "100", "65536"} {
		t.Run("table of "+size, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
			defer cancel()
			out, err := exec.CommandContext(ctx, "nghttp", "-v", "-n", "-m", "3", "--header-table-size="+size,
				"http://"+ts.addr+"/a").CombinedOutput()
			if err != nil {
				t.Fatalf("nghttp: %v\n%s", err, out)
			}
			bad := strings.Contains(string(out), "[ERROR]") || strings.Contains(string(out), "COMPRESSION_ERROR")
			if n := strings.Count(string(out), ":status: 200"); n != 3 || bad {
				t.Fatalf("nghttp read %d answers of 3:\n%s", n, out)
			}
		})
	}
}
