package svgchart

import (
	"math"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testutil"
)

var nan = math.NaN()

// The drawing of a chart with two series, a gap and a lone point is
// golden: the geometry, the labels, the legend and the text alternative.
func TestChartGolden(t *testing.T) {
	tests := []struct {
		name  string
		chart Chart
	}{
		{"latency", Chart{ID: "web-latency", Title: "Latency", Unit: "ms", Left: "-5m", Slots: 8, Series: []Series{
			{Name: "p50", Values: []float64{1, 2, nan, 3, 2.5}},
			{Name: "p99", Values: []float64{4, 9.5, nan, 7, nan, 6}},
		}}},
		{"empty", Chart{ID: "all-rps", Title: "Requests per second", Unit: "/s", Left: "-1h", Slots: 300, Series: []Series{
			{Name: "requests", Values: []float64{nan, nan}},
		}}},
		{"escaped", Chart{ID: `a"<b>`, Title: `<script>x</script>`, Unit: "%", Left: "-5m", Series: []Series{
			{Name: `"><img src=x>`, Values: []float64{50}},
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := strings.ReplaceAll(string(HTML(tt.chart)), "><", ">\n<")
			testutil.Golden(t, "testdata/"+tt.name+".golden", got)
		})
	}
}

// What a chart draws from hostile names stays text: no element or
// attribute of the input's making.
func TestChartEscapes(t *testing.T) {
	got := string(HTML(Chart{ID: "x", Title: "<script>", Series: []Series{{Name: `"><script>alert(1)</script>`, Values: []float64{1}}}}))
	if strings.Contains(got, "<script") {
		t.Errorf("chart carries a script element:\n%s", got)
	}
}

// The data attributes say what each series shows.
func TestChartDataAttributes(t *testing.T) {
	got := string(HTML(Chart{ID: "c", Series: []Series{{Name: "s", Values: []float64{nan, 3, 7, nan, 2}}}}))
	want := `data-series="s" data-points="3" data-max="7" data-last="2"`
	if !strings.Contains(got, want) {
		t.Errorf("chart lacks %s:\n%s", want, got)
	}
}

func TestNiceCeil(t *testing.T) {
	for _, tt := range []struct{ in, want float64 }{
		{0, 1}, {-3, 1}, {nan, 1}, {math.Inf(1), 1},
		{0.3, 0.5}, {1, 1}, {1.01, 2}, {2.2, 2.5}, {3, 5}, {7, 10}, {24, 25}, {101, 200}, {4800, 5000},
	} {
		if got := niceCeil(tt.in); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("niceCeil(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestFormat(t *testing.T) {
	for _, tt := range []struct {
		in   float64
		want string
	}{
		{0, "0"}, {0.125, "0.125"}, {2.5, "2.5"}, {12.34, "12.3"}, {250.4, "250"}, {1234, "1.23k"}, {2.5e6, "2.5M"}, {nan, "–"},
	} {
		if got := Format(tt.in); got != tt.want {
			t.Errorf("Format(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
