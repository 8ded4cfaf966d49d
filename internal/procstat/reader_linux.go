//go:build linux

package procstat

import (
	"bytes"
	"fmt"
	"io"
	"net"
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
				listening[sk.local()] = true
			case sk.outbound:
				outbound[ConnGroup{Remote: sk.remote(), State: tcpStates[sk.state]}]++
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

// socket is one TCP socket of the socket tables. Its addresses are kept
// as the table's hex and formatted only for the sockets an instance owns:
// a busy host has thousands of sockets, of which the instances own a few.
type socket struct {
	localHex, remoteHex []byte
	state               uint64
	// outbound: a connection this side opened, judged by the local port
	// not being one that some socket listens on.
	outbound bool
}

func (s socket) local() string  { return hexHostPort(s.localHex) }
func (s socket) remote() string { return hexHostPort(s.remoteHex) }

const stateListen = 10

var tcpStates = map[uint64]string{
	1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2", 6: "TIME_WAIT",
	7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING",
}

// readSockets reads /proc/net/tcp and tcp6 into sockets by inode.
// Sockets without an inode (TIME_WAIT, which belong to no process) are
// skipped before their addresses are looked at.
func readSockets() map[uint64]socket {
	type line struct {
		inode, state, localPort uint64
		local, remote           []byte
	}
	var lines []line
	listenPorts := map[uint64]bool{}
	for _, name := range []string{"/net/tcp", "/net/tcp6"} {
		data, err := readAll(procRoot + name)
		if err != nil {
			continue
		}
		// Skip the header line.
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			data = data[i+1:]
		} else {
			data = nil
		}
		for len(data) > 0 {
			var l []byte
			if i := bytes.IndexByte(data, '\n'); i >= 0 {
				l, data = data[:i], data[i+1:]
			} else {
				l, data = data, nil
			}
			// sl local rem st tx:rx tr:when retrnsmt uid timeout inode
			var f [10][]byte
			rest := l
			for k := range f {
				f[k], rest = nextField(rest)
			}
			if len(f[9]) == 0 {
				continue
			}
			st, ok1 := hexUint(f[3])
			inode, ok2 := atoi(f[9])
			lport, ok3 := hexPort(f[1])
			if !ok1 || !ok2 || !ok3 {
				continue
			}
			if st == stateListen {
				listenPorts[lport] = true
			}
			if inode == 0 {
				continue
			}
			lines = append(lines, line{inode: uint64(inode), state: st, localPort: lport, local: f[1], remote: f[2]})
		}
	}
	out := make(map[uint64]socket, len(lines))
	for _, l := range lines {
		out[l.inode] = socket{
			localHex:  l.local,
			remoteHex: l.remote,
			state:     l.state,
			outbound:  l.state != stateListen && !listenPorts[l.localPort],
		}
	}
	return out
}

// readAll reads a /proc file (whose size is reported as 0) in few reads:
// the kernel regenerates the socket tables on every read call.
func readAll(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, 0, 256<<10)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := f.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF || (err == nil && n == 0) {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// hexUint parses a hex number.
func hexUint(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 16 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		v, ok := unhex(c)
		if !ok {
			return 0, false
		}
		n = n<<4 | uint64(v)
	}
	return n, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// hexPort is the port of a table address "0100007F:1F90".
func hexPort(addr []byte) (uint64, bool) {
	i := bytes.IndexByte(addr, ':')
	if i < 0 {
		return 0, false
	}
	return hexUint(addr[i+1:])
}

// hexHostPort formats a table address "0100007F:1F90" as "127.0.0.1:8080".
// The kernel writes the address as 32-bit words in host byte order
// (little-endian on the platforms gatehouse runs on), as procfs assumes.
func hexHostPort(addr []byte) string {
	i := bytes.IndexByte(addr, ':')
	if i < 0 || (i != 8 && i != 32) {
		return string(addr)
	}
	raw := make([]byte, i/2)
	for k := range raw {
		hi, ok1 := unhex(addr[2*k])
		lo, ok2 := unhex(addr[2*k+1])
		if !ok1 || !ok2 {
			return string(addr)
		}
		raw[k] = hi<<4 | lo
	}
	ip := make(net.IP, len(raw))
	for w := 0; w < len(raw); w += 4 {
		ip[w], ip[w+1], ip[w+2], ip[w+3] = raw[w+3], raw[w+2], raw[w+1], raw[w]
	}
	port, _ := hexUint(addr[i+1:])
	return net.JoinHostPort(ip.String(), strconv.FormatUint(port, 10))
}
