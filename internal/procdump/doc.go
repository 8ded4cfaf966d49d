// Package procdump owns taking a dump of one running process: a core
// file (gcore), the stacks of its threads or goroutines (through the
// runtime's own means: node's inspector, py-spy or gdb's py-bt, SIGQUIT
// for Go, jcmd for the JVM, gdb for the rest) and a heap snapshot (node's
// inspector). It names the runtime of a process, finds and runs the tools,
// watches the process so that one exiting mid-dump is reported at once,
// and bounds every step by a timeout.
//
// Of gatehouse it imports only procid (a process named by pid and start
// time, waited for) and reaper (which starts the tools, so that a PID 1
// gatehouse's reaping of orphans leaves their exit status to the dump):
// where a dump is stored, which instance it belongs to and whether the
// instance is drained first are its callers' business.
package procdump
