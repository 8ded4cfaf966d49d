// Package process owns one app process as gatehouse sees it: started
// under a shim (see package shim) in a process group of its own, or
// adopted by pid from a gatehouse that ran before; waited for, with how it
// ended (exit code, signal, or why that is not known); signalled as a
// group; let go of for a successor to adopt. It also owns the argv a
// command is started with (a shell only where the command needs one) and
// the capture of an instance's output: its rotated log file, the
// console's prefixed lines, the live log stream, and the last lines kept
// in memory, each known by the pid that wrote it.
//
// It knows nothing of apps, pools or records: the supervisor tells it what
// to start or adopt, and how to tell whether an adopted process's group is
// still the app's (Adoptee.OwnsGroup).
package process
