package procdump

import (
	"bufio"
	"encoding/hex"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// listeners are the TCP addresses a process listens on: the sockets among
// its file descriptors matched with the LISTEN entries of its network
// namespace's /proc/PID/net/tcp{,6}.
func listeners(pid int) []netip.AddrPort {
	inodes := socketInodes(pid)
	if len(inodes) == 0 {
		return nil
	}
	var out []netip.AddrPort
	for _, table := range []string{"net/tcp", "net/tcp6"} {
		for _, l := range listening(procPath(pid, table)) {
			if inodes[l.inode] {
				out = append(out, l.addr)
			}
		}
	}
	return out
}

// socketInodes are the inodes of the sockets among pid's descriptors.
func socketInodes(pid int) map[string]bool {
	dir := procPath(pid, "fd")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	inodes := map[string]bool{}
	for _, e := range ents {
		link, err := os.Readlink(dir + "/" + e.Name())
		if err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	return inodes
}

type listenEntry struct {
	addr  netip.AddrPort
	inode string
}

// tcpListen is the state column's value for LISTEN.
const tcpListen = "0A"

// listening reads the LISTEN lines of a /proc/net/tcp{,6} table:
// "sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode".
func listening(path string) []listenEntry {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []listenEntry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 || fields[3] != tcpListen {
			continue
		}
		if addr, ok := parseProcAddr(fields[1]); ok {
			out = append(out, listenEntry{addr: addr, inode: fields[9]})
		}
	}
	return out
}

// parseProcAddr reads "0100007F:2405": the address in hex as the kernel
// holds it (each 32-bit word in host order, little-endian here), a colon
// and the port in hex.
func parseProcAddr(s string) (netip.AddrPort, bool) {
	host, port, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, false
	}
	raw, err := hex.DecodeString(host)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.AddrPort{}, false
	}
	for i := 0; i < len(raw); i += 4 {
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	p, err := strconv.ParseUint(port, 16, 16)
	if err != nil {
		return netip.AddrPort{}, false
	}
	ip, _ := netip.AddrFromSlice(raw)
	return netip.AddrPortFrom(ip.Unmap(), uint16(p)), true
}

// dialable is where to reach a listener from this host: its own address,
// or loopback for one bound to every address.
func dialable(a netip.AddrPort) string {
	ip := a.Addr()
	if ip.IsUnspecified() {
		ip = netip.IPv6Loopback()
		if a.Addr().Is4() {
			ip = netip.AddrFrom4([4]byte{127, 0, 0, 1})
		}
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(int(a.Port())))
}
