package compress

import (
	"testing"
)

func TestNegotiatePicksHighestQThenServerOrder(t *testing.T) {
	def := mustNew(t, Options{})
	gzipFirst := mustNew(t, Options{Encodings: []string{"gzip", "br"}})
	tests := []struct {
		name string
		c    *Compressor
		ae   []string
		want string
	}{
		{"no header", def, nil, ""},
		{"empty header", def, []string{""}, ""},
		{"gzip only", def, []string{"gzip"}, Gzip},
		{"browser list prefers zstd by server order", def, []string{"gzip, deflate, br, zstd"}, Zstd},
		{"browser list without zstd", def, []string{"gzip, deflate, br"}, Gzip},
		{"brotli only", def, []string{"br"}, Brotli},
		{"brotli weighted above gzip", def, []string{"gzip;q=0.9, br"}, Brotli},
		{"upper case token", def, []string{"GZIP"}, Gzip},
		{"mixed case token", def, []string{"Br"}, Brotli},
		{"spaces around tokens and params", def, []string{"  gzip ;  q=0.5 ,  br ; q=0.4 "}, Gzip},
		{"tabs", def, []string{"gzip;q=0.2,\tbr\t;\tq=0.3"}, Brotli},
		{"higher q beats server order", def, []string{"zstd;q=0.5, gzip;q=1.0"}, Gzip},
		{"upper case Q parameter", def, []string{"zstd;Q=0.5, gzip;Q=0.6"}, Gzip},
		{"tie resolved by server order", def, []string{"br;q=0.5, gzip;q=0.5"}, Gzip},
		{"three-way tie resolved by server order", def, []string{"br;q=0.5, gzip;q=0.5, zstd;q=0.5"}, Zstd},
		{"tie resolved by configured order", gzipFirst, []string{"br;q=0.5, gzip;q=0.5"}, Gzip},
		{"configured order omits zstd", gzipFirst, []string{"zstd"}, ""},
		{"identity;q=0 alone", def, []string{"identity;q=0"}, ""},
		{"identity;q=0 with gzip", def, []string{"identity;q=0, gzip"}, Gzip},
		{"identity preferred over gzip", def, []string{"identity, gzip;q=0.5"}, ""},
		{"identity equal to gzip goes to gzip", def, []string{"identity;q=0.5, gzip;q=0.5"}, Gzip},
		{"star;q=0 alone", def, []string{"*;q=0"}, ""},
		{"star accepts all", def, []string{"*"}, Zstd},
		{"star with zstd refused", def, []string{"*, zstd;q=0"}, Gzip},
		{"star weight below named", def, []string{"*;q=0.1, gzip;q=0.2"}, Gzip},
		{"gzip;q=0 alone", def, []string{"gzip;q=0"}, ""},
		{"gzip;q=0 and star", def, []string{"gzip;q=0, *"}, Zstd},
		{"all refused and star", def, []string{"gzip;q=0, br;q=0, zstd;q=0, *"}, ""},
		{"unknown tokens only", def, []string{"compress, deflate, sdch, exi"}, ""},
		{"unknown tokens around a known one", def, []string{"compress, gzip, sdch"}, Gzip},
		{"x-gzip is gzip", def, []string{"x-gzip"}, Gzip},
		{"several field lines", def, []string{"br", "zstd"}, Zstd},
		{"several field lines with q", def, []string{"gzip;q=0.9", "zstd;q=0.8"}, Gzip},
		{"token repeated keeps best q", def, []string{"gzip;q=0.1, br;q=0.5, gzip;q=0.9"}, Gzip},
		{"q above 1 is ignored", def, []string{"gzip;q=2, br;q=0.1"}, Brotli},
		{"q with four decimals is ignored", def, []string{"gzip;q=0.1234"}, ""},
		{"q not a number is ignored", def, []string{"gzip;q=abc, br"}, Brotli},
		{"q 1.001 is ignored", def, []string{"gzip;q=1.001"}, ""},
		{"q 1.000 is 1", def, []string{"gzip;q=1.000, zstd;q=0.999"}, Gzip},
		{"q empty is ignored", def, []string{"gzip;q="}, ""},
		{"lowest positive q still accepts", def, []string{"zstd;q=0.001"}, Zstd},
		{"q 0.000 refuses", def, []string{"zstd;q=0.000"}, ""},
		{"other parameters are skipped", def, []string{"gzip;level=1;q=0.3, br;q=0.2"}, Gzip},
		{"empty elements", def, []string{",, gzip ,,", ","}, Gzip},
		{"semicolon without params", def, []string{"br;"}, Brotli},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.c.Negotiate(tt.ae); got != tt.want {
				t.Errorf("Negotiate(%q) = %q, want %q", tt.ae, got, tt.want)
			}
		})
	}
}

func TestNegotiateDoesNotAllocate(t *testing.T) {
	c := mustNew(t, Options{})
	ae := []string{"gzip, deflate, br;q=0.9, zstd;q=0.8", "identity;q=0.1"}
	if n := testing.AllocsPerRun(100, func() { c.Negotiate(ae) }); n != 0 {
		t.Errorf("Negotiate allocates %v times per call, want 0", n)
	}
}
