package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/admin"
)

func newStatusCmd() *cobra.Command {
	var f opFlags
	var asJSON bool
	c := &cobra.Command{
		Use:   "status [--admin URL] [--json]",
		Short: "Show every instance: state, probe detail, restarts, uptime",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cl, err := f.client()
			if err != nil {
				return err
			}
			st, err := cl.Status(c.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(c.OutOrStdout(), st)
			}
			printStatus(c.OutOrStdout(), st, time.Now())
			return nil
		},
	}
	f.add(c)
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

// printStatus prints the backend-health table.
func printStatus(w io.Writer, st *admin.StatusResponse, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "APP\tINSTANCE\tPID\tPORT\tSTATE\tHEALTH\tRESTARTS\tUPTIME\tINFLIGHT\tCPU\tRSS")
	for _, a := range st.Apps {
		if len(a.Instances) == 0 {
			fmt.Fprintf(tw, "%s\t-\t-\t-\tno instances\t\t\t\t\t\t\n", a.Name)
		}
		for _, in := range a.Instances {
			pid, port := dash(in.PID), dash(in.Port)
			if in.Upstream != "" {
				port = in.Upstream
			}
			if in.Source != "" {
				port += " (" + in.Source + ")" // found in DNS: which entry found it
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%d\t%s\t%s\n", a.Name, in.ID, pid, port, in.State,
				in.Health, in.Restarts, uptime(in.StartedAt, now), in.Inflight, cpu(in.CPUPercent), mib(in.RSSBytes))
		}
		if a.Waiting > 0 {
			fmt.Fprintf(tw, "%s\t(%s held)\t\t\t\t\t\t\t\t\t\n", a.Name, plural(a.Waiting, "request", "requests"))
		}
	}
	tw.Flush()
	printAutoscale(w, st, now)
	printRecycles(w, st, now)
	if st.Draining {
		fmt.Fprintln(w, "gatehouse is draining: /readyz fails, requests are still served (gatehouse undrain puts it back)")
	}
	printCertificates(w, st, now)
	for name, ws := range st.Logs {
		if ws.Dropped > 0 || ws.Errors > 0 {
			fmt.Fprintf(w, "warning: %s dropped %d lines, %d write errors (last: %s)\n", name, ws.Dropped, ws.Errors, ws.LastError)
		}
	}
}

// printAutoscale prints one line per autoscaled app: its bounds, the
// count it wants, and its last decision.
func printAutoscale(w io.Writer, st *admin.StatusResponse, now time.Time) {
	for _, a := range st.Apps {
		as := a.Autoscale
		if as == nil {
			continue
		}
		line := fmt.Sprintf("autoscale %s: min %d, max %d, desired %d", a.Name, as.Min, as.Max, as.Desired)
		if as.AtMax {
			line += "; AT MAX (a scale-out rule still holds)"
		}
		if as.Scaling {
			line += "; scaling"
		}
		if as.LastDecision != "" {
			line += fmt.Sprintf("; last: %s (%s ago)", as.LastDecision, now.Sub(as.LastDecisionAt).Round(time.Second))
		}
		fmt.Fprintln(w, line)
	}
}

// printRecycles prints one line per app that recycled an instance: which
// one, its replacement, when and why (auto-heal's trigger, or by hand).
func printRecycles(w io.Writer, st *admin.StatusResponse, now time.Time) {
	for _, a := range st.Apps {
		if r := a.LastRecycle; r != nil {
			fmt.Fprintf(w, "last recycle %s: %s replaced by %s %s ago: %s\n", a.Name, r.Instance, r.Replacement,
				now.Sub(r.At).Round(time.Second), r.Reason)
		}
	}
}

// printCertificates prints the HTTPS listener's certificates: names,
// source, days left, and the last failure.
func printCertificates(w io.Writer, st *admin.StatusResponse, now time.Time) {
	if len(st.Certificates) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CERTIFICATE	SOURCE	ISSUER	EXPIRES	LAST ERROR")
	for _, c := range st.Certificates {
		source := "file"
		if c.Managed {
			source = "acme"
		}
		expires := "-"
		if !c.NotAfter.IsZero() {
			expires = fmt.Sprintf("%s (%s)", c.NotAfter.UTC().Format("2006-01-02 15:04"), daysLeft(c.NotAfter, now))
		}
		lastErr := "-"
		if c.LastError != "" {
			lastErr = c.LastError
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", strings.Join(c.Names, ","), source, dashString(c.Issuer), expires, lastErr)
	}
	tw.Flush()
}

// daysLeft says how long until t, in days when it is a day or more.
func daysLeft(t, now time.Time) string {
	d := t.Sub(now)
	switch {
	case d < 0:
		return "expired"
	case d < 24*time.Hour:
		return d.Round(time.Minute).String() + " left"
	}
	return strconv.Itoa(int(d/(24*time.Hour))) + " days left"
}

func dashString(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func dash(n int) string {
	if n == 0 {
		return "-"
	}
	return strconv.Itoa(n)
}

func uptime(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return now.Sub(t).Round(time.Second).String()
}

// cpu is an instance's CPU use; "-" before two samples could measure it.
func cpu(p *float64) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", *p)
}

// plural is "1 request", "2 requests".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

func mib(b uint64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1fMiB", float64(b)/(1<<20))
}
