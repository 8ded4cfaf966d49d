// Package procid owns the naming of a process that gatehouse did not
// necessarily start and may not be the parent of: a pid together with its
// start time (/proc/PID/stat field 22, clock ticks since boot), so that a
// reused pid is never taken for the process it once named, and the
// watching of such a process for its exit through a pidfd.
package procid

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ID names one process for as long as the system runs.
type ID struct {
	PID        int    `json:"pid"`
	StartTicks uint64 `json:"start_ticks"`
}

// Stat is what gatehouse reads of /proc/PID/stat.
type Stat struct {
	// State is field 3: R, S, D, Z (zombie), T...
	State byte
	// PPID is field 4, PGRP field 5.
	PPID, PGRP int
	// Flags is field 9, the kernel's PF_* flags.
	Flags uint64
	// StartTicks is field 22 (starttime).
	StartTicks uint64
}

// ReadStat reads /proc/PID/stat. The command name (field 2) may hold
// spaces and parentheses, so fields are counted from its last ')'.
func ReadStat(pid int) (Stat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Stat{}, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return Stat{}, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3.
	if len(f) < 20 || len(f[0]) != 1 {
		return Stat{}, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	ppid, err1 := strconv.Atoi(f[1])
	pgrp, err2 := strconv.Atoi(f[2])
	flags, err3 := strconv.ParseUint(f[6], 10, 64)
	start, err4 := strconv.ParseUint(f[19], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
		return Stat{}, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	return Stat{State: f[0][0], PPID: ppid, PGRP: pgrp, Flags: flags, StartTicks: start}, nil
}

// pfExiting is the kernel's PF_EXITING: the process has begun to exit.
const pfExiting = 0x4

// Exiting reports whether the process is on its way out: exiting (its
// files, sockets among them, being closed), or dead and not yet reaped.
func (s Stat) Exiting() bool { return s.State == 'Z' || s.State == 'X' || s.Flags&pfExiting != 0 }

// List returns the pids /proc shows: every process of this PID
// namespace (when /proc was mounted for it).
func List() []int {
	d, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	pids := make([]int, 0, len(names))
	for _, name := range names {
		if pid, err := strconv.Atoi(name); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// Of names the running process pid; StartTicks is 0 if it cannot be read.
func Of(pid int) ID {
	st, _ := ReadStat(pid)
	return ID{PID: pid, StartTicks: st.StartTicks}
}

// Alive reports whether id still names a running process (not a zombie).
func (id ID) Alive() bool {
	if id.PID <= 0 {
		return false
	}
	st, err := ReadStat(id.PID)
	return err == nil && st.State != 'Z' && st.StartTicks == id.StartTicks
}

// BootID identifies the running kernel's boot; "" when unknown. Start
// ticks mean nothing across a reboot.
func BootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
