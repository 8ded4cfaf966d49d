// Package procstat owns reading per-process statistics from /proc: the
// memory, CPU, threads, file descriptors, listening ports and outbound
// connections of an instance's whole process tree (its process group, so
// that `npm start` → node counts as one instance).
//
// Reading is behind the Reader interface; on systems without /proc the
// reader reports ErrUnsupported and gatehouse runs without process stats.
package procstat
