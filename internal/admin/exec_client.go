package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"

	"github.com/gatehouse/gatehouse/internal/execwire"
)

// ExecNotRunError is an exec whose command could not be started (its
// program not found, or not executable): Code is what a shell would exit
// with, 127 or 126.
type ExecNotRunError struct {
	Code    int
	Message string
}

func (e *ExecNotRunError) Error() string { return e.Message }

// Exec runs argv in the world of an instance (path: /api/instances/ID/exec
// or /api/apps/APP/exec) and returns its exit code. stdin is sent as it
// is read, its end as the command's stdin's end; the command's output is
// written to stdout and stderr as it comes. ctx's end closes the
// connection, which kills the command. Exec returns as the command ends,
// without waiting for a Read of stdin in progress (a terminal's may never
// return): that copy ends at its next write.
func (c *Client) Exec(ctx context.Context, path string, argv []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	body, err := json.Marshal(ExecRequest{Argv: argv})
	if err != nil {
		return 0, fmt.Errorf("exec request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Base+path, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("admin request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", execwire.Protocol)
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	// A transport of its own, without keep-alive: the connection is the
	// command's, and nothing of it is left idle when Exec returns.
	tr := &http.Transport{DisableKeepAlives: true}
	if base, ok := c.httpTransport().(*http.Transport); ok && base != nil {
		tr = base.Clone()
		tr.DisableKeepAlives = true
	}
	defer tr.CloseIdleConnections()
	// The command runs as long as it runs, but the switch to it comes
	// once it started: a gatehouse that accepts and does not answer
	// (wedged) is an error within the client's timeout, as for every
	// other request.
	if c.HTTP != nil {
		tr.ResponseHeaderTimeout = c.HTTP.Timeout
	}
	// The TCP connection under it, for an abort: see below.
	var tcp atomic.Pointer[net.TCPConn]
	dial := tr.DialContext
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok {
			tcp.Store(tc)
		}
		return c, err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		if c.ConfigErr != nil {
			return 0, c.ConfigErr
		}
		return 0, fmt.Errorf("reach gatehouse admin at %s (is gatehouse running?): %w", c.Base, err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		var nr ExecRefusal
		switch {
		case resp.StatusCode == http.StatusUnauthorized && c.ConfigErr != nil:
			return 0, c.ConfigErr
		case resp.StatusCode == http.StatusUnprocessableEntity && json.Unmarshal(b, &nr) == nil && nr.ExitCode != 0:
			return 0, &ExecNotRunError{Code: nr.ExitCode, Message: nr.Error}
		}
		return 0, newHTTPError(resp.StatusCode, b)
	}
	conn, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		resp.Body.Close()
		return 0, errors.New("exec: the admin API switched protocols without a connection to speak on")
	}
	defer conn.Close()
	// ctx's end aborts the connection (a reset, not a close): a command
	// that does not read its stdin has a full window of it in front of
	// a close, which gatehouse would not see until it read that far.
	stop := context.AfterFunc(ctx, func() {
		if tc := tcp.Load(); tc != nil {
			tc.SetLinger(0)
		}
		conn.Close()
	})
	defer stop()
	go sendStdin(conn, stdin)
	fr := execwire.NewReader(conn)
	for {
		stream, p, err := fr.Next()
		if err != nil {
			if ctx.Err() != nil {
				return 0, ctx.Err()
			}
			return 0, fmt.Errorf("exec: the connection ended before the command's exit status: %w", err)
		}
		switch stream {
		case execwire.Stdout:
			_, err = stdout.Write(p)
		case execwire.Stderr:
			_, err = stderr.Write(p)
		case execwire.Exit:
			return execwire.ExitCode(p)
		}
		if err != nil {
			// Nowhere to put the output: end the command rather than
			// let it run unseen.
			return 0, fmt.Errorf("exec: write the command's output: %w", err)
		}
	}
}

// sendStdin copies stdin into stdin frames, then the empty frame of its
// end; it returns when stdin ends or the connection fails.
func sendStdin(conn io.Writer, stdin io.Reader) {
	if stdin == nil {
		conn.Write(execwire.Append(nil, execwire.Stdin, nil))
		return
	}
	buf := make([]byte, execwire.HeaderLen+execwire.MaxPayload)
	for {
		n, err := stdin.Read(buf[execwire.HeaderLen:])
		if n > 0 {
			execwire.PutHeader(buf, execwire.Stdin, n)
			if _, werr := conn.Write(buf[:execwire.HeaderLen+n]); werr != nil {
				return
			}
		}
		if err != nil {
			conn.Write(execwire.Append(nil, execwire.Stdin, nil))
			return
		}
	}
}

// httpTransport is the transport of the client's HTTP client; nil for
// the default.
func (c *Client) httpTransport() http.RoundTripper {
	if c.HTTP == nil {
		return nil
	}
	return c.HTTP.Transport
}
