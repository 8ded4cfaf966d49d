package procdump

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/coder/websocket"
)

const (
	// inspectorOpenWait is how long node is given to open its inspector
	// after SIGUSR1 before an inspector already open is looked for.
	inspectorOpenWait = 5 * time.Second
	// inspectorPoll is how often the process's listeners are read while
	// waiting for the inspector's.
	inspectorPoll = 20 * time.Millisecond
	// resignal is how often SIGUSR1 is sent again while no inspector
	// opens.
	resignal = time.Second
	// idleWait is how long a pause is given to happen in running
	// JavaScript; past it the event loop is taken to be idle, where a
	// pause would wait for the next callback.
	idleWait = 500 * time.Millisecond
	// closeWait is how long the app is given to close the inspector this
	// dump opened: it needs one turn of the event loop.
	closeWait = 2 * time.Second
	// closeWaitCutShort is closeWait for a dump cut short (its timeout,
	// its caller gone), whose heap snapshot may still be being taken.
	closeWaitCutShort = 30 * time.Second
	// sendWait bounds writing one command.
	sendWait = 5 * time.Second
	// maxMessage bounds one DevTools message (a heap snapshot comes in
	// chunks far smaller).
	maxMessage = 64 << 20
)

// idleProbe is evaluated when no pause came: it runs JavaScript, which
// the pending pause stops in, and its name tells that the loop was idle.
const (
	idleProbeURL = "procdump-idle-probe"
	idleProbe    = "void 0\n//# sourceURL=" + idleProbeURL
)

// closeScript closes the inspector once the evaluation's answer has been
// sent: inspector.close() closes the connections, so it runs an event
// loop turn later.
const closeScript = `new Promise((resolve) => setImmediate(() => {
  resolve();
  const inspector = process.getBuiltinModule ? process.getBuiltinModule('inspector') : process.mainModule.require('inspector');
  setImmediate(() => inspector.close());
}))`

// devtools is one DevTools protocol session with node's inspector. A
// goroutine reads the connection (the protocol interleaves events with
// answers, and control frames need reading); shutdown stops it.
type devtools struct {
	conn    *websocket.Conn
	wsURL   string         // the inspector's target, to connect again
	client  *http.Client   // what connected
	addr    string         // where the inspector listens, to dial
	listen  netip.AddrPort // where it listens, as the process's sockets say
	opened  bool           // this dump opened the inspector, so it closes it
	msgs    chan cdpMessage
	readErr error // why the reader stopped, once msgs is closed
	lastID  int64
	onEvent func(cdpMessage) error
}

type cdpMessage struct {
	ID     int64           `json:"id,omitempty"`
	Method string          `json:"method,omitempty"`
	Params json.RawMessage `json:"params,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *cdpError       `json:"error,omitempty"`
}

type cdpError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// openInspector has node open its inspector (SIGUSR1) and connects to it.
// Once signalled, the connection is made even if the dump is cut short
// meanwhile (bounded by the wait for the inspector), so that finish can
// close what the signal opened; the caller then sees the dump's end.
func openInspector(t *target) (*devtools, error) {
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.live), inspectorOpenWait+closeWait)
	defer cancel()
	wsURL, listen, opened, err := findInspector(ctx, t, client)
	if err != nil {
		return nil, err
	}
	addr := dialable(listen)
	conn, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPClient: client})
	if err != nil {
		return nil, fmt.Errorf("connecting to node's inspector at %s: %w", addr, err)
	}
	conn.SetReadLimit(maxMessage)
	d := &devtools{conn: conn, wsURL: wsURL, client: client, addr: addr, listen: listen, opened: opened, msgs: make(chan cdpMessage)}
	go d.readLoop()
	return d, nil
}

// findInspector signals the process and waits for a new listener that
// answers as an inspector; failing that, one open before the signal (an
// app started with --inspect) is used and left open. The signal is sent
// again each second while nothing new listens: node tries its port
// again on each, and another instance's inspector that held it (9229
// by default) may have closed meanwhile.
func findInspector(ctx context.Context, t *target, client *http.Client) (wsURL string, listen netip.AddrPort, opened bool, err error) {
	before := map[netip.AddrPort]bool{}
	for _, a := range listeners(t.pid) {
		before[a] = true
	}
	tick := time.NewTicker(inspectorPoll)
	defer tick.Stop()
	deadline := time.Now().Add(inspectorOpenWait)
	var signalled time.Time
	tried := map[netip.AddrPort]bool{}
	for time.Now().Before(deadline) {
		if time.Since(signalled) >= resignal {
			if err := t.signal(syscall.SIGUSR1); err != nil {
				return "", listen, false, fmt.Errorf("SIGUSR1: %w", err)
			}
			signalled = time.Now()
		}
		for _, a := range listeners(t.pid) {
			if before[a] || tried[a] {
				continue
			}
			tried[a] = true
			if u, ok := debuggerURL(ctx, client, dialable(a)); ok {
				return u, a, true, nil
			}
		}
		select {
		case <-ctx.Done():
			return "", listen, false, context.Cause(ctx)
		case <-tick.C:
			if t.exited() || !t.id.Alive() {
				return "", listen, false, fmt.Errorf("waiting for node's inspector: %w", ErrExited)
			}
		}
	}
	for a := range before {
		if u, ok := debuggerURL(ctx, client, dialable(a)); ok {
			return u, a, false, nil
		}
	}
	return "", listen, false, fmt.Errorf("node's inspector did not open within %v of SIGUSR1 "+
		"(is its port, 9229 unless --inspect-port says otherwise, taken by another process? "+
		"--inspect-port=0 in NODE_OPTIONS gives each instance a free one)", inspectorOpenWait)
}

// debuggerURL asks an inspector at addr for its target's WebSocket URL,
// with the host replaced by addr, the address that answered.
func debuggerURL(ctx context.Context, client *http.Client, addr string) (string, bool) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/json/list", nil)
	if err != nil {
		return "", false
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", false
	}
	defer resp.Body.Close()
	var targets []struct {
		WebSocketDebuggerURL string `json:"webSocketDebuggerUrl"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&targets) != nil {
		return "", false
	}
	for _, tg := range targets {
		u, err := url.Parse(tg.WebSocketDebuggerURL)
		if err == nil && u.Scheme == "ws" {
			u.Host = addr
			return u.String(), true
		}
	}
	return "", false
}

func (d *devtools) readLoop() {
	defer close(d.msgs)
	for {
		_, b, err := d.conn.Read(context.Background())
		if err != nil {
			d.readErr = err
			return
		}
		var m cdpMessage
		if err := json.Unmarshal(b, &m); err != nil {
			d.readErr = fmt.Errorf("inspector message: %w", err)
			return
		}
		d.msgs <- m
	}
}

// shutdown drops the connection and waits for the reader to stop.
func (d *devtools) shutdown() {
	_ = d.conn.CloseNow()
	for range d.msgs {
	}
}

// send sends one command without waiting for its answer. The write is
// not cut by the dump's end: a websocket write cut short closes the
// connection, and node (20) can crash when its inspector is then closed
// over a new session while it still tears the old one down. The session
// is kept for finish to close the inspector over; a message this small
// to loopback is written at once or the connection is gone.
func (d *devtools) send(ctx context.Context, method string, params any) (int64, error) {
	if err := context.Cause(ctx); err != nil {
		return 0, fmt.Errorf("%s: %w", method, err)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sendWait)
	defer cancel()
	d.lastID++
	b, err := json.Marshal(struct {
		ID     int64  `json:"id"`
		Method string `json:"method"`
		Params any    `json:"params,omitempty"`
	}{d.lastID, method, params})
	if err != nil {
		return 0, err
	}
	if err := d.conn.Write(ctx, websocket.MessageText, b); err != nil {
		return 0, fmt.Errorf("%s: %w", method, err)
	}
	return d.lastID, nil
}

// call sends one command and waits for its answer, handing the events
// that arrive meanwhile to onEvent.
func (d *devtools) call(ctx context.Context, method string, params any) (json.RawMessage, error) {
	id, err := d.send(ctx, method, params)
	if err != nil {
		return nil, err
	}
	for {
		m, err := d.next(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", method, err)
		}
		if m.ID != id {
			continue
		}
		if m.Error != nil {
			return nil, fmt.Errorf("%s: %s (%d)", method, m.Error.Message, m.Error.Code)
		}
		return m.Result, nil
	}
}

// until reads messages until cond holds.
func (d *devtools) until(ctx context.Context, cond func() bool) error {
	for !cond() {
		if _, err := d.next(ctx); err != nil {
			return err
		}
	}
	return nil
}

// next is the next message, an event handed to onEvent first.
func (d *devtools) next(ctx context.Context) (cdpMessage, error) {
	select {
	case m, ok := <-d.msgs:
		if !ok {
			return m, fmt.Errorf("inspector connection: %w", d.readErr)
		}
		if m.Method != "" && d.onEvent != nil {
			return m, d.onEvent(m)
		}
		return m, nil
	case <-ctx.Done():
		return cdpMessage{}, context.Cause(ctx)
	}
}

// finish closes an inspector this dump opened, so that it does not stay
// open on loopback, and the session. An app whose event loop does not
// turn (JavaScript in a loop) closes it only once it does.
func (d *devtools) finish(t *target, res *Result) {
	defer d.shutdown()
	if !d.opened || t.exited() {
		return
	}
	d.onEvent = nil
	// Closed even when the dump was cut short (its timeout, the caller
	// gone): an inspector left open lets any local user run code as the
	// app.
	wait := closeWait
	if t.live.Err() != nil {
		// Cut short mid-snapshot, V8 finishes the snapshot before it
		// runs anything else, the close among it.
		wait = closeWaitCutShort
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.live), wait)
	defer cancel()
	_, err := d.call(ctx, "Runtime.evaluate", map[string]any{"expression": closeScript, "awaitPromise": true})
	if err != nil && ctx.Err() == nil && !t.exited() {
		// The session itself is gone (a write cut short by the dump's
		// end closes it): close the inspector over a new one.
		err = d.closeOver(ctx)
	}
	// The close runs a turn after the answer, and the close may drop the
	// answer or refuse the new session as it goes: whatever the calls
	// said, the port going is what tells, so that a dump of another
	// instance, taken next, finds it free.
	if ctx.Err() == nil && !t.exited() {
		err = d.untilClosed(ctx, t.pid)
	}
	if err != nil && !t.exited() {
		res.Note = fmt.Sprintf("node's inspector stays open on %s until the app's event loop turns again (its JavaScript is busy); it closes itself then", d.addr)
	}
}

// closeOver connects to the inspector again and closes it from there.
func (d *devtools) closeOver(ctx context.Context) error {
	conn, _, err := websocket.Dial(ctx, d.wsURL, &websocket.DialOptions{HTTPClient: d.client})
	if err != nil {
		return fmt.Errorf("connecting to node's inspector again at %s: %w", d.addr, err)
	}
	conn.SetReadLimit(maxMessage)
	again := &devtools{conn: conn, addr: d.addr, msgs: make(chan cdpMessage)}
	go again.readLoop()
	defer again.shutdown()
	_, err = again.call(ctx, "Runtime.evaluate", map[string]any{"expression": closeScript, "awaitPromise": true})
	return err
}

// untilClosed waits for the process to stop listening on the inspector's
// address.
func (d *devtools) untilClosed(ctx context.Context, pid int) error {
	tick := time.NewTicker(inspectorPoll)
	defer tick.Stop()
	for slices.Contains(listeners(pid), d.listen) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}

type pausedEvent struct {
	CallFrames []struct {
		FunctionName string `json:"functionName"`
		URL          string `json:"url"`
		Location     struct {
			ScriptID     string `json:"scriptId"`
			LineNumber   int    `json:"lineNumber"`
			ColumnNumber int    `json:"columnNumber"`
		} `json:"location"`
	} `json:"callFrames"`
}

// nodeStacks pauses the main thread's JavaScript and writes where it
// stood. V8 takes inspector commands by interrupt, so a pause stops code
// in a loop too; an idle event loop has no JavaScript to pause, which a
// probe evaluated after idleWait tells.
func nodeStacks(t *target, w io.Writer, res *Result) error {
	res.Tool = "node inspector"
	d, err := openInspector(t)
	if err != nil {
		return err
	}
	defer d.finish(t, res)
	var paused *pausedEvent
	scripts := map[string]string{} // scriptId to url: call frames carry the id only
	d.onEvent = func(m cdpMessage) error {
		switch {
		case m.Method == "Debugger.scriptParsed":
			var p struct {
				ScriptID string `json:"scriptId"`
				URL      string `json:"url"`
			}
			if err := json.Unmarshal(m.Params, &p); err != nil {
				return err
			}
			scripts[p.ScriptID] = p.URL
		case m.Method == "Debugger.paused" && paused == nil:
			paused = &pausedEvent{}
			return json.Unmarshal(m.Params, paused)
		}
		return nil
	}
	if _, err := d.call(t.live, "Debugger.enable", nil); err != nil {
		return err
	}
	start := time.Now()
	if err := pause(t, d, func() bool { return paused != nil }); err != nil {
		return err
	}
	if _, err := d.call(t.live, "Debugger.resume", nil); err != nil {
		return err
	}
	res.Paused = time.Since(start)
	if _, err := d.call(t.live, "Debugger.disable", nil); err != nil {
		return err
	}
	return writeFrames(w, paused, scripts, res)
}

// pause asks for a pause and waits for it, nudging an idle loop.
func pause(t *target, d *devtools, paused func() bool) error {
	if _, err := d.call(t.live, "Debugger.pause", nil); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(t.live, idleWait)
	err := d.until(ctx, paused)
	cancel()
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || t.live.Err() != nil {
		return err
	}
	// Its answer comes after the resume; call skips it as any other.
	if _, err := d.send(t.live, "Runtime.evaluate", map[string]any{"expression": idleProbe}); err != nil {
		return err
	}
	return d.until(t.live, paused)
}

// writeFrames writes one frame a line, as an Error's stack does: "at fn
// (url:line:column)", line and column from 1.
func writeFrames(w io.Writer, p *pausedEvent, scripts map[string]string, res *Result) error {
	url := func(i int) string {
		if u := p.CallFrames[i].URL; u != "" {
			return u
		}
		return scripts[p.CallFrames[i].Location.ScriptID]
	}
	if len(p.CallFrames) > 0 && url(0) == idleProbeURL {
		res.Note = "no JavaScript was running: the event loop was waiting for I/O or timers"
		_, err := io.WriteString(w, res.Note+"\n")
		return err
	}
	var b []byte
	for i, f := range p.CallFrames {
		name, src := f.FunctionName, url(i)
		if name == "" {
			name = "<anonymous>"
		}
		if src == "" {
			src = "<anonymous>"
		}
		b = append(b, "at "+name+" ("+src+":"+strconv.Itoa(f.Location.LineNumber+1)+":"+strconv.Itoa(f.Location.ColumnNumber+1)+")\n"...)
	}
	_, err := w.Write(b)
	return err
}

// takeHeap streams a heap snapshot of a node process into w. V8 stops
// the JavaScript for the whole snapshot.
func takeHeap(t *target, w io.Writer, res *Result) error {
	if res.Runtime != RuntimeNode {
		return &UnsupportedError{Kind: KindHeap, Runtime: res.Runtime, Reason: "only node's inspector takes a heap snapshot; take a core instead"}
	}
	res.Tool = "node inspector"
	d, err := openInspector(t)
	if err != nil {
		return err
	}
	defer d.finish(t, res)
	d.onEvent = func(m cdpMessage) error {
		if m.Method != "HeapProfiler.addHeapSnapshotChunk" {
			return nil
		}
		var p struct {
			Chunk string `json:"chunk"`
		}
		if err := json.Unmarshal(m.Params, &p); err != nil {
			return err
		}
		_, err := io.WriteString(w, p.Chunk)
		return err
	}
	if _, err := d.call(t.live, "HeapProfiler.enable", nil); err != nil {
		return err
	}
	start := time.Now()
	if _, err := d.call(t.live, "HeapProfiler.takeHeapSnapshot", map[string]any{"reportProgress": false}); err != nil {
		return err
	}
	res.Paused = time.Since(start)
	d.onEvent = nil
	_, err = d.call(t.live, "HeapProfiler.disable", nil)
	return err
}
