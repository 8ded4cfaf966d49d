package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// logsFlags are the flags of `gatehouse logs`.
type logsFlags struct {
	op                   opFlags
	app, inst            string
	events, follow, json bool
	lines                int
	since                time.Duration
}

func newLogsCmd() *cobra.Command {
	var f logsFlags
	c := &cobra.Command{
		Use:   "logs [--app A] [--instance I] [--lines N] [--since D] [--events] [--json] [-f]",
		Short: "Show the instances' recent output and events; -f follows them as they happen",
		Long: "Without -f, shows the last --lines lines of the instances' output (the admin API keeps the\n" +
			"last 1000 per instance) interleaved with the lifecycle events of the same period.\n" +
			"With -f, follows the output live (and events with --events) until gatehouse stops.",
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if f.lines < 0 {
				return &ExitError{Code: exitUsage, Err: fmt.Errorf("logs: --lines must be ≥ 0, got %d", f.lines)}
			}
			if f.since < 0 {
				return &ExitError{Code: exitUsage, Err: fmt.Errorf("logs: --since must be a positive duration, got %s", f.since)}
			}
			if !f.follow {
				return printRecent(c, f)
			}
			q := url.Values{}
			if f.app != "" {
				q.Set("app", f.app)
			}
			if f.inst != "" {
				q.Set("instance", f.inst)
			}
			cl, err := f.op.client()
			if err != nil {
				return err
			}
			body, err := cl.Stream(c.Context(), "/api/logstream?"+q.Encode())
			if err != nil {
				return err
			}
			defer body.Close()
			return printStream(body, c.OutOrStdout(), f.events, f.json)
		},
	}
	f.op.add(c)
	c.Flags().StringVar(&f.app, "app", "", "only this app")
	c.Flags().StringVar(&f.inst, "instance", "", "only this instance")
	c.Flags().IntVarP(&f.lines, "lines", "n", 50, "without -f: how many recent lines to show (0: all kept)")
	c.Flags().DurationVar(&f.since, "since", 0, "without -f: only lines and events of the last DURATION (e.g. 10m)")
	c.Flags().BoolVar(&f.events, "events", false, "with -f, show lifecycle events too (without -f they are always shown)")
	c.Flags().BoolVar(&f.json, "json", false, "one JSON object per line: time, app, instance, stream, line")
	c.Flags().BoolVarP(&f.follow, "follow", "f", false, "follow the live stream")
	c.RegisterFlagCompletionFunc("app", f.op.completeApps)
	c.RegisterFlagCompletionFunc("instance", f.op.completeInstances)
	return c
}

// logRecord is one line of `logs` output: instance output (stream
// "output") or a lifecycle event (stream "event", with its type).
type logRecord struct {
	Time     time.Time `json:"time"`
	App      string    `json:"app"`
	Instance string    `json:"instance,omitempty"`
	Stream   string    `json:"stream"`
	Line     string    `json:"line"`
	Type     string    `json:"type,omitempty"`
}

func outputRecord(l admin.LogEntry) logRecord {
	return logRecord{Time: l.Time, App: l.App, Instance: l.Instance, Stream: l.Stream, Line: l.Line}
}

func eventRecord(e telemetry.Event) logRecord {
	return logRecord{Time: e.Time, App: e.App, Instance: e.Instance, Stream: "event", Line: e.Detail, Type: e.Type}
}

// printRecent prints the last lines of output and the events since the
// oldest of them (or since --since), oldest first.
func printRecent(c *cobra.Command, f logsFlags) error {
	cl, err := f.op.client()
	if err != nil {
		return err
	}
	q := url.Values{"lines": {strconv.Itoa(f.lines)}}
	if f.app != "" {
		q.Set("app", f.app)
	}
	if f.inst != "" {
		q.Set("instance", f.inst)
	}
	since := "1h"
	if f.since > 0 {
		since = f.since.String()
		q.Set("since", since)
	}
	lines, err := cl.Logs(c.Context(), q.Encode())
	if err != nil {
		return err
	}
	evs, err := cl.Events(c.Context(), since)
	if err != nil {
		return err
	}
	var recs []logRecord
	for _, l := range lines {
		recs = append(recs, outputRecord(l))
	}
	for _, e := range evs {
		if (f.app == "" || e.App == f.app) && (f.inst == "" || e.Instance == f.inst) {
			recs = append(recs, eventRecord(e))
		}
	}
	slices.SortStableFunc(recs, func(a, b logRecord) int { return a.Time.Compare(b.Time) })
	if f.lines > 0 && len(recs) > f.lines {
		recs = recs[len(recs)-f.lines:]
	}
	out := c.OutOrStdout()
	for _, r := range recs {
		printRecord(out, r, f.json)
	}
	return nil
}

func printRecord(out io.Writer, r logRecord, asJSON bool) {
	if asJSON {
		b, _ := json.Marshal(r)
		fmt.Fprintf(out, "%s\n", b)
		return
	}
	if r.Stream == "event" {
		fmt.Fprintln(out, formatEvent(telemetry.Event{Time: r.Time, App: r.App, Instance: r.Instance, Type: r.Type, Detail: r.Line}))
		return
	}
	fmt.Fprintf(out, "%s %s | %s\n", r.Time.Local().Format("15:04:05.000"), r.Instance, r.Line)
}

func formatEvent(e telemetry.Event) string {
	who := e.App
	if e.Instance != "" {
		who = e.Instance
	}
	return fmt.Sprintf("%s %-8s %-13s %s", e.Time.Local().Format("15:04:05.000"), who, e.Type, e.Detail)
}

// printStream prints a server-sent event stream of log lines and events
// until it ends: gatehouse closes it with an "end" event when it stops,
// which is a clean end, not an error.
func printStream(r io.Reader, out io.Writer, events, asJSON bool) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var typ string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			typ = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data := []byte(strings.TrimPrefix(line, "data: "))
			switch typ {
			case "end":
				return nil
			case "log":
				var l telemetry.LogLine
				if json.Unmarshal(data, &l) != nil {
					continue
				}
				if asJSON {
					printRecord(out, logRecord{Time: l.Time, App: l.App, Instance: l.Instance, Stream: admin.StreamOutput, Line: l.Line}, true)
				} else {
					fmt.Fprintf(out, "%s | %s\n", l.Instance, l.Line)
				}
			case "event":
				var e telemetry.Event
				if events && json.Unmarshal(data, &e) == nil {
					printRecord(out, eventRecord(e), asJSON)
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return errors.New("log stream: gatehouse went away without ending the stream (killed?)")
		}
		return fmt.Errorf("log stream: %w", err)
	}
	return nil
}
