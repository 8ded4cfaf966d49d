// Package telemetry owns gatehouse's own log files under data_dir:
//
//   - access.log: one JSON object per proxied request (AccessLog), encoded by a
//     hand-written, allocation-free JSON encoder because it sits on the
//     request hot path;
//   - events.log: one JSON object per lifecycle event (Events), also kept in
//     an in-memory ring for the admin API and fanned out to live subscribers;
//   - AsyncWriter: the rotating, batching file writer both logs go through;
//     ReadRotated reads a log back with the files it was rotated into.
//
// The rule everything here follows: logging never blocks or fails a request.
// Writers are non-blocking queues; a full queue, a file that cannot be opened,
// a full disk or a failing write is counted (AsyncWriter.Stats, Events.Missed)
// and reported, never returned to the caller and never fatal.
//
// AsyncWriter is not specific to these two files; any rotated line log (for
// example an instance's stdout/stderr log) can use it.
package telemetry
