// Package procstat owns reading per-process statistics from /proc: memory,
// CPU and sockets of an instance's whole process tree.
package procstat
