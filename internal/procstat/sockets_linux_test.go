//go:build linux

package procstat

import (
	"net"
	"strconv"
	"testing"

	"github.com/prometheus/procfs"
)

// Both ways of reading the socket tables (netlink sock_diag, and
// /proc/net/tcp for kernels without it) agree with procfs's parsing of
// /proc/net/tcp: same sockets (those with an inode), addresses and states.
func TestReadSocketsAgreesWithProcfs(t *testing.T) {
	// Make sure there are IPv4 and (where available) IPv6 sockets of
	// every kind: listening, accepted, and connected.
	ours := map[string]bool{} // local addresses of the sockets opened here
	for _, network := range []string{"tcp4", "tcp6"} {
		addr := "127.0.0.1:0"
		if network == "tcp6" {
			addr = "[::1]:0"
		}
		ln, err := net.Listen(network, addr)
		if err != nil {
			if network == "tcp6" {
				continue // no IPv6 loopback here
			}
			t.Fatal(err)
		}
		defer ln.Close()
		c, err := net.Dial(network, ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		for _, a := range []net.Addr{ln.Addr(), c.LocalAddr(), s.LocalAddr()} {
			ours[a.String()] = true
		}
	}

	fs, err := procfs.NewDefaultFS()
	if err != nil {
		t.Fatal(err)
	}
	// procfs's parser of /proc/net/tcp is the reference here because it
	// is not this package's: netlink, which procfs now points to, is
	// what the sock_diag reader under test uses.
	var lines procfs.NetTCP
	//lint:ignore SA1019 an independent parser of /proc/net/tcp is the point (see above)
	for _, read := range []func() (procfs.NetTCP, error){fs.NetTCP, fs.NetTCP6} {
		if l, err := read(); err == nil {
			lines = append(lines, l...)
		}
	}
	diag, err := diagSockets()
	if err != nil {
		t.Logf("sock_diag unavailable (%v); only the /proc reader is checked", err)
	}
	for name, got := range map[string]map[uint64]socket{"sock_diag": diag, "/proc": procSockets()} {
		if got == nil {
			continue
		}
		t.Run(name, func(t *testing.T) { agree(t, lines, got, ours) })
	}
}

// agree compares every socket's addresses, which an inode keeps for its
// life, and the states of the sockets opened here (ours, by local
// address), which hold still: another process's may move on between the
// two reads.
func agree(t *testing.T, lines procfs.NetTCP, got map[uint64]socket, ours map[string]bool) {
	checked := 0
	for _, l := range lines {
		if l.Inode == 0 {
			continue
		}
		sk, ok := got[l.Inode]
		if !ok {
			// Opened after our read; sockets come and go on a busy host.
			continue
		}
		checked++
		local := net.JoinHostPort(l.LocalAddr.String(), strconv.FormatUint(l.LocalPort, 10))
		remote := net.JoinHostPort(l.RemAddr.String(), strconv.FormatUint(l.RemPort, 10))
		if sk.local.String() != local || sk.remote.String() != remote || ours[local] && sk.state != l.St {
			t.Errorf("inode %d: got %s → %s state %d, procfs says %s → %s state %d", l.Inode, sk.local, sk.remote, sk.state, local, remote, l.St)
		}
	}
	if checked < 6 {
		t.Fatalf("only %d sockets compared; want at least the 6 this test opened", checked)
	}
}

func TestHexAddr(t *testing.T) {
	for in, want := range map[string]string{
		"0100007F:1F90":                         "127.0.0.1:8080",
		"00000000:0000":                         "0.0.0.0:0",
		"00000000000000000000000001000000:0050": "[::1]:80",
		"0000000000000000FFFF00000100007F:01BB": "127.0.0.1:443", // v4-mapped
		"not-hex":                               "invalid",
		"0100007F:1F9":                          "127.0.0.1:505",
		"0100007F:10000":                        "invalid",
	} {
		got := "invalid"
		if a, ok := hexAddr([]byte(in)); ok {
			got = a.String()
		}
		if got != want {
			t.Errorf("hexAddr(%q) = %q, want %q", in, got, want)
		}
	}
}
