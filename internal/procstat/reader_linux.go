//go:build linux

package procstat

import (
	"bytes"
	"fmt"
	"os"
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
	socks := readSockets()
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
// Every process's stat line is looked at for its group, but only the
// members' are parsed in full: on a host with hundreds of processes that
// is most of the cost of a sample.
func groupMembers(fs procfs.FS, want map[int]bool) (map[int][]member, error) {
	d, err := os.Open(procRoot)
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var buf [4096]byte
	out := map[int][]member{}
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil {
			continue
		}
		pgrp, state, ok := quickStat(procRoot+"/"+name+"/stat", buf[:])
		if !ok || !want[pgrp] || state == 'Z' {
			continue
		}
		p, err := fs.Proc(pid)
		if err != nil {
			continue
		}
		st, err := p.Stat()
		if err != nil || st.PGRP != pgrp || st.State == "Z" {
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

const procRoot = "/proc"

// quickStat reads a /proc/PID/stat line into buf and returns the process
// group and the state letter, without parsing the rest.
func quickStat(path string, buf []byte) (pgrp int, state byte, ok bool) {
	file, err := os.Open(path)
	if err != nil {
		return 0, 0, false
	}
	n, err := file.Read(buf)
	file.Close()
	if err != nil || n == 0 {
		return 0, 0, false
	}
	line := buf[:n]
	// The command name in parentheses may hold spaces or ')'.
	i := bytes.LastIndexByte(line, ')')
	if i < 0 {
		return 0, 0, false
	}
	// ") S PPID PGRP ..."
	var f [3][]byte
	rest := line[i+1:]
	for k := range f {
		f[k], rest = nextField(rest)
	}
	if len(f[0]) != 1 {
		return 0, 0, false
	}
	pgrp, ok = atoi(f[2])
	return pgrp, f[0][0], ok
}

// nextField returns the first space-separated field of b and the rest.
func nextField(b []byte) (field, rest []byte) {
	i := 0
	for i < len(b) && b[i] == ' ' {
		i++
	}
	j := i
	for j < len(b) && b[j] != ' ' && b[j] != '\n' {
		j++
	}
	return b[i:j], b[j:]
}

// atoi parses a non-negative decimal without allocating.
func atoi(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
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
				listening[sk.local.String()] = true
			case sk.outbound:
				outbound[ConnGroup{Remote: sk.remote.String(), State: tcpStates[sk.state]}]++
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
