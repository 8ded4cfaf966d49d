package cli

import (
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// lifecycle prints gatehouse's lifecycle events on the `run` terminal, one
// readable line each, as PM2 and systemd do: crashes with their exit code
// and the app's last line, restarts with their back-off, start_timeout
// kills, a starting instance's port mismatch, health changes, auto-heal
// actions and reload steps.
//
// An exit followed at once by its instance's restart is one line
// ("web-1 exited with code 1 (last output: "boom") — restarting in 2s
// (restart 3)"); an exit is held for at most mergeWait for that.
type lifecycle struct {
	emit    func(ev telemetry.Event, who, text string)
	pending map[string]telemetry.Event // exits waiting for their restart
	timer   *time.Timer
}

const mergeWait = 500 * time.Millisecond

// printLifecycle prints the events from ch on w until ch closes, then
// flushes what it holds. It returns when it is done.
func printLifecycle(w io.Writer, ch <-chan telemetry.Event) {
	printLifecycleTo(func(ev telemetry.Event, who, text string) {
		fmt.Fprintf(w, "%s %s %s\n", ev.Time.Local().Format("15:04:05"), who, text)
	}, ch)
}

// printLifecycleTo is printLifecycle with each line given to emit (the
// run terminal's format) as the event it is about, WHO and TEXT.
func printLifecycleTo(emit func(ev telemetry.Event, who, text string), ch <-chan telemetry.Event) {
	p := &lifecycle{emit: emit, pending: map[string]telemetry.Event{}, timer: time.NewTimer(time.Hour)}
	p.timer.Stop()
	defer p.timer.Stop()
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				p.flush(time.Time{})
				return
			}
			p.event(ev)
		case <-p.timer.C:
			p.flush(time.Now().Add(-mergeWait))
			p.arm()
		}
	}
}

func (p *lifecycle) event(ev telemetry.Event) {
	key := ev.App + "\x00" + ev.Instance
	if exit, ok := p.pending[key]; ok {
		delete(p.pending, key)
		if ev.Type == telemetry.EventRestart {
			p.emit(exit, ev.Instance, exitText(exit)+" — "+restartText(ev))
			p.arm()
			return
		}
		p.emit(exit, exit.Instance, exitText(exit))
	}
	if ev.Type == telemetry.EventExit && ev.Instance != "" {
		p.pending[key] = ev
		p.arm()
		return
	}
	if who, text, ok := lifecycleText(ev); ok {
		p.emit(ev, who, text)
	}
}

// flush prints the held exits that arrived before cutoff (all of them
// when cutoff is zero).
func (p *lifecycle) flush(cutoff time.Time) {
	for key, ev := range p.pending {
		if cutoff.IsZero() || !ev.Time.After(cutoff) {
			delete(p.pending, key)
			p.emit(ev, ev.Instance, exitText(ev))
		}
	}
}

// arm sets the timer for the oldest held exit, if any.
func (p *lifecycle) arm() {
	p.timer.Stop()
	var oldest time.Time
	for _, ev := range p.pending {
		if oldest.IsZero() || ev.Time.Before(oldest) {
			oldest = ev.Time
		}
	}
	if !oldest.IsZero() {
		p.timer.Reset(max(time.Until(oldest.Add(mergeWait)), time.Millisecond))
	}
}

// lifecycleText is who an event is about and what it says, or false for
// events the terminal does not show.
func lifecycleText(ev telemetry.Event) (who, text string, ok bool) {
	who = ev.Instance
	if who == "" {
		who = ev.App
	}
	if who == "" {
		// gatehouse's own (its shutdown's stages).
		who = "gatehouse"
	}
	switch ev.Type {
	case telemetry.EventStart:
		return "", "", false
	case telemetry.EventReady:
		text = ev.Detail
	case telemetry.EventExit:
		text = exitText(ev)
	case telemetry.EventRestart:
		text = restartText(ev)
	case telemetry.EventStartTimeout:
		text = "killed: " + strings.Replace(ev.Detail, "; last check: ", " (last check: ", 1)
		if strings.Contains(ev.Detail, "; last check: ") {
			text += ")"
		}
	case telemetry.EventUnhealthy:
		text = "unhealthy: " + ev.Detail
	case telemetry.EventHealthy:
		text = "healthy again: " + ev.Detail
	case telemetry.EventAutoHeal:
		text = "auto-heal: " + ev.Detail
	case telemetry.EventReload:
		text = "reload: " + ev.Detail
	case telemetry.EventIdleUnload:
		text = "unloaded (idle): " + ev.Detail
	case telemetry.EventCertObtained, telemetry.EventCertRenewed, telemetry.EventCertFailed,
		telemetry.EventCertExpiring, telemetry.EventCertReloaded, telemetry.EventCertReloadFailed, telemetry.EventCertChainIncomplete:
		// Not an app's: the detail starts with the certificate's name.
		who, text = "tls", ev.Detail
	default:
		text = strings.ReplaceAll(ev.Type, "_", " ") + ": " + ev.Detail
	}
	return who, strings.TrimSuffix(text, ": "), true
}

// exitText: "exited with code 1 (last output: "Error: boom")", or "could
// not start: exec: "nodex": executable file not found in $PATH".
func exitText(ev telemetry.Event) string {
	text := ev.Detail
	if text == "" {
		switch {
		case ev.Signal != "":
			text = "killed by " + ev.Signal
		case ev.ExitCode != nil:
			text = fmt.Sprintf("exited with code %d", *ev.ExitCode)
		default:
			text = "exited"
		}
	}
	// "exited with code 3; 1 request failed with it": the exit first,
	// then what the app said and what it cost, in parentheses.
	head, rest, _ := strings.Cut(text, "; ")
	var notes []string
	if last := lastOutput(ev.Output); last != "" {
		notes = append(notes, fmt.Sprintf("last output: %q", last))
	}
	if rest != "" {
		notes = append(notes, rest)
	}
	if len(notes) > 0 {
		head += " (" + strings.Join(notes, "; ") + ")"
	}
	return head
}

// lastOutput is the last non-blank line of out, cut to 200 bytes.
func lastOutput(out []string) string {
	last := ""
	for i := len(out) - 1; i >= max(len(out)-crashScan, 0); i-- {
		l := strings.TrimSpace(out[i])
		if l == "" {
			continue
		}
		if last == "" {
			last = l
		}
		// A crash's last lines are its stack trace; the line that says
		// what happened comes before it.
		if isCrashLine(l) {
			last = l
			break
		}
	}
	if len(last) > 200 {
		last = last[:200] + "…"
	}
	return last
}

// crashLine matches the line a runtime prints to say why a process dies:
// Go's panic and fatal error, Python's exception after its traceback,
// Node's and Java's errors and exceptions.
var crashLine = regexp.MustCompile(`^(panic: |fatal error: |Uncaught |Exception in thread |[A-Za-z_.$]*(Error|Exception)\b)`)

// crashScan bounds how far back the line saying why is looked for: an
// error logged long before a clean exit is not its cause.
const crashScan = 40

func isCrashLine(l string) bool { return crashLine.MatchString(l) }

var (
	restartBackoff = regexp.MustCompile(`^restart #(\d+) after (\S+) back-off`)
	restartAsked   = regexp.MustCompile(`^restart #(\d+) on request`)
)

// restartText: "restarting in 2s (restart 3)".
func restartText(ev telemetry.Event) string {
	if m := restartBackoff.FindStringSubmatch(ev.Detail); m != nil {
		if m[2] == "0s" {
			return "restarting now (restart " + m[1] + ")"
		}
		return "restarting in " + m[2] + " (restart " + m[1] + ")"
	}
	if m := restartAsked.FindStringSubmatch(ev.Detail); m != nil {
		return "restarting on request (restart " + m[1] + ")"
	}
	return "restarting: " + ev.Detail
}
