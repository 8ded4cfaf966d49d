package telemetry

// The event types of process dumps (package dumps): gatehouse dump and
// auto-heal's action dump.
const (
	// EventDumpStarted is an instance taken out of rotation for a dump:
	// Value is the kind, Trigger who asked.
	EventDumpStarted = "dump_started"
	// EventDump is a dump taken: Value its file name under
	// data_dir/dumps, Detail its size, tool and how long the process was
	// paused.
	EventDump = "dump"
	// EventDumpFailed is a dump that could not be taken, Detail why (a
	// missing tool names what to install; a process that exited
	// mid-dump says so).
	EventDumpFailed = "dump_failed"
	// EventDumpRemoved is a dump removed by the dumps: block's cap
	// (Trigger: max_size, max_count or max_age) or by an admin client.
	EventDumpRemoved = "dump_removed"
)

// DumpEndedProcess is in the Detail of an EventDump whose dump ended the
// process by design (a Go program's stacks, allowed to exit): the one
// kind of dump an exit of the process is no crash under.
const DumpEndedProcess = "the process ended, as allow_exit let it"
