package server

import (
	"context"
	"net/http"
	"time"
)

// adminCheckTimeout bounds the watchdog's check: well under the 15s
// between pings of WatchdogSec=30s.
const adminCheckTimeout = 5 * time.Second

// adminAnswers is the systemd watchdog's test that gatehouse still works:
// the admin listener accepts a new connection and answers GET /healthz.
// A new connection each time, so that a stuck accept loop fails it.
func (s *Server) adminAnswers() bool {
	ctx, cancel := context.WithTimeout(context.Background(), adminCheckTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.AdminAddr()+"/healthz", nil)
	if err != nil {
		return false
	}
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		s.log.Warn("systemd watchdog: admin listener does not answer; not sending WATCHDOG=1", "err", err)
		return false
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		s.log.Warn("systemd watchdog: admin /healthz failed; not sending WATCHDOG=1", "status", resp.Status)
		return false
	}
	return true
}
