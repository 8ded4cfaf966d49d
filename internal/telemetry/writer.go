package telemetry

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/DeRuina/timberjack"
)

// LineWriter takes one complete line. Implementations must not block and must
// not keep line after Write returns: callers reuse the buffer. AsyncWriter is
// the production implementation.
type LineWriter interface {
	Write(line []byte)
}

// WriterOptions tune an AsyncWriter. Zero fields take the defaults.
type WriterOptions struct {
	// MaxSizeMB is the size at which the file is rotated. Default 100.
	MaxSizeMB int
	// MaxBackups is how many rotated files are kept. Default 5.
	MaxBackups int
	// MaxAgeDays removes rotated files older than this many days. Default
	// 0: by MaxBackups only.
	MaxAgeDays int
	// Out, if set, takes the lines instead of the file at the writer's
	// path (standard output, or io.Discard for a log that is off): it is
	// neither opened nor rotated, and its errors are counted as a file's.
	Out io.Writer
	// BufferLines is the queue length between Write and the file. When it is
	// full, Write drops the line rather than wait. Default 8192.
	BufferLines int
}

// WriterStats counts what happened to the lines given to an AsyncWriter.
type WriterStats struct {
	// Written is lines handed to the file successfully.
	Written uint64 `json:"written"`
	// Dropped is lines lost: the queue was full, the writer was closed, a
	// write failed with them buffered, or Close ran out of time.
	Dropped uint64 `json:"dropped"`
	// Errors is failed open, write and close attempts.
	Errors uint64 `json:"errors"`
	// LastError is the text of the most recent error, "" if none.
	LastError string `json:"last_error,omitempty"`
}

const (
	defaultMaxSizeMB   = 100
	defaultMaxBackups  = 5
	defaultBufferLines = 8192

	// flushInterval bounds how long a line can sit in the bufio buffer while
	// the queue stays busy; an idle queue flushes at once.
	flushInterval = 200 * time.Millisecond
	// reopenInterval paces open retries after a failure, so a missing
	// directory or full disk costs one syscall a second, not one per line.
	reopenInterval = time.Second
	// closeTimeout bounds Close's flush so shutdown never hangs on a log.
	closeTimeout = 2 * time.Second

	writeBufferSize = 64 << 10
	// maxPooledLine keeps one huge line from pinning a big buffer in the pool.
	maxPooledLine = 64 << 10
)

// linePool recycles line buffers so steady-state logging does not allocate.
// It holds *[]byte, not []byte, because putting a slice into a Pool
// allocates for the interface conversion.
var linePool = sync.Pool{New: func() any {
	b := make([]byte, 0, 512)
	return &b
}}

func getLine() *[]byte { return linePool.Get().(*[]byte) }

func putLine(bp *[]byte) {
	if cap(*bp) > maxPooledLine {
		return
	}
	*bp = (*bp)[:0]
	linePool.Put(bp)
}

// AsyncWriter writes lines to a rotating file from its own goroutine, so
// callers never wait for the disk. Write copies the line into a pooled buffer
// and queues it; the goroutine batches queued lines through a bufio.Writer
// into a timberjack.Logger (size-based rotation).
//
// Failures never reach the caller: when the file cannot be opened the lines
// stay queued (the queue is the outage buffer; once it is full new lines are
// dropped) and opening is retried about once a second; when a write fails the
// buffered lines are dropped, the file is closed and reopened on the same
// schedule. All of it is visible in Stats.
//
// The goroutine is started by NewAsyncWriter and stopped by Close.
type AsyncWriter struct {
	path  string
	opt   WriterOptions
	queue chan *[]byte
	stop  chan struct{} // closed by Close to tell run to finish
	sync  chan chan struct{}
	done  chan struct{} // closed by run when it has returned

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error

	written atomic.Uint64
	dropped atomic.Uint64
	errors  atomic.Uint64
	errMu   sync.Mutex
	lastErr error

	// Owned by the run goroutine; nobody else touches them.
	out       io.WriteCloser // nil while the file is not open
	bw        *bufio.Writer
	pending   uint64 // lines in bw not yet flushed
	lastFlush time.Time
	nextOpen  time.Time
	runErr    error // result of the final flush, read by Close after done
}

// NewAsyncWriter starts a writer for path. It never fails: a path that
// cannot be opened now is retried in the background.
func NewAsyncWriter(path string, opt WriterOptions) *AsyncWriter {
	if opt.MaxSizeMB <= 0 {
		opt.MaxSizeMB = defaultMaxSizeMB
	}
	if opt.MaxBackups <= 0 {
		opt.MaxBackups = defaultMaxBackups
	}
	if opt.BufferLines <= 0 {
		opt.BufferLines = defaultBufferLines
	}
	w := &AsyncWriter{
		path:  path,
		opt:   opt,
		queue: make(chan *[]byte, opt.BufferLines),
		stop:  make(chan struct{}),
		sync:  make(chan chan struct{}),
		done:  make(chan struct{}),
	}
	go w.run()
	return w
}

// Write queues a copy of line (a trailing newline is added if missing) and
// returns at once; line may be reused as soon as Write returns. If the queue
// is full or the writer is closed, the line is dropped and counted.
func (w *AsyncWriter) Write(line []byte) {
	if len(line) == 0 {
		return
	}
	if w.closed.Load() {
		w.dropped.Add(1)
		return
	}
	bp := getLine()
	b := append(*bp, line...)
	if b[len(b)-1] != '\n' {
		b = append(b, '\n')
	}
	*bp = b
	w.enqueue(bp)
}

// enqueue hands a pooled buffer (ending in '\n') to the writer goroutine,
// which returns it to the pool. It never blocks.
func (w *AsyncWriter) enqueue(bp *[]byte) {
	if w.closed.Load() {
		w.dropped.Add(1)
		putLine(bp)
		return
	}
	select {
	case w.queue <- bp:
	default:
		w.dropped.Add(1)
		putLine(bp)
	}
}

// Stats returns the counters so far. Safe to call at any time.
func (w *AsyncWriter) Stats() WriterStats {
	s := WriterStats{
		Written: w.written.Load(),
		Dropped: w.dropped.Load(),
		Errors:  w.errors.Load(),
	}
	w.errMu.Lock()
	if w.lastErr != nil {
		s.LastError = w.lastErr.Error()
	}
	w.errMu.Unlock()
	return s
}

// Close flushes the queued lines (giving up after about two seconds), closes
// the file and stops the goroutine. Later Writes are dropped and counted.
// It is safe to call more than once; the error reports lines that could not
// be written or a failed close, and is only informational.
func (w *AsyncWriter) Close() error {
	w.closeOnce.Do(func() {
		w.closed.Store(true)
		close(w.stop)
		select {
		case <-w.done:
			w.closeErr = w.runErr
		case <-time.After(closeTimeout + time.Second):
			// The goroutine is stuck in a write to a hung disk. It has been
			// told to stop and exits when that write returns; Close must not
			// hang shutdown waiting for it.
			w.closeErr = fmt.Errorf("close %s: writer still busy after %v", w.path, closeTimeout)
			return
		}
		// A Write that passed the closed check just before Close may have
		// queued after run's last drain; count it rather than lose it silently.
		w.discardQueue()
	})
	return w.closeErr
}

func (w *AsyncWriter) run() {
	defer close(w.done)
	tick := time.NewTicker(flushInterval)
	defer tick.Stop()
	for {
		if w.out == nil && !time.Now().Before(w.nextOpen) {
			w.open()
		}
		if w.out == nil {
			// Not open: leave lines in the queue, they are written once the
			// file opens, and wait for the next retry.
			select {
			case <-tick.C:
			case <-w.stop:
				w.shutdown()
				return
			}
			continue
		}
		select {
		case bp := <-w.queue:
			w.batch(bp)
		case <-tick.C:
			w.flush()
		case reply := <-w.sync:
			select {
			case bp := <-w.queue:
				w.batch(bp)
			default:
				w.flush()
			}
			close(reply)
		case <-w.stop:
			w.shutdown()
			return
		}
	}
}

// Sync writes what is queued now and returns once it is on disk, or after
// timeout. Readers of the file (diagnose) call it so that they see every
// request up to now.
func (w *AsyncWriter) Sync(timeout time.Duration) {
	reply := make(chan struct{})
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case w.sync <- reply:
	case <-t.C:
		return
	case <-w.done:
		return
	}
	select {
	case <-reply:
	case <-t.C:
	}
}

// batch writes bp and everything else queued within linger, then flushes,
// so one wake-up costs one write syscall however many lines arrived.
func (w *AsyncWriter) batch(bp *[]byte) {
	w.add(bp)
	lingered := false
	for n := 1; w.out != nil; n++ {
		select {
		case bp = <-w.queue:
			w.add(bp)
			// Under sustained load the queue never empties; still get lines
			// to disk regularly. Checked every 256 lines to keep time.Now off
			// the per-line cost.
			if n%256 == 0 && time.Since(w.lastFlush) >= flushInterval {
				w.flush()
			}
		default:
			if !lingered {
				// Let the lines of the next moment gather in the queue,
				// where queuing them wakes nobody: under load this turns
				// a wake-up and a write per request into one per linger.
				lingered = true
				time.Sleep(linger)
				continue
			}
			w.flush()
			return
		}
	}
}

// linger is how long a batch waits for more lines before it is written.
// A write to the log file costs a syscall (~25 us on a virtual machine
// whose syscalls trap); at 1 ms a busy gateway made ~600 a second, one
// per ~25 lines. 5 ms makes it one per ~125 lines, and is still far
// below flushInterval, the bound on a line's wait under sustained load.
const linger = 5 * time.Millisecond

// add buffers one line. It flushes first rather than let bufio flush by
// itself, so that pending always counts exactly the lines a failed write
// loses.
func (w *AsyncWriter) add(bp *[]byte) {
	defer putLine(bp)
	if w.out == nil {
		w.dropped.Add(1)
		return
	}
	line := *bp
	if len(line) > w.bw.Available() && w.bw.Buffered() > 0 && !w.flush() {
		w.dropped.Add(1)
		return
	}
	w.pending++
	if _, err := w.bw.Write(line); err != nil {
		w.fail(fmt.Errorf("write log file: %w", err))
	}
}

// flush writes the buffered lines; false means they were lost and the file
// has been closed for a later reopen.
func (w *AsyncWriter) flush() bool {
	if w.out == nil {
		return false
	}
	if w.bw.Buffered() > 0 {
		if err := w.bw.Flush(); err != nil {
			w.fail(fmt.Errorf("write log file: %w", err))
			return false
		}
	}
	w.written.Add(w.pending)
	w.pending = 0
	w.lastFlush = time.Now()
	return true
}

// fail drops the buffered lines and closes the file; run reopens it after
// reopenInterval. Reopening, rather than writing on, recovers from a file
// that was removed or a disk that was full, and paces the retries.
func (w *AsyncWriter) fail(err error) {
	w.setErr(err)
	w.dropped.Add(w.pending)
	w.pending = 0
	w.bw.Reset(nil) // clears bufio's sticky error and the lost bytes
	if cerr := w.out.Close(); cerr != nil {
		w.setErr(fmt.Errorf("close log file: %w", cerr))
	}
	w.out = nil
	w.nextOpen = time.Now().Add(reopenInterval)
}

// open checks that the file can be opened for appending before handing it to
// timberjack, which only opens on its first Write: finding out here keeps
// lines queued instead of losing a batch per retry.
func (w *AsyncWriter) open() {
	if w.opt.Out != nil {
		w.out = nopCloser{w.opt.Out}
		w.setOut()
		return
	}
	if err := os.MkdirAll(filepath.Dir(w.path), 0o755); err != nil {
		w.openFailed(fmt.Errorf("create log directory: %w", err))
		return
	}
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		w.openFailed(fmt.Errorf("open log file: %w", err))
		return
	}
	if err := f.Close(); err != nil {
		w.openFailed(fmt.Errorf("open log file: %w", err))
		return
	}
	w.out = &timberjack.Logger{
		Filename:   w.path,
		MaxSize:    w.opt.MaxSizeMB,
		MaxBackups: w.opt.MaxBackups,
		MaxAge:     w.opt.MaxAgeDays,
	}
	w.setOut()
}

// setOut points the buffer at w.out.
func (w *AsyncWriter) setOut() {
	if w.bw == nil {
		w.bw = bufio.NewWriterSize(w.out, writeBufferSize)
	} else {
		w.bw.Reset(w.out)
	}
	w.lastFlush = time.Now()
}

// nopCloser leaves an Out the writer does not own open.
type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

func (w *AsyncWriter) openFailed(err error) {
	w.setErr(err)
	w.nextOpen = time.Now().Add(reopenInterval)
}

// shutdown is run's last act: write what is queued within closeTimeout,
// count the rest as dropped, and close the file.
func (w *AsyncWriter) shutdown() {
	deadline := time.Now().Add(closeTimeout)
	if w.out == nil {
		// One last try: the outage may be over, and the queue holds lines.
		w.open()
	}
drain:
	for w.out != nil && time.Now().Before(deadline) {
		select {
		case bp := <-w.queue:
			w.add(bp)
		default:
			break drain
		}
	}
	w.flush()
	var errs []error
	if n := w.discardQueue(); n > 0 {
		errs = append(errs, fmt.Errorf("close %s: %d queued lines not written: %w", w.path, n, w.lastError()))
	}
	if w.out != nil {
		if err := w.out.Close(); err != nil {
			w.setErr(fmt.Errorf("close log file: %w", err))
			errs = append(errs, fmt.Errorf("close %s: %w", w.path, err))
		}
		w.out = nil
	}
	w.runErr = errors.Join(errs...)
}

// discardQueue empties the queue without writing, counting lines as dropped.
func (w *AsyncWriter) discardQueue() int {
	n := 0
	for {
		select {
		case bp := <-w.queue:
			n++
			w.dropped.Add(1)
			putLine(bp)
		default:
			return n
		}
	}
}

func (w *AsyncWriter) setErr(err error) {
	w.errors.Add(1)
	w.errMu.Lock()
	w.lastErr = err
	w.errMu.Unlock()
}

// lastError returns the last error, or one that says why lines were left if
// there was none (the close deadline passed).
func (w *AsyncWriter) lastError() error {
	w.errMu.Lock()
	defer w.errMu.Unlock()
	if w.lastErr != nil {
		return w.lastErr
	}
	return errCloseDeadline
}

var errCloseDeadline = errors.New("close deadline passed")
