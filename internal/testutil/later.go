package testutil

import (
	"io"
	"net/http"
)

// Answer is what a request sent in the background got: its status and
// body, or the error that ended it.
type Answer struct {
	Status int
	Body   string
	Err    error
}

// GetLater sends GET url with c on a goroutine of its own, for a test
// that acts while the request is in flight; its answer comes on the
// channel once whole.
func GetLater(c *http.Client, url string) <-chan Answer {
	answered := make(chan Answer, 1)
	go func() {
		resp, err := c.Get(url)
		if err != nil {
			answered <- Answer{Err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		answered <- Answer{resp.StatusCode, string(b), err}
	}()
	return answered
}
