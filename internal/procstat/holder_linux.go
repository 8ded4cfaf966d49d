//go:build linux

package procstat

import (
	"net"
	"os"
	"strconv"
	"strings"
)

// ListenerOf finds the process that listens on addr (host:port) or on its
// port on every address, which equally makes a bind of addr fail: its
// pid and command name. ok is false when no listening socket there
// belongs to a process this one may look into (another user's, or
// another PID namespace's, is hidden).
func ListenerOf(addr string) (pid int, name string, ok bool) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, "", false
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return 0, "", false
	}
	want := net.ParseIP(host)
	inodes := map[uint64]bool{}
	for inode, s := range readSockets() {
		if s.state != stateListen || int(s.local.port) != port {
			continue
		}
		ip := net.IP(s.local.ip[:])
		if s.local.v4 {
			ip = net.IP(s.local.ip[:4])
		}
		if want == nil || want.IsUnspecified() || ip.IsUnspecified() || ip.Equal(want) {
			inodes[inode] = true
		}
	}
	if len(inodes) == 0 {
		return 0, "", false
	}
	procs, err := os.ReadDir(procRoot)
	if err != nil {
		return 0, "", false
	}
	for _, e := range procs {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		dir := procRoot + "/" + e.Name() + "/fd"
		fds, err := os.ReadDir(dir)
		if err != nil {
			continue // gone, or not ours to read
		}
		for _, fd := range fds {
			target, err := os.Readlink(dir + "/" + fd.Name())
			if err != nil {
				continue
			}
			if inode, isSock := socketInode(target); isSock && inodes[inode] {
				comm, _ := os.ReadFile(procRoot + "/" + e.Name() + "/comm")
				return pid, strings.TrimSpace(string(comm)), true
			}
		}
	}
	return 0, "", false
}
