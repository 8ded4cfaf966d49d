//go:build linux

package procstat

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"os"
	"strconv"
	"syscall"
)

// socket is one TCP socket of the host's socket tables.
type socket struct {
	local, remote addr
	state         uint64
	// outbound: a connection this side opened, judged by the local port
	// not being one that some socket listens on.
	outbound bool
}

// addr is a socket address, formatted only for the sockets an instance
// owns: a busy host has thousands of sockets, of which the instances own
// a few.
type addr struct {
	ip   [16]byte
	v4   bool
	port uint16
}

func (a addr) String() string {
	ip := net.IP(a.ip[:])
	if a.v4 {
		ip = net.IP(a.ip[:4])
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(int(a.port)))
}

const (
	stateSynRecv    = 3
	stateTimeWait   = 6
	stateListen     = 10
	stateNewSynRecv = 12
)

var tcpStates = map[uint64]string{
	1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2", 6: "TIME_WAIT",
	7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING",
}

// readSockets returns the host's TCP sockets that belong to a process, by
// inode. It asks the kernel over netlink (sock_diag), which filters out
// TIME_WAIT sockets before they are formatted: a gateway host has
// thousands, and /proc/net/tcp, read otherwise, costs kernel time in
// proportion to them.
func readSockets() map[uint64]socket {
	if socks, err := diagSockets(); err == nil {
		return socks
	}
	return procSockets()
}

// judge sets each socket's outbound flag from the ports that are listened
// on, and indexes the sockets by inode.
func judge(all []socketLine, listenPorts map[uint16]bool) map[uint64]socket {
	out := make(map[uint64]socket, len(all))
	for _, l := range all {
		l.s.outbound = l.s.state != stateListen && !listenPorts[l.s.local.port]
		out[l.inode] = l.s
	}
	return out
}

type socketLine struct {
	inode uint64
	s     socket
}

// diagSockets dumps IPv4 and IPv6 TCP sockets, every state but the ones
// no process owns (TIME_WAIT, SYN_RECV request sockets).
func diagSockets() (map[uint64]socket, error) {
	fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC, netlinkSockDiag)
	if err != nil {
		return nil, err
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		return nil, err
	}
	var all []socketLine
	listenPorts := map[uint16]bool{}
	buf := make([]byte, 64<<10)
	for seq, family := range []uint8{syscall.AF_INET, syscall.AF_INET6} {
		if err := diagRequest(fd, uint32(seq+1), family); err != nil {
			return nil, err
		}
		if err := diagReceive(fd, uint32(seq+1), buf, func(m []byte) {
			l, ok := parseDiagMsg(m)
			if !ok {
				return
			}
			if l.s.state == stateListen {
				listenPorts[l.s.local.port] = true
			}
			if l.inode != 0 {
				all = append(all, l)
			}
		}); err != nil {
			return nil, err
		}
	}
	return judge(all, listenPorts), nil
}

const (
	netlinkSockDiag  = 4     // NETLINK_SOCK_DIAG
	sockDiagByFamily = 20    // SOCK_DIAG_BY_FAMILY
	nlmsgHdrLen      = 16    // struct nlmsghdr
	inetDiagReqV2Len = 56    // struct inet_diag_req_v2
	inetDiagMsgLen   = 72    // struct inet_diag_msg
	nlmFRequestDump  = 0x301 // NLM_F_REQUEST | NLM_F_DUMP
	nlmsgDone        = 3
	nlmsgError       = 2
)

// diagRequest asks for a dump of family's TCP sockets.
func diagRequest(fd int, seq uint32, family uint8) error {
	var req [nlmsgHdrLen + inetDiagReqV2Len]byte
	ne := binary.NativeEndian
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], sockDiagByFamily)
	ne.PutUint16(req[6:], nlmFRequestDump)
	ne.PutUint32(req[8:], seq)
	r := req[nlmsgHdrLen:]
	r[0] = family
	r[1] = syscall.IPPROTO_TCP
	states := uint32(0xffffffff) &^ (1<<stateTimeWait | 1<<stateSynRecv | 1<<stateNewSynRecv)
	ne.PutUint32(r[4:], states)
	return syscall.Sendto(fd, req[:], 0, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK})
}

// diagReceive reads the dump's messages until it is done.
func diagReceive(fd int, seq uint32, buf []byte, each func([]byte)) error {
	ne := binary.NativeEndian
	for {
		n, _, err := syscall.Recvfrom(fd, buf, 0)
		if err != nil {
			if err == syscall.EINTR {
				continue
			}
			return err
		}
		b := buf[:n]
		for len(b) >= nlmsgHdrLen {
			l := int(ne.Uint32(b[0:]))
			typ := ne.Uint16(b[4:])
			if l < nlmsgHdrLen || l > len(b) {
				return syscall.EINVAL
			}
			if ne.Uint32(b[8:]) == seq {
				switch typ {
				case nlmsgDone:
					return nil
				case nlmsgError:
					if l >= nlmsgHdrLen+4 {
						if code := int32(ne.Uint32(b[nlmsgHdrLen:])); code != 0 {
							return syscall.Errno(-code)
						}
					}
					return nil
				case sockDiagByFamily:
					each(b[nlmsgHdrLen:l])
				}
			}
			if next := (l + 3) &^ 3; next < len(b) {
				b = b[next:]
			} else {
				b = nil
			}
		}
	}
}

// parseDiagMsg reads a struct inet_diag_msg: ports are big-endian,
// addresses in network order, the rest in host order.
func parseDiagMsg(m []byte) (socketLine, bool) {
	if len(m) < inetDiagMsgLen {
		return socketLine{}, false
	}
	var l socketLine
	l.s.state = uint64(m[1])
	id := m[4:52]
	l.s.local.port = binary.BigEndian.Uint16(id[0:])
	l.s.remote.port = binary.BigEndian.Uint16(id[2:])
	copy(l.s.local.ip[:], id[4:20])
	copy(l.s.remote.ip[:], id[20:36])
	if m[0] == syscall.AF_INET {
		l.s.local.v4, l.s.remote.v4 = true, true
	}
	l.inode = uint64(binary.NativeEndian.Uint32(m[68:]))
	return l, true
}

// procSockets reads /proc/net/tcp and tcp6, for kernels without
// sock_diag. Sockets without an inode (TIME_WAIT, which belong to no
// process) are skipped before their addresses are parsed.
func procSockets() map[uint64]socket {
	var all []socketLine
	listenPorts := map[uint16]bool{}
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
			var line []byte
			if i := bytes.IndexByte(data, '\n'); i >= 0 {
				line, data = data[:i], data[i+1:]
			} else {
				line, data = data, nil
			}
			// sl local rem st tx:rx tr:when retrnsmt uid timeout inode
			var f [10][]byte
			rest := line
			for k := range f {
				f[k], rest = nextField(rest)
			}
			st, ok1 := hexUint(f[3])
			inode, ok2 := atoi(f[9])
			local, ok3 := hexAddr(f[1])
			if !ok1 || !ok2 || !ok3 {
				continue
			}
			if st == stateListen {
				listenPorts[local.port] = true
			}
			if inode == 0 {
				continue
			}
			remote, ok := hexAddr(f[2])
			if !ok {
				continue
			}
			all = append(all, socketLine{inode: uint64(inode), s: socket{local: local, remote: remote, state: st}})
		}
	}
	return judge(all, listenPorts)
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

// hexAddr parses a table address "0100007F:1F90" (127.0.0.1:8080). The
// kernel writes the address as 32-bit words in host byte order
// (little-endian on the platforms gatehouse runs on), as procfs assumes.
func hexAddr(b []byte) (addr, bool) {
	var a addr
	i := bytes.IndexByte(b, ':')
	if i != 8 && i != 32 {
		return a, false
	}
	port, ok := hexUint(b[i+1:])
	if !ok || port > 0xffff {
		return a, false
	}
	a.port, a.v4 = uint16(port), i == 8
	for k := 0; k < i/2; k++ {
		hi, ok1 := unhex(b[2*k])
		lo, ok2 := unhex(b[2*k+1])
		if !ok1 || !ok2 {
			return a, false
		}
		// Byte k of word k/4, stored reversed.
		w := k &^ 3
		a.ip[w+3-(k-w)] = hi<<4 | lo
	}
	return a, true
}
