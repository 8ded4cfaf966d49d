package history

import (
	"bytes"
	"math"
	"os"
	"strconv"
	"syscall"
	"time"
)

// SelfUsage returns a function that reports gatehouse's own resident
// memory and CPU (percent of one core since its previous call) for the
// overall ring. It is called from Run's goroutine only.
func SelfUsage() func() InstancePoint {
	var lastCPU time.Duration
	var lastAt time.Time
	page := uint64(os.Getpagesize())
	return func() InstancePoint {
		p := InstancePoint{ID: Self, CPU: math.NaN()}
		if b, err := os.ReadFile("/proc/self/statm"); err == nil {
			// statm: size resident shared ... in pages.
			if f := bytes.Fields(b); len(f) > 1 {
				if n, err := strconv.ParseUint(string(f[1]), 10, 64); err == nil {
					p.RSS = n * page
				}
			}
		}
		var ru syscall.Rusage
		if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
			cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
			now := time.Now()
			if !lastAt.IsZero() {
				if wall := now.Sub(lastAt); wall > 0 {
					p.CPU = 100 * float64(cpu-lastCPU) / float64(wall)
				}
			}
			lastCPU, lastAt = cpu, now
		}
		return p
	}
}
