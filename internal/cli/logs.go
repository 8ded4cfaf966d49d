package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// logsFlags are the flags of `gatehouse logs`.
type logsFlags struct {
	op                   opFlags
	app, inst, dataDir   string
	events, follow, json bool
	lines                int
	since                time.Duration
}

// defaultLogLines is how many lines `logs` shows before it follows, as
// tail and kubectl logs --tail show.
const defaultLogLines = 10

// timeLayout is the time of every line `logs` prints as text: RFC 3339
// with milliseconds, in the local zone.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

func newLogsCmd() *cobra.Command {
	var f logsFlags
	c := &cobra.Command{
		Use:   "logs [APP] [--instance I] [--lines N] [--since D] [--events] [--json] [-f] [--data-dir DIR | -c FILE | --admin URL]",
		Short: "Show the instances' last output lines; -f then follows them as they happen",
		Long: "Shows the last --lines lines (default 10) of the instances' output, oldest first, each with its\n" +
			"time and instance, interleaved with the lifecycle events of the same period; with -f, then\n" +
			"follows the output live (and events with --events) until gatehouse stops or Ctrl-C.\n" +
			"From the running gatehouse's admin API; when it does not answer (gatehouse stopped), or with\n" +
			"--data-dir, from the files in data_dir (logs/APP/INSTANCE.log, events.log), which -f then\n" +
			"follows as they grow.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) == 1 {
				if f.app != "" && f.app != args[0] {
					return &ExitError{Code: exitUsage, Err: fmt.Errorf("logs: app %q and --app %q disagree", args[0], f.app)}
				}
				f.app = args[0]
			}
			if f.lines < 0 {
				return &ExitError{Code: exitUsage, Err: fmt.Errorf("logs: --lines must be ≥ 0, got %d", f.lines)}
			}
			if f.since < 0 {
				return &ExitError{Code: exitUsage, Err: fmt.Errorf("logs: --since must be a positive duration, got %s", f.since)}
			}
			if f.dataDir != "" {
				return printFiles(c, f, f.dataDir)
			}
			err := printLive(c, f)
			if !unanswered(err) {
				return err
			}
			dir, cfgErr := dataDirOf(f.op.file)
			if cfgErr != nil {
				return fmt.Errorf("%w (to read the log files of a stopped gatehouse, use --data-dir)", err)
			}
			fmt.Fprintf(c.ErrOrStderr(), "gatehouse does not answer (%s): reading the files of a stopped gatehouse in %s\n", adminOf(err), dir)
			return printFiles(c, f, dir)
		},
	}
	f.op.add(c)
	c.Flags().StringVar(&f.app, "app", "", "only this app (as APP)")
	c.Flags().StringVar(&f.inst, "instance", "", "only this instance")
	c.Flags().IntVarP(&f.lines, "lines", "n", defaultLogLines, "how many of the last lines to show first (0: all kept)")
	c.Flags().DurationVar(&f.since, "since", 0, "only lines and events of the last DURATION (e.g. 10m)")
	c.Flags().BoolVar(&f.events, "events", false, "with -f, show lifecycle events too (without -f they are always shown)")
	c.Flags().BoolVar(&f.json, "json", false, "one JSON object per line: time, app, instance, stream, line")
	c.Flags().BoolVarP(&f.follow, "follow", "f", false, "after the last lines, follow new ones")
	c.Flags().StringVar(&f.dataDir, "data-dir", "", "read the log files in this data dir instead of asking a running gatehouse")
	c.ValidArgsFunction = f.op.completeFirst(false)
	c.RegisterFlagCompletionFunc("app", f.op.completeApps)
	c.RegisterFlagCompletionFunc("instance", f.op.completeInstances)
	return c
}

// unanswered reports whether err is the admin API not answering at all
// (nothing listens: gatehouse is stopped), rather than answering with an
// error.
func unanswered(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// adminOf is the address in a dial error, for the note that says the
// files are read instead.
func adminOf(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Addr != nil {
		return "nothing listens on " + op.Addr.String()
	}
	return "its admin API is not there"
}

// dataDirOf is the data_dir of the config the flags name.
func dataDirOf(file string) (string, error) {
	cfg, err := config.Find(file, nil)
	if err != nil {
		return "", err
	}
	return cfg.DataDir, nil
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

// matches reports whether r is of the app and instance asked for.
func (f logsFlags) matches(app, inst string) bool {
	return (f.app == "" || app == f.app) && (f.inst == "" || inst == f.inst)
}

// printLive prints the last lines from the admin API and, with -f, then
// follows its log stream. The stream is opened first, so that no line
// falls between the two; the lines both have are printed once.
func printLive(c *cobra.Command, f logsFlags) error {
	cl, err := f.op.client()
	if err != nil {
		return err
	}
	var body io.ReadCloser
	if f.follow {
		if body, err = cl.Stream(c.Context(), streamPath(f)); err != nil {
			return err
		}
		defer body.Close()
	}
	recs, err := recentLive(c.Context(), cl, f)
	if err != nil {
		return err
	}
	out := c.OutOrStdout()
	for _, r := range recs {
		printRecord(out, r, f.json)
	}
	if !f.follow {
		return nil
	}
	return follow(c.Context(), cl, f, body, out, newPrinted(recs, f.lines), streamSilence)
}

// streamSilence is how long logs -f waits for anything of the log
// stream, a heartbeat at least, before it takes the connection for lost:
// a gatehouse whose host went away, or a network that dropped the
// connection without a word, would otherwise leave it waiting for good.
const streamSilence = 3 * admin.LogStreamHeartbeat

// errStreamSilent is a log stream from which nothing came for longer
// than the silence allowed.
var errStreamSilent = errors.New("nothing came from gatehouse, not even its heartbeat: the connection is taken for lost")

// silenceBound closes a stream nothing came from for d; its reads then
// fail with errStreamSilent.
type silenceBound struct {
	r      io.ReadCloser
	d      time.Duration
	t      *time.Timer
	silent atomic.Bool
}

func boundSilence(r io.ReadCloser, d time.Duration) *silenceBound {
	b := &silenceBound{r: r, d: d}
	b.t = time.AfterFunc(d, func() {
		b.silent.Store(true)
		r.Close()
	})
	return b
}

func (b *silenceBound) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if n > 0 {
		b.t.Reset(b.d)
	}
	if err != nil && b.silent.Load() {
		return n, fmt.Errorf("%w (%s)", errStreamSilent, b.d)
	}
	return n, err
}

// Close stops the timer and closes the stream.
func (b *silenceBound) Close() error {
	b.t.Stop()
	return b.r.Close()
}

// maxResumes bounds the streams that end with a handover one after
// another within resumeWithin of opening: the predecessor answers until
// it closes its admin listener, each time with the end at once.
const (
	maxResumes   = 50
	resumeWithin = time.Second
	resumePause  = 100 * time.Millisecond
)

// follow prints the log stream body and, when it ends because gatehouse
// handed over to a successor (gatehouse upgrade), the successor's: what
// it kept since the last output line printed, then its stream. The
// predecessor stopped reading the instances' output before the successor
// began, and each keeps only its own events, so that is what the
// successor saw before its stream was open. It returns when a stream
// ends otherwise (gatehouse stopped), or nothing came of it, not even a
// heartbeat, for silence.
func follow(ctx context.Context, cl *admin.Client, f logsFlags, body io.ReadCloser, out io.Writer, seen *printed, silence time.Duration) error {
	since := time.Now()
	var last *logRecord // the last output line printed
	skip := func(r logRecord) bool {
		if seen.skip(r) {
			return true
		}
		if r.Stream == admin.StreamOutput {
			last = &r
		}
		return false
	}
	resumes := 0
	for {
		opened := time.Now()
		bounded := boundSilence(body, silence)
		err := printStream(bounded, out, f.events, f.json, skip)
		bounded.Close()
		if !errors.Is(err, errHandedOver) {
			return err
		}
		if time.Since(opened) > resumeWithin {
			resumes = 0
		}
		if resumes++; resumes > maxResumes {
			return errors.New("log stream: gatehouse handed over to a successor, and it does not stream its output")
		}
		if last != nil {
			since = last.Time
			// Printed already: a record of that very time comes again.
			seen = newPrinted([]logRecord{*last}, 0)
		} else {
			seen = newPrinted(nil, 0)
		}
		var recs []logRecord
		if body, recs, err = resume(ctx, cl, f, since); err != nil {
			return err
		}
		for _, r := range recs {
			if !skip(r) {
				printRecord(out, r, f.json)
			}
		}
	}
}

// resume opens the successor's log stream, then reads its output (and
// events, with --events) since since: what came while the predecessor
// no longer read it. The connections kept to the predecessor are
// closed first, so that the requests reach the successor.
func resume(ctx context.Context, cl *admin.Client, f logsFlags, since time.Time) (io.ReadCloser, []logRecord, error) {
	cl.HTTP.CloseIdleConnections()
	if err := sleepCtx(ctx, resumePause); err != nil {
		return nil, nil, err
	}
	body, err := cl.Stream(ctx, streamPath(f))
	if err != nil {
		return nil, nil, err
	}
	recs, err := backlog(ctx, cl, f, 0, since.UTC().Format(time.RFC3339Nano), f.events)
	if err != nil {
		body.Close()
		return nil, nil, err
	}
	return body, lastRecords(recs, 0), nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// streamPath is the admin API's log stream of the app and instance
// asked for.
func streamPath(f logsFlags) string {
	q := url.Values{}
	if f.app != "" {
		q.Set("app", f.app)
	}
	if f.inst != "" {
		q.Set("instance", f.inst)
	}
	return "/api/logstream?" + q.Encode()
}

// recentLive is the last lines of output and the events since the oldest
// of them (or since --since), oldest first; with -f, events only with
// --events.
func recentLive(ctx context.Context, cl *admin.Client, f logsFlags) ([]logRecord, error) {
	since := ""
	if f.since > 0 {
		since = f.since.String()
	}
	recs, err := backlog(ctx, cl, f, f.lines, since, !f.follow || f.events)
	if err != nil {
		return nil, err
	}
	return lastRecords(recs, f.lines), nil
}

// backlog is the output kept of the app and instance asked for, the last
// lines of it (all when 0) since since (all kept when ""), and with
// events the events since since (the last hour when ""); unsorted.
func backlog(ctx context.Context, cl *admin.Client, f logsFlags, lines int, since string, events bool) ([]logRecord, error) {
	q := url.Values{"lines": {strconv.Itoa(lines)}}
	if f.app != "" {
		q.Set("app", f.app)
	}
	if f.inst != "" {
		q.Set("instance", f.inst)
	}
	if since != "" {
		q.Set("since", since)
	} else {
		since = "1h"
	}
	out, err := cl.Logs(ctx, q.Encode())
	if err != nil {
		return nil, err
	}
	var recs []logRecord
	for _, l := range out {
		recs = append(recs, outputRecord(l))
	}
	if events {
		evs, err := cl.Events(ctx, url.QueryEscape(since))
		if err != nil {
			return nil, err
		}
		for _, e := range evs {
			if f.matches(e.App, e.Instance) {
				recs = append(recs, eventRecord(e))
			}
		}
	}
	return recs, nil
}

// lastRecords sorts recs by time and keeps the last n (all when n is 0).
func lastRecords(recs []logRecord, n int) []logRecord {
	slices.SortStableFunc(recs, func(a, b logRecord) int { return a.Time.Compare(b.Time) })
	if n > 0 && len(recs) > n {
		recs = recs[len(recs)-n:]
	}
	return recs
}

// printed is what the backlog printed, so that the stream opened before
// it does not print it again. A line is stamped with the time its first
// byte arrived, so the stream's lines are not in time order: one that
// another instance finished later, or that was still being written when
// the backlog was read, comes with a time before the backlog's last and
// is printed all the same. Only a line older than the oldest the backlog
// kept of the --lines asked is taken for one it left out.
type printed struct {
	oldest time.Time // the zero time when the backlog was not cut
	at     map[printedKey]int
}

// printedKey is a record with its time as a number: compared as Equal
// does, not by its location.
type printedKey struct {
	nanos int64
	r     logRecord
}

func newPrinted(recs []logRecord, lines int) *printed {
	p := &printed{at: map[printedKey]int{}}
	if lines > 0 && len(recs) >= lines {
		p.oldest = recs[0].Time
	}
	for _, r := range recs {
		p.at[p.key(r)]++
	}
	return p
}

func (p *printed) key(r logRecord) printedKey {
	k := printedKey{nanos: r.Time.UnixNano(), r: r}
	k.r.Time = time.Time{}
	return k
}

func (p *printed) skip(r logRecord) bool {
	if k := p.key(r); p.at[k] > 0 {
		p.at[k]--
		return true
	}
	return r.Time.Before(p.oldest)
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
	fmt.Fprintf(out, "%s %s | %s\n", stamp(r.Time), r.Instance, r.Line)
}

// stamp is a line's time as text; a line of a log file written before
// lines were stamped has none.
func stamp(t time.Time) string {
	if t.IsZero() {
		return strings.Repeat(" ", len(timeLayout)-2) // as wide as "…+01:00"
	}
	return t.Local().Format(timeLayout)
}

func formatEvent(e telemetry.Event) string {
	who := e.App
	if e.Instance != "" {
		who = e.Instance
	}
	return fmt.Sprintf("%s %-8s %-13s %s", stamp(e.Time), who, e.Type, e.Detail)
}

// errHandedOver is a log stream's end because a successor gatehouse
// serves in its place (gatehouse upgrade): its output goes on there.
var errHandedOver = errors.New("log stream: gatehouse handed over to a successor")

// printStream prints a server-sent event stream of log lines and events
// until it ends, but not those skip says were printed already: gatehouse
// closes it with an "end" event when it stops, which is a clean end, not
// an error, or errHandedOver when the end says a successor serves.
func printStream(r io.Reader, out io.Writer, events, asJSON bool, skip func(logRecord) bool) error {
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
			var rec logRecord
			switch typ {
			case "end":
				var end struct{ Reason string }
				if json.Unmarshal(data, &end) == nil && end.Reason == admin.EndHandover {
					return errHandedOver
				}
				return nil
			case "log":
				var l telemetry.LogLine
				if json.Unmarshal(data, &l) != nil {
					continue
				}
				rec = logRecord{Time: l.Time, App: l.App, Instance: l.Instance, Stream: admin.StreamOutput, Line: l.Line}
			case "event":
				var e telemetry.Event
				if !events || json.Unmarshal(data, &e) != nil {
					continue
				}
				rec = eventRecord(e)
			default:
				continue
			}
			if !skip(rec) {
				printRecord(out, rec, asJSON)
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
