//go:build linux

package procstat

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/procfs"
)

// NewReader returns a reader of /proc.
func NewReader() Reader { return &procReader{} }

type procReader struct{}

// Read scans /proc once for all groups: one pass over the process table,
// and one read of the socket tables, whatever the number of instances.
func (r *procReader) Read(pgids []int) (map[int]Stats, error) {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return nil, fmt.Errorf("open /proc: %w", err)
	}
	want := make(map[int]bool, len(pgids))
	for _, g := range pgids {
		want[g] = true
	}
	members, err := groupMembers(fs, want)
	if err != nil {
		return nil, err
	}
	socks := readSockets(fs)
	out := make(map[int]Stats, len(members))
	now := time.Now()
	for g, procs := range members {
		out[g] = treeStats(procs, socks, now)
	}
	return out, nil
}

// member is one process of a group with its stat line.
type member struct {
	proc procfs.Proc
	stat procfs.ProcStat
}

// groupMembers finds the processes of each wanted group, leader first.
func groupMembers(fs procfs.FS, want map[int]bool) (map[int][]member, error) {
	procs, err := fs.AllProcs()
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	out := map[int][]member{}
	for _, p := range procs {
		st, err := p.Stat()
		if err != nil || !want[st.PGRP] || st.State == "Z" {
			continue
		}
		m := member{proc: p, stat: st}
		if p.PID == st.PGRP {
			out[st.PGRP] = append([]member{m}, out[st.PGRP]...)
		} else {
			out[st.PGRP] = append(out[st.PGRP], m)
		}
	}
	return out, nil
}

func treeStats(procs []member, socks map[uint64]socket, now time.Time) Stats {
	s := Stats{At: now}
	listening := map[string]bool{}
	outbound := map[ConnGroup]int{}
	for _, m := range procs {
		s.PIDs = append(s.PIDs, m.proc.PID)
		s.RSS += uint64(m.stat.ResidentMemory())
		s.CPUSeconds += m.stat.CPUTime()
		s.Threads += m.stat.NumThreads
		if sm, err := m.proc.ProcSMapsRollup(); err == nil {
			s.Private += sm.PrivateClean + sm.PrivateDirty
		}
		targets, err := m.proc.FileDescriptorTargets()
		if err != nil {
			continue
		}
		s.FDs += len(targets)
		for _, t := range targets {
			ino, ok := socketInode(t)
			if !ok {
				continue
			}
			sk, ok := socks[ino]
			switch {
			case !ok:
			case sk.state == stateListen:
				listening[sk.local] = true
			case sk.outbound:
				outbound[ConnGroup{Remote: sk.remote, State: tcpStates[sk.state]}]++
				s.OutboundTotal++
			}
		}
	}
	for a := range listening {
		s.Listening = append(s.Listening, a)
	}
	sort.Strings(s.Listening)
	for g, n := range outbound {
		g.Count = n
		s.Outbound = append(s.Outbound, g)
	}
	sort.Slice(s.Outbound, func(i, j int) bool { return s.Outbound[i].Count > s.Outbound[j].Count })
	return s
}

// socketInode parses "socket:[12345]".
func socketInode(target string) (uint64, bool) {
	rest, ok := strings.CutPrefix(target, "socket:[")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(strings.TrimSuffix(rest, "]"), 10, 64)
	return n, err == nil
}

// socket is one TCP socket of the socket tables.
type socket struct {
	local, remote string
	state         uint64
	// outbound: a connection this side opened, judged by the local port
	// not being one that some socket listens on.
	outbound bool
}

const stateListen = 10

var tcpStates = map[uint64]string{
	1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2", 6: "TIME_WAIT",
	7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING",
}

func readSockets(fs procfs.FS) map[uint64]socket {
	var lines procfs.NetTCP
	if l, err := fs.NetTCP(); err == nil {
		lines = append(lines, l...)
	}
	if l, err := fs.NetTCP6(); err == nil {
		lines = append(lines, l...)
	}
	listenPorts := map[uint64]bool{}
	for _, l := range lines {
		if l.St == stateListen {
			listenPorts[l.LocalPort] = true
		}
	}
	out := make(map[uint64]socket, len(lines))
	for _, l := range lines {
		if l.Inode == 0 {
			continue
		}
		out[l.Inode] = socket{
			local:    hostPort(l.LocalAddr, l.LocalPort),
			remote:   hostPort(l.RemAddr, l.RemPort),
			state:    l.St,
			outbound: l.St != stateListen && !listenPorts[l.LocalPort],
		}
	}
	return out
}

func hostPort(ip net.IP, port uint64) string {
	return net.JoinHostPort(ip.String(), strconv.FormatUint(port, 10))
}
