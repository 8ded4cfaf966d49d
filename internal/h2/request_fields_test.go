package h2_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/gatehouse/gatehouse/internal/h2"
)

// A request's fields reach the handler's Header whole, in the order
// sent: a name sent again, after others or beside them, adds its value
// and changes no other field's.
func TestRequestFieldsKeepEveryValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		fields []string
		want   http.Header
	}{
		{"one each", []string{"a", "1", "b", "2", "c", "3"},
			http.Header{"A": {"1"}, "B": {"2"}, "C": {"3"}}},
		{"a name again after others", []string{"a", "1", "b", "2", "a", "3", "c", "4"},
			http.Header{"A": {"1", "3"}, "B": {"2"}, "C": {"4"}}},
		{"a name thrice, side by side", []string{"x", "1", "x", "2", "x", "3", "y", "4"},
			http.Header{"X": {"1", "2", "3"}, "Y": {"4"}}},
		{"names alike but for case", []string{"accept", "a", "x-b", "b", "accept", "c"},
			http.Header{"Accept": {"a", "c"}, "X-B": {"b"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := make(chan http.Header, 1)
			ts := startServer(t, &h2.Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got <- r.Header.Clone()
			}), nil)
			c := dialRaw(t, ts)
			c.get(1, "/", tt.fields...)
			c.readAnswer(1)
			var h http.Header
			select {
			case h = <-got:
			case <-time.After(waitLimit):
				t.Fatal("the handler did not report")
			}
			if diff := cmp.Diff(tt.want, h); diff != "" {
				t.Errorf("Header (-want +got):\n%s", diff)
			}
		})
	}
}

// An answer carries the fields its handler set and no other: none of an
// answer before it on the connection, or on another, whatever the
// server keeps between streams.
func TestAnswerCarriesOnlyItsOwnFields(t *testing.T) {
	t.Parallel()
	ts := startServer(t, &h2.Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v := r.Header.Get("Set"); v != "" {
			w.Header().Set("X-Set", v)
			w.Header().Add("X-Many", "1")
			w.Header().Add("X-Many", "2")
		}
		w.WriteHeader(http.StatusNoContent)
	}), nil)
	c := dialRaw(t, ts)
	for i, set := range []string{"a", "", "b", "", ""} {
		id := uint32(2*i + 1)
		if set != "" {
			c.get(id, "/", "set", set)
		} else {
			c.get(id, "/")
		}
		a := c.readAnswer(id)
		got := map[string][]string{"x-set": a.values(0, "x-set"), "x-many": a.values(0, "x-many")}
		want := map[string][]string{"x-set": nil, "x-many": nil}
		if set != "" {
			want = map[string][]string{"x-set": {set}, "x-many": {"1", "2"}}
		}
		if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("answer %d (set %q), fields (-want +got):\n%s", i, set, diff)
		}
	}
}
