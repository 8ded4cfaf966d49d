package procstat

import (
	"errors"
	"net"
	"strconv"
	"time"
)

// ErrUnsupported is returned where process statistics cannot be read.
var ErrUnsupported = errors.New("process statistics are not supported on this system")

// Stats describe one instance's process tree at one moment.
type Stats struct {
	At time.Time `json:"at"`
	// PIDs are the processes of the tree, leader first.
	PIDs []int `json:"pids"`
	// RSS is resident memory, summed over the tree.
	RSS uint64 `json:"rss_bytes"`
	// Private is memory no other process shares (private clean + dirty
	// pages): what the articles' "private bytes" trigger measures.
	Private    uint64  `json:"private_bytes"`
	CPUSeconds float64 `json:"cpu_seconds"`
	Threads    int     `json:"threads"`
	FDs        int     `json:"fds"`
	// Listening are the addresses the tree listens on ("127.0.0.1:3000").
	Listening []string `json:"listening"`
	// Outbound groups the tree's outbound TCP connections by remote
	// address and state.
	Outbound []ConnGroup `json:"outbound"`
	// OutboundTotal counts all outbound connections.
	OutboundTotal int `json:"outbound_total"`
}

// ConnGroup is a count of connections to one remote address in one state.
type ConnGroup struct {
	Remote string `json:"remote"`
	State  string `json:"state"`
	Count  int    `json:"count"`
}

// Reader reads Stats for process groups.
type Reader interface {
	// Read returns the stats of each process group leader in pgids, keyed
	// by leader pid; a group that no longer exists is missing.
	Read(pgids []int) (map[int]Stats, error)
}

// ListensOn reports whether the tree listens on port, on any address.
func (s *Stats) ListensOn(port int) bool {
	p := strconv.Itoa(port)
	for _, a := range s.Listening {
		if _, ap, err := net.SplitHostPort(a); err == nil && ap == p {
			return true
		}
	}
	return false
}
