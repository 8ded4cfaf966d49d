//go:build linux

package testutil

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"syscall"
	"unsafe"
)

// The sock_diag request and answer (linux/inet_diag.h, linux/netlink.h).
const (
	sockDiagByFamily = 20
	inetDiagNoCookie = ^uint32(0)
)

type nlMsgHdr struct {
	Len   uint32
	Type  uint16
	Flags uint16
	Seq   uint32
	Pid   uint32
}

type inetDiagSockID struct {
	SPort  [2]byte
	DPort  [2]byte
	Src    [16]byte
	Dst    [16]byte
	If     uint32
	Cookie [2]uint32
}

type inetDiagReqV2 struct {
	Family   uint8
	Protocol uint8
	Ext      uint8
	Pad      uint8
	States   uint32
	ID       inetDiagSockID
}

type inetDiagMsg struct {
	Family  uint8
	State   uint8
	Timer   uint8
	Retrans uint8
	ID      inetDiagSockID
	Expires uint32
	RQueue  uint32
	WQueue  uint32
	UID     uint32
	Inode   uint32
}

// tcpQueues asks the kernel for the TCP socket bound to local whose peer
// is remote (a listening one when remote's port is 0; ENOENT when there
// is none), and returns its receive and send queues and its state.
func tcpQueues(local, remote *net.TCPAddr) (rq, wq, state int, err error) {
	req := struct {
		H nlMsgHdr
		R inetDiagReqV2
	}{}
	req.H = nlMsgHdr{Len: uint32(unsafe.Sizeof(req)), Type: sockDiagByFamily, Flags: syscall.NLM_F_REQUEST, Seq: 1}
	req.R = inetDiagReqV2{Family: syscall.AF_INET, Protocol: syscall.IPPROTO_TCP, States: ^uint32(0)}
	id := &req.R.ID
	binary.BigEndian.PutUint16(id.SPort[:], uint16(local.Port))
	binary.BigEndian.PutUint16(id.DPort[:], uint16(remote.Port))
	if ip := local.IP.To4(); ip != nil {
		copy(id.Src[:], ip)
		copy(id.Dst[:], remote.IP.To4())
	} else {
		req.R.Family = syscall.AF_INET6
		copy(id.Src[:], local.IP.To16())
		copy(id.Dst[:], remote.IP.To16())
	}
	id.Cookie = [2]uint32{inetDiagNoCookie, inetDiagNoCookie}

	fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, syscall.NETLINK_INET_DIAG)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("sock_diag socket: %w", err)
	}
	defer syscall.Close(fd)
	b := unsafe.Slice((*byte)(unsafe.Pointer(&req)), unsafe.Sizeof(req))
	if err := syscall.Sendto(fd, b, 0, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		return 0, 0, 0, fmt.Errorf("sock_diag request: %w", err)
	}
	buf := make([]byte, 4096)
	n, _, err := syscall.Recvfrom(fd, buf, 0)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("sock_diag answer: %w", err)
	}
	msgs, err := syscall.ParseNetlinkMessage(buf[:n])
	if err != nil {
		return 0, 0, 0, fmt.Errorf("sock_diag answer: %w", err)
	}
	for _, m := range msgs {
		switch m.Header.Type {
		case syscall.NLMSG_ERROR:
			if len(m.Data) >= 4 {
				if errno := int32(binary.NativeEndian.Uint32(m.Data)); errno != 0 {
					return 0, 0, 0, fmt.Errorf("sock_diag of %v→%v: %w", local, remote, syscall.Errno(-errno))
				}
			}
		case sockDiagByFamily:
			var msg inetDiagMsg
			if err := binary.Read(bytes.NewReader(m.Data), binary.NativeEndian, &msg); err != nil {
				return 0, 0, 0, fmt.Errorf("sock_diag answer: %w", err)
			}
			if remote.Port != 0 && (msg.ID.DPort != id.DPort || msg.ID.Dst != id.Dst) {
				// The kernel answers for the listener on local when no
				// connection to remote is left.
				return 0, 0, 0, fmt.Errorf("sock_diag of %v→%v: %w", local, remote, syscall.ENOENT)
			}
			return int(msg.RQueue), int(msg.WQueue), int(msg.State), nil
		}
	}
	return 0, 0, 0, fmt.Errorf("sock_diag of %v→%v: no answer", local, remote)
}
