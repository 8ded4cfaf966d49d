package diagnose

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Render writes the report for people: most important first, each
// finding with its evidence and fix.
func Render(w io.Writer, r Report) {
	fmt.Fprintf(w, "gatehouse diagnose: %s to %s (%s), %d requests, %d 5xx\n\n",
		r.Since.Local().Format("2006-01-02 15:04:05"), r.Until.Local().Format("15:04:05"),
		r.Until.Sub(r.Since).Round(time.Second), r.Requests, r.Errors)
	if len(r.Findings) == 0 {
		fmt.Fprintln(w, "No problems found.")
		return
	}
	for i, f := range r.Findings {
		where := f.App
		if f.Instance != "" {
			where += "/" + f.Instance
		}
		fmt.Fprintf(w, "%d. %s %s  %s", i+1, strings.ToUpper(string(f.Severity)), f.ID, where)
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
