// Package svgchart draws time-series line charts as HTML figures with
// inline SVG: a title, the plot with its grid and axis labels, and a
// legend with each series' latest value. The output needs no script and
// no stylesheet of its own beyond the classes it names (chart, legend,
// s0…s7 for the series' colours). It knows nothing of gatehouse.
//
// Each series' path carries data-series, data-points (how many values it
// has), data-max and data-last, so that a test (or a script) can read
// what a chart shows without parsing its geometry.
package svgchart

import (
	"bytes"
	"fmt"
	"html"
	"html/template"
	"math"
	"strconv"
)

// Series is one line: a value per slot, NaN where there is none (the line
// has a gap there).
type Series struct {
	Name   string
	Values []float64
}

// Chart is what to draw.
type Chart struct {
	// ID is unique in the page; it prefixes the ids that label the SVG.
	ID    string
	Title string
	// Unit follows values in the legend and on the y axis ("ms", "/s").
	Unit   string
	Series []Series
	// Slots is how many x positions the chart has; a series with fewer
	// values is drawn against the right edge (its last value is "now").
	// Zero means the longest series' length.
	Slots int
	// Left labels the left edge of the x axis, e.g. "-5m"; the right
	// edge is "now".
	Left string
}

// Geometry of the plot in the viewBox, in user units. The left margin
// holds the y axis' labels, right-aligned at left-4: 58 fits seven
// characters of 12px text ("2.5k ms", "500 MiB") without clipping.
const (
	width, height = 600, 170
	left, right   = 66, 592
	top, bottom   = 8, 150
)

// Colours is how many distinct series classes there are (s0…s7); later
// series reuse them.
const Colours = 8

// HTML renders c as a <figure>.
func HTML(c Chart) template.HTML {
	var b bytes.Buffer
	render(&b, c)
	return template.HTML(b.String())
}

func render(b *bytes.Buffer, c Chart) {
	slots := c.Slots
	for _, s := range c.Series {
		slots = max(slots, len(s.Values))
	}
	peak, any := 0.0, false
	for _, s := range c.Series {
		for _, v := range s.Values {
			if !math.IsNaN(v) {
				peak, any = math.Max(peak, v), true
			}
		}
	}
	scale := niceCeil(peak)
	id := html.EscapeString(c.ID)
	fmt.Fprintf(b, `<figure class="chart" id="%s" data-chart="%s">`, id, id)
	fmt.Fprintf(b, `<figcaption>%s</figcaption>`, html.EscapeString(c.Title))
	fmt.Fprintf(b, `<svg viewBox="0 0 %d %d" role="img" aria-labelledby="%s-t" aria-describedby="%s-d">`, width, height, id, id)
	fmt.Fprintf(b, `<title id="%s-t">%s</title><desc id="%s-d">%s</desc>`, id, html.EscapeString(c.Title), id, html.EscapeString(describe(c)))
	grid(b, scale, c.Unit, c.Left)
	if !any {
		fmt.Fprintf(b, `<text class="empty" x="%d" y="%d" text-anchor="middle">no data yet</text>`, (left+right)/2, (top+bottom)/2)
	}
	for i, s := range c.Series {
		path(b, i, s, slots, scale)
	}
	b.WriteString(`</svg>`)
	legend(b, c)
	b.WriteString(`</figure>`)
}

// grid draws the horizontal lines at 0, half and the top of the scale,
// their labels, and the x axis' two ends.
func grid(b *bytes.Buffer, scale float64, unit, leftLabel string) {
	for _, f := range []float64{0, 0.5, 1} {
		y := yOf(f*scale, scale)
		fmt.Fprintf(b, `<line class="grid" x1="%d" x2="%d" y1="%.1f" y2="%.1f"/>`, left, right, y, y)
		fmt.Fprintf(b, `<text class="axis" x="%d" y="%.1f" text-anchor="end">%s</text>`, left-4, y+4, html.EscapeString(Format(f*scale)+unitSuffix(unit)))
	}
	fmt.Fprintf(b, `<text class="axis" x="%d" y="%d">%s</text>`, left, height-4, html.EscapeString(leftLabel))
	fmt.Fprintf(b, `<text class="axis" x="%d" y="%d" text-anchor="end">now</text>`, right, height-4)
}

// path draws a series; a NaN starts a new sub-path, so gaps stay gaps,
// and a lone value is a dot (a zero-length segment with a round cap).
func path(b *bytes.Buffer, i int, s Series, slots int, scale float64) {
	var d bytes.Buffer
	n, last, peak := 0, math.NaN(), math.NaN()
	pen := false
	offset := slots - len(s.Values)
	dx := float64(right-left) / float64(max(slots-1, 1))
	for j, v := range s.Values {
		if math.IsNaN(v) {
			pen = false
			continue
		}
		x, y := float64(left)+float64(offset+j)*dx, yOf(v, scale)
		if pen {
			fmt.Fprintf(&d, "L%.1f %.1f", x, y)
		} else {
			fmt.Fprintf(&d, "M%.1f %.1fh0", x, y)
			pen = true
		}
		n, last = n+1, v
		if math.IsNaN(peak) || v > peak {
			peak = v
		}
	}
	fmt.Fprintf(b, `<path class="s%d" data-series="%s" data-points="%d" data-max="%s" data-last="%s" d="%s"/>`,
		i%Colours, html.EscapeString(s.Name), n, num(peak), num(last), d.String())
}

func legend(b *bytes.Buffer, c Chart) {
	b.WriteString(`<ul class="legend">`)
	for i, s := range c.Series {
		last := math.NaN()
		for _, v := range s.Values {
			if !math.IsNaN(v) {
				last = v
			}
		}
		val := "–"
		if !math.IsNaN(last) {
			val = Format(last) + unitSuffix(c.Unit)
		}
		fmt.Fprintf(b, `<li data-series="%s"><span class="swatch s%d" aria-hidden="true"></span>%s <b>%s</b></li>`,
			html.EscapeString(s.Name), i%Colours, html.EscapeString(s.Name), html.EscapeString(val))
	}
	b.WriteString(`</ul>`)
}

// describe is the chart's text alternative: each series' latest and
// highest value.
func describe(c Chart) string {
	var b bytes.Buffer
	b.WriteString(c.Title)
	if c.Left != "" {
		b.WriteString(" over the last " + trimMinus(c.Left))
	}
	b.WriteString(".")
	for _, s := range c.Series {
		last, peak := math.NaN(), math.NaN()
		for _, v := range s.Values {
			if !math.IsNaN(v) {
				last = v
				if math.IsNaN(peak) || v > peak {
					peak = v
				}
			}
		}
		if math.IsNaN(last) {
			continue
		}
		fmt.Fprintf(&b, " %s: now %s, peak %s%s.", s.Name, Format(last), Format(peak), unitSuffix(c.Unit))
	}
	return b.String()
}

func trimMinus(s string) string {
	if len(s) > 0 && s[0] == '-' {
		return s[1:]
	}
	return s
}

func unitSuffix(unit string) string {
	if unit == "" || unit[0] == '/' || unit == "%" {
		return unit
	}
	return " " + unit
}

func yOf(v, scale float64) float64 {
	return float64(bottom) - v/scale*float64(bottom-top)
}

// niceCeil is the smallest 1, 2, 2.5 or 5 times a power of ten at least
// v (1 for nothing), so that the grid's labels are round.
func niceCeil(v float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= v*(1-1e-9) {
			return m * p
		}
	}
	return 10 * p
}

// Format writes v compactly: 3 significant digits, k and M for
// thousands and millions.
func Format(v float64) string {
	switch a := math.Abs(v); {
	case math.IsNaN(v):
		return "–"
	case a >= 1e6:
		return strconv.FormatFloat(v/1e6, 'g', 3, 64) + "M"
	case a >= 1e3:
		return strconv.FormatFloat(v/1e3, 'g', 3, 64) + "k"
	case a >= 100 || a == 0:
		return strconv.FormatFloat(math.Round(v), 'f', -1, 64)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}

// num is a data attribute's number: plain, "" for none.
func num(v float64) string {
	if math.IsNaN(v) {
		return ""
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
