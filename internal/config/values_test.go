package config

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
)

// decodeYAML decodes the YAML value src into out with the config decoder,
// returning its problems (path "v").
func decodeYAML(t *testing.T, src string, out any) []string {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte("v: "+src), &doc); err != nil {
		t.Fatalf("yaml %q: %v", src, err)
	}
	d := newDecoder("")
	d.decode(doc.Content[0].Content[1], reflect.ValueOf(out).Elem(), "v")
	return errLines(d.errs.err())
}

func TestDuration(t *testing.T) {
	checkDecodes(t, []decodeCase[Duration]{
		{"30s", Duration(30 * time.Second), ""},
		{"1m30s", Duration(90 * time.Second), ""},
		{"250ms", Duration(250 * time.Millisecond), ""},
		{`"0"`, 0, ""},
		{"0", 0, ""},
		{"0s", 0, ""},
		{"30", 0, `line 1: v: "30" needs a unit, e.g. 30s`},
		{`"30"`, 0, `line 1: v: "30" needs a unit, e.g. 30s`},
		{"1.5", 0, `line 1: v: "1.5" needs a unit, e.g. 30s`},
		{"-5s", 0, `line 1: v: duration "-5s" must not be negative`},
		{"-1", 0, `line 1: v: "-1" needs a unit, e.g. 30s`},
		{"soon", 0, `line 1: v: invalid duration "soon", want e.g. 30s, 1m30s or 250ms`},
		{"[1s]", 0, `line 1: v: must be a duration, got a list`},
	})
}

func TestSize(t *testing.T) {
	checkDecodes(t, []decodeCase[Size]{
		{"1024", 1024, ""},
		{`"1024"`, 1024, ""},
		{"0", 0, ""},
		{"512MiB", 512 << 20, ""},
		{"1GiB", 1 << 30, ""},
		{"4KiB", 4096, ""},
		{"10MB", 10_000_000, ""},
		{"1KB", 1000, ""},
		{"2GB", 2_000_000_000, ""},
		{"100B", 100, ""},
		{"512mib", 512 << 20, ""},
		{"1kb", 1000, ""},
		{"512 MiB", 512 << 20, ""},
		{"1.5KiB", 1536, ""},
		{"1.5", 0, `line 1: v: size "1.5" is not a whole number of bytes`},
		{"-1MiB", 0, `line 1: v: size "-1MiB" must not be negative`},
		{"10TB", 0, `line 1: v: invalid size "10TB", want e.g. 512MiB, 10MB or 1024`},
		{"MiB", 0, `line 1: v: invalid size "MiB", want e.g. 512MiB, 10MB or 1024`},
		{"99999999999GiB", 0, `line 1: v: size "99999999999GiB" is too large`},
	})
}

func TestStatusRange(t *testing.T) {
	checkDecodes(t, []decodeCase[StatusRange]{
		{`"200-399"`, StatusRange{200, 399}, ""},
		{"200-399", StatusRange{200, 399}, ""},
		{`"500"`, StatusRange{500, 500}, ""},
		{"500", StatusRange{500, 500}, ""},
		{`"100 - 599"`, StatusRange{100, 599}, ""},
		{"600", StatusRange{}, `line 1: v: status range 600 must be within 100-599`},
		{"99-200", StatusRange{}, `line 1: v: status range 99-200 must be within 100-599`},
		{"399-200", StatusRange{}, `line 1: v: status range 399-200: 399 is greater than 200`},
		{"5xx", StatusRange{}, `line 1: v: invalid status range "5xx", want e.g. "200-399" or "500"`},
		{"200-", StatusRange{}, `line 1: v: invalid status range "200-", want e.g. "200-399" or "500"`},
	})
}

func TestCommand(t *testing.T) {
	checkDecodes(t, []decodeCase[Command]{
		{"node server.js", Command{"sh", "-c", "node server.js"}, ""},
		{`"exec gunicorn -b :$PORT app:app"`, Command{"sh", "-c", "exec gunicorn -b :$PORT app:app"}, ""},
		{"[node, server.js]", Command{"node", "server.js"}, ""},
		{"[sleep, 10]", Command{"sleep", "10"}, ""},
		{`""`, Command{}, ""},
		{"[]", Command{}, ""},
		{"[node, [x]]", Command{"node"}, `line 1: v[1]: must be a string, got a list`},
		{"{run: node}", nil, `line 1: v: must be a string or a list of strings, got a mapping`},
	})
}

// decodeCase is a value in YAML, what it decodes to, and the problem
// decoding it reports ("" for none).
type decodeCase[T any] struct {
	yaml    string
	want    T
	wantErr string
}

// checkDecodes decodes each case's YAML into a T and checks the value and
// the problem.
func checkDecodes[T any](t *testing.T, tests []decodeCase[T]) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.yaml, func(t *testing.T) {
			var got T
			errs := decodeYAML(t, tt.yaml, &got)
			var wantErrs []string
			if tt.wantErr != "" {
				wantErrs = []string{tt.wantErr}
			}
			if diff := cmp.Diff(wantErrs, errs); diff != "" {
				t.Errorf("errors mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("value mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestTextRoundTrip: values print the way the config spells them, so JSON
// output and flags read naturally, and read back to the same value.
func TestTextRoundTrip(t *testing.T) {
	v := struct {
		D Duration
		S Size
		R StatusRange
	}{Duration(90 * time.Second), 512 << 20, StatusRange{200, 399}}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"D":"1m30s","S":"512MiB","R":"200-399"}`; string(b) != want {
		t.Errorf("json = %s, want %s", b, want)
	}
	var back struct {
		D Duration
		S Size
		R StatusRange
	}
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(v, back); diff != "" {
		t.Errorf("round trip mismatch (-want +got):\n%s", diff)
	}
	if got := Size(1000).String(); got != "1000" {
		t.Errorf("Size(1000) = %q, want 1000", got)
	}
}

func TestSuggest(t *testing.T) {
	known := map[string]int{"health": 0, "routes": 1, "env": 2, "dir": 3}
	tests := []struct{ key, want string }{
		{"helth", ` (did you mean "health"?)`},
		{"heatlh", ` (did you mean "health"?)`},
		{"route", ` (did you mean "routes"?)`},
		{"envv", ` (did you mean "env"?)`},
		{"frobnicate", ""},
		{"hx", ""},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			if got := suggest(tt.key, known); got != tt.want {
				t.Errorf("suggest(%q) = %q, want %q", tt.key, got, tt.want)
			}
		})
	}
}
