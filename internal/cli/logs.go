package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/telemetry"
)

func newLogsCmd() *cobra.Command {
	var f opFlags
	var app, inst string
	var events, follow bool
	c := &cobra.Command{
		Use:   "logs [--app A] [--instance I] [--events] [-f]",
		Short: "Show instance output and events; -f follows them as they happen",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cl := f.client()
			out := c.OutOrStdout()
			if !follow {
				return printRecentEvents(c, f, app, inst, out)
			}
			q := url.Values{}
			if app != "" {
				q.Set("app", app)
			}
			if inst != "" {
				q.Set("instance", inst)
			}
			body, err := cl.Stream(c.Context(), "/api/logstream?"+q.Encode())
			if err != nil {
				return err
			}
			defer body.Close()
			return printStream(body, out, events)
		},
	}
	f.add(c)
	c.Flags().StringVar(&app, "app", "", "only this app")
	c.Flags().StringVar(&inst, "instance", "", "only this instance")
	c.Flags().BoolVar(&events, "events", false, "with -f, show lifecycle events too (without -f, only events are shown)")
	c.Flags().BoolVarP(&follow, "follow", "f", false, "follow the live stream")
	return c
}

// printRecentEvents prints the last hour of events; instance output is in
// data_dir/logs/APP/INSTANCE.log and in the live stream.
func printRecentEvents(c *cobra.Command, f opFlags, app, inst string, out io.Writer) error {
	evs, err := f.client().Events(c.Context(), "1h")
	if err != nil {
		return err
	}
	for _, e := range evs {
		if (app == "" || e.App == app) && (inst == "" || e.Instance == inst) {
			fmt.Fprintln(out, formatEvent(e))
		}
	}
	return nil
}

func formatEvent(e telemetry.Event) string {
	who := e.App
	if e.Instance != "" {
		who = e.Instance
	}
	return fmt.Sprintf("%s %-8s %-13s %s", e.Time.Local().Format("15:04:05.000"), who, e.Type, e.Detail)
}

// printStream prints a server-sent event stream of log lines and events.
func printStream(r io.Reader, out io.Writer, events bool) error {
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
			case "log":
				var l telemetry.LogLine
				if json.Unmarshal(data, &l) == nil {
					fmt.Fprintf(out, "%s | %s\n", l.Instance, l.Line)
				}
			case "event":
				var e telemetry.Event
				if events && json.Unmarshal(data, &e) == nil {
					fmt.Fprintln(out, formatEvent(e))
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("log stream: %w", err)
	}
	return nil
}
