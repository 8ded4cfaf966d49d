package http1

import (
	"errors"
	"math/rand/v2"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCleanPath(t *testing.T) {
	type result struct {
		Clean   string
		Changed bool
		Err     bool
	}
	unchanged := func(p string) result { return result{Clean: p} }
	cleaned := func(p string) result { return result{Clean: p, Changed: true} }
	refused := result{Err: true}

	tests := []struct {
		name string
		in   string
		want result
	}{
		// No dot segment: returned as is.
		{"root", "/", unchanged("/")},
		{"double slash", "//", unchanged("//")},
		{"plain", "/api/v1/users/42", unchanged("/api/v1/users/42")},
		{"trailing slash", "/public/", unchanged("/public/")},
		{"empty segments", "/a//b///", unchanged("/a//b///")},
		{"dots inside names", "/a/.well-known/..b/c../...", unchanged("/a/.well-known/..b/c../...")},
		{"encoded dot inside name", "/a/%2ebashrc/x%2E%2e", unchanged("/a/%2ebashrc/x%2E%2e")},
		{"encoded slash kept", "/a%2Fb/c%2fd", unchanged("/a%2Fb/c%2fd")},
		{"encoded slash without dot piece", "/a/..a%2fb./x", unchanged("/a/..a%2fb./x")},
		{"raw backslash without dot piece", `/a\b/c\`, unchanged(`/a\b/c\`)},
		{"encoded backslash without dot piece", "/a%5cb", unchanged("/a%5cb")},
		{"escapes and high bytes", "/caf%C3%A9/\xff~!$&'()*+,;=:@", unchanged("/caf%C3%A9/\xff~!$&'()*+,;=:@")},
		{"double encoded dots are a name", "/public/%252e%252e/admin", unchanged("/public/%252e%252e/admin")},
		{"three dots", "/a/.../b", unchanged("/a/.../b")},

		// Dot segments, literal.
		{"single dot", "/a/./b", cleaned("/a/b")},
		{"dot dot", "/public/../admin/secret.txt", cleaned("/admin/secret.txt")},
		{"above root", "/../a", cleaned("/a")},
		{"far above root", "/a/b/../../../c", cleaned("/c")},
		{"trailing dot dot", "/a/b/..", cleaned("/a/")},
		{"trailing dot", "/a/b/.", cleaned("/a/b/")},
		{"only dot", "/.", cleaned("/")},
		{"only dot dot", "/..", cleaned("/")},
		{"dot dot then slash", "/a/../", cleaned("/")},
		{"dot dot over empty segment", "/a//../b", cleaned("/a/b")},
		{"empty segment kept", "/a/..//b", cleaned("//b")},
		{"dot dot over double slash", "//..", cleaned("/")},
		{"rfc example", "/a/b/c/./../../g", cleaned("/a/g")},
		{"rfc example mid", "/mid/content=5/../6", cleaned("/mid/6")},

		// Dot segments, percent-encoded in any case.
		{"encoded dot", "/%2e", cleaned("/")},
		{"encoded dot upper", "/a/%2E/b", cleaned("/a/b")},
		{"encoded dot dot", "/public/%2e%2e/admin/secret.txt", cleaned("/admin/secret.txt")},
		{"encoded dot dot upper", "/public/%2E%2E/admin/secret.txt", cleaned("/admin/secret.txt")},
		{"encoded dot dot mixed case", "/public/%2E%2e/admin", cleaned("/admin")},
		{"half encoded first", "/public/%2e./admin", cleaned("/admin")},
		{"half encoded second", "/public/.%2e/admin", cleaned("/admin")},
		{"half encoded second upper", "/public/.%2E/admin", cleaned("/admin")},
		{"encoded trailing dot dot", "/public/x/%2e%2e", cleaned("/public/")},
		{"other escapes kept", "/a%2Fb/%2e%2e/c%2fd/./e%41", cleaned("/c%2fd/e%41")},

		// Dot pieces behind an encoded or raw separator: ambiguous.
		// Servlet containers (Tomcat, Jetty) read ";..." as a path
		// parameter, so "..;" is ".." to them.
		{"dot dot path parameter", "/public/..;/admin/secret.txt", refused},
		{"dot path parameter", "/public/.;x/a", refused},
		{"encoded path parameter", "/public/%2e%2e%3bjsessionid=1/admin", refused},
		{"path parameter kept", "/a;v=1/b", unchanged("/a;v=1/b")},
		// A parameter ends at the next raw '/' to a servlet container,
		// at an encoded one to an app that decodes first.
		{"encoded slash in path parameter", "/;x%2Fy/admin/secret", refused},
		{"encoded slash in path parameter lower", "/a;b%2fc", refused},
		{"encoded slash in later path parameter", "/a;b;c%2Fd/e", refused},
		{"encoded slash before path parameter", "/a%2Fb;c/d", unchanged("/a%2Fb;c/d")},
		{"encoded slash after path parameter's segment", "/a;b/c%2Fd", unchanged("/a;b/c%2Fd")},
		{"encoded semicolon before encoded slash", "/a%3Bb%2Fc", unchanged("/a%3Bb%2Fc")},
		{"dot dot encoded slash", "/public/..%2fadmin/secret.txt", refused},
		{"dot dot encoded slash upper", "/public/..%2Fadmin", refused},
		{"all encoded", "/public/%2E%2E%2Fadmin", refused}, // decodes to "../admin": an error, not "/admin" nor "/public/..%2Fadmin"
		{"all encoded lower", "/public/%2e%2e%2fadmin", refused},
		{"encoded backslash", "/public/%2e%2e%5cadmin", refused},
		{"encoded backslash upper", "/public/..%5Cadmin", refused},
		{"raw backslash", `/public/..\admin`, refused},
		{"raw backslash after", `/public/a\..`, refused},
		{"raw backslash dot", `/public/.\admin`, refused},
		{"dot dot inside encoded slashes", "/public/a%2f..%2fb", refused},
		{"trailing encoded slash", "/public/..%2f", refused},
		{"half encoded with slash", "/public/.%2e%2f", refused},

		// Bytes and escapes with no single meaning.
		{"encoded nul", "/a%00b", refused},
		{"raw nul", "/a\x00b", refused},
		{"raw newline", "/a\nb", refused},
		{"raw tab", "/a\tb", refused},
		{"raw del", "/a\x7fb", refused},
		{"truncated escape", "/a%2", refused},
		{"lone percent", "/a%", refused},
		{"non hex escape", "/a%zz", refused},
		{"half hex escape", "/a%2g", refused},
		{"invalid escape before dot dot", "/%/..", refused},
		{"error after a dot segment", "/a/../b%", refused},

		// Not an absolute path.
		{"empty", "", refused},
		{"relative", "a/b", refused},
		{"relative dot dot", "../a", refused},
		{"absolute form", "http://x/a", refused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clean, changed, err := CleanPath(tt.in)
			got := result{Clean: clean, Changed: changed, Err: err != nil}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("CleanPath(%q) mismatch (-want +got):\n%s\nerr: %v", tt.in, diff, err)
			}
			if err != nil && !errors.Is(err, ErrAmbiguousPath) {
				t.Errorf("CleanPath(%q) error %v does not wrap ErrAmbiguousPath", tt.in, err)
			}
			if err == nil {
				checkCleanPathResult(t, tt.in, clean, changed)
			}
		})
	}
}

// TestCleanPathOracle checks CleanPath against a second implementation of its
// rules built from net/url and RFC 3986's algorithm as printed, on random
// paths from an alphabet chosen to hit dot segments and separators.
func TestCleanPathOracle(t *testing.T) {
	alphabet := []string{"a", ".", "..", "%2e", "%2E%2e", "/", "%2f", `\`, ";", "b"}
	r := rand.New(rand.NewPCG(1, 2))
	var ok, refused int
	for range 50000 {
		var sb strings.Builder
		sb.WriteByte('/')
		for range r.IntN(12) {
			sb.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		in := sb.String()
		clean, changed, err := CleanPath(in)
		if err != nil {
			refused++
		} else {
			ok++
			checkCleanPathResult(t, in, clean, changed)
		}
		compareWithOracle(t, in, clean, changed, err)
		if t.Failed() {
			t.Fatalf("stopping at input %q", in)
		}
	}
	// Both outcomes must be common, or the alphabet tests too little.
	if ok < 10000 || refused < 10000 {
		t.Errorf("ok=%d refused=%d: alphabet no longer exercises both outcomes", ok, refused)
	}
}

func TestCleanPathPlainDoesNotAllocate(t *testing.T) {
	for _, p := range []string{"/api/v1/users/42", "/", "//", "/a%2Fb/c", "/public/.well-known/x"} {
		allocs := testing.AllocsPerRun(100, func() {
			if _, changed, err := CleanPath(p); changed || err != nil {
				t.Fatalf("CleanPath(%q) changed=%v err=%v", p, changed, err)
			}
		})
		if allocs != 0 {
			t.Errorf("CleanPath(%q): %v allocs, want 0", p, allocs)
		}
	}
}

func BenchmarkCleanPath(b *testing.B) {
	for _, bm := range []struct{ name, path string }{
		{"plain", "/api/v1/users/42"},
		{"dotdot", "/public/%2e%2e/admin/secret.txt"},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := CleanPath(bm.path); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// FuzzCleanPath holds CleanPath to its invariants and to the oracle on
// arbitrary input. Seeds beyond these are in testdata/fuzz/FuzzCleanPath.
func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{
		"/", "//", "/api/v1/users/42", "/a/./b", "/a/b/../../../c", "/%2e",
		"/public/%2e%2e/admin", "/public/%2E%2E%2Fadmin", "/public/..%2fadmin",
		`/public/..\admin`, "/public/.%2e/x", "/a%00", "/a%zz", "a/../b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		clean, changed, err := CleanPath(in)
		if err != nil {
			if !errors.Is(err, ErrAmbiguousPath) {
				t.Fatalf("CleanPath(%q) error %v does not wrap ErrAmbiguousPath", in, err)
			}
			if clean != "" || changed {
				t.Fatalf("CleanPath(%q) = %q, %v with error %v", in, clean, changed, err)
			}
		} else {
			checkCleanPathResult(t, in, clean, changed)
		}
		compareWithOracle(t, in, clean, changed, err)
	})
}

// checkCleanPathResult checks what holds of every successful CleanPath: the
// result is absolute, has no dot segment, is a fixed point, and is the input
// itself exactly when nothing changed.
func checkCleanPathResult(t *testing.T, in, clean string, changed bool) {
	t.Helper()
	if !strings.HasPrefix(clean, "/") {
		t.Errorf("CleanPath(%q) = %q: does not start with '/'", in, clean)
	}
	if changed == (clean == in) {
		t.Errorf("CleanPath(%q) = %q, changed=%v", in, clean, changed)
	}
	decoded := strings.NewReplacer("%2e", ".", "%2E", ".").Replace(clean)
	for _, seg := range strings.Split(decoded, "/") {
		if seg == "." || seg == ".." {
			t.Errorf("CleanPath(%q) = %q: still has a dot segment", in, clean)
		}
	}
	again, changedAgain, err := CleanPath(clean)
	if again != clean || changedAgain || err != nil {
		t.Errorf("CleanPath(CleanPath(%q) = %q) = %q, %v, %v; want it unchanged", in, clean, again, changedAgain, err)
	}
}

// compareWithOracle checks CleanPath's outcome on in against oracleCleanPath.
func compareWithOracle(t *testing.T, in, clean string, changed bool, err error) {
	t.Helper()
	wantClean, wantChanged, wantErr := oracleCleanPath(in)
	if (err != nil) != wantErr {
		t.Errorf("CleanPath(%q) error = %v, oracle wants error: %v", in, err, wantErr)
		return
	}
	if err == nil && (clean != wantClean || changed != wantChanged) {
		t.Errorf("CleanPath(%q) = %q, %v; oracle says %q, %v", in, clean, changed, wantClean, wantChanged)
	}
}

// oracleCleanPath restates CleanPath's contract as plainly as possible, with
// net/url doing the decoding and rfcRemoveDotSegments the removal, so that a
// mistake in CleanPath's single-pass scanner shows up as a disagreement.
func oracleCleanPath(in string) (clean string, changed, isErr bool) {
	if !strings.HasPrefix(in, "/") || strings.Contains(in, "%00") {
		return "", false, true
	}
	for i := 0; i < len(in); i++ {
		if in[i] < 0x20 || in[i] == 0x7f {
			return "", false, true
		}
	}
	segs := strings.Split(in[1:], "/")
	for i, seg := range segs {
		dec, err := url.PathUnescape(seg)
		if err != nil {
			return "", false, true
		}
		if _, param, ok := strings.Cut(seg, ";"); ok && strings.Contains(strings.ToLower(param), "%2f") {
			return "", false, true
		}
		if strings.ContainsAny(dec, `/\;`) {
			for _, piece := range strings.FieldsFunc(dec, func(r rune) bool { return r == '/' || r == '\\' || r == ';' }) {
				if piece == "." || piece == ".." {
					return "", false, true
				}
			}
		}
		if dec == "." || dec == ".." {
			segs[i] = dec
			changed = true
		}
	}
	if !changed {
		return in, false, false
	}
	return rfcRemoveDotSegments("/" + strings.Join(segs, "/")), true, false
}

// rfcRemoveDotSegments is RFC 3986 §5.2.4 transcribed step by step.
func rfcRemoveDotSegments(input string) string {
	var output string
	removeLast := func() {
		if i := strings.LastIndexByte(output, '/'); i >= 0 {
			output = output[:i]
		} else {
			output = ""
		}
	}
	for input != "" {
		switch {
		case strings.HasPrefix(input, "../"): // A
			input = input[3:]
		case strings.HasPrefix(input, "./"): // A
			input = input[2:]
		case strings.HasPrefix(input, "/./"): // B
			input = "/" + input[3:]
		case input == "/.": // B
			input = "/"
		case strings.HasPrefix(input, "/../"): // C
			input = "/" + input[4:]
			removeLast()
		case input == "/..": // C
			input = "/"
			removeLast()
		case input == "." || input == "..": // D
			input = ""
		default: // E
			j := strings.IndexByte(input[1:], '/')
			if j < 0 {
				output += input
				input = ""
			} else {
				output += input[:j+1]
				input = input[j+1:]
			}
		}
	}
	return output
}
