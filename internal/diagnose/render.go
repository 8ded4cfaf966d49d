package diagnose

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Render writes the report for people: most important first, each
// finding with its evidence and fix; past findings (what they name no
// longer runs, or has recovered) last, under a heading of their own.
func Render(w io.Writer, r Report) {
	fmt.Fprintf(w, "gatehouse diagnose: %s to %s (%s), %d requests, %d 5xx\n\n",
		r.Since.Local().Format("2006-01-02 15:04:05"), r.Until.Local().Format("15:04:05"),
		r.Until.Sub(r.Since).Round(time.Second), r.Requests, r.Errors)
	if len(r.Findings) == 0 {
		fmt.Fprintln(w, "No problems found.")
		return
	}
	past := false
	for i, f := range r.Findings {
		if f.Past && !past {
			past = true
			fmt.Fprintln(w, "Past: what these name no longer runs, or has recovered.")
			fmt.Fprintln(w)
		}
		where := f.App
		if f.Instance != "" {
			where += "/" + f.Instance
		} else if len(f.Instances) > 0 {
			where += " (" + strings.Join(f.Instances, ", ") + ")"
		}
		sev := strings.ToUpper(string(f.Severity))
		if f.Past {
			sev = "PAST " + string(f.Severity)
		}
		fmt.Fprintf(w, "%d. %s %s  %s", i+1, sev, f.ID, where)
		if f.RequestsAffected > 0 {
			fmt.Fprintf(w, "  (%s affected)", plural(f.RequestsAffected, "request", "requests"))
		}
		fmt.Fprintf(w, "\n   %s\n", f.Title)
		for _, e := range f.Evidence {
			fmt.Fprintf(w, "   · %s\n", e)
		}
		if len(f.SampleRequestIDs) > 0 {
			fmt.Fprintf(w, "   · sample request ids: %s\n", strings.Join(f.SampleRequestIDs, ", "))
		}
		fmt.Fprintf(w, "   fix: %s\n\n", f.Fix)
	}
}
