//go:build !linux

package front

import "errors"

// poller parks idle connections with epoll, which only Linux has:
// elsewhere every connection keeps its goroutine.
type poller struct{}

func newPoller() (*poller, error) { return nil, errors.ErrUnsupported }

func (p *poller) park(fc *conn) bool             { return false }
func (p *poller) parkH2(*conn, func() bool) bool { return false }
func (p *poller) unparkH2(*conn)                 {}
func (p *poller) closeAll()                      {}
func (p *poller) closeConn(*conn) bool           { return false }
func (p *poller) stop()                          {}
func (p *poller) parkedCount() int               { return 0 }
