package alerts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
)

// Results of a notification, the result label of
// gatehouse_alert_notifications_total.
const (
	ResultSent    = "sent"    // the receiver answered 2xx
	ResultRetried = "retried" // an attempt failed and another follows
	ResultFailed  = "failed"  // every attempt failed, or the receiver refused it (4xx)
	ResultDropped = "dropped" // the queue was full, or shutdown came first
)

// Retry back-off between attempts: 1s doubling to 1m. A receiver's
// Retry-After lengthens a wait, up to the same minute.
const (
	retryBase = time.Second
	retryMax  = time.Minute
)

// notifier delivers to one receiver from its own queue, in its own
// goroutine, so that nothing upstream ever waits for the receiver.
type notifier struct {
	r      *config.Receiver
	client *http.Client
	log    *slog.Logger
	result func(receiver, result string)
	// base and cap of the retry back-off; tests shorten them.
	retryBase, retryMax time.Duration

	mu    sync.Mutex
	queue []Notification
	wake  chan struct{} // has room for one: "the queue is not empty"

	// closing ends the worker once its queue is empty; ctx ends any
	// attempt or wait under way (the flush deadline).
	closing   chan struct{}
	closeOnce sync.Once
	ctx       context.Context
	cancel    context.CancelFunc
	done      chan struct{}

	// limiter: tokens refill at rate_per_minute, up to burst.
	tokens float64
	last   time.Time
}

func newNotifier(r *config.Receiver, log *slog.Logger, result func(receiver, result string)) *notifier {
	ctx, cancel := context.WithCancel(context.Background())
	return &notifier{
		r: r, log: log, result: result, retryBase: retryBase, retryMax: retryMax,
		// No redirects: a webhook that redirects is misconfigured, and
		// following it would resend the body (and headers) elsewhere.
		client: &http.Client{Timeout: r.Timeout.D(), CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		wake:   make(chan struct{}, 1), closing: make(chan struct{}), ctx: ctx, cancel: cancel, done: make(chan struct{}),
		tokens: float64(burst(r)),
	}
}

// burst is how many notifications may go at once before the rate limit
// spaces them: an incident often fires several alerts together.
func burst(r *config.Receiver) int { return min(r.RatePerMinute, 10) }

// enqueue adds n without blocking; a full queue drops its oldest.
func (q *notifier) enqueue(n Notification) {
	q.mu.Lock()
	dropped := len(q.queue) >= q.r.QueueSize
	if dropped {
		q.queue = append(q.queue[:0], q.queue[1:]...)
	}
	q.queue = append(q.queue, n)
	q.mu.Unlock()
	if dropped {
		q.result(q.r.Name, ResultDropped)
	}
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *notifier) pop() (Notification, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.queue) == 0 {
		return Notification{}, false
	}
	n := q.queue[0]
	q.queue = q.queue[1:]
	return n, true
}

// run delivers until close; it is the notifier's one goroutine.
func (q *notifier) run() {
	defer close(q.done)
	for {
		n, ok := q.pop()
		if !ok {
			select {
			case <-q.wake:
				continue
			case <-q.closing:
				return
			case <-q.ctx.Done():
				return
			}
		}
		if q.ctx.Err() != nil {
			q.result(q.r.Name, ResultDropped)
			continue
		}
		q.deliver(&n)
	}
}

// close stops the worker: what is queued is still tried until deadline,
// then abandoned (counted as dropped).
func (q *notifier) close(deadline time.Duration) {
	q.closeOnce.Do(func() { close(q.closing) })
	t := time.AfterFunc(deadline, q.cancel)
	<-q.done
	t.Stop()
	q.cancel()
}

// deliver sends n, retrying with back-off, after the rate limit allows.
func (q *notifier) deliver(n *Notification) {
	if !q.take() {
		q.result(q.r.Name, ResultDropped)
		return
	}
	body, err := render(q.r, n)
	if err != nil { // only plain strings and times: cannot happen
		q.result(q.r.Name, ResultFailed)
		return
	}
	delay := q.retryBase
	for attempt := 1; ; attempt++ {
		err := q.post(body)
		if err == nil {
			q.result(q.r.Name, ResultSent)
			return
		}
		var perm *permanentError
		if errors.As(err, &perm) || attempt >= q.r.MaxAttempts || q.ctx.Err() != nil {
			q.log.Warn("alert notification failed", "receiver", q.r.Name, "alert", n.Alert, "status", n.Status, "attempts", attempt, "err", err)
			q.result(q.r.Name, ResultFailed)
			return
		}
		q.result(q.r.Name, ResultRetried)
		wait := delay
		var busy *busyError
		if errors.As(err, &busy) {
			wait = max(wait, min(busy.retryAfter, q.retryMax))
		}
		if !sleep(q.ctx, wait) {
			q.result(q.r.Name, ResultFailed)
			return
		}
		delay = min(2*delay, q.retryMax)
	}
}

// take waits for a rate-limit token; false when the flush deadline
// came first.
func (q *notifier) take() bool {
	per := time.Minute / time.Duration(q.r.RatePerMinute)
	for {
		now := time.Now()
		if !q.last.IsZero() {
			q.tokens = min(float64(burst(q.r)), q.tokens+float64(now.Sub(q.last))/float64(per))
		}
		q.last = now
		if q.tokens >= 1 {
			q.tokens--
			return true
		}
		if !sleep(q.ctx, time.Duration((1-q.tokens)*float64(per))) {
			return false
		}
	}
}

// permanentError is a refusal retrying will not change (a 4xx other
// than 408 and 429).
type permanentError struct{ status int }

func (e *permanentError) Error() string { return fmt.Sprintf("receiver answered %d", e.status) }

func (q *notifier) post(body []byte) error {
	req, err := http.NewRequestWithContext(q.ctx, http.MethodPost, q.r.URL, bytes.NewReader(body))
	if err != nil {
		return &permanentError{}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "gatehouse-alerts")
	for k, v := range q.r.Headers {
		req.Header.Set(k, v)
	}
	resp, err := q.client.Do(req)
	if err != nil {
		// Not the *url.Error itself: its text has the URL, whose path or
		// query is often the webhook's secret (Slack's is), and this
		// error is logged.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("post to %s: %w", q.r.Name, err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // so the connection is reused
	resp.Body.Close()
	switch s := resp.StatusCode; {
	case s >= 200 && s < 300:
		return nil
	case s >= 400 && s < 500 && s != http.StatusRequestTimeout && s != http.StatusTooManyRequests:
		return &permanentError{status: s}
	default:
		err := fmt.Errorf("receiver %s answered %d", q.r.Name, s)
		if d := retryAfter(resp.Header.Get("Retry-After"), time.Now()); d > 0 {
			return &busyError{err: err, retryAfter: d}
		}
		return err
	}
}

// busyError is a refusal for now (a 429 or 503, say) whose Retry-After
// asks the next attempt to wait.
type busyError struct {
	err        error
	retryAfter time.Duration
}

func (e *busyError) Error() string { return e.err.Error() }
func (e *busyError) Unwrap() error { return e.err }

// retryAfter is how long a Retry-After header (seconds or an HTTP date)
// asks to wait from now; 0 when absent or unreadable.
func retryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return 0
	}
	if s, err := strconv.Atoi(h); err == nil {
		return time.Duration(max(s, 0)) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}

// sleep waits d unless ctx ends first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
