package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// Client talks to a running gatehouse's admin API.
type Client struct {
	// Base is the admin URL, e.g. http://127.0.0.1:9901.
	Base  string
	Token string
	HTTP  *http.Client
	// ConfigErr, if set, is why the config the token was to be read from
	// did not load: a request refused for want of a token (401), or that
	// reaches no admin API, fails with it instead, since the mistake in
	// the file is what to fix.
	ConfigErr error
}

// NewClient accepts "127.0.0.1:9901" or a full URL.
func NewClient(addr, token string) *Client {
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	return &Client{Base: strings.TrimRight(addr, "/"), Token: token, HTTP: &http.Client{Timeout: 30 * time.Second}}
}

// Status fetches GET /api/status.
func (c *Client) Status(ctx context.Context) (*StatusResponse, error) {
	var out StatusResponse
	return &out, c.getJSON(ctx, "/api/status", &out)
}

// Events fetches GET /api/events?since=.
func (c *Client) Events(ctx context.Context, since string) ([]telemetry.Event, error) {
	var out struct {
		Events []telemetry.Event `json:"events"`
	}
	return out.Events, c.getJSON(ctx, "/api/events?since="+since, &out)
}

// Logs fetches GET /api/logs with query (app, instance, lines, since).
func (c *Client) Logs(ctx context.Context, query string) ([]LogEntry, error) {
	var out struct {
		Lines []LogEntry `json:"lines"`
	}
	return out.Lines, c.getJSON(ctx, "/api/logs?"+query, &out)
}

// GetJSON fetches path and decodes its JSON answer into v.
func (c *Client) GetJSON(ctx context.Context, path string, v any) error {
	return c.getJSON(ctx, path, v)
}

// Stream opens a long-lived GET (the log stream); the caller closes the
// body. The client's timeout bounds the wait for the answer's head, not
// the stream: a gatehouse that accepts but does not answer (wedged, or
// a socket whose service does not start) is an error, not a wait for
// good.
func (c *Client) Stream(ctx context.Context, path string) (io.ReadCloser, error) {
	return c.headBounded(ctx, http.MethodGet, path)
}

// headBounded sends a request whose answer streams for as long as it
// takes, bounding only the wait for its head by the client's timeout.
func (c *Client) headBounded(ctx context.Context, method, path string) (io.ReadCloser, error) {
	ctx, cancel := context.WithCancel(ctx)
	var head *time.Timer
	if c.HTTP != nil && c.HTTP.Timeout > 0 {
		head = time.AfterFunc(c.HTTP.Timeout, cancel)
	}
	resp, err := c.doWith(ctx, method, path, &http.Client{})
	// A timer that could not be stopped has cancelled the request, or is
	// about to: the stream would be cut.
	late := head != nil && !head.Stop()
	switch {
	case late:
		cancel()
		if err == nil {
			resp.Body.Close()
		}
		return nil, fmt.Errorf("gatehouse admin at %s did not answer %s %s within %s", c.Base, method, path, c.HTTP.Timeout)
	case err != nil:
		cancel()
		return nil, err
	}
	return cancelOnClose{resp.Body, cancel}, nil
}

// cancelOnClose is a stream's body that ends its context when closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// Op starts an operation (POST path) and calls progress for each line it
// streams; the operation's failure is returned as an error. The client's
// timeout bounds the wait for the answer's head, which the admin API
// sends as the operation begins, not the operation: a rolling reload
// takes as long as the app takes to start.
func (c *Client) Op(ctx context.Context, path string, progress func(string)) error {
	body, err := c.headBounded(ctx, http.MethodPost, path)
	if err != nil {
		return err
	}
	defer body.Close()
	dec := json.NewDecoder(body)
	for {
		var l OpLine
		if err := dec.Decode(&l); err != nil {
			return fmt.Errorf("%s: the stream ended without a result: %w", path, err)
		}
		switch {
		case l.Error != "":
			return errors.New(l.Error)
		case l.OK:
			return nil
		case progress != nil:
			progress(l.Progress)
		}
	}
}

func (c *Client) getJSON(ctx context.Context, path string, v any) error {
	resp, err := c.do(ctx, http.MethodGet, path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	return nil
}

func (c *Client) do(ctx context.Context, method, path string) (*http.Response, error) {
	return c.doWith(ctx, method, path, c.HTTP)
}

// doWith sends a request with hc; streams and operations use a client
// without a timeout (see headBounded).
func (c *Client) doWith(ctx context.Context, method, path string, hc *http.Client) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, nil)
	if err != nil {
		return nil, fmt.Errorf("admin request: %w", err)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		if c.ConfigErr != nil {
			return nil, c.ConfigErr
		}
		return nil, fmt.Errorf("reach gatehouse admin at %s (is gatehouse running?): %w", c.Base, err)
	}
	if resp.StatusCode >= 400 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if resp.StatusCode == http.StatusUnauthorized && c.ConfigErr != nil {
			return nil, c.ConfigErr
		}
		return nil, newHTTPError(resp.StatusCode, body)
	}
	return resp, nil
}

// HTTPError is an admin API answer with an error status.
type HTTPError struct {
	Status  int
	Message string
}

func (e *HTTPError) Error() string { return e.Message }

func newHTTPError(status int, body []byte) *HTTPError {
	var l OpLine
	msg := strings.TrimSpace(string(body))
	if json.Unmarshal(body, &l) == nil && l.Error != "" {
		msg = l.Error
	}
	return &HTTPError{Status: status, Message: fmt.Sprintf("%s (HTTP %d)", msg, status)}
}
