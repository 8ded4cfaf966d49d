package admin

import (
	"context"
	"encoding/json"
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
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, nil)
	if err != nil {
		return nil, fmt.Errorf("admin request: %w", err)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reach gatehouse admin at %s (is gatehouse running?): %w", c.Base, err)
	}
	if resp.StatusCode >= 400 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(body)))
	}
	return resp, nil
}
