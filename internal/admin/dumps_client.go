package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/gatehouse/gatehouse/internal/dumps"
)

// Dump asks for a dump (POST path?kind=…) and returns what was taken.
func (c *Client) Dump(ctx context.Context, path, kind string, allowExit bool) (dumps.Meta, error) {
	var m dumps.Meta
	q := url.Values{"kind": {kind}}
	if allowExit {
		q.Set("allow_exit", strconv.FormatBool(allowExit))
	}
	// No timeout of the client's: a core of a large process takes as long
	// as it takes; the server bounds it.
	resp, err := c.doWith(ctx, http.MethodPost, path+"?"+q.Encode(), &http.Client{})
	if err != nil {
		return m, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		return m, fmt.Errorf("decode %s: %w", path, err)
	}
	return m, nil
}

// Dumps lists the dumps kept (GET /api/dumps).
func (c *Client) Dumps(ctx context.Context) ([]dumps.Meta, error) {
	var out DumpsResponse
	return out.Dumps, c.getJSON(ctx, "/api/dumps", &out)
}

// DownloadDump copies a dump's file to w.
func (c *Client) DownloadDump(ctx context.Context, name string, w io.Writer) (int64, error) {
	resp, err := c.doWith(ctx, http.MethodGet, "/api/dumps/"+url.PathEscape(name), &http.Client{})
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("download %s: %w", name, err)
	}
	return n, nil
}

// RemoveDump deletes a dump (DELETE /api/dumps/NAME).
func (c *Client) RemoveDump(ctx context.Context, name string) error {
	resp, err := c.do(ctx, http.MethodDelete, "/api/dumps/"+url.PathEscape(name))
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}
