package procstat

import (
	"os"
	"strconv"
	"strings"
)

var pageSize = uint64(os.Getpagesize())

// TreeRSS is the resident memory of pid and its process group members,
// which is how an instance that forks (npm start → node) is counted. It
// returns 0 where /proc is unavailable.
func TreeRSS(pid int) uint64 {
	var total uint64
	for _, p := range groupPIDs(pid) {
		total += rss(p)
	}
	return total
}

func rss(pid int) uint64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.ParseUint(f[1], 10, 64)
	return n * pageSize
}

// groupPIDs lists the processes whose process group is pgid.
func groupPIDs(pgid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pgidOf(pid) == pgid {
			out = append(out, pid)
		}
	}
	return out
}

// pgidOf reads the process group from /proc/PID/stat (field 5, after the
// parenthesised command, which may itself contain spaces).
func pgidOf(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 3 {
		return -1
	}
	g, _ := strconv.Atoi(f[2])
	return g
}
